// The HTTP side: probes, ESCAI's /ws/health, /ws/connections and
// /ws/broadcast/test, and the publish API POST /api/v1/events. Real server,
// real sockets, global fetch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EventType } from '../src/protocol/constants.js';
import type { PublishEventInput } from '../src/protocol/events.js';
import type { HealthHistoryPage } from '../src/protocol/server-messages.js';
import {
  api,
  connectionCount,
  epistemic,
  epistemicStateEvent,
  ESCAI_HEALTH_FIELDS,
  eventually,
  ISO_UTC,
  refusal,
  sortedByType,
  startServer,
  TEST_ENGINE,
  UUID,
  type BroadcastBody,
  type ConnectionsBody,
  type DeliveredEvent,
  type HealthBody,
  type PublishAnswer,
  type ReadyBody,
  type TestServer,
} from './helpers.js';

function assertIso(value: unknown, what: string): void {
  assert.equal(typeof value, 'string', `${what} is a string`);
  assert.match(value as string, ISO_UTC, `${what} is ISO-8601 UTC`);
  assert.ok(!Number.isNaN(Date.parse(value as string)), `${what} parses`);
}

async function tokens(s: TestServer) {
  return {
    admin: await s.token({ sub: 'admin_1', roles: ['admin'] }),
    researcher: await s.token({ sub: 'res_1', roles: ['researcher'] }),
    developer: await s.token({ sub: 'dev_1', roles: ['developer'] }),
    viewer: await s.token({ sub: 'view_1', roles: ['viewer'] }),
  };
}

test('GET /healthz → 200', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const r = await api(s, 'GET', '/healthz');
  assert.equal(r.status, 200);
});

test('GET /readyz → 200 ready, with the engine and node id', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const r = await api<ReadyBody>(s, 'GET', '/readyz');
  assert.equal(r.status, 200);
  assert.equal(r.body.status, 'ready');
  assert.equal(r.body.engine, TEST_ENGINE);
  assert.equal(typeof r.body.node_id, 'string');
});

test('GET /ws/health: the ESCAI shape with exact counts', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const idle = await api<HealthBody>(s, 'GET', '/ws/health');
  assert.equal(idle.status, 200);
  assert.equal(idle.body.status, 'idle');
  assert.equal(idle.body.active_connections, 0);
  assert.equal(idle.body.total_connections_ever, 0);

  const a = await s.connect({ sub: 'user_a', roles: ['researcher'] }, { session: 'sa' });
  const b = await s.connect({ sub: 'user_b', roles: ['researcher'] }, { session: 'sb' });
  for (const [c, data] of [
    [a, { type: 'epistemic_updates', agent_id: 'agent_1' }],
    [a, { type: 'agent_status', agent_id: 'agent_2' }],
    [b, { type: 'epistemic_updates', agent_id: 'agent_1' }],
    [b, { type: 'system_alerts' }],
  ] as const) {
    assert.equal((await c.subscribe(data)).type, 'subscription_confirmed');
  }

  const r = await api<HealthBody>(s, 'GET', '/ws/health');
  assert.equal(r.status, 200);
  const h = r.body;
  for (const field of [...ESCAI_HEALTH_FIELDS, 'timestamp']) {
    assert.ok(Object.hasOwn(h, field), `health has ${field}`);
  }
  assert.equal(h.status, 'healthy');
  assert.equal(h.max_connections, 10_000);
  assert.equal(h.heartbeat_interval, 30);
  assert.equal(h.heartbeat_timeout, 10);
  assert.equal(h.heartbeat_running, true);
  assert.equal(h.active_connections, 2);
  assert.equal(h.total_connections_ever, 2);
  assert.equal(h.active_users, 2);
  assert.equal(h.total_subscriptions, 4);
  assert.equal(h.agent_subscribers, 2, 'distinct agents with agent subscriptions: agent_1, agent_2');
  assert.ok(Number.isInteger(h.messages_received) && h.messages_received >= 4, `messages_received ${h.messages_received}`);
  assert.ok(Number.isInteger(h.messages_sent) && h.messages_sent >= 6, `messages_sent ${h.messages_sent}`);
  assertIso(h.timestamp, 'timestamp');

  // A second connection of user_a, then it leaves: the counts follow exactly.
  const a2 = await s.connect({ sub: 'user_a', roles: ['researcher'] }, { session: 'sa2' });
  assert.equal((await a2.subscribe({ type: 'pattern_alerts', agent_id: 'agent_3' })).type, 'subscription_confirmed');
  const mid = (await api<HealthBody>(s, 'GET', '/ws/health')).body;
  assert.equal(mid.active_connections, 3);
  assert.equal(mid.active_users, 2);
  assert.equal(mid.total_subscriptions, 5);
  assert.equal(mid.agent_subscribers, 3);
  a2.ws.close();
  await connectionCount(s.server, 2, 3000, 'a2 to leave');
  const after = (await api<HealthBody>(s, 'GET', '/ws/health')).body;
  assert.equal(after.active_connections, 2);
  assert.equal(after.total_connections_ever, 3);
  assert.equal(after.active_users, 2);
  assert.equal(after.total_subscriptions, 4);
  assert.equal(after.agent_subscribers, 2);
});

