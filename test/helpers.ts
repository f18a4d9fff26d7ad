// The test kit: a real server on port 0, real WebSocket clients whose messages
// are typed by the protocol module, tokens, publish helpers, HTTP calls with
// typed answers, and guaranteed cleanup. Nothing under test is mocked.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { signToken, type TokenClaims } from '../src/auth/jwt.js';
import { resolveConfig, type ConfigInput } from '../src/config/config.js';
import type { ConnectionSummary } from '../src/engine/presence.js';
import type { EscaiClient } from '../src/client/index.js';
import { createLogger } from '../src/log.js';
import type { ErrorCode } from '../src/protocol/codes.js';
import { EVENT_TYPES } from '../src/protocol/constants.js';
import type { PublishEventInput } from '../src/protocol/events.js';
import type { ClientMessageType, SubscribeData } from '../src/protocol/messages.js';
import type {
  ClusterHealth,
  ConnectionEstablished,
  DeliveredEvent,
  ErrorMessage,
  PublishConfirmed,
  RequestId,
  ServerMessage,
  ServerMessageOf,
  ServerMessageType,
  SubscriptionConfirmed,
  SubscriptionView,
} from '../src/protocol/server-messages.js';
import type { PublishResult } from '../src/server/delivery/publisher.js';
import { EscaiServer } from '../src/server/server.js';

export { EVENT_TYPES };
export type { DeliveredEvent, ErrorMessage, PublishResult, ServerMessage, ServerMessageType, SubscriptionConfirmed, SubscriptionView };

/** The message of one `type` (an event type gives that type's DeliveredEvent). */
export type MessageOf<T extends ServerMessageType> = ServerMessageOf<T>;

export const SECRET = 'test-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
/** An event_id / connection_id. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** An ISO-8601 UTC timestamp, as every server timestamp is written. */
export const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

// ---- servers --------------------------------------------------------------

/** How to open /ws/monitor/{session}. */
export interface OpenOptions {
  /** The session id in the path (default `session_1`). */
  session?: string;
  /** Handshake headers (Authorization, Origin). */
  headers?: Record<string, string>;
  /** Answer protocol pings automatically (default true, as `ws` does). */
  autoPong?: boolean;
  /** How long to wait for connection_established (default 3000 ms). */
  timeoutMs?: number;
  /** Ask for batched frames (`batch=1`): a frame may hold a JSON array of messages. */
  batch?: boolean;
}

/** An opened client and its connection_established (which is not left in `received`). */
export interface Opened {
  client: TestClient;
  hello: ConnectionEstablished;
}

export interface TestServer {
  server: EscaiServer;
  /** http://127.0.0.1:PORT */
  url: string;
  /** ws://127.0.0.1:PORT */
  wsUrl: string;
  token(claims: Partial<TokenClaims> & { sub?: string }): Promise<string>;
  /**
   * Connects to /ws/monitor/{session} with a token signed for `claims` (sub
   * `user_1` unless given), the token itself, or null for none in the URL (one
   * in `headers` instead); resolves with the client and its connection_established.
   * The client is ended when the test ends.
   */
  open(claims: Partial<TokenClaims> | string | null, options?: OpenOptions): Promise<Opened>;
  /** `open`, for when the connection_established does not matter. */
  connect(claims: Partial<TokenClaims> | string, options?: OpenOptions): Promise<TestClient>;
}

/**
 * ESCAI_TEST_ENGINE=redis runs the same suites on the Redis engine (each
 * server under a fresh key prefix), so both engines meet one contract.
 */
