// The engine seam. Everything above it (connections, subscriptions, REST)
// talks to a Broker and never knows which engine runs: the in-memory engine
// (one process, the reference implementation) or, later, Redis.
//
// A Broker owns streams: one per agent (`agent:{id}`), `system`, and one per
// user (`user:{id}`). Publishing appends to a stream, giving the event the
// stream's next offset (+1, no gaps) and its epoch (which changes whenever
// the stream's history is lost), and hands the publication to the node's
// handler, in offset order per stream.
import type { DeliveredEvent } from '../protocol/events.js';

/** An event without the fields the broker assigns. */
export type UnsequencedEvent = Omit<DeliveredEvent, 'offset' | 'epoch'>;

export interface StreamPosition {
  offset: number;
  epoch: string;
}

export interface Publication {
  stream: string;
  event: DeliveredEvent;
  /**
   * Recipients on this node, when the engine delivered synchronously inside
   * `publish` (the memory engine does); undefined otherwise.
   */
  localRecipients?: number;
  /** True when `publish` found the idempotency key and returned the original event. */
  duplicate?: boolean;
}

export interface HistoryQuery {
  /** Return events with offset > since (default: from the oldest kept). */
  since?: number;
  limit?: number;
}

export interface HistoryPage {
  events: DeliveredEvent[];
  position: StreamPosition;
  /** False when `since` is older than the oldest event kept: events were lost between. */
  complete: boolean;
}

/** What a disconnected connection leaves behind so a reconnect with the same session id resumes it. */
export interface SessionState {
  userId: string;
  sessionId: string;
  /** When the session's first connection opened (ms since the epoch). */
  startedAt: number;
  /** When its last connection closed (ms since the epoch). */
  detachedAt: number;
  subscriptions: Array<{ type: string; agent_id: string | null; filters: Record<string, unknown> | null; created_at: number }>;
  /** Last offset written to the client, per stream: [stream, offset, epoch]. */
  positions: Array<[string, number, string]>;
}

/** Called for every publication, in offset order per stream. Returns the number of local recipients. */
export type PublicationHandler = (publication: Publication) => number;

export interface Broker {
  /** Engine name, for /readyz and logs. */
  readonly name: string;
  /** Registers the node's handler. Call once, before publishing. */
  start(handler: PublicationHandler): Promise<void>;
  /** Appends to the stream and delivers. With `idempotencyKey`, a repeat returns the original publication. */
  publish(stream: string, event: UnsequencedEvent, idempotencyKey?: string): Promise<Publication>;
  history(stream: string, query: HistoryQuery): Promise<HistoryPage>;
  position(stream: string): Promise<StreamPosition>;
  /** Streams whose name starts with `prefix` that received an event at or after `sinceMs`. */
  streamsActiveSince(prefix: string, sinceMs: number): Promise<string[]>;
  /** Parks a session for `ttlMs`. */
  saveSession(state: SessionState, ttlMs: number): Promise<void>;
  /** Removes and returns a parked session (atomically: one reconnect wins). */
  takeSession(userId: string, sessionId: string): Promise<SessionState | undefined>;
  close(): Promise<void>;
}
