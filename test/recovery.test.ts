// Streams, offsets and epochs; recovery on subscribe (`since`); history bounds
// (count and age); idempotent publishing; the history endpoint. Real server,
// real sockets, nothing mocked.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PublishEventInput } from '../src/protocol/events.js';
import {
  api,
  confirmed,
  epistemicEvent,
  eventsOf,
  publishOne,
  startServer,
  UUID,
  type ErrorBody,
  type HistoryBody,
  type PublishAnswer,
  type PublishResult,
} from './helpers.js';

const RESEARCHER = { roles: ['researcher'] };
const DEVELOPER = { roles: ['developer'] };

function pattern(agentId: string, seq: number): PublishEventInput {
  return { type: 'pattern_alert', agent_id: agentId, severity: 'warning', data: { pattern_name: `p${seq}`, pattern_type: 'sequential', frequency: seq } };
}

// ---- streams, offsets, epochs ------------------------------------------

test("every event carries event_id, offset and epoch; an agent's four event types share one stream; system and per-user streams", {
  timeout: 60_000,
}, async (t) => {
  const s = await startServer(t);
  const alice = await s.connect({ sub: 'alice', ...RESEARCHER }, { session: 'a' });
  const bob = await s.connect({ sub: 'bob', ...RESEARCHER }, { session: 'b' });
  for (const type of ['epistemic_updates', 'pattern_alerts', 'prediction_updates', 'agent_status']) {
    await confirmed(alice, { type, agent_id: 'agent_1' });
    await confirmed(alice, { type, agent_id: 'agent_2' });
  }
  await confirmed(alice, { type: 'system_alerts' });
  await confirmed(bob, { type: 'system_alerts' });

  const published = [
    await publishOne(s, epistemicEvent('agent_1', 1, 0.5)),
    await publishOne(s, pattern('agent_1', 2)),
    await publishOne(s, { type: 'prediction_update', agent_id: 'agent_1', data: { prediction_type: 'success', confidence: 0.7 } }),
    await publishOne(s, { type: 'agent_status_change', agent_id: 'agent_1', status: 'running' }),
    await publishOne(s, epistemicEvent('agent_2', 1, 0.5)),
    await publishOne(s, epistemicEvent('agent_1', 5, 0.5)),
    await publishOne(s, { type: 'system_alert', alert_type: 'maintenance', message: 'one' }),
    await publishOne(s, { type: 'agent_status_change', agent_id: 'agent_2', status: 'idle' }),
    await publishOne(s, { type: 'system_alert', alert_type: 'maintenance', message: 'two' }),
    await publishOne(s, { type: 'user_notification', user_id: 'alice', notification_type: 'report', message: 'n1' }),
    await publishOne(s, { type: 'user_notification', user_id: 'bob', notification_type: 'report', message: 'n1' }),
    await publishOne(s, { type: 'user_notification', user_id: 'alice', notification_type: 'report', message: 'n2' }),
  ];
  assert.deepEqual(
    published.map((r) => [r.stream, r.offset]),
    [
      ['agent:agent_1', 1],
      ['agent:agent_1', 2],
      ['agent:agent_1', 3],
      ['agent:agent_1', 4],
      ['agent:agent_2', 1],
      ['agent:agent_1', 5],
      ['system', 1],
      ['agent:agent_2', 2],
      ['system', 2],
      ['user:alice', 1],
      ['user:bob', 1],
      ['user:alice', 2],
    ],
  );
  // One epoch per stream.
  const epochs = new Map<string, Set<string>>();
  for (const r of published) {
    assert.match(r.epoch, /^\S+$/);
    if (!epochs.has(r.stream)) epochs.set(r.stream, new Set());
    epochs.get(r.stream)!.add(r.epoch);
  }
  for (const [stream, set] of epochs) assert.equal(set.size, 1, `${stream} has one epoch`);
  assert.equal(new Set(published.map((r) => r.event_id)).size, published.length, 'event ids are unique');

  const got = eventsOf(await alice.drain());
  const expectedForAlice = published.filter((r) => r.stream !== 'user:bob');
  assert.deepEqual(
    got.map((m) => [m.event_id, m.offset, m.epoch]),
    expectedForAlice.map((r) => [r.event_id, r.offset, r.epoch]),
    'alice receives every event with the event_id/offset/epoch the publisher was told',
  );
  for (const m of got) assert.match(m.event_id, UUID);
  assert.deepEqual(
    got.map((m) => m.type),
    [
      'epistemic_update',
      'pattern_alert',
      'prediction_update',
      'agent_status_change',
      'epistemic_update',
      'epistemic_update',
      'system_alert',
      'agent_status_change',
      'system_alert',
      'user_notification',
      'user_notification',
    ],
  );
  const bobGot = eventsOf(await bob.drain());
  assert.deepEqual(
    bobGot.map((m) => [m.type, m.offset]),
    [
      ['system_alert', 1],
      ['system_alert', 2],
      ['user_notification', 1],
    ],
  );
});

