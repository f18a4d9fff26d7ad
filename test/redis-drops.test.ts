// Messages the Redis broker receives and does not deliver are counted by
// reason, never dropped without a trace: garbage published on a stream's
// channel (unparsable, or JSON that is no event), a message naming a stream this node does not follow
// (unfollowed), a copy of an event already delivered (duplicate). Provoked
// for real with a raw ioredis client on the real Redis (127.0.0.1:6379 or
// ESCAI_TEST_REDIS_URL); the counts are what /metrics reports.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { DROP_REASONS, type DeliveredEvent } from '../src/engine/broker.js';
import { MemoryEngine } from '../src/engine/memory/index.js';
import type { RedisEngine } from '../src/engine/redis/index.js';
import { createMetrics } from '../src/server/http/metrics.js';
import { createCounters } from '../src/server/node/counters.js';
import { eventually, TEST_ENGINE, TEST_REDIS_URL } from './helpers.js';
import { startRedisEngine } from './redis-support.js';

const OWN_ENGINE = { skip: TEST_ENGINE === 'redis' && 'runs in the main pass (it starts its own engine)', timeout: 60_000 };
const STREAM = 'agent:drops-1';

interface Started {
  engine: RedisEngine;
  prefix: string;
  delivered: DeliveredEvent[];
  /** A plain client on the same Redis, for publishing what the engine would never publish. */
  raw: Redis;
}

async function start(t: TestContext): Promise<Started | undefined> {
  const delivered: DeliveredEvent[] = [];
  const started = await startRedisEngine(t, (stream, event) => {
    if (stream === STREAM) delivered.push(event);
  });
  if (started === undefined) return undefined;
  const { engine, prefix } = started;
  const raw = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await raw.connect();
  t.after(() => raw.disconnect());
  return { engine, prefix, delivered, raw };
}

/** The one channel the node subscribed under the prefix: the followed stream's (found in Redis, not spelled here). */
async function channelOf(raw: Redis, prefix: string): Promise<string> {
  const channels = (await raw.call('PUBSUB', 'CHANNELS', `${prefix}:*`)) as string[];
  assert.equal(channels.length, 1, `one followed channel under ${prefix}: ${JSON.stringify(channels)}`);
  return channels[0]!;
}

async function publish(engine: RedisEngine, seq: number): Promise<void> {
  const event = { type: 'epistemic_update' as const, event_id: randomUUID(), agent_id: 'drops-1', data: { seq }, timestamp: new Date().toISOString() };
  await engine.broker.publish([{ stream: STREAM, event }]);
}

describe('redis broker: dropped messages are counted by reason', OWN_ENGINE, () => {
  test('garbage, a stranger stream and a repeated event on the channel: each counted, none delivered, delivery unharmed', { timeout: 30_000 }, async (t) => {
    const s = await start(t);
    if (!s) return;
    const { engine, raw, delivered } = s;
    const before = { ...engine.broker.drops };
    assert.deepEqual(Object.keys(before).sort(), [...DROP_REASONS].sort());
    await engine.broker.follow(STREAM);
    const channel = await channelOf(raw, s.prefix);
    await publish(engine, 1);
    await eventually(() => delivered.length === 1, 5000, 'the first event delivered');
    const first = delivered[0]!;

    await raw.publish(channel, 'no stream name, no newline');
    await raw.publish(channel, `${STREAM}\n{"offset": 2, not json`);
    await raw.publish(channel, `${STREAM}\n{"offset": "2", "note": "JSON, but no event: it would look like a gap"}`);
    await raw.publish(channel, `agent:nobody-follows\n${JSON.stringify({ ...first, agent_id: 'nobody-follows' })}`);
    await raw.publish(channel, `${STREAM}\n${JSON.stringify(first)}`);
    // Published after the raw ones on the same channel: when it is delivered, they were all handled.
    await publish(engine, 2);
    await eventually(() => delivered.length >= 2, 5000, 'the second event delivered');

    assert.deepEqual(
      delivered.map((e) => e.offset),
      [1, 2],
      'nothing of the raw messages delivered',
    );
    const drops = engine.broker.drops;
    assert.equal(drops.unparsable - before.unparsable, 3);
    assert.equal(drops.unfollowed - before.unfollowed, 1);
    assert.equal(drops.duplicate - before.duplicate, 1);
    assert.equal(drops.stale_epoch - before.stale_epoch, 0);

    // The metric reads the same counts at scrape time.
    const metrics = createMetrics({
      connections: () => 0,
      subscriptions: () => 0,
      counters: createCounters(),
      engineStatus: () => engine.status(),
      engineDrops: () => engine.broker.drops,
    });
    const text = await metrics.registry.metrics();
    assert.match(text, /^# TYPE escai_engine_dropped_messages_total counter$/m);
    assert.match(text, new RegExp(`^escai_engine_dropped_messages_total\\{reason="unparsable"\\} ${drops.unparsable}$`, 'm'));
    assert.match(text, new RegExp(`^escai_engine_dropped_messages_total\\{reason="duplicate"\\} ${drops.duplicate}$`, 'm'));
  });

  test('the memory engine delivers inside publish: it exposes the same counts, all zero', { timeout: 10_000 }, async (t) => {
    const engine = new MemoryEngine({ historySize: 10, historyTtlMs: 60_000 });
    t.after(() => engine.close());
    await engine.broker.start(() => {});
    const event = { type: 'epistemic_update' as const, event_id: randomUUID(), agent_id: 'drops-1', timestamp: new Date().toISOString() };
    await engine.broker.publish([{ stream: STREAM, event }]);
    assert.deepEqual(engine.broker.drops, Object.fromEntries(DROP_REASONS.map((r) => [r, 0])));
  });
});
