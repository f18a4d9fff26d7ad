// The client SDK (escai-realtime/client) against a real server and real
// sockets: connect, state events, typed handlers, pings, request/reply,
// reconnect without loss or duplicate (session resume and `since`), server
// restart (recovery_failed), token refresh and revocation, terminal closes,
// close(), and the backoff function.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { EscaiClient, EscaiClientError, fullJitterBackoff, type ClientEvents, type ClientOptions } from '../src/client/index.js';
import { signToken } from '../src/auth/jwt.js';
import { resolveConfig } from '../src/config/config.js';
import { createLogger } from '../src/log.js';
import { EscaiServer } from '../src/server/server.js';
import {
  connectionCount,
  epistemic,
  epistemicStateEvent,
  eventually,
  health,
  SECRET,
  settle,
  startServer,
  TestClient,
  tokenExp,
  stateReached,
  type TestServer,
} from './helpers.js';

type Name = keyof ClientEvents;
type Entry = { [K in Name]: { name: K; payload: ClientEvents[K] } }[Name];

/** Builds a client with fast reconnects, records every event it emits, and closes it when the test ends. */
function makeClient(t: TestContext, options: Partial<ClientOptions> & { url: string }) {
  const client = new EscaiClient({ WebSocket, minReconnectDelay: 20, maxReconnectDelay: 200, ...options });
  t.after(() => client.close());
  const log: Entry[] = [];
  const names: Name[] = [
    'state',
    'connecting',
    'connected',
    'disconnected',
    'recovery_failed',
    'event',
    'epistemic_update',
    'pattern_alert',
    'prediction_update',
    'system_alert',
    'agent_status_change',
    'user_notification',
    'error',
  ];
  for (const name of names) client.on(name, (payload: unknown) => log.push({ name, payload } as Entry));
  const of = <K extends Name>(name: K): Array<ClientEvents[K]> => log.filter((e) => e.name === name).map((e) => e.payload as ClientEvents[K]);
  return { client, log, of };
}

/** A getToken that counts its calls; `make(n)` builds the n-th token (1-based). */
function tokenSource(make: (n: number) => Promise<string>) {
  const source = {
    calls: 0,
    getToken: async () => {
      source.calls++;
      return make(source.calls);
    },
  };
  return source;
}

/** The server-side connections of one SDK session. */
function connsOf(server: EscaiServer, sessionId: string) {
  return [...server.connections.values()].filter((c) => c.sessionId === sessionId);
}

/** Round-trips a ping through the SDK: frames to one socket keep their order, so every event sent before has arrived. */
async function flush(client: EscaiClient): Promise<void> {
  const reply = await client.request('ping');
  assert.equal(reply.type, 'pong');
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

// ---------------------------------------------------------------------------

test('constructor: needs a token or getToken; starts disconnected; no socket before connect()', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  assert.throws(() => new EscaiClient({ url: s.wsUrl, WebSocket }), TypeError);
  const { client } = makeClient(t, { url: s.wsUrl, token: await s.token({ roles: ['researcher'] }) });
  assert.equal(client.state, 'disconnected');
  assert.match(client.sessionId, /^[A-Za-z0-9_.:-]{1,128}$/);
  await settle(50);
  assert.equal((await health(s)).total_connections_ever, 0);
  await assert.rejects(client.request('ping'), (err: unknown) => err instanceof EscaiClientError && err.code === 'NOT_CONNECTED');
});

