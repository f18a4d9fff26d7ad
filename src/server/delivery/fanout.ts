// Fan-out: what the engine hands over goes to every local connection that may
// and wants to see it. Holds the one answer to "does this subscription want
// this event" (used live, in replays and in session resume) and "does this
// connection follow this stream" (loss routing). A publication is serialized
// at most once and the same bytes go to every recipient.
import type { Logger } from 'pino';
import { monitorPermission } from '../../auth/permissions.js';
import type { DeliveredEvent, StreamPosition } from '../../engine/broker.js';
import { agentOfStream, subscriptionFollows, userOfStream } from '../../protocol/constants.js';
import { ServerMessages } from '../../protocol/server-messages.js';
import type { ConflationSink, Conflator } from '../../filters/conflation.js';
import type { Connection } from '../connection/connection.js';
import type { NodeCounters } from '../node/counters.js';
import type { Metrics } from '../http/metrics.js';
import type { ConnectionRegistry } from '../node/registry.js';
import type { Subscription, SubscriptionIndex } from './subscription-index.js';

/** How long a publisher waits for its own event to reach this node's subscribers. */
const LOCAL_DELIVERY_WAIT_MS = 2000;

/** A publisher waiting for one event's local delivery. */
export interface DeliveryWait {
  /** Recipients on this node (0 when it did not arrive within the wait). */
  readonly recipients: Promise<number>;
  cancel(): void;
}

interface FanOutState {
  readonly stream: string;
  readonly event: DeliveredEvent;
  readonly seq: number;
  frame: Buffer | undefined;
  readonly json: string | undefined;
  count: number;
  /** `$max_rate` subscriptions that want the event: decided once every other subscription was served. */
  conflated: Array<Subscription<Connection>> | undefined;
}

export class FanOut {
  readonly #registry: ConnectionRegistry;
  readonly #index: SubscriptionIndex<Connection>;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #waits = new Map<string, (recipients: number) => void>();
  #seq = 0;

  readonly #counters: NodeCounters;

  constructor(deps: { registry: ConnectionRegistry; index: SubscriptionIndex<Connection>; log: Logger; metrics: Metrics; counters: NodeCounters }) {
    this.#registry = deps.registry;
    this.#index = deps.index;
    this.#log = deps.log;
    this.#metrics = deps.metrics;
    this.#counters = deps.counters;
  }

  /**
   * Would this subscription deliver this event to its connection? Type,
   * agent, position (nothing at or before the offset its confirmation named:
   * on a cluster an event published before the position was read can still
   * be on its way), permission (re-checked per event: all-agents
   * subscriptions rely on it, and a refreshed token may have narrowed it),
   * then the filter. A filter that throws skips only this subscription.
   * `monitorKey` is the agent's permission string when the caller built it
   * once for many checks.
   */
  wants(conn: Connection, sub: Subscription, event: DeliveredEvent, monitorKey?: string): boolean {
    if (sub.eventType !== event.type) return false;
    const agentId = event.agent_id;
    if (sub.agentId !== null && sub.agentId !== agentId) return false;
    const start = sub.start;
    if (start !== undefined && event.offset <= start.offset && event.epoch === start.epoch) return false;
    if (agentId !== undefined && !conn.principal.canMonitor(agentId, monitorKey)) return false;
    try {
      // Filters with conditions on change judge every event that reaches them (issue 12: ./change-state.ts).
      return sub.changes === undefined ? sub.match(event) : sub.changes.judge(event, sub.match(event));
    } catch (err) {
      this.#log.error({ err, connectionId: conn.id }, 'filter failed; event skipped for this subscription');
      return false;
    }
  }

