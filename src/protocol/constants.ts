// The names of event and subscription types: plain constants with no
// dependency, shared by the server, the schemas and the browser SDK.

export const EVENT_TYPES = ['epistemic_update', 'pattern_alert', 'prediction_update', 'system_alert', 'agent_status_change', 'user_notification'] as const;

export type EventType = (typeof EVENT_TYPES)[number];

/** Subscription types (plural, as ESCAI clients send them) and the event type each receives. */
export const SUBSCRIPTION_TYPES = {
  epistemic_updates: 'epistemic_update',
  pattern_alerts: 'pattern_alert',
  prediction_updates: 'prediction_update',
  system_alerts: 'system_alert',
  agent_status: 'agent_status_change',
} as const satisfies Record<string, Exclude<EventType, 'user_notification'>>;

export type SubscriptionType = keyof typeof SUBSCRIPTION_TYPES;
