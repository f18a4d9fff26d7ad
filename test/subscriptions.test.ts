// Client messages, reply shapes, error codes, subscription routing and
// publishing, through a real server and real sockets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ErrorCode } from '../src/protocol/codes.js';
import {
  confirmed,
  connectionCount,
  epistemic,
  epistemicStateEvent,
  ESCAI_HEALTH_FIELDS,
  health,
  ISO_UTC,
  sortedByType,
  startServer,
  UUID,
  type ErrorMessage,
  type TestClient,
} from './helpers.js';

/** Sends a message and returns the error frame it must provoke. */
async function expectError(c: TestClient, message: unknown, code: ErrorCode): Promise<ErrorMessage> {
  c.send(message);
  const reply = await c.next(['error', 'subscription_confirmed', 'unsubscription_confirmed', 'publish_confirmed', 'stats', 'subscriptions_list']);
  assert.equal(reply.type, 'error', `expected error ${code}, got ${JSON.stringify(reply)}`);
  assert.equal(reply.code, code, `expected ${code}, got ${JSON.stringify(reply)}`);
  assert.equal(typeof reply.message, 'string');
  assert.match(reply.timestamp, ISO_UTC);
  return reply;
}

const RESEARCHER = { roles: ['researcher'] };
const DEVELOPER = { roles: ['developer'] };
const ADMIN = { roles: ['admin'] };

// ---- reply shapes ---------------------------------------------------------

test('connection_established carries the connection, session, user and heartbeat', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const token = await s.token({ sub: 'alice', roles: ['viewer'] });
  const { hello } = await s.open(token, { session: 'my-session.1' });
  assert.deepEqual(Object.keys(hello).sort(), ['connection_id', 'heartbeat_interval', 'resumed', 'server_time', 'session_id', 'type', 'user_id']);
  assert.equal(hello.resumed, false);
  assert.match(hello.connection_id, UUID);
  assert.equal(hello.session_id, 'my-session.1');
  assert.equal(hello.user_id, 'alice');
  assert.match(hello.server_time, ISO_UTC);
  assert.ok(Math.abs(Date.parse(hello.server_time) - Date.now()) < 60_000);
  assert.equal(hello.heartbeat_interval, 30);

  const { hello: hello2 } = await s.open(token, { session: 'other' });
  assert.equal(hello2.session_id, 'other');
  assert.notEqual(hello2.connection_id, hello.connection_id);
});

test('subscribe, get_subscriptions and unsubscribe reply shapes', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  const a = await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1', filters: { confidence_level: { min: 0.8 } } });
  assert.deepEqual(Object.keys(a).sort(), ['data', 'timestamp', 'type']);
  const { epoch, ...rest } = a.data;
  // A single-stream subscription reports the stream's position (nothing published yet: offset 0).
  assert.deepEqual(rest, {
    subscription_type: 'epistemic_updates',
    agent_id: 'agent_1',
    filters: { confidence_level: { min: 0.8 } },
    recovered: false,
    offset: 0,
  });
  assert.match(epoch!, /^[0-9a-f]+$/);
  assert.match(a.timestamp, ISO_UTC);

  const b = await confirmed(c, { type: 'pattern_alerts' });
  assert.deepEqual(b.data, { subscription_type: 'pattern_alerts', agent_id: null, filters: null, recovered: false });

  const list = await c.expectReply({ type: 'get_subscriptions' }, 'subscriptions_list');
  assert.equal(list.type, 'subscriptions_list');
  assert.match(list.timestamp, ISO_UTC);
  const subs = sortedByType(list.data.subscriptions);
  assert.deepEqual(subs, [
    { type: 'epistemic_updates', agent_id: 'agent_1', filters: { confidence_level: { min: 0.8 } } },
    { type: 'pattern_alerts', agent_id: null, filters: null },
  ]);

  const u = await c.request({ type: 'unsubscribe', data: { subscription_type: 'epistemic_updates', agent_id: 'agent_1' } }, 'unsubscription_confirmed');
  assert.equal(u.type, 'unsubscription_confirmed');
  assert.deepEqual(u.data, { subscription_type: 'epistemic_updates', agent_id: 'agent_1' });
  assert.match(u.timestamp, ISO_UTC);

  const u2 = await c.expectReply({ type: 'unsubscribe', data: { subscription_type: 'pattern_alerts' } }, 'unsubscription_confirmed');
  assert.deepEqual(u2.data, { subscription_type: 'pattern_alerts', agent_id: null });

  const empty = await c.expectReply({ type: 'get_subscriptions' }, 'subscriptions_list');
  assert.deepEqual(empty.data, { subscriptions: [] });
});