test("subscription_confirmed carries the stream's current offset and epoch, and recovered", { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  const results = [];
  for (let i = 1; i <= 4; i++) results.push(await publishOne(s, i % 2 ? epistemicEvent('agent_1', i, 0.9) : pattern('agent_1', i)));
  await publishOne(s, { type: 'system_alert', alert_type: 'x', message: 'm' });
  const a = await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1' });
  assert.equal(a.data.recovered, false);
  assert.equal(a.data.offset, 4);
  assert.equal(a.data.epoch, results[0]!.epoch);
  const p = await confirmed(c, { type: 'pattern_alerts', agent_id: 'agent_1' });
  assert.equal(p.data.offset, 4, 'the pattern alerts of agent_1 are the same stream');
  assert.equal(p.data.epoch, results[0]!.epoch);
  const sys = await confirmed(c, { type: 'system_alerts' });
  assert.equal(sys.data.offset, 1);
  const other = await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_9' });
  assert.equal(other.data.offset, 0);
  assert.equal(typeof other.data.epoch, 'string');
  // Without `since` nothing is replayed.
  assert.deepEqual(eventsOf(await c.drain()), []);
});

// ---- recovery on subscribe ------------------------------------------------

test('subscribe with since: recovered, then exactly the missed matching events of that type in offset order, then live ones', {
  timeout: 60_000,
}, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  const all: Array<{ offset: number; type: string; conf?: number; epoch: string }> = [];
  for (let i = 1; i <= 20; i++) {
    const conf = i % 3 === 0 ? 0.2 : 0.9;
    const ev = i % 4 === 0 ? pattern('agent_1', i) : epistemicEvent('agent_1', i, conf);
    const r = await publishOne(s, ev);
    all.push({ offset: r.offset, type: ev.type, conf: ev.type === 'epistemic_update' ? conf : undefined, epoch: r.epoch });
    await publishOne(s, epistemicEvent('agent_2', i, 0.9)); // another stream: never part of the replay
  }
  const epoch = all[0]!.epoch;
  c.send({
    type: 'subscribe',
    id: 'sub-1',
    data: { type: 'epistemic_updates', agent_id: 'agent_1', filters: { confidence_level: { min: 0.5 } }, since: { offset: 6, epoch } },
  });
  const msgs = await c.drain();
  const conf = msgs[0]!;
  assert.equal(conf.type, 'subscription_confirmed', `the confirmation comes first: ${JSON.stringify(msgs[0])}`);
  assert.equal(conf.id, 'sub-1');
  assert.equal(conf.data.recovered, true);
  assert.equal(conf.data.offset, 20);
  assert.equal(conf.data.epoch, epoch);
  const expected = all.filter((e) => e.offset > 6 && e.type === 'epistemic_update' && e.conf! >= 0.5).map((e) => e.offset);
  assert.ok(expected.length > 5);
  const replayed = eventsOf(msgs.slice(1));
  assert.equal(replayed.length, msgs.length - 1, `nothing but events after the confirmation: ${JSON.stringify(msgs.slice(1).map((m) => m.type))}`);
  assert.deepEqual(
    replayed.map((m) => [m.type, m.agent_id, m.offset]),
    expected.map((o) => ['epistemic_update', 'agent_1', o]),
  );
  for (const m of replayed) {
    assert.equal(m.epoch, epoch);
    assert.ok((m.data?.['confidence_level'] as number) >= 0.5);
  }
  // Live events follow, no duplicate of the replay.
  await publishOne(s, epistemicEvent('agent_1', 21, 0.1));
  const live = await publishOne(s, epistemicEvent('agent_1', 22, 0.95));
  await publishOne(s, pattern('agent_1', 23));
  const after = eventsOf(await c.drain());
  assert.deepEqual(
    after.map((m) => m.offset),
    [live.offset],
  );
});

