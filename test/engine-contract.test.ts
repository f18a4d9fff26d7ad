// The engine contract: what every engine behind the Broker, SessionStore and
// Presence seams promises, stated once and run against each engine (the
// in-memory reference and Redis, on the real Redis). Then what only a
// cluster engine can show: delivery across nodes, and that a node receives
// only the streams it follows.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { ALL_AGENT_STREAMS, type Broker, type DeliveredEvent, type Engine, type PublishReceipt, type UnsequencedEvent } from '../src/engine/index.js';
import { MemoryEngine } from '../src/engine/memory/index.js';
import { RedisEngine } from '../src/engine/redis/index.js';
import { createLogger } from '../src/log.js';
import { dropRedisPrefix, eventually, freshRedisPrefix, TEST_ENGINE, TEST_REDIS_URL } from './helpers.js';
import { redisAnswers } from './redis-support.js';
import { need } from './require.js';

interface Delivery {
  stream: string;
  event: DeliveredEvent;
  json: string | undefined;
}

/** An engine under test, started, with everything its handlers received; closed when the test ends. */
interface Started {
  engine: Engine;
  deliveries: Delivery[];
  losses: Array<{ stream: string; offset: number; epoch: string }>;
}

type Factory = (t: TestContext, options?: { historySize?: number; prefix?: string }) => Promise<Started | undefined>;

async function startEngine(t: TestContext, engine: Engine): Promise<Started> {
  const started: Started = { engine, deliveries: [], losses: [] };
  t.after(() => engine.close());
  await engine.broker.start(
    (stream, event, json) => started.deliveries.push({ stream, event, json }),
    (stream, position) => started.losses.push({ stream, ...position }),
  );
  await eventually(() => engine.status().ready, 5000, `the ${engine.name} engine to be ready`);
  return started;
}

const memory: Factory = async (t, options = {}) => startEngine(t, new MemoryEngine({ historySize: options.historySize ?? 100, historyTtlMs: 60_000 }));

const redis: Factory = async (t, options = {}) => {
  const answer = await redisAnswers(TEST_REDIS_URL);
  if (!need(t, 'redis', answer.ok, answer.why)) return undefined;
  const prefix = options.prefix ?? freshRedisPrefix();
  if (!options.prefix) t.after(() => dropRedisPrefix(TEST_REDIS_URL, prefix));
  const engine = new RedisEngine({ url: TEST_REDIS_URL, prefix, log: createLogger('silent'), historySize: options.historySize ?? 100, historyTtlMs: 60_000 });
  return startEngine(t, engine);
};

function event(type: UnsequencedEvent['type'] = 'epistemic_update', extra: Partial<UnsequencedEvent> = {}): UnsequencedEvent {
  return { type, event_id: randomUUID(), agent_id: 'a1', data: { confidence_level: 0.5 }, timestamp: new Date().toISOString(), ...extra };
}

/** Appends one event (the seam takes batches). */
async function publishOne(broker: Broker, stream: string, ev: UnsequencedEvent, idempotencyKey?: string): Promise<PublishReceipt> {
  const [receipt] = await broker.publish([{ stream, event: ev, idempotencyKey }]);
  assert.ok(receipt);
  return receipt;
}

/** Resolves once `started` has received `count` deliveries of `stream`. */
async function deliveredOf(started: Started, stream: string, count: number): Promise<Delivery[]> {
  const of = () => started.deliveries.filter((d) => d.stream === stream);
  await eventually(() => of().length >= count, 5000, `${count} deliveries of ${stream} (got ${of().length})`);
  return of();
}

const ENGINES: Array<[string, Factory]> = [
  ['memory', memory],
  ['redis', redis],
];