test('ping gets pong; a client pong gets no reply', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect({ roles: ['viewer'] });
  const pong = await c.request({ type: 'ping' }, 'pong');
  assert.equal(pong.type, 'pong');
  assert.match(pong.timestamp, ISO_UTC);
  assert.ok(!('id' in pong));

  c.send({ type: 'pong' });
  c.send({ type: 'pong', data: {} });
  c.send({ type: 'ping', id: 'after-pongs' });
  const p2 = await c.next('pong', (m) => m.id === 'after-pongs');
  assert.equal(p2.id, 'after-pongs');
  assert.deepEqual(c.received, [], 'a client pong must not be answered');
});

test('get_stats (admin) returns the health counters', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const admin = await s.connect({ sub: 'root', ...ADMIN }, { session: 'admin' });
  const r = await s.connect({ sub: 'res', ...RESEARCHER }, { session: 'res' });
  await confirmed(r, { type: 'epistemic_updates', agent_id: 'agent_1' });
  await confirmed(r, { type: 'system_alerts' });
  const stats = await admin.request({ type: 'get_stats' }, 'stats');
  assert.equal(stats.type, 'stats');
  assert.match(stats.timestamp, ISO_UTC);
  const h = await health(s);
  const { timestamp: _ts, ...healthCounters } = h;
  assert.deepEqual(Object.keys(stats.data).sort(), Object.keys(healthCounters).sort());
  for (const key of ESCAI_HEALTH_FIELDS) {
    assert.ok(key in stats.data, `stats lacks ${key}`);
  }
  assert.equal(stats.data.status, 'healthy');
  assert.equal(stats.data.max_connections, 10_000);
  assert.equal(stats.data.heartbeat_interval, 30);
  assert.equal(stats.data.heartbeat_timeout, 10);
  assert.equal(stats.data.heartbeat_running, true);
  assert.equal(stats.data.active_connections, 2);
  assert.equal(stats.data.total_connections_ever, 2);
  assert.equal(stats.data.active_users, 2);
  assert.equal(stats.data.total_subscriptions, 2);
  assert.equal(stats.data.agent_subscribers, 1);
  // Inbound: 2 subscribes + get_stats. Outbound: 2 greetings + 2 confirmations (the stats reply is counted after).
  assert.equal(stats.data.messages_received, 3);
  assert.equal(stats.data.messages_sent, 4);
});

// ---- request ids ----------------------------------------------------------

test('an optional request id is echoed on replies and errors', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  c.send({ type: 'subscribe', id: 'req-1', data: { type: 'epistemic_updates', agent_id: 'agent_1' } });
  const sub = await c.next('subscription_confirmed');
  assert.equal(sub.id, 'req-1');

  c.send({ type: 'get_subscriptions', id: 7 });
  const list = await c.next('subscriptions_list');
  assert.equal(list.id, 7);

  c.send({ type: 'ping', id: 'p' });
  assert.equal((await c.next('pong')).id, 'p');

  c.send({ type: 'unsubscribe', id: 'u', data: { subscription_type: 'epistemic_updates', agent_id: 'agent_1' } });
  assert.equal((await c.next('unsubscription_confirmed')).id, 'u');

  assert.equal(
    (await expectError(c, { type: 'unsubscribe', id: 'u2', data: { subscription_type: 'epistemic_updates', agent_id: 'agent_1' } }, 'SUBSCRIPTION_NOT_FOUND'))
      .id,
    'u2',
  );
  assert.equal((await expectError(c, { type: 'nope', id: 42 }, 'UNKNOWN_MESSAGE_TYPE')).id, 42);
  assert.equal((await expectError(c, { type: 'subscribe', id: 'v', data: {} }, 'VALIDATION_ERROR')).id, 'v');
  assert.equal((await expectError(c, { type: 'get_stats', id: 'st' }, 'PERMISSION_DENIED')).id, 'st');

  // Without an id, replies carry none.
  const plain = await c.subscribe({ type: 'agent_status' });
  assert.ok(!('id' in plain));
  const err = await expectError(c, { type: 'subscribe', data: { type: 'agent_status' } }, 'SUBSCRIPTION_EXISTS');
  assert.ok(!('id' in err));
});

// ---- error codes ----------------------------------------------------------

test('INVALID_JSON keeps the connection open and working', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  const err = await expectError(c, '{"type": "subscribe", ', 'INVALID_JSON');
  assert.ok(!('id' in err));
  await expectError(c, 'not json at all', 'INVALID_JSON');
  assert.equal(c.ws.readyState, c.ws.OPEN);
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1' });
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.5)), 1);
  const ev = await c.next('epistemic_update');
  assert.equal(ev.agent_id, 'agent_1');
});

