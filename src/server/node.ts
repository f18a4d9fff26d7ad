// The node: the connections of this process, their subscriptions, and the
// fan-out of every publication the engine hands over. Also the publishing
// entry point shared by the HTTP API, the socket and the in-process API.
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { Principal } from '../auth/permissions.js';
import { Permissions } from '../auth/permissions.js';
import type { Config } from '../config/config.js';
import type { Broker, Publication } from '../engine/broker.js';
import { EscaiError } from '../protocol/codes.js';
import { SUBSCRIPTION_TYPES, streamOf, type DeliveredEvent, type PublishEvent, type SubscriptionType } from '../protocol/events.js';
import { isoNow, type SubscribeData, type UnsubscribeData } from '../protocol/messages.js';
import { Connection, type TrafficCounters } from './connection.js';
import { compileFilter } from './filters.js';
import { envelope } from './publish.js';
import { SubscriptionIndex, subscriptionKey, type Subscription } from './subscriptions.js';

export interface PublishResult {
  event_id: string;
  stream: string;
  offset: number;
  epoch: string;
  /** Recipients on this node (0 when the engine delivers asynchronously). */
  recipients: number;
  duplicate: boolean;
}

export interface HealthSnapshot {
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
  timestamp: string;
}

export class RealtimeNode {
  readonly config: Config;
  readonly broker: Broker;
  readonly log: Logger;
  readonly connections = new Map<string, Connection>();
  readonly counters: TrafficCounters = { messagesSent: 0, messagesReceived: 0 };
  readonly #byUser = new Map<string, Set<Connection>>();
  readonly #index = new SubscriptionIndex<Connection>();
  #totalConnectionsEver = 0;
  #deliverySeq = 0;
  heartbeatRunning = false;

  constructor(config: Config, broker: Broker, log: Logger) {
    this.config = config;
    this.broker = broker;
    this.log = log;
  }

  get engineName(): string {
    return this.broker.name;
  }

  // ---- connections -------------------------------------------------------

  /** Registers an accepted socket and greets it. */
  attach(ws: WebSocket, principal: Principal, sessionId: string): Connection {
    const conn = new Connection(ws, principal, sessionId, this.config, this.counters);
    this.connections.set(conn.id, conn);
    let userConns = this.#byUser.get(conn.userId);
    if (!userConns) this.#byUser.set(conn.userId, (userConns = new Set()));
    userConns.add(conn);
    this.#totalConnectionsEver++;
    ws.once('close', () => this.detach(conn));
    conn.sendJson({
      type: 'connection_established',
      connection_id: conn.id,
      session_id: sessionId,
      user_id: conn.userId,
      server_time: isoNow(),
      heartbeat_interval: this.config.heartbeatInterval,
    });
    this.log.debug({ connectionId: conn.id, userId: conn.userId, sessionId }, 'connection opened');
    return conn;
  }

  /** Removes every trace of a connection: registry, user index, subscriptions. Idempotent. */
  detach(conn: Connection): void {
    if (!this.connections.delete(conn.id)) return;
    conn.markClosed();
    const userConns = this.#byUser.get(conn.userId);
    userConns?.delete(conn);
    if (userConns?.size === 0) this.#byUser.delete(conn.userId);
    for (const sub of conn.subscriptions.values()) this.#index.remove(sub);
    conn.subscriptions.clear();
    this.log.debug({ connectionId: conn.id, userId: conn.userId }, 'connection closed');
  }

  // ---- subscriptions -----------------------------------------------------

  subscribe(conn: Connection, data: SubscribeData): Subscription<Connection> {
    const { principal } = conn;
    if (!principal.has(Permissions.SUBSCRIBE)) throw new EscaiError('PERMISSION_DENIED', 'Missing permission websocket:subscribe');
    if (!Object.hasOwn(SUBSCRIPTION_TYPES, data.type)) {
      throw new EscaiError('VALIDATION_ERROR', `data.type: unknown subscription type "${data.type}" (one of ${Object.keys(SUBSCRIPTION_TYPES).join(', ')})`);
    }
    const type = data.type as SubscriptionType;
    const agentId = data.agent_id ?? null;
    if (type === 'system_alerts' && agentId !== null) {
      throw new EscaiError('VALIDATION_ERROR', 'data.agent_id: system_alerts are not per agent; subscribe without agent_id');
    }
    if (agentId !== null && !principal.canMonitor(agentId)) {
      throw new EscaiError('AGENT_ACCESS_DENIED', `No permission to monitor agent ${agentId}`);
    }
    const key = subscriptionKey(type, agentId);
    if (conn.subscriptions.has(key)) {
      throw new EscaiError('SUBSCRIPTION_EXISTS', `Already subscribed to ${type}${agentId ? ` for agent ${agentId}` : ''}`);
    }
    if (conn.subscriptions.size >= this.config.maxSubscriptions) {
      throw new EscaiError('TOO_MANY_SUBSCRIPTIONS', `At most ${this.config.maxSubscriptions} subscriptions per connection`);
    }
    const filters = data.filters && Object.keys(data.filters).length > 0 ? data.filters : null;
    const sub: Subscription<Connection> = {
      subscriber: conn,
      type,
      eventType: SUBSCRIPTION_TYPES[type],
      agentId,
      filters,
      match: compileFilter(filters),
    };
    conn.subscriptions.set(key, sub);
    this.#index.add(sub);
    return sub;
  }

