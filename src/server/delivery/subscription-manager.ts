// Subscribing: the permission and validity checks of a subscription, the
// replay of what a `since` missed, the confirmation at a consistent position,
// unsubscribing, restoring a resumed session's subscriptions, and revoking
// what a refreshed token no longer allows.
import type { Logger } from 'pino';
import type { Config } from '../../config/config.js';
import type { Broker, DeliveredEvent } from '../../engine/broker.js';
import { Permissions } from '../../auth/permissions.js';
import { EscaiError } from '../../protocol/codes.js';
import { SUBSCRIPTION_TYPES, subscriptionStream, type SubscriptionType } from '../../protocol/constants.js';
import type { SubscribeData, UnsubscribeData } from '../../protocol/messages.js';
import { ServerMessages, type RequestId, type SubscriptionView } from '../../protocol/server-messages.js';
import type { SavedSubscription } from '../../engine/sessions.js';
import type { OutFrame } from '../../core/recovery-merge.js';
import type { Connection } from '../connection/connection.js';
import type { FanOut } from './fanout.js';
import type { Metrics } from '../http/metrics.js';
import { ChangeTracker } from '../../filters/change-state.js';
import { Conflator } from '../../filters/conflation.js';
import { compileSubscriptionFilter } from '../../filters/compile.js';
import type { KeyedBuckets } from '../edge/limits.js';
import { collectReplay, type Replay, type ReplayPlan } from './replay.js';
import { describeSubscription, type Subscription, type SubscriptionIndex } from './subscription-index.js';

/**
 * Bytes of filters (as JSON) one subscription, and one connection's subscriptions
 * together, may hold; and `cost`, the most the worst cases of one connection's
 * filters may add up to (each filter's is at most FILTER_LIMITS.cost): the filter
 * work one event may take on one connection, bounded at subscribe, so that many
 * cheap filters cannot add up to a stall (docs/PROTOCOL.md, Filter limits).
 */
export const FILTER_BUDGET = { perSubscription: 4096, perConnection: 65_536, cost: 16_384 } as const;

/** How far back `latest` looks for the newest event a subscription wants. */
export const LATEST_SCAN = 500;
/**
 * The filter work one `latest` may do, in cost units (FILTER_LIMITS): a
 * filter costing more looks back fewer events (LATEST_WORK / cost, at least
 * one), so that a subscribe loop cannot spend the node's CPU on scans. Every
 * filter of cost ≤ 256 (any filter without any/all/contains) looks back the
 * whole LATEST_SCAN.
 */
export const LATEST_WORK = 128_000;
/** The filter cost one replayed event is charged for in the replay budget; a costlier filter's events count for more. */
export const REPLAY_COST_UNIT = 256;

export interface SubscribeDeps {
  config: Pick<Config, 'maxSubscriptions'>;
  index: SubscriptionIndex<Connection>;
  broker: Pick<Broker, 'history' | 'position'>;
  fanout: Pick<FanOut, 'wants' | 'conflatedSent'>;
  metrics: Pick<Metrics, 'recoveries'>;
  /** Events each user may have replayed, per second (shared by all the user's connections on this node). */
  replayBudget: KeyedBuckets;
  log: Logger;
  /** A connection's subscriptions changed (admin views and the live session record follow). */
  changed(conn: Connection): void;
}

export class SubscriptionManager {
  readonly #deps: SubscribeDeps;

  constructor(deps: SubscribeDeps) {
    this.#deps = deps;
  }

