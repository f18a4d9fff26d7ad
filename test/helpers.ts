// Test support: a real server on port 0, real WebSocket clients, tokens, and
// guaranteed cleanup. Nothing under test is mocked.
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { signToken, type TokenClaims } from '../src/auth/jwt.js';
import { resolveConfig, type ConfigInput } from '../src/config/config.js';
import { createLogger } from '../src/log.js';
import { EscaiServer } from '../src/server/server.js';
import { EVENT_TYPES } from '../src/protocol/constants.js';

export { EVENT_TYPES };

export const SECRET = 'test-secret-0123456789-abcdefghijklmnopqrstuvwxyz';

export type Message = Record<string, any>;

export interface TestServer {
  server: EscaiServer;
  /** http://127.0.0.1:PORT */
  url: string;
  /** ws://127.0.0.1:PORT */
  wsUrl: string;
  token(claims: Partial<TokenClaims> & { sub?: string }): Promise<string>;
  /** Connects to /ws/monitor/{session}; resolves once connection_established arrived. */
  connect(claims: Partial<TokenClaims> | string, options?: { session?: string }): Promise<TestClient>;
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
  return {
    server,
    url,
    wsUrl,
    token,
    async connect(claims, options = {}) {
      const tok = typeof claims === 'string' ? claims : await token(claims);
      const client = await TestClient.open(`${wsUrl}/ws/monitor/${options.session ?? 'session_1'}?token=${encodeURIComponent(tok)}`);
      clients.push(client);
      await client.next((m) => m.type === 'connection_established');
      return client;
    },
  };
}

/** A WebSocket client that queues every JSON message it receives. */
export class TestClient {
  readonly ws: WebSocket;
  readonly received: Message[] = [];
  /** Binary frames received: the protocol is JSON text, so any is a server bug (checked when the test ends). */
  binaryFrames = 0;
  #waiters: Array<{ match: (m: Message) => boolean; resolve: (m: Message) => void }> = [];
  closeEvent: Promise<{ code: number; reason: string }>;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closeEvent = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (data, isBinary) => {
      if (isBinary) this.binaryFrames++;
      const msg = JSON.parse(data.toString()) as Message;
      this.received.push(msg);
      for (const w of [...this.#waiters]) {
        if (w.match(msg)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(msg);
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

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** The first message (already received or future) matching `match`, or rejects after `timeoutMs`. */
  next(match: (m: Message) => boolean, timeoutMs = 3000): Promise<Message> {
    const seen = this.received.find(match);
    if (seen) {
      this.received.splice(this.received.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (m: Message) => {
          clearTimeout(timer);
          this.received.splice(this.received.indexOf(m), 1);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error(`timed out waiting for a message; received: ${JSON.stringify(this.received).slice(0, 500)}`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Sends a request and waits for the next message of `replyType` (or an error). */
  async request(message: Message, replyType: string): Promise<Message> {
    this.send(message);
    return this.next((m) => m.type === replyType || m.type === 'error');
  }

  async subscribe(data: Message): Promise<Message> {
    return this.request({ type: 'subscribe', data }, 'subscription_confirmed');
  }

  /** Messages of the given types received so far (and not yet taken by `next`). */
  events(...types: string[]): Message[] {
    return this.received.filter((m) => types.includes(m.type));
  }

  /**
   * Round-trips a ping and returns (and removes) everything received before
   * the pong, in arrival order. Frames to one socket leave in order, so every
   * event published (and resolved) before this call is in the result.
   */
  async drain(): Promise<Message[]> {
    const id = `drain-${++drainSeq}`;
    this.send({ type: 'ping', id });
    await this.next((m) => m.type === 'pong' && m.id === id, 5000);
    return this.received.splice(0, this.received.length);
  }

  terminate(): void {
    this.ws.terminate();
  }
}

let drainSeq = 0;

/** The delivered events among `msgs`. */
export function eventsOf(msgs: Message[]): Message[] {
  return msgs.filter((m) => (EVENT_TYPES as readonly string[]).includes(m.type));
}

/** The HTTP refusal of a WebSocket handshake: status, headers and JSON body. */
export async function handshakeRefusal(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string>; body: any }> {
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
        resolve({ status: res.statusCode ?? 0, headers: res.headers as Record<string, string>, body: body ? JSON.parse(body) : null });
        ws.terminate();
      });
    });
    ws.on('error', (err) => reject(err));
  });
}

/** Waits until `check` is true, polling; rejects after `timeoutMs`. For state that settles asynchronously. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Resolves once the server holds exactly `count` connections. Waits on the
 * registry's change events (a connection leaves it when the server has
 * removed every trace of it), never by polling.
 */
export function connectionCount(server: EscaiServer, count: number, timeoutMs = 3000, what = `${count} connection(s) on the server`): Promise<void> {
  const connections = server.connections;
  if (connections.size === count) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`timed out waiting for ${what} (holds ${connections.size})`));
    }, timeoutMs);
    const stop = connections.onChange(({ size }) => {
      if (size !== count) return;
      clearTimeout(timer);
      stop();
      resolve();
    });
  });
}

/** Gives in-flight frames a moment to arrive, for asserting that something did NOT arrive. */
export function settle(ms = 100): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

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

/** The answer of an HTTP call: status, headers and the JSON body (null when empty). */
export interface ApiResponse {
  status: number;
  headers: Headers;
  body: Message;
}

/** Calls the server's HTTP API (Bearer token, JSON or raw body). */
export async function api(
  s: TestServer,
  method: string,
  path: string,
  options: { token?: string; json?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers['Authorization'] = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.json !== undefined) body = JSON.stringify(options.json);
  if (options.raw !== undefined) body = options.raw;
  if (body !== undefined) headers['Content-Type'] ??= 'application/json';
  const res = await fetch(`${s.url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : null) as Message };
}
