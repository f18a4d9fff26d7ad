// The WebSocket handshake gate. Path, origin, capacity, token and permission
// are all decided here, before the 101: a refused client gets a plain HTTP
// response with a JSON body {"error":{"code","message"}} and never a socket.
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Principal } from '../auth/permissions.js';
import { Permissions } from '../auth/permissions.js';
import { tokenFromRequest, type TokenVerifier } from '../auth/jwt.js';
import { EscaiError, ErrorCodes, httpErrorBody, type ErrorCode } from '../protocol/codes.js';
import { receiveFrame } from './handlers.js';
import type { RealtimeNode } from './node.js';
import type { SessionState } from '../engine/broker.js';

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

export class UpgradeGate {
  readonly #node: RealtimeNode;
  readonly #verifier: TokenVerifier;
  readonly #wss: WebSocketServer;
  /** Handshakes past the capacity check but not yet attached: they hold a slot. */
  #pending = 0;
  closed = false;

  constructor(node: RealtimeNode, verifier: TokenVerifier, wss: WebSocketServer) {
    this.#node = node;
    this.#verifier = verifier;
    this.#wss = wss;
  }

  /** The `upgrade` listener of the HTTP server. */
  readonly handle = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', (err) => this.#node.log.debug({ err }, 'socket error during handshake'));
    this.#admit(req, socket, head).catch((err: unknown) => {
      if (err instanceof EscaiError) {
        refuse(socket, err.code, err.message);
        return;
      }
      this.#node.log.error({ err, url: redactUrl(req.url) }, 'upgrade failed');
      refuse(socket, 'INTERNAL_ERROR', 'Internal error');
    });
  };

  /**
   * The parked session of this user with this id, if any (another user's
   * never: the key includes the user). When a connection of this node still
   * holds it, that one is probed: a peer that answers is a second client
   * using the same id (the newcomer starts fresh); one that does not is the
   * same client's dead connection, which is terminated and taken over.
   */
  async #takeSession(userId: string, sessionId: string): Promise<SessionState | undefined> {
    const { config, broker, connections } = this.#node;
    if (config.sessionTtl <= 0) return undefined;
    const session = await broker.takeSession(userId, sessionId);
    const holder = session?.live?.node_id === broker.nodeId ? connections.get(session.live.connection_id) : undefined;
    if (session && holder?.isOpen) {
      if (await holder.probe(Math.min(1000, config.heartbeatTimeout * 1000))) {
        await broker.saveSession(session, (config.sessionTtl + config.heartbeatInterval + config.heartbeatTimeout) * 1000);
        return undefined;
      }
      holder.sessionTakenOver = true;
      holder.terminate();
      this.#node.detach(holder);
    }
    return session;
  }

  async #admit(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const { config } = this.#node;
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
    if (this.closed) throw new EscaiError('SHUTTING_DOWN', 'Server is shutting down');
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
    if (this.#node.connections.size + this.#pending >= config.maxConnections) {
      refuse(socket, 'SERVER_AT_CAPACITY', `Server is at its maximum of ${config.maxConnections} connections`, { 'Retry-After': '5' });
      return;
    }
    this.#pending++;
    try {
      const token = tokenFromRequest(req.headers.authorization, url);
      if (!token) throw new EscaiError('TOKEN_MISSING', 'A token is required (?token= or Authorization: Bearer)');
      const principal = await this.#verifier.verify(token);
      if (!principal.has(Permissions.CONNECT)) throw new EscaiError('PERMISSION_DENIED', 'Missing permission websocket:connect');
      let claimedSlot = false;
      if (config.maxConnectionsPerUser > 0) {
        try {
          claimedSlot = await this.#node.broker.claimUserSlot(principal.userId, config.maxConnectionsPerUser);
        } catch (err) {
          throw new EscaiError('ENGINE_UNAVAILABLE', `Cannot check the per-user connection cap: ${(err as Error).message}`);
        }
        if (!claimedSlot) throw new EscaiError('USER_CONNECTION_LIMIT', `At most ${config.maxConnectionsPerUser} connections per user`);
      }
      let attached = false;
      let session: SessionState | undefined;
      try {
        session = await this.#takeSession(principal.userId, sessionId);
        if (this.closed) throw new EscaiError('SHUTTING_DOWN', 'Server is shutting down');
        if (socket.destroyed || !socket.writable) return;
        this.#wss.handleUpgrade(req, socket, head, (ws) => {
          attached = true;
          this.#accept(ws, principal, sessionId, session, claimedSlot);
        });
      } finally {
        // handleUpgrade calls back synchronously, or never (it refused the socket): give back what this attempt took.
        if (!attached) {
          if (claimedSlot) this.#node.broker.releaseUserSlot(principal.userId);
          if (session) this.#node.broker.saveSession(session, config.sessionTtl * 1000).catch(() => {});
        }
      }
    } finally {
      this.#pending--;
    }
  }

  /** Wires an accepted socket to its connection. */
  #accept(ws: WebSocket, principal: Principal, sessionId: string, session: SessionState | undefined, claimedSlot: boolean): void {
    const node = this.#node;
    const conn = node.attach(ws, principal, sessionId, session);
    conn.holdsUserSlot = claimedSlot;
    ws.on('message', (data) => receiveFrame(node, conn, data));
    // A pong that confirms new positions rewrites the live session record; otherwise it is
    // renewed every half session TTL so a quiet connection's record never expires under it.
    const renewMs = (node.config.sessionTtl * 1000) / 2;
    ws.on('pong', (payload) => {
      if (conn.onPong(payload) || Date.now() - conn.lastSessionSave > renewMs) node.saveSession(conn, true);
    });
    ws.on('ping', () => (conn.lastSeen = performance.now()));
    ws.on('error', (err) => node.log.debug({ err, connectionId: conn.id }, 'socket error'));
  }

}
