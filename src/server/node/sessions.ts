// Sessions: what a connection leaves behind for a reconnect with the same
// session id, on any node. Saved while the connection lives (positions a
// pong confirmed, so a dead node's clients resume elsewhere) and when it
// ends; taken, atomically, by the next handshake of that user and id; and
// resumed: subscriptions restored, everything missed replayed before
// anything live.
import type { Logger } from 'pino';
import type { Config } from '../../config/config.js';
import type { Broker, DeliveredEvent, StreamPosition } from '../../engine/broker.js';
import { savedSubscriptionKey, type SavedSubscription, type SessionPatch, type SessionState, type SessionStore } from '../../engine/sessions.js';
import {
  agentOfStream,
  subscriptionKey,
  subscriptionStream,
  subscriptionWildcard,
  userStream,
  wildcardPrefix,
  type StreamWildcard,
} from '../../protocol/constants.js';
import { ServerMessages, type ConnectionEstablished } from '../../protocol/server-messages.js';
import type { Connection } from '../connection/connection.js';
import type { FanOut } from '../delivery/fanout.js';
import type { Metrics } from '../http/metrics.js';
import type { KeyedBuckets } from '../edge/limits.js';
import { collectReplay, REPLAY_LIMITS, type ReplayPlan } from '../delivery/replay.js';
import type { ConnectionRegistry } from './registry.js';
import type { SubscriptionManager } from '../delivery/subscription-manager.js';
import type { Subscription, SubscriptionIndex } from '../delivery/subscription-index.js';

export interface SessionDeps {
  config: Pick<Config, 'sessionTtl' | 'heartbeatInterval' | 'heartbeatTimeout' | 'maxSessionsPerUser'>;
  nodeId: string;
  store: SessionStore;
  broker: Pick<Broker, 'history' | 'streamsActiveSince'>;
  registry: ConnectionRegistry;
  index: SubscriptionIndex<Connection>;
  subscriptions: SubscriptionManager;
  fanout: Pick<FanOut, 'wants'>;
  metrics: Pick<Metrics, 'recoveries'>;
  replayBudget: KeyedBuckets;
  log: Logger;
}

/** Streams whose positions a session keeps (the most recent ones first to go are the oldest tracked). */
export const MAX_SESSION_STREAMS = 2000;

function savedOf(sub: Subscription<Connection>): SavedSubscription {
  return {
    type: sub.type,
    agent_id: sub.agentId,
    filters: sub.filters,
    created_at: sub.createdAt,
    ...(sub.start ? { start: [sub.start.offset, sub.start.epoch] as [number, string] } : {}),
    // Conditions on change resume where they were (bounded: CHANGE_STATE_LIMITS.savedAgents agents).
    ...(sub.changes && sub.changes.size > 0 ? { state: sub.changes.save() } : {}),
  };
}

function positionsOf(positions: ReadonlyMap<string, StreamPosition>): SessionState['positions'] {
  const all = [...positions].map(([stream, pos]): [string, number, string] => [stream, pos.offset, pos.epoch]);
  return all.length > MAX_SESSION_STREAMS ? all.slice(-MAX_SESSION_STREAMS) : all;
}

export class SessionKeeper {
  readonly #deps: SessionDeps;
  /** Per connection, what its live record holds: the subscriptions written, and when it was last written. */
  readonly #live = new WeakMap<Connection, { subscriptions: readonly string[]; savedAt: number }>();
  /** Connections whose session a newer connection took over: they must not park it again. */
  readonly #takenOver = new WeakSet<Connection>();

  constructor(deps: SessionDeps) {
    this.#deps = deps;
  }

  get enabled(): boolean {
    return this.#deps.config.sessionTtl > 0;
  }

