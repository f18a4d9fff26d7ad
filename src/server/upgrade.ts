// The WebSocket handshake gate. Path, origin, capacity, token and permission
// are all decided here, before the 101: a refused client gets a plain HTTP
// response with a JSON body {"error":{"code","message"}} and never a socket.
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { WebSocket, WebSocketServer } from 'ws';
import { Permissions } from '../auth/permissions.js';
import { tokenFromRequest, type TokenVerifier } from '../auth/jwt.js';
import type { Config } from '../config/config.js';
import type { Presence } from '../engine/presence.js';
import type { SessionState } from '../engine/sessions.js';
import { EscaiError, ErrorCodes, httpErrorBody, type ErrorCode } from '../protocol/codes.js';
import type { Admission } from './connection.js';
import type { NodeCounters } from './counters.js';
import type { Metrics } from './metrics.js';
import { catalogued } from './errors.js';
import type { SessionKeeper } from './sessions.js';

const MONITOR_PATH = /^\/ws\/monitor\/([^/]+)$/;
const SESSION_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const WS_KEY = /^[+/0-9A-Za-z]{22}==$/;

/** Removes `token=` values from a URL before it is logged. */
export function redactUrl(url: string | undefined): string | undefined {
  return url?.replace(/([?&]token=)[^&#]*/gi, '$1[REDACTED]');
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
  config: Pick<Config, 'allowedOrigins' | 'maxConnections' | 'maxConnectionsPerUser'>;
  verifier: TokenVerifier;
  wss: WebSocketServer;
  presence: Pick<Presence, 'claimUserSlot' | 'releaseUserSlot'>;
  sessions: Pick<SessionKeeper, 'take' | 'giveBack'>;
  /** Open connections on this node (the capacity check). */
  connections: { readonly size: number };
  /** Hands an accepted socket to the node. */
  accept(ws: WebSocket, admission: Admission, session: SessionState | undefined): void;
  counters: NodeCounters;
  metrics: Pick<Metrics, 'handshakeRefusals'>;
  log: Logger;
}

export class UpgradeGate {
  readonly #deps: GateDeps;
  /** Handshakes past the capacity check but not yet accepted: they hold a slot. */
  #pending = 0;
  #closed = false;

  constructor(deps: GateDeps) {
    this.#deps = deps;
  }

  /** Whether the gate refuses every handshake (the node is shutting down). */
  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    this.#closed = true;
  }

  /** The `upgrade` listener of the HTTP server. */
  readonly handle = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', (err) => this.#deps.log.debug({ err }, 'socket error during handshake'));
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
    const { config, presence, sessions, verifier } = this.#deps;
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = MONITOR_PATH.exec(url.pathname);
    if (!match) throw new EscaiError('NOT_FOUND', 'WebSocket endpoint is /ws/monitor/{session_id}');
    let sessionId: string;
    try {
      sessionId = decodeURIComponent(match[1]!);
    } catch {
      sessionId = '';
    }
    if (!SESSION_ID.test(sessionId)) throw new EscaiError('BAD_REQUEST', 'session_id must be 1-128 characters of A-Z a-z 0-9 _ . : -');
    if (this.#closed) throw new EscaiError('SHUTTING_DOWN', 'Server is shutting down');
    // What ws would refuse (with a plain-text 400 and no callback), refused here first, before anything is claimed.
    const key = req.headers['sec-websocket-key'];
    const version = req.headers['sec-websocket-version'];
    if (req.method !== 'GET' || req.headers.upgrade?.toLowerCase() !== 'websocket' || typeof key !== 'string' || !WS_KEY.test(key.trim()) || (version !== '8' && version !== '13')) {
      throw new EscaiError('BAD_REQUEST', 'Not a valid WebSocket upgrade (method, Upgrade, Sec-WebSocket-Key or Sec-WebSocket-Version)');
    }
    const origin = req.headers.origin;
    if (config.allowedOrigins.length > 0 && (!origin || !config.allowedOrigins.includes(origin))) {
      throw new EscaiError('ORIGIN_NOT_ALLOWED', 'Origin not allowed');
    }
    if (this.#deps.connections.size + this.#pending >= config.maxConnections) {
      this.#refuse(req, socket, 'SERVER_AT_CAPACITY', `Server is at its maximum of ${config.maxConnections} connections`, { 'Retry-After': '5' });
      return;
    }
    this.#pending++;
    try {
      const token = tokenFromRequest(req.headers.authorization, url);
      if (!token) throw new EscaiError('TOKEN_MISSING', 'A token is required (?token= or Authorization: Bearer)');
      const principal = await verifier.verify(token);
      if (!principal.has(Permissions.CONNECT)) throw new EscaiError('PERMISSION_DENIED', 'Missing permission websocket:connect');
      let holdsUserSlot = false;
      if (config.maxConnectionsPerUser > 0) {
        try {
          holdsUserSlot = await presence.claimUserSlot(principal.userId, config.maxConnectionsPerUser);
        } catch (err) {
          throw new EscaiError('ENGINE_UNAVAILABLE', `Cannot check the per-user connection cap: ${(err as Error).message}`);
        }
        if (!holdsUserSlot) throw new EscaiError('USER_CONNECTION_LIMIT', `At most ${config.maxConnectionsPerUser} connections per user`);
      }
      let accepted = false;
      let session: SessionState | undefined;
      try {
        session = await sessions.take(principal.userId, sessionId);
        if (this.#closed) throw new EscaiError('SHUTTING_DOWN', 'Server is shutting down');
        if (socket.destroyed || !socket.writable) return;
        this.#deps.wss.handleUpgrade(req, socket, head, (ws) => {
          accepted = true;
          const admission: Admission = { principal, sessionId, sessionStartedAt: session?.startedAt ?? Date.now(), holdsUserSlot };
          this.#deps.accept(ws, admission, session);
        });
      } finally {
        // handleUpgrade calls back synchronously, or never (it refused the socket): give back what this attempt took.
        if (!accepted) {
          if (holdsUserSlot) presence.releaseUserSlot(principal.userId);
          if (session) sessions.giveBack(session);
        }
      }
    } finally {
      this.#pending--;
    }
  }
}