  /** The connection's subscriptions as replies show them. */
  describe(conn: Connection): SubscriptionView[] {
    return [...this.#deps.index.of(conn)].map(describeSubscription);
  }

  /** Validates a subscription request against the connection's permissions and state; builds (does not add) it. */
  #build(conn: Connection, data: Pick<SubscribeData, 'type' | 'agent_id' | 'filters'>, createdAt = Date.now()): Subscription<Connection> {
    const { principal } = conn;
    const { index, config } = this.#deps;
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
    if (index.get(conn, type, agentId)) {
      throw new EscaiError('SUBSCRIPTION_EXISTS', `Already subscribed to ${type}${agentId ? ` for agent ${agentId}` : ''}`);
    }
    if (index.countOf(conn) >= config.maxSubscriptions) {
      throw new EscaiError('TOO_MANY_SUBSCRIPTIONS', `At most ${config.maxSubscriptions} subscriptions per connection`);
    }
    const filters = data.filters && Object.keys(data.filters).length > 0 ? data.filters : null;
    // Compiled first: it refuses what is not a filter, and measures what is.
    const compiled = compileSubscriptionFilter(filters);
    if (filters) {
      const bytes = compiled.bytes;
      if (bytes > FILTER_BUDGET.perSubscription) {
        throw new EscaiError('VALIDATION_ERROR', `filters: ${bytes} bytes as JSON, over the limit of ${FILTER_BUDGET.perSubscription} per subscription`);
      }
      let total = bytes;
      let cost = compiled.cost;
      for (const other of index.of(conn)) {
        total += other.filterBytes;
        cost += other.filterCost;
      }
      if (total > FILTER_BUDGET.perConnection) {
        throw new EscaiError(
          'VALIDATION_ERROR',
          `filters: the connection's filters would total ${total} bytes, over the limit of ${FILTER_BUDGET.perConnection}`,
        );
      }
      if (cost > FILTER_BUDGET.cost) {
        throw new EscaiError(
          'VALIDATION_ERROR',
          `filters: the connection's filters would cost ${cost}, over the limit of ${FILTER_BUDGET.cost} per connection (limit connection cost)`,
        );
      }
    }
    return {
      subscriber: conn,
      type,
      eventType: SUBSCRIPTION_TYPES[type],
      agentId,
      filters,
      match: compiled.match,
      filterBytes: compiled.bytes,
      filterCost: compiled.cost,
      ...(compiled.changes.length > 0 ? { changes: new ChangeTracker(compiled.changes) } : {}),
      ...(compiled.maxRate !== undefined ? { conflation: new Conflator(conn, compiled.maxRate, this.#deps.fanout.conflatedSent) } : {}),
      createdAt,
    };
  }

  /**
   * Adds a subscription and sends `subscription_confirmed` (with the stream's
   * position and `recovered`), then, when `since` was given and the position
   * is still in history, every missed event that passes the subscription,
   * then live events: live events are held meanwhile and merged without gap
   * or duplicate.
   */
  async subscribe(conn: Connection, data: SubscribeData, requestId: RequestId | undefined): Promise<void> {
    const { index, broker, fanout } = this.#deps;
    const sub = this.#build(conn, data);
    const stream = subscriptionStream(sub.type, sub.agentId);
    const since = data.since ?? undefined;
    if (stream === null && since) {
      throw new EscaiError('VALIDATION_ERROR', 'data.since: recovery needs a single stream (an agent_id, or system_alerts)');
    }
    if (stream === null && data.latest) {
      throw new EscaiError('VALIDATION_ERROR', 'data.latest: needs a single stream (an agent_id, or system_alerts)');
    }
    const confirmation: ReturnType<typeof ServerMessages.subscriptionConfirmed>['data'] = {
      subscription_type: sub.type,
      agent_id: sub.agentId,
      filters: sub.filters,
      recovered: false,
    };
    // Held from here: nothing live may overtake the confirmation (or the replay).
    conn.hold();
    let replay: Replay | undefined;
    let latestFrame: OutFrame | undefined;
    try {
      await index.add(sub);
      if (stream !== null) {
        const plan: ReplayPlan = { stream, wants: (event) => fanout.wants(conn, sub, event) };
        if (since) plan.since = since;
        // A user's replays share a budget: a loop of `subscribe since:0` cannot take the node's bandwidth nor
        // its CPU. Asked before the read (a spent budget reads nothing), charged after it by what was read,
        // weighed by the filter run on each event (REPLAY_COST_UNIT units count as one event).
        const withinBudget = !since || this.#deps.replayBudget.available(conn.userId);
        replay = await collectReplay(broker, since && withinBudget ? [plan] : []);
        if (replay.eventsRead > 0) this.#deps.replayBudget.spend(conn.userId, Math.ceil(replay.eventsRead * Math.max(1, sub.filterCost / REPLAY_COST_UNIT)));
        let position = replay.positions.get(stream) ?? (await broker.position(stream));
        const recovered = since !== undefined && replay.recovered && withinBudget;
        if (since) {
          const outcome = recovered ? 'recovered' : withinBudget ? 'lost' : 'limited';
          this.#deps.metrics.recoveries.inc({ kind: 'subscribe', outcome });
          if (!recovered) this.#deps.log.info({ connectionId: conn.id, userId: conn.userId, stream, since, outcome }, 'subscribe: recovered false');
        }
        let confirmedOffset = position.offset;
        if (!recovered) {
          const newest = data.latest ? await this.#latest(conn, sub, stream, position.offset) : undefined;
          // Events of the stream already held for this connection come after the confirmed position, whatever the race.
          const firstHeld = conn.firstHeldOffset(stream, position.epoch);
          if (firstHeld !== undefined && firstHeld <= position.offset) position = { offset: firstHeld - 1, epoch: position.epoch };
          confirmedOffset = position.offset;
          // The latest event goes right after the confirmation, which names the offset just before it
          // (nothing in between is for this subscription); a held copy of it is sent as held instead.
          if (newest && newest.epoch === position.epoch && newest.offset <= position.offset) {
            latestFrame = { frame: JSON.stringify({ ...newest, latest: true }), stream, event: newest };
            confirmedOffset = newest.offset - 1;
            // The current state the client now holds: what conditions on change judge the next event against.
            // Seeded only where no live event was judged meanwhile (it is newer: the subscription was indexed first).
            sub.changes?.seed(newest);
          }
        }
        // The subscription starts here: nothing at or before it is delivered live, and a resume before its first event replays from here.
        sub.start = position;
        Object.assign(confirmation, { recovered, offset: confirmedOffset, epoch: position.epoch });
      }
    } catch (err) {
      index.remove(sub);
      conn.release([]);
      throw err;
    }
    if (conn.state === 'closed') return;
    const reply = { frame: JSON.stringify(ServerMessages.subscriptionConfirmed(confirmation, requestId)) };
    if (since && confirmation.recovered && replay) conn.release([reply, ...replay.frames], replay.ids, replay.positions);
    else conn.release(latestFrame ? [reply, latestFrame] : [reply]);
    this.#deps.changed(conn);
  }

  /**
   * The newest event at or before `upTo` among the last LATEST_SCAN of the
   * stream that the subscription wants. Conditions on change are left out:
   * the scan runs newest first, and `latest` asks for the current state.
   */
  async #latest(conn: Connection, sub: Subscription<Connection>, stream: string, upTo: number): Promise<DeliveredEvent | undefined> {
    const limit = Math.max(1, Math.min(LATEST_SCAN, Math.floor(LATEST_WORK / Math.max(1, sub.filterCost))));
    const page = await this.#deps.broker.history(stream, { order: 'desc', before: upTo + 1, limit });
    const stateless: Subscription<Connection> = sub.changes === undefined ? sub : { ...sub, changes: undefined };
    return page.events.find((event) => this.#deps.fanout.wants(conn, stateless, event));
  }

  /** Removes exactly one subscription (SUBSCRIPTION_NOT_FOUND when there is none). */
  unsubscribe(conn: Connection, data: UnsubscribeData): void {
    const agentId = data.agent_id ?? null;
    const sub = this.#deps.index.get(conn, data.subscription_type, agentId);
    if (!sub) {
      throw new EscaiError('SUBSCRIPTION_NOT_FOUND', `No subscription to ${data.subscription_type}${agentId ? ` for agent ${agentId}` : ''}`);
    }
    this.#deps.index.remove(sub);
    this.#deps.changed(conn);
  }

  /**
   * Re-creates a resumed session's subscriptions under the connection's
   * (possibly new) token. Resolves to the ones it no longer allows, each with
   * the reason, once the engine delivers every restored stream here.
   */
  async restore(conn: Connection, saved: readonly SavedSubscription[]): Promise<string[]> {
    const dropped: string[] = [];
    const following: Array<Promise<void>> = [];
    for (const entry of saved) {
      try {
        const sub = this.#build(conn, { type: entry.type, agent_id: entry.agent_id, filters: entry.filters }, entry.created_at);
        if (entry.start) sub.start = { offset: entry.start[0], epoch: entry.start[1] };
        if (entry.state) sub.changes?.restore(entry.state);
        following.push(this.#deps.index.add(sub));
      } catch (err) {
        dropped.push(`${entry.type}${entry.agent_id ? `/${entry.agent_id}` : ''}: ${(err as Error).message}`);
      }
    }
    await Promise.all(following);
    return dropped;
  }

  /** Removes the subscriptions the connection's (refreshed) token no longer allows, announcing each. */
  revokeDisallowed(conn: Connection): void {
    const { principal } = conn;
    for (const sub of [...this.#deps.index.of(conn)]) {
      const allowed = principal.has(Permissions.SUBSCRIBE) && (sub.agentId === null || principal.canMonitor(sub.agentId));
      if (allowed) continue;
      this.#deps.index.remove(sub);
      conn.sendMessage(ServerMessages.subscriptionRevoked(sub.type, sub.agentId, 'permission removed by token refresh'));
    }
  }
}