test('connects with a fixed token (http:// base URL, chosen session id): state events and the connected payload', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const { client, of } = makeClient(t, { url: `${s.url}/`, sessionId: 'sdk-fixed-1', token: await s.token({ sub: 'alice', roles: ['researcher'] }) });
  client.connect();
  await stateReached(client, 'connected', 3000, 'connected');
  assert.deepEqual(of('state'), [
    { oldState: 'disconnected', newState: 'connecting' },
    { oldState: 'connecting', newState: 'connected' },
  ]);
  assert.deepEqual(of('connecting'), [{ attempt: 0 }]);
  const [conn] = connsOf(s.server, 'sdk-fixed-1');
  assert.ok(conn, 'the server holds a connection with the chosen session id');
  assert.deepEqual(of('connected'), [{ connectionId: conn.id, sessionId: 'sdk-fixed-1', userId: 'alice', resumed: false }]);
  assert.equal(client.sessionId, 'sdk-fixed-1');
  assert.deepEqual(of('disconnected'), []);
  // connect() while connected is a no-op.
  client.connect();
  await flush(client);
  assert.equal((await health(s)).total_connections_ever, 1);
});

test('getToken is called for every (re)connect; disconnected carries the close code and reason; state events in order', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const tokens = tokenSource((n) => s.token({ sub: `user_${n}`, roles: ['researcher'] }));
  const { client, of } = makeClient(t, { url: s.wsUrl, getToken: tokens.getToken });
  client.connect();
  await eventually(() => of('connected').length === 1, 3000, 'first connect');

  // The server closes with a code and a reason: the SDK reports both and reconnects.
  connsOf(s.server, client.sessionId)[0]!.close('GOING_AWAY', 'maintenance window');
  await eventually(() => of('connected').length === 2, 3000, 'reconnect after 1001');
  assert.deepEqual(of('disconnected')[0], { code: 1001, reason: 'maintenance window', willReconnect: true });

  // A dropped TCP connection (no close frame): 1006.
  connsOf(s.server, client.sessionId)[0]!.terminate();
  await eventually(() => of('connected').length === 3, 3000, 'reconnect after a drop');
  assert.equal(of('disconnected')[1]?.code, 1006);
  assert.equal(of('disconnected')[1]?.willReconnect, true);

  assert.equal(tokens.calls, 3, 'one getToken call per connection attempt');
  // Each connection used the token getToken returned for it.
  assert.deepEqual(
    of('connected').map((c) => c.userId),
    ['user_1', 'user_2', 'user_3'],
  );
  assert.deepEqual(
    of('state').map((e) => `${e.oldState}>${e.newState}`),
    [
      'disconnected>connecting',
      'connecting>connected',
      'connected>disconnected',
      'disconnected>connecting',
      'connecting>connected',
      'connected>disconnected',
      'disconnected>connecting',
      'connecting>connected',
    ],
  );
  const attempts = of('connecting').map((c) => c.attempt);
  assert.equal(attempts.length, 3);
  assert.equal(attempts[0], 0);
  assert.ok(attempts[1]! >= 1 && attempts[2]! >= 1, `reconnect attempts are counted: ${attempts}`);
  assert.equal(client.state, 'connected');
});