for (const [name, make] of ENGINES) {
  describe(`engine contract: ${name}`, { skip: TEST_ENGINE === 'redis' && 'runs in the main pass (it starts its own engines)' }, () => {
    test('publish gives each stream gap-free offsets from 1 under one epoch; streams are independent; the receipt names the event', {
      timeout: 60_000,
    }, async (t) => {
      const e = await make(t);
      if (!e) return;
      const { broker } = e.engine;
      const receipts = [];
      for (let i = 0; i < 3; i++) receipts.push(await publishOne(broker, 'agent:a1', event()));
      const other = await publishOne(broker, 'agent:a2', event('epistemic_update', { agent_id: 'a2' }));
      assert.deepEqual(
        receipts.map((r) => r.offset),
        [1, 2, 3],
      );
      assert.equal(new Set(receipts.map((r) => r.epoch)).size, 1);
      assert.ok(receipts.every((r) => r.duplicate === false));
      assert.equal(other.offset, 1);
      assert.notEqual(other.epoch, '');
      assert.deepEqual(await broker.position('agent:a1'), { offset: 3, epoch: receipts[0]!.epoch });
    });

    test('a followed stream is delivered in offset order, each event once, with offset and epoch, and its JSON when the engine has it', {
      timeout: 60_000,
    }, async (t) => {
      const e = await make(t);
      if (!e) return;
      const { broker } = e.engine;
      await broker.follow('agent:a1');
      const sent = [];
      for (let i = 0; i < 20; i++) sent.push(await publishOne(broker, 'agent:a1', event('epistemic_update', { data: { seq: i } }), undefined));
      const got = await deliveredOf(e, 'agent:a1', 20);
      assert.deepEqual(
        got.map((d) => d.event.offset),
        sent.map((r) => r.offset),
      );
      assert.deepEqual(
        got.map((d) => d.event.event_id),
        sent.map((r) => r.event_id),
      );
      assert.deepEqual(
        got.map((d) => d.event.data?.['seq']),
        Array.from({ length: 20 }, (_, i) => i),
      );
      for (const d of got) {
        assert.equal(d.event.epoch, sent[0]!.epoch);
        if (d.json !== undefined) assert.deepEqual(JSON.parse(d.json), d.event, 'the JSON is the event');
      }
    });

    test("following every agent stream delivers each agent's events, and not the system stream's", { timeout: 60_000 }, async (t) => {
      const e = await make(t);
      if (!e) return;
      const { broker } = e.engine;
      await broker.follow(ALL_AGENT_STREAMS);
      await publishOne(broker, 'agent:x1', event('epistemic_update', { agent_id: 'x1' }));
      await publishOne(broker, 'agent:x2', event('agent_status_change', { agent_id: 'x2', status: 'running' }));
      await deliveredOf(e, 'agent:x1', 1);
      await deliveredOf(e, 'agent:x2', 1);
    });

    test('an idempotency key repeated on the same stream appends and delivers nothing, and answers with the original', { timeout: 60_000 }, async (t) => {
      const e = await make(t);
      if (!e) return;
      const { broker } = e.engine;
      await broker.follow('agent:a1');
      const first = await publishOne(broker, 'agent:a1', event(), 'key-1');
      const again = await publishOne(broker, 'agent:a1', event(), 'key-1');
      const otherStream = await publishOne(broker, 'agent:a2', event('epistemic_update', { agent_id: 'a2' }), 'key-1');
      assert.equal(first.duplicate, false);
      assert.deepEqual(again, { ...first, duplicate: true });
      assert.equal(otherStream.duplicate, false, 'keys are per stream');
      const marker = await publishOne(broker, 'agent:a1', event());
      assert.equal(marker.offset, 2, 'the repeat took no offset');
      const got = await deliveredOf(e, 'agent:a1', 2);
      assert.deepEqual(
        got.map((d) => d.event.offset),
        [1, 2],
        'the repeat was not delivered',
      );
    });

    test('history: everything kept, or after `since` (complete), or incomplete when `since` fell out of history; `limit` caps it', {
      timeout: 60_000,
    }, async (t) => {
      const e = await make(t, { historySize: 5 });
      if (!e) return;
      const { broker } = e.engine;
      for (let i = 1; i <= 8; i++) await publishOne(broker, 'agent:a1', event('epistemic_update', { data: { seq: i } }));
      const all = await broker.history('agent:a1', {});
      assert.deepEqual(
        all.events.map((ev) => ev.offset),
        [4, 5, 6, 7, 8],
        'the last historySize events',
      );
      assert.equal(all.position.offset, 8);
      const since = await broker.history('agent:a1', { since: 5 });
      assert.deepEqual(
        since.events.map((ev) => ev.offset),
        [6, 7, 8],
      );
      assert.equal(since.complete, true);
      const tooOld = await broker.history('agent:a1', { since: 1 });
      assert.equal(tooOld.complete, false, 'offsets 2-3 are gone');
      const limited = await broker.history('agent:a1', { since: 3, limit: 2 });
      assert.deepEqual(
        limited.events.map((ev) => ev.offset),
        [4, 5],
      );
      const none = await broker.history('agent:a1', { since: 8 });
      assert.deepEqual(none.events, []);
      assert.equal(none.complete, true);
    });

    test('a stream never published to stands at offset 0 under a stable epoch', { timeout: 60_000 }, async (t) => {
      const e = await make(t);
      if (!e) return;
      const { broker } = e.engine;
      const first = await broker.position('agent:never');
      assert.equal(first.offset, 0);
      assert.deepEqual(await broker.position('agent:never'), first);
      const page = await broker.history('agent:never', { since: 0 });
      assert.deepEqual(page, { events: [], position: first, complete: true });
      const published = await publishOne(broker, 'agent:never', event('epistemic_update', { agent_id: 'never' }));
      assert.deepEqual({ offset: published.offset, epoch: published.epoch }, { offset: 1, epoch: first.epoch });
    });

    test('streamsActiveSince lists the streams published to since a time, by prefix', { timeout: 60_000 }, async (t) => {
      const e = await make(t);
      if (!e) return;
      const { broker } = e.engine;
      const before = Date.now() - 1000;
      await publishOne(broker, 'agent:p1', event('epistemic_update', { agent_id: 'p1' }));
      await publishOne(broker, 'system', event('system_alert', { agent_id: undefined, alert_type: 'x', message: 'y' }));
      assert.deepEqual((await broker.streamsActiveSince('agent:', before)).sort(), ['agent:p1']);
      assert.deepEqual(await broker.streamsActiveSince('agent:', Date.now() + 60_000), []);
    });

    test('sessions: a saved session is taken once (of concurrent takes, one wins); an expired one is gone', { timeout: 60_000 }, async (t) => {
      const e = await make(t);
      if (!e) return;
      const { sessions } = e.engine;
      const state = {
        userId: 'u1',
        sessionId: 's1',
        startedAt: 1,
        detachedAt: 2,
        subscriptions: [],
        positions: [['agent:a1', 3, 'ep'] as [string, number, string]],
      };
      await sessions.save(state, 60_000, 10);
      const takes = await Promise.all([sessions.take('u1', 's1'), sessions.take('u1', 's1'), sessions.take('u1', 's1')]);
      assert.deepEqual(
        takes.filter((x) => x !== undefined),
        [state],
        'exactly one take gets it, intact',
      );
      assert.equal(await sessions.take('u1', 's1'), undefined, 'taking removes it');
      assert.equal(await sessions.take('u2', 's1'), undefined, "another user's id finds nothing");
      await sessions.save(state, 1, 10);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(await sessions.take('u1', 's1'), undefined, 'expired');
    });

    test('sessions: a patch writes only what changed; a user keeps at most maxPerUser sessions; a patch of a missing session writes nothing', {
      timeout: 60_000,
    }, async (t) => {
      const e = await make(t);
      if (!e) return;
      const { sessions } = e.engine;
      const sub = (type: string, agent: string | null, created: number) => ({ type, agent_id: agent, filters: null, created_at: created });
      await sessions.save(
        {
          userId: 'u1',
          sessionId: 's1',
          startedAt: 1,
          detachedAt: 2,
          subscriptions: [sub('epistemic_updates', 'a1', 10), sub('agent_status', null, 11)],
          positions: [],
        },
        60_000,
        10,
      );
      await sessions.patch(
        'u1',
        's1',
        {
          startedAt: 1,
          detachedAt: 3,
          subscriptions: { agent_status: null, 'pattern_alerts\u0000a2': sub('pattern_alerts', 'a2', 12) },
          positions: [['agent:a1', 5, 'ep']],
        },
        60_000,
      );
      const taken = await sessions.take('u1', 's1');
      assert.deepEqual(taken?.subscriptions, [sub('epistemic_updates', 'a1', 10), sub('pattern_alerts', 'a2', 12)]);
      assert.deepEqual(taken?.positions, [['agent:a1', 5, 'ep']]);
      assert.equal(taken?.detachedAt, 3);
      await sessions.patch('u1', 's1', { startedAt: 1, detachedAt: 4, positions: [] }, 60_000);
      assert.equal(await sessions.take('u1', 's1'), undefined, 'a patch does not bring a taken session back');

      for (const id of ['x1', 'x2', 'x3'])
        await sessions.save({ userId: 'u2', sessionId: id, startedAt: 1, detachedAt: 1, subscriptions: [], positions: [] }, 60_000, 2);
      assert.equal(await sessions.take('u2', 'x1'), undefined, 'the least recently saved went');
      assert.ok(await sessions.take('u2', 'x2'));
      assert.ok(await sessions.take('u2', 'x3'));
    });

    test('presence: user slots are capped and given back; the node report is listed while fresh', { timeout: 60_000 }, async (t) => {
      const e = await make(t);
      if (!e) return;
      const { presence, nodeId } = e.engine;
      await presence.reportNode(
        { node_id: nodeId, address: '127.0.0.1:1', started_at: new Date().toISOString(), reported_at: Date.now(), counters: { active_connections: 0 } },
        5000,
      );
      assert.deepEqual(
        (await presence.nodes()).map((n) => n.node_id),
        [nodeId],
      );
      assert.equal(await presence.claimUserSlot('u1', 2), true);
      assert.equal(await presence.claimUserSlot('u1', 2), true);
      assert.equal(await presence.claimUserSlot('u1', 2), false, 'the cap holds');
      presence.releaseUserSlot('u1');
      await eventually(() => presence.claimUserSlot('u1', 2), 3000, 'a released slot to be free again');
      assert.deepEqual(await presence.remoteConnections(), [], 'a lone node has no remote connections');
    });
  });
}