test('GET /ws/health/history: this node samples /ws/health every 2 s; the last minutes, oldest first; a bad query is 400 VALIDATION_ERROR', {
  timeout: 60_000,
}, async (t) => {
  const s = await startServer(t);
  const c = await s.connect({ sub: 'user_a', roles: ['researcher'] }, { session: 'hist' });
  // Sampled from listen on, one every two seconds: wait for three (about four seconds), no sleeping.
  let page: HealthHistoryPage | undefined;
  await eventually(async () => (page = (await api<HealthHistoryPage>(s, 'GET', '/ws/health/history')).body).samples.length >= 3, 20_000, 'three samples');
  const history = page!;
  const nodeId = s.server.nodeId;
  assert.equal(history.node_id, nodeId);
  assert.equal(history.interval_s, 2);
  assert.equal(history.window_s, 300);
  assert.ok(history.addresses[nodeId], `the node's address: ${JSON.stringify(history.addresses)}`);
  assertIso(history.timestamp, 'timestamp');
  const times = history.samples.map((x) => x.t);
  for (let i = 1; i < times.length; i++) assert.ok(times[i]! > times[i - 1]!, `oldest first: ${times.join(' ')}`);
  const now = Date.parse(history.timestamp) / 1000;
  assert.ok(
    times.every((x) => x <= now && x > now - 300),
    'within the window',
  );
  // The samples are what /ws/health said then: this node's counters, the open connection counted once it was open.
  const last = history.samples[history.samples.length - 1]!.nodes[nodeId]!;
  assert.equal(last['active_connections'], 1);
  assert.equal(typeof last['events_in'], 'number');
  c.ws.close();

  const recent = (await api<HealthHistoryPage>(s, 'GET', '/ws/health/history?seconds=1')).body;
  assert.ok(recent.samples.length <= 1, `?seconds=1 keeps the last second: ${recent.samples.length} samples`);
  for (const bad of ['seconds=0', 'seconds=301', 'seconds=abc']) {
    const r = await api<{ error: { code: string; message: string } }>(s, 'GET', `/ws/health/history?${bad}`);
    assert.equal(r.status, 400, bad);
    assert.equal(r.body.error.code, 'VALIDATION_ERROR', bad);
    assert.match(r.body.error.message, /seconds/, bad);
  }
});

