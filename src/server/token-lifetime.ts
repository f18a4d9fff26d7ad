// Token lifetime on a live connection: `token_expiring` shortly before the
// token's exp, close 4001 at exp + grace unless a `refresh` arrived, and the
// refresh itself. The one owner of each connection's expiry timers.
import type { TokenVerifier } from '../auth/jwt.js';
import { Permissions } from '../auth/permissions.js';
import type { Config } from '../config/config.js';
import { ServerMessages, type RequestId } from '../protocol/server-messages.js';
import type { Connection } from './connection.js';
import type { Subscriptions } from './subscribe.js';

export interface TokenLifetimeDeps {
  config: Pick<Config, 'tokenExpiryWarning' | 'tokenExpiryGrace'>;
  verifier: TokenVerifier;
  subscriptions: Pick<Subscriptions, 'revokeDisallowed'>;
  /** The connection's subscriptions changed (a refresh revoked some). */
  changed(conn: Connection): void;
}

/** setTimeout at an absolute time, safe past the 24.8-day limit of a single timer. */
function timerAt(atMs: number, fn: () => void): NodeJS.Timeout {
  const MAX = 2 ** 31 - 1;
  const delay = Math.max(0, atMs - Date.now());
  const timer = delay > MAX ? setTimeout(() => timerAt(atMs, fn), MAX) : setTimeout(fn, delay);
  timer.unref();
  return timer;
}

export class TokenLifetime {
  readonly #deps: TokenLifetimeDeps;
  readonly #timers = new Map<Connection, NodeJS.Timeout[]>();

  constructor(deps: TokenLifetimeDeps) {
    this.#deps = deps;
  }

  /** (Re)schedules the connection's expiry from its current token. */
  watch(conn: Connection): void {
    this.forget(conn);
    const exp = conn.principal.expiresAt;
    if (exp === undefined) return;
    const expMs = exp * 1000;
    const { tokenExpiryWarning, tokenExpiryGrace } = this.#deps.config;
    this.#timers.set(conn, [
      timerAt(expMs - tokenExpiryWarning * 1000, () => conn.sendMessage(ServerMessages.tokenExpiring(new Date(expMs).toISOString()))),
      timerAt(expMs + tokenExpiryGrace * 1000, () => conn.close('TOKEN_EXPIRED', 'token expired')),
    ]);
  }

  /** Stops the connection's timers (it closed). */
  forget(conn: Connection): void {
    const timers = this.#timers.get(conn);
    if (!timers) return;
    for (const t of timers) clearTimeout(t);
    this.#timers.delete(conn);
  }

  /**
   * Replaces the connection's token. Same `sub` only (else close 4003);
   * permissions are re-read: subscriptions the new token no longer allows are
   * removed, each announced with `subscription_revoked`.
   */
  async refresh(conn: Connection, token: string, requestId: RequestId | undefined): Promise<void> {
    const principal = await this.#deps.verifier.verify(token);
    if (conn.state !== 'open') return;
    if (principal.userId !== conn.userId) {
      conn.close('FORBIDDEN', 'refresh token belongs to another user');
      return;
    }
    if (!principal.has(Permissions.CONNECT)) {
      conn.close('FORBIDDEN', 'refresh token lacks websocket:connect');
      return;
    }
    conn.setPrincipal(principal);
    this.watch(conn);
    this.#deps.subscriptions.revokeDisallowed(conn);
    const expiresAt = principal.expiresAt === undefined ? null : new Date(principal.expiresAt * 1000).toISOString();
    conn.sendMessage(ServerMessages.tokenRefreshed(expiresAt, requestId));
    this.#deps.changed(conn);
  }
}
