// The Redis engine under failure: connections killed mid-stream (CLIENT KILL),
// Redis down at start, Redis lost mid-run and back empty, gaps history can no
// longer fill, a quiet stream whose last message was lost. Real redis-server
// processes (the shared one for two-node tests, a private one that is killed
// and restarted), real sockets, nothing mocked.
//
// These tests start their own Redis-engine nodes, so the ESCAI_TEST_ENGINE=redis
// pass (which reruns every suite on Redis) skips them: the main pass runs them.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { EscaiClient } from '../src/client/index.js';
import { EscaiError } from '../src/protocol/codes.js';
import type { PublishEventInput } from '../src/protocol/events.js';
import {
  api,
  confirmed,
  epistemicEvent,
  eventsOf,
  eventually,
  freshRedisPrefix,
  startServer,
  TEST_ENGINE,
  TEST_REDIS_URL,
  throughMarker,
  type ApiResponse,
  type ErrorBody,
  type PublishAnswer,
  type PublishResult,
  type ReadyBody,
  type TestClient,
  type TestServer,
} from './helpers.js';
import { adminClient, killNodeConnections, nodeConnected, PrivateRedis, redisAnswers, redisServerBinary } from './redis-support.js';
import { need } from './require.js';

const WATCHER = { sub: 'watcher', roles: ['researcher'] };
const PUBLISHER = { sub: 'producer', roles: ['developer'] };

// ---- preconditions -----------------------------------------------------------

function skipInRedisPass(t: TestContext): boolean {
  if (TEST_ENGINE !== 'redis') return false;
  t.skip('runs in the main pass (these tests start their own Redis-engine nodes)');
  return true;
}

/** The shared Redis (127.0.0.1:6379 or ESCAI_TEST_REDIS_URL) answers, else skip (or fail where required). */
async function needSharedRedis(t: TestContext): Promise<boolean> {
  if (skipInRedisPass(t)) return false;
  const r = await redisAnswers(TEST_REDIS_URL);
  return need(t, 'redis', r.ok, r.why);
}

/** A redis-server binary can be run (for a private, killable Redis), else skip (or fail where required). */
function needRedisBinary(t: TestContext): boolean {
  if (skipInRedisPass(t)) return false;
  const r = redisServerBinary();
  return need(t, 'redis', r.ok, r.why);
}

// ---- helpers -------------------------------------------------------------------

function nodeId(s: TestServer): string {
  return s.server.nodeId;
}

/** Two nodes on the shared Redis under one fresh prefix (one cluster), both connected and subscribed. */
async function twoNodes(t: TestContext, overrides: Record<string, unknown> = {}): Promise<{ a: TestServer; b: TestServer; admin: Redis }> {
  const redisPrefix = freshRedisPrefix();
  const a = await startServer(t, { redisUrl: TEST_REDIS_URL, redisPrefix, ...overrides });
  const b = await startServer(t, { redisUrl: TEST_REDIS_URL, redisPrefix, ...overrides });
  const admin = await adminClient(t, TEST_REDIS_URL);
  for (const s of [a, b]) {
    await eventually(async () => s.server.engineStatus().ready && (await nodeConnected(admin, nodeId(s))), 5000, `node ${nodeId(s)} connected and subscribed`);
  }
  return { a, b, admin };
}

/** agent_1's epistemic update number `seq` (confidence 0.5). */
const ep = (seq: number, extra: { idempotency_key?: string } = {}) => epistemicEvent('agent_1', seq, 0.5, extra);

/** Publishes in-process, retrying while the engine is unavailable (with the same idempotency key, so a retry never doubles an event). */
async function publishRetrying(s: TestServer, event: PublishEventInput, timeoutMs = 10_000): Promise<PublishResult> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const [r] = await s.server.publish(event);
      assert.ok(r);
      return r;
    } catch (err) {
      if (!(err instanceof EscaiError) || err.code !== 'ENGINE_UNAVAILABLE' || Date.now() > deadline) throw err;
      await sleep(20);
    }
  }
}

const subscribeAgent1 = (c: TestClient) => confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1' });

// ---- (1) connections killed mid-stream ------------------------------------------------