  unsubscribe(conn: Connection, data: UnsubscribeData): void {
    const agentId = data.agent_id ?? null;
    const key = subscriptionKey(data.subscription_type, agentId);
    const sub = conn.subscriptions.get(key);
    if (!sub) {
      throw new EscaiError('SUBSCRIPTION_NOT_FOUND', `No subscription to ${data.subscription_type}${agentId ? ` for agent ${agentId}` : ''}`);
    }
    conn.subscriptions.delete(key);
    this.#index.remove(sub);
  }

  // ---- publishing and fan-out --------------------------------------------

  /** Publishes validated events in order; resolves to one result per event. */
  async publish(events: readonly PublishEvent[]): Promise<PublishResult[]> {
    const results: PublishResult[] = [];
    for (const event of events) {
      const stream = streamOf(event);
      const pub = await this.broker.publish(stream, envelope(event), event.idempotency_key);
      results.push({
        event_id: pub.event.event_id,
        stream,
        offset: pub.event.offset,
        epoch: pub.event.epoch,
        recipients: pub.localRecipients ?? 0,
        duplicate: pub.duplicate === true,
      });
    }
    return results;
  }

  /**
   * The engine's handler: delivers one publication to every local connection
   * that may and wants to see it. The frame is serialized once, on the first
   * recipient, and the same bytes go to all. Returns the recipient count.
   */
  readonly deliver = (pub: Publication): number => {
    const event = pub.event;
    const seq = ++this.#deliverySeq;
    const state: FanOut = { event, seq, frame: undefined, count: 0 };
    if (event.type === 'user_notification') {
      const conns = this.#byUser.get(pub.stream.slice('user:'.length));
      if (conns) for (const conn of conns) this.#sendTo(conn, state);
      return state.count;
    }
    const agentId = event.agent_id;
    if (agentId !== undefined) this.#fanOut(this.#index.forAgent(event.type, agentId), state, agentId);
    this.#fanOut(this.#index.forAllAgents(event.type), state, agentId);
    return state.count;
  };

  #fanOut(subs: ReadonlySet<Subscription<Connection>>, state: FanOut, agentId: string | undefined): void {
    for (const sub of subs) {
      const conn = sub.subscriber;
      if (conn.lastDeliverySeq === state.seq) continue;
      // Permission is re-checked at delivery: all-agent subscriptions rely on it,
      // and a refreshed token may have narrowed what this connection may see.
      if (agentId !== undefined && !conn.principal.canMonitor(agentId)) continue;
      let matched: boolean;
      try {
        matched = sub.match(state.event);
      } catch (err) {
        this.log.error({ err, connectionId: conn.id }, 'filter failed; event skipped for this subscription');
        continue;
      }
      if (matched) this.#sendTo(conn, state);
    }
  }

  #sendTo(conn: Connection, state: FanOut): void {
    conn.lastDeliverySeq = state.seq;
    state.frame ??= Buffer.from(JSON.stringify(state.event));
    if (conn.send(state.frame)) state.count++;
  }

  // ---- views -------------------------------------------------------------

  health(): HealthSnapshot {
    const active = this.connections.size;
    const max = this.config.maxConnections;
    return {
      status: active === 0 ? 'idle' : active >= max * 0.9 ? 'near_capacity' : 'healthy',
      max_connections: max,
      heartbeat_interval: this.config.heartbeatInterval,
      heartbeat_timeout: this.config.heartbeatTimeout,
      heartbeat_running: this.heartbeatRunning,
      active_connections: active,
      total_connections_ever: this.#totalConnectionsEver,
      active_users: this.#byUser.size,
      total_subscriptions: this.#index.size,
      messages_sent: this.counters.messagesSent,
      messages_received: this.counters.messagesReceived,
      agent_subscribers: this.#index.agentCount,
      timestamp: isoNow(),
    };
  }
}

interface FanOut {
  readonly event: DeliveredEvent;
  readonly seq: number;
  frame: Buffer | undefined;
  count: number;
}

/** The subscription as replies show it. */
export function describeSubscription(sub: Subscription): { type: SubscriptionType; agent_id: string | null; filters: Record<string, unknown> | null } {
  return { type: sub.type, agent_id: sub.agentId, filters: sub.filters };
}