test('typed handlers get only their event type; the generic handler gets all, in publish order', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const { client, of } = makeClient(t, { url: s.wsUrl, token: await s.token({ sub: 'user_1', roles: ['researcher'] }) });
  client.connect();
  const subs = await Promise.all([
    client.subscribe('epistemic_updates', { agentId: 'agent_1' }),
    client.subscribe('pattern_alerts', { agentId: 'agent_1' }),
    client.subscribe('prediction_updates', { agentId: 'agent_1' }),
    client.subscribe('agent_status', { agentId: 'agent_1' }),
    client.subscribe('system_alerts'),
  ]);
  assert.deepEqual(subs[0], { type: 'epistemic_updates', agentId: 'agent_1', filters: null });
  assert.deepEqual(subs[4], { type: 'system_alerts', agentId: null, filters: null });

  await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.9));
  await s.server.broadcastPatternAlert('agent_1', { pattern_name: 'loop', pattern_type: 'feedback_loop' }, { severity: 'high' });
  await s.server.broadcastPredictionUpdate('agent_1', { prediction_type: 'success', confidence: 0.7 });
  await s.server.broadcastAgentStatusChange('agent_1', 'running');
  await s.server.broadcastSystemAlert('maintenance', 'at noon', 'warning');
  await s.server.sendUserNotification('user_1', 'report_ready', 'your report');
  await s.server.sendUserNotification('someone_else', 'report_ready', 'not yours');
  await eventually(() => of('event').length >= 6, 3000, 'six events');
  await flush(client);

  const all = of('event');
  assert.deepEqual(
    all.map((e) => e.type),
    ['epistemic_update', 'pattern_alert', 'prediction_update', 'agent_status_change', 'system_alert', 'user_notification'],
  );
  for (const type of ['epistemic_update', 'pattern_alert', 'prediction_update', 'system_alert', 'agent_status_change', 'user_notification'] as const) {
    const got = of(type);
    assert.equal(got.length, 1, `${type} handler called once`);
    assert.equal(got[0]!.type, type);
    assert.equal(
      got[0],
      all.find((e) => e.type === type),
      'typed and generic handlers see the same object',
    );
  }
  for (const e of all) {
    assert.match(e.event_id, /^[0-9a-f-]{36}$/);
    assert.equal(typeof e.epoch, 'string');
  }
  // agent_1's four event types share one stream.
  assert.deepEqual(
    all.slice(0, 4).map((e) => e.offset),
    [1, 2, 3, 4],
  );
  assert.equal(of('pattern_alert')[0]!.severity, 'high');
  assert.equal(of('agent_status_change')[0]!.status, 'running');
  assert.equal(of('system_alert')[0]!.message, 'at noon');
  assert.equal(of('user_notification')[0]!.message, 'your report');
  assert.deepEqual(client.position('agent:agent_1', all[3]!.type), { offset: 4, epoch: all[0]!.epoch });
  assert.equal(client.position('system', 'system_alert')?.offset, 1);
});

test('answers JSON pings: with protocol auto-pong off, the connection outlives heartbeat interval + timeout many times over', {
  timeout: 60_000,
}, async (t) => {
  const s = await startServer(t, { heartbeatInterval: 0.2, heartbeatTimeout: 0.2 });
  // Without ws's automatic answer to ping frames, only the SDK's JSON pong keeps the connection alive.
  class NoAutoPongWebSocket extends WebSocket {
    constructor(url: string) {
      super(url, { autoPong: false });
    }
  }
  const { client, of } = makeClient(t, { url: s.wsUrl, token: await s.token({ roles: ['researcher'] }), WebSocket: NoAutoPongWebSocket });
  client.connect();
  await stateReached(client, 'connected', 3000, 'connected');
  const before = await health(s);

  // Control: a client that answers nothing is cut off by the server within that time.
  const silent = await TestClient.open(`${s.wsUrl}/ws/monitor/silent?token=${await s.token({ sub: 'silent', roles: ['researcher'] })}`, { autoPong: false });
  t.after(() => silent.terminate());
  await Promise.race([silent.closeEvent, sleep(3000).then(() => assert.fail('a silent client should be terminated by the heartbeat'))]);

  await sleep(1200); // 3 × (interval + timeout)
  assert.equal(client.state, 'connected');
  assert.deepEqual(of('disconnected'), []);
  assert.equal(of('connected').length, 1);
  const after = await health(s);
  assert.equal(after.active_connections, 1);
  assert.ok(
    after.messages_received - before.messages_received >= 4,
    `the SDK answered the JSON pings (${after.messages_received - before.messages_received} inbound frames)`,
  );
});