test('UNKNOWN_MESSAGE_TYPE', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  const err = await expectError(c, { type: 'subscribe_all', data: {} }, 'UNKNOWN_MESSAGE_TYPE');
  assert.match(err.message, /subscribe_all/);
  await expectError(c, { type: '__proto__' }, 'UNKNOWN_MESSAGE_TYPE');
  await expectError(c, { type: 'toString' }, 'UNKNOWN_MESSAGE_TYPE');
  assert.equal((await c.request({ type: 'ping' }, 'pong')).type, 'pong');
});

test('VALIDATION_ERROR names the offending field', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(DEVELOPER);
  let e = await expectError(c, { type: 'subscribe', data: { type: 'epistemic_update' } }, 'VALIDATION_ERROR');
  assert.match(e.message, /data\.type/);
  e = await expectError(c, { type: 'subscribe', data: { type: 'all_the_things', agent_id: 'agent_1' } }, 'VALIDATION_ERROR');
  assert.match(e.message, /data\.type/);
  e = await expectError(c, { type: 'subscribe', data: { agent_id: 'agent_1' } }, 'VALIDATION_ERROR');
  assert.match(e.message, /data\.type/);
  e = await expectError(c, { type: 'subscribe', data: { type: 'epistemic_updates', agent_id: 'bad agent/../x' } }, 'VALIDATION_ERROR');
  assert.match(e.message, /agent_id/);
  e = await expectError(c, { type: 'subscribe', data: { type: 'epistemic_updates', agent_id: 12 } }, 'VALIDATION_ERROR');
  assert.match(e.message, /agent_id/);
  e = await expectError(c, { type: 'subscribe', data: { type: 'system_alerts', agent_id: 'agent_1' } }, 'VALIDATION_ERROR');
  assert.match(e.message, /agent_id/);
  e = await expectError(c, [{ type: 'ping' }], 'VALIDATION_ERROR');
  e = await expectError(c, { data: {} }, 'VALIDATION_ERROR');
  assert.match(e.message, /type/);
  e = await expectError(c, { type: 'unsubscribe', data: {} }, 'VALIDATION_ERROR');
  assert.match(e.message, /subscription_type/);

  e = await expectError(c, { type: 'publish', data: { type: 'epistemic_update', agent_id: 'agent_1', data: { confidence_level: 1.5 } } }, 'VALIDATION_ERROR');
  assert.match(e.message, /data\.confidence_level/);
  e = await expectError(c, { type: 'publish', data: { type: 'agent_status_change', agent_id: 'agent_1' } }, 'VALIDATION_ERROR');
  assert.match(e.message, /status/);
  e = await expectError(
    c,
    { type: 'publish', data: [epistemicStateEvent('agent_1', 0.5), { type: 'pattern_alert', agent_id: 'agent_1', data: { pattern_type: 'circular' } }] },
    'VALIDATION_ERROR',
  );
  assert.match(e.message, /events\[1\]\.data\.pattern_type/);

  // Nothing was subscribed by any of the refused messages.
  const list = await c.expectReply({ type: 'get_subscriptions' }, 'subscriptions_list');
  assert.deepEqual(list.data.subscriptions, []);
});

test('PERMISSION_DENIED: subscribe without websocket:subscribe, get_stats without admin, publish without events:publish', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const connectOnly = await s.connect({ sub: 'c', permissions: ['websocket:connect', 'agent:*:monitor'] }, { session: 'c' });
  let e = await expectError(connectOnly, { type: 'subscribe', data: { type: 'epistemic_updates', agent_id: 'agent_1' } }, 'PERMISSION_DENIED');
  assert.match(e.message, /websocket:subscribe/);
  await expectError(connectOnly, { type: 'subscribe', data: { type: 'system_alerts' } }, 'PERMISSION_DENIED');

  const researcher = await s.connect({ sub: 'r', ...RESEARCHER }, { session: 'r' });
  e = await expectError(researcher, { type: 'get_stats' }, 'PERMISSION_DENIED');
  assert.match(e.message, /websocket:admin/);
  await confirmed(researcher, { type: 'epistemic_updates', agent_id: 'agent_1' });
  e = await expectError(researcher, { type: 'publish', data: epistemicStateEvent('agent_1', 0.5) }, 'PERMISSION_DENIED');
  assert.match(e.message, /events:publish/);
  const viewer = await s.connect({ sub: 'v', roles: ['viewer'] }, { session: 'v' });
  await expectError(viewer, { type: 'publish', data: epistemicStateEvent('agent_1', 0.5) }, 'PERMISSION_DENIED');

  // Nothing was published: the next event on the stream is offset 1.
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.7)), 1);
  const ev = await researcher.next('epistemic_update');
  assert.equal(ev.offset, 1);
  assert.equal(ev.data?.['confidence_level'], 0.7);
  assert.deepEqual(researcher.takeEvents(), []);
});

