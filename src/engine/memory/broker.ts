// The in-memory broker: one process, no external service. The reference
// implementation of the Broker seam.
//
// Each stream keeps its next offset, its epoch and a ring buffer of recent
// events bounded by count (historySize) and age (historyTtl). The epoch is
// random per stream lifetime, so a restarted process (or a stream forgotten
// after a long idle period) can never be mistaken for the old one. Delivery is
// synchronous inside `publish`: per-stream order holds trivially, and every
// stream reaches the node (follow/unfollow are no-ops).
import { randomBytes } from 'node:crypto';
import type {
  Broker,
  DeliveredEvent,
  DeliveryHandler,
  HistoryPage,
  HistoryQuery,
  PublishReceipt,
  StreamPosition,
  UnsequencedEvent,
} from '../broker.js';

export interface MemoryBrokerOptions {
  /** Events kept per stream. */
  historySize: number;
  /** Milliseconds an event stays in history. */
  historyTtlMs: number;
  /** Milliseconds an idempotency key is remembered (default 5 minutes). */
  idempotencyTtlMs?: number;
  /** Milliseconds an idle stream's offset/epoch are kept after its history is empty (default 24 h). */
  streamMetaTtlMs?: number;
}

interface Entry {
  event: DeliveredEvent;
  at: number;
}

/**
 * Ring of history entries, oldest first, at most `capacity` long. It grows as
 * events arrive, so a stream that was only read (or holds a few events) costs
 * a few bytes, not `capacity` slots.
 */
class Ring {
  #slots: Array<Entry | undefined> = [];
  #head = 0;
  #size = 0;
  readonly #capacity: number;
  constructor(capacity: number) {
    this.#capacity = capacity;
  }
  get size(): number {
    return this.#size;
  }
  push(entry: Entry): void {
    const len = this.#slots.length;
    if (this.#size < len) {
      this.#slots[(this.#head + this.#size) % len] = entry;
      this.#size++;
    } else if (len < this.#capacity) {
      // Full but below capacity: lay the entries out from 0 and grow by one.
      if (this.#head !== 0) this.#slots = [...this.#slots.slice(this.#head), ...this.#slots.slice(0, this.#head)];
      this.#head = 0;
      this.#slots.push(entry);
      this.#size++;
    } else {
      this.#slots[this.#head] = entry;
      this.#head = (this.#head + 1) % len;
    }
  }
  at(i: number): Entry {
    return this.#slots[(this.#head + i) % this.#slots.length]!;
  }
  dropOldest(): void {
    this.#slots[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#slots.length;
    this.#size--;
  }
}

interface Stream {
  offset: number;
  epoch: string;
  history: Ring;
  lastPublishAt: number;
}

export class MemoryBroker implements Broker {
  readonly #opts: Required<MemoryBrokerOptions>;
  readonly #streams = new Map<string, Stream>();
  readonly #idempotency = new Map<string, { receipt: PublishReceipt; expiresAt: number }>();
  #onDelivery: DeliveryHandler | undefined;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(options: MemoryBrokerOptions) {
    this.#opts = { idempotencyTtlMs: 300_000, streamMetaTtlMs: 86_400_000, ...options };
  }

  // A single process loses nothing it does not lose entirely: no gaps to report.
  async start(onDelivery: DeliveryHandler): Promise<void> {
    this.#onDelivery = onDelivery;
    const every = Math.max(1000, Math.min(60_000, this.#opts.historyTtlMs / 4));
    this.#sweeper = setInterval(() => this.#sweep(Date.now()), every);
    this.#sweeper.unref();
  }

  async publish(streamName: string, event: UnsequencedEvent, idempotencyKey?: string): Promise<PublishReceipt> {
    const now = Date.now();
    const idemKey = idempotencyKey === undefined ? undefined : `${streamName}\u0000${idempotencyKey}`;
    if (idemKey !== undefined) {
      const seen = this.#idempotency.get(idemKey);
      if (seen && seen.expiresAt > now) return { ...seen.receipt, duplicate: true };
    }
    const stream = this.#stream(streamName);
    stream.offset += 1;
    stream.lastPublishAt = now;
    const sequenced = event as DeliveredEvent;
    sequenced.offset = stream.offset;
    sequenced.epoch = stream.epoch;
    stream.history.push({ event: sequenced, at: now });
    const receipt: PublishReceipt = { event_id: sequenced.event_id, offset: sequenced.offset, epoch: sequenced.epoch, duplicate: false };
    if (idemKey !== undefined) this.#idempotency.set(idemKey, { receipt, expiresAt: now + this.#opts.idempotencyTtlMs });
    this.#onDelivery?.(streamName, sequenced, undefined);
    return receipt;
  }

  async follow(): Promise<void> {}

  unfollow(): void {}

  async history(streamName: string, query: HistoryQuery): Promise<HistoryPage> {
    const stream = this.#stream(streamName);
    const position = { offset: stream.offset, epoch: stream.epoch };
    const cutoff = Date.now() - this.#opts.historyTtlMs;
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
    const stream = this.#stream(streamName);
    return { offset: stream.offset, epoch: stream.epoch };
  }

  async streamsActiveSince(prefix: string, sinceMs: number): Promise<string[]> {
    const names: string[] = [];
    for (const [name, stream] of this.#streams) if (stream.lastPublishAt >= sinceMs && name.startsWith(prefix)) names.push(name);
    return names;
  }

  close(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#onDelivery = undefined;
  }

  #stream(name: string): Stream {
    let stream = this.#streams.get(name);
    if (!stream) {
      stream = { offset: 0, epoch: randomBytes(6).toString('hex'), history: new Ring(this.#opts.historySize), lastPublishAt: Date.now() };
      this.#streams.set(name, stream);
    }
    return stream;
  }

  #sweep(now: number): void {
    const cutoff = now - this.#opts.historyTtlMs;
    for (const [name, stream] of this.#streams) {
      while (stream.history.size > 0 && stream.history.at(0).at < cutoff) stream.history.dropOldest();
      if (stream.history.size === 0 && now - stream.lastPublishAt > this.#opts.streamMetaTtlMs) this.#streams.delete(name);
    }
    for (const [key, seen] of this.#idempotency) if (seen.expiresAt <= now) this.#idempotency.delete(key);
  }
}
