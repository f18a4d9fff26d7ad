// Batched delivery (`?batch=1`): a connection's outbound messages are
// coalesced into one frame holding a JSON array, within bounds of count,
// bytes and delay. One scheduler per node flushes every connection with
// something pending at the end of the event-loop turn (or after the
// configured delay): no timer and no closure per connection.

/** What a connection that batches needs from its node. */
export interface BatchLimits {
  /** Most messages in one frame. */
  batchMaxMessages: number;
  /** Most bytes in one frame (a single larger message still goes, alone). */
  batchMaxBytes: number;
  /** Milliseconds a message may wait for others; 0 = until the end of the current event-loop turn. */
  batchMaxDelay: number;
}

/** Something with pending messages to send. */
export interface Flushable {
  flush(): void;
}

/**
 * Flushes every scheduled connection once, at the end of the turn or after
 * `delayMs`; and encodes their batches, once for all the connections whose
 * batch holds the same messages (a fan-out puts the same event buffers, in
 * the same order, in every subscriber's batch: serialized once, framed once).
 */
export class FlushScheduler {
  readonly #delayMs: number;
  #due: Flushable[] = [];
  #armed = false;
  /** The last batch encoded in this run, and its frame (dropped when the run ends: nothing pinned). */
  #lastMessages: Array<string | Buffer> | null = null;
  #lastBytes = 0;
  #lastFrame: Buffer | null = null;

  constructor(delayMs: number) {
    this.#delayMs = delayMs;
  }

  /** Flush `target` soon (call once per batch: when its first message is queued). */
  schedule(target: Flushable): void {
    this.#due.push(target);
    if (this.#armed) return;
    this.#armed = true;
    if (this.#delayMs === 0) setImmediate(this.#run);
    else setTimeout(this.#run, this.#delayMs);
  }

  readonly #run = (): void => {
    this.#armed = false;
    const due = this.#due;
    this.#due = [];
    for (const target of due) target.flush();
    this.#lastMessages = null;
    this.#lastFrame = null;
  };

  /** The frame of a batch (`bytes`: the messages' total length): the previous one when it held the very same messages. */
  encode(messages: ReadonlyArray<string | Buffer>, bytes: number): Buffer {
    const last = this.#lastMessages;
    if (last !== null && last.length === messages.length && this.#lastBytes === bytes) {
      let same = true;
      for (let i = 0; i < messages.length; i++) {
        if (messages[i] !== last[i]) {
          same = false;
          break;
        }
      }
      if (same) return this.#lastFrame!;
    }
    const frame = encodeBatch(messages, bytes);
    this.#lastMessages = messages.slice();
    this.#lastBytes = bytes;
    this.#lastFrame = frame;
    return frame;
  }
}

const OPEN = 0x5b; // [
const COMMA = 0x2c;
const CLOSE = 0x5d; // ]

/**
 * One JSON array frame from serialized messages (`bytes`: their total byte
 * length). The messages' bytes are copied once, into one buffer.
 */
function encodeBatch(messages: ReadonlyArray<string | Buffer>, bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes + messages.length + 1);
  let at = 0;
  out[at++] = OPEN;
  for (let i = 0; i < messages.length; i++) {
    if (i > 0) out[at++] = COMMA;
    const m = messages[i]!;
    at += typeof m === 'string' ? out.write(m, at, 'utf8') : m.copy(out, at);
  }
  out[at++] = CLOSE;
  return at === out.length ? out : out.subarray(0, at);
}