test('request/reply: publish() with a developer token; forbidden publish and subscribe reject with EscaiClientError', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const dev = makeClient(t, { url: s.wsUrl, token: await s.token({ sub: 'dev', roles: ['developer'] }) });
  dev.client.connect();
  await dev.client.subscribe('epistemic_updates', { agentId: 'agent_1' });
  const result = await dev.client.publish(epistemicStateEvent('agent_1', 0.8));
  assert.equal(result.accepted, 1);
  const [ref] = result.events;
  assert.equal(ref?.offset, 1);
  await eventually(() => dev.of('epistemic_update').length === 1, 3000, 'own event delivered');
  assert.equal(dev.of('epistemic_update')[0]!.event_id, ref.event_id);
  const batch = await dev.client.publish([
    { type: 'agent_status_change', agent_id: 'agent_1', status: 'idle' },
    { type: 'agent_status_change', agent_id: 'agent_1', status: 'running' },
  ]);
  assert.deepEqual(
    batch.events.map((e) => e.offset),
    [2, 3],
  );
  await assert.rejects(
    dev.client.publish({ type: 'epistemic_update', agent_id: 'agent_1', data: { confidence_level: 2 } }),
    (err: unknown) => err instanceof EscaiClientError && err.code === 'VALIDATION_ERROR',
  );

  const viewer = makeClient(t, { url: s.wsUrl, token: await s.token({ sub: 'viewer', roles: ['viewer'], permissions: ['agent:agent_1:monitor'] }) });
  viewer.client.connect();
  await stateReached(viewer.client, 'connected', 3000, 'viewer connected');
  await assert.rejects(
    viewer.client.publish({ type: 'system_alert', alert_type: 'x', message: 'y' }),
    (err: unknown) => err instanceof EscaiClientError && err.code === 'PERMISSION_DENIED',
  );
  const denied = await viewer.client.subscribe('epistemic_updates', { agentId: 'agent_2' }).then(
    () => assert.fail('subscribe to a forbidden agent must reject'),
    (err: unknown) => err,
  );
  assert.ok(denied instanceof EscaiClientError, `an EscaiClientError, got ${String(denied)}`);
  assert.equal(denied.code, 'AGENT_ACCESS_DENIED');
  assert.match(denied.message, /agent_2/);
  // The refused subscription is not kept (nor retried); the allowed one works.
  await viewer.client.subscribe('epistemic_updates', { agentId: 'agent_1' });
  const list = await viewer.client.request('get_subscriptions');
  assert.deepEqual(list.data.subscriptions, [{ type: 'epistemic_updates', agent_id: 'agent_1', filters: null }]);
  await assert.rejects(viewer.client.request('no_such_type'), (err: unknown) => err instanceof EscaiClientError && err.code === 'UNKNOWN_MESSAGE_TYPE');
});

/**
 * A producer publishes `total` events on agent_1 while the server destroys the
 * client's TCP connection twice; each drop is followed at once by events
 * published while the client is away.
 */
async function dropMidStream(t: TestContext, s: TestServer, total = 300) {
  const { client, of } = makeClient(t, { url: s.wsUrl, getToken: () => s.token({ roles: ['researcher'] }) });
  client.connect();
  await client.subscribe('epistemic_updates', { agentId: 'agent_1' });
  const dropAt = new Set([Math.floor(total / 3), Math.floor((2 * total) / 3)]);
  for (let i = 1; i <= total; i++) {
    if (dropAt.has(i)) {
      // The SDK reconnected, and the server let go of the connection it dropped before.
      await stateReached(client, 'connected', 5000, 'client back before the next drop');
      await connectionCount(s.server, 1, 5000, 'client back before the next drop');
      connsOf(s.server, client.sessionId)[0]!.terminate();
    }
    await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.5, { seq: i }));
    if (i % 5 === 0 && !dropAt.has(i - 1) && !dropAt.has(i - 2)) await sleep(1);
  }
  await eventually(() => of('epistemic_update').length >= total, 10_000, `all ${total} events`).catch((err: Error) => {
    const seen = new Set(of('epistemic_update').map((e) => e.offset));
    const missing = range(1, total).filter((o) => !seen.has(o));
    throw new Error(
      `${err.message}: got ${seen.size}, missing offsets [${missing}], drops before offsets [${[...dropAt]}], connected ${JSON.stringify(of('connected').map((c) => c.resumed))}`,
    );
  });
  await flush(client);
  const got = of('epistemic_update');
  assert.equal(got.length, total, 'no duplicate');
  assert.deepEqual(
    got.map((e) => e.offset),
    range(1, total),
    'every event exactly once, in offset order',
  );
  assert.deepEqual(
    got.map((e) => e.data?.['seq']),
    range(1, total),
  );
  assert.equal(new Set(got.map((e) => e.event_id)).size, total);
  assert.equal(of('disconnected').length, 2, 'two drops');
  assert.ok(of('disconnected').every((d) => d.willReconnect));
  assert.deepEqual(of('recovery_failed'), []);
  return { client, of };
}