test('AGENT_ACCESS_DENIED for an agent the token may not monitor', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const viewer = await s.connect({ sub: 'v', roles: ['viewer'] }, { session: 'v' });
  const e = await expectError(viewer, { type: 'subscribe', data: { type: 'epistemic_updates', agent_id: 'agent_2' } }, 'AGENT_ACCESS_DENIED');
  assert.match(e.message, /agent_2/);
  const one = await s.connect({ sub: 'o', roles: ['viewer'], permissions: ['agent:agent_1:monitor'] }, { session: 'o' });
  await confirmed(one, { type: 'epistemic_updates', agent_id: 'agent_1' });
  await expectError(one, { type: 'subscribe', data: { type: 'pattern_alerts', agent_id: 'agent_10' } }, 'AGENT_ACCESS_DENIED');
  await expectError(one, { type: 'subscribe', data: { type: 'agent_status', agent_id: 'agent_2' } }, 'AGENT_ACCESS_DENIED');
  const list = await one.expectReply({ type: 'get_subscriptions' }, 'subscriptions_list');
  assert.deepEqual(list.data.subscriptions, [{ type: 'epistemic_updates', agent_id: 'agent_1', filters: null }]);
});

test('SUBSCRIPTION_EXISTS and SUBSCRIPTION_NOT_FOUND', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1' });
  await expectError(
    c,
    { type: 'subscribe', data: { type: 'epistemic_updates', agent_id: 'agent_1', filters: { confidence_level: { min: 0.1 } } } },
    'SUBSCRIPTION_EXISTS',
  );
  // Same type for another agent, or for all agents, is a different subscription.
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_2' });
  await confirmed(c, { type: 'epistemic_updates' });
  await expectError(c, { type: 'subscribe', data: { type: 'epistemic_updates' } }, 'SUBSCRIPTION_EXISTS');
  await expectError(c, { type: 'subscribe', data: { type: 'epistemic_updates', agent_id: null } }, 'SUBSCRIPTION_EXISTS');

  await expectError(c, { type: 'unsubscribe', data: { subscription_type: 'pattern_alerts', agent_id: 'agent_1' } }, 'SUBSCRIPTION_NOT_FOUND');
  await expectError(c, { type: 'unsubscribe', data: { subscription_type: 'epistemic_updates', agent_id: 'agent_3' } }, 'SUBSCRIPTION_NOT_FOUND');
  await c.request({ type: 'unsubscribe', data: { subscription_type: 'epistemic_updates' } }, 'unsubscription_confirmed');
  await expectError(c, { type: 'unsubscribe', data: { subscription_type: 'epistemic_updates' } }, 'SUBSCRIPTION_NOT_FOUND');
  const list = await c.expectReply({ type: 'get_subscriptions' }, 'subscriptions_list');
  assert.deepEqual(list.data.subscriptions.map((x) => x.agent_id).sort(), ['agent_1', 'agent_2']);
});

test('TOO_MANY_SUBSCRIPTIONS at the per-connection cap', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { maxSubscriptions: 2 });
  const c = await s.connect(RESEARCHER);
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1' });
  await confirmed(c, { type: 'pattern_alerts' });
  await expectError(c, { type: 'subscribe', data: { type: 'system_alerts' } }, 'TOO_MANY_SUBSCRIPTIONS');
  const list = await c.expectReply({ type: 'get_subscriptions' }, 'subscriptions_list');
  assert.equal(list.data.subscriptions.length, 2);
  // The cap is per connection.
  const other = await s.connect(RESEARCHER, { session: 'other' });
  await confirmed(other, { type: 'system_alerts' });
  // Freeing a slot allows a new one.
  await c.request({ type: 'unsubscribe', data: { subscription_type: 'pattern_alerts' } }, 'unsubscription_confirmed');
  await confirmed(c, { type: 'system_alerts' });
});

// ---- routing ----------------------------------------------------------------

