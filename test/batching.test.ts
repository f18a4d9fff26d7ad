// Batched delivery (`?batch=1`): frames holding JSON arrays of messages,
// within the configured bounds, with the same order, offsets, resume and
// slow-consumer behaviour as one message per frame. Clients that did not ask
// keep one JSON object per frame.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { api, confirmed, connectionCount, epistemicEvent, eventually, eventsOf, health, startServer, type PublishAnswer, type TestClient } from './helpers.js';
import { clientTextFrame, rawWebSocket } from './raw-socket.js';

const batchOf = (agent: string, from: number, n: number) => Array.from({ length: n }, (_, i) => epistemicEvent(agent, from + i));

/** Offsets of the epistemic events a client received, in arrival order. */
function offsets(c: TestClient): number[] {
  return eventsOf(c.received).map((e) => e.offset!);
}

test('batch=1: messages of one turn share a frame (a JSON array); order, offsets and once-only as without; others get one object per frame', {
  timeout: 60_000,
}, async (t) => {
  const s = await startServer(t);
  const producer = await s.token({ sub: 'producer', roles: ['developer'] });
  const batched = await s.connect({ sub: 'b', roles: ['researcher'] }, { session: 'batched', batch: true });
  const plain = await s.connect({ sub: 'p', roles: ['researcher'] }, { session: 'plain' });
  for (const c of [batched, plain]) await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_b' });

  const r = await api<PublishAnswer>(s, 'POST', '/api/v1/events', { token: producer, json: batchOf('agent_b', 0, 200) });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  await eventually(() => eventsOf(batched.received).length === 200 && eventsOf(plain.received).length === 200, 10_000, 'both clients to receive 200 events');

  const expected = Array.from({ length: 200 }, (_, i) => i + 1);
  assert.deepEqual(offsets(batched), expected, 'batched: every event once, in offset order');
  assert.deepEqual(offsets(plain), expected, 'plain: every event once, in offset order');
  assert.ok(Math.max(...batched.frameSizes) > 1, `the batched client got multi-message frames (sizes ${batched.frameSizes.join(',')})`);
  assert.ok(
    batched.frameSizes.length < 200,
    `fewer frames than messages (${batched.frameSizes.length} frames for ${batched.frameSizes.reduce((a, b) => a + b, 0)} messages)`,
  );
  assert.ok(
    plain.frameSizes.every((n) => n === 1),
    'a client without batch=1 gets exactly one object per frame',
  );
  // Replies still arrive (control messages ride in the same frames).
  assert.equal((await batched.request({ type: 'ping' }, 'pong')).type, 'pong');
});

test('batched frames stay within the configured count and bytes', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { batchMaxMessages: 7, batchMaxBytes: 4096 });
  const producer = await s.token({ sub: 'producer', roles: ['developer'] });
  const c = await s.connect({ sub: 'b', roles: ['researcher'] }, { session: 'bounded', batch: true });
  const frameBytes: number[] = [];
  const framesBefore = c.frameSizes.length;
  c.ws.on('message', (data: Buffer) => frameBytes.push(data.length));
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_c' });
  const r = await api<PublishAnswer>(s, 'POST', '/api/v1/events', { token: producer, json: batchOf('agent_c', 0, 100) });
  assert.equal(r.status, 202);
  await eventually(() => eventsOf(c.received).length === 100, 10_000, '100 events');
  assert.deepEqual(
    offsets(c),
    Array.from({ length: 100 }, (_, i) => i + 1),
  );
  assert.ok(Math.max(...c.frameSizes) <= 7, `at most 7 messages per frame (sizes ${c.frameSizes.join(',')})`);
  assert.ok(Math.max(...c.frameSizes) > 1, 'messages were batched');
  c.frameSizes.slice(framesBefore).forEach((n, i) => {
    if (n > 1) assert.ok(frameBytes[i]! <= 4096, `frame ${i} of ${n} messages is ${frameBytes[i]} bytes, over 4096`);
  });
  // Events of ≈ 1.1 KB: seven would pass 4096 bytes, so here the byte bound decides, not the count.
  const padded = Array.from({ length: 40 }, (_, i) => ({ ...epistemicEvent('agent_c', 100 + i), data: { seq: 100 + i, pad: 'x'.repeat(1000) } }));
  const sizesBefore = c.frameSizes.length;
  const bytesBefore = frameBytes.length;
  assert.equal((await api<PublishAnswer>(s, 'POST', '/api/v1/events', { token: producer, json: padded })).status, 202);
  await eventually(() => eventsOf(c.received).length === 140, 10_000, '40 more events');
  const sizes = c.frameSizes.slice(sizesBefore);
  const bytes = frameBytes.slice(bytesBefore);
  assert.ok(
    sizes.some((n) => n > 1),
    `the large events were batched too (sizes ${sizes.join(',')})`,
  );
  assert.ok(Math.max(...sizes) < 7, `the byte bound cut the frames before the count did (sizes ${sizes.join(',')})`);
  sizes.forEach((n, i) => {
    if (n > 1) assert.ok(bytes[i]! <= 4096, `frame ${i} of ${n} messages is ${bytes[i]} bytes, over 4096`);
  });
});

