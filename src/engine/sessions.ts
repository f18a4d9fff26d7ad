// The session store seam: where a connection's session (subscriptions and
// positions) waits for a reconnect with the same session id, on any node.
import type { SavedChangeState } from '../filters/change-state.js';
import { subscriptionKey } from '../protocol/constants.js';

/** A subscription as a session keeps it. */
export interface SavedSubscription {
  type: string;
  agent_id: string | null;
  filters: Record<string, unknown> | null;
  created_at: number;
  /** Single-stream subscriptions: [offset, epoch] of the stream when the subscription started. */
  start?: [number, string];
  /** Filters with conditions on change: per agent, what they judge against (bounded; see src/filters/change-state.ts). */
  state?: SavedChangeState;
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

/** The key of a saved subscription within its session: type + agent (protocol/constants.ts, `subscriptionKey`). */
export function savedSubscriptionKey(sub: Pick<SavedSubscription, 'type' | 'agent_id'>): string {
  return subscriptionKey(sub.type, sub.agent_id);
}

/** A change to a stored session: only what changed is written (a subscription, the positions, the times). */
export interface SessionPatch {
  startedAt: number;
  detachedAt: number;
  live?: SessionState['live'];
  /** Subscriptions added (a value) or removed (null), by savedSubscriptionKey. */
  subscriptions?: Record<string, SavedSubscription | null>;
  positions?: SessionState['positions'];
}

export interface SessionStore {
  /**
   * Writes a whole session for `ttlMs` (replacing any record of the same user
   * and session id). A user keeps at most `maxPerUser` sessions: saving one
   * more drops that user's least recently saved other sessions.
   */
  save(state: SessionState, ttlMs: number, maxPerUser: number): Promise<void>;
  /** Applies a change to a stored session and renews its TTL; nothing when it is gone (taken, expired, dropped). */
  patch(userId: string, sessionId: string, patch: SessionPatch, ttlMs: number): Promise<void>;
  /** Removes and returns a session, atomically: of two reconnects, one wins. */
  take(userId: string, sessionId: string): Promise<SessionState | undefined>;
}
