// Token lifetime on a live connection: `token_expiring` shortly before the
// token's exp, close 4001 at exp + grace unless a `refresh` arrived, and the
// refresh itself. The one owner of every connection's expiry: one timer per
// node, set for the earliest due moment of a heap (no timer or closure per
// connection, and a firing touches only what is due).
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

/** A moment something is due for a connection's expiry (stale once the connection is forgotten or re-watched). */
interface Due {
  atMs: number;
  conn: Connection;
  expiry: Expiry;
}

export class TokenLifetime {
  readonly #deps: TokenLifetimeDeps;
  /** Every watched connection's current expiry. */
  readonly #expiries = new Map<Connection, Expiry>();
  /** Due moments, earliest first (a binary min-heap); one node-wide timer fires at the first. */
  #due: Due[] = [];
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
    this.#push(conn, expiry);
    this.#arm();
  }

  /** Stops watching the connection (it closed). Its due moments go stale and are dropped when reached. */
  forget(conn: Connection): void {
    this.#expiries.delete(conn);
    if (this.#expiries.size === 0) {
      this.#due = [];
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Number.POSITIVE_INFINITY;
    }
  }

  /** The next moment something is due for `expiry`: its warning, or its close. */
  #dueOf(expiry: Expiry): number {
    const { tokenExpiryWarning, tokenExpiryGrace } = this.#deps.config;
    return expiry.warned ? expiry.expMs + tokenExpiryGrace * 1000 : expiry.expMs - tokenExpiryWarning * 1000;
  }

  /** Makes sure the timer fires no later than the earliest due moment. */
  #arm(): void {
    const first = this.#due[0];
    if (first === undefined || first.atMs >= this.#timerAt) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = first.atMs;
    this.#timer = setTimeout(this.#fire, Math.min(MAX_DELAY, Math.max(0, first.atMs - Date.now())));
    this.#timer.unref();
  }

  /** Warns and closes what is due (only what is due: each firing costs what it handles), then re-arms. */
  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    while (this.#due.length > 0 && this.#due[0]!.atMs <= now) {
      const { conn, expiry } = this.#pop();
      if (this.#expiries.get(conn) !== expiry) continue; // forgotten, or watched again since
      if (!expiry.warned) {
        expiry.warned = true;
        conn.sendMessage(ServerMessages.tokenExpiring(new Date(expiry.expMs).toISOString()));
        this.#push(conn, expiry); // its close (already due too when the warning came late)
      } else {
        this.#expiries.delete(conn);
        conn.close('TOKEN_EXPIRED', 'token expired');
      }
    }
    // Re-watched connections leave stale moments behind: rebuild when they outnumber the live ones.
    if (this.#due.length > 2 * this.#expiries.size + 1024) {
      this.#due = [];
      for (const [conn, expiry] of this.#expiries) this.#push(conn, expiry);
    }
    this.#arm();
  };

  #push(conn: Connection, expiry: Expiry): void {
    const heap = this.#due;
    const item: Due = { atMs: this.#dueOf(expiry), conn, expiry };
    let i = heap.push(item) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.atMs <= item.atMs) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = item;
  }

  #pop(): Due {
    const heap = this.#due;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= heap.length) break;
        const c = l + 1 < heap.length && heap[l + 1]!.atMs < heap[l]!.atMs ? l + 1 : l;
        if (heap[c]!.atMs >= last.atMs) break;
        heap[i] = heap[c]!;
        i = c;
      }
      heap[i] = last;
    }
    return top;
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
