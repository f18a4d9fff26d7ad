// Where one connection stands in each stream it reads: the last offset
// written to it, and the last offset a pong confirmed it read. A resumed
// session starts from one or the other (see `resume`). Pure: fed writes,
// heartbeats and pongs, asked for positions; the connection creates it on
// its first written event, so an idle connection carries none.
import type { StreamPosition } from '../protocol/server-messages.js';

/** Streams whose written position one connection tracks (an all-agents subscription may see many). */
export const MAX_TRACKED_STREAMS = 2000;

/** The positions of a connection that has confirmed nothing yet (shared, never written). */
export const NO_POSITIONS: ReadonlyMap<string, StreamPosition> = new Map();

export function clonePositions(positions: ReadonlyMap<string, StreamPosition>): Map<string, StreamPosition> {
  const copy = new Map<string, StreamPosition>();
  for (const [stream, pos] of positions) copy.set(stream, { offset: pos.offset, epoch: pos.epoch });
  return copy;
}

export class StreamPositions {
  /** Last offset written per stream, in the order streams were first written (the oldest goes past the cap). */
  readonly #written = new Map<string, StreamPosition>();
  #confirmed: ReadonlyMap<string, StreamPosition> = NO_POSITIONS;
  /** The written positions as a heartbeat found them, waiting for the pong that carries `seq`. */
  #snapshot: { seq: string; positions: Map<string, StreamPosition> } | null = null;
  #advancedSinceSnapshot = false;

  /**
   * Moves the written position of `stream` forward (a new epoch replaces
   * it; an older offset of the same epoch changes nothing). At most
   * MAX_TRACKED_STREAMS streams are tracked: past that the first tracked
   * goes (a resume replays it by time instead of from its offset).
   */
  advance(stream: string, offset: number, epoch: string): void {
    this.#advancedSinceSnapshot = true;
    const written = this.#written;
    const pos = written.get(stream);
    if (pos === undefined) {
      if (written.size >= MAX_TRACKED_STREAMS) written.delete(written.keys().next().value!);
      written.set(stream, { offset, epoch });
    } else if (pos.epoch !== epoch) {
      pos.offset = offset;
      pos.epoch = epoch;
    } else if (offset > pos.offset) pos.offset = offset;
  }

  get written(): ReadonlyMap<string, StreamPosition> {
    return this.#written;
  }

  /** Positions a pong has confirmed the client read. */
  get confirmed(): ReadonlyMap<string, StreamPosition> {
    return this.#confirmed;
  }

  /** Positions known to have been read before this connection started (a resumed session's base). */
  setConfirmedBase(positions: ReadonlyMap<string, StreamPosition>): void {
    this.#confirmed = clonePositions(positions);
  }

  /**
   * A heartbeat with sequence `seq` is going out: the positions written so
   * far are snapshotted, when something was written since the last snapshot.
   * The caller must not call it while frames are held (a pong must not
   * confirm what was not yet sent).
   */
  heartbeat(seq: string): void {
    if (!this.#advancedSinceSnapshot) return;
    this.#snapshot = { seq, positions: clonePositions(this.#written) };
    this.#advancedSinceSnapshot = false;
  }

  /** Whether a pong could confirm anything (a snapshot waits for it). */
  get awaitingPong(): boolean {
    return this.#snapshot !== null;
  }

  /**
   * The pong carrying `seq` arrived: the client has read everything up to
   * the snapshot (TCP keeps order), so it is confirmed. True when it was the
   * awaited pong.
   */
  pong(seq: string): boolean {
    const snapshot = this.#snapshot;
    if (snapshot === null || seq !== snapshot.seq) return false;
    this.#confirmed = snapshot.positions;
    this.#snapshot = null;
    return true;
  }

  /**
   * Where a resumed session should start per stream. When the peer ended
   * the connection, everything written was handed to its TCP stack: resume
   * after it (exactly once). When the server had to terminate the socket
   * (`terminated`: a silently dead peer, a close handshake that never
   * completed), written frames may have been lost: resume from what a pong
   * confirmed (at least once; duplicates carry the same event_id).
   */
  resume(terminated: boolean): ReadonlyMap<string, StreamPosition> {
    return terminated ? this.#confirmed : this.#written;
  }
}