test('batch=1 and resume: a reconnect with the session id replays exactly what was not written, once', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const producer = await s.token({ sub: 'producer', roles: ['developer'] });
  const first = await s.connect({ sub: 'watcher', roles: ['researcher'] }, { session: 'resumable', batch: true });
  await confirmed(first, { type: 'epistemic_updates', agent_id: 'agent_r' });
  assert.equal((await api(s, 'POST', '/api/v1/events', { token: producer, json: batchOf('agent_r', 0, 50) })).status, 202);
  await eventually(() => eventsOf(first.received).length === 50, 10_000, 'the first 50 events');
  first.ws.close();
  await first.closeEvent;
  await connectionCount(s.server, 0, 5000, 'the first connection to close');
  assert.equal((await api(s, 'POST', '/api/v1/events', { token: producer, json: batchOf('agent_r', 50, 50) })).status, 202);

  const { client: second, hello } = await s.open({ sub: 'watcher', roles: ['researcher'] }, { session: 'resumable', batch: true });
  assert.equal(hello.resumed, true);
  await eventually(() => eventsOf(second.received).length >= 50, 10_000, 'the 50 missed events');
  await second.flush();
  assert.deepEqual(
    offsets(second),
    Array.from({ length: 50 }, (_, i) => 51 + i),
    'exactly the missed events, in order, once',
  );
});

test('batch=1: a client that stops reading is still cut off as a slow consumer; others get every event', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t, { maxBufferedBytes: 64 * 1024 });
  const normal = await s.connect({ sub: 'normal', roles: ['viewer'] }, { session: 'normal', batch: true });
  await confirmed(normal, { type: 'system_alerts' });
  const token = await s.token({ sub: 'slow', roles: ['viewer'] });
  const slow = await rawWebSocket(Number(new URL(s.url).port), `/ws/monitor/slow?batch=1&token=${encodeURIComponent(token)}`);
  t.after(() => slow.destroy());
  slow.write(clientTextFrame(JSON.stringify({ type: 'subscribe', data: { type: 'system_alerts' } })));
  await eventually(async () => (await health(s)).total_subscriptions === 2, 3000, 'the slow client to subscribe');

  const message = 'm'.repeat(8 * 1024);
  let published = 0;
  let cut = false;
  while (published < 4000 && !cut) {
    const recipients = await s.server.broadcastSystemAlert('load', message, 'info', { n: published });
    published++;
    cut = recipients === 1;
    if (published % 50 === 0) await new Promise((r) => setImmediate(r));
  }
  assert.ok(cut, `the slow client was still a recipient after ${published} events of 8 KiB`);
  await eventually(() => normal.events('system_alert').length === published, 15_000, `the normal subscriber to receive all ${published} events`);
  assert.deepEqual(
    normal.events('system_alert').map((m) => m.metadata?.['n']),
    Array.from({ length: published }, (_, i) => i),
    'every event, in order, once',
  );
  await connectionCount(s.server, 1, 10_000, 'the slow client to be removed');
  slow.resume();
  if (!slow.destroyed) await once(slow, 'close');
});

test('batch settings are validated', { timeout: 10_000 }, async (t) => {
  await assert.rejects(startServer(t, { batchMaxMessages: 0 }), /batchMaxMessages|ESCAI_BATCH_MAX_MESSAGES/);
  await assert.rejects(startServer(t, { batchMaxDelay: 5000 }), /batchMaxDelay|ESCAI_BATCH_MAX_DELAY/);
});