test("CLIENT KILL of a node's subscriber and commands connections mid-stream: a client on the other node gets all 300 events in order, no gap, no duplicate", {
  timeout: 60_000,
}, async (t) => {
  if (!(await needSharedRedis(t))) return;
  const { a, b, admin } = await twoNodes(t);
  const c = await b.connect(WATCHER);
  const confirmed = await subscribeAgent1(c);
  assert.equal(confirmed.data.offset, 0);
  const epoch = confirmed.data.epoch as string;

  const N = 300;
  const kills: Record<number, [TestServer, 'subscriber' | 'commands' | 'both', number]> = {
    60: [b, 'subscriber', 1],
    120: [b, 'commands', 1],
    180: [b, 'both', 2],
    220: [b, 'subscriber', 1],
    240: [a, 'commands', 1],
  };
  for (let i = 0; i < N; i++) {
    const event = ep(i, { idempotency_key: `kill-${i}` });
    const kill = kills[i];
    if (kill) {
      // The kill races the publication in flight.
      const [, killed] = await Promise.all([publishRetrying(a, event), killNodeConnections(admin, nodeId(kill[0]), kill[1])]);
      assert.equal(killed, kill[2], `killed ${kill[1]} connection(s) of a node at event ${i}`);
    } else await publishRetrying(a, event);
  }

  await eventually(
    () => c.events('epistemic_update').length >= N,
    15_000,
    `all ${N} events at the client on node B (got ${c.events('epistemic_update').length})`,
  );
  // The barrier: a marker after the last event, on the same stream (a duplicate or a loss report would come before it; events of one stream arrive in order).
  await throughMarker(c, (await publishRetrying(a, ep(N, { idempotency_key: 'marker' }))).event_id, 15_000);
  assert.deepEqual(c.events('recovery_failed'), [], 'every gap was fillable: no loss reported');
  assert.deepEqual(c.events('error'), []);
  const events = c.events('epistemic_update');
  assert.deepEqual(
    events.map((e) => e.data?.['seq']),
    Array.from({ length: N }, (_, i) => i),
    'every event once, in publish order',
  );
  assert.deepEqual(
    events.map((e) => e.offset),
    Array.from({ length: N }, (_, i) => i + 1),
    'offsets 1..N without gap or repeat',
  );
  assert.ok(
    events.every((e) => e.epoch === epoch),
    'one epoch throughout',
  );
  assert.equal(new Set(events.map((e) => e.event_id)).size, N, 'distinct event ids');
  assert.equal(c.ws.readyState, c.ws.OPEN);
});

test("the publishing node's commands connection killed with publications in flight: no event is appended twice; accepted ones are delivered once, refused ones never", {
  timeout: 60_000,
}, async (t) => {
  if (!(await needSharedRedis(t))) return;
  const { a, b, admin } = await twoNodes(t);
  const c = await b.connect(WATCHER);
  await subscribeAgent1(c);

  // Producers without idempotency keys keep publications in flight while A's commands connection is killed.
  let next = 0;
  let stop = false;
  const accepted = new Set<number>();
  const refused = new Set<number>();
  const producer = async () => {
    while (!stop) {
      const seq = next++;
      try {
        await a.server.publish(ep(seq));
        accepted.add(seq);
      } catch (err) {
        if (!(err instanceof EscaiError) || err.code !== 'ENGINE_UNAVAILABLE') throw err;
        refused.add(seq);
        await sleep(10);
      }
    }
  };
  const producers = Array.from({ length: 16 }, producer);
  try {
    for (let k = 0; k < 8; k++) {
      await eventually(async () => a.server.engineStatus().ready && (await nodeConnected(admin, nodeId(a))), 5000, 'A reconnected');
      await sleep(50);
      assert.equal(await killNodeConnections(admin, nodeId(a), 'commands'), 1);
    }
    await sleep(200);
  } finally {
    stop = true;
    await Promise.all(producers);
  }
  assert.ok(accepted.size > 0);

  await eventually(() => c.events('epistemic_update').length >= accepted.size, 15_000, `the ${accepted.size} accepted events at the client on node B`);
  // The barrier: a marker after every producer stopped, on the same stream; anything appended before it
  // (a refused publication included) would arrive first.
  await throughMarker(c, (await publishRetrying(a, ep(next++))).event_id, 15_000);
  const events = c.events('epistemic_update');
  const times = new Map<number, number>();
  for (const e of events) {
    const seq = e.data?.['seq'] as number;
    times.set(seq, (times.get(seq) ?? 0) + 1);
  }
  const doubled = [...times].filter(([, n]) => n > 1).map(([seq]) => seq);
  const doubledIds = events.filter((e) => e.data?.['seq'] === doubled[0]).map((e) => `${e.event_id}@${e.offset}`);
  assert.deepEqual(doubled, [], `publications appended twice (same event_id at two offsets, e.g. ${doubledIds.join(', ')})`);
  assert.deepEqual(
    [...accepted].filter((seq) => !times.has(seq)),
    [],
    'every accepted publication delivered',
  );
  assert.deepEqual(
    [...refused].filter((seq) => times.has(seq)),
    [],
    'a publication answered ENGINE_UNAVAILABLE was not appended',
  );
  assert.deepEqual(
    events.map((e) => e.offset),
    Array.from({ length: events.length }, (_, i) => i + 1),
    'offsets without gap',
  );
  assert.deepEqual(c.events('recovery_failed'), []);
});

