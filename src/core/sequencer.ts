// The per-stream sequencer: turns one stream's events, as they arrive from a
// transport that may lose, repeat or reorder them (Redis pub/sub), into
// delivery in offset order, each event once, with gaps filled from history
// and losses history cannot cover reported. Pure: no sockets, no timers, no
// clock. It is fed arrivals and answers what to do with each; when a gap
// needs filling it says so, the caller reads history after `fillSince` and
// hands the page back to `filled`, then `drain`s what queued meanwhile.
//
//   const seq = new StreamSequencer<Event>({ offset: 0, epoch });
//   switch (seq.push(event)) {
//     case 'deliver': send(event); break;
//     case 'fill': startFill(); break;          // read history(since: seq.fillSince)
//     case 'queued': break;                     // behind a running fill
//     default: count the drop (duplicate, stale_epoch, overflow)
//   }
//
// The shape follows centrifuge's PubSubSync (internal/recovery/sync.go):
// the guarantee is a unit of its own, the I/O class only calls it.
import type { StreamPosition } from '../protocol/server-messages.js';

/** What the sequencer needs of an event: where it stands in its stream. */
export interface Sequenced {
  offset: number;
  epoch: string;
}

/** A history read as the sequencer consumes it (structurally the engine's HistoryPage). */
export interface FillPage<E extends Sequenced> {
  /** Events after the `since` asked for, oldest first. */
  events: readonly E[];
  /** The stream's position when it was read. */
  position: StreamPosition;
  /** False when history no longer held every event after `since`. */
  complete: boolean;
}

/** The epoch of a stream tracked before it had one (never published to): adopted from its first event. */
export const UNKNOWN_EPOCH = '';

/** Why an arrival was not delivered and will not be. */
export type SequencerDrop =
  /** Its offset was already delivered (e.g. the live copy of an event a fill delivered). */
  | 'duplicate'
  /** It belongs to the epoch a reset left behind (published before the stream's history was lost). */
  | 'stale_epoch'
  /** Queued behind a fill past the cap: the oldest queued went (the next fill reads it from history). */
  | 'overflow';

/**
 * What to do with one arrival: deliver it now; nothing (queued behind a
 * running fill); start a fill (it is queued, and a gap is before it); or a
 * drop. 'overflow' means the arrival was queued and the oldest queued one
 * dropped instead.
 */
export type Verdict = 'deliver' | 'queued' | 'fill' | SequencerDrop;

/** The outcome of a fill's history page. */
export interface FillResult<E extends Sequenced> {
  /** Set when events were lost for good (a gap history no longer covers, or a reset): the position delivery resumes after. */
  lost: StreamPosition | undefined;
  /** Events to deliver now, in order (after reporting `lost`). */
  deliver: E[];
  /** Page events that were not the next offset (already delivered): dropped as duplicates. */
  skipped: number;
}

/** The outcome of replaying what queued behind a fill. */
export interface Drained<E extends Sequenced> {
  deliver: E[];
  drops: SequencerDrop[];
  /** A gap showed in what queued: start another fill. */
  fill: boolean;
}

export interface SequencerOptions {
  /** Arrivals queued behind a fill; past it the oldest go (default 10,000). */
  maxQueued?: number;
}

/** Arrivals queued behind a gap fill; the queue only saves round trips, a fill reads what it lost. */
const MAX_QUEUED = 10_000;

/** Past epochs remembered per stream (each a reset, or an older epoch a fill exposed). */
const MAX_PAST_EPOCHS = 8;

export class StreamSequencer<E extends Sequenced> {
  /** The last offset delivered (or the position tracking started at). */
  #offset: number;
  #epoch: string;
  /**
   * Epochs known to be past (the one before each reset, and any a fill
   * proved older than the store's): late arrivals of them are stale, not
   * another reset. Bounded: the oldest is forgotten first.
   */
  readonly #pastEpochs = new Set<string>();
  /** The epoch of the arrival that started the running fill, when it was not ours. */
  #fillCause: string | undefined;
  /** A fill is running: arrivals queue behind it. */
  #filling = false;
  readonly #queue: E[] = [];
  /** Offset the stream stood at on the previous quiet-stream check, while we were behind it. */
  #suspect: number | undefined;
  /** The fill's last page was of another epoch: the next read is the new epoch from its start. */
  #reset = false;
  readonly #maxQueued: number;

  /** Starts tracking at `position`: the next event delivered is `position.offset + 1`. */
  constructor(position: StreamPosition, options: SequencerOptions = {}) {
    this.#offset = position.offset;
    this.#epoch = position.epoch;
    this.#maxQueued = options.maxQueued ?? MAX_QUEUED;
  }