test('dropped TCP connection mid-stream: the SDK reconnects, the session resumes, every event exactly once in order', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const { of } = await dropMidStream(t, s);
  assert.deepEqual(
    of('connected').map((c) => c.resumed),
    [false, true, true],
  );
});

test('dropped TCP connection mid-stream without session resume (sessionTtl 0): the SDK re-subscribes with since, no loss, no duplicate', {
  timeout: 60_000,
}, async (t) => {
  const s = await startServer(t, { sessionTtl: 0 });
  const { client, of } = await dropMidStream(t, s);
  assert.deepEqual(
    of('connected').map((c) => c.resumed),
    [false, false, false],
  );
  // Exactly one subscription on the server: re-subscribing did not duplicate it.
  const list = await client.request('get_subscriptions');
  assert.equal(list.data.subscriptions.length, 1);
});

test('sessionTtl 0, drop before the first event: events published while away are delivered (or recovery_failed is emitted), never silently lost', {
  timeout: 60_000,
}, async (t) => {
  const s = await startServer(t, { sessionTtl: 0 });
  const { client, of } = makeClient(t, { url: s.wsUrl, getToken: () => s.token({ roles: ['researcher'] }) });
  client.connect();
  await client.subscribe('epistemic_updates', { agentId: 'agent_1' });
  connsOf(s.server, client.sessionId)[0]!.terminate();
  for (let i = 1; i <= 5; i++) await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.5, { seq: i }));
  const resubscribed = async () => {
    if (of('connected').length !== 2) return false;
    const list = await client.request('get_subscriptions').catch(() => undefined);
    return list?.data.subscriptions.length === 1;
  };
  await eventually(resubscribed, 5000, 'reconnected and re-subscribed');
  await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.5, { seq: 6 }));
  await eventually(() => of('epistemic_update').some((e) => e.offset === 6), 3000, 'live event after the reconnect');
  await flush(client);
  const offsets = of('epistemic_update').map((e) => e.offset);
  assert.ok(
    offsets.join() === '1,2,3,4,5,6' || of('recovery_failed').length > 0,
    `events 1-5 were published while the client was away; received offsets [${offsets}] and no recovery_failed: ` +
      'the subscription_confirmed position (offset 0) was not used as `since` on re-subscribe',
  );
});

