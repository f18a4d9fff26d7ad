// The session store seam: where a connection's session (subscriptions and
// positions) waits for a reconnect with the same session id, on any node.

/** A subscription as a session keeps it. */
export interface SavedSubscription {
  type: string;
  agent_id: string | null;
  filters: Record<string, unknown> | null;
  created_at: number;
  /** Single-stream subscriptions: [offset, epoch] of the stream when the subscription started. */
  start?: [number, string];
}

/** What a connection leaves behind so a reconnect with the same session id resumes it. */
export interface SessionState {
  userId: string;
  sessionId: string;
  /** When the session's first connection opened (ms since the epoch). */
  startedAt: number;
  /** When its last connection closed, or when the live record was written (ms since the epoch). */
  detachedAt: number;
  subscriptions: SavedSubscription[];
  /** Last offset written to (or, for a live session, confirmed read by) the client, per stream: [stream, offset, epoch]. */
  positions: Array<[string, number, string]>;
  /** Set while a connection still holds the session (saved as it goes, so a dead node's clients can resume elsewhere). */
  live?: { node_id: string; connection_id: string };
}

export interface SessionStore {
  /** Parks a session for `ttlMs` (replacing any record of the same user and session id). */
  save(state: SessionState, ttlMs: number): Promise<void>;
  /** Removes and returns a parked session, atomically: of two reconnects, one wins. */
  take(userId: string, sessionId: string): Promise<SessionState | undefined>;
}
