// State nothing counts cannot grow without bound: history is bounded by bytes
// (per stream, per node), streams that were only read are forgotten soon
// (without a false "recovery failed" for their subscribers), a replay is
// capped whatever it covers, and each user's replays share a budget.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import type { UnsequencedEvent } from '../src/engine/broker.js';
import { MemoryBroker } from '../src/engine/memory/broker.js';
import { REPLAY_LIMITS } from '../src/server/delivery/replay.js';
import { confirmed, connectionCount, eventsOf, settle, startServer, TEST_ENGINE, TEST_REDIS_URL, type TestServer } from './helpers.js';

function sample(agent: string, size = 100): UnsequencedEvent {
  return { type: 'epistemic_update', event_id: randomUUID(), agent_id: agent, data: { pad: 'x'.repeat(size) }, timestamp: new Date().toISOString() };
}

test('memory history is bounded by bytes per stream and per node; the oldest events anywhere go first', { timeout: 60_000 }, async () => {
  const broker = new MemoryBroker({ historySize: 10_000, historyTtlMs: 60_000, historyBytesPerStream: 20_000, historyBytesTotal: 50_000 });
  await broker.start(() => {});
  for (let i = 0; i < 100; i++) await broker.publish([{ stream: 'agent:a', event: sample('a', 500) }]);
  const a = await broker.history('agent:a', {});
  assert.ok(a.events.length < 100 && a.events.length >= 20, `per stream: ${a.events.length} of 100 kept (≈ 730 B each)`);
  assert.equal(a.events.at(-1)?.offset, 100, 'the newest are kept');
  assert.ok(broker.historyBytes <= 20_000, `${broker.historyBytes} bytes`);
  for (const name of ['b', 'c', 'd']) for (let i = 0; i < 40; i++) await broker.publish([{ stream: `agent:${name}`, event: sample(name, 500) }]);
  assert.ok(broker.historyBytes <= 50_000, `the node's budget holds: ${broker.historyBytes} bytes`);
  assert.deepEqual((await broker.history('agent:a', {})).events, [], 'the oldest stream went first');
  assert.equal((await broker.history('agent:d', {})).events.at(-1)?.offset, 40);
  broker.close();
});

test('memory: streams only read are forgotten after the unpublished TTL; published ones are kept', { timeout: 60_000 }, async () => {
  const broker = new MemoryBroker({ historySize: 100, historyTtlMs: 60_000, unpublishedTtlMs: 1000 });
  await broker.start(() => {});
  for (let i = 0; i < 1000; i++) await broker.position(`agent:ghost-${i}`);
  await broker.publish([{ stream: 'agent:real', event: sample('real') }]);
  assert.equal(broker.streamCount, 1001);
  broker.sweepNow(Date.now() + 2000);
  assert.equal(broker.streamCount, 1, 'only the published stream is left');
  broker.close();
});

test('on Redis, reading a stream nobody published to leaves a key that expires within the unpublished TTL', { timeout: 60_000 }, async (t) => {
  if (TEST_ENGINE !== 'redis') {
    t.skip('runs in the Redis-engine pass');
    return;
  }
  const s = await startServer(t, { unpublishedStreamTtl: 30 });
  const c = await s.connect({ sub: 'w', roles: ['researcher'] });
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'never-published' });
  const admin = new Redis(TEST_REDIS_URL);
  t.after(() => admin.disconnect());
  const ttl = await admin.pttl(`${s.server.config.redisPrefix}:m:agent%3Anever-published`);
  assert.ok(ttl > 0 && ttl <= 30_000, `the key expires within 30 s (PTTL ${ttl})`);
});

test('a subscriber of a stream that was forgotten unpublished recovers from offset 0: every event of the new epoch, no false alarm', {
  timeout: 60_000,
}, async (t) => {
  const s = await startServer(t, { unpublishedStreamTtl: 1, historyTtl: 4 });
  const c = await s.connect({ sub: 'w', roles: ['researcher'] });
  const first = await confirmed(c, { type: 'epistemic_updates', agent_id: 'late-starter' });
  assert.equal(first.data.offset, 0);
  await c.request({ type: 'unsubscribe', data: { subscription_type: 'epistemic_updates', agent_id: 'late-starter' } }, 'unsubscription_confirmed');
  // Long enough for the stream to be forgotten (TTL 1 s; the memory engine sweeps every second here).
  await settle(2600);
  await s.server.publish([
    { type: 'epistemic_update', agent_id: 'late-starter', data: { n: 1 } },
    { type: 'epistemic_update', agent_id: 'late-starter', data: { n: 2 } },
  ]);
  const again = await confirmed(c, { type: 'epistemic_updates', agent_id: 'late-starter', since: { offset: 0, epoch: first.data.epoch! } });
  assert.equal(again.data.recovered, true);
  assert.notEqual(again.data.epoch, first.data.epoch, 'a new epoch');
  assert.deepEqual(
    eventsOf(await c.drain()).map((e) => e.data?.['n']),
    [1, 2],
  );
});

