// The merge of a replay with live traffic, for one connection: while a reply
// and its replay are being read, live frames are held; on release the replay
// goes first, then the held frames except the events the replay already
// carried, and live events of the replayed streams that are still in flight
// are suppressed until each stream passes the position the replay reached.
// Pure (no socket, no timer): fed frames, asked what to send, like
// centrifuge's PubSubSync. The connection uses it per subscribe or resume;
// the archive will use it to stitch archive, live window and live events.
import type { StreamPosition } from '../protocol/server-messages.js';

/** An event's identity in a stream: what the merge compares. */
export interface EventRef {
  event_id: string;
  offset: number;
  epoch: string;
}

/** An outbound frame; for an event, its stream and identity. */
export interface OutFrame<F = string | Buffer> {
  frame: F;
  stream?: string;
  event?: EventRef;
}

/** Replayed event ids of a stream, suppressed on the live path until the stream passes `upTo`. */
interface Suppression {
  upTo: number;
  epoch: string;
  ids: ReadonlySet<string>;
}

/** What to do with a live frame: send it now, it was held (sent on release), or drop it (already replayed). */
export type Offer = 'send' | 'held' | 'drop';

export class RecoveryMerge<F = string | Buffer> {
  #held: Array<OutFrame<F>> | null = null;
  #suppress: Map<string, Suppression> | null = null;

  /** Frames are being held (a replay is being read). */
  get holding(): boolean {
    return this.#held !== null;
  }

  /** Nothing held and nothing suppressed: the owner may drop this merge. */
  get idle(): boolean {
    return this.#held === null && this.#suppress === null;
  }

  /** Starts holding live frames (idempotent: a second replay during the first holds into the same queue). */
  hold(): void {
    this.#held ??= [];
  }

  /** A live frame that is not an event (a reply, a notice): held while holding, else sent. */
  offerFrame(frame: F): Offer {
    if (this.#held === null) return 'send';
    this.#held.push({ frame });
    return 'held';
  }

  /** A live event of `stream`: dropped when a replay already carried it, held while holding, else sent. */
  offerEvent(frame: F, stream: string, event: EventRef): Offer {
    if (this.#suppress !== null && this.#suppressed(stream, event)) return 'drop';
    if (this.#held === null) return 'send';
    this.#held.push({ frame, stream, event });
    return 'held';
  }

  /** The lowest offset of `stream` (in `epoch`) among the held events, if any is held. */
  firstHeldOffset(stream: string, epoch: string): number | undefined {
    let first: number | undefined;
    for (const out of this.#held ?? []) {
      const e = out.event;
      if (out.stream === stream && e !== undefined && e.epoch === epoch && (first === undefined || e.offset < first)) first = e.offset;
    }
    return first;
  }

  /**
   * Ends the hold: returns what to send now, in order: `first` (the reply
   * and the replay), then the held frames except events the replay carried
   * (and events an earlier replay still suppresses). `positions`: where each
   * replayed stream now stands; from now on live events of those streams
   * with a replayed id are dropped until the stream passes that position
   * (they were read from history while still in flight to this node).
   */
  release(first: ReadonlyArray<OutFrame<F>>, replayedIds: ReadonlySet<string>, positions?: ReadonlyMap<string, StreamPosition>): Array<OutFrame<F>> {
    const held = this.#held ?? [];
    this.#held = null;
    const out: Array<OutFrame<F>> = [];
    for (const f of first) if (!this.#dropped(f)) out.push(f);
    for (const h of held) if (h.event === undefined || (!replayedIds.has(h.event.event_id) && !this.#dropped(h))) out.push(h);
    if (positions !== undefined && replayedIds.size > 0) {
      for (const [stream, pos] of positions) (this.#suppress ??= new Map()).set(stream, { upTo: pos.offset, epoch: pos.epoch, ids: replayedIds });
    }
    return out;
  }

  #dropped(out: OutFrame<F>): boolean {
    return out.event !== undefined && out.stream !== undefined && this.#suppress !== null && this.#suppressed(out.stream, out.event);
  }

  /** The connection closed: nothing is held or suppressed any more. */
  clear(): void {
    this.#held = null;
    this.#suppress = null;
  }

  #suppressed(stream: string, event: EventRef): boolean {
    const sup = this.#suppress!.get(stream);
    if (sup === undefined) return false;
    if (event.epoch !== sup.epoch || event.offset > sup.upTo) {
      // The live stream has passed the replay: nothing later can be a duplicate.
      this.#suppress!.delete(stream);
      if (this.#suppress!.size === 0) this.#suppress = null;
      return false;
    }
    return sup.ids.has(event.event_id);
  }
}