test('unsubscribing one type for an agent keeps the other subscriptions working (defect #3)', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  const other = await s.connect(RESEARCHER, { session: 'other' });
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1' });
  await confirmed(c, { type: 'pattern_alerts', agent_id: 'agent_1' });
  await confirmed(c, { type: 'agent_status', agent_id: 'agent_1' });
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_2' });
  await confirmed(c, { type: 'prediction_updates' });
  await confirmed(other, { type: 'epistemic_updates', agent_id: 'agent_1' });

  const u = await c.request({ type: 'unsubscribe', data: { subscription_type: 'epistemic_updates', agent_id: 'agent_1' } }, 'unsubscription_confirmed');
  assert.equal(u.type, 'unsubscription_confirmed');

  assert.equal(await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.1)), 1); // only `other`
  assert.equal(await s.server.broadcastPatternAlert('agent_1', { pattern_name: 'p1' }), 1);
  assert.equal(await s.server.broadcastAgentStatusChange('agent_1', 'running'), 1);
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_2', epistemic('agent_2', 0.2)), 1);
  assert.equal(await s.server.broadcastPredictionUpdate('agent_1', { prediction_type: 'success' }), 1);
  await c.flush();
  await other.flush();
  const got = c.takeEvents().map((m) => `${m.type}:${m.agent_id}`);
  assert.deepEqual(got, ['pattern_alert:agent_1', 'agent_status_change:agent_1', 'epistemic_update:agent_2', 'prediction_update:agent_1']);
  assert.deepEqual(
    other.takeEvents().map((m) => `${m.type}:${m.agent_id}`),
    ['epistemic_update:agent_1'],
  );

  const list = await c.expectReply({ type: 'get_subscriptions' }, 'subscriptions_list');
  assert.equal(list.data.subscriptions.length, 4);
  assert.ok(!list.data.subscriptions.some((x) => x.type === 'epistemic_updates' && x.agent_id === 'agent_1'));
});

test('a subscription without agent_id receives from every agent the user may monitor, and no other (defect #2)', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect({ sub: 'limited', roles: ['viewer'], permissions: ['agent:agent_1:monitor', 'agent:agent_2:monitor'] });
  const conf = await confirmed(c, { type: 'epistemic_updates' });
  assert.equal(conf.data.agent_id, null);
  const all = await s.connect({ sub: 'all', ...RESEARCHER }, { session: 'all' });
  await confirmed(all, { type: 'epistemic_updates' });
  const none = await s.connect({ sub: 'none', roles: ['viewer'] }, { session: 'none' });
  await confirmed(none, { type: 'epistemic_updates' });

  assert.equal(await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.1)), 2);
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_2', epistemic('agent_2', 0.2)), 2);
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_3', epistemic('agent_3', 0.3)), 1);
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_10', epistemic('agent_10', 0.4)), 1);
  await c.flush();
  await all.flush();
  await none.flush();
  assert.deepEqual(
    c.takeEvents().map((m) => m.agent_id),
    ['agent_1', 'agent_2'],
  );
  assert.deepEqual(
    all.takeEvents().map((m) => m.agent_id),
    ['agent_1', 'agent_2', 'agent_3', 'agent_10'],
  );
  assert.deepEqual(none.takeEvents(), []);
});

test('an event matching a specific and an all-agents subscription is delivered once', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1' });
  await confirmed(c, { type: 'epistemic_updates' });
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.5)), 1);
  await c.flush();
  const got = c.takeEvents();
  assert.equal(got.length, 1);
  assert.equal(got[0]!.agent_id, 'agent_1');

  // Specific one filtered out, all-agents one matches: still exactly once.
  const d = await s.connect(RESEARCHER, { session: 'd' });
  await confirmed(d, { type: 'epistemic_updates', agent_id: 'agent_1', filters: { confidence_level: { min: 0.9 } } });
  await confirmed(d, { type: 'epistemic_updates' });
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.3)), 2);
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.95)), 2);
  await d.flush();
  assert.deepEqual(
    d.takeEvents().map((m) => m.data?.['confidence_level']),
    [0.3, 0.95],
  );
});

