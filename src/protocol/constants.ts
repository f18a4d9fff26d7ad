// The names of event and subscription types, and of the streams they travel
// on: plain constants with no dependency, shared by the server, the schemas
// and the browser SDK. Every stream name is made and read here, nowhere else.

export const EVENT_TYPES = [
  'epistemic_update',
  'pattern_alert',
  'prediction_update',
  'system_alert',
  'agent_status_change',
  'user_notification',
  'agent_activity',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

/** Subscription types (plural, as ESCAI clients send them) and the event type each receives. */
export const SUBSCRIPTION_TYPES = {
  epistemic_updates: 'epistemic_update',
  pattern_alerts: 'pattern_alert',
  prediction_updates: 'prediction_update',
  system_alerts: 'system_alert',
  agent_status: 'agent_status_change',
  agent_activity: 'agent_activity',
} as const satisfies Record<string, Exclude<EventType, 'user_notification'>>;

export type SubscriptionType = keyof typeof SUBSCRIPTION_TYPES;

/** Which way a value must move for a filter's `changed_by` / `crosses` to fire. */
export type ChangeDirection = 'up' | 'down' | 'either';

// ---- streams -----------------------------------------------------------------
//
// `agent:{id}`: what an agent thinks (epistemic updates, alerts, predictions,
// status). `activity:{id}`: what it does (one event per span or step; high
// volume, so apart: its traffic never crowds the agent stream's history, and
// a node receives it only when someone watches it). `system`; `user:{id}`.

const AGENT_PREFIX = 'agent:';
const ACTIVITY_PREFIX = 'activity:';
const USER_PREFIX = 'user:';

/** The stream of system alerts. */
export const SYSTEM_STREAM = 'system';

/** The prefixes of the per-agent stream families (for `streamsActiveSince`). */
export const AGENT_STREAM_PREFIXES = [AGENT_PREFIX, ACTIVITY_PREFIX] as const;

/** Every stream of one per-agent family at once (what an all-agents subscription follows). */
export type StreamWildcard = 'agent:*' | 'activity:*';
export const ALL_AGENT_STREAMS = 'agent:*' satisfies StreamWildcard;
export const ALL_ACTIVITY_STREAMS = 'activity:*' satisfies StreamWildcard;

export function agentStream(agentId: string): string {
  return AGENT_PREFIX + agentId;
}

export function activityStream(agentId: string): string {
  return ACTIVITY_PREFIX + agentId;
}

export function userStream(userId: string): string {
  return USER_PREFIX + userId;
}

/** The user a user stream belongs to (`user:{id}`), else null. */
export function userOfStream(stream: string): string | null {
  return stream.startsWith(USER_PREFIX) ? stream.slice(USER_PREFIX.length) : null;
}

/**
 * The key of a subscription within one connection or session: its type and
 * agent (all agents: the type alone). The one definition: the index, the
 * session stores (Redis keeps it in field names, so it must not change) and
 * the SDK use it.
 */
export function subscriptionKey(type: string, agentId: string | null | undefined): string {
  return agentId === null || agentId === undefined ? type : `${type}\u0000${agentId}`;
}

/** The agent a per-agent stream belongs to (`agent:{id}` or `activity:{id}`), else null. */
export function agentOfStream(stream: string): string | null {
  if (stream.startsWith(AGENT_PREFIX)) return stream.slice(AGENT_PREFIX.length);
  if (stream.startsWith(ACTIVITY_PREFIX)) return stream.slice(ACTIVITY_PREFIX.length);
  return null;
}

/** The wildcard covering a stream (`agent:*` for `agent:a1`), or undefined for `system` and user streams. */
export function wildcardOf(stream: string): StreamWildcard | undefined {
  if (stream.startsWith(AGENT_PREFIX)) return ALL_AGENT_STREAMS;
  if (stream.startsWith(ACTIVITY_PREFIX)) return ALL_ACTIVITY_STREAMS;
  return undefined;
}

/** The stream prefix a wildcard stands for (`agent:` for `agent:*`). */
export function wildcardPrefix(wildcard: StreamWildcard): string {
  return wildcard.slice(0, -1);
}

/** The stream an event of this type and agent travels on (user notifications: their user's). */
export function streamOfEvent(type: EventType, agentId: string | undefined, userId?: string): string {
  switch (type) {
    case 'system_alert':
      return SYSTEM_STREAM;
    case 'user_notification':
      return userStream(userId ?? '');
    case 'agent_activity':
      return activityStream(agentId ?? '');
    default:
      return agentStream(agentId ?? '');
  }
}

/** The one stream a subscription reads (`agent:{id}`, `activity:{id}`, `system`), or null for all-agents subscriptions. */
export function subscriptionStream(type: SubscriptionType, agentId: string | null): string | null {
  if (type === 'system_alerts') return SYSTEM_STREAM;
  if (agentId === null) return null;
  return type === 'agent_activity' ? activityStream(agentId) : agentStream(agentId);
}

/** What an all-agents subscription of this type follows. */
export function subscriptionWildcard(type: Exclude<SubscriptionType, 'system_alerts'>): StreamWildcard {
  return type === 'agent_activity' ? ALL_ACTIVITY_STREAMS : ALL_AGENT_STREAMS;
}

/** Does a subscription receive events of `stream`? (Permission aside: the caller checks it.) */
export function subscriptionFollows(type: SubscriptionType, agentId: string | null, stream: string): boolean {
  if (type === 'system_alerts') return stream === SYSTEM_STREAM;
  const single = subscriptionStream(type, agentId);
  return single === null ? wildcardOf(stream) === subscriptionWildcard(type) : stream === single;
}