// ---- (2) Redis down at start ---------------------------------------------------------------

test('Redis down at start: the node listens, /readyz 503 names Redis, publishing 503 ENGINE_UNAVAILABLE and nothing delivered; once Redis starts the node becomes ready and delivers', {
  timeout: 60_000,
}, async (t) => {
  if (!needRedisBinary(t)) return;
  const redis = await PrivateRedis.create(t, { start: false });
  const s = await startServer(t, { redisUrl: redis.url, redisPrefix: freshRedisPrefix() });
  redis.stopAfter(t);
  const publisher = await s.token(PUBLISHER);

  assert.equal((await api(s, 'GET', '/healthz')).status, 200, 'the node is up');
  const notReady = await api<ReadyBody>(s, 'GET', '/readyz');
  assert.equal(notReady.status, 503, JSON.stringify(notReady.body));
  assert.equal(notReady.body.status, 'not_ready');
  assert.equal(notReady.body.engine, 'redis');
  assert.match(String(notReady.body.reason), /redis/i);

  // Clients may connect meanwhile (an all-agents subscription needs no stream position).
  const c = await s.connect(WATCHER);
  const sub = await c.subscribe({ type: 'epistemic_updates' });
  assert.equal(sub.type, 'subscription_confirmed', JSON.stringify(sub));

  const refused = await api<ErrorBody>(s, 'POST', '/api/v1/events', { token: publisher, json: ep(1) });
  assert.equal(refused.status, 503, JSON.stringify(refused.body));
  assert.equal(refused.body.error.code, 'ENGINE_UNAVAILABLE');
  await assert.rejects(s.server.publish(ep(2)), (err: unknown) => err instanceof EscaiError && err.code === 'ENGINE_UNAVAILABLE');
  // Nothing can be in flight without Redis; whatever the node sent is in once a ping returns. (That nothing
  // refused comes later either is asserted below: the first event delivered is the first accepted one.)
  await c.flush();
  assert.deepEqual(c.events('epistemic_update'), [], 'nothing refused was delivered');

  await sleep(500); // let the engine's reconnect backoff grow a little
  await redis.start();
  await eventually(async () => (await api(s, 'GET', '/readyz')).status === 200, 10_000, '/readyz 200 after Redis started');
  const ready = await api<ReadyBody>(s, 'GET', '/readyz');
  assert.equal(ready.body.status, 'ready');
  assert.equal(ready.body.engine, 'redis');

  // Publishing right after /readyz turns 200 must work end to end (retrying only a 503 while the subscriber settles).
  let accepted: ApiResponse<PublishAnswer> | undefined;
  await eventually(
    async () => {
      accepted = await api<PublishAnswer>(s, 'POST', '/api/v1/events', { token: publisher, json: ep(3) });
      return accepted.status !== 503;
    },
    5000,
    'publishing accepted',
  );
  assert.equal(accepted!.status, 202, JSON.stringify(accepted!.body));
  assert.equal(accepted!.body.events[0]?.offset, 1, 'the refused events were never appended: the stream starts at 1');
  const got = await c.next('epistemic_update', 5000);
  assert.equal(got.data?.['seq'], 3, 'the first event delivered is the first accepted');
  assert.equal(got.offset, 1);
  // The barrier: a marker after the last event, on the same stream (events of one stream arrive in order).
  await throughMarker(c, (await publishRetrying(s, ep(4))).event_id);
  assert.deepEqual(c.events('epistemic_update'), [], 'only the accepted event was delivered');
});