test('since equal to the current offset: recovered with nothing to replay', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  let last: PublishResult | undefined;
  for (let i = 1; i <= 3; i++) last = await publishOne(s, epistemicEvent('agent_1', i, 0.9));
  const conf = await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1', since: { offset: 3, epoch: last!.epoch } });
  assert.equal(conf.data.recovered, true);
  assert.equal(conf.data.offset, 3);
  assert.deepEqual(eventsOf(await c.drain()), []);
});

test('no gap and no duplicate while a producer keeps publishing during the replay', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  const TOTAL = 300;
  const SUBSCRIBE_AT = 150;
  const SINCE = 90;
  const published: Array<{ offset: number; type: string; conf: number }> = [];
  let epoch = '';
  const producer = (async () => {
    for (let i = 1; i <= TOTAL; i++) {
      const conf = i % 5 === 0 ? 0.1 : 0.8;
      const ev = i % 7 === 0 ? pattern('agent_1', i) : epistemicEvent('agent_1', i, conf);
      const r = await publishOne(s, ev);
      epoch = r.epoch;
      published.push({ offset: r.offset, type: ev.type, conf });
      if (i === SUBSCRIBE_AT) {
        c.send({
          type: 'subscribe',
          data: { type: 'epistemic_updates', agent_id: 'agent_1', filters: { confidence_level: { min: 0.5 } }, since: { offset: SINCE, epoch } },
        });
      }
      // Let sockets be served in between, so the subscription is handled mid-stream.
      if (i % 3 === 0) await new Promise((r) => setImmediate(r));
    }
  })();
  await producer;
  const msgs = await c.drain();
  const confIdx = msgs.findIndex((m) => m.type === 'subscription_confirmed');
  assert.ok(confIdx >= 0, `confirmation received: ${JSON.stringify(msgs.slice(0, 3))}`);
  const conf = msgs[confIdx]!;
  assert.equal(conf.type, 'subscription_confirmed');
  assert.equal(conf.data.recovered, true);
  const at = conf.data.offset ?? NaN;
  assert.ok(at >= SUBSCRIBE_AT && at <= TOTAL, `confirmation offset ${conf.data.offset}`);
  assert.deepEqual(eventsOf(msgs.slice(0, confIdx)), [], 'no event before the confirmation');
  const got = eventsOf(msgs.slice(confIdx + 1)).map((m) => m.offset);
  const expected = published.filter((e) => e.offset > SINCE && e.type === 'epistemic_update' && e.conf >= 0.5).map((e) => e.offset);
  assert.equal(new Set(got).size, got.length, 'no duplicate');
  assert.deepEqual(got, expected, 'exactly the matching events after since, each once, in offset order');
});

test('since with a wrong epoch: recovered false, nothing replayed, live events only', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  let r: PublishResult | undefined;
  for (let i = 1; i <= 5; i++) r = await publishOne(s, epistemicEvent('agent_1', i, 0.9));
  const conf = await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1', since: { offset: 2, epoch: `not-${r!.epoch}` } });
  assert.equal(conf.data.recovered, false);
  assert.equal(conf.data.offset, 5);
  assert.equal(conf.data.epoch, r!.epoch);
  assert.deepEqual(eventsOf(await c.drain()), [], 'no partial replay');
  await publishOne(s, epistemicEvent('agent_1', 6, 0.9));
  assert.deepEqual(
    eventsOf(await c.drain()).map((m) => m.offset),
    [6],
  );
});