  /** Milliseconds a live record must outlast a silent death: the heartbeat needs interval + timeout to notice it. */
  get #liveTtlMs(): number {
    const { sessionTtl, heartbeatInterval, heartbeatTimeout } = this.#deps.config;
    return (sessionTtl + heartbeatInterval + heartbeatTimeout) * 1000;
  }

  /**
   * The parked session of this user with this id, if any (another user's
   * never: the key includes the user). When a connection of this node still
   * holds it, that one is probed: a peer that answers is a second client
   * using the same id (the newcomer starts fresh); one that does not is the
   * same client's dead connection, which is terminated and taken over.
   */
  async take(userId: string, sessionId: string): Promise<SessionState | undefined> {
    const { store, nodeId, registry, config } = this.#deps;
    if (!this.enabled) return undefined;
    const session = await store.take(userId, sessionId);
    const holder = session?.live?.node_id === nodeId ? registry.get(session.live.connection_id) : undefined;
    if (session && holder?.isOpen) {
      if (await holder.probe(Math.min(1000, config.heartbeatTimeout * 1000))) {
        await store.save(session, this.#liveTtlMs, config.maxSessionsPerUser);
        return undefined;
      }
      this.#takenOver.add(holder);
      holder.terminate();
    }
    return session;
  }

  /** Puts back a session a refused handshake had taken. */
  giveBack(session: SessionState): void {
    const { store, config } = this.#deps;
    store.save(session, config.sessionTtl * 1000, config.maxSessionsPerUser).catch(() => {});
  }

  /**
   * The live record, saved as the connection goes so that a dead node's
   * clients can resume elsewhere: written whole once, then only what changed
   * (a subscription added or removed).
   */
  saveLive(conn: Connection): void {
    // A handler finishing after the connection left must not overwrite the record its close wrote.
    if (!this.enabled || this.#takenOver.has(conn) || !this.#deps.registry.has(conn)) return;
    const record = this.#live.get(conn);
    if (!record) {
      this.#saveWhole(conn, true);
      return;
    }
    const current = new Map([...this.#deps.index.of(conn)].map((sub) => [subscriptionKey(sub.type, sub.agentId), sub]));
    const changes: Record<string, SavedSubscription | null> = {};
    for (const [key, sub] of current) if (!record.subscriptions.includes(key)) changes[key] = savedOf(sub);
    for (const key of record.subscriptions) if (!current.has(key)) changes[key] = null;
    // An array, not a Set: a connection holds few subscriptions, and every live connection keeps one of these.
    record.subscriptions = [...current.keys()];
    this.#patch(conn, record, { subscriptions: changes });
  }

  /** On a pong: write the positions it confirmed; otherwise renew the live record every half TTL. */
  pong(conn: Connection, confirmed: boolean): void {
    if (!this.enabled || this.#takenOver.has(conn) || !this.#deps.registry.has(conn)) return;
    const record = this.#live.get(conn);
    const renewMs = (this.#deps.config.sessionTtl * 1000) / 2;
    if (!record) {
      if (confirmed) this.#saveWhole(conn, true);
      return;
    }
    if (confirmed) this.#patch(conn, record, { positions: positionsOf(conn.confirmedPositions) });
    else if (Date.now() - record.savedAt > renewMs) this.#patch(conn, record, {});
  }

  /** The final record of a closed connection: where its resume should start. */
  park(conn: Connection): void {
    if (!this.enabled || this.#takenOver.has(conn)) return;
    this.#live.delete(conn);
    this.#saveWhole(conn, false);
  }

  #saveWhole(conn: Connection, live: boolean): void {
    const { store, config, index, nodeId, log } = this.#deps;
    const subscriptions = [...index.of(conn)].map(savedOf);
    const state: SessionState = {
      userId: conn.userId,
      sessionId: conn.sessionId,
      startedAt: conn.sessionStartedAt,
      detachedAt: Date.now(),
      subscriptions,
      positions: positionsOf(live ? conn.confirmedPositions : conn.resumePositions()),
    };
    if (live) state.live = { node_id: nodeId, connection_id: conn.id };
    const ttlMs = live ? this.#liveTtlMs : config.sessionTtl * 1000;
    const written = store.save(state, ttlMs, config.maxSessionsPerUser);
    if (live) {
      // Patches follow only once the whole record is there.
      const keys = subscriptions.map((sub) => savedSubscriptionKey(sub));
      written.then(
        () => {
          if (this.#deps.registry.has(conn) && !this.#live.has(conn)) this.#live.set(conn, { subscriptions: keys, savedAt: Date.now() });
        },
        () => {},
      );
    }
    written.catch((err: unknown) => log.warn({ err, userId: conn.userId }, 'could not save session'));
  }

  #patch(conn: Connection, record: { savedAt: number }, patch: Pick<SessionPatch, 'subscriptions' | 'positions'>): void {
    const { store, nodeId, log } = this.#deps;
    record.savedAt = Date.now();
    const full: SessionPatch = { startedAt: conn.sessionStartedAt, detachedAt: record.savedAt, live: { node_id: nodeId, connection_id: conn.id }, ...patch };
    store.patch(conn.userId, conn.sessionId, full, this.#liveTtlMs).catch((err: unknown) => log.warn({ err, userId: conn.userId }, 'could not update session'));
  }

  /**
   * Resumes `session` on `conn` (output held meanwhile): restores its
   * subscriptions, replays what it missed, then sends the welcome, the
   * replay, and whatever arrived live meanwhile, without duplicates.
   */
  async resume(conn: Connection, session: SessionState, welcome: ConnectionEstablished): Promise<void> {
    const { broker, subscriptions, fanout, index, log } = this.#deps;
    conn.hold();
    try {
      const dropped = await subscriptions.restore(conn, session.subscriptions);
      const known = new Map<string, StreamPosition>(session.positions.map(([stream, offset, epoch]) => [stream, { offset, epoch }]));
      conn.setConfirmedBase(known);
      const subs = [...index.of(conn)];
      const wants = (event: DeliveredEvent, byTime: boolean): boolean => {
        if (event.type === 'user_notification') return !byTime || Date.parse(event.timestamp) >= session.startedAt;
        // Every subscription judges the event, as the live fan-out does (conditions on change move their state
        // on each event they see): no stopping at the first that wants it. On a stream replayed by time, a
        // subscription made after the event would not have seen it live, so it does not judge it either.
        let wanted = false;
        for (const sub of subs) if ((!byTime || Date.parse(event.timestamp) >= sub.createdAt) && fanout.wants(conn, sub, event)) wanted = true;
        return wanted;
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
      const unknown = new Map<string, number>();
      // All-agents subscriptions, per stream family (agent streams, activity streams): the streams active since the oldest.
      const sinceByFamily = new Map<StreamWildcard, number>();
      for (const sub of subs) {
        if (sub.agentId !== null || sub.type === 'system_alerts') continue;
        const wildcard = subscriptionWildcard(sub.type);
        sinceByFamily.set(wildcard, Math.min(sinceByFamily.get(wildcard) ?? Number.POSITIVE_INFINITY, sub.createdAt));
      }
      for (const [wildcard, since] of sinceByFamily) {
        for (const stream of await broker.streamsActiveSince(wildcardPrefix(wildcard), since)) {
          // Only agents this user may see: others can neither be replayed nor count as lost.
          const agentId = agentOfStream(stream);
          if (!known.has(stream) && agentId !== null && conn.principal.canMonitor(agentId)) unknown.set(stream, since);
        }
      }
      for (const sub of subs) {
        const stream = subscriptionStream(sub.type, sub.agentId);
        if (stream && !known.has(stream) && !unknown.has(stream)) unknown.set(stream, sub.createdAt);
      }
      const ownStream = userStream(conn.userId);
      if (!known.has(ownStream)) unknown.set(ownStream, session.startedAt);
      for (const [stream, notBefore] of unknown) plans.push({ stream, notBefore, wants: (e) => wants(e, true) });
      const replay = await collectReplay(broker, plans);
      if (conn.state === 'closed') return; // left during the replay: its close parked the session as restored
      const hello = ServerMessages.connectionEstablished({
        ...welcome,
        resumed: true,
        recovered: replay.recovered,
        subscriptions: subscriptions.describe(conn),
        ...(dropped.length > 0 ? { dropped_subscriptions: dropped } : {}),
      });
      conn.release([{ frame: JSON.stringify(hello) }, ...replay.frames], replay.ids, replay.positions);
      // A resume's replay is charged to the user's budget but never refused for it (handshake limits pace resumes).
      if (replay.eventsRead > 0) this.#deps.replayBudget.take(conn.userId, Math.min(replay.eventsRead, REPLAY_LIMITS.events));
      this.#deps.metrics.recoveries.inc({ kind: 'resume', outcome: replay.recovered ? 'recovered' : 'lost' });
      const level = replay.recovered ? 'debug' : 'info';
      log[level]({ connectionId: conn.id, userId: conn.userId, replayed: replay.frames.length, recovered: replay.recovered }, 'session resumed');
    } catch (err) {
      log.error({ err, connectionId: conn.id }, 'session resume failed');
      const hello = ServerMessages.connectionEstablished({ ...welcome, resumed: true, recovered: false, subscriptions: subscriptions.describe(conn) });
      conn.release([{ frame: JSON.stringify(hello) }]);
    }
  }
}
