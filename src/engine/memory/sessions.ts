// Sessions of the in-memory engine: by user, then session id, with expiry
// times; a user keeps at most `maxPerUser` (the least recently saved others
// go). Swept lazily on take and periodically by the engine.
import { savedSubscriptionKey, type SessionPatch, type SessionState, type SessionStore } from '../sessions.js';

interface Stored {
  state: SessionState;
  expiresAt: number;
}

export class MemorySessionStore implements SessionStore {
  /** user → session id → stored, in least-recently-saved-first order (re-inserted on save). */
  readonly #byUser = new Map<string, Map<string, Stored>>();

  async save(state: SessionState, ttlMs: number, maxPerUser: number): Promise<void> {
    let own = this.#byUser.get(state.userId);
    if (!own) this.#byUser.set(state.userId, (own = new Map()));
    own.delete(state.sessionId);
    // Kept as given (callers hand over a state built for the call; a copy would double every live session's memory).
    own.set(state.sessionId, { state, expiresAt: Date.now() + ttlMs });
    for (const sessionId of own.keys()) {
      if (own.size <= maxPerUser) break;
      own.delete(sessionId);
    }
  }

  async patch(userId: string, sessionId: string, patch: SessionPatch, ttlMs: number): Promise<void> {
    const stored = this.#byUser.get(userId)?.get(sessionId);
    if (!stored || stored.expiresAt <= Date.now()) return;
    const { state } = stored;
    state.startedAt = patch.startedAt;
    state.detachedAt = patch.detachedAt;
    if (patch.live) state.live = patch.live;
    if (patch.positions) state.positions = patch.positions.map((p) => [...p] as [string, number, string]);
    if (patch.subscriptions) {
      const changes = patch.subscriptions;
      state.subscriptions = state.subscriptions.filter((sub) => !Object.hasOwn(changes, savedSubscriptionKey(sub)));
      for (const sub of Object.values(changes)) if (sub) state.subscriptions.push(structuredClone(sub));
    }
    stored.expiresAt = Date.now() + ttlMs;
  }

  async take(userId: string, sessionId: string): Promise<SessionState | undefined> {
    const own = this.#byUser.get(userId);
    const stored = own?.get(sessionId);
    own?.delete(sessionId);
    if (own?.size === 0) this.#byUser.delete(userId);
    return stored && stored.expiresAt > Date.now() ? stored.state : undefined;
  }

  /** Drops expired sessions. */
  sweep(now: number): void {
    for (const [userId, own] of this.#byUser) {
      for (const [sessionId, stored] of own) if (stored.expiresAt <= now) own.delete(sessionId);
      if (own.size === 0) this.#byUser.delete(userId);
    }
  }
}