  /** Does this connection receive events of `stream` at all? (any of its subscriptions, permission included) */
  follows(conn: Connection, stream: string): boolean {
    const user = userOfStream(stream);
    if (user !== null) return user === conn.userId;
    const agentId = agentOfStream(stream);
    if (agentId !== null && !conn.principal.canMonitor(agentId)) return false;
    for (const sub of this.#index.of(conn)) if (subscriptionFollows(sub.type, sub.agentId, stream)) return true;
    return false;
  }

  /** Whether a local connection may receive events of `stream` (so its events will reach `deliver`). */
  interested(stream: string): boolean {
    const user = userOfStream(stream);
    if (user !== null) return this.#registry.ofUser(user) !== undefined;
    return this.#index.follows(stream);
  }

  /**
   * Waits for the local delivery of the event `eventId` (register before
   * publishing: the in-memory engine delivers inside `publish`).
   */
  expect(eventId: string): DeliveryWait {
    let done!: (recipients: number) => void;
    const recipients = new Promise<number>((resolve) => {
      const timer = setTimeout(() => done(0), LOCAL_DELIVERY_WAIT_MS);
      timer.unref();
      done = (n) => {
        clearTimeout(timer);
        this.#waits.delete(eventId);
        resolve(n);
      };
    });
    this.#waits.set(eventId, done);
    return { recipients, cancel: () => done(0) };
  }

  /** The engine's delivery handler: one publication to every local connection that may and wants to see it. */
  readonly deliver = (stream: string, event: DeliveredEvent, json: string | undefined): void => {
    const state: FanOutState = { stream, event, seq: ++this.#seq, frame: undefined, json, count: 0, conflated: undefined };
    if (event.type === 'user_notification') {
      const conns = this.#registry.ofUser(userOfStream(stream) ?? '');
      if (conns) for (const conn of conns) this.#sendTo(conn, state);
    } else {
      const agentId = event.agent_id;
      // The permission string is built once per publication, not once per recipient.
      const monitorKey = agentId === undefined ? undefined : monitorPermission(agentId);
      if (agentId !== undefined) this.#fanOut(this.#index.forAgent(event.type, agentId), state, monitorKey);
      this.#fanOut(this.#index.forAllAgents(event.type), state, monitorKey);
      if (state.conflated !== undefined) this.#conflate(state, state.conflated);
    }
    if (state.count > 0) this.#counted(event, state.count);
    if (this.#waits.size !== 0) this.#waits.get(event.event_id)?.(state.count);
  };

  #counted(event: DeliveredEvent, count: number): void {
    this.#counters.deliveries += count;
    this.#metrics.deliveries.inc({ type: event.type }, count);
    this.#metrics.deliveryLatency.observe(Math.max(0, Date.now() - Date.parse(event.timestamp)) / 1000);
  }

  /**
   * A `$max_rate` window's end sent a held event: counted like every other
   * delivery; the connection's other windows holding it (two `$max_rate`
   * subscriptions that both wanted it) drop it, so it arrives once.
   */
  readonly conflatedSent = (event: DeliveredEvent, sink: ConflationSink, from: Conflator): void => {
    this.#counted(event, 1);
    for (const sub of this.#index.of(sink as Connection)) {
      if (sub.conflation !== undefined && sub.conflation !== from && sub.eventType === event.type) sub.conflation.superseded(event);
    }
  };

  #fanOut(subs: ReadonlySet<Subscription<Connection>>, state: FanOutState, monitorKey: string | undefined): void {
    for (const sub of subs) {
      const conn = sub.subscriber;
      if (!this.wants(conn, sub, state.event, monitorKey)) continue;
      if (sub.conflation === undefined) this.#sendTo(conn, state);
      else (state.conflated ??= []).push(sub);
    }
  }

  /**
   * `$max_rate` subscriptions that want the event (filters/conflation.ts),
   * live events only, decided after the others: a connection that already
   * got the event through an unconflated subscription gets no second copy
   * at the window's end, and an older event held for it is dropped as stale.
   * Otherwise the event goes out now or waits for its window's end.
   */
  #conflate(state: FanOutState, subs: ReadonlyArray<Subscription<Connection>>): void {
    for (const sub of subs) {
      const conn = sub.subscriber;
      if (conn.deliveredNow(state.seq)) sub.conflation!.superseded(state.event);
      else if (sub.conflation!.admit(state.stream, state.event, this.#frameOf(state))) this.#sendTo(conn, state);
    }
    // A window that held the event before another conflated subscription of the same connection sent it.
    if (subs.length > 1) for (const sub of subs) if (sub.subscriber.deliveredNow(state.seq)) sub.conflation!.superseded(state.event);
  }

  #sendTo(conn: Connection, state: FanOutState): void {
    if (!conn.isOpen || !conn.claimDelivery(state.seq)) return;
    if (conn.sendEvent(this.#frameOf(state), state.stream, state.event)) state.count++;
  }

  /** The publication's frame, made once for every recipient: a Buffer, not a string (ws would encode a string again for each). */
  #frameOf(state: FanOutState): Buffer {
    return (state.frame ??= Buffer.from(state.json ?? JSON.stringify(state.event)));
  }

  /**
   * The engine lost events of a stream that history cannot replay (a gap
   * after a Redis outage, an expired stream). Every local connection that
   * follows the stream is told, with the same meaning as `recovered: false`:
   * reload. Its position moves to where the stream now is.
   */
  readonly lost = (stream: string, position: StreamPosition): void => {
    this.#metrics.streamLosses.inc();
    const frame = Buffer.from(
      JSON.stringify(ServerMessages.recoveryFailed(stream, position, 'events of this stream were lost and cannot be replayed; reload')),
    );
    for (const conn of this.#registry.values()) {
      if (!this.follows(conn, stream)) continue;
      conn.advance(stream, position.offset, position.epoch);
      conn.send(frame);
    }
  };
}
