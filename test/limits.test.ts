// Limits and bad input: oversized messages, invalid JSON, the inbound rate
// limit, binary frames, slow consumers. None of them may crash the process
// or disturb other connections.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { api, connectionCount, eventually, health, settle, startServer } from './helpers.js';
import { clientTextFrame, rawWebSocket } from './raw-socket.js';

// First in the file on purpose: it also covers the first second of the process's life.
test('rate limit: a burst past the bucket gets RATE_LIMITED and some messages are dropped', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { rateLimit: 5, rateBurst: 5, rateLimitCloseAfter: 20 });
  const c = await s.connect({ roles: ['viewer'] });
  for (let i = 0; i < 10; i++) c.send({ type: 'ping', id: i });
  const err = await c.next('error');
  assert.equal(err.code, 'RATE_LIMITED');
  // The barrier: replies keep the order of requests, and a dropped request with an id is answered too
  // (RATE_LIMITED), so once this one's reply is in, every ping of the burst has had its answer.
  c.send({ type: 'ping', id: 'barrier' });
  await c.next(['pong', 'error'], (m) => m.id === 'barrier');
  const pongs = c.events('pong');
  assert.ok(pongs.length >= 5, `the burst allowance is served (got ${pongs.length} pongs)`);
  assert.ok(pongs.length < 10, `some pings were dropped (got ${pongs.length} pongs)`);
  assert.equal(c.ws.readyState, c.ws.OPEN, 'a short burst does not close the connection');
  // The bucket refills: after a pause the connection is served again.
  await settle(500);
  assert.equal((await c.request({ type: 'ping' }, 'pong')).type, 'pong');
});

test('a message over maxMessageBytes closes that socket with 1009; others carry on', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { maxMessageBytes: 1024 });
  const big = await s.connect({ sub: 'big', roles: ['viewer'] }, { session: 'big' });
  const other = await s.connect({ sub: 'other', roles: ['viewer'] }, { session: 'other' });
  // Exactly at the limit is still fine.
  const atLimit = JSON.stringify({ type: 'ping', data: { pad: '' } });
  big.send(atLimit.replace('""', `"${'x'.repeat(1024 - atLimit.length)}"`));
  assert.equal((await big.next(['pong', 'error'])).type, 'pong');

  big.send(JSON.stringify({ type: 'ping', data: { pad: 'x'.repeat(2000) } }));
  const { code } = await big.closeEvent;
  assert.equal(code, 1009);
  assert.equal((await other.request({ type: 'ping' }, 'pong')).type, 'pong');
  await connectionCount(s.server, 1, 3000, 'the closed connection to leave the registry');
  // The server still accepts new connections.
  const again = await s.connect({ sub: 'big', roles: ['viewer'] }, { session: 'again' });
  assert.equal((await again.request({ type: 'ping' }, 'pong')).type, 'pong');
});

test('invalid JSON gets INVALID_JSON and the connection stays open', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect({ roles: ['viewer'] });
  for (const bad of ['{not json', '', '{"type":"ping"', '\u0000\u0001']) {
    c.send(bad);
    const err = await c.next('error');
    assert.equal(err.code, 'INVALID_JSON', `for ${JSON.stringify(bad)}`);
    assert.equal(typeof err.message, 'string');
    assert.ok(!Number.isNaN(Date.parse(err.timestamp)));
  }
  assert.equal(c.ws.readyState, c.ws.OPEN);
  assert.equal((await c.request({ type: 'ping' }, 'pong')).type, 'pong');
});

test('binary frames carrying JSON are handled like text frames', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect({ roles: ['researcher'] });
  c.ws.send(Buffer.from(JSON.stringify({ type: 'ping' })), { binary: true });
  assert.equal((await c.next(['pong', 'error'])).type, 'pong');
  c.ws.send(Buffer.from(JSON.stringify({ type: 'subscribe', data: { type: 'agent_status', agent_id: 'agent_1' } })), { binary: true });
  const conf = await c.next(['subscription_confirmed', 'error']);
  assert.equal(conf.type, 'subscription_confirmed');
  assert.equal(conf.data.agent_id, 'agent_1');
  c.ws.send(Buffer.from('{bad'), { binary: true });
  assert.equal((await c.next('error')).code, 'INVALID_JSON');
  assert.equal((await c.request({ type: 'ping' }, 'pong')).type, 'pong');
});

