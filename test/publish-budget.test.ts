// Producers on the socket have their own budget, counted in events, apart
// from the control-message budget that cuts off chatty clients: a producer
// can publish thousands of events a second while a flooding subscriber is
// still closed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, confirmed, eventsOf, epistemicEvent, eventually, startServer, type HistoryBody } from './helpers.js';

test('a producer publishes 2,000 single-event messages at once under the default limits while a flooding subscriber is cut off', {
  timeout: 60_000,
}, async (t) => {
  const s = await startServer(t);
  const producer = await s.connect({ sub: 'producer', roles: ['developer'] }, { session: 'producer' });
  const watcher = await s.connect({ sub: 'watcher', roles: ['researcher'] }, { session: 'watcher', batch: true });
  const flooder = await s.connect({ sub: 'flooder', roles: ['viewer'] }, { session: 'flooder' });
  await confirmed(watcher, { type: 'epistemic_updates', agent_id: 'busy' });

  // As fast as a window of 128 unanswered publishes allows (a connection may have 256 requests waiting).
  let sent = 0;
  const answered = () => producer.events('publish_confirmed', 'error').length;
  producer.ws.on('message', () => {
    while (sent < 2000 && sent - answered() < 128) producer.send({ type: 'publish', id: sent, data: epistemicEvent('busy', sent++) });
  });
  while (sent < 128) producer.send({ type: 'publish', id: sent, data: epistemicEvent('busy', sent++) });
  for (let i = 0; i < 500; i++) flooder.send({ type: 'ping', id: i });

  const { code } = await flooder.closeEvent;
  assert.equal(code, 1008, 'the flooding subscriber is closed by the control budget');
  await eventually(() => answered() === 2000, 30_000, '2,000 answers to the producer');
  assert.deepEqual(producer.events('error'), [], 'no publish was refused');
  await eventually(() => eventsOf(watcher.received).length === 2000, 30_000, 'the watcher to receive 2,000 events');
  assert.deepEqual(
    eventsOf(watcher.received).map((e) => e.offset),
    Array.from({ length: 2000 }, (_, i) => i + 1),
  );
});

test('over the publishing budget a publish is refused with RATE_LIMITED and its id; control messages are not affected', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t, { publishRate: 1, publishBurst: 100 });
  const producer = await s.connect({ sub: 'producer', roles: ['developer'] }, { session: 'producer' });
  const batch = Array.from({ length: 100 }, (_, i) => epistemicEvent('budget', i));
  const first = await producer.request({ type: 'publish', id: 'b1', data: batch }, 'publish_confirmed');
  assert.equal(first.type, 'publish_confirmed', 'a batch as large as the burst passes');
  const refused = await producer.request({ type: 'publish', id: 'b2', data: epistemicEvent('budget', 100) }, 'publish_confirmed');
  assert.equal(refused.type, 'error');
  assert.equal(refused.type === 'error' && refused.code, 'RATE_LIMITED');
  assert.equal(refused.id, 'b2', 'the refusal names the request');
  assert.match(refused.type === 'error' ? refused.message : '', /events\/s/);
  // The control budget is separate.
  for (let i = 0; i < 5; i++) assert.equal((await producer.request({ type: 'ping', id: `p${i}` }, 'pong')).type, 'pong');
  // Nothing of the refused publish was appended.
  const history = await api<HistoryBody>(s, 'GET', '/api/v1/agents/budget/events?limit=1000', { token: await s.token({ roles: ['researcher'] }) });
  assert.equal(history.body.events.length, 100);
});

test('publishes on one socket are pipelined: every reply keeps the order of the requests (confirmations, refusals, other replies) and offsets follow arrival', {
  timeout: 30_000,
}, async (t) => {
  const s = await startServer(t);
  const producer = await s.connect({ sub: 'producer', roles: ['developer'] }, { session: 'producer' });
  const viewer = await s.connect({ sub: 'viewer', roles: ['viewer'] }, { session: 'viewer' });
  // Sent in one go, without waiting: valid publishes, a poison one, a batch, a ping, then more publishes.
  const requests: Array<{ id: string; data?: unknown; type?: string }> = [];
  for (let i = 0; i < 30; i++) requests.push({ id: `p${i}`, data: epistemicEvent('piped', i) });
  requests.push({ id: 'bad', data: { type: 'epistemic_update', agent_id: 'piped', data: { confidence_level: 7 } } });
  requests.push({ id: 'batch', data: [epistemicEvent('piped', 30), epistemicEvent('piped', 31)] });
  requests.push({ id: 'ping', type: 'ping' });
  for (let i = 32; i < 60; i++) requests.push({ id: `p${i}`, data: epistemicEvent('piped', i) });
  for (const r of requests) producer.send(r.type === 'ping' ? { type: 'ping', id: r.id } : { type: 'publish', id: r.id, data: r.data });
  await eventually(() => producer.events('publish_confirmed', 'error', 'pong').length === requests.length, 20_000, 'an answer to every request');
  const replies = producer.events('publish_confirmed', 'error', 'pong');
  assert.deepEqual(
    replies.map((m) => m.id),
    requests.map((r) => r.id),
    'answers in request order',
  );
  assert.deepEqual(
    replies.map((m) => m.type),
    requests.map((r) => (r.id === 'bad' ? 'error' : r.id === 'ping' ? 'pong' : 'publish_confirmed')),
  );
  const offsets = replies.flatMap((m) => (m.type === 'publish_confirmed' ? m.data.events.map((e) => e.offset) : []));
  assert.deepEqual(
    offsets,
    Array.from({ length: 60 }, (_, i) => i + 1),
    'offsets in arrival order, the refused event took none',
  );
  // A refusal for a missing permission keeps its place too.
  viewer.send({ type: 'publish', id: 'v1', data: epistemicEvent('piped', 99) });
  viewer.send({ type: 'ping', id: 'v2' });
  await eventually(() => viewer.events('error', 'pong').length === 2, 10_000, "the viewer's two answers");
  assert.deepEqual(
    viewer.events('error', 'pong').map((m) => [m.type, m.id]),
    [
      ['error', 'v1'],
      ['pong', 'v2'],
    ],
  );
});