test('GET /ws/connections: 401 / 403 / 200 with the documented shape', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const tok = await tokens(s);
  refusal(await api(s, 'GET', '/ws/connections'), 401, 'TOKEN_MISSING');
  refusal(await api(s, 'GET', '/ws/connections', { token: 'garbage' }), 401, 'TOKEN_INVALID');
  refusal(await api(s, 'GET', '/ws/connections', { token: tok.researcher }), 403, 'PERMISSION_DENIED');
  refusal(await api(s, 'GET', '/ws/connections', { token: tok.developer }), 403, 'PERMISSION_DENIED');

  const { client, hello } = await s.open({ sub: 'alice', roles: ['researcher'] });
  const filters = { confidence_level: { min: 0.8 } };
  assert.equal((await client.subscribe({ type: 'epistemic_updates', agent_id: 'agent_1', filters })).type, 'subscription_confirmed');
  assert.equal((await client.subscribe({ type: 'system_alerts' })).type, 'subscription_confirmed');

  const r = await api<ConnectionsBody>(s, 'GET', '/ws/connections', { token: tok.admin });
  assert.equal(r.status, 200);
  assert.equal(r.body.total, 1);
  assert.equal(r.body.connections.length, 1);
  assertIso(r.body.timestamp, 'timestamp');
  const conn = r.body.connections[0]!;
  assert.equal(conn.connection_id, hello.connection_id);
  assert.match(conn.connection_id, UUID);
  assert.equal(conn.user_id, 'alice');
  assertIso(conn.connected_at, 'connected_at');
  assert.ok(Object.hasOwn(conn, 'last_ping'), 'last_ping present');
  assert.ok(conn.last_ping === null || ISO_UTC.test(conn.last_ping), `last_ping ${conn.last_ping}`);
  assert.equal(conn.is_alive, true);
  const subs = sortedByType(conn.subscriptions);
  assert.deepEqual(subs, [
    { type: 'epistemic_updates', agent_id: 'agent_1', filters },
    { type: 'system_alerts', agent_id: null, filters: null },
  ]);

  // Admin rights may also come from the token's own permissions.
  const permAdmin = await s.token({ sub: 'ops', permissions: ['websocket:admin'] });
  assert.equal((await api<ConnectionsBody>(s, 'GET', '/ws/connections', { token: permAdmin })).body.total, 1);
});

test('POST /ws/broadcast/test: 401/403 matrix', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const tok = await tokens(s);
  refusal(await api(s, 'POST', '/ws/broadcast/test'), 401, 'TOKEN_MISSING');
  refusal(await api(s, 'POST', '/ws/broadcast/test', { token: 'not.a.token' }), 401, 'TOKEN_INVALID');
  for (const role of ['researcher', 'developer', 'viewer'] as const) {
    refusal(await api(s, 'POST', '/ws/broadcast/test', { token: tok[role] }), 403, 'PERMISSION_DENIED');
  }
});

test('POST /ws/broadcast/test without agent_id: a system_alert to system_alerts subscribers', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const tok = await tokens(s);
  const sub1 = await s.connect({ sub: 'u1', roles: ['viewer'] }, { session: 's1' });
  const sub2 = await s.connect({ sub: 'u2', roles: ['researcher'] }, { session: 's2' });
  const other = await s.connect({ sub: 'u3', roles: ['researcher'] }, { session: 's3' });
  await sub1.subscribe({ type: 'system_alerts' });
  await sub2.subscribe({ type: 'system_alerts' });
  await other.subscribe({ type: 'epistemic_updates' });

  const r = await api<BroadcastBody>(s, 'POST', '/ws/broadcast/test?message=hello%20world', { token: tok.admin });
  assert.equal(r.status, 200);
  assert.equal(r.body.message, 'Broadcast sent');
  assert.equal(r.body.recipients, 2);
  assertIso(r.body.timestamp, 'timestamp');
  for (const c of [sub1, sub2]) {
    const ev = await c.next('system_alert');
    assert.equal(ev.alert_type, 'test');
    assert.equal(ev.message, 'hello world');
    assert.equal(typeof ev.event_id, 'string');
  }

  const typed = await api<BroadcastBody>(s, 'POST', '/ws/broadcast/test?message=m2&message_type=maintenance', { token: tok.admin });
  assert.equal(typed.body.recipients, 2);
  const ev = await sub1.next('system_alert');
  assert.equal(ev.alert_type, 'maintenance');
  assert.equal(ev.message, 'm2');

  // The barrier: sub1 has m2, the last alert, and the node hands each event to all its connections at once.
  await other.flush();
  assert.equal(other.events('system_alert').length, 0, 'a non-subscriber receives nothing');
});

