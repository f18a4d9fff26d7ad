// permessage-deflate: off by default, negotiated when configured, bounded by
// the inbound size limit after inflation, and transparent to what clients
// receive.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import { WebSocket } from 'ws';
import { api, confirmed, eventsOf, eventually, epistemicEvent, startServer, type TestServer } from './helpers.js';

/** A `ws` client offering permessage-deflate (or not), ended when the test ends. */
async function rawClient(
  t: TestContext,
  s: TestServer,
  session: string,
  claims: { sub: string; roles: string[] },
  perMessageDeflate = true,
): Promise<WebSocket> {
  const token = await s.token(claims);
  const ws = new WebSocket(`${s.wsUrl}/ws/monitor/${session}?token=${encodeURIComponent(token)}`, { perMessageDeflate });
  t.after(() => ws.terminate());
  await once(ws, 'open');
  return ws;
}

test('compression is off by default: a client offering permessage-deflate gets none', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t);
  const ws = await rawClient(t, s, 'plain', { sub: 'u', roles: ['viewer'] });
  assert.equal(ws.extensions, '');
});

test('with compression on, permessage-deflate is negotiated and events arrive intact (fewer bytes on the wire)', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t, { compression: true, compressionThreshold: 64 });
  const compressed = await s.connect({ sub: 'c', roles: ['researcher'] }, { session: 'compressed' });
  const plainWs = await rawClient(t, s, 'plain', { sub: 'p', roles: ['researcher'] }, false);
  assert.match(compressed.ws.extensions, /permessage-deflate/, 'negotiated (the test client offers it by default)');
  assert.equal(plainWs.extensions, '', 'a client that does not offer it gets plain frames');

  await confirmed(compressed, { type: 'epistemic_updates', agent_id: 'zip' });
  const plainEvents: Array<{ type: string; data?: unknown }> = [];
  plainWs.on('message', (data) => plainEvents.push(JSON.parse(data.toString()) as { type: string }));
  plainWs.send(JSON.stringify({ type: 'subscribe', data: { type: 'epistemic_updates', agent_id: 'zip' } }));
  await eventually(() => plainEvents.some((m) => m.type === 'subscription_confirmed'), 5000, 'the plain client to subscribe');
  const compressedSocket = (compressed.ws as unknown as { _socket: { bytesRead: number } })._socket;
  const plainSocket = (plainWs as unknown as { _socket: { bytesRead: number } })._socket;
  const before = { compressed: compressedSocket.bytesRead, plain: plainSocket.bytesRead };

  const producer = await s.token({ sub: 'producer', roles: ['developer'] });
  const events = Array.from({ length: 50 }, (_, i) => epistemicEvent('zip', i));
  assert.equal((await api(s, 'POST', '/api/v1/events', { token: producer, json: events })).status, 202);
  const plainDelivered = () => plainEvents.filter((m) => m.type === 'epistemic_update');
  await eventually(() => eventsOf(compressed.received).length === 50 && plainDelivered().length === 50, 10_000, '50 events on both');
  assert.deepEqual(
    eventsOf(compressed.received).map((e) => e.data),
    events.map((e) => e.data),
    'compressed events arrive intact, in order',
  );
  const bytes = { compressed: compressedSocket.bytesRead - before.compressed, plain: plainSocket.bytesRead - before.plain };
  assert.ok(bytes.compressed < bytes.plain, `fewer bytes with compression (${bytes.compressed} vs ${bytes.plain})`);
});

test('with compression on, the inbound limit applies to inflated bytes: a small compressed frame that inflates past it closes with 1009', {
  timeout: 30_000,
}, async (t) => {
  const s = await startServer(t, { compression: true, maxMessageBytes: 4096 });
  const ws = await rawClient(t, s, 'bomb', { sub: 'b', roles: ['viewer'] });
  assert.match(ws.extensions, /permessage-deflate/);
  // 64 KiB of one character compresses to well under 4 KiB on the wire.
  ws.send(JSON.stringify({ type: 'ping', data: { pad: 'a'.repeat(64 * 1024) } }), { compress: true });
  const [code] = (await once(ws, 'close')) as [number];
  assert.equal(code, 1009);
});