test('server restart with the memory engine: the SDK reconnects and emits recovery_failed (epoch changed)', { timeout: 60_000 }, async (t) => {
  const build = (port: number) => {
    const config = resolveConfig({ port, jwtSecret: SECRET, logLevel: 'silent', shutdownGrace: 1 });
    return new EscaiServer({ config, logger: createLogger(config.logLevel) });
  };
  const a = build(0);
  const { port } = await a.listen();
  let b: EscaiServer | undefined;
  const attempts: number[] = [];
  const token = await signToken(SECRET, { sub: 'user_1', roles: ['researcher'] });
  const { client: sdk, of } = makeClient(t, {
    url: a.url,
    getToken: () => token,
    backoff: (attempt, min, max) => {
      attempts.push(attempt);
      return fullJitterBackoff(attempt, min, max);
    },
  });
  t.after(async () => {
    sdk.close();
    await a.close();
    await b?.close();
  });

  sdk.connect();
  await sdk.subscribe('epistemic_updates', { agentId: 'agent_1' });
  for (let i = 0; i < 3; i++) await a.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.5));
  await eventually(() => of('epistemic_update').length === 3, 3000, 'three events on server A');
  const epochA = of('epistemic_update')[0]!.epoch;

  await a.close();
  await eventually(() => of('disconnected').length >= 1, 3000, 'disconnected from A');
  assert.equal(of('disconnected')[0]!.code, 1001);
  assert.equal(of('disconnected')[0]!.willReconnect, true);
  await sleep(300); // a few refused attempts while nothing listens

  b = build(port);
  await b.listen();
  await eventually(() => of('recovery_failed').length === 1, 5000, 'recovery_failed');
  assert.deepEqual(of('recovery_failed')[0]!.subscription, { type: 'epistemic_updates', agentId: 'agent_1', filters: null });
  assert.equal(typeof of('recovery_failed')[0]!.reason, 'string');
  assert.equal(sdk.state, 'connected');
  assert.equal(of('connected').at(-1)!.resumed, false);
  assert.equal(of('disconnected').filter((d) => !d.willReconnect).length, 0);

  // Backoff attempts during the outage count up from 0 without a gap.
  assert.ok(attempts.length >= 2, `several reconnect attempts: ${attempts}`);
  assert.deepEqual(attempts, range(0, attempts.length - 1));

  // The new epoch's offset 1 is not mistaken for a duplicate of A's offsets 1-3.
  await b.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.5));
  await eventually(() => of('epistemic_update').length === 4, 3000, 'event on server B');
  const fresh = of('epistemic_update')[3]!;
  assert.equal(fresh.offset, 1);
  assert.notEqual(fresh.epoch, epochA);
  assert.deepEqual(sdk.position('agent:agent_1', 'epistemic_update'), { offset: 1, epoch: fresh.epoch });

  // A successful connection resets the backoff: the next drop starts again at attempt 0.
  const before = attempts.length;
  connsOf(b, sdk.sessionId)[0]!.terminate();
  await eventually(() => attempts.length > before, 3000, 'reconnect after a drop on B');
  assert.equal(attempts[before], 0);
});

test("token refresh: the SDK answers token_expiring via getToken and stays connected past the first token's exp", { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { tokenExpiryWarning: 2, tokenExpiryGrace: 0.5, clockTolerance: 0 });
  const tokens = tokenSource(() => s.token({ sub: 'user_1', roles: ['researcher'], expiresInSec: 3 }));
  const { client, of } = makeClient(t, { url: s.wsUrl, getToken: tokens.getToken });
  client.connect();
  await client.subscribe('epistemic_updates', { agentId: 'agent_1' });
  const firstExp = tokenExp(await s.token({ expiresInSec: 3 })); // the first token's exp, or a second later

  // Control: a fixed token cannot be refreshed: the server closes with 4001, and the client stops there (reconnecting
  // with the same expired token could only be refused; the Python watcher decides the same).
  const fixed = makeClient(t, { url: s.wsUrl, token: await s.token({ sub: 'user_2', roles: ['researcher'], expiresInSec: 3 }) });
  fixed.client.connect();

  await sleep(Math.max(0, firstExp * 1000 + 500 - Date.now()) + 600);
  assert.ok(tokens.calls >= 2, `getToken was asked for a refresh (${tokens.calls} calls)`);
  assert.deepEqual(of('disconnected'), [], "no disconnect across the token's exp");
  assert.deepEqual(of('error'), []);
  assert.equal(of('connected').length, 1);
  assert.equal(client.state, 'connected');
  await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.5));
  await eventually(() => of('epistemic_update').length === 1, 3000, 'events after the first token expired');

  await stateReached(fixed.client, 'closed', 3000, 'fixed-token client stops');
  assert.equal(fixed.of('disconnected').length, 1);
  assert.equal(fixed.of('disconnected')[0]?.code, 4001);
  assert.equal(fixed.of('disconnected')[0]?.willReconnect, false);
  assert.match(fixed.client.closeReason ?? '', /expir/i);
});

