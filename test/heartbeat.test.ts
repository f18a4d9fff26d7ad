// Heartbeat and liveness: protocol pings plus the ESCAI JSON ping, silent
// clients terminated and cleaned up completely, counters exact under churn.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { api, connectionCount, eventually, health, settle, startServer, waitFor, type ConnectionsBody, type TestClient, type TestServer } from './helpers.js';

const FAST = { heartbeatInterval: 0.2, heartbeatTimeout: 0.2 } as const;

async function connectionIds(s: TestServer): Promise<string[]> {
  const admin = await s.token({ sub: 'admin', roles: ['admin'] });
  const r = await api<ConnectionsBody>(s, 'GET', '/ws/connections', { token: admin });
  assert.equal(r.status, 200);
  assert.equal(r.body.total, r.body.connections.length);
  return r.body.connections.map((c) => c.connection_id);
}

/**
 * Resolves once `c` has received `count` more of the server's JSON pings: that
 * many heartbeats have run (each checks every connection's liveness), however
 * loaded the machine. Time is counted by the server's ticks, not a sleep.
 */
function heartbeats(c: TestClient, count: number, timeoutMs = 20_000): Promise<void> {
  let seen = 0;
  const onMessage = (data: unknown) => {
    if ((JSON.parse(String(data)) as { type?: unknown }).type === 'ping') seen++;
  };
  c.ws.on('message', onMessage);
  return waitFor(
    () => seen >= count,
    (changed) => {
      c.ws.on('message', changed);
      return () => {
        c.ws.off('message', changed);
        c.ws.off('message', onMessage);
      };
    },
    timeoutMs,
    () => `${count} heartbeats (saw ${seen})`,
  );
}

/** A client that never answers protocol pings and never sends anything after `setup`. */
async function silentClient(s: TestServer, sub: string): Promise<{ client: TestClient; connectionId: string }> {
  const { client, hello } = await s.open({ sub, roles: ['researcher'] }, { session: 'silent', autoPong: false });
  return { client, connectionId: hello.connection_id };
}

test('the server sends JSON pings and protocol ping frames every interval', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, FAST);
  const c = await s.connect({ roles: ['viewer'] });
  let pingFrames = 0;
  c.ws.on('ping', () => pingFrames++);
  const first = await c.next('ping', 2000);
  assert.deepEqual(Object.keys(first).sort(), ['timestamp', 'type']);
  assert.match(first.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  const second = await c.next('ping', 2000);
  assert.ok(Date.parse(second.timestamp) >= Date.parse(first.timestamp));
  await eventually(() => pingFrames >= 2, 2000, 'protocol ping frames');
  const h = await health(s);
  assert.equal(h.heartbeat_running, true);
  assert.equal(h.heartbeat_interval, 0.2);
  assert.equal(h.heartbeat_timeout, 0.2);
});

test('connection_established announces the heartbeat interval', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, FAST);
  const { hello } = await s.open({ roles: ['viewer'] }, { session: 'hb' });
  assert.equal(hello.heartbeat_interval, 0.2);
});

test('a client that answers protocol pings stays connected well past interval + timeout', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, FAST);
  const c = await s.connect({ roles: ['viewer'] });
  let closed = false;
  void c.closeEvent.then(() => (closed = true));
  // Seven heartbeats (six intervals after the first: 1.2 s at the least, three times interval + timeout);
  // the client only answers pings (automatically), it sends nothing itself.
  await heartbeats(c, 7);
  assert.equal(closed, false);
  assert.equal(c.ws.readyState, c.ws.OPEN);
  assert.ok(c.events('ping').length >= 2, 'heartbeats kept coming');
  assert.equal((await c.request({ type: 'ping' }, 'pong')).type, 'pong');
  assert.equal((await health(s)).active_connections, 1);
});

test('a client answering only with JSON pongs (no protocol pongs) stays connected', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, FAST);
  const c = await s.connect({ roles: ['viewer'] }, { session: 'json-only', autoPong: false });
  c.ws.on('message', (data) => {
    if ((JSON.parse(data.toString()) as { type?: unknown }).type === 'ping') c.send({ type: 'pong' });
  });
  let closed = false;
  void c.closeEvent.then(() => (closed = true));
  await heartbeats(c, 7); // 1.2 s at the least, as above
  assert.equal(closed, false, 'any inbound frame counts as alive');
  assert.equal((await c.request({ type: 'ping' }, 'pong')).type, 'pong');
});