test('POST /ws/broadcast/test with agent_id: agent_status_change "test" to that agent\'s subscribers', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const tok = await tokens(s);
  const watcher = await s.connect({ sub: 'u1', roles: ['researcher'] }, { session: 's1' });
  const elsewhere = await s.connect({ sub: 'u2', roles: ['researcher'] }, { session: 's2' });
  await watcher.subscribe({ type: 'agent_status', agent_id: 'agent_1' });
  await elsewhere.subscribe({ type: 'agent_status', agent_id: 'agent_2' });

  const r = await api<BroadcastBody>(s, 'POST', '/ws/broadcast/test?message=ping%20agent&agent_id=agent_1', { token: tok.admin });
  assert.equal(r.status, 200);
  assert.equal(r.body.message, 'Broadcast sent');
  assert.equal(r.body.recipients, 1);
  const ev = await watcher.next('agent_status_change');
  assert.equal(ev.agent_id, 'agent_1');
  assert.equal(ev.status, 'test');
  // The barrier: the watcher has it, and the node hands each event to all its connections at once.
  await elsewhere.flush();
  assert.equal(elsewhere.events('agent_status_change').length, 0);
});

test('POST /api/v1/events: auth matrix and a single event → 202', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const tok = await tokens(s);
  const event = epistemicStateEvent('agent_1', 0.9);
  refusal(await api(s, 'POST', '/api/v1/events', { json: event }), 401, 'TOKEN_MISSING');
  refusal(await api(s, 'POST', '/api/v1/events', { json: event, token: 'garbage' }), 401, 'TOKEN_INVALID');
  refusal(await api(s, 'POST', '/api/v1/events', { json: event, token: tok.researcher }), 403, 'PERMISSION_DENIED');
  refusal(await api(s, 'POST', '/api/v1/events', { json: event, token: tok.viewer }), 403, 'PERMISSION_DENIED');

  const c = await s.connect({ roles: ['researcher'] });
  await c.subscribe({ type: 'epistemic_updates', agent_id: 'agent_1' });
  const r = await api<PublishAnswer>(s, 'POST', '/api/v1/events', { json: event, token: tok.developer });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal(r.body.accepted, 1);
  assert.equal(r.body.events.length, 1);
  const ref = r.body.events[0]!;
  assert.match(ref.event_id, UUID);
  assert.equal(ref.offset, 1, 'first event of a fresh stream');
  assert.equal(typeof ref.epoch, 'string');
  assert.ok(ref.epoch.length > 0);
  const ev = await c.next('epistemic_update');
  assert.equal(ev.event_id, ref.event_id);
  assert.equal(ev.offset, ref.offset);
  assert.equal(ev.epoch, ref.epoch);
  assert.equal(ev.data?.['confidence_level'], 0.9);
});

test('POST /api/v1/events: a batch of 3 is delivered in order', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const tok = await tokens(s);
  const c = await s.connect({ roles: ['researcher'] });
  await c.subscribe({ type: 'epistemic_updates', agent_id: 'agent_1' });
  const batch = [0.1, 0.2, 0.3].map((conf, i) => epistemicStateEvent('agent_1', conf, { seq: i }));
  const r = await api<PublishAnswer>(s, 'POST', '/api/v1/events', { json: batch, token: tok.developer });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal(r.body.accepted, 3);
  assert.equal(r.body.events.length, 3);
  const ids = r.body.events.map((e) => e.event_id);
  assert.equal(new Set(ids).size, 3, 'distinct event ids');
  assert.deepEqual(
    r.body.events.map((e) => e.offset),
    [1, 2, 3],
  );

  await eventually(() => c.events('epistemic_update').length === 3, 3000, 'three events');
  const got = c.events('epistemic_update');
  assert.deepEqual(
    got.map((m) => m.data?.['seq']),
    [0, 1, 2],
  );
  assert.deepEqual(
    got.map((m) => m.event_id),
    ids,
  );
});

