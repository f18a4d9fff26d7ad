// Every message the server sends, typed: one discriminated union on `type`
// and one builder per message, so no part of the server assembles a frame by
// hand and no client casts `Record<string, unknown>`. Dependency-free (types
// and plain functions only): the server, the browser SDK and the tests share it.
import type { ErrorCode } from './codes.js';
import { agentOfStream, type EventType, type SubscriptionType } from './constants.js';

/** The `id` a client may put on a request; echoed on its reply. */
export type RequestId = string | number;

/** Where a stream stands: its last offset and the epoch that names its lifetime. */
export interface StreamPosition {
  offset: number;
  epoch: string;
}

/**
 * An event as delivered: the ESCAI envelope plus `event_id`, `offset` and
 * `epoch`. Envelope fields other than these depend on `type`.
 */
export interface DeliveredEvent<T extends EventType = EventType> {
  type: T;
  event_id: string;
  agent_id?: string;
  alert_type?: string;
  severity?: string;
  status?: string;
  message?: string;
  notification_type?: string;
  metadata?: Record<string, unknown>;
  data?: Record<string, unknown>;
  timestamp: string;
  offset: number;
  epoch: string;
  /** Flow control (`$max_rate`): how many newer events of this agent this one stands for (skipped in its window). */
  conflated?: number;
  /**
   * Sent as a subscription's `latest` event (its current state on subscribe),
   * not live: several subscriptions' latest events come in subscription
   * order, so they need not be in offset order among themselves.
   */
  latest?: true;
}

/** A subscription as replies describe it. */
export interface SubscriptionView {
  type: SubscriptionType;
  agent_id: string | null;
  filters: Record<string, unknown> | null;
}

/** One accepted event, as publish answers list it. */
export interface PublishedRef {
  event_id: string;
  offset: number;
  epoch: string;
  /** Present (true) when the idempotency key was seen before: the original event's ids. */
  duplicate?: true;
}

/** The ESCAI health counters (GET /ws/health, `stats`), summed over the cluster's live nodes. */
export interface HealthCounters {
  status: 'healthy' | 'idle' | 'near_capacity';
  max_connections: number;
  heartbeat_interval: number;
  heartbeat_timeout: number;
  heartbeat_running: boolean;
  active_connections: number;
  total_connections_ever: number;
  active_users: number;
  total_subscriptions: number;
  messages_sent: number;
  messages_received: number;
  agent_subscribers: number;
  /** Events accepted from producers. */
  events_in: number;
  /** Events written to client sockets (one per recipient). */
  events_out: number;
  handshake_refusals: number;
  /** Inbound messages dropped by the rate limit. */
  rate_limited: number;
  slow_consumer_closes: number;
}

/** One node's entry in the cluster registry, as health views list it. */
export interface NodeReport {
  node_id: string;
  /** Where the node listens (host:port). */
  address: string;
  started_at: string;
  /** When this report was written (ms since the epoch). */
  reported_at: number;
  counters: Record<string, number>;
}

export interface ClusterHealth extends HealthCounters {
  engine: string;
  node_id: string;
  nodes: NodeReport[];
}

/** One sample of /ws/health: when (seconds since the epoch, the sampling node's clock) and each live node's counters. */
export interface HealthSample {
  t: number;
  nodes: Record<string, Record<string, number>>;
}

/** GET /ws/health/history: what /ws/health said every few seconds, per node, oldest first. */
export interface HealthHistoryPage {
  node_id: string;
  interval_s: number;
  window_s: number;
  /** node id → its address (host:port), for every node in the samples. */
  addresses: Record<string, string>;
  samples: HealthSample[];
  timestamp: string;
}

interface Reply<T extends string, D> {
  type: T;
  data: D;
  timestamp: string;
  id?: RequestId;
}

export interface ConnectionEstablished {
  type: 'connection_established';
  connection_id: string;
  session_id: string;
  user_id: string;
  server_time: string;
  heartbeat_interval: number;
  resumed: boolean;
  /** Resumed sessions only: whether everything missed could be replayed. */
  recovered?: boolean;
  /** Resumed sessions only: the subscriptions restored. */
  subscriptions?: SubscriptionView[];
  /** Resumed sessions only: saved subscriptions the token no longer allows, each with the reason. */
  dropped_subscriptions?: string[];
}

export type SubscriptionConfirmed = Reply<
  'subscription_confirmed',
  {
    subscription_type: SubscriptionType;
    agent_id: string | null;
    filters: Record<string, unknown> | null;
    recovered: boolean;
    /** Single-stream subscriptions: the stream's position when the subscription started. */
    offset?: number;
    epoch?: string;
  }
>;
export type UnsubscriptionConfirmed = Reply<'unsubscription_confirmed', { subscription_type: string; agent_id: string | null }>;
export type SubscriptionsList = Reply<'subscriptions_list', { subscriptions: SubscriptionView[] }>;
export type Stats = Reply<'stats', ClusterHealth>;
export type PublishConfirmed = Reply<'publish_confirmed', { accepted: number; events: PublishedRef[] }>;
export type TokenRefreshed = Reply<'token_refreshed', { expires_at: string | null }>;

