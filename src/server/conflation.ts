// Flow control of one subscription (`$max_rate`: events per second per agent):
// conflation windows. The first event of an agent goes out at once and opens
// a window of 1/max_rate seconds; what arrives meanwhile is held, the latest
// replacing the one before; when the window closes the latest held event goes
// out (with `conflated`: how many it replaced) and a new window opens, until
// one closes with nothing held. So a slow reader sees current state, never
// stale state, and never more than max_rate events per second per agent.
//
// Bounded: at most CONFLATION_LIMITS.windows open windows per subscription
// (past that an agent's events go out unconflated), one timer per window,
// re-armed in place; `dispose` (the subscription went) clears them all.
import type { DeliveredEvent } from '../protocol/events.js';

export const CONFLATION_LIMITS = { windows: 1000 } as const;

/** Where conflated events go: the subscription's connection. */
export interface ConflationSink {
  readonly isOpen: boolean;
  /** Re-checked at the window's end: a token refresh may have narrowed what the connection may see meanwhile. */
  readonly principal: { canMonitor(agentId: string): boolean };
  sendEvent(frame: string | Buffer, stream: string, event: { event_id: string; offset: number; epoch: string }): boolean;
}

/** A delivered event as sent after a window: its own fields, plus how many events of its agent it replaced. */
export type ConflatedEvent = DeliveredEvent & { conflated: number };

interface Window {
  pending: DeliveredEvent | undefined;
  stream: string;
  /** Events replaced by `pending` (not delivered). */
  skipped: number;
  timer: NodeJS.Timeout;
}

export class Conflator {
  readonly #sink: ConflationSink;
  readonly #intervalMs: number;
  readonly #windows = new Map<string, Window>();
  #disposed = false;

  constructor(sink: ConflationSink, maxRate: number) {
    this.#sink = sink;
    this.#intervalMs = Math.max(1, Math.round(1000 / maxRate));
  }

  /** Open windows now (one per agent heard from within the last window). */
  get size(): number {
    return this.#windows.size;
  }

  /**
   * A wanted live event: true to send it now; false when it is held for the
   * end of its agent's window (it will be sent then, unless a later one replaces it).
   */
  admit(stream: string, event: DeliveredEvent): boolean {
    if (this.#disposed) return true;
    const key = event.agent_id ?? '';
    const w = this.#windows.get(key);
    if (w === undefined) {
      if (this.#windows.size < CONFLATION_LIMITS.windows) this.#open(key, stream);
      return true;
    }
    if (w.pending !== undefined) w.skipped++;
    w.pending = event;
    w.stream = stream;
    return false;
  }

  #open(key: string, stream: string): void {
    const w: Window = { pending: undefined, stream, skipped: 0, timer: undefined as unknown as NodeJS.Timeout };
    w.timer = setTimeout(() => this.#close(key, w), this.#intervalMs);
    w.timer.unref();
    this.#windows.set(key, w);
  }

  /** A window ends: send the latest held event and keep the pace, or close when nothing came. */
  #close(key: string, w: Window): void {
    const event = w.pending;
    if (this.#disposed || event === undefined || !this.#sink.isOpen) {
      if (this.#windows.get(key) === w) this.#windows.delete(key);
      return;
    }
    if (event.agent_id !== undefined && !this.#sink.principal.canMonitor(event.agent_id)) {
      this.#windows.delete(key);
      return;
    }
    const skipped = w.skipped;
    w.pending = undefined;
    w.skipped = 0;
    // Built here, once per window: it differs from the shared frame by `conflated`.
    const frame = Buffer.from(JSON.stringify(skipped > 0 ? ({ ...event, conflated: skipped } satisfies ConflatedEvent) : event));
    this.#sink.sendEvent(frame, w.stream, event);
    w.timer.refresh();
  }

  /** The subscription is gone: no timer stays, nothing more is sent. */
  dispose(): void {
    this.#disposed = true;
    for (const w of this.#windows.values()) clearTimeout(w.timer);
    this.#windows.clear();
  }
}
