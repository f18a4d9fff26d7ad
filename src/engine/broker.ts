// The Broker seam: streams of events, and nothing else. Everything above it
// (connections, subscriptions, REST) talks to a Broker and never knows which
// engine runs: the in-memory engine (one process, the reference
// implementation) or Redis (several nodes).
//
// A Broker owns streams: two per agent (`agent:{id}`, and `activity:{id}` for
// what it does), `system`, and one per user (`user:{id}`); their names are
// made in src/protocol/constants.ts. Publishing appends to a stream, giving the event the
// stream's next offset (+1, no gaps) and its epoch (which changes whenever
// the stream's history is lost), and hands it to the node's delivery handler,
// in offset order per stream, on every node that follows the stream.
import type { DeliveredEvent, StreamPosition } from '../protocol/server-messages.js';

export type { DeliveredEvent, StreamPosition };

/** An event without the fields the broker assigns. */
export type UnsequencedEvent = Omit<DeliveredEvent, 'offset' | 'epoch'>;

/** One event to append. */
export interface PublishEntry {
  stream: string;
  event: UnsequencedEvent;
  /** The event as JSON text (without offset and epoch), when the caller already serialized it. */
  json?: string;
  /** A repeat of this key on the stream within the idempotency window appends nothing and answers with the original. */
  idempotencyKey?: string | undefined;
}

/** What `publish` answers per entry: where the event now stands, or, for a repeated idempotency key, where the original does. */
export interface PublishReceipt {
  event_id: string;
  offset: number;
  epoch: string;
  /** True when the idempotency key was seen before: nothing new was appended or delivered. */
  duplicate: boolean;
}

export interface HistoryQuery {
  /** Return events with offset > since (default: from the oldest kept). Oldest first. */
  since?: number;
  /** Newest first instead, from the newest kept (or from just before `before`). */
  order?: 'asc' | 'desc';
  /** With `order: 'desc'`: only events with offset < before (paging back). */
  before?: number;
  limit?: number;
}

export interface HistoryPage {
  events: DeliveredEvent[];
  position: StreamPosition;
  /** False when `since` is older than the oldest event kept: events were lost between. */
  complete: boolean;
}

/**
 * Called for every event of a followed stream, in offset order per stream.
 * `json` is the event's JSON text when the engine already has it (the frame
 * is then sent as is, not serialized again).
 */
export type DeliveryHandler = (stream: string, event: DeliveredEvent, json: string | undefined) => void;

/** Called when events of a followed stream were lost and cannot be replayed (a gap history no longer covers, a new epoch). */
export type LossHandler = (stream: string, position: StreamPosition) => void;

/**
 * Why an engine dropped a message it received instead of delivering it:
 * a payload it could not read; a stream this node no longer follows; an
 * offset already delivered; an epoch the stream left behind (a reset); a
 * queue behind a gap fill past its cap (re-read from history, not lost).
 */
export const DROP_REASONS = ['unparsable', 'unfollowed', 'duplicate', 'stale_epoch', 'overflow'] as const;
export type DropReason = (typeof DROP_REASONS)[number];
/** Messages dropped since the broker was made, by reason. */
export type DropCounts = Readonly<Record<DropReason, number>>;

/** Zero of each reason: where an engine's drop counts start. */
export function zeroDrops(): Record<DropReason, number> {
  return { unparsable: 0, unfollowed: 0, duplicate: 0, stale_epoch: 0, overflow: 0 };
}

/**
 * Every stream of one per-agent family at once (`follow(ALL_AGENT_STREAMS)`):
 * what all-agents subscriptions need (`ALL_ACTIVITY_STREAMS` for activity).
 */
export { ALL_ACTIVITY_STREAMS, ALL_AGENT_STREAMS, wildcardOf, type StreamWildcard } from '../protocol/constants.js';

export interface Broker {
  /** Registers the node's handlers. Call once, before anything else. */
  start(onDelivery: DeliveryHandler, onLoss: LossHandler): Promise<void>;
  /**
   * Appends every entry, in order, all or nothing: either each gets its
   * receipt (a new offset, or the original's for a repeated idempotency key)
   * or none was appended. Rejects with EngineUnavailableError when the engine
   * cannot accept them.
   */
  publish(entries: readonly PublishEntry[]): Promise<PublishReceipt[]>;
  /**
   * Declares that this node has subscribers for `stream` (or, with a
   * wildcard, ALL_AGENT_STREAMS or ALL_ACTIVITY_STREAMS, for every stream of
   * that family): its events reach the handler
   * from the moment the returned promise resolves. Never rejects: while the
   * engine is unavailable the interest is kept and honoured when it is back.
   * Counted: each `follow` is undone by one `unfollow`. An engine that
   * delivers every stream to every node may treat both as no-ops.
   */
  follow(stream: string): Promise<void>;
  unfollow(stream: string): void;
  history(stream: string, query: HistoryQuery): Promise<HistoryPage>;
  position(stream: string): Promise<StreamPosition>;
  /** Streams whose name starts with `prefix` that received an event at or after `sinceMs`. */
  streamsActiveSince(prefix: string, sinceMs: number): Promise<string[]>;
  /** Received messages dropped, by reason (an engine that delivers inside `publish` drops none: all zeros). */
  readonly drops: DropCounts;
}