export const TEST_ENGINE = process.env['ESCAI_TEST_ENGINE'] === 'redis' ? 'redis' : 'memory';
export const TEST_REDIS_URL = process.env['ESCAI_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
let prefixSeq = 0;

export function freshRedisPrefix(): string {
  return `escai-test-${process.pid}-${Date.now().toString(36)}-${++prefixSeq}`;
}

/** Deletes every key under a test prefix. */
export async function dropRedisPrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

function engineOverrides(): Partial<ConfigInput> {
  return TEST_ENGINE === 'redis' ? { redisUrl: TEST_REDIS_URL, redisPrefix: freshRedisPrefix() } : {};
}

/** Starts a server on port 0 with test-friendly settings; stopped when the test ends. */
export async function startServer(t: TestContext, overrides: Partial<ConfigInput> = {}): Promise<TestServer> {
  const config = resolveConfig({ port: 0, jwtSecret: SECRET, logLevel: 'silent', ...engineOverrides(), ...overrides });
  const server = new EscaiServer({ config, logger: createLogger(config.logLevel) });
  await server.listen();
  if (TEST_ENGINE === 'redis') await eventually(() => server.engineStatus().ready, 5000, 'the Redis engine to be ready');
  const clients: TestClient[] = [];
  t.after(async () => {
    const binary = clients.reduce((n, c) => n + c.binaryFrames, 0);
    for (const c of clients) c.terminate();
    await server.close();
    if (config.redisUrl) await dropRedisPrefix(config.redisUrl, config.redisPrefix);
    if (binary > 0) throw new Error(`the server sent ${binary} binary frame(s); every frame must be JSON text`);
  });
  const url = server.url;
  const wsUrl = url.replace(/^http/, 'ws');
  const token = (claims: Partial<TokenClaims>) => signToken(SECRET, { sub: 'user_1', ...claims });
  const open = async (claims: Partial<TokenClaims> | string | null, options: OpenOptions = {}) => {
    const tok = claims === null || typeof claims === 'string' ? claims : await token(claims);
    return openMonitor(wsUrl, tok, options, (client) => clients.push(client));
  };
  return {
    server,
    url,
    wsUrl,
    token,
    open,
    async connect(claims, options) {
      return (await open(claims, options)).client;
    },
  };
}

/**
 * Opens /ws/monitor/{session} at `wsUrl` with `token` in the query (null: none)
 * and waits for connection_established. `track` gets the client as soon as it
 * is open, so whoever ends the clients of a test ends this one too.
 */
export async function openMonitor(wsUrl: string, token: string | null, options: OpenOptions = {}, track?: (client: TestClient) => void): Promise<Opened> {
  const params = [...(token === null ? [] : [`token=${encodeURIComponent(token)}`]), ...(options.batch ? ['batch=1'] : [])];
  const query = params.length === 0 ? '' : `?${params.join('&')}`;
  const wsOptions = { ...(options.headers ? { headers: options.headers } : {}), ...(options.autoPong === false ? { autoPong: false } : {}) };
  const client = await TestClient.open(`${wsUrl}/ws/monitor/${options.session ?? 'session_1'}${query}`, wsOptions);
  track?.(client);
  const hello = await client.next('connection_established', options.timeoutMs ?? 3000);
  return { client, hello };
}

// ---- clients --------------------------------------------------------------

/** A client request: a known type, an optional id, its data. */
export interface ClientRequest {
  type: ClientMessageType;
  id?: RequestId;
  data?: unknown;
}

/** What `subscribe` sends as `data`: type, agent_id, filters, since. */
export type SubscribeInput = SubscribeData;

type Waiter = { match: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void };

/** Whether a server message is a delivered event. */
export function isEvent(m: ServerMessage): m is DeliveredEvent {
  return (EVENT_TYPES as readonly string[]).includes(m.type);
}

/** The delivered events among `msgs`. */
export function eventsOf(msgs: readonly ServerMessage[]): DeliveredEvent[] {
  return msgs.filter(isEvent);
}

/** A WebSocket client that queues every message it receives, typed as the protocol says. */
export class TestClient {
  readonly ws: WebSocket;
  readonly received: ServerMessage[] = [];
  /** Binary frames received: the protocol is JSON text, so any is a server bug (checked when the test ends). */
  binaryFrames = 0;
  /** Frames received, and how many messages each held (1 for an object; an array's length for a batched frame). */
  readonly frameSizes: number[] = [];
  #waiters: Waiter[] = [];
  closeEvent: Promise<{ code: number; reason: string }>;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closeEvent = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (data, isBinary) => {
      if (isBinary) this.binaryFrames++;
      // The one place a frame becomes typed messages: what the server sends is the protocol's to say.
      const parsed = JSON.parse(data.toString()) as ServerMessage | ServerMessage[];
      const msgs = Array.isArray(parsed) ? parsed : [parsed];
      this.frameSizes.push(Array.isArray(parsed) ? parsed.length : 1);
      for (const msg of msgs) {
        this.received.push(msg);
        for (const w of [...this.#waiters]) {
          if (w.match(msg)) {
            this.#waiters.splice(this.#waiters.indexOf(w), 1);
            w.resolve(msg);
          }
        }
      }
    });
    ws.on('error', () => {});
  }

  static async open(url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<TestClient> {
    const ws = new WebSocket(url, options);
    const client = new TestClient(ws);
    await once(ws, 'open');
    return client;
  }

  /** Sends a message as is: an object as JSON, a string as the frame's text (malformed on purpose, if need be). */
  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /**
   * The first message of `type` (or of one of several types), already received
   * or future, that satisfies `match`; taken off `received`. Rejects after
   * `timeoutMs` (default 3000).
   *
   * @example
   *   const ev = await c.next('epistemic_update', (m) => m.agent_id === 'agent_1', 5000);
   *   const reply = await c.next(['token_refreshed', 'error']);
   */
  next<T extends ServerMessageType>(type: T | readonly T[], timeoutMs?: number): Promise<MessageOf<T>>;
  next<T extends ServerMessageType>(type: T | readonly T[], match: (m: MessageOf<T>) => boolean, timeoutMs?: number): Promise<MessageOf<T>>;
  next<T extends ServerMessageType>(type: T | readonly T[], matchOrTimeout?: ((m: MessageOf<T>) => boolean) | number, timeoutMs = 3000): Promise<MessageOf<T>> {
    const types: readonly string[] = typeof type === 'string' ? [type] : type;
    const extra = typeof matchOrTimeout === 'function' ? matchOrTimeout : undefined;
    const timeout = typeof matchOrTimeout === 'number' ? matchOrTimeout : timeoutMs;
    const isWanted = (m: ServerMessage): m is MessageOf<T> => types.includes(m.type);
    const match = (m: ServerMessage) => isWanted(m) && (extra === undefined || extra(m));
    return this.#take(match, timeout, types.join(' | ')) as Promise<MessageOf<T>>;
  }

  #take(match: (m: ServerMessage) => boolean, timeoutMs: number, what: string): Promise<ServerMessage> {
    const seen = this.received.find(match);
    if (seen) {
      this.received.splice(this.received.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve: (m) => {
          clearTimeout(timer);
          this.received.splice(this.received.indexOf(m), 1);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error(`timed out waiting for ${what}; received: ${JSON.stringify(this.received).slice(0, 500)}`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Sends a request and waits for the next message of `replyType`, or an error. */
  async request<T extends ServerMessageType>(message: ClientRequest, replyType: T): Promise<MessageOf<T | 'error'>> {
    this.send(message);
    return this.next<T | 'error'>([replyType, 'error']);
  }

  /** `request`, failing the test (with the error frame) when the server answers with an error. */
  async expectReply<T extends Exclude<ServerMessageType, 'error'>>(message: ClientRequest, replyType: T): Promise<MessageOf<T>> {
    const reply: ServerMessage = await this.request(message, replyType);
    if (reply.type === 'error') assert.fail(`${message.type} was answered with ${JSON.stringify(reply)}`);
    return reply as MessageOf<T>;
  }

  async subscribe(data: SubscribeInput): Promise<SubscriptionConfirmed | ErrorMessage> {
    return this.request({ type: 'subscribe', data }, 'subscription_confirmed');
  }

  /** Messages of the given types received so far (and not yet taken by `next`). */
  events<T extends ServerMessageType>(...types: T[]): Array<MessageOf<T>> {
    return this.received.filter((m): m is MessageOf<T> => (types as string[]).includes(m.type));
  }

  /** Takes every delivered event received so far off `received` and returns them, in arrival order. */
  takeEvents(): DeliveredEvent[] {
    const out = eventsOf(this.received);
    for (const m of out) this.received.splice(this.received.indexOf(m), 1);
    return out;
  }

  /**
   * Round-trips a ping. Frames to one socket leave in order, so once it
   * resolves every event published (and resolved) before the call has arrived.
   */
  async flush(timeoutMs = 3000): Promise<void> {
    const id = `flush-${++pingSeq}`;
    this.send({ type: 'ping', id });
    await this.next('pong', (m) => m.id === id, timeoutMs);
  }

  /**
   * `flush`, then returns (and removes) everything received before the pong, in
   * arrival order. Messages `requeue` accepts are returned too but also stay
   * queued for a later `next` (e.g. token_expiring, which may come at any moment).
   */
  async drain(options: { requeue?: (m: ServerMessage) => boolean } = {}): Promise<ServerMessage[]> {
    await this.flush(5000);
    const msgs = this.received.splice(0, this.received.length);
    if (options.requeue) this.received.push(...msgs.filter(options.requeue));
    return msgs;
  }

  terminate(): void {
    this.ws.terminate();
  }
}

let pingSeq = 0;

/** Subscribes and asserts the subscription was confirmed; returns the confirmation. */
export async function confirmed(c: TestClient, data: SubscribeInput): Promise<SubscriptionConfirmed> {
  const reply = await c.subscribe(data);
  assert.equal(reply.type, 'subscription_confirmed', JSON.stringify(reply));
  return reply;
}

/**
 * Subscribes to epistemic updates with `filters` and asserts the refusal: a
 * VALIDATION_ERROR whose message matches `names`. An accepted filter is
 * unsubscribed again, so one failure does not mask the next case.
 */
export async function expectFilterRefused(c: TestClient, what: string, filters: unknown, names: RegExp): Promise<void> {
  c.send({ type: 'subscribe', data: { type: 'epistemic_updates', filters } });
  const reply = await c.next(['error', 'subscription_confirmed']);
  if (reply.type === 'subscription_confirmed') {
    await c.request({ type: 'unsubscribe', data: { subscription_type: 'epistemic_updates' } }, 'unsubscription_confirmed');
  }
  assert.equal(reply.type, 'error', `${what}: accepted (${JSON.stringify(reply)})`);
  assert.equal(reply.code, 'VALIDATION_ERROR', `${what}: ${JSON.stringify(reply)}`);
  assert.match(reply.message, names, `${what}: ${reply.message}`);
}

/** A copy of `list` (subscriptions as replies describe them) sorted by type, to compare without caring for order. */
export function sortedByType<T extends { type: string }>(list: readonly T[] | undefined): T[] {
  assert.ok(list, 'a list of subscriptions');
  return [...list].sort((a, b) => a.type.localeCompare(b.type));
}

// ---- events ---------------------------------------------------------------

/** A sample EpistemicState. */
export function epistemic(agentId: string, confidence: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    agent_id: agentId,
    timestamp: new Date().toISOString(),
    belief_states: [{ content: 'the task is solvable', belief_type: 'factual', confidence, evidence: [] }],
    knowledge_state: { facts: ['f1'], confidence },
    goal_states: [{ description: 'finish', status: 'active', priority: 5 }],
    confidence_level: confidence,
    uncertainty_score: 1 - confidence,
    ...extra,
  };
}

export type EpistemicEventInput = Extract<PublishEventInput, { type: 'epistemic_update' }>;

/**
 * A small epistemic_update to publish: `data` carries the agent, the confidence
 * and a `seq` the test can follow; `extra` adds envelope fields.
 *
 * @example
 *   await s.server.publish(epistemicEvent('agent_1', 7, 0.9, { idempotency_key: 'k7' }));
 */
export function epistemicEvent(agentId: string, seq: number, confidence = 0.9, extra: Pick<EpistemicEventInput, 'idempotency_key'> = {}): EpistemicEventInput {
  return { type: 'epistemic_update', agent_id: agentId, data: { agent_id: agentId, confidence_level: confidence, seq }, ...extra };
}

/** An epistemic_update carrying a whole sample EpistemicState (see `epistemic`). */
export function epistemicStateEvent(agentId: string, confidence: number, extra: Record<string, unknown> = {}): EpistemicEventInput {
  return { type: 'epistemic_update', agent_id: agentId, data: epistemic(agentId, confidence, extra) };
}

/** Publishes one event in-process and returns its result. */
export async function publishOne(s: TestServer, event: PublishEventInput): Promise<PublishResult> {
  const [r] = await s.server.publish(event);
  assert.ok(r);
  return r;
}

// ---- tokens and handshakes ------------------------------------------------

/** A token's exp claim (seconds since the epoch). */
export function tokenExp(token: string): number {
  const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { exp: number };
  return payload.exp;
}

/** The `{"error":{"code","message"}}` body of every HTTP refusal. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** The HTTP refusal of a WebSocket handshake: status, headers and JSON body (null when empty). */
export async function handshakeRefusal(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string>; body: ErrorBody | null }> {
  const ws = new WebSocket(url, { headers });
  return new Promise((resolve, reject) => {
    ws.on('open', () => {
      ws.terminate();
      reject(new Error('handshake unexpectedly accepted'));
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers as Record<string, string>, body: body ? (JSON.parse(body) as ErrorBody) : null });
        ws.terminate();
      });
    });
    ws.on('error', (err) => reject(err));
  });
}