  /** Where delivery stands: the last offset delivered and its epoch. */
  get position(): StreamPosition {
    return { offset: this.#offset, epoch: this.#epoch };
  }

  /** A fill is running (started by a 'fill' verdict or a `check`), until `filled` answers. */
  get filling(): boolean {
    return this.#filling;
  }

  /** Arrivals waiting behind the running fill. */
  get queued(): number {
    return this.#queue.length;
  }

  /** The `since` of the history read a running fill needs. */
  get fillSince(): number {
    return this.#reset ? 0 : this.#offset;
  }

  /** One arrival: what to do with it (see Verdict). */
  push(event: E): Verdict {
    if (this.#pastEpochs.size > 0 && this.#pastEpochs.has(event.epoch)) return 'stale_epoch';
    if (this.#filling) {
      let verdict: Verdict = 'queued';
      if (this.#queue.length >= this.#maxQueued) {
        this.#queue.shift();
        verdict = 'overflow';
      }
      this.#queue.push(event);
      return verdict;
    }
    // The stream's first event, when it was tracked before it had an epoch.
    if (this.#epoch === UNKNOWN_EPOCH && this.#offset === 0 && event.offset === 1) this.#epoch = event.epoch;
    if (event.epoch === this.#epoch) {
      if (event.offset <= this.#offset) return 'duplicate';
      if (event.offset === this.#offset + 1) {
        this.#offset = event.offset;
        this.#suspect = undefined;
        return 'deliver';
      }
    }
    // A gap, or a new epoch (the stream was reset, its history lost): the fill sorts out which.
    this.#filling = true;
    this.#fillCause = event.epoch === this.#epoch ? undefined : event.epoch;
    this.#queue.push(event);
    return 'fill';
  }

  /**
   * A quiet-stream check: the stream's position as the store has it now
   * (`epoch` undefined: the store has no record of it). Behind it at two
   * checks in a row (or at once when `immediate`, after a reconnect) means
   * a lost message: answers true, and a fill is then running.
   */
  check(offset: number, epoch: string | undefined, immediate: boolean): boolean {
    if (this.#filling) return false;
    // No record: the store lost the stream (restarted empty, or it expired): a reset, like a new epoch.
    // (Unless we never knew its epoch and it still has none: a stream nobody published to.)
    const sameEpoch = epoch === this.#epoch || (epoch === undefined && this.#epoch === UNKNOWN_EPOCH);
    if (sameEpoch && offset <= this.#offset) {
      this.#suspect = undefined;
      return false;
    }
    if (immediate || this.#suspect !== undefined) {
      this.#filling = true;
      return true;
    }
    this.#suspect = offset;
    return false;
  }

  /**
   * The running fill's history page (read after `fillSince`). Answers
   * 'again' when the page shows a new epoch: read again after the new
   * `fillSince` (0, the new epoch from its start) and hand that page in.
   * Otherwise the fill is over: report `lost` if set, deliver `deliver`,
   * then `drain` (or `discard`) what queued meanwhile.
   */
  filled(page: FillPage<E>): FillResult<E> | 'again' {
    let lost = false;
    if (this.#reset) {
      this.#reset = false;
      // A stream tracked from offset 0 that never delivered an event lost nothing we could have delivered.
      lost = this.#offset > 0;
      this.#past(this.#epoch);
      this.#epoch = page.position.epoch;
      this.#offset = 0;
    } else if (page.position.epoch !== this.#epoch) {
      this.#reset = true;
      return 'again';
    } else if (this.#fillCause !== undefined) {
      // An arrival of another epoch started this fill, and the store, read after it arrived, is still at ours:
      // that epoch is older than ours (a reset we never saw), not a new one. Without this, every drain would
      // start the same fill again.
      this.#past(this.#fillCause);
    }
    this.#fillCause = undefined;
    if (!page.complete) {
      // Deliver what history still holds after the hole, from its first kept offset.
      const first = page.events[0];
      this.#offset = first ? first.offset - 1 : page.position.offset;
      lost = true;
    }
    const result: FillResult<E> = { lost: lost ? { offset: this.#offset, epoch: this.#epoch } : undefined, deliver: [], skipped: 0 };
    for (const event of page.events) {
      if (event.offset !== this.#offset + 1) {
        result.skipped++;
        continue;
      }
      this.#offset = event.offset;
      result.deliver.push(event);
    }
    this.#suspect = undefined;
    this.#filling = false;
    return result;
  }

  #past(epoch: string): void {
    if (this.#pastEpochs.size >= MAX_PAST_EPOCHS) this.#pastEpochs.delete(this.#pastEpochs.values().next().value!);
    this.#pastEpochs.add(epoch);
  }

  /** The fill's read failed: the retry starts over (from `fillSince`, as if the fill had just begun). */
  fillFailed(): void {
    this.#reset = false;
  }

  /** After a fill: what queued behind it, passed through `push` again, in arrival order. */
  drain(): Drained<E> {
    const out: Drained<E> = { deliver: [], drops: [], fill: false };
    for (const event of this.#queue.splice(0)) {
      const verdict = this.push(event);
      if (verdict === 'deliver') out.deliver.push(event);
      else if (verdict === 'fill') out.fill = true;
      else if (verdict !== 'queued') out.drops.push(verdict);
    }
    return out;
  }

  /** Empties the queue without delivering (nobody wants the stream any more); answers how many went. */
  discard(): number {
    const n = this.#queue.length;
    this.#queue.length = 0;
    return n;
  }
}
