// The WebSocket handshake gate. Path, origin, capacity, token and permission
// are all decided here. With the token in the URL or a header, all of it is
// decided before the 101: a refused client gets a plain HTTP response with a
// JSON body {"error":{"code","message"}} and never a socket. First-message
// auth (`?auth=message`) cannot be: its token arrives on the open socket, so
// the token and what follows from it (permission, user slot, session) are
// decided after the 101, and a refusal closes the socket with its own 44xx
// close code (CloseCodes in src/protocol/codes.ts).
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { RawData, WebSocket, WebSocketServer } from 'ws';
import { Permissions, type Principal } from '../../auth/permissions.js';
import { tokenFromRequest, type TokenVerifier } from '../../auth/jwt.js';
import type { Config } from '../../config/config.js';
import type { Presence } from '../../engine/presence.js';
import type { SessionState } from '../../engine/sessions.js';
import { authRefusalClose, CloseCodes, EscaiError, ErrorCodes, httpErrorBody, type ErrorCode } from '../../protocol/codes.js';
import type { Admission, Connection } from '../connection/connection.js';
import type { NodeCounters } from '../node/counters.js';
import type { Metrics } from '../http/metrics.js';
import { catalogued } from '../node/errors.js';
import { KeyedBuckets } from './limits.js';
import type { SessionKeeper } from '../node/sessions.js';
import { frameText } from '../connection/decode.js';
import { clientAddress, type TrustFunction } from './proxy.js';

const MONITOR_PATH = /^\/ws\/monitor\/([^/]+)$/;
/** A session id: a URL path segment, so never dots only (browsers and proxies resolve `.` and `..` away). */
const SESSION_ID = /^(?!\.+$)[A-Za-z0-9_.:-]{1,128}$/;
const WS_KEY = /^[+/0-9A-Za-z]{22}==$/;
/** Messages kept while a first-message-auth connection is being set up. */
const MAX_EARLY_MESSAGES = 32;

/** What a principal took on its way in: a user slot, its parked session. */
interface Claim {
  holdsUserSlot: boolean;
  session: SessionState | undefined;
}

/**
 * A URL fit for a log: the query is parsed the way the token is read from it
 * (so a percent-encoded name such as `%74oken` cannot slip a token past), and
 * every parameter whose name means a token has its value replaced.
 */
export function redactUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  let redacted = false;
  for (const name of new Set(params.keys())) {
    if (/token|jwt|secret|password|authorization/i.test(name)) {
      params.set(name, '[REDACTED]');
      redacted = true;
    }
  }
  return redacted ? `${url.slice(0, q)}?${params.toString()}` : url;
}

function refuse(socket: Duplex, code: ErrorCode, message: string, headers: Record<string, string> = {}): void {
  const status = ErrorCodes[code].status;
  const body = JSON.stringify(httpErrorBody(code, message));
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  if (socket.writable) socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
  else socket.destroy();
}

export interface GateDeps {
  config: Pick<Config, 'allowedOrigins' | 'maxConnections' | 'maxConnectionsPerUser' | 'maxConnectionsPerIp' | 'handshakeRate' | 'authTimeout'>;
  /** Which peers are trusted proxies (ESCAI_TRUST_PROXY, compiled); undefined: the socket's address only. */
  trust: TrustFunction | undefined;
  verifier: TokenVerifier;
  wss: WebSocketServer;
  presence: Pick<Presence, 'claimUserSlot' | 'releaseUserSlot'>;
  sessions: Pick<SessionKeeper, 'take' | 'giveBack'>;
  /** Open connections on this node (the capacity check). */
  connections: { readonly size: number };
  /** Hands an accepted socket to the node. */
  accept(ws: WebSocket, admission: Admission, session: SessionState | undefined): Connection;
  counters: NodeCounters;
  metrics: Pick<Metrics, 'handshakeRefusals'>;
  log: Logger;
}

export class UpgradeGate {
  readonly #deps: GateDeps;
  /** Handshakes past the capacity check but not yet accepted: they hold a slot. */
  #pending = 0;
  #closed = false;

  /**
   * Slots held per client address: every connection from the moment its
   * upgrade passes the cap check (waiting for its token to verify, or for a
   * first auth message) until it is refused or closes.
   */
  readonly #perIp = new Map<string, number>();
  /** Slots held in all (the sum of #perIp). */
  #slots = 0;
  /** Handshakes per client address per second (bursts of twice that). */
  readonly #handshakes: KeyedBuckets;

