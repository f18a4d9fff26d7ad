// The in-memory broker: one process, no external service. The reference
// implementation of the Broker seam.
//
// Each stream keeps its next offset, its epoch and a ring of recent events
// bounded by count (historySize), age (historyTtl) and bytes (per stream and
// for the whole node: the oldest events anywhere go first). The epoch is
// random per stream lifetime, so a restarted process (or a stream forgotten
// after a long idle period) can never be mistaken for the old one. A stream
// that was only read, never published to, is forgotten soon. Delivery is
// synchronous inside `publish`: per-stream order holds trivially, and every
// stream reaches the node (follow/unfollow are no-ops).
import { randomBytes } from 'node:crypto';
import {
  zeroDrops,
  type Broker,
  type DeliveredEvent,
  type DropCounts,
  type DeliveryHandler,
  type HistoryPage,
  type HistoryQuery,
  type PublishEntry,
  type PublishReceipt,
  type StreamPosition,
} from '../broker.js';

/** Delivery happens inside `publish`, from the stream itself: nothing arrives that could be dropped. */
const NO_DROPS: DropCounts = Object.freeze(zeroDrops());

export interface MemoryBrokerOptions {
  /** Events kept per stream. */
  historySize: number;
  /** Milliseconds an event stays in history. */
  historyTtlMs: number;
  /** Bytes of history (as JSON) kept per stream (default 8 MiB). */
  historyBytesPerStream?: number;
  /** Bytes of history (as JSON) kept by the whole node (default 512 MiB). */
  historyBytesTotal?: number;
  /** Milliseconds an idempotency key is remembered (default 5 minutes). */
  idempotencyTtlMs?: number;
  /** Milliseconds an idle stream's offset/epoch are kept after its history is empty (default 24 h). */
  streamMetaTtlMs?: number;
  /** Milliseconds a stream nobody published to is kept after it was last read (default 10 minutes). */
  unpublishedTtlMs?: number;
}

interface Entry {
  event: DeliveredEvent;
  /** The event as sent (offset and epoch included). */
  json: string;
  at: number;
  bytes: number;
  stream: Stream;
  /** Dropped from its stream (the node-wide queue skips it). */
  gone: boolean;
}

/**
 * Ring of history entries, oldest first. It grows as events arrive, so a
 * stream that holds a few events costs a few slots, not `historySize`.
 */