test('since an offset that left history (historySize 5): recovered false, no partial replay', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { historySize: 5 });
  const c = await s.connect(RESEARCHER);
  let r: PublishResult | undefined;
  for (let i = 1; i <= 20; i++) r = await publishOne(s, epistemicEvent('agent_1', i, 0.9));
  const conf = await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1', since: { offset: 2, epoch: r!.epoch } });
  assert.equal(conf.data.recovered, false);
  assert.equal(conf.data.offset, 20);
  assert.deepEqual(eventsOf(await c.drain()), [], 'none of the 5 kept events is replayed');
  await publishOne(s, epistemicEvent('agent_1', 21, 0.9));
  assert.deepEqual(
    eventsOf(await c.drain()).map((m) => m.offset),
    [21],
  );

  // Still within the kept window: recovered.
  const c2 = await s.connect(RESEARCHER, { session: 'session_2' });
  const conf2 = await confirmed(c2, { type: 'epistemic_updates', agent_id: 'agent_1', since: { offset: 17, epoch: r!.epoch } });
  assert.equal(conf2.data.recovered, true);
  assert.deepEqual(
    eventsOf(await c2.drain()).map((m) => m.offset),
    [18, 19, 20, 21],
  );
});

test('history TTL: events older than historyTtl are gone; since before them → recovered false', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { historyTtl: 1 });
  let r: PublishResult | undefined;
  for (let i = 1; i <= 5; i++) r = await publishOne(s, epistemicEvent('agent_1', i, 0.9));
  await sleep(1300);
  const c = await s.connect(RESEARCHER);
  const conf = await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1', since: { offset: 2, epoch: r!.epoch } });
  assert.equal(conf.data.recovered, false);
  assert.equal(conf.data.offset, 5);
  assert.deepEqual(eventsOf(await c.drain()), []);
  const tok = await s.token({ sub: 'u', ...RESEARCHER });
  const h = await api<HistoryBody>(s, 'GET', '/api/v1/agents/agent_1/events?since=2', { token: tok });
  assert.equal(h.status, 200);
  assert.deepEqual(h.body.events, [], 'expired events are not served by the history endpoint either');
  assert.equal(h.body.complete, false);
});

test('since on an all-agents subscription → VALIDATION_ERROR, and no subscription is added', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  const r = await publishOne(s, epistemicEvent('agent_1', 1, 0.9));
  const e = await c.subscribe({ type: 'epistemic_updates', since: { offset: 0, epoch: r.epoch } });
  assert.equal(e.type, 'error');
  assert.equal(e.code, 'VALIDATION_ERROR');
  const list = await c.expectReply({ type: 'get_subscriptions' }, 'subscriptions_list');
  assert.deepEqual(list.data.subscriptions, []);
});

test('since on system_alerts replays the system stream (with the filter)', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect({ roles: ['viewer'] });
  const sev = ['info', 'critical', 'warning', 'critical', 'critical'] as const;
  let r: PublishResult | undefined;
  for (let i = 0; i < sev.length; i++) r = await publishOne(s, { type: 'system_alert', alert_type: 'a', message: `m${i + 1}`, severity: sev[i] });
  await publishOne(s, epistemicEvent('agent_1', 1, 0.9));
  const conf = await confirmed(c, { type: 'system_alerts', filters: { severity: 'critical' }, since: { offset: 2, epoch: r!.epoch } });
  assert.equal(conf.data.recovered, true);
  assert.equal(conf.data.offset, 5);
  assert.equal(conf.data.epoch, r!.epoch);
  assert.deepEqual(
    eventsOf(await c.drain()).map((m) => [m.type, m.offset, m.message]),
    [
      ['system_alert', 4, 'm4'],
      ['system_alert', 5, 'm5'],
    ],
  );
});

// ---- idempotency -----------------------------------------------------------