describe('cluster engine (Redis): across nodes', { skip: TEST_ENGINE === 'redis' && 'runs in the main pass (it starts its own engines)' }, () => {
  test('a node receives the events of streams it follows, published on another node, in order', { timeout: 60_000 }, async (t) => {
    const prefix = freshRedisPrefix();
    const a = await redis(t, { prefix });
    if (!a) return;
    t.after(() => dropRedisPrefix(TEST_REDIS_URL, prefix));
    const b = (await redis(t, { prefix }))!;
    await b.engine.broker.follow('agent:a1');
    for (let i = 0; i < 10; i++) await publishOne(a.engine.broker, 'agent:a1', event('epistemic_update', { data: { seq: i } }));
    const got = await deliveredOf(b, 'agent:a1', 10);
    assert.deepEqual(
      got.map((d) => d.event.offset),
      Array.from({ length: 10 }, (_, i) => i + 1),
    );
    assert.ok(
      got.every((d) => d.json !== undefined),
      'the channel text is handed over as the frame',
    );
  });

  test("a batch sent again (ioredis resends a command whose reply was lost) answers the first run's positions and appends nothing", {
    timeout: 60_000,
  }, async (t) => {
    const a = await redis(t);
    if (!a) return;
    const { broker } = a.engine;
    await broker.follow('agent:a1');
    await broker.follow('agent:a2');
    const batch = [
      { stream: 'agent:a1', event: event() },
      { stream: 'agent:a2', event: event('epistemic_update', { agent_id: 'a2' }) },
      { stream: 'agent:a1', event: event(), idempotencyKey: 'k1' },
      { stream: 'agent:a1', event: event(), idempotencyKey: 'k1' },
    ];
    const first = await broker.publish(batch);
    assert.deepEqual(
      first.map((r) => [r.offset, r.duplicate]),
      [
        [1, false],
        [1, false],
        [2, false],
        [2, true],
      ],
      'offsets per stream; the repeated key is a duplicate of the first',
    );
    const again = await broker.publish(batch);
    assert.deepEqual(again, first, 'the same receipts, not new offsets');
    await deliveredOf(a, 'agent:a1', 2);
    await deliveredOf(a, 'agent:a2', 1);
    const next = await publishOne(broker, 'agent:a1', event());
    assert.equal(next.offset, 3, 'nothing was appended by the second run');
    assert.deepEqual(
      (await deliveredOf(a, 'agent:a1', 3)).map((d) => d.event.offset),
      [1, 2, 3],
      'each event delivered once',
    );
    assert.deepEqual(
      (await broker.history('agent:a1', { since: 0 })).events.map((e) => e.offset),
      [1, 2, 3],
    );
  });

  test('a node subscribes only to the channels of streams it follows, and leaves them when the last follower goes', { timeout: 60_000 }, async (t) => {
    const prefix = freshRedisPrefix();
    const a = await redis(t, { prefix });
    if (!a) return;
    t.after(() => dropRedisPrefix(TEST_REDIS_URL, prefix));
    const b = (await redis(t, { prefix }))!;
    const admin = new Redis(TEST_REDIS_URL);
    t.after(() => admin.disconnect());
    const subscribers = async (stream: string) => {
      const [, n] = (await admin.call('PUBSUB', 'NUMSUB', `${prefix}:c:${stream.replace(/:/g, '%3A')}`)) as [string, number];
      return Number(n);
    };
    assert.equal(await subscribers('agent:a1'), 0, 'nobody follows agent:a1 yet');
    await b.engine.broker.follow('user:ghost');
    assert.equal(await admin.exists(`${prefix}:m:user%3Aghost`), 0, 'following a stream nobody published to writes nothing to Redis');
    await publishOne(a.engine.broker, 'user:ghost', event('user_notification', { agent_id: undefined, notification_type: 'n', message: 'first' }));
    assert.deepEqual(
      (await deliveredOf(b, 'user:ghost', 1)).map((d) => d.event.offset),
      [1],
      'its first event is delivered',
    );
    assert.deepEqual(b.losses, [], 'and no loss is reported for it');
    await b.engine.broker.follow('agent:a1');
    await b.engine.broker.follow('agent:a1'); // a second follower on the same node
    assert.equal(await subscribers('agent:a1'), 1);
    assert.equal(await subscribers('agent:a2'), 0);

    await publishOne(a.engine.broker, 'agent:a2', event('epistemic_update', { agent_id: 'a2' }));
    await publishOne(a.engine.broker, 'agent:a1', event());
    await deliveredOf(b, 'agent:a1', 1);
    assert.deepEqual(
      b.deliveries.filter((d) => d.stream === 'agent:a2'),
      [],
      'an unfollowed stream does not reach the node',
    );

    b.engine.broker.unfollow('agent:a1');
    assert.equal(await subscribers('agent:a1'), 1, 'one follower is left');
    b.engine.broker.unfollow('agent:a1');
    await eventually(async () => (await subscribers('agent:a1')) === 0, 3000, 'the channel to be left');
  });

  test('following every agent stream receives agents nobody follows by name, once each, even when one is also followed by name', {
    timeout: 60_000,
  }, async (t) => {
    const prefix = freshRedisPrefix();
    const a = await redis(t, { prefix });
    if (!a) return;
    t.after(() => dropRedisPrefix(TEST_REDIS_URL, prefix));
    const b = (await redis(t, { prefix }))!;
    await b.engine.broker.follow(ALL_AGENT_STREAMS);
    await b.engine.broker.follow('agent:both');
    for (let i = 0; i < 5; i++) {
      await publishOne(a.engine.broker, 'agent:both', event('epistemic_update', { agent_id: 'both' }));
      await publishOne(a.engine.broker, 'agent:only-pattern', event('epistemic_update', { agent_id: 'only-pattern' }));
    }
    await publishOne(a.engine.broker, 'system', event('system_alert', { agent_id: undefined, alert_type: 'x', message: 'y' }));
    await deliveredOf(b, 'agent:both', 5);
    await deliveredOf(b, 'agent:only-pattern', 5);
    // The barrier: markers published after all of the above. A node's one subscriber connection gets what
    // Redis publishes in order (a message and its pattern match together), so once the last marker is in,
    // any second copy or stray delivery of an earlier publication has arrived too.
    await publishOne(a.engine.broker, 'agent:both', event('epistemic_update', { agent_id: 'both' }));
    await publishOne(a.engine.broker, 'agent:only-pattern', event('epistemic_update', { agent_id: 'only-pattern' }));
    await deliveredOf(b, 'agent:only-pattern', 6);
    const offsets = (stream: string) => b.deliveries.filter((d) => d.stream === stream).map((d) => d.event.offset);
    assert.deepEqual(offsets('agent:both'), [1, 2, 3, 4, 5, 6], 'each once, in order');
    assert.deepEqual(offsets('agent:only-pattern'), [1, 2, 3, 4, 5, 6], 'each once, in order');
    assert.deepEqual(
      b.deliveries.filter((d) => d.stream === 'system'),
      [],
      'the system stream is not an agent stream',
    );
  });
});
