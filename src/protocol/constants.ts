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

/** Which way a value must move for a filter's `changed_by` / `crosses` to fire. */
export type ChangeDirection = 'up' | 'down' | 'either';

/** The one stream a subscription reads (`agent:{id}`, `system`), or null for all-agents subscriptions. */
export function subscriptionStream(type: SubscriptionType, agentId: string | null): string | null {
  if (type === 'system_alerts') return 'system';
  return agentId === null ? null : `agent:${agentId}`;
}

/** Does a subscription receive events of `stream`? (Permission aside: the caller checks it.) */
export function subscriptionFollows(type: SubscriptionType, agentId: string | null, stream: string): boolean {
  if (stream === 'system') return type === 'system_alerts';
  return type !== 'system_alerts' && stream.startsWith('agent:') && (agentId === null || stream === `agent:${agentId}`);
}
