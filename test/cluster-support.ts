// Test support for the Redis cluster: three (or N) real server processes on
// one real Redis under a fresh key prefix, each reached over real sockets.
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { signToken, type TokenClaims } from '../src/auth/jwt.js';
import { runCli, type CliProcess } from './cli-process.js';
import {
  api,
  dropRedisPrefix,
  freshRedisPrefix,
  health,
  openMonitor,
  SECRET,
  TEST_ENGINE,
  TEST_REDIS_URL,
  type Opened,
  type PublishAnswer,
  type ReadyBody,
  type TestClient,
} from './helpers.js';
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
  connect(node: ClusterNode, token: string, session: string): Promise<Opened>;
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
          const r = await api<ReadyBody>({ url }, 'GET', '/readyz');
          return r.status === 200 ? r.body : undefined;
        },
        10_000,
        `node ${names[i]} /readyz 200; stderr: ${proc.stderr().slice(-500)}`,
      );
      assert.equal(ready.engine, 'redis');
      assert.equal(typeof ready.node_id, 'string');
      return { name: names[i]!, proc, port, url, wsUrl: `ws://127.0.0.1:${port}`, nodeId: ready.node_id! };
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
    connect(node, tok, session) {
      return openMonitor(node.wsUrl, tok, { session, timeoutMs: 5000 }, (client) => clients.push(client));
    },
  };
}

/** POST /api/v1/events; asserts 202 and returns the body. */
export async function publish(node: ClusterNode, tok: string, events: unknown): Promise<PublishAnswer> {
  const r = await api<PublishAnswer>(node, 'POST', '/api/v1/events', { token: tok, json: events });
  assert.equal(r.status, 202, `publish on node ${node.name}: ${JSON.stringify(r.body)}`);
  return r.body;
}

export { sleep };