test('rate limit: a sustained flood closes with 1008; other clients and the process are fine', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { rateLimit: 5, rateBurst: 5, rateLimitCloseAfter: 20 });
  const flooder = await s.connect({ sub: 'flooder', roles: ['viewer'] }, { session: 'flood' });
  const calm = await s.connect({ sub: 'calm', roles: ['viewer'] }, { session: 'calm' });
  for (let i = 0; i < 200; i++) flooder.send({ type: 'ping' });
  const { code } = await flooder.closeEvent;
  assert.equal(code, 1008);
  assert.ok(flooder.events('pong').length < 200);
  assert.equal((await calm.request({ type: 'ping' }, 'pong')).type, 'pong');
  const h = await health(s);
  assert.ok(h.messages_received >= 200, 'the flood was counted');
  await connectionCount(s.server, 1, 3000, 'the flooder to leave the registry');
  assert.equal((await api(s, 'GET', '/healthz')).status, 200);
});

test('floods from several clients at once do not crash the process', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { rateLimit: 5, rateBurst: 5, rateLimitCloseAfter: 20, maxMessageBytes: 1024 });
  const flooders = await Promise.all([0, 1, 2, 3].map((i) => s.connect({ sub: `f${i}`, roles: ['viewer'] }, { session: `f${i}` })));
  for (const [i, f] of flooders.entries()) {
    for (let n = 0; n < 300; n++) f.send(n % 3 === 0 ? '{garbage' : n % 3 === 1 ? { type: 'nope' } : { type: 'ping', id: n });
    if (i === 3) f.send('x'.repeat(5000));
  }
  const codes = (await Promise.all(flooders.map((f) => f.closeEvent))).map((e) => e.code);
  for (const code of codes) assert.ok(code === 1008 || code === 1009, `closed with ${code}`);
  const h = await health(s);
  assert.equal(typeof h.active_connections, 'number');
  const fresh = await s.connect({ sub: 'fresh', roles: ['viewer'] }, { session: 'fresh' });
  assert.equal((await fresh.request({ type: 'ping' }, 'pong')).type, 'pong');
  await connectionCount(s.server, 1, 3000, 'only the fresh client to remain');
});

test('slow consumer: a client that stops reading is disconnected; a normal subscriber gets every event', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t, { maxBufferedBytes: 64 * 1024 });
  const normal = await s.connect({ sub: 'normal', roles: ['viewer'] }, { session: 'normal' });
  assert.equal((await normal.subscribe({ type: 'system_alerts' })).type, 'subscription_confirmed');

  const token = await s.token({ sub: 'slow', roles: ['viewer'] });
  const port = Number(new URL(s.url).port);
  const slow = await rawWebSocket(port, `/ws/monitor/slow?token=${encodeURIComponent(token)}`);
  t.after(() => slow.destroy());
  slow.write(clientTextFrame(JSON.stringify({ type: 'subscribe', data: { type: 'system_alerts' } })));
  await eventually(async () => (await health(s)).total_subscriptions === 2, 3000, 'the slow client to subscribe');

  // ~16 KiB per event: message text is capped at 10 000 characters, so half rides in metadata.
  const message = 'm'.repeat(8 * 1024);
  const pad = 'p'.repeat(8 * 1024);
  let published = 0;
  let slowDropped = false;
  let received = 0;
  normal.ws.on('message', () => received++);
  // Publish until the slow client no longer counts as a recipient; bounded so
  // a server that never cuts it off fails instead of exhausting memory.
  while (published < 4000) {
    const recipients = await s.server.broadcastSystemAlert('load', message, 'info', { n: published, pad });
    published++;
    if (recipients === 1) {
      slowDropped = true;
      break;
    }
    assert.equal(recipients, 2);
    // Let the normal subscriber drain now and then, as a healthy reader would.
    if (published % 50 === 0) await settle(5);
  }
  assert.ok(slowDropped, `the slow client was still a recipient after ${published} events of 16 KiB`);
  // A few more after the cut-off: they reach the normal subscriber only.
  for (let i = 0; i < 10; i++) {
    assert.equal(await s.server.broadcastSystemAlert('load', message, 'info', { n: published, pad }), 1);
    published++;
  }
  await eventually(() => normal.events('system_alert').length === published, 15_000, `the normal subscriber to receive all ${published} events`);
  const ns = normal.events('system_alert').map((m) => m.metadata?.['n'] as number);
  assert.deepEqual(
    ns,
    Array.from({ length: published }, (_, i) => i),
    'every event, in order, once',
  );
  assert.ok(received >= published);

  // The slow client leaves the registry (after the close grace) and its socket ends.
  await connectionCount(s.server, 1, 10_000, 'the slow client to be removed');
  const h = await health(s);
  assert.equal(h.total_subscriptions, 1);
  assert.equal(h.active_users, 1);
  slow.resume();
  if (!slow.destroyed) await once(slow, 'close');
  assert.equal((await normal.request({ type: 'ping' }, 'pong')).type, 'pong');
});
