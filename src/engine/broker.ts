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
  /** The event as JSON text, when the engine already has it (saves serializing it again for the fan-out). */
  json?: string;
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
  subscriptions: Array<{
    type: string;
    agent_id: string | null;
    filters: Record<string, unknown> | null;
    created_at: number;
    /** Single-stream subscriptions: [offset, epoch] of the stream when the subscription started. */
    start?: [number, string];
  }>;
  /** Last offset written to (or, for a live session, confirmed read by) the client, per stream: [stream, offset, epoch]. */
  positions: Array<[string, number, string]>;
  /** Set while a connection still holds the session (saved as it goes, so a dead node's clients can resume elsewhere). */
  live?: { node_id: string; connection_id: string };
}

/** Called for every publication, in offset order per stream. Returns the number of local recipients. */
export type PublicationHandler = (publication: Publication) => number;

/** Called when events of a stream were lost and cannot be replayed (a gap that history no longer covers, a new epoch). */
export type LossHandler = (stream: string, position: StreamPosition) => void;

export interface EngineStatus {
  ready: boolean;
  /** Why not ready (e.g. "redis: connection refused"). */
  reason?: string;
}

/** One node's entry in the cluster registry. */
export interface NodeReport {
  node_id: string;
  /** Where the node listens (host:port). */
  address: string;
  started_at: string;
  /** When this report was written (ms since the epoch). */
  reported_at: number;
  counters: Record<string, number>;
}

/** A connection as cluster-wide admin views list it. */
export interface ConnectionSummary {
  connection_id: string;
  node_id: string;
  user_id: string;
  session_id: string;
  connected_at: string;
  subscriptions: Array<{ type: string; agent_id: string | null; filters: Record<string, unknown> | null }>;
}

/**
 * Who is where: the node registry (heartbeat with TTL), connection
 * summaries for admin views, and per-user connection slots across nodes.
 */
export interface Presence {
  /** Writes this node's report; it expires after `ttlMs` unless renewed. */
  reportNode(report: NodeReport, ttlMs: number): Promise<void>;
  /** Live nodes (reports not expired), this one included. */
  nodes(): Promise<NodeReport[]>;
  /** Records (or, with null, removes) a connection of this node. Fire and forget. */
  setConnection(connectionId: string, summary: ConnectionSummary | null): void;
  /** Connections of the other live nodes. */
  remoteConnections(): Promise<ConnectionSummary[]>;
  /** Takes one of the user's `cap` connection slots across live nodes; false when all are taken. */
  claimUserSlot(userId: string, cap: number): Promise<boolean>;
  releaseUserSlot(userId: string): void;
}

export interface Broker extends Presence {
  /** Engine name, for /readyz and logs. */
  readonly name: string;
  /** This node's id in the cluster registry. */
  readonly nodeId: string;
  /** Registers the node's handlers. Call once, before publishing. */
  start(handler: PublicationHandler, onLoss: LossHandler): Promise<void>;
  /** Whether the engine can accept publications now. */
  status(): EngineStatus;
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
