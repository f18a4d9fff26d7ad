// Test support for the Redis cluster: three (or N) real server processes on
// one real Redis under a fresh key prefix, each reached over real sockets.
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { signToken, type TokenClaims } from '../src/auth/jwt.js';
import { runCli, type CliProcess } from './cli-process.js';
import { dropRedisPrefix, freshRedisPrefix, SECRET, TEST_ENGINE, TEST_REDIS_URL, TestClient, type Message } from './helpers.js';
import { need } from './require.js';
import { redisAnswers } from './redis-support.js';

export { TEST_REDIS_URL };

/**
 * True when a cluster test may run: Redis answers (else skipped loudly, or
 * failed under ESCAI_TEST_REQUIRE=redis), and this is not the
 * ESCAI_TEST_ENGINE=redis pass (the cluster suite already ran in the main pass).
 */
export async function clusterAvailable(t: TestContext): Promise<boolean> {
  const redis = await redisAnswers(TEST_REDIS_URL);
  if (!need(t, 'redis', redis.ok, redis.why)) return false;
  if (TEST_ENGINE === 'redis') {
    t.skip('cluster tests run in the main pass only (ESCAI_TEST_ENGINE=redis)');
    return false;
  }
  return true;
}

export interface ClusterNode {
  name: string;
  proc: CliProcess;
  port: number;
  /** http://127.0.0.1:PORT */
  url: string;
  /** ws://127.0.0.1:PORT */
  wsUrl: string;
  nodeId: string;
}

export interface Cluster {
  prefix: string;
  nodes: ClusterNode[];
  /** Opens /ws/monitor/{session} on `node`; resolves with the client and its connection_established. */
  connect(node: ClusterNode, token: string, session: string): Promise<{ client: TestClient; hello: Message }>;
}

export const NODE_TTL = 1.5;

export function token(sub: string, roles: string[], extra: Partial<TokenClaims> = {}): Promise<string> {
  return signToken(SECRET, { sub, roles, ...extra });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a value that is not undefined; fails with `what` after `timeoutMs`. */
export async function until<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) throw new Error(`timed out waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
    await sleep(25);
  }
}

/**
 * Starts `count` server processes on the real CLI, one Redis prefix, and waits
 * until each answers /readyz 200 and sees all of them in its registry.
 * Everything (processes, clients, Redis keys) is gone when the test ends.
 */
export async function startCluster(t: TestContext, env: Record<string, string> = {}, count = 3): Promise<Cluster> {
  const prefix = freshRedisPrefix();
  const procs: CliProcess[] = [];
  const clients: TestClient[] = [];
  t.after(async () => {
    for (const c of clients) c.terminate();
    // Every process dead before the keys go, or a live node writes its report back.
    await Promise.all(
      procs.map(async (p) => {
        if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
        await p.exited;
      }),
    );
    await dropRedisPrefix(TEST_REDIS_URL, prefix);
  });
  const baseEnv: Record<string, string> = {
    ESCAI_JWT_SECRET: SECRET,
    ESCAI_REDIS_URL: TEST_REDIS_URL,
    ESCAI_REDIS_PREFIX: prefix,
    ESCAI_LOG_LEVEL: 'info',
    ESCAI_HEARTBEAT_INTERVAL: '0.5',
    ESCAI_HEARTBEAT_TIMEOUT: '0.5',
    ESCAI_NODE_TTL: String(NODE_TTL),
    ESCAI_SHUTDOWN_GRACE: '1',
    ...env,
  };
  for (let i = 0; i < count; i++) procs.push(runCli(t, ['serve', '--port', '0'], baseEnv));
  const names = ['A', 'B', 'C', 'D', 'E'];
  const nodes = await Promise.all(
    procs.map(async (proc, i): Promise<ClusterNode> => {
      const port = await proc.port(20_000);
      const url = `http://127.0.0.1:${port}`;
      const ready = await until(
        async () => {
          const res = await fetch(`${url}/readyz`);
          const body = (await res.json()) as Message;
          return res.status === 200 ? body : undefined;
        },
        10_000,
        `node ${names[i]} /readyz 200; stderr: ${proc.stderr().slice(-500)}`,
      );
      assert.equal(ready['engine'], 'redis');
      assert.equal(typeof ready['node_id'], 'string');
      return { name: names[i]!, proc, port, url, wsUrl: `ws://127.0.0.1:${port}`, nodeId: ready['node_id'] as string };
    }),
  );
  assert.equal(new Set(nodes.map((n) => n.nodeId)).size, count, 'node ids are distinct');
  // Every node sees the whole cluster (the per-user cap and the views count live nodes only).
  for (const node of nodes) {
    await until(async () => ((await health(node)).nodes.length === count ? true : undefined), 5000, `node ${node.name} to see ${count} nodes`);
  }
  return {
    prefix,
    nodes,
    async connect(node, tok, session) {
      const client = await TestClient.open(`${node.wsUrl}/ws/monitor/${session}?token=${encodeURIComponent(tok)}`);
      clients.push(client);
      const hello = await client.next((m) => m.type === 'connection_established', 5000);
      return { client, hello };
    },
  };
}

export async function health(node: ClusterNode): Promise<Message & { nodes: Message[] }> {
  const res = await fetch(`${node.url}/ws/health`);
  assert.equal(res.status, 200);
  return (await res.json()) as Message & { nodes: Message[] };
}

/** POST /api/v1/events; asserts 202 and returns the body. */
export async function publish(node: ClusterNode, tok: string, events: unknown): Promise<{ accepted: number; events: Array<{ event_id: string; offset: number; epoch: string }> }> {
  const res = await fetch(`${node.url}/api/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' },
    body: JSON.stringify(events),
  });
  const body = (await res.json()) as Message;
  assert.equal(res.status, 202, `publish on node ${node.name}: ${JSON.stringify(body)}`);
  return body as { accepted: number; events: Array<{ event_id: string; offset: number; epoch: string }> };
}

export async function getJson(node: ClusterNode, path: string, tok?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${node.url}${path}`, tok ? { headers: { authorization: `Bearer ${tok}` } } : {});
  return { status: res.status, body: await res.json() };
}

export { sleep };
