// Parked sessions on Redis: one key per user and session id, with a TTL;
// GETDEL makes taking one atomic, so of two reconnects one wins.
import type { SessionState, SessionStore } from '../sessions.js';
import type { RedisLink } from './link.js';

export class RedisSessionStore implements SessionStore {
  readonly #link: RedisLink;

  constructor(link: RedisLink) {
    this.#link = link;
  }

  async save(state: SessionState, ttlMs: number): Promise<void> {
    const key = this.#link.key('sess', state.userId, state.sessionId);
    await this.#link.run('session save', () => this.#link.cmd.set(key, JSON.stringify(state), 'PX', Math.max(1, Math.round(ttlMs))));
  }

  async take(userId: string, sessionId: string): Promise<SessionState | undefined> {
    try {
      const raw = await this.#link.run('session lookup', () => this.#link.cmd.getdel(this.#link.key('sess', userId, sessionId)));
      return raw ? (JSON.parse(raw) as SessionState) : undefined;
    } catch (err) {
      this.#link.log.warn({ err: (err as Error).message }, 'session lookup failed; starting a fresh session');
      return undefined;
    }
  }
}