async function publishMany(s: TestServer, agent: string, count: number): Promise<void> {
  for (let sent = 0; sent < count; sent += 1000) {
    await s.server.publish(
      Array.from({ length: Math.min(1000, count - sent) }, (_, i) => ({ type: 'agent_status_change', agent_id: agent, status: `s${sent + i}` })),
    );
  }
}

test("a single stream's replay is capped too: past the limit nothing is replayed and recovered is false", { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { historySize: REPLAY_LIMITS.events + 500, replayBudget: 100_000 });
  await publishMany(s, 'flood', REPLAY_LIMITS.events + 1);
  const c = await s.connect({ sub: 'w', roles: ['researcher'] });
  const position = await confirmed(c, { type: 'agent_status', agent_id: 'flood' });
  await c.request({ type: 'unsubscribe', data: { subscription_type: 'agent_status', agent_id: 'flood' } }, 'unsubscription_confirmed');
  const capped = await confirmed(c, { type: 'agent_status', agent_id: 'flood', since: { offset: 0, epoch: position.data.epoch! } });
  assert.equal(capped.data.recovered, false);
  assert.deepEqual(eventsOf(await c.drain()), [], 'no partial replay');
  await c.request({ type: 'unsubscribe', data: { subscription_type: 'agent_status', agent_id: 'flood' } }, 'unsubscription_confirmed');
  const within = await confirmed(c, { type: 'agent_status', agent_id: 'flood', since: { offset: 1, epoch: position.data.epoch! } });
  assert.equal(within.data.recovered, true, 'exactly the limit is allowed');
  assert.equal(eventsOf(await c.drain()).length, REPLAY_LIMITS.events);
});

test("a user's replays share a budget: a loop of subscribe since 0 stops being replayed (recovered false), other users are unaffected", {
  timeout: 60_000,
}, async (t) => {
  const s = await startServer(t, { replayBudget: 25 });
  await publishMany(s, 'loop', 20);
  const greedy = await s.connect({ sub: 'greedy', roles: ['researcher'] }, { session: 'greedy' });
  const start = await confirmed(greedy, { type: 'agent_status', agent_id: 'loop' });
  const epoch = start.data.epoch!;
  const outcomes: boolean[] = [];
  for (let i = 0; i < 4; i++) {
    await greedy.request({ type: 'unsubscribe', data: { subscription_type: 'agent_status', agent_id: 'loop' } }, 'unsubscription_confirmed');
    const conf = await confirmed(greedy, { type: 'agent_status', agent_id: 'loop', since: { offset: 0, epoch } });
    outcomes.push(conf.data.recovered);
    await greedy.drain();
  }
  assert.deepEqual(outcomes.slice(0, 2), [true, true], 'a burst of two 20-event replays fits 2 × 25');
  assert.equal(outcomes[3], false, 'then the budget is spent');
  const other = await s.connect({ sub: 'other', roles: ['researcher'] }, { session: 'other' });
  const fine = await confirmed(other, { type: 'agent_status', agent_id: 'loop', since: { offset: 0, epoch } });
  assert.equal(fine.data.recovered, true);
});

test('filters have a byte budget per subscription and per connection, refused by name', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect({ sub: 'w', roles: ['researcher'] });
  const big = { agent_id: { in: Array.from({ length: 256 }, (_, i) => `agent-with-a-long-name-${i}`) } };
  const refused = await c.subscribe({ type: 'epistemic_updates', filters: big });
  assert.equal(refused.type, 'error');
  assert.match(refused.type === 'error' ? refused.message : '', /^filters: \d+ bytes as JSON, over the limit of 4096 per subscription$/);
  // Subscriptions of ≈ 2.9 KiB each: about twenty-two fit in 64 KiB, the next does not.
  const medium = (n: number) => ({ message: { in: Array.from({ length: 100 }, (_, i) => `m${n}-${i}-pad-pad-pad-pad-pad`) } });
  let failure = '';
  for (let i = 0; i < 30 && !failure; i++) {
    const r = await c.subscribe({ type: 'epistemic_updates', agent_id: `a${i}`, filters: medium(i) });
    if (r.type === 'error') failure = `${i}: ${r.message}`;
  }
  assert.match(failure, /^2\d: filters: the connection's filters would total \d+ bytes, over the limit of 65536$/);
});

test('a user keeps at most maxSessionsPerUser sessions: the least recently saved is dropped, not resumed', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { maxSessionsPerUser: 2 });
  const token = await s.token({ sub: 'many-tabs', roles: ['researcher'] });
  for (const session of ['tab-1', 'tab-2', 'tab-3']) {
    const { client } = await s.open(token, { session });
    await confirmed(client, { type: 'epistemic_updates', agent_id: session });
    client.ws.close();
    await client.closeEvent;
    await connectionCount(s.server, 0);
  }
  const resumed: Record<string, boolean> = {};
  for (const session of ['tab-1', 'tab-2', 'tab-3']) resumed[session] = (await s.open(token, { session })).hello.resumed;
  assert.deepEqual(resumed, { 'tab-1': false, 'tab-2': true, 'tab-3': true });
});