test('idempotency over HTTP: the repeat is not delivered and answers with the original event_id/offset', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1' });
  const tok = await s.token({ sub: 'producer', ...DEVELOPER });
  const event = epistemicEvent('agent_1', 1, 0.9, { idempotency_key: 'order-42' });
  const first = await api<PublishAnswer>(s, 'POST', '/api/v1/events', { token: tok, json: event });
  const second = await api<PublishAnswer>(s, 'POST', '/api/v1/events', { token: tok, json: event });
  assert.equal(first.status, 202, JSON.stringify(first.body));
  assert.equal(second.status, 202, JSON.stringify(second.body));
  const a = first.body.events[0]!;
  const b = second.body.events[0]!;
  assert.equal(a.duplicate, undefined);
  assert.equal(b.duplicate, true);
  assert.equal(b.event_id, a.event_id);
  assert.equal(b.offset, a.offset);
  assert.equal(b.epoch, a.epoch);
  // Another key is a new event, at the next offset: the repeat consumed none.
  const third = await api<PublishAnswer>(s, 'POST', '/api/v1/events', { token: tok, json: epistemicEvent('agent_1', 2, 0.9, { idempotency_key: 'order-43' }) });
  const c3 = third.body.events[0]!;
  assert.equal(c3.offset, a.offset + 1);
  const got = eventsOf(await c.drain());
  assert.deepEqual(
    got.map((m) => [m.event_id, m.offset]),
    [
      [a.event_id, a.offset],
      [c3.event_id, a.offset + 1],
    ],
  );
});

test('idempotency in-process and within a batch socket publish', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1' });
  const [a] = await s.server.publish(epistemicEvent('agent_1', 1, 0.9, { idempotency_key: 'k1' }));
  const [b] = await s.server.publish(epistemicEvent('agent_1', 1, 0.9, { idempotency_key: 'k1' }));
  assert.equal(a!.duplicate, false);
  assert.equal(b!.duplicate, true);
  assert.equal(b!.event_id, a!.event_id);
  assert.equal(b!.offset, a!.offset);
  // Over the socket, a repeat of k1 is answered with the original too.
  const producer = await s.connect({ sub: 'producer', ...DEVELOPER }, { session: 'producer' });
  const confirm = await producer.request(
    { type: 'publish', data: [epistemicEvent('agent_1', 1, 0.9, { idempotency_key: 'k1' }), epistemicEvent('agent_1', 2, 0.9)] },
    'publish_confirmed',
  );
  assert.equal(confirm.type, 'publish_confirmed', JSON.stringify(confirm));
  assert.deepEqual(confirm.data.events[0], { event_id: a!.event_id, offset: a!.offset, epoch: a!.epoch, duplicate: true });
  assert.equal(confirm.data.events[1]?.offset, a!.offset + 1);
  const got = eventsOf(await c.drain());
  assert.deepEqual(
    got.map((m) => m.offset),
    [1, 2],
    'delivered once',
  );
  assert.equal(got[0]!.event_id, a!.event_id);
});

// ---- history endpoint ---------------------------------------------------

