// Token lifetime on a live connection: `token_expiring` shortly before the
// token's exp, close 4001 at exp + grace unless a `refresh` arrived, and the
// refresh itself. The one owner of every connection's expiry: one timer per
// node, set for the earliest due moment (no timer or closure per connection).
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

/** The longest delay one setTimeout takes (about 24.8 days); later dues are reached in steps. */
const MAX_DELAY = 2 ** 31 - 1;

/** When a connection's token runs out (ms since the epoch), and whether it was warned. */
interface Expiry {
  expMs: number;
  warned: boolean;
}

export class TokenLifetime {
  readonly #deps: TokenLifetimeDeps;
  /** Every watched connection's expiry; one node-wide timer fires at the earliest due moment. */
  readonly #expiries = new Map<Connection, Expiry>();
  #timer: NodeJS.Timeout | undefined;
  /** When the timer fires (ms since the epoch). */
  #timerAt = Number.POSITIVE_INFINITY;

  constructor(deps: TokenLifetimeDeps) {
    this.#deps = deps;
  }

  /** (Re)schedules the connection's expiry from its current token. */
  watch(conn: Connection): void {
    const exp = conn.principal.expiresAt;
    if (exp === undefined) {
      this.forget(conn);
      return;
    }
    const expiry = { expMs: exp * 1000, warned: false };
    this.#expiries.set(conn, expiry);
    this.#arm(this.#dueOf(expiry));
  }

  /** Stops watching the connection (it closed). The node-wide timer stays; it finds nothing due for it. */
  forget(conn: Connection): void {
    this.#expiries.delete(conn);
    if (this.#expiries.size === 0 && this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Number.POSITIVE_INFINITY;
    }
  }

  /** The next moment something is due for `expiry`: its warning, or its close. */
  #dueOf(expiry: Expiry): number {
    const { tokenExpiryWarning, tokenExpiryGrace } = this.#deps.config;
    return expiry.warned ? expiry.expMs + tokenExpiryGrace * 1000 : expiry.expMs - tokenExpiryWarning * 1000;
  }

  /** Makes sure the timer fires no later than `atMs`. */
  #arm(atMs: number): void {
    if (atMs >= this.#timerAt) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = atMs;
    this.#timer = setTimeout(this.#fire, Math.min(MAX_DELAY, Math.max(0, atMs - Date.now())));
    this.#timer.unref();
  }

  /** Warns and closes what is due, then sets the timer for the earliest of the rest. */
  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [conn, expiry] of this.#expiries) {
      if (!expiry.warned && now >= this.#dueOf(expiry)) {
        expiry.warned = true;
        conn.sendMessage(ServerMessages.tokenExpiring(new Date(expiry.expMs).toISOString()));
      }
      if (expiry.warned && now >= this.#dueOf(expiry)) {
        this.#expiries.delete(conn);
        conn.close('TOKEN_EXPIRED', 'token expired');
        continue;
      }
      next = Math.min(next, this.#dueOf(expiry));
    }
    if (next !== Number.POSITIVE_INFINITY) this.#arm(next);
  };

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