class Ring {
  #slots: Array<Entry | undefined> = [];
  #head = 0;
  #size = 0;
  get size(): number {
    return this.#size;
  }
  push(entry: Entry): void {
    const len = this.#slots.length;
    if (this.#size < len) {
      this.#slots[(this.#head + this.#size) % len] = entry;
    } else {
      // Full: lay the entries out from 0 and grow by one.
      if (this.#head !== 0) this.#slots = [...this.#slots.slice(this.#head), ...this.#slots.slice(0, this.#head)];
      this.#head = 0;
      this.#slots.push(entry);
    }
    this.#size++;
  }
  at(i: number): Entry {
    return this.#slots[(this.#head + i) % this.#slots.length]!;
  }
  /** Removes and returns the oldest entry. */
  shift(): Entry {
    const entry = this.#slots[this.#head]!;
    this.#slots[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#slots.length;
    this.#size--;
    return entry;
  }
}

interface Stream {
  name: string;
  offset: number;
  epoch: string;
  history: Ring;
  bytes: number;
  lastPublishAt: number;
  lastReadAt: number;
}

/** The event's JSON with offset and epoch added (the JSON text is an object: `{...}`). */
function sequencedJson(json: string, offset: number, epoch: string): string {
  return `${json.slice(0, -1)},"offset":${offset},"epoch":"${epoch}"}`;
}

export class MemoryBroker implements Broker {
  readonly #opts: Required<MemoryBrokerOptions>;
  readonly #streams = new Map<string, Stream>();
  readonly #idempotency = new Map<string, { receipt: PublishReceipt; expiresAt: number }>();
  /** Every kept entry in publish order (with dropped ones skipped lazily): the node-wide byte budget evicts from its front. */
  #queue: Entry[] = [];
  #queueHead = 0;
  #totalBytes = 0;
  #onDelivery: DeliveryHandler | undefined;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: MemoryBrokerOptions) {
    this.#opts = {
      historyBytesPerStream: 8 * 1024 * 1024,
      historyBytesTotal: 512 * 1024 * 1024,
      idempotencyTtlMs: 300_000,
      streamMetaTtlMs: 86_400_000,
      unpublishedTtlMs: 600_000,
      ...options,
    };
  }

  readonly drops: DropCounts = NO_DROPS;

  /** Bytes of history held now (for tests and metrics). */
  get historyBytes(): number {
    return this.#totalBytes;
  }

  /** Streams remembered now, published to or only read (for tests and metrics). */
  get streamCount(): number {
    return this.#streams.size;
  }

  // A single process loses nothing it does not lose entirely: no gaps to report.
  async start(onDelivery: DeliveryHandler): Promise<void> {
    this.#onDelivery = onDelivery;
    const every = Math.max(1000, Math.min(60_000, this.#opts.historyTtlMs / 4));
    this.#sweeper = setInterval(() => this.#sweep(Date.now()), every);
    this.#sweeper.unref();
  }

  /** Appends every entry, in order, synchronously: nothing can fail half-way through a batch. */
  async publish(entries: readonly PublishEntry[]): Promise<PublishReceipt[]> {
    const now = Date.now();
    const receipts: PublishReceipt[] = [];
    for (const { stream: streamName, event, json, idempotencyKey } of entries) {
      const idemKey = idempotencyKey === undefined ? undefined : `${streamName}\u0000${idempotencyKey}`;
      if (idemKey !== undefined) {
        const seen = this.#idempotency.get(idemKey);
        if (seen && seen.expiresAt > now) {
          receipts.push({ ...seen.receipt, duplicate: true });
          continue;
        }
      }
      const stream = this.#stream(streamName, now);
      stream.offset += 1;
      stream.lastPublishAt = now;
      const sequenced = event as DeliveredEvent;
      sequenced.offset = stream.offset;
      sequenced.epoch = stream.epoch;
      const text = sequencedJson(json ?? JSON.stringify(event), stream.offset, stream.epoch);
      const entry: Entry = { event: sequenced, json: text, at: now, bytes: text.length, stream, gone: false };
      stream.history.push(entry);
      stream.bytes += entry.bytes;
      this.#totalBytes += entry.bytes;
      this.#queue.push(entry);
      this.#trim(stream, now);
      const receipt: PublishReceipt = { event_id: sequenced.event_id, offset: sequenced.offset, epoch: sequenced.epoch, duplicate: false };
      if (idemKey !== undefined) this.#idempotency.set(idemKey, { receipt, expiresAt: now + this.#opts.idempotencyTtlMs });
      receipts.push(receipt);
      this.#onDelivery?.(streamName, sequenced, text);
    }
    return receipts;
  }

  /** Drops what the stream and the node may not keep: too many, too old, too many bytes (oldest first). */
  #trim(stream: Stream, now: number): void {
    const cutoff = now - this.#opts.historyTtlMs;
    const history = stream.history;
    while (history.size > 0) {
      const oldest = history.at(0);
      if (history.size <= this.#opts.historySize && oldest.at >= cutoff && (stream.bytes <= this.#opts.historyBytesPerStream || history.size === 1)) break;
      this.#drop(history.shift());
    }
    // The node's budget: the oldest events of any stream go first.
    while (this.#totalBytes > this.#opts.historyBytesTotal && this.#queueHead < this.#queue.length) {
      const entry = this.#queue[this.#queueHead++]!;
      if (entry.gone) continue;
      // The front live entry is always its stream's oldest: streams drop oldest first, and the queue is in publish order.
      this.#drop(entry.stream.history.shift());
    }
    if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
  }

  #drop(entry: Entry): void {
    entry.gone = true;
    entry.stream.bytes -= entry.bytes;
    this.#totalBytes -= entry.bytes;
  }

  async follow(): Promise<void> {}

  unfollow(): void {}

  async history(streamName: string, query: HistoryQuery): Promise<HistoryPage> {
    const now = Date.now();
    const stream = this.#stream(streamName, now);
    const position = { offset: stream.offset, epoch: stream.epoch };
    const cutoff = now - this.#opts.historyTtlMs;
    const limit = query.limit ?? Number.POSITIVE_INFINITY;
    const events: DeliveredEvent[] = [];
    if (query.order === 'desc') {
      const before = query.before ?? Number.POSITIVE_INFINITY;
      for (let i = stream.history.size - 1; i >= 0 && events.length < limit; i--) {
        const entry = stream.history.at(i);
        if (entry.at < cutoff) break;
        if (entry.event.offset < before) events.push(entry.event);
      }
      return { events, position, complete: true };
    }
    let oldestKept = stream.offset + 1;
    for (let i = 0; i < stream.history.size; i++) {
      const entry = stream.history.at(i);
      if (entry.at < cutoff) continue;
      if (oldestKept > entry.event.offset) oldestKept = entry.event.offset;
      if (query.since !== undefined && entry.event.offset <= query.since) continue;
      if (events.length >= limit) break;
      events.push(entry.event);
    }
    // Complete when nothing between `since` and the oldest kept event was dropped.
    const complete = query.since === undefined || query.since >= oldestKept - 1;
    return { events, position, complete };
  }

  async position(streamName: string): Promise<StreamPosition> {
    const stream = this.#stream(streamName, Date.now());
    return { offset: stream.offset, epoch: stream.epoch };
  }

  async streamsActiveSince(prefix: string, sinceMs: number): Promise<string[]> {
    const names: string[] = [];
    for (const [name, stream] of this.#streams) if (stream.offset > 0 && stream.lastPublishAt >= sinceMs && name.startsWith(prefix)) names.push(name);
    return names;
  }

  close(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#onDelivery = undefined;
  }

  #stream(name: string, now: number): Stream {
    let stream = this.#streams.get(name);
    if (!stream) {
      stream = { name, offset: 0, epoch: randomBytes(6).toString('hex'), history: new Ring(), bytes: 0, lastPublishAt: 0, lastReadAt: now };
      this.#streams.set(name, stream);
    }
    stream.lastReadAt = now;
    return stream;
  }

  #sweep(now: number): void {
    const cutoff = now - this.#opts.historyTtlMs;
    for (const [name, stream] of this.#streams) {
      while (stream.history.size > 0 && stream.history.at(0).at < cutoff) this.#drop(stream.history.shift());
      const forget =
        stream.offset === 0
          ? now - stream.lastReadAt > this.#opts.unpublishedTtlMs // only ever read: a short life
          : stream.history.size === 0 && now - stream.lastPublishAt > this.#opts.streamMetaTtlMs;
      if (forget) this.#streams.delete(name);
    }
    for (const [key, seen] of this.#idempotency) if (seen.expiresAt <= now) this.#idempotency.delete(key);
    // Entries already dropped are skipped at the queue's front; compact it now and then.
    if (this.#queueHead > 0) {
      this.#queue = this.#queue.slice(this.#queueHead).filter((entry) => !entry.gone);
      this.#queueHead = 0;
    }
  }

  /** Sweeps now (tests). */
  sweepNow(now = Date.now()): void {
    this.#sweep(now);
  }
}