  constructor(deps: GateDeps) {
    this.#deps = deps;
    this.#handshakes = new KeyedBuckets(deps.config.handshakeRate, deps.config.handshakeRate * 2);
  }

  /** A slot is given back (a connection the gate let in has gone, or a handshake ended): its address may open another. */
  released(ip: string): void {
    const n = this.#perIp.get(ip);
    if (n === undefined) return;
    this.#slots--;
    if (n > 1) this.#perIp.set(ip, n - 1);
    else this.#perIp.delete(ip);
  }

  /** Slots held (open connections and handshakes in progress), and by how many addresses: the metrics. */
  get addressSlots(): { slots: number; addresses: number } {
    return { slots: this.#slots, addresses: this.#perIp.size };
  }

  /** Takes one of the address's slots: in the same turn as the cap check, so concurrent handshakes cannot all pass it. */
  #reserve(ip: string): void {
    this.#perIp.set(ip, (this.#perIp.get(ip) ?? 0) + 1);
    this.#slots++;
  }

  /** Whether the gate refuses every handshake (the node is shutting down). */
  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    this.#closed = true;
  }

  /**
   * Logs a socket error during the handshake. One function for every socket:
   * a closure made in `handle` would keep the request (its headers, the
   * head buffer) alive as long as the socket lives.
   */
  readonly #onSocketError = (err: Error): void => this.#deps.log.debug({ err }, 'socket error during handshake');

  /** The `upgrade` listener of the HTTP server. */
  readonly handle = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', this.#onSocketError);
    this.#admit(req, socket, head).catch((err: unknown) => {
      const known = catalogued(err);
      if (known) {
        this.#refuse(req, socket, known.code, known.message);
        return;
      }
      this.#deps.log.error({ err, url: redactUrl(req.url) }, 'upgrade failed');
      this.#refuse(req, socket, 'INTERNAL_ERROR', 'Internal error');
    });
  };

  /** Refuses the handshake (counted by code, and logged). */
  #refuse(req: IncomingMessage, socket: Duplex, code: ErrorCode, message: string, headers?: Record<string, string>): void {
    this.#deps.counters.handshakeRefusals++;
    this.#deps.metrics.handshakeRefusals.inc({ code });
    this.#deps.log.info({ code, url: redactUrl(req.url), remote: req.socket.remoteAddress }, 'handshake refused');
    refuse(socket, code, message, headers);
  }

  async #admit(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const { config, verifier } = this.#deps;
    // Every attempt counts against its address's handshake rate, well-formed or not (proxies: ESCAI_TRUST_PROXY).
    const ip = clientAddress(req, this.#deps.trust);
    if (!this.#handshakes.take(ip)) {
      this.#refuse(req, socket, 'IP_CONNECTION_LIMIT', `Too many handshakes from this address (at most ${config.handshakeRate} per second)`, {
        'Retry-After': '1',
      });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = MONITOR_PATH.exec(url.pathname);
    if (!match) throw new EscaiError('NOT_FOUND', 'WebSocket endpoint is /ws/monitor/{session_id}');
    let sessionId: string;
    try {
      sessionId = decodeURIComponent(match[1]!);
    } catch {
      sessionId = '';
    }
    if (!SESSION_ID.test(sessionId)) throw new EscaiError('BAD_REQUEST', 'session_id must be 1-128 characters of A-Z a-z 0-9 _ . : -, not dots only');
    if (this.#closed) throw new EscaiError('SHUTTING_DOWN', 'Server is shutting down');
    // What ws would refuse (with a plain-text 400 and no callback), refused here first, before anything is claimed.
    const key = req.headers['sec-websocket-key'];
    const version = req.headers['sec-websocket-version'];
    if (
      req.method !== 'GET' ||
      req.headers.upgrade?.toLowerCase() !== 'websocket' ||
      typeof key !== 'string' ||
      !WS_KEY.test(key.trim()) ||
      version === undefined
    ) {
      throw new EscaiError('BAD_REQUEST', 'Not a valid WebSocket upgrade (method, Upgrade, Sec-WebSocket-Key or Sec-WebSocket-Version)');
    }
    if (version !== '13' && version !== '8') {
      // RFC 6455 §4.4: name the versions spoken.
      this.#refuse(req, socket, 'UNSUPPORTED_WEBSOCKET_VERSION', `WebSocket version ${String(version).slice(0, 16)} is not supported; use 13`, {
        'Sec-WebSocket-Version': '13, 8',
      });
      return;
    }
    const origin = req.headers.origin;
    if (config.allowedOrigins.length > 0 && (!origin || !config.allowedOrigins.includes(origin))) {
      throw new EscaiError('ORIGIN_NOT_ALLOWED', 'Origin not allowed');
    }
    if (this.#deps.connections.size + this.#pending >= config.maxConnections) {
      this.#refuse(req, socket, 'SERVER_AT_CAPACITY', `Server is at its maximum of ${config.maxConnections} connections`, { 'Retry-After': '5' });
      return;
    }
    if ((this.#perIp.get(ip) ?? 0) >= config.maxConnectionsPerIp) {
      this.#refuse(req, socket, 'IP_CONNECTION_LIMIT', `At most ${config.maxConnectionsPerIp} connections per address on this node`, { 'Retry-After': '5' });
      return;
    }
    const batch = url.searchParams.get('batch') === '1';
    this.#pending++;
    this.#reserve(ip);
    // Who gives the slot back: this function, unless a socket or a Connection took it over (exactly once either way).
    let slotPassed = false;
    try {
      const token = tokenFromRequest(req.headers.authorization, url);
      if (!token) {
        if (url.searchParams.get('auth') !== 'message')
          throw new EscaiError('TOKEN_MISSING', 'A token is required (?token=, Authorization: Bearer, or ?auth=message and an auth message)');
        slotPassed = await this.#authenticateByMessage(req, socket, head, sessionId, ip, batch);
        return;
      }
      const principal = await verifier.verify(token);
      const claim = await this.#claim(principal, sessionId);
      if (socket.destroyed || !socket.writable) {
        this.#giveBack(principal, claim);
        return;
      }
      let accepted = false;
      // handleUpgrade calls back synchronously, or never (it refused the socket).
      this.#deps.wss.handleUpgrade(req, socket, head, (ws) => {
        accepted = true;
        // ws handles the socket's errors from here on.
        socket.off('error', this.#onSocketError);
        this.#open(ws, principal, sessionId, ip, claim, batch);
      });
      slotPassed = accepted;
      if (!accepted) this.#giveBack(principal, claim);
    } finally {
      this.#pending--;
      if (!slotPassed) this.released(ip);
    }
  }

  /**
   * What a verified principal takes before it may connect: the permission,
   * one of the user's slots, and its parked session. Throws (holding
   * nothing) when refused.
   */
  async #claim(principal: Principal, sessionId: string): Promise<Claim> {
    const { config, presence, sessions } = this.#deps;
    if (!principal.has(Permissions.CONNECT)) throw new EscaiError('PERMISSION_DENIED', 'Missing permission websocket:connect');
    let holdsUserSlot = false;
    if (config.maxConnectionsPerUser > 0) {
      try {
        holdsUserSlot = await presence.claimUserSlot(principal.userId, config.maxConnectionsPerUser);
        if (!holdsUserSlot) throw new EscaiError('USER_CONNECTION_LIMIT', `At most ${config.maxConnectionsPerUser} connections per user`);
      } catch (err) {
        if (err instanceof EscaiError) throw err;
        // The cap cannot be counted while the engine is away: admit (uncounted) rather than lock every client out.
        this.#deps.log.warn({ err: (err as Error).message, userId: principal.userId }, 'per-user connection cap not checked (engine unavailable); admitting');
      }
    }
    let session: SessionState | undefined;
    try {
      session = await sessions.take(principal.userId, sessionId);
      if (this.#closed) throw new EscaiError('SHUTTING_DOWN', 'Server is shutting down');
    } catch (err) {
      this.#giveBack(principal, { holdsUserSlot, session });
      throw err;
    }
    return { holdsUserSlot, session };
  }

  /** Gives back what a claim took, when its connection never opened. */
  #giveBack(principal: Principal, claim: Claim): void {
    if (claim.holdsUserSlot) this.#deps.presence.releaseUserSlot(principal.userId);
    if (claim.session) this.#deps.sessions.giveBack(claim.session);
  }

  #open(ws: WebSocket, principal: Principal, sessionId: string, ip: string, claim: Claim, batch: boolean): Connection {
    const admission: Admission = {
      principal,
      sessionId,
      sessionStartedAt: claim.session?.startedAt ?? Date.now(),
      holdsUserSlot: claim.holdsUserSlot,
      remoteAddress: ip,
      batch,
    };
    // The slot reserved at the upgrade is the connection's now: its removal from the registry gives it back (released()).
    return this.#deps.accept(ws, admission, claim.session);
  }

  /**
   * First-message auth (`?auth=message`, for browsers that should not put a
   * token in a URL): the socket opens, and its first message must be
   * `{"type":"auth","data":{"token":"..."}}` within the auth timeout; nothing
   * else is accepted before. A refusal closes it with the refusal's own close
   * code (44xx, one per catalogue code: 4401 TOKEN_INVALID, 4410
   * PERMISSION_DENIED, …), so clients decide by the code; the reason, for
   * people, still starts with the catalogue code.
   * Messages that follow the auth message before the connection is set up
   * are kept and handled in order.
   *
   * Resolves true once the socket is upgraded: from then on the socket holds
   * its address's slot, until it closes (refused, timed out, gone) or, once
   * it opens as a connection, until the registry lets it go.
   */
  async #authenticateByMessage(req: IncomingMessage, socket: Duplex, head: Buffer, sessionId: string, ip: string, batch: boolean): Promise<boolean> {
    let opened = false;
    const ws = await new Promise<WebSocket | undefined>((resolve) => {
      let called = false;
      this.#deps.wss.handleUpgrade(req, socket, head, (accepted) => {
        called = true;
        socket.off('error', this.#onSocketError);
        // Given back when the socket has closed, not when it is told to: a refused client that never answers the close still holds it.
        accepted.once('close', () => {
          if (!opened) this.released(ip);
        });
        resolve(accepted);
      });
      if (!called) resolve(undefined);
    });
    if (!ws) return false;
    const early: RawData[] = [];
    let first: RawData | undefined;
    const arrived = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.#deps.config.authTimeout * 1000);
      ws.on('message', (data) => {
        if (first === undefined) {
          first = data;
          clearTimeout(timer);
          resolve();
        } else if (early.length < MAX_EARLY_MESSAGES) early.push(data);
        else ws.close(CloseCodes.POLICY_VIOLATION.code, 'too many messages before authentication');
      });
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    ws.on('error', () => {});
    await arrived;
    const refuseWith = (code: ErrorCode, message: string): true => {
      this.#deps.counters.handshakeRefusals++;
      this.#deps.metrics.handshakeRefusals.inc({ code });
      this.#deps.log.info({ code, remote: ip, sessionId }, 'first-message auth refused');
      ws.close(CloseCodes[authRefusalClose(code)].code, `${code}: ${message}`.slice(0, 120));
      return true;
    };
    if (ws.readyState !== ws.OPEN) return true;
    if (first === undefined) return refuseWith('TOKEN_MISSING', `no auth message within ${this.#deps.config.authTimeout} s`);
    let token: unknown;
    try {
      const message = JSON.parse(frameText(first)) as {
        type?: unknown;
        data?: { token?: unknown };
      };
      if (message?.type === 'auth') token = message.data?.token;
    } catch {
      // not JSON: refused below
    }
    if (typeof token !== 'string' || token.length === 0 || token.length > 16_384) {
      return refuseWith('TOKEN_MISSING', 'the first message must be {"type":"auth","data":{"token":"..."}}');
    }
    let principal: Principal;
    let claim: Claim;
    try {
      principal = await this.#deps.verifier.verify(token);
      claim = await this.#claim(principal, sessionId);
    } catch (err) {
      const known = catalogued(err) ?? new EscaiError('INTERNAL_ERROR', 'Internal error');
      return refuseWith(known.code, known.message);
    }
    if (ws.readyState !== ws.OPEN) {
      this.#giveBack(principal, claim);
      return true;
    }
    ws.removeAllListeners('message');
    opened = true;
    const conn = this.#open(ws, principal, sessionId, ip, claim, batch);
    for (const data of early) conn.receive(data);
    return true;
  }
}
