// Redis test support: availability probes, a private redis-server process
// (on a free port, no persistence) that tests kill and restart, and access to
// a node's own Redis connections (found by their `escai:<nodeId>` name) so a
// test can kill exactly them with CLIENT KILL. Real processes, real sockets.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { DeliveredEvent } from '../src/engine/broker.js';
import { RedisEngine } from '../src/engine/redis/index.js';
import { createLogger } from '../src/log.js';
import { dropRedisPrefix, eventually, freshRedisPrefix, TEST_REDIS_URL } from './helpers.js';
import { need } from './require.js';

const REDIS_SERVER = process.env['ESCAI_TEST_REDIS_SERVER'] ?? 'redis-server';

/**
 * A Redis engine of its own on the test Redis, under a fresh prefix, started
 * and ready; closed and its keys dropped when the test ends. `deliver` gets
 * what its broker delivers. Undefined when Redis is unavailable (the test is
 * skipped, or fails where Redis is required).
 */
export async function startRedisEngine(
  t: TestContext,
  deliver: (stream: string, event: DeliveredEvent) => void = () => {},
): Promise<{ engine: RedisEngine; prefix: string } | undefined> {
  const answer = await redisAnswers(TEST_REDIS_URL);
  if (!need(t, 'redis', answer.ok, answer.why)) return undefined;
  const prefix = freshRedisPrefix();
  t.after(() => dropRedisPrefix(TEST_REDIS_URL, prefix));
  const engine = new RedisEngine({ url: TEST_REDIS_URL, prefix, log: createLogger('silent'), historySize: 100, historyTtlMs: 60_000 });
  t.after(() => engine.close());
  await engine.broker.start(deliver, () => {});
  await eventually(() => engine.status().ready, 5000, 'the redis engine to be ready');
  return { engine, prefix };
}

/** Whether a redis-server binary can be run here. */
export function redisServerBinary(): { ok: boolean; why: string } {
  const r = spawnSync(REDIS_SERVER, ['--version'], { encoding: 'utf8', timeout: 5000 });
  if (r.error) return { ok: false, why: `${REDIS_SERVER}: ${r.error.message}` };
  if (r.status !== 0) return { ok: false, why: `${REDIS_SERVER} --version exited with ${r.status}` };
  return { ok: true, why: r.stdout.trim() };
}

/** One raw PING over TCP: true when a Redis answers +PONG within `timeoutMs`. */
export function pingRedis(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let buf = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
    socket.on('error', () => done(false));
  });
}

/** Whether the Redis at `url` answers PING. */
export async function redisAnswers(url: string): Promise<{ ok: boolean; why: string }> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, why: `bad URL ${url}` };
  }
  const port = Number(parsed.port || 6379);
  const ok = await pingRedis(parsed.hostname || '127.0.0.1', port, 1500);
  return ok ? { ok, why: '' } : { ok, why: `no Redis answers PING at ${url}` };
}

/** A TCP port nothing listens on (at the time of the call). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A redis-server of this test alone: no persistence, so a restart comes back empty. */
export class PrivateRedis {
  readonly port: number;
  #child: ChildProcess | undefined;

  private constructor(port: number) {
    this.port = port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  /**
   * Reserves a free port (not started yet unless `start`). Registers a hook
   * that starts it again if it is down when the test ends, so that the hooks
   * registered after (server close, prefix cleanup) find a Redis; call
   * `stopAfter(t)` after starting the server to stop it last.
   */
  static async create(t: TestContext, options: { start: boolean }): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort());
    t.after(async () => {
      if (!redis.running) await redis.start();
    });
    if (options.start) await redis.start();
    return redis;
  }

  stopAfter(t: TestContext): void {
    t.after(() => this.kill());
  }

  /** Starts redis-server on the port and waits until it answers PING. */
  async start(): Promise<void> {
    if (this.#child) throw new Error('private redis already running');
    const child = spawn(REDIS_SERVER, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    running.add(child);
    this.#child = child;
    child.once('exit', () => {
      running.delete(child);
      if (this.#child === child) this.#child = undefined;
    });
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      if (await pingRedis('127.0.0.1', this.port, 500)) return;
      if (child.exitCode !== null) throw new Error(`redis-server on port ${this.port} exited (${child.exitCode}): ${stderr}`);
      await sleep(25);
    }
    throw new Error(`redis-server on port ${this.port} did not answer PING within 5 s: ${stderr}`);
  }

  /** SIGKILL: the process dies at once, with everything it held. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
}

/** An admin connection (for CLIENT LIST / CLIENT KILL), closed when the test ends. */
export async function adminClient(t: TestContext, url: string): Promise<Redis> {
  const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectionName: 'escai-test-admin' });
  admin.on('error', () => {}); // a test may kill this Redis; the test's own assertions say what matters
  await admin.connect();
  t.after(() => admin.disconnect());
  return admin;
}

export interface RedisClientInfo {
  id: string;
  name: string;
  /** The pub/sub connection (named `escai:<nodeId>:sub`; it may hold no subscription yet). */
  subscriber: boolean;
  cmd: string;
}

/** The connections a node holds (`escai:<nodeId>:cmd` and `escai:<nodeId>:sub`). */
export async function connectionsOf(admin: Redis, nodeId: string): Promise<RedisClientInfo[]> {
  const list = (await admin.call('CLIENT', 'LIST')) as string;
  const out: RedisClientInfo[] = [];
  for (const line of list.split('\n')) {
    if (!line.trim()) continue;
    const fields = new Map<string, string>();
    for (const part of line.trim().split(' ')) {
      const eq = part.indexOf('=');
      if (eq > 0) fields.set(part.slice(0, eq), part.slice(eq + 1));
    }
    const name = fields.get('name') ?? '';
    if (name !== `escai:${nodeId}:cmd` && name !== `escai:${nodeId}:sub`) continue;
    out.push({ id: fields.get('id') ?? '', name, subscriber: name.endsWith(':sub'), cmd: fields.get('cmd') ?? '' });
  }
  return out;
}

/**
 * Kills a node's subscriber and/or commands connection with CLIENT KILL ID,
 * once both are there (the pub/sub connection and the commands connection).
 * Returns how many were killed.
 */
export async function killNodeConnections(admin: Redis, nodeId: string, which: 'subscriber' | 'commands' | 'both'): Promise<number> {
  let conns: RedisClientInfo[] = [];
  const deadline = Date.now() + 5000;
  for (;;) {
    conns = await connectionsOf(admin, nodeId);
    if (conns.length === 2 && conns.filter((c) => c.subscriber).length === 1) break;
    if (Date.now() > deadline) throw new Error(`node ${nodeId}: expected one pub/sub and one commands connection, found ${JSON.stringify(conns)}`);
    await sleep(10);
  }
  const targets = conns.filter((c) => which === 'both' || (which === 'subscriber') === c.subscriber);
  let killed = 0;
  for (const c of targets) killed += Number(await admin.call('CLIENT', 'KILL', 'ID', c.id));
  return killed;
}

/** True once the node has exactly one commands connection and one pub/sub connection on this Redis. */
export async function nodeConnected(admin: Redis, nodeId: string): Promise<boolean> {
  const conns = await connectionsOf(admin, nodeId);
  return conns.length === 2 && conns.filter((c) => c.subscriber).length === 1;
}