test('a silent client is terminated and every trace of it removed', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, FAST);
  const live = await s.connect({ sub: 'live', roles: ['researcher'] }, { session: 'live' });
  assert.equal((await live.subscribe({ type: 'agent_status', agent_id: 'agent_live' })).type, 'subscription_confirmed');
  await settle(50);
  const before = await health(s);
  assert.equal(before.active_connections, 1);

  const { client, connectionId } = await silentClient(s, 'ghost');
  // Subscribe (this frame counts as a sign of life), then never send or answer anything again.
  assert.equal((await client.subscribe({ type: 'epistemic_updates', agent_id: 'agent_ghost' })).type, 'subscription_confirmed');
  // The last frame the client ever sends: the server hears it no earlier than now.
  const lastFrameSent = Date.now();
  assert.equal((await client.subscribe({ type: 'system_alerts' })).type, 'subscription_confirmed');
  const during = await health(s);
  assert.equal(during.active_connections, 2);
  assert.equal(during.active_users, 2);
  assert.equal(during.total_subscriptions, 3);
  assert.equal(during.agent_subscribers, 2);
  assert.ok((await connectionIds(s)).includes(connectionId));

  let pingFrames = 0;
  client.ws.on('ping', () => pingFrames++);
  const { code } = await client.closeEvent;
  const silentFor = Date.now() - lastFrameSent;
  assert.equal(code, 1006, 'terminated, not closed politely');
  // The deadline is interval + timeout = 400 ms after the last frame the server heard, which it heard after
  // `lastFrameSent`: never earlier, however loaded the machine. Later is only a matter of load.
  assert.ok(silentFor >= 390, `terminated too early (${silentFor} ms after its last frame)`);
  assert.ok(silentFor < 10_000, `terminated too late (${silentFor} ms)`);
  assert.ok(pingFrames >= 1, 'it was pinged before being given up');

  const after = await health(s);
  assert.equal(after.active_connections, before.active_connections);
  assert.equal(after.active_users, before.active_users);
  assert.equal(after.total_subscriptions, before.total_subscriptions);
  assert.equal(after.agent_subscribers, before.agent_subscribers);
  assert.equal(after.total_connections_ever, before.total_connections_ever + 1);
  const ids = await connectionIds(s);
  assert.ok(!ids.includes(connectionId), 'no longer listed in /ws/connections');
  // The live client, which answers pings, is untouched and still gets its events.
  assert.equal(live.ws.readyState, live.ws.OPEN);
  assert.equal(await s.server.broadcastAgentStatusChange('agent_live', 'running'), 1);
  assert.equal((await live.next('agent_status_change')).status, 'running');
  assert.equal(await s.server.broadcastSystemAlert('maintenance', 'nobody listens'), 0, 'the dead subscription is gone from the index');
});

test('a terminated silent client frees its slot under maxConnections', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { ...FAST, maxConnections: 1 });
  const { client } = await silentClient(s, 'ghost');
  await client.closeEvent;
  const c = await s.connect({ sub: 'next', roles: ['viewer'] });
  assert.equal((await c.request({ type: 'ping' }, 'pong')).type, 'pong');
});

test('health counters stay exact under churn', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, FAST);
  const base = await health(s);
  assert.equal(base.heartbeat_running, true);
  assert.equal(base.active_connections, 0);

  // 4 connections that stay, 20 that churn. Users overlap across both groups.
  const keep: TestClient[] = [];
  for (let i = 0; i < 4; i++) {
    const c = await s.connect({ sub: `user_${i}`, roles: ['researcher'] }, { session: `keep_${i}` });
    assert.equal((await c.subscribe({ type: 'epistemic_updates', agent_id: `keep_agent_${i}` })).type, 'subscription_confirmed');
    keep.push(c);
  }
  const churn: TestClient[] = [];
  for (let i = 0; i < 20; i++) {
    const c = await s.connect({ sub: `user_${i % 8}`, roles: ['researcher'] }, { session: `churn_${i}` });
    assert.equal((await c.subscribe({ type: 'epistemic_updates', agent_id: `churn_agent_${i}` })).type, 'subscription_confirmed');
    assert.equal((await c.subscribe({ type: 'agent_status', agent_id: `keep_agent_${i % 4}` })).type, 'subscription_confirmed');
    assert.equal((await c.subscribe({ type: 'system_alerts' })).type, 'subscription_confirmed');
    churn.push(c);
  }
  const full = await health(s);
  assert.equal(full.active_connections, 24);
  assert.equal(full.active_users, 8);
  assert.equal(full.total_subscriptions, 4 + 20 * 3);
  assert.equal(full.agent_subscribers, 4 + 20);
  assert.equal(full.total_connections_ever, 24);

  for (const [i, c] of churn.entries()) {
    if (i % 2 === 0) c.ws.close(1000, 'bye');
    else c.ws.terminate();
  }
  await Promise.all(churn.map((c) => c.closeEvent));
  await connectionCount(s.server, 4, 3000, 'the churned connections to be removed');
  await heartbeats(keep[0]!, 3); // heartbeat sweeps run meanwhile; nothing may be counted twice
  const h = await health(s);
  assert.equal(h.active_connections, 4);
  assert.equal(h.active_users, 4, 'user_0..user_3 still have a connection; user_4..user_7 are gone');
  assert.equal(h.total_subscriptions, 4);
  assert.equal(h.agent_subscribers, 4);
  assert.equal(h.total_connections_ever, 24);
  assert.equal(h.heartbeat_running, true);
  assert.equal((await connectionIds(s)).length, 4);
  for (const c of keep) assert.equal(c.ws.readyState, c.ws.OPEN);
  // Delivery reflects the counters: only the kept subscriptions remain.
  assert.equal(await s.server.broadcastSystemAlert('maintenance', 'after churn'), 0);
});