test('GET /api/v1/agents/{id}/events: shape, since, limit, permissions, bad input', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const published = [];
  for (let i = 1; i <= 10; i++) published.push(await publishOne(s, i % 2 ? epistemicEvent('agent_1', i, 0.9) : pattern('agent_1', i)));
  await publishOne(s, epistemicEvent('agent_2', 1, 0.9));
  const researcher = await s.token({ sub: 'r', ...RESEARCHER });
  const epoch = published[0]!.epoch;

  const all = await api<HistoryBody>(s, 'GET', '/api/v1/agents/agent_1/events', { token: researcher });
  assert.equal(all.status, 200, JSON.stringify(all.body));
  assert.deepEqual(Object.keys(all.body).sort(), ['agent_id', 'complete', 'epoch', 'events', 'offset']);
  assert.equal(all.body.agent_id, 'agent_1');
  assert.equal(all.body.offset, 10);
  assert.equal(all.body.epoch, epoch);
  assert.equal(all.body.complete, true);
  assert.deepEqual(
    all.body.events.map((e) => [e.event_id, e.offset, e.epoch]),
    published.map((r) => [r.event_id, r.offset, r.epoch]),
  );
  assert.equal(all.body.events[1]?.type, 'pattern_alert');
  assert.equal(all.body.events[0]?.data?.['seq'], 1);

  const since = await api<HistoryBody>(s, 'GET', '/api/v1/agents/agent_1/events?since=6', { token: researcher });
  assert.equal(since.status, 200);
  assert.deepEqual(
    since.body.events.map((e) => e.offset),
    [7, 8, 9, 10],
  );
  assert.equal(since.body.offset, 10);

  const limited = await api<HistoryBody>(s, 'GET', '/api/v1/agents/agent_1/events?limit=3', { token: researcher });
  assert.equal(limited.status, 200);
  assert.deepEqual(
    limited.body.events.map((e) => e.offset),
    [1, 2, 3],
  );
  assert.equal(limited.body.offset, 10, 'the current offset, not the last returned');

  const both = await api<HistoryBody>(s, 'GET', '/api/v1/agents/agent_1/events?since=4&limit=2', { token: researcher });
  assert.deepEqual(
    both.body.events.map((e) => e.offset),
    [5, 6],
  );

  const none = await api<HistoryBody>(s, 'GET', '/api/v1/agents/agent_1/events?since=10', { token: researcher });
  assert.equal(none.status, 200);
  assert.deepEqual(none.body.events, []);

  const other = await api<HistoryBody>(s, 'GET', '/api/v1/agents/agent_2/events', { token: researcher });
  assert.deepEqual(
    other.body.events.map((e) => [e.agent_id, e.offset]),
    [['agent_2', 1]],
  );

  // A viewer may read exactly the agents it may monitor.
  const viewer = await s.token({ sub: 'v', roles: ['viewer'], permissions: ['agent:agent_1:monitor'] });
  const v1 = await api<HistoryBody>(s, 'GET', '/api/v1/agents/agent_1/events?limit=1', { token: viewer });
  assert.equal(v1.status, 200);
  assert.deepEqual(
    v1.body.events.map((e) => e.offset),
    [1],
  );
  const v2 = await api<ErrorBody & Partial<HistoryBody>>(s, 'GET', '/api/v1/agents/agent_2/events', { token: viewer });
  assert.equal(v2.status, 403, JSON.stringify(v2.body));
  assert.ok(['AGENT_ACCESS_DENIED', 'PERMISSION_DENIED'].includes(v2.body.error.code), JSON.stringify(v2.body));
  assert.equal(v2.body.events, undefined);
  const plainViewer = await s.token({ sub: 'v2', roles: ['viewer'] });
  const v3 = await api<ErrorBody>(s, 'GET', '/api/v1/agents/agent_1/events', { token: plainViewer });
  assert.equal(v3.status, 403);

  const anon = await api<ErrorBody>(s, 'GET', '/api/v1/agents/agent_1/events');
  assert.equal(anon.status, 401);
  assert.equal(anon.body.error.code, 'TOKEN_MISSING');
  const bad = await api<ErrorBody>(s, 'GET', '/api/v1/agents/agent_1/events', { token: 'not-a-token' });
  assert.equal(bad.status, 401);

  for (const q of ['since=abc', 'since=-1', 'since=1.5']) {
    const r = await api<ErrorBody>(s, 'GET', `/api/v1/agents/agent_1/events?${q}`, { token: researcher });
    assert.equal(r.status, 400, `${q}: ${JSON.stringify(r.body)}`);
    assert.equal(typeof r.body.error.code, 'string');
  }
});

test('history endpoint reports complete: false when since left history', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { historySize: 5 });
  for (let i = 1; i <= 12; i++) await publishOne(s, epistemicEvent('agent_1', i, 0.9));
  const tok = await s.token({ sub: 'r', ...RESEARCHER });
  const lost = await api<HistoryBody>(s, 'GET', '/api/v1/agents/agent_1/events?since=2', { token: tok });
  assert.equal(lost.status, 200);
  assert.equal(lost.body.complete, false);
  assert.equal(lost.body.offset, 12);
  const kept = await api<HistoryBody>(s, 'GET', '/api/v1/agents/agent_1/events?since=7', { token: tok });
  assert.equal(kept.body.complete, true);
  assert.deepEqual(
    kept.body.events.map((e) => e.offset),
    [8, 9, 10, 11, 12],
  );
});