test('POST /api/v1/events: a batch with one bad event is refused whole', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const tok = await tokens(s);
  const c = await s.connect({ roles: ['researcher'] });
  await c.subscribe({ type: 'epistemic_updates', agent_id: 'agent_1' });
  const good = (seq: number) => epistemicStateEvent('agent_1', 0.5, { seq });
  const bad = { type: 'epistemic_update', agent_id: 'agent_1', data: { ...epistemic('agent_1', 0.5), confidence_level: 2 } };
  const r = await api(s, 'POST', '/api/v1/events', { json: [good(0), bad, good(2)], token: tok.developer });
  const error = refusal(r, 400, 'VALIDATION_ERROR');
  assert.ok(error.message.includes('events[1].data.confidence_level'), error.message);

  // Nothing was sequenced either: the next event is the stream's first, and the first c receives
  // (the barrier: anything of the bad batch, on the same stream, would have arrived before it).
  const next = await api<PublishAnswer>(s, 'POST', '/api/v1/events', { json: good(3), token: tok.developer });
  assert.equal(next.status, 202);
  assert.equal(next.body.events[0]?.offset, 1);
  const ev = await c.next('epistemic_update');
  assert.equal(ev.data?.['seq'], 3, 'nothing of the bad batch is delivered');
  assert.equal(c.events('epistemic_update').length, 0, 'nothing of the bad batch is delivered');
});

test('POST /api/v1/events: bad bodies → INVALID_JSON, VALIDATION_ERROR', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const tok = await tokens(s);
  refusal(await api(s, 'POST', '/api/v1/events', { raw: '{"type": "epistemic_update",', token: tok.developer }), 400, 'INVALID_JSON');
  const unknown = await api(s, 'POST', '/api/v1/events', { json: { type: 'mystery_event', agent_id: 'agent_1', data: {} }, token: tok.developer });
  assert.match(refusal(unknown, 400, 'VALIDATION_ERROR').message, /type/);
  const noAgent = await api(s, 'POST', '/api/v1/events', { json: { type: 'epistemic_update', data: {} }, token: tok.developer });
  assert.match(refusal(noAgent, 400, 'VALIDATION_ERROR').message, /agent_id/);
  refusal(await api(s, 'POST', '/api/v1/events', { json: [], token: tok.developer }), 400, 'VALIDATION_ERROR');
});

test('POST /api/v1/events: a body over maxBodyBytes → 413 PAYLOAD_TOO_LARGE', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { maxBodyBytes: 1024 });
  const tok = await tokens(s);
  const big = { type: 'system_alert', alert_type: 'big', message: 'x'.repeat(2000) };
  refusal(await api(s, 'POST', '/api/v1/events', { json: big, token: tok.developer }), 413, 'PAYLOAD_TOO_LARGE');
  // Control: the same event under the limit is accepted.
  const small = await api<PublishAnswer>(s, 'POST', '/api/v1/events', { json: { ...big, message: 'x'.repeat(100) }, token: tok.developer });
  assert.equal(small.status, 202);
});

