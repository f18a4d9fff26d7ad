// Parked sessions of the in-memory engine: a map with expiry times, swept
// lazily on take and periodically by the engine.
import type { SessionState, SessionStore } from '../sessions.js';

function sessionKey(userId: string, sessionId: string): string {
  return `${userId}\u0000${sessionId}`;
}

export class MemorySessionStore implements SessionStore {
  readonly #sessions = new Map<string, { state: SessionState; expiresAt: number }>();

  async save(state: SessionState, ttlMs: number): Promise<void> {
    this.#sessions.set(sessionKey(state.userId, state.sessionId), { state, expiresAt: Date.now() + ttlMs });
  }

  async take(userId: string, sessionId: string): Promise<SessionState | undefined> {
    const key = sessionKey(userId, sessionId);
    const parked = this.#sessions.get(key);
    this.#sessions.delete(key);
    return parked && parked.expiresAt > Date.now() ? parked.state : undefined;
  }

  /** Drops expired sessions. */
  sweep(now: number): void {
    for (const [key, parked] of this.#sessions) if (parked.expiresAt <= now) this.#sessions.delete(key);
  }
}