// ---- waiting --------------------------------------------------------------

/**
 * Waits until `check` is true, polling; rejects after `timeoutMs`. Only for
 * conditions seen from outside with no event to wait on (HTTP answers, what a
 * client has received); connections coming and going: `connectionCount`.
 */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Resolves once `check` holds: at once, or at one of the changes `watch`
 * reports (it subscribes a listener to an event and returns the unsubscribe).
 * Waits on events, never polls. Rejects after `timeoutMs`, naming `what`.
 *
 * @example
 *   await waitFor(() => sdk.state === 'closed', (changed) => sdk.on('state', changed), 3000, 'the SDK to close');
 */
/** The health counters the original ESCAI framework's /ws/health and `stats` carry (ESCAI clients read these). */
export const ESCAI_HEALTH_FIELDS = [
  'status',
  'max_connections',
  'heartbeat_interval',
  'heartbeat_timeout',
  'heartbeat_running',
  'active_connections',
  'total_connections_ever',
  'active_users',
  'total_subscriptions',
  'messages_sent',
  'messages_received',
  'agent_subscribers',
] as const;

/** Resolves once the SDK is in `state`: at once, or at the `state` event that enters it; fails after `timeoutMs`. */
export function stateReached(client: EscaiClient, state: EscaiClient['state'], timeoutMs: number, what: string): Promise<void> {
  return waitFor(
    () => client.state === state,
    (changed) => client.on('state', changed),
    timeoutMs,
    () => `${what} (state ${client.state})`,
  );
}

