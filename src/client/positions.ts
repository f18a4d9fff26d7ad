// The client's delivery guarantee as a pure unit: the last position seen per
// stream and event type, which drives `since` on a resubscribe and decides
// which arriving events are duplicates. No socket, no timer: the client feeds
// it events and confirmations and asks it what to send. The Python client's
// clients/python/escai_realtime/_positions.py follows the same rules, and
// test/fixtures/client-transcript.json holds both to one transcript.
import { streamOfEvent, type EventType } from '../protocol/constants.js';
import type { DeliveredEvent, StreamPosition } from '../protocol/server-messages.js';

/** What positions need of an arriving event (a DeliveredEvent has all of it, `stream` aside). */
export interface ArrivingEvent {
  /** The stream it came on, as positions key it: `streamOf(event)`. */
  stream: string;
  type: EventType | string;
  offset?: number;
  epoch?: string;
  event_id?: string;
}

/** What a subscription confirmation says about where the subscription starts. */
export interface Confirmation {
  recovered?: boolean;
  offset?: number;
  epoch?: string;
}

export type Verdict = 'deliver' | 'duplicate';

/** Event ids remembered for de-duplication by default: a bound, so a long-lived client does not grow. */
export const DEFAULT_DEDUP_WINDOW = 10_000;

/**
 * The stream an event came on, as positions key it. A user's own
 * notifications are keyed `user`: the client does not know (nor need) its user
 * stream's full name, and it has only one.
 */
export function streamOf(event: Pick<DeliveredEvent, 'type' | 'agent_id'>): string {
  return event.type === 'user_notification' ? 'user' : streamOfEvent(event.type, event.agent_id);
}

/**
 * Last offset/epoch seen per (stream, event type), and the ids of the latest
 * events delivered. Per type, not per stream: each subscription replays only
 * its own type, so two subscriptions on one agent recover independently.
 *
 * The rules, in order:
 * - an event whose `event_id` was delivered already is a duplicate;
 * - an event at or below the position of its epoch is a duplicate;
 * - otherwise it is delivered and becomes the position (a new epoch resets it:
 *   the stream's history was lost and offsets start again);
 * - an event without offset/epoch is judged by its id only.
 *
 * @example
 * const positions = new Positions();
 * if (positions.accept({ ...event, stream: streamOf(event) }) === 'deliver') emit(event);
 * send({ type: 'subscribe', data: { type, agent_id, since: positions.since('agent:a1', 'epistemic_update') } });
 */
export class Positions {
  readonly #seen = new Map<string, StreamPosition>();
  /** Delivered event ids (to their stream|type key), oldest first (a Map keeps insertion order): the window evicts from the front. */
  readonly #ids = new Map<string, string>();
  readonly #window: number;

  constructor(dedupWindow = DEFAULT_DEDUP_WINDOW) {
    if (!Number.isInteger(dedupWindow) || dedupWindow < 0) throw new RangeError(`dedupWindow must be a whole number >= 0, got ${dedupWindow}`);
    this.#window = dedupWindow;
  }

  /** The last position seen on `stream` for `type`, if any. */
  get(stream: string, type: string): StreamPosition | undefined {
    const pos = this.#seen.get(key(stream, type));
    return pos && { offset: pos.offset, epoch: pos.epoch };
  }

  /**
   * The `since` to send when (re)subscribing to `stream` for `type`: the last
   * position seen, or undefined (nothing seen, or no single stream: an
   * all-agents subscription, which only a session resume can recover).
   */
  since(stream: string | null, type: string): StreamPosition | undefined {
    return stream === null ? undefined : this.get(stream, type);
  }

  /**
   * Sets the position outright: the application's `since` (a replay it asked
   * for: the ids of that stream and type delivered before are forgotten, so
   * the replay is delivered again), or the server's `recovery_failed` (carry
   * on from there).
   */
  set(stream: string, type: string, position: StreamPosition): void {
    const k = key(stream, type);
    this.#seen.set(k, { offset: position.offset, epoch: position.epoch });
    for (const [id, of] of this.#ids) if (of === k) this.#ids.delete(id);
  }

  /** Judges an arriving event, and records it when it is delivered. */
  accept(event: ArrivingEvent): Verdict {
    const id = typeof event.event_id === 'string' ? event.event_id : undefined;
    if (id !== undefined && this.#ids.has(id)) return 'duplicate';
    const k = key(event.stream, event.type);
    if (typeof event.offset === 'number' && typeof event.epoch === 'string') {
      const seen = this.#seen.get(k);
      if (seen && seen.epoch === event.epoch && event.offset <= seen.offset) return 'duplicate';
      this.#seen.set(k, { offset: event.offset, epoch: event.epoch });
    }
    if (id !== undefined && this.#window > 0) {
      this.#ids.set(id, k);
      if (this.#ids.size > this.#window) this.#ids.delete(this.#ids.keys().next().value!);
    }
    return 'deliver';
  }

  /**
   * A subscription on `stream` was confirmed: unless a replay from our own
   * position follows (`recovered: true`), start from the confirmed position,
   * so that a drop before the first event still recovers (or reports) the gap.
   * Never backwards within an epoch: an event after the confirmation may
   * already have been handled.
   */
  confirm(stream: string | null, type: string, confirmation: Confirmation): void {
    const { recovered, offset, epoch } = confirmation;
    if (stream === null || recovered === true || typeof offset !== 'number' || typeof epoch !== 'string') return;
    const seen = this.#seen.get(key(stream, type));
    if (!seen || seen.epoch !== epoch || seen.offset < offset) this.#seen.set(key(stream, type), { offset, epoch });
  }
}

/** One position per stream and type; no event type holds a `|`, so whatever the stream name, keys cannot collide. */
function key(stream: string, type: string): string {
  return `${stream}|${type}`;
}