test('each subscription type receives only its event type', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const types: Array<[string, string]> = [
    ['epistemic_updates', 'epistemic_update'],
    ['pattern_alerts', 'pattern_alert'],
    ['prediction_updates', 'prediction_update'],
    ['system_alerts', 'system_alert'],
    ['agent_status', 'agent_status_change'],
  ];
  const clients = new Map<string, TestClient>();
  for (const [subType] of types) {
    const c = await s.connect({ sub: `u_${subType}`, ...RESEARCHER }, { session: subType });
    await confirmed(c, { type: subType });
    clients.set(subType, c);
  }
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.5)), 1);
  assert.equal(
    await s.server.broadcastPatternAlert('agent_1', { pattern_name: 'loop', pattern_type: 'feedback_loop' }, { severity: 'high', alertType: 'anomaly' }),
    1,
  );
  assert.equal(await s.server.broadcastPredictionUpdate('agent_1', { prediction_type: 'success', risk_level: 'low' }), 1);
  assert.equal(await s.server.broadcastSystemAlert('maintenance', 'down at 5', 'warning', { window: 10 }), 1);
  assert.equal(await s.server.broadcastAgentStatusChange('agent_1', 'running', { step: 3 }), 1);
  assert.equal(await s.server.sendUserNotification('somebody_else', 'note', 'hello'), 0);

  for (const [subType, eventType] of types) {
    const c = clients.get(subType)!;
    await c.flush();
    const got = c.takeEvents();
    assert.deepEqual(
      got.map((m) => m.type),
      [eventType],
      `${subType} got ${JSON.stringify(got)}`,
    );
    const ev = got[0]!;
    assert.match(ev.event_id, UUID);
    assert.match(ev.timestamp, ISO_UTC);
    switch (eventType) {
      case 'epistemic_update':
        assert.equal(ev.agent_id, 'agent_1');
        assert.equal(ev.data?.['confidence_level'], 0.5);
        break;
      case 'pattern_alert':
        assert.equal(ev.agent_id, 'agent_1');
        assert.equal(ev.alert_type, 'anomaly');
        assert.equal(ev.severity, 'high');
        assert.equal(ev.data?.['pattern_name'], 'loop');
        break;
      case 'prediction_update':
        assert.equal(ev.agent_id, 'agent_1');
        assert.equal(ev.data?.['risk_level'], 'low');
        break;
      case 'system_alert':
        assert.equal(ev.alert_type, 'maintenance');
        assert.equal(ev.message, 'down at 5');
        assert.equal(ev.severity, 'warning');
        assert.deepEqual(ev.metadata, { window: 10 });
        break;
      case 'agent_status_change':
        assert.equal(ev.agent_id, 'agent_1');
        assert.equal(ev.status, 'running');
        assert.deepEqual(ev.metadata, { step: 3 });
        break;
    }
  }
});

test('user_notification reaches every connection of that user and no other user', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const a1 = await s.connect({ sub: 'alice', roles: ['viewer'] }, { session: 's1' });
  const a2 = await s.connect({ sub: 'alice', roles: ['viewer'] }, { session: 's2' });
  const bob = await s.connect({ sub: 'bob', ...ADMIN }, { session: 's3' });
  for (const type of ['epistemic_updates', 'pattern_alerts', 'prediction_updates', 'system_alerts', 'agent_status']) await confirmed(bob, { type });

  assert.equal(await s.server.sendUserNotification('alice', 'report_ready', 'Your report is ready', { report: 'r1' }), 2);
  for (const c of [a1, a2]) {
    const n = await c.next('user_notification');
    assert.equal(n.notification_type, 'report_ready');
    assert.equal(n.message, 'Your report is ready');
    assert.deepEqual(n.data, { report: 'r1' });
    assert.match(n.event_id, UUID);
    assert.match(n.timestamp, ISO_UTC);
  }
  assert.equal(await s.server.sendUserNotification('nobody', 'x', 'y'), 0);
  await bob.flush();
  await a1.flush();
  await a2.flush();
  assert.deepEqual(bob.takeEvents(), []);
  assert.deepEqual(a1.takeEvents(), []);
  assert.deepEqual(a2.takeEvents(), []);
});

test('in-process broadcasts resolve to the exact local recipient counts', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const a = await s.connect({ sub: 'a', ...RESEARCHER }, { session: 'a' });
  const b = await s.connect({ sub: 'b', ...RESEARCHER }, { session: 'b' });
  const c = await s.connect({ sub: 'c', roles: ['viewer'], permissions: ['agent:agent_2:monitor'] }, { session: 'c' });
  await confirmed(a, { type: 'epistemic_updates', agent_id: 'agent_1' });
  await confirmed(a, { type: 'system_alerts' });
  await confirmed(a, { type: 'agent_status' });
  await confirmed(b, { type: 'epistemic_updates' });
  await confirmed(b, { type: 'system_alerts', filters: { severity: 'critical' } });
  await confirmed(b, { type: 'pattern_alerts', agent_id: 'agent_2' });
  await confirmed(c, { type: 'epistemic_updates' });
  await confirmed(c, { type: 'system_alerts' });
  await confirmed(c, { type: 'prediction_updates', agent_id: 'agent_2' });

  assert.equal(await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.5)), 2); // a, b
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_2', epistemic('agent_2', 0.5)), 2); // b, c
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_3', epistemic('agent_3', 0.5)), 1); // b
  assert.equal(await s.server.broadcastSystemAlert('maintenance', 'm', 'info'), 2); // a, c
  assert.equal(await s.server.broadcastSystemAlert('outage', 'o', 'critical'), 3);
  assert.equal(await s.server.broadcastPatternAlert('agent_2', { pattern_name: 'p' }), 1); // b
  assert.equal(await s.server.broadcastPatternAlert('agent_1', { pattern_name: 'p' }), 0);
  assert.equal(await s.server.broadcastPredictionUpdate('agent_2', { prediction_type: 'x' }), 1); // c
  assert.equal(await s.server.broadcastAgentStatusChange('agent_9', 'stopped'), 1); // a
  assert.equal(await s.server.sendUserNotification('a', 'n', 'm'), 1);

  await a.flush();
  await b.flush();
  await c.flush();
  assert.equal(a.takeEvents().length, 5);
  assert.equal(b.takeEvents().length, 5);
  assert.equal(c.takeEvents().length, 4);
});

