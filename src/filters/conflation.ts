// Flow control of one subscription (`$max_rate`: events per second per agent):
// conflation windows. The first event of an agent goes out at once and opens
// a window of 1/max_rate seconds; what arrives meanwhile is held, the latest
// replacing the one before; when the window closes the latest held event goes
// out (with `conflated`: how many it replaced) and a new window opens, until
// one closes with nothing held. So a slow reader sees current state, never
// stale state, and never more than max_rate events per second per agent.
//
// Bounded: at most CONFLATION_LIMITS.windows open windows per subscription
// (past that an agent's events go out unconflated). One timer per
// subscription: every window lasts the same interval, so the map's order
// (a window moves to the end when it is re-armed) is the order they end in.
// `dispose` (the subscription went) clears it.
import type { DeliveredEvent } from '../protocol/events.js';

const CONFLATION_LIMITS = { windows: 1000 } as const;

/** Where conflated events go: the subscription's connection. */
export interface ConflationSink {
  readonly isOpen: boolean;
  /** Re-checked at the window's end: a token refresh may have narrowed what the connection may see meanwhile. */
  readonly principal: { canMonitor(agentId: string): boolean };
  sendEvent(frame: string | Buffer, stream: string, event: { event_id: string; offset: number; epoch: string }): boolean;
}

interface Window {
  /** The latest held event and its frame as every recipient gets it (the fan-out's shared bytes). */
  pending: DeliveredEvent | undefined;
  frame: Buffer | undefined;
  stream: string;
  /** Events replaced by `pending` (not delivered). */
  skipped: number;
  /** When the window ends (performance.now() ms). */
  endsAt: number;
}

/**
 * Told of each event a window's end sent, and by which conflator to which
 * sink: the node counts it like every other delivery, and drops the same
 * event from the sink's other windows (one copy per connection).
 */
export type ConflatedSent = (event: DeliveredEvent, sink: ConflationSink, from: Conflator) => void;

export class Conflator {
  readonly #sink: ConflationSink;
  readonly #sent: ConflatedSent | undefined;
  readonly #intervalMs: number;
  /** Open windows by agent, in the order they end. */
  readonly #windows = new Map<string, Window>();
  #timer: NodeJS.Timeout | undefined;
  #disposed = false;

  constructor(sink: ConflationSink, maxRate: number, sent?: ConflatedSent) {
    this.#sink = sink;
    this.#sent = sent;
    this.#intervalMs = Math.max(1, Math.round(1000 / maxRate));
  }

  /** Open windows now (one per agent heard from within the last window). */
  get size(): number {
    return this.#windows.size;
  }

  /**
   * A wanted live event (`frame`: its serialized bytes): true to send it now;
   * false when it is held for the end of its agent's window (it will be sent
   * then, unless a later one replaces it).
   */
  admit(stream: string, event: DeliveredEvent, frame: Buffer): boolean {
    if (this.#disposed) return true;
    const key = event.agent_id ?? '';
    const w = this.#windows.get(key);
    if (w === undefined) {
      if (this.#windows.size < CONFLATION_LIMITS.windows) {
        this.#windows.set(key, { pending: undefined, frame: undefined, stream, skipped: 0, endsAt: performance.now() + this.#intervalMs });
        this.#arm();
      }
      return true;
    }
    if (w.pending !== undefined) w.skipped++;
    w.pending = event;
    w.frame = frame;
    w.stream = stream;
    return false;
  }

  /**
   * The connection received `event` through another of its subscriptions
   * (at once, unconflated): an older event of that agent held here is stale
   * and would arrive twice or out of order, so it is dropped. The window
   * itself goes on (the pace holds).
   */
  superseded(event: DeliveredEvent): void {
    const w = this.#windows.get(event.agent_id ?? '');
    const held = w?.pending;
    if (held === undefined || (held.epoch === event.epoch && held.offset > event.offset)) return;
    w!.pending = undefined;
    w!.frame = undefined;
    w!.skipped = 0;
  }

  /** Sets the timer for the first window to end, unless it is set. */
  #arm(): void {
    if (this.#timer !== undefined) return;
    const first = this.#windows.values().next().value as Window | undefined;
    if (first === undefined) return;
    this.#timer = setTimeout(this.#tick, Math.max(0, first.endsAt - performance.now()));
    this.#timer.unref();
  }

  /** Ends the windows that are due, in order; a window that sent something opens again at the end of the map. */
  readonly #tick = (): void => {
    this.#timer = undefined;
    if (this.#disposed) return;
    const now = performance.now();
    for (const [key, w] of this.#windows) {
      if (w.endsAt > now) break;
      this.#windows.delete(key);
      if (this.#close(w)) {
        w.endsAt = now + this.#intervalMs;
        this.#windows.set(key, w);
      }
    }
    this.#arm();
  };

  /** A window ends: sends the latest held event (true: the window goes on, to keep the pace), or nothing (false: it closes). */
  #close(w: Window): boolean {
    const { pending: event, frame } = w;
    if (event === undefined || frame === undefined || !this.#sink.isOpen) return false;
    if (event.agent_id !== undefined && !this.#sink.principal.canMonitor(event.agent_id)) return false;
    const skipped = w.skipped;
    w.pending = undefined;
    w.frame = undefined;
    w.skipped = 0;
    // The shared frame, or (once per window) the same JSON with `"conflated":N` as its last key.
    if (this.#sink.sendEvent(skipped > 0 ? withConflated(frame, skipped) : frame, w.stream, event)) this.#sent?.(event, this.#sink, this);
    return true;
  }

  /** The subscription is gone: no timer stays, nothing more is sent. */
  dispose(): void {
    this.#disposed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#windows.clear();
  }
}

const CLOSE_BRACE = 0x7d;

/** A serialized event object with `"conflated": n` added as its last key. */
function withConflated(frame: Buffer, n: number): Buffer {
  let end = frame.length - 1;
  while (end > 0 && frame[end] !== CLOSE_BRACE) end--;
  return Buffer.concat([frame.subarray(0, end), Buffer.from(`,"conflated":${n}}`)]);
}