test('revoked permission: after a refresh without agent:agent_1:monitor, agent_1 events stop and agent_2 events continue', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { tokenExpiryWarning: 2, tokenExpiryGrace: 0.5, clockTolerance: 0 });
  const tokens = tokenSource((n) =>
    s.token({
      sub: 'user_1',
      roles: ['viewer'],
      permissions: n === 1 ? ['agent:agent_1:monitor', 'agent:agent_2:monitor'] : ['agent:agent_2:monitor'],
      expiresInSec: 3,
    }),
  );
  const { client, of } = makeClient(t, { url: s.wsUrl, getToken: tokens.getToken });
  client.connect();
  await client.subscribe('epistemic_updates', { agentId: 'agent_1' });
  await client.subscribe('epistemic_updates', { agentId: 'agent_2' });
  await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.5));
  await s.server.broadcastEpistemicUpdate('agent_2', epistemic('agent_2', 0.5));
  await eventually(() => of('epistemic_update').length === 2, 3000, 'both agents before the refresh');

  await eventually(() => tokens.calls >= 2, 4000, 'refresh asked for');
  await eventually(
    async () => (await client.request('get_subscriptions')).data.subscriptions.length === 1,
    3000,
    'agent_1 subscription removed by the refresh',
  );
  for (let i = 0; i < 3; i++) await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.5));
  await s.server.broadcastEpistemicUpdate('agent_2', epistemic('agent_2', 0.5));
  await eventually(() => of('epistemic_update').some((e) => e.agent_id === 'agent_2' && e.offset === 2), 3000, 'agent_2 event after the refresh');
  await flush(client);
  assert.deepEqual(
    of('epistemic_update').map((e) => `${e.agent_id}#${e.offset}`),
    ['agent_1#1', 'agent_2#1', 'agent_2#2'],
  );
  assert.deepEqual(of('disconnected'), []);
  assert.equal(client.state, 'connected');
});

test('terminal close: a token without websocket:connect (HTTP 403) stops the client for good and says why', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const tokens = tokenSource(() => s.token({ sub: 'user_1', permissions: ['websocket:subscribe'] }));
  const { client, of } = makeClient(t, { url: s.wsUrl, getToken: tokens.getToken });
  const pending = client.subscribe('epistemic_updates', { agentId: 'agent_1' }).then(
    () => undefined,
    (err: unknown) => err,
  );
  client.connect();
  await stateReached(client, 'closed', 3000, 'closed');
  assert.deepEqual(
    of('disconnected').map((d) => d.willReconnect),
    [false],
  );
  assert.match(of('disconnected')[0]!.reason, /403/);
  assert.match(client.closeReason ?? '', /403/);
  assert.deepEqual(
    of('state').map((e) => `${e.oldState}>${e.newState}`),
    ['disconnected>connecting', 'connecting>closed'],
  );
  const pendingErr = await pending;
  assert.ok(pendingErr instanceof EscaiClientError && pendingErr.code === 'CLOSED', `a pending subscribe() rejects with CLOSED, got ${String(pendingErr)}`);
  await sleep(500); // > maxReconnectDelay
  assert.equal(tokens.calls, 1, 'no further connection attempt');
  assert.equal(of('connecting').length, 1);
  assert.equal((await health(s)).total_connections_ever, 0);
  assert.throws(() => client.connect());
});