// ---- (3) Redis lost mid-run --------------------------------------------------------------------

test('Redis lost mid-run: /readyz 503, sockets stay open, publishing 503; Redis back empty: ready again, re-subscribed, new events delivered under a new epoch', {
  timeout: 60_000,
}, async (t) => {
  if (!needRedisBinary(t)) return;
  const redis = await PrivateRedis.create(t, { start: true });
  const s = await startServer(t, { redisUrl: redis.url, redisPrefix: freshRedisPrefix() });
  redis.stopAfter(t);
  const publisher = await s.token(PUBLISHER);
  await eventually(async () => (await api(s, 'GET', '/readyz')).status === 200, 5000, 'ready on the private Redis');

  const c = await s.connect(WATCHER);
  const confirmed = await subscribeAgent1(c);
  const oldEpoch = confirmed.data.epoch as string;
  for (let i = 1; i <= 3; i++) {
    const r = await api(s, 'POST', '/api/v1/events', { token: publisher, json: ep(i) });
    assert.equal(r.status, 202, JSON.stringify(r.body));
  }
  await eventually(() => c.events('epistemic_update').length === 3, 5000, 'three events before the outage');
  assert.deepEqual(
    c.events('epistemic_update').map((e) => e.offset),
    [1, 2, 3],
  );
  c.received.splice(0);

  await redis.kill();
  let down: ApiResponse<ReadyBody> | undefined;
  await eventually(
    async () => {
      down = await api<ReadyBody>(s, 'GET', '/readyz');
      return down.status === 503;
    },
    5000,
    '/readyz 503 once Redis is gone',
  );
  assert.match(String(down!.body.reason), /redis/i);
  assert.equal(c.ws.readyState, c.ws.OPEN, 'the client stays connected');
  await c.flush();
  const refused = await api<ErrorBody>(s, 'POST', '/api/v1/events', { token: publisher, json: ep(99) });
  assert.equal(refused.status, 503, JSON.stringify(refused.body));
  assert.equal(refused.body.error.code, 'ENGINE_UNAVAILABLE');
  await assert.rejects(s.server.publish(ep(98)), (err: unknown) => err instanceof EscaiError && err.code === 'ENGINE_UNAVAILABLE');

  await sleep(300);
  await redis.start(); // no persistence: every stream is gone
  await eventually(async () => (await api(s, 'GET', '/readyz')).status === 200, 10_000, '/readyz 200 after Redis returned');
  const admin = await adminClient(t, redis.url);
  await eventually(() => nodeConnected(admin, nodeId(s)), 5000, 'the node re-subscribed on the restarted Redis');
  assert.equal(c.ws.readyState, c.ws.OPEN);
  await c.flush();

  const after = await api<PublishAnswer>(s, 'POST', '/api/v1/events', { token: publisher, json: ep(4) });
  assert.equal(after.status, 202, JSON.stringify(after.body));
  const got = await c.next('epistemic_update', 5000);
  assert.equal(got.data?.['seq'], 4, 'the event published after the outage reaches the client');
  assert.equal(got.offset, 1, 'the restarted Redis starts the stream over');
  assert.notEqual(got.epoch, oldEpoch, "a new epoch tells the client the stream's history was lost");
  assert.equal(got.epoch, after.body.events[0]?.epoch);
  // The engine may also have reported the loss explicitly (when it saw the epoch change on a
  // stream it followed); if so, before the new epoch's first event and naming that epoch.
  for (const loss of c.events('recovery_failed')) {
    assert.equal(loss.data.stream, 'agent:agent_1');
    assert.equal(loss.data.agent_id, 'agent_1');
    assert.equal(loss.data.epoch, got.epoch);
  }
  // The barrier: a marker after the last event, on the same stream (events of one stream arrive in order).
  await throughMarker(c, (await publishRetrying(s, ep(5))).event_id);
  assert.deepEqual(c.events('epistemic_update'), [], 'nothing refused during the outage shows up later');
  assert.equal(c.ws.readyState, c.ws.OPEN);
});

