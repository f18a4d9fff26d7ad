// The node: the connections of this process, their subscriptions, and the
// fan-out of every publication the engine hands over. Also the publishing
// entry point shared by the HTTP API, the socket and the in-process API.
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { Principal } from '../auth/permissions.js';
import { monitorPermission, Permissions } from '../auth/permissions.js';
import type { Config } from '../config/config.js';
import type { Broker, NodeReport, Publication, SessionState, StreamPosition } from '../engine/broker.js';
import type { TokenVerifier } from '../auth/jwt.js';
import { EscaiError } from '../protocol/codes.js';
import { subscriptionFollows, subscriptionStream } from '../protocol/constants.js';
import { SUBSCRIPTION_TYPES, streamOf, type DeliveredEvent, type PublishEvent, type SubscriptionType } from '../protocol/events.js';
import { isoNow, type SubscribeData, type UnsubscribeData } from '../protocol/messages.js';
import { Connection, type RequestId, type TrafficCounters } from './connection.js';
import { collectReplay, subscriptionWants, type Replay, type ReplayPlan } from './recovery.js';
import { compileFilter } from './filters.js';
import type { Metrics } from './metrics.js';
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
  /** Prometheus metrics, when the server exposes them. */
  metrics: Metrics | undefined;
  /** host:port this node listens on (set at listen). */
  address = '';
  readonly startedAt = new Date().toISOString();

  readonly verifier: TokenVerifier;

  constructor(config: Config, broker: Broker, verifier: TokenVerifier, log: Logger) {
    this.config = config;
    this.broker = broker;
    this.verifier = verifier;
    this.log = log;
  }

  get engineName(): string {
    return this.broker.name;
  }

  // ---- connections -------------------------------------------------------

  /**
   * Registers an accepted socket and greets it. With a parked `session` of
   * the same user, restores its subscriptions and replays what it missed
   * before anything else is sent.
   */
  attach(ws: WebSocket, principal: Principal, sessionId: string, session?: SessionState): Connection {
    const conn = new Connection(ws, principal, sessionId, this.config, this.counters);
    this.connections.set(conn.id, conn);
    let userConns = this.#byUser.get(conn.userId);
    if (!userConns) this.#byUser.set(conn.userId, (userConns = new Set()));
    userConns.add(conn);
    this.#totalConnectionsEver++;
    ws.once('close', () => this.detach(conn));
    this.#scheduleExpiry(conn);
    const welcome = {
      type: 'connection_established',
      connection_id: conn.id,
      session_id: sessionId,
      user_id: conn.userId,
      server_time: isoNow(),
      heartbeat_interval: this.config.heartbeatInterval,
      resumed: false,
    };
    if (session) conn.inbound = this.#resume(conn, session, welcome).then(() => this.#subscriptionsChanged(conn));
    else {
      conn.sendJson(welcome);
      this.#publishPresence(conn);
    }
    this.log.debug({ connectionId: conn.id, userId: conn.userId, sessionId, resumed: session !== undefined }, 'connection opened');
    return conn;
  }

  /** Removes every trace of a connection (registry, user index, subscriptions) and parks its session. Idempotent. */
  detach(conn: Connection): void {
    if (!this.connections.delete(conn.id)) return;
    conn.markClosed();
    const userConns = this.#byUser.get(conn.userId);
    userConns?.delete(conn);
    if (userConns?.size === 0) this.#byUser.delete(conn.userId);
    for (const sub of conn.subscriptions.values()) this.#index.remove(sub);
    this.saveSession(conn, false);
    this.broker.setConnection(conn.id, null);
    if (conn.holdsUserSlot) this.broker.releaseUserSlot(conn.userId);
    conn.subscriptions.clear();
    this.log.debug({ connectionId: conn.id, userId: conn.userId }, 'connection closed');
  }

  /**
   * Writes the connection's session to the engine: while it is open (`live`),
   * with the pong-confirmed positions, so that if this node dies its clients
   * resume on another one; at the end, with where the resume should start.
   */
  saveSession(conn: Connection, live: boolean): void {
    if (this.config.sessionTtl <= 0 || conn.sessionTakenOver) return;
    // A handler finishing after the connection left must not overwrite the record its detach wrote.
    if (live && !this.connections.has(conn.id)) return;
    conn.lastSessionSave = Date.now();
    const positions = live ? conn.confirmedPositions : conn.resumePositions();
    const state: SessionState = {
      userId: conn.userId,
      sessionId: conn.sessionId,
      startedAt: conn.sessionStartedAt,
      detachedAt: Date.now(),
      subscriptions: [...conn.subscriptions.values()].map((sub) => ({
        ...describeSubscription(sub),
        created_at: sub.createdAt,
        ...(sub.start ? { start: [sub.start.offset, sub.start.epoch] as [number, string] } : {}),
      })),
      positions: [...positions].map(([stream, pos]) => [stream, pos.offset, pos.epoch]),
    };
    if (live) state.live = { node_id: this.broker.nodeId, connection_id: conn.id };
    // A live record must outlast a silent death: the heartbeat needs interval + timeout to notice it.
    const ttlMs = (this.config.sessionTtl + (live ? this.config.heartbeatInterval + this.config.heartbeatTimeout : 0)) * 1000;
    this.broker.saveSession(state, ttlMs).catch((err: unknown) => this.log.warn({ err, userId: conn.userId }, 'could not save session'));
  }

  /** The connection as cluster-wide admin views list it. */
  #publishPresence(conn: Connection): void {
    if (!conn.isOpen) return;
    this.broker.setConnection(conn.id, {
      connection_id: conn.id,
      node_id: this.broker.nodeId,
      user_id: conn.userId,
      session_id: conn.sessionId,
      connected_at: conn.connectedAt.toISOString(),
      subscriptions: [...conn.subscriptions.values()].map(describeSubscription),
    });
  }

  /** Subscriptions changed: refresh the admin view and the live session record. */
  #subscriptionsChanged(conn: Connection): void {
    if (!this.connections.has(conn.id)) return;
    this.#publishPresence(conn);
    this.saveSession(conn, true);
  }

  async #resume(conn: Connection, session: SessionState, welcome: Record<string, unknown>): Promise<void> {
    conn.hold();
    const dropped: string[] = [];
    try {
      conn.sessionStartedAt = session.startedAt;
      for (const saved of session.subscriptions) {
        try {
          const sub = this.#buildSubscription(conn, { type: saved.type, agent_id: saved.agent_id, filters: saved.filters }, saved.created_at);
          if (saved.start) sub.start = { offset: saved.start[0], epoch: saved.start[1] };
          this.#addSubscription(conn, sub);
        } catch (err) {
          // The new token may not allow it any more.
          dropped.push(`${saved.type}${saved.agent_id ? `/${saved.agent_id}` : ''}: ${(err as Error).message}`);
        }
      }
      const known = new Map(session.positions.map(([stream, offset, epoch]) => [stream, { offset, epoch }]));
      conn.setConfirmedBase(known);
      const subs = [...conn.subscriptions.values()];
      const wants = (event: DeliveredEvent, byTime: boolean): boolean => {
        if (event.type === 'user_notification') return !byTime || Date.parse(event.timestamp) >= session.startedAt;
        return subs.some((sub) => subscriptionWants(conn, sub, event) && (!byTime || Date.parse(event.timestamp) >= sub.createdAt));
      };
      const plans: ReplayPlan[] = [...known].map(([stream, since]) => ({ stream, since, wants: (e) => wants(e, false) }));
      // Streams the client never saw an event of: replay by time (all-agents subscriptions, notifications).
      // Single-stream subscriptions that had not seen an event: from the position they started at.
      for (const sub of subs) {
        const stream = subscriptionStream(sub.type, sub.agentId);
        if (stream && sub.start && !known.has(stream)) {
          known.set(stream, sub.start);
          plans.push({ stream, since: sub.start, wants: (e) => wants(e, false) });
        }
      }
      const allAgentSubs = subs.filter((sub) => sub.agentId === null && sub.type !== 'system_alerts');
      const unknown = new Map<string, number>();
      if (allAgentSubs.length > 0) {
        const since = Math.min(...allAgentSubs.map((sub) => sub.createdAt));
        for (const stream of await this.broker.streamsActiveSince('agent:', since)) {
          // Only agents this user may see: others can neither be replayed nor count as lost.
          if (!known.has(stream) && conn.principal.canMonitor(stream.slice('agent:'.length))) unknown.set(stream, since);
        }
      }
      for (const sub of subs) {
        const stream = subscriptionStream(sub.type, sub.agentId);
        if (stream && !known.has(stream) && !unknown.has(stream)) unknown.set(stream, sub.createdAt);
      }
      const userStream = `user:${conn.userId}`;
      if (!known.has(userStream)) unknown.set(userStream, session.startedAt);
      for (const [stream, notBefore] of unknown) plans.push({ stream, notBefore, wants: (e) => wants(e, true) });
      const replay = await collectReplay(this.broker, plans);
      if (!this.connections.has(conn.id)) return; // left during the replay: its detach saved the session as restored
      const hello = JSON.stringify({
        ...welcome,
        resumed: true,
        recovered: replay.recovered,
        subscriptions: subs.map(describeSubscription),
        ...(dropped.length > 0 ? { dropped_subscriptions: dropped } : {}),
      });
      conn.release([{ frame: hello }, ...replay.frames], replay.ids, replay.positions);
      this.log.debug({ connectionId: conn.id, replayed: replay.frames.length, recovered: replay.recovered }, 'session resumed');
    } catch (err) {
      this.log.error({ err, connectionId: conn.id }, 'session resume failed');
      conn.release([{ frame: JSON.stringify({ ...welcome, resumed: true, recovered: false, subscriptions: [...conn.subscriptions.values()].map(describeSubscription) }) }], new Set());
    }
  }

  // ---- subscriptions -----------------------------------------------------

  /** Validates a subscribe request against the connection's permissions and state; builds (does not add) the subscription. */
  #buildSubscription(conn: Connection, data: SubscribeData, createdAt = Date.now()): Subscription<Connection> {
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
    if (conn.subscriptions.has(subscriptionKey(type, agentId))) {
      throw new EscaiError('SUBSCRIPTION_EXISTS', `Already subscribed to ${type}${agentId ? ` for agent ${agentId}` : ''}`);
    }
    if (conn.subscriptions.size >= this.config.maxSubscriptions) {
      throw new EscaiError('TOO_MANY_SUBSCRIPTIONS', `At most ${this.config.maxSubscriptions} subscriptions per connection`);
    }
    const filters = data.filters && Object.keys(data.filters).length > 0 ? data.filters : null;
    return { subscriber: conn, type, eventType: SUBSCRIPTION_TYPES[type], agentId, filters, match: compileFilter(filters), createdAt };
  }

  #addSubscription(conn: Connection, sub: Subscription<Connection>): void {
    conn.subscriptions.set(subscriptionKey(sub.type, sub.agentId), sub);
    this.#index.add(sub);
  }

  #removeSubscription(conn: Connection, sub: Subscription<Connection>): void {
    conn.subscriptions.delete(subscriptionKey(sub.type, sub.agentId));
    this.#index.remove(sub);
  }

  /**
   * Adds a subscription and sends `subscription_confirmed` (with the stream's
   * position and `recovered`), then, when `since` was given and the position
   * is still in history, every missed event that passes the filter, then live
   * events: live events are held meanwhile and merged without gap or duplicate.
   */
  async subscribe(conn: Connection, data: SubscribeData, requestId: RequestId): Promise<void> {
    const sub = this.#buildSubscription(conn, data);
    const stream = subscriptionStream(sub.type, sub.agentId);
    const since = data.since ?? undefined;
    if (stream === null && since) {
      throw new EscaiError('VALIDATION_ERROR', 'data.since: recovery needs a single stream (an agent_id, or system_alerts)');
    }
    const confirmation: Record<string, unknown> = { subscription_type: sub.type, agent_id: sub.agentId, filters: sub.filters, recovered: false };
    if (stream === null) {
      this.#addSubscription(conn, sub);
      conn.sendJson(reply('subscription_confirmed', confirmation, requestId));
      this.#subscriptionsChanged(conn);
      return;
    }
    conn.hold();
    this.#addSubscription(conn, sub);
    let replay: Replay;
    try {
      const plan: ReplayPlan = { stream, wants: (event) => subscriptionWants(conn, sub, event) };
      if (since) plan.since = since;
      replay = await collectReplay(this.broker, since ? [plan] : []);
      const position = replay.positions.get(stream) ?? (await this.broker.position(stream));
      // The subscription starts here: a resume before its first event replays from this position.
      sub.start = position;
      Object.assign(confirmation, { recovered: since !== undefined && replay.recovered, offset: position.offset, epoch: position.epoch });
    } catch (err) {
      this.#removeSubscription(conn, sub);
      conn.release([], new Set());
      throw err;
    }
    if (!this.connections.has(conn.id)) return;
    const frames = replay.recovered ? replay.frames : [];
    conn.release([{ frame: JSON.stringify(reply('subscription_confirmed', confirmation, requestId)) }, ...frames], replay.ids, replay.recovered ? replay.positions : undefined);
    this.#subscriptionsChanged(conn);
  }

  unsubscribe(conn: Connection, data: UnsubscribeData): void {
    const agentId = data.agent_id ?? null;
    const sub = conn.subscriptions.get(subscriptionKey(data.subscription_type, agentId));
    if (!sub) {
      throw new EscaiError('SUBSCRIPTION_NOT_FOUND', `No subscription to ${data.subscription_type}${agentId ? ` for agent ${agentId}` : ''}`);
    }
    this.#removeSubscription(conn, sub);
    this.#subscriptionsChanged(conn);
  }

  // ---- token lifetime ----------------------------------------------------

  /** token_expiring shortly before exp; close 4001 at exp + grace unless a refresh arrived. */
  #scheduleExpiry(conn: Connection): void {
    for (const t of conn.expiryTimers) clearTimeout(t);
    conn.expiryTimers = [];
    const exp = conn.principal.expiresAt;
    if (exp === undefined) return;
    const expMs = exp * 1000;
    const warnAt = expMs - this.config.tokenExpiryWarning * 1000;
    conn.expiryTimers.push(
      timerAt(warnAt, () => conn.sendJson({ type: 'token_expiring', data: { expires_at: new Date(expMs).toISOString() }, timestamp: isoNow() })),
      timerAt(expMs + this.config.tokenExpiryGrace * 1000, () => conn.close('TOKEN_EXPIRED', 'token expired')),
    );
  }

  /**
   * Replaces the connection's token. Same `sub` only (else close 4003);
   * permissions are re-read: subscriptions the new token no longer allows are
   * removed, each announced with `subscription_revoked`.
   */
  async refresh(conn: Connection, token: string, requestId: RequestId): Promise<void> {
    const principal = await this.verifier.verify(token);
    if (!this.connections.has(conn.id)) return;
    if (principal.userId !== conn.userId) {
      conn.close('FORBIDDEN', 'refresh token belongs to another user');
      return;
    }
    if (!principal.has(Permissions.CONNECT)) {
      conn.close('FORBIDDEN', 'refresh token lacks websocket:connect');
      return;
    }
    conn.principal = principal;
    this.#scheduleExpiry(conn);
    for (const sub of [...conn.subscriptions.values()]) {
      const allowed = principal.has(Permissions.SUBSCRIBE) && (sub.agentId === null || principal.canMonitor(sub.agentId));
      if (allowed) continue;
      this.#removeSubscription(conn, sub);
      conn.sendJson({ type: 'subscription_revoked', data: { subscription_type: sub.type, agent_id: sub.agentId, reason: 'permission removed by token refresh' }, timestamp: isoNow() });
    }
    const expiresAt = principal.expiresAt === undefined ? null : new Date(principal.expiresAt * 1000).toISOString();
    conn.sendJson(reply('token_refreshed', { expires_at: expiresAt }, requestId));
    this.#subscriptionsChanged(conn);
  }

  // ---- publishing and fan-out --------------------------------------------

  /** Publishes validated events in order; resolves to one result per event. */
  async publish(events: readonly PublishEvent[]): Promise<PublishResult[]> {
    const results: PublishResult[] = [];
    for (const event of events) {
      const stream = streamOf(event);
      const pub = await this.broker.publish(stream, envelope(event), event.idempotency_key);
      if (pub.duplicate !== true) this.metrics?.publications.inc({ type: event.type });
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
    const state: FanOut = { event, stream: pub.stream, seq, frame: undefined, json: pub.json, count: 0 };
    if (event.type === 'user_notification') {
      const conns = this.#byUser.get(pub.stream.slice('user:'.length));
      if (conns) for (const conn of conns) this.#sendTo(conn, state);
      return state.count;
    }
    const agentId = event.agent_id;
    // The permission string is built once per publication, not once per recipient.
    const monitorKey = agentId === undefined ? undefined : monitorPermission(agentId);
    if (agentId !== undefined) this.#fanOut(this.#index.forAgent(event.type, agentId), state, agentId, monitorKey);
    this.#fanOut(this.#index.forAllAgents(event.type), state, agentId, monitorKey);
    return state.count;
  };

  #fanOut(subs: ReadonlySet<Subscription<Connection>>, state: FanOut, agentId: string | undefined, monitorKey: string | undefined): void {
    for (const sub of subs) {
      const conn = sub.subscriber;
      if (conn.lastDeliverySeq === state.seq) continue;
      // Permission is re-checked at delivery: all-agent subscriptions rely on it,
      // and a refreshed token may have narrowed what this connection may see.
      if (agentId !== undefined && !conn.principal.canMonitor(agentId, monitorKey)) continue;
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
    if (!conn.isOpen) return;
    conn.lastDeliverySeq = state.seq;
    state.frame ??= Buffer.from(state.json ?? JSON.stringify(state.event));
    if (conn.sendEvent(state.frame, state.stream, state.event)) state.count++;
  }

  /**
   * The engine lost events of a stream that history cannot replay (a gap
   * after a Redis outage, an expired stream). Every local connection that
   * follows the stream is told, with the same meaning as `recovered: false`:
   * reload. Its position moves to where the stream now is.
   */
  readonly onLoss = (stream: string, position: StreamPosition): void => {
    this.metrics?.streamLosses.inc();
    const agentId = stream.startsWith('agent:') ? stream.slice('agent:'.length) : null;
    const frame = Buffer.from(JSON.stringify({
      type: 'recovery_failed',
      data: { stream, agent_id: agentId, offset: position.offset, epoch: position.epoch, reason: 'events of this stream were lost and cannot be replayed; reload' },
      timestamp: isoNow(),
    }));
    for (const conn of this.connections.values()) {
      if (!this.#follows(conn, stream, agentId)) continue;
      conn.advance(stream, position.offset, position.epoch);
      conn.send(frame);
    }
  };

  #follows(conn: Connection, stream: string, agentId: string | null): boolean {
    if (stream.startsWith('user:')) return stream === `user:${conn.userId}`;
    if (agentId !== null && !conn.principal.canMonitor(agentId)) return false;
    for (const sub of conn.subscriptions.values()) if (subscriptionFollows(sub.type, sub.agentId, stream)) return true;
    return false;
  }

  // ---- views -------------------------------------------------------------

  /** The registry entry this node writes every nodeTtl / 3 seconds. */
  nodeReport(local: HealthSnapshot = this.health()): NodeReport {
    const { status: _s, timestamp: _t, heartbeat_running: _h, heartbeat_interval: _i, heartbeat_timeout: _o, ...counters } = local;
    return { node_id: this.broker.nodeId, address: this.address, started_at: this.startedAt, reported_at: Date.now(), counters };
  }

  /**
   * /ws/health across the cluster: the ESCAI counters summed over live nodes
   * (this node's own figures live, the others' as last reported), plus each node's.
   */
  async clusterHealth(): Promise<HealthSnapshot & { engine: string; node_id: string; nodes: NodeReport[] }> {
    const local = this.health();
    const self = this.nodeReport(local);
    let nodes: NodeReport[];
    try {
      nodes = (await this.broker.nodes()).filter((n) => n.node_id !== self.node_id);
    } catch {
      nodes = []; // engine unreachable: report this node alone (readyz says why)
    }
    nodes.unshift(self);
    const sum = (key: string) => nodes.reduce((total, n) => total + (n.counters[key] ?? 0), 0);
    const active = sum('active_connections');
    const max = sum('max_connections');
    return {
      ...local,
      status: active === 0 ? 'idle' : active >= max * 0.9 ? 'near_capacity' : 'healthy',
      max_connections: max,
      active_connections: active,
      total_connections_ever: sum('total_connections_ever'),
      active_users: sum('active_users'),
      total_subscriptions: sum('total_subscriptions'),
      messages_sent: sum('messages_sent'),
      messages_received: sum('messages_received'),
      agent_subscribers: sum('agent_subscribers'),
      engine: this.engineName,
      node_id: this.broker.nodeId,
      nodes,
    };
  }

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
  readonly stream: string;
  readonly seq: number;
  frame: Buffer | undefined;
  /** The engine's JSON text of the event, if it has one. */
  readonly json: string | undefined;
  count: number;
}

/** A reply frame: {type, data, timestamp[, id]}. */
export function reply(type: string, data: unknown, requestId: RequestId): Record<string, unknown> {
  return requestId === undefined ? { type, data, timestamp: isoNow() } : { type, data, timestamp: isoNow(), id: requestId };
}

/** setTimeout at an absolute time, safe past the 24.8-day limit of a single timer. */
function timerAt(atMs: number, fn: () => void): NodeJS.Timeout {
  const MAX = 2 ** 31 - 1;
  const delay = Math.max(0, atMs - Date.now());
  const timer = delay > MAX ? setTimeout(() => timerAt(atMs, fn), MAX) : setTimeout(fn, delay);
  timer.unref();
  return timer;
}

/** The subscription as replies show it. */
export function describeSubscription(sub: Subscription): { type: SubscriptionType; agent_id: string | null; filters: Record<string, unknown> | null } {
  return { type: sub.type, agent_id: sub.agentId, filters: sub.filters };
}