export interface TokenExpiring {
  type: 'token_expiring';
  data: { expires_at: string };
  timestamp: string;
}
export interface SubscriptionRevoked {
  type: 'subscription_revoked';
  data: { subscription_type: SubscriptionType; agent_id: string | null; reason: string };
  timestamp: string;
}
export interface RecoveryFailed {
  type: 'recovery_failed';
  data: { stream: string; agent_id: string | null; offset: number; epoch: string; reason: string };
  timestamp: string;
}
export interface Ping {
  type: 'ping';
  timestamp: string;
}
export interface Pong {
  type: 'pong';
  timestamp: string;
  id?: RequestId;
}
export interface ErrorMessage {
  type: 'error';
  code: ErrorCode;
  message: string;
  timestamp: string;
  id?: RequestId;
}

/** Every control message (not an event) the server sends. */
export type ControlMessage =
  | ConnectionEstablished
  | SubscriptionConfirmed
  | UnsubscriptionConfirmed
  | SubscriptionsList
  | Stats
  | PublishConfirmed
  | TokenRefreshed
  | TokenExpiring
  | SubscriptionRevoked
  | RecoveryFailed
  | Ping
  | Pong
  | ErrorMessage;

/** The reply each client request gets (or an `error` with the same id). */
export interface RequestReplies {
  subscribe: SubscriptionConfirmed;
  unsubscribe: UnsubscriptionConfirmed;
  ping: Pong;
  get_subscriptions: SubscriptionsList;
  get_stats: Stats;
  publish: PublishConfirmed;
  refresh: TokenRefreshed;
}

/** A delivered event of each type, as a union (so `ServerMessageOf<'epistemic_update'>` is that event). */
export type AnyDeliveredEvent = { [T in EventType]: DeliveredEvent<T> }[EventType];

/** Everything the server sends: a control message or a delivered event. */
export type ServerMessage = ControlMessage | AnyDeliveredEvent;
export type ServerMessageType = ServerMessage['type'];
/** The message of one `type`. */
export type ServerMessageOf<T extends ServerMessageType> = Extract<ServerMessage, { type: T }>;

export function isoNow(): string {
  return new Date().toISOString();
}

function reply<T extends string, D>(type: T, data: D, id: RequestId | undefined): Reply<T, D> {
  return id === undefined ? { type, data, timestamp: isoNow() } : { type, data, timestamp: isoNow(), id };
}

/** One builder per control message: the only place the server shapes them. */
export const ServerMessages = {
  connectionEstablished(fields: Omit<ConnectionEstablished, 'type' | 'server_time'>): ConnectionEstablished {
    return { type: 'connection_established', ...fields, server_time: isoNow() };
  },
  subscriptionConfirmed(data: SubscriptionConfirmed['data'], id?: RequestId): SubscriptionConfirmed {
    return reply('subscription_confirmed', data, id);
  },
  unsubscriptionConfirmed(subscriptionType: string, agentId: string | null, id?: RequestId): UnsubscriptionConfirmed {
    return reply('unsubscription_confirmed', { subscription_type: subscriptionType, agent_id: agentId }, id);
  },
  subscriptionsList(subscriptions: SubscriptionView[], id?: RequestId): SubscriptionsList {
    return reply('subscriptions_list', { subscriptions }, id);
  },
  stats(data: ClusterHealth, id?: RequestId): Stats {
    return reply('stats', data, id);
  },
  publishConfirmed(events: PublishedRef[], id?: RequestId): PublishConfirmed {
    return reply('publish_confirmed', { accepted: events.length, events }, id);
  },
  tokenRefreshed(expiresAt: string | null, id?: RequestId): TokenRefreshed {
    return reply('token_refreshed', { expires_at: expiresAt }, id);
  },
  tokenExpiring(expiresAt: string): TokenExpiring {
    return { type: 'token_expiring', data: { expires_at: expiresAt }, timestamp: isoNow() };
  },
  subscriptionRevoked(subscriptionType: SubscriptionType, agentId: string | null, reason: string): SubscriptionRevoked {
    return { type: 'subscription_revoked', data: { subscription_type: subscriptionType, agent_id: agentId, reason }, timestamp: isoNow() };
  },
  recoveryFailed(stream: string, position: StreamPosition, reason: string): RecoveryFailed {
    const agentId = agentOfStream(stream);
    return { type: 'recovery_failed', data: { stream, agent_id: agentId, offset: position.offset, epoch: position.epoch, reason }, timestamp: isoNow() };
  },
  ping(): Ping {
    return { type: 'ping', timestamp: isoNow() };
  },
  pong(id?: RequestId): Pong {
    return id === undefined ? { type: 'pong', timestamp: isoNow() } : { type: 'pong', timestamp: isoNow(), id };
  },
  error(code: ErrorCode, message: string, id?: RequestId): ErrorMessage {
    return id === undefined ? { type: 'error', code, message, timestamp: isoNow() } : { type: 'error', code, message, timestamp: isoNow(), id };
  },
} as const;