test("Redis lost right after a publication a node had not received yet, then back empty: the node's client is told of the loss without waiting for another event", {
  timeout: 60_000,
}, async (t) => {
  if (!needRedisBinary(t)) return;
  const redis = await PrivateRedis.create(t, { start: true });
  const redisPrefix = freshRedisPrefix();
  const a = await startServer(t, { redisUrl: redis.url, redisPrefix });
  const b = await startServer(t, { redisUrl: redis.url, redisPrefix });
  redis.stopAfter(t);
  let admin = await adminClient(t, redis.url);
  for (const s of [a, b]) await eventually(() => nodeConnected(admin, nodeId(s)), 5000, `node ${nodeId(s)} connected`);

  const c = await b.connect(WATCHER);
  const confirmed = await subscribeAgent1(c);
  await publishRetrying(a, ep(1));
  await eventually(() => c.events('epistemic_update').length === 1, 5000, 'the first event at the client on node B');

  // B's subscriber is away when A publishes event 2 (accepted), and Redis dies before B is back.
  assert.equal(await killNodeConnections(admin, nodeId(b), 'subscriber'), 1);
  const lost = await publishRetrying(a, ep(2));
  assert.equal(lost.offset, 2);
  await redis.kill();
  admin.disconnect();
  await sleep(300);
  await redis.start();
  admin = await adminClient(t, redis.url);
  await eventually(() => nodeConnected(admin, nodeId(b)), 10_000, 'B back on the restarted Redis');

  // Nothing else is published: event 2 is gone with Redis, and only the engine can say so.
  await eventually(
    () => c.events('recovery_failed').length > 0,
    8000,
    'recovery_failed for agent_1 at the client on node B (event 2 was accepted, never delivered, and is gone)',
  );
  const loss = c.events('recovery_failed')[0]!;
  assert.equal(loss.data.stream, 'agent:agent_1');
  assert.equal(loss.data.agent_id, 'agent_1');
  assert.notEqual(loss.data.epoch, confirmed.data.epoch, 'the stream now lives under a new epoch');
  assert.deepEqual(
    c.events('epistemic_update').map((e) => e.offset),
    [1],
  );
});

// ---- (4) a gap history no longer covers ---------------------------------------------------------

test('a gap history cannot fill (historySize 5, 20 events missed): the client gets recovery_failed, then the events history still holds and later ones, in order', {
  timeout: 60_000,
}, async (t) => {
  if (!(await needSharedRedis(t))) return;
  const { a, b, admin } = await twoNodes(t, { historySize: 5 });
  const c = await b.connect(WATCHER);
  const confirmed = await subscribeAgent1(c);
  const epoch = confirmed.data.epoch as string;

  // B's subscriber is gone before the first of the 20 is published; it reconnects 100 ms+ later.
  assert.equal(await killNodeConnections(admin, nodeId(b), 'subscriber'), 1);
  const batch = await a.server.publish(Array.from({ length: 20 }, (_, i) => ep(i + 1)));
  assert.deepEqual(
    batch.map((r) => r.offset),
    Array.from({ length: 20 }, (_, i) => i + 1),
  );

  await eventually(() => c.events('recovery_failed').length > 0, 8000, 'recovery_failed at the client on node B');
  await eventually(() => c.events('epistemic_update').some((e) => e.offset === 20), 5000, 'the last event of the batch');
  await eventually(() => nodeConnected(admin, nodeId(b)), 5000, 'B re-subscribed');
  for (let i = 21; i <= 25; i++) await publishRetrying(a, ep(i));
  await eventually(() => c.events('epistemic_update').some((e) => e.offset === 25), 5000, 'events after the gap');
  // The barrier: a marker after the last event, on the same stream (a duplicate or a second loss report would come before it; events of one stream arrive in order).
  await throughMarker(c, (await publishRetrying(a, ep(26))).event_id);

  const frames = c.events('epistemic_update', 'recovery_failed');
  const losses = frames.filter((m) => m.type === 'recovery_failed');
  assert.equal(losses.length, 1, JSON.stringify(losses));
  const loss = losses[0]!;
  assert.equal(frames[0], loss, 'the loss is reported before any event after it');
  assert.equal(loss.data.stream, 'agent:agent_1');
  assert.equal(loss.data.agent_id, 'agent_1');
  assert.equal(loss.data.epoch, epoch);
  assert.equal(typeof loss.data.reason, 'string');
  assert.ok(loss.data.offset >= 1 && loss.data.offset <= 15, `at least the 15 events history dropped were lost (offset ${loss.data.offset})`);
  const events = eventsOf(frames.slice(1)); // every frame after the one loss is an event (asserted above)
  assert.ok(events.length >= 10, `the 5 kept in history and the 5 later ones (got ${events.length})`);
  assert.deepEqual(
    events.map((e) => e.offset),
    Array.from({ length: 25 - loss.data.offset }, (_, i) => loss.data.offset + 1 + i),
    'delivery resumes right after the reported position, in order, no duplicate',
  );
  assert.ok(events.every((e) => e.data?.['seq'] === e.offset && e.epoch === epoch));
});

