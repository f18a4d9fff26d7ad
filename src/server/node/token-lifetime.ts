// Token lifetime on a live connection: `token_expiring` shortly before the
// token's exp, close 4001 at exp + grace unless a `refresh` arrived, and the
// refresh itself. The one owner of every connection's expiry: one timer per
// node, set for the earliest due moment of a heap (no timer or closure per
// connection, and a firing touches only what is due).
//
// Key rotation ends sessions too: a token the previous HS secret verified
// lives only until that secret's cut-off (warned before, closed at it, no
// grace), and a JWKS-signed one only while its key stays in the set, checked
// every `jwtJwksRefresh` seconds.
import type { TokenVerifier } from '../../auth/jwt.js';
import { Permissions, type Principal } from '../../auth/permissions.js';
import type { Config } from '../../config/config.js';
import { ServerMessages, type RequestId } from '../../protocol/server-messages.js';
import type { Connection } from '../connection/connection.js';
import type { SubscriptionManager } from '../delivery/subscription-manager.js';

export interface TokenLifetimeDeps {
  config: Pick<Config, 'tokenExpiryWarning' | 'tokenExpiryGrace' | 'jwtJwksRefresh'>;
  verifier: TokenVerifier;
  subscriptions: Pick<SubscriptionManager, 'revokeDisallowed'>;
  /** The connection's subscriptions changed (a refresh revoked some). */
  changed(conn: Connection): void;
}

/** The longest delay one setTimeout takes (about 24.8 days); later dues are reached in steps. */
const MAX_DELAY = 2 ** 31 - 1;

/**
 * When a connection's token runs out (ms since the epoch: the earlier of its
 * exp and its key's retirement), when it is closed, and whether it was warned.
 */
interface Expiry {
  expMs: number;
  closeMs: number;
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
  /** The JWKS key check, running while JWKS-signed connections are watched. */
  #keyTimer: NodeJS.Timeout | undefined;
  #checkingKeys = false;

  constructor(deps: TokenLifetimeDeps) {
    this.#deps = deps;
  }

  /** (Re)schedules the connection's expiry from its current token. */
  watch(conn: Connection): void {
    const { expiresAt, signing } = conn.principal;
    const retiresAt = signing?.via === 'previous-secret' ? signing.retiresAt : Number.POSITIVE_INFINITY;
    if (expiresAt === undefined && retiresAt === Number.POSITIVE_INFINITY) {
      this.forget(conn);
      return;
    }
    const expMs = expiresAt === undefined ? Number.POSITIVE_INFINITY : expiresAt * 1000;
    // A retired key's tokens end at the cut-off itself: the grace is for a refresh racing the token's own exp.
    const expiry: Expiry =
      retiresAt < expMs
        ? { expMs: retiresAt, closeMs: retiresAt, warned: false }
        : { expMs, closeMs: expMs + this.#deps.config.tokenExpiryGrace * 1000, warned: false };
    this.#expiries.set(conn, expiry);
    this.#push(conn, expiry);
    this.#arm();
    if (signing?.via === 'jwks') this.#checkKeysEvery();
  }

  /** Stops the key checks (the node is shutting down). */
  close(): void {
    if (this.#keyTimer !== undefined) clearInterval(this.#keyTimer);
    this.#keyTimer = undefined;
  }

  #checkKeysEvery(): void {
    if (this.#keyTimer !== undefined) return;
    this.#keyTimer = setInterval(() => void this.#checkKeys(), this.#deps.config.jwtJwksRefresh * 1000);
    this.#keyTimer.unref();
  }

  /**
   * Closes (4001) the connections whose token's JWKS key left the set. A
   * connection that refreshed to a token of a key still in the set keeps
   * going.
   */
  async #checkKeys(): Promise<void> {
    if (this.#checkingKeys) return;
    this.#checkingKeys = true;
    try {
      const principals = new Set<Principal>();
      for (const conn of this.#expiries.keys()) if (conn.principal.signing?.via === 'jwks') principals.add(conn.principal);
      // Asked even with none: a changed set also drops the verified tokens it no longer backs.
      const retired = await this.#deps.verifier.retired(principals);
      for (const conn of [...this.#expiries.keys()]) {
        // A connection that refreshed meanwhile holds another principal: not retired.
        if (!retired.has(conn.principal)) continue;
        this.#expiries.delete(conn);
        conn.close('TOKEN_EXPIRED', 'token signing key retired');
      }
    } finally {
      this.#checkingKeys = false;
    }
  }

  /** Stops watching the connection (it closed). Its due moments go stale and are dropped when reached. */
  forget(conn: Connection): void {
    this.#expiries.delete(conn);
    if (this.#expiries.size === 0) {
      this.#due = [];
      if (this.#timer !== undefined) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Number.POSITIVE_INFINITY;
      this.close();
    }
  }

  /** The next moment something is due for `expiry`: its warning, or its close. */
  #dueOf(expiry: Expiry): number {
    return expiry.warned ? expiry.closeMs : expiry.expMs - this.#deps.config.tokenExpiryWarning * 1000;
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
