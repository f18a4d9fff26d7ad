// Poison events: whatever a producer sends is validated, serialized and
// measured before it is given an offset. Too deep, too big, or carrying a key
// an object copy would drop, it is refused with VALIDATION_ERROR naming the
// limit, on the socket and over HTTP alike, on both engines (never
// ENGINE_UNAVAILABLE: that code tells producers to retry); and the stream goes
// on without a gap, its history readable.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, confirmed, eventsOf, refusal, startServer, type HistoryBody, type PublishAnswer } from './helpers.js';

function nested(depth: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = { deeper: value };
  return value;
}

/** The JSON text of `nested(depth)`, written out (JSON.stringify would overflow the stack on it). */
function nestedJson(depth: number): string {
  return `${'{"deeper":'.repeat(depth)}"bottom"${'}'.repeat(depth)}`;
}

test('an event nested too deep is refused by name over HTTP and on the socket, and the stream carries on without a gap', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const producer = await s.token({ sub: 'p', roles: ['developer'] });
  const deep = { type: 'epistemic_update', agent_id: 'deep', data: { confidence_level: 0.5 } };
  const raw = `{"type":"epistemic_update","agent_id":"deep","data":{"confidence_level":0.5,"blob":${nestedJson(20_000)}}}`;
  const http = refusal(await api(s, 'POST', '/api/v1/events', { token: producer, raw }), 400, 'VALIDATION_ERROR');
  assert.match(http.message, /nested deeper than 32 levels/);
  const c = await s.connect({ sub: 'p', roles: ['developer'] });
  const onSocket = await c.request({ type: 'publish', data: { ...deep, data: { blob: nested(40) } } }, 'publish_confirmed');
  assert.equal(onSocket.type, 'error');
  assert.equal(onSocket.type === 'error' && onSocket.code, 'VALIDATION_ERROR');
  assert.match(onSocket.type === 'error' ? onSocket.message : '', /^event\.data\.blob(\.deeper)+: nested deeper than 32 levels/);

  // The limit is on depth, not on size or breadth: 30 levels go through.
  const ok = await api<PublishAnswer>(s, 'POST', '/api/v1/events', { token: producer, json: { ...deep, data: { blob: nested(28) } } });
  assert.equal(ok.status, 202, JSON.stringify(ok.body));
  assert.equal(ok.body.events[0]!.offset, 1, 'the refused events took no offset');
  const history = await api<HistoryBody>(s, 'GET', '/api/v1/agents/deep/events', { token: producer });
  assert.deepEqual(
    history.body.events.map((e) => e.offset),
    [1],
  );
});

test('an event too big as JSON is refused, naming the limit, on both paths; a batch holding one publishes nothing', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { maxEventBytes: 4096, maxMessageBytes: 65536 });
  const producer = await s.token({ sub: 'p', roles: ['developer'] });
  const watcher = await s.connect({ sub: 'w', roles: ['researcher'] }, { session: 'watcher' });
  await confirmed(watcher, { type: 'epistemic_updates', agent_id: 'big' });
  const big = { type: 'epistemic_update', agent_id: 'big', data: { note: 'x'.repeat(5000) } };
  const small = (n: number) => ({ type: 'epistemic_update', agent_id: 'big', data: { n } });
  const http = refusal(await api(s, 'POST', '/api/v1/events', { token: producer, json: [small(1), big, small(2)] }), 400, 'VALIDATION_ERROR');
  assert.match(http.message, /^events\[1\]: \d+ bytes as JSON, over the limit of 4096 \(ESCAI_MAX_EVENT_BYTES\)$/);
  const c = await s.connect({ sub: 'p', roles: ['developer'] }, { session: 'producer' });
  const onSocket = await c.request({ type: 'publish', data: big }, 'publish_confirmed');
  assert.equal(onSocket.type === 'error' && onSocket.code, 'VALIDATION_ERROR');
  assert.match(onSocket.type === 'error' ? onSocket.message : '', /over the limit of 4096/);
  assert.deepEqual(eventsOf(await watcher.drain()), [], 'nothing of the refused batch was delivered');
  const ok = await api<PublishAnswer>(s, 'POST', '/api/v1/events', { token: producer, json: [small(1), small(2)] });
  assert.deepEqual(
    ok.body.events.map((e) => e.offset),
    [1, 2],
  );
});

test('a __proto__ key is refused by name rather than silently dropped', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const producer = await s.token({ sub: 'p', roles: ['developer'] });
  const raw = '{"type":"epistemic_update","agent_id":"proto","data":{"confidence_level":0.4,"meta":{"__proto__":{"polluted":true}}}}';
  const r = refusal(await api(s, 'POST', '/api/v1/events', { token: producer, raw }), 400, 'VALIDATION_ERROR');
  assert.equal(r.message, 'event.data.meta.__proto__: reserved key');
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
});

test('odd but valid text (lone surrogates, every control character, emoji) goes through and reads back identically', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const producer = await s.token({ sub: 'p', roles: ['developer'] });
  const text = `${'\ud800'}x${'\udfff'}${Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join('')}🧠\u2028\u2029"\\`;
  const c = await s.connect({ sub: 'w', roles: ['researcher'] });
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'odd' });
  const r = await api<PublishAnswer>(s, 'POST', '/api/v1/events', { token: producer, json: { type: 'epistemic_update', agent_id: 'odd', data: { text } } });
  assert.equal(r.status, 202);
  const [live] = eventsOf(await c.drain());
  assert.equal(live?.data?.['text'], text);
  const history = await api<HistoryBody>(s, 'GET', '/api/v1/agents/odd/events', { token: producer });
  assert.equal(history.body.events[0]?.data?.['text'], text);
});