// ---- (5) a quiet stream whose last message was lost ------------------------------------------------------

test('a quiet stream whose last message was lost while the subscriber was away is caught (reconnect / position check) within seconds', {
  timeout: 60_000,
}, async (t) => {
  if (!(await needSharedRedis(t))) return;
  const { a, b, admin } = await twoNodes(t);
  const c = await b.connect(WATCHER);
  await subscribeAgent1(c);
  await publishRetrying(a, ep(1));
  await eventually(() => c.events('epistemic_update').length === 1, 5000, 'the first event');

  // Only the subscriber is lost: the resubscribe check finds the stream ahead.
  assert.equal(await killNodeConnections(admin, nodeId(b), 'subscriber'), 1);
  await publishRetrying(a, ep(2)); // B is not subscribed: pub/sub drops it for B
  await eventually(() => c.events('epistemic_update').length === 2, 5000, 'the lost last message (offset 2), with nothing published after it');

  // Both connections lost: if the commands connection is not back when the subscriber is,
  // only the periodic position check (two checks, 2 s apart) can notice.
  await eventually(() => nodeConnected(admin, nodeId(b)), 5000, 'B reconnected');
  assert.equal(await killNodeConnections(admin, nodeId(b), 'both'), 2);
  await publishRetrying(a, ep(3));
  await eventually(() => c.events('epistemic_update').length === 3, 9000, 'the lost last message (offset 3), with nothing published after it');

  // The barrier: a marker after the last event, on the same stream (a loss report is sent before the stream's next event; events of one stream arrive in order).
  await throughMarker(c, (await publishRetrying(a, ep(4))).event_id);
  assert.deepEqual(c.events('recovery_failed'), [], 'history covered it: no loss reported');
  const events = c.events('epistemic_update');
  assert.deepEqual(
    events.map((e) => e.offset),
    [1, 2, 3],
  );
  assert.deepEqual(
    events.map((e) => e.data?.['seq']),
    [1, 2, 3],
  );
});

// ---- (6) the SDK surfaces the server's recovery_failed --------------------------------------------------

test('the SDK turns a server recovery_failed (gap beyond history) into its recovery_failed event and keeps receiving', { timeout: 60_000 }, async (t) => {
  if (!(await needSharedRedis(t))) return;
  const { a, b, admin } = await twoNodes(t, { historySize: 5 });
  const sdk = new EscaiClient({ url: b.url, getToken: () => b.token(WATCHER), WebSocket, minReconnectDelay: 20, maxReconnectDelay: 200 });
  t.after(() => sdk.close());
  const failures: Array<{ type: string; agentId: string | null; reason: string }> = [];
  const seqs: number[] = [];
  sdk.on('recovery_failed', ({ subscription, reason }) => failures.push({ type: subscription.type, agentId: subscription.agentId, reason }));
  sdk.on('epistemic_update', (e) => seqs.push(e.data?.['seq'] as number));
  sdk.connect();
  await sdk.subscribe('epistemic_updates', { agentId: 'agent_1' });

  assert.equal(await killNodeConnections(admin, nodeId(b), 'subscriber'), 1);
  await a.server.publish(Array.from({ length: 20 }, (_, i) => ep(i + 1)));
  await eventually(() => failures.length > 0, 8000, 'recovery_failed at the SDK');
  await eventually(() => seqs.includes(20), 5000, 'the events history still held');
  assert.deepEqual(failures, [{ type: 'epistemic_updates', agentId: 'agent_1', reason: failures[0]!.reason }]);
  assert.match(failures[0]!.reason, /lost/);
  // Delivery resumes after the hole, in order; the SDK's position follows the server's.
  assert.deepEqual(
    seqs,
    Array.from({ length: seqs.length }, (_, i) => 21 - seqs.length + i),
  );
  assert.equal(sdk.position('agent:agent_1', 'epistemic_update')?.offset, 20);
  assert.equal(sdk.state, 'connected');
});