test('terminal close: a refresh with another sub (close 4003) stops the client; no reconnect', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { tokenExpiryWarning: 2, tokenExpiryGrace: 0.5, clockTolerance: 0 });
  const tokens = tokenSource((n) => s.token({ sub: n === 1 ? 'user_1' : 'mallory', roles: ['researcher'], expiresInSec: 3 }));
  const { client, of } = makeClient(t, { url: s.wsUrl, getToken: tokens.getToken });
  client.connect();
  await stateReached(client, 'closed', 5000, 'closed after the refresh');
  assert.deepEqual(of('disconnected'), [{ code: 4003, reason: of('disconnected')[0]!.reason, willReconnect: false }]);
  assert.ok(client.closeReason, 'closeReason says why');
  const calls = tokens.calls;
  assert.equal(calls, 2);
  await sleep(500);
  assert.equal(tokens.calls, calls, 'no reconnect after 4003');
  assert.equal((await health(s)).total_connections_ever, 1);
});

test('close() really closes: state closed, the server sees no connection, nothing reconnects, later calls reject', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const tokens = tokenSource(() => s.token({ roles: ['researcher'] }));
  const { client, of } = makeClient(t, { url: s.wsUrl, getToken: tokens.getToken });
  client.connect();
  await client.subscribe('epistemic_updates', { agentId: 'agent_1' });
  assert.equal((await health(s)).active_connections, 1);

  client.close();
  assert.equal(client.state, 'closed');
  assert.equal(of('state').at(-1)?.newState, 'closed');
  await connectionCount(s.server, 0, 3000, 'server-side connection gone');
  await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.5));
  await sleep(500); // > maxReconnectDelay
  const h = await health(s);
  assert.equal(h.active_connections, 0);
  assert.equal(h.total_connections_ever, 1, 'no reconnect after close()');
  assert.equal(tokens.calls, 1);
  assert.deepEqual(of('epistemic_update'), []);
  await assert.rejects(client.subscribe('agent_status', { agentId: 'agent_1' }), (err: unknown) => err instanceof EscaiClientError && err.code === 'CLOSED');
  await assert.rejects(client.request('ping'), EscaiClientError);
  assert.throws(() => client.connect());

  // close() while a reconnect is pending cancels it.
  const other = makeClient(t, { url: s.wsUrl, getToken: tokens.getToken });
  other.client.connect();
  await stateReached(other.client, 'connected', 3000, 'second client connected');
  other.client.on('disconnected', () => other.client.close());
  connsOf(s.server, other.client.sessionId)[0]!.terminate();
  await stateReached(other.client, 'closed', 3000, 'second client closed');
  await sleep(500);
  assert.equal((await health(s)).total_connections_ever, 2);
  assert.equal(other.of('connecting').length, 1);
});

test('fullJitterBackoff stays within [min/2, min(max, min·2^attempt)] and jitters', { timeout: 60_000 }, () => {
  // mulberry32: a small seeded PRNG, so a failure reproduces.
  let seed = 0x5eed1234;
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let r = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
  for (const [min, max] of [
    [20, 200],
    [250, 15_000],
    [100, 100],
    [1, 60_000],
  ] as const) {
    for (let attempt = 0; attempt <= 40; attempt++) {
      const ceiling = Math.min(max, min * 2 ** attempt);
      const seen = new Set<number>();
      for (let i = 0; i < 200; i++) {
        const d = fullJitterBackoff(attempt, min, max, random);
        assert.ok(Number.isFinite(d), `finite: ${d}`);
        assert.ok(d >= min / 2 && d <= ceiling, `attempt ${attempt}, min ${min}, max ${max}: ${d} outside [${min / 2}, ${ceiling}]`);
        seen.add(d);
      }
      if (ceiling - min / 2 >= 50) assert.ok(seen.size > 10, `jittered: ${seen.size} distinct delays at attempt ${attempt}`);
    }
  }
  // The extremes of random() hit the bounds.
  assert.equal(
    fullJitterBackoff(3, 20, 200, () => 0),
    10,
  );
  assert.ok(fullJitterBackoff(3, 20, 200, () => 0.999999) >= 159);
  assert.ok(fullJitterBackoff(50, 20, 200, () => 0.999999) <= 200);
});