test('every event type is accepted and delivered with its envelope; unknown data fields kept', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const tok = await tokens(s);
  const c = await s.connect({ sub: 'watcher', roles: ['researcher'] });
  for (const type of ['epistemic_updates', 'pattern_alerts', 'prediction_updates', 'agent_status']) {
    assert.equal((await c.subscribe({ type, agent_id: 'agent_1' })).type, 'subscription_confirmed');
  }
  assert.equal((await c.subscribe({ type: 'system_alerts' })).type, 'subscription_confirmed');

  const custom = { vendor_field: { nested: [1, 2, 3] }, note: 'kept' };
  const events: PublishEventInput[] = [
    epistemicStateEvent('agent_1', 0.8, custom),
    {
      type: 'pattern_alert',
      agent_id: 'agent_1',
      alert_type: 'anomaly_detected',
      severity: 'warning',
      data: { pattern_id: 'p1', pattern_name: 'loop', pattern_type: 'feedback_loop', frequency: 3, success_rate: 0.25, ...custom },
    },
    {
      type: 'prediction_update',
      agent_id: 'agent_1',
      data: {
        agent_id: 'agent_1',
        prediction_type: 'success',
        predicted_value: true,
        confidence: 0.7,
        risk_level: 'medium',
        confidence_interval: { lower_bound: 0.6, upper_bound: 0.8 },
        ...custom,
      },
    },
    { type: 'system_alert', alert_type: 'maintenance', message: 'restart at noon', severity: 'warning', metadata: { window: '5m' } },
    { type: 'agent_status_change', agent_id: 'agent_1', status: 'running', metadata: { host: 'h1' } },
    { type: 'user_notification', user_id: 'watcher', notification_type: 'report_ready', message: 'your report is ready', data: { report_id: 'r1' } },
  ];
  const r = await api<PublishAnswer>(s, 'POST', '/api/v1/events', { json: events, token: tok.developer });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal(r.body.accepted, 6);
  const refs = r.body.events;

  const got: Partial<Record<EventType, DeliveredEvent>> = {};
  for (const e of events) got[e.type] = await c.next(e.type);
  for (const [i, e] of events.entries()) {
    const ev = got[e.type]!;
    assert.equal(ev.event_id, refs[i]!.event_id, `${e.type} event_id`);
    assert.equal(ev.offset, refs[i]!.offset, `${e.type} offset`);
    assert.equal(ev.epoch, refs[i]!.epoch, `${e.type} epoch`);
    assert.ok(Number.isInteger(ev.offset) && ev.offset >= 1, `${e.type} offset`);
    assertIso(ev.timestamp, `${e.type} timestamp`);
  }

  const epi = got['epistemic_update']!;
  assert.equal(epi.agent_id, 'agent_1');
  assert.equal(epi.data?.['confidence_level'], 0.8);
  assert.deepEqual(epi.data?.['vendor_field'], custom.vendor_field);
  assert.equal(epi.data?.['note'], 'kept');

  const pat = got['pattern_alert']!;
  assert.equal(pat.agent_id, 'agent_1');
  assert.equal(pat.alert_type, 'anomaly_detected');
  assert.equal(pat.severity, 'warning');
  assert.equal(pat.data?.['pattern_type'], 'feedback_loop');
  assert.deepEqual(pat.data?.['vendor_field'], custom.vendor_field);

  const pred = got['prediction_update']!;
  assert.equal(pred.agent_id, 'agent_1');
  assert.equal(pred.data?.['risk_level'], 'medium');
  assert.deepEqual(pred.data?.['confidence_interval'], { lower_bound: 0.6, upper_bound: 0.8 });
  assert.equal(pred.data?.['note'], 'kept');

  const sys = got['system_alert']!;
  assert.equal(sys.alert_type, 'maintenance');
  assert.equal(sys.message, 'restart at noon');
  assert.equal(sys.severity, 'warning');
  assert.deepEqual(sys.metadata, { window: '5m' });

  const status = got['agent_status_change']!;
  assert.equal(status.agent_id, 'agent_1');
  assert.equal(status.status, 'running');
  assert.deepEqual(status.metadata, { host: 'h1' });

  const note = got['user_notification']!;
  assert.equal(note.notification_type, 'report_ready');
  assert.equal(note.message, 'your report is ready');
  assert.deepEqual(note.data, { report_id: 'r1' });
});

test('unknown route → 404 NOT_FOUND', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  refusal(await api(s, 'GET', '/no/such/route'), 404, 'NOT_FOUND');
  refusal(await api(s, 'POST', '/api/v1/nothing', { json: {} }), 404, 'NOT_FOUND');
});

test('GET /metrics exposes Prometheus metrics that follow the node', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect({ roles: ['researcher'] });
  await c.subscribe({ type: 'system_alerts' });
  await s.server.broadcastSystemAlert('maintenance', 'm');
  const res = await fetch(`${s.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  const text = await res.text();
  assert.match(text, /^escai_connections 1$/m);
  assert.match(text, /^escai_subscriptions 1$/m);
  assert.match(text, /^escai_publications_total\{type="system_alert"\} 1$/m);
  assert.match(text, /^escai_engine_ready 1$/m);
});