export function waitFor(check: () => boolean, watch: (changed: () => void) => () => void, timeoutMs: number, what: string | (() => string)): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`));
    }, timeoutMs);
    const stop = watch(() => {
      if (!check()) return;
      clearTimeout(timer);
      stop();
      resolve();
    });
  });
}

/**
 * Resolves once the server holds exactly `count` connections. Waits on the
 * registry's change events (a connection leaves it when the server has
 * removed every trace of it), never by polling.
 */
export function connectionCount(server: EscaiServer, count: number, timeoutMs = 3000, what = `${count} connection(s) on the server`): Promise<void> {
  const connections = server.connections;
  return waitFor(
    () => connections.size === count,
    (changed) => connections.onChange(changed),
    timeoutMs,
    () => `${what} (holds ${connections.size})`,
  );
}

/**
 * Lets time pass: for what is decided by the clock (a TTL, a rate window, a
 * heartbeat). Never the wait before asserting that something did NOT arrive —
 * a sleep passes by luck there; use a barrier: `throughMarker`, `fannedOut`,
 * or `TestClient.flush` where the publish resolved on delivery.
 */
export function settle(ms = 100): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * The barrier before asserting that something did NOT arrive at `clients`:
 * waits until each has received the event `eventId` — a marker the test
 * published after what must not arrive, on that same stream, that each of
 * them is subscribed to — and takes it off `received`. One stream's events
 * reach a connection in order (on any node, on either engine), so once the
 * marker is in, every earlier event of its stream the server sent has arrived.
 *
 * @example
 *   const marker = await publishOne(s, epistemicEvent('agent_1', 99));
 *   await throughMarker(c, marker.event_id);
 *   assert.deepEqual(c.takeEvents(), []);
 */
export async function throughMarker(clients: TestClient | readonly TestClient[], eventId: string, timeoutMs = 5000): Promise<void> {
  const list = Array.isArray(clients) ? clients : [clients as TestClient];
  await Promise.all(list.map((c) => c.next(EVENT_TYPES, (m: { event_id: string }) => m.event_id === eventId, timeoutMs)));
}

/**
 * The barrier for clients that receive nothing of the stream in question (no
 * permission, no subscription): `witness`, a connection of the same node that
 * is subscribed to that stream, waits for the marker `eventId` (published
 * after what must not arrive, on its stream); a node hands each event to all
 * of its connections at once and one stream's events in order, so by then
 * every frame the earlier events caused on `clients` has been written. Then a
 * ping round trip on each (frames to one socket arrive in order).
 */
export async function fannedOut(clients: TestClient | readonly TestClient[], witness: TestClient, eventId: string, timeoutMs = 5000): Promise<void> {
  await throughMarker(witness, eventId, timeoutMs);
  const list = Array.isArray(clients) ? clients : [clients as TestClient];
  await Promise.all(list.map((c) => c.flush(timeoutMs)));
}

// ---- HTTP -----------------------------------------------------------------

/** The answer of an HTTP call: status, headers and the JSON body (null when empty), typed as the caller expects. */
export interface ApiResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

/** GET /ws/health (and the `stats` reply): the cluster's counters. */
export type HealthBody = ClusterHealth & { timestamp: string };
/** POST /api/v1/events, 202. */
export type PublishAnswer = PublishConfirmed['data'];
/** GET /readyz. */
export interface ReadyBody {
  status: 'ready' | 'not_ready';
  engine: string;
  node_id?: string;
  reason?: string;
}
/** GET /api/v1/agents/{id}/events. */
export interface HistoryBody {
  agent_id: string;
  events: DeliveredEvent[];
  offset: number;
  epoch: string;
  complete: boolean;
}
/** One entry of GET /ws/connections: the cluster's connection summary plus liveness. */
export interface ConnectionEntry extends ConnectionSummary {
  last_ping: string | null;
  is_alive: boolean;
}
/** GET /ws/connections. */
export interface ConnectionsBody {
  connections: ConnectionEntry[];
  total: number;
  timestamp: string;
}
/** POST /ws/broadcast/test. */
export interface BroadcastBody {
  message: string;
  recipients: number;
  event_id: string;
  timestamp: string;
}

/**
 * Calls a node's HTTP API (Bearer token, JSON or raw body). `T` names the body
 * the route answers with (an `ErrorBody` for refusals); parsed, not checked.
 *
 * @example
 *   const r = await api<HistoryBody>(s, 'GET', '/api/v1/agents/agent_1/events', { token });
 */
export async function api<T = unknown>(
  node: { url: string },
  method: string,
  path: string,
  options: { token?: string; json?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers['Authorization'] = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.json !== undefined) body = JSON.stringify(options.json);
  if (options.raw !== undefined) body = options.raw;
  if (body !== undefined) headers['Content-Type'] ??= 'application/json';
  const res = await fetch(`${node.url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : null) as T };
}

/** GET /ws/health of a server or cluster node; asserts 200. */
export async function health(node: { url: string }): Promise<HealthBody> {
  const r = await api<HealthBody>(node, 'GET', '/ws/health');
  assert.equal(r.status, 200);
  return r.body;
}

/** Asserts an HTTP refusal (status and catalogued code) and returns its error. */
export function refusal(r: ApiResponse, status: number, code: ErrorCode): ErrorBody['error'] {
  const body = r.body as Partial<ErrorBody> | null;
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${JSON.stringify(body)}`);
  assert.equal(body?.error?.code, code);
  assert.equal(typeof body.error.message, 'string');
  return body.error;
}