// ---- publishing on the socket ----------------------------------------------

test('socket publish: single event and batch, confirmed with ids and per-stream offsets', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const sub = await s.connect({ sub: 'watcher', ...RESEARCHER }, { session: 'w' });
  await confirmed(sub, { type: 'epistemic_updates' });
  await confirmed(sub, { type: 'pattern_alerts', agent_id: 'agent_1' });
  await confirmed(sub, { type: 'system_alerts' });
  const dev = await s.connect({ sub: 'dev', ...DEVELOPER }, { session: 'd' });

  dev.send({ type: 'publish', id: 'pub-1', data: epistemicStateEvent('agent_1', 0.6) });
  const one = await dev.next(['publish_confirmed', 'error']);
  assert.equal(one.type, 'publish_confirmed', JSON.stringify(one));
  assert.equal(one.id, 'pub-1');
  assert.match(one.timestamp, ISO_UTC);
  assert.equal(one.data.accepted, 1);
  assert.equal(one.data.events.length, 1);
  const ref = one.data.events[0]!;
  assert.deepEqual(Object.keys(ref).sort(), ['epoch', 'event_id', 'offset']);
  assert.match(ref.event_id, UUID);
  assert.equal(ref.offset, 1);
  assert.equal(typeof ref.epoch, 'string');
  assert.ok(ref.epoch.length > 0);

  const got = await sub.next('epistemic_update');
  assert.equal(got.event_id, ref.event_id);
  assert.equal(got.offset, 1);
  assert.equal(got.epoch, ref.epoch);
  assert.equal(got.agent_id, 'agent_1');
  assert.equal(got.data?.['confidence_level'], 0.6);

  dev.send({
    type: 'publish',
    data: [
      epistemicStateEvent('agent_2', 0.1),
      { type: 'pattern_alert', agent_id: 'agent_1', severity: 'high', data: { pattern_name: 'retry-loop', extra_field: [1, 2] } },
      epistemicStateEvent('agent_1', 0.2),
      { type: 'system_alert', alert_type: 'maintenance', message: 'soon' },
      epistemicStateEvent('agent_2', 0.3),
    ],
  });
  const batch = await dev.next(['publish_confirmed', 'error']);
  assert.equal(batch.type, 'publish_confirmed', JSON.stringify(batch));
  assert.equal(batch.data.accepted, 5);
  const offsets = batch.data.events.map((e) => e.offset);
  assert.deepEqual(offsets, [1, 2, 3, 1, 2]); // agent_2: 1,2; agent_1: 2,3; system: 1
  assert.equal(new Set(batch.data.events.map((e) => e.event_id)).size, 5);
  assert.equal(batch.data.events[1]?.epoch, ref.epoch); // same agent_1 stream
  assert.equal(batch.data.events[2]?.epoch, ref.epoch);
  assert.equal(batch.data.events[4]?.epoch, batch.data.events[0]?.epoch);

  await sub.flush();
  const events = sub.takeEvents();
  assert.deepEqual(
    events.map((m) => [m.type, m.agent_id ?? null, m.offset]),
    [
      ['epistemic_update', 'agent_2', 1],
      ['pattern_alert', 'agent_1', 2],
      ['epistemic_update', 'agent_1', 3],
      ['system_alert', null, 1],
      ['epistemic_update', 'agent_2', 2],
    ],
  );
  assert.deepEqual(
    events.map((m) => m.event_id),
    batch.data.events.map((e) => e.event_id),
  );
  assert.deepEqual(events[1]!.data?.['extra_field'], [1, 2], 'unknown fields are kept');
  assert.equal(events[1]!.alert_type, 'pattern_detected');
  assert.equal(events[3]!.severity, 'info');

  // In-process publishing continues the same stream.
  assert.equal(await s.server.broadcastAgentStatusChange('agent_1', 'idle'), 0);
  const [next] = await s.server.publish(epistemicStateEvent('agent_1', 0.9));
  assert.equal(next!.offset, 5);
  const ev = await sub.next('epistemic_update');
  assert.equal(ev.offset, 5);
});

test('socket publish: a batch with one bad event publishes nothing', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const sub = await s.connect({ sub: 'watcher', ...RESEARCHER }, { session: 'w' });
  await confirmed(sub, { type: 'epistemic_updates' });
  const dev = await s.connect({ sub: 'dev', ...DEVELOPER }, { session: 'd' });
  const e = await expectError(
    dev,
    {
      type: 'publish',
      id: 'bad-batch',
      data: [
        epistemicStateEvent('agent_1', 0.1),
        epistemicStateEvent('agent_1', 0.2),
        { type: 'epistemic_update', agent_id: 'agent_1', data: { uncertainty_score: -1 } },
      ],
    },
    'VALIDATION_ERROR',
  );
  assert.equal(e.id, 'bad-batch');
  assert.match(e.message, /events\[2\]\.data\.uncertainty_score/);
  await expectError(dev, { type: 'publish', data: [epistemicStateEvent('agent_1', 0.1), { type: 'bogus_event', agent_id: 'agent_1' }] }, 'VALIDATION_ERROR');
  await expectError(dev, { type: 'publish', data: [] }, 'VALIDATION_ERROR');

  dev.send({ type: 'publish', data: epistemicStateEvent('agent_1', 0.77) });
  const ok = await dev.next(['publish_confirmed', 'error']);
  assert.equal(ok.type, 'publish_confirmed');
  assert.equal(ok.data.events[0]?.offset, 1, 'the refused batches must not have used offsets');
  await sub.flush();
  const events = sub.takeEvents();
  assert.deepEqual(
    events.map((m) => m.data?.['confidence_level']),
    [0.77],
  );
});

test('offsets increase by 1 per agent stream, across event types and publishers', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(ADMIN);
  for (const type of ['epistemic_updates', 'pattern_alerts', 'prediction_updates', 'agent_status']) await confirmed(c, { type });
  await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.1));
  await s.server.broadcastEpistemicUpdate('agent_2', epistemic('agent_2', 0.1));
  await s.server.broadcastPatternAlert('agent_1', { pattern_name: 'x' });
  await s.server.broadcastPredictionUpdate('agent_2', { prediction_type: 'y' });
  await s.server.broadcastAgentStatusChange('agent_1', 'running');
  await s.server.publish([epistemicStateEvent('agent_1', 0.2), epistemicStateEvent('agent_3', 0.2)]);
  await c.flush();
  const events = c.takeEvents();
  const byAgent = new Map<string, number[]>();
  for (const m of events) byAgent.set(String(m.agent_id), [...(byAgent.get(String(m.agent_id)) ?? []), m.offset]);
  assert.deepEqual(Object.fromEntries(byAgent), { agent_1: [1, 2, 3, 4], agent_2: [1, 2], agent_3: [1] });
  for (const agent of ['agent_1', 'agent_2']) {
    const epochs = new Set(events.filter((m) => m.agent_id === agent).map((m) => m.epoch));
    assert.equal(epochs.size, 1, `one epoch per stream for ${agent}`);
  }
});

// ---- cleanup ---------------------------------------------------------------

test("a closed client's subscriptions disappear from /ws/health", { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const keep = await s.connect({ sub: 'keep', ...RESEARCHER }, { session: 'keep' });
  await confirmed(keep, { type: 'epistemic_updates', agent_id: 'agent_9' });
  const c = await s.connect({ sub: 'gone', ...RESEARCHER }, { session: 'gone' });
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1' });
  await confirmed(c, { type: 'pattern_alerts' });
  await confirmed(c, { type: 'system_alerts' });
  const before = await health(s);
  assert.equal(before.total_subscriptions, 4);
  assert.equal(before.active_connections, 2);
  assert.equal(before.active_users, 2);
  assert.equal(before.agent_subscribers, 2);

  c.ws.close();
  await c.closeEvent;
  await connectionCount(s.server, 1, 3000, 'the closed client to leave');
  const after = await health(s);
  assert.equal(after.total_subscriptions, 1);
  assert.equal(after.active_connections, 1);
  assert.equal(after.active_users, 1);
  assert.equal(after.agent_subscribers, 1);
  assert.equal(after.total_connections_ever, 2);

  // A terminated (not cleanly closed) client is cleaned up too.
  keep.terminate();
  await connectionCount(s.server, 0, 3000, 'the terminated client to leave');
  const last = await health(s);
  assert.equal(last.total_subscriptions, 0);
  assert.equal(last.active_connections, 0);
  assert.equal(last.status, 'idle');
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_9', epistemic('agent_9', 0.5)), 0);
});
