// A connection's lifecycle, seen from its one state door: every transition is
// reported to the node's hooks, in order, once; nothing after `closed`. Then
// the lifecycle at node level: a subscription confirmed mid-traffic starts at
// a position consistent with what follows it, and (on Redis) the node follows
// exactly the streams its subscriptions and users need.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { WebSocket, WebSocketServer } from 'ws';
import { Principal, DEFAULT_ROLES } from '../src/auth/permissions.js';
import { Connection, type ConnectionHooks, type StateChange } from '../src/server/connection/connection.js';
import { createCounters } from '../src/server/node/counters.js';
import { connectionCount, epistemic, eventsOf, eventually, startServer, TEST_ENGINE, TEST_REDIS_URL, type TestClient } from './helpers.js';

const LIMITS = {
  maxBufferedBytes: 1 << 20,
  rateLimit: 50,
  rateBurst: 100,
  rateLimitCloseAfter: 50,
  batchMaxMessages: 256,
  batchMaxBytes: 65536,
  batchMaxDelay: 0,
  publishRate: 10_000,
  publishBurst: 20_000,
};

/** A server-side `ws` socket and its client, both real, on port 0; the Connection under test wraps the server side. */
async function connectionPair(t: TestContext): Promise<{ conn: Connection; client: WebSocket; serverSide: WebSocket; changes: StateChange[] }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  client.on('error', () => {});
  const [serverSide] = (await once(wss, 'connection')) as [WebSocket];
  await once(client, 'open');
  t.after(() => {
    client.terminate();
    wss.close();
  });
  const changes: StateChange[] = [];
  const hooks: ConnectionHooks = {
    stateChanged: (_conn, change) => changes.push(change),
    message: async () => {},
    pong: () => {},
    socketError: () => {},
  };
  const principal = new Principal('u1', ['researcher'], [], DEFAULT_ROLES);
  const conn = new Connection(
    serverSide,
    { principal, sessionId: 's1', sessionStartedAt: Date.now(), holdsUserSlot: false, remoteAddress: '127.0.0.1', batch: false },
    LIMITS,
    createCounters(),
    hooks,
  );
  return { conn, client, serverSide, changes };
}

test('a server close goes open → closing → closed, each reported once; nothing is sent after', { timeout: 60_000 }, async (t) => {
  const { conn, client, changes } = await connectionPair(t);
  assert.equal(conn.state, 'open');
  const closed = once(client, 'close');
  conn.close('GOING_AWAY', 'bye');
  assert.equal(conn.state, 'closing');
  const [code] = (await closed) as [number];
  assert.equal(code, 1001);
  await eventually(() => conn.state === 'closed', 3000, 'the socket to close');
  assert.deepEqual(changes, [
    { oldState: 'open', newState: 'closing', reason: 'GOING_AWAY' },
    { oldState: 'closing', newState: 'closed' },
  ]);
  assert.equal(conn.send('{"type":"ping"}'), false, 'a closed connection sends nothing');
  conn.close('GOING_AWAY');
  conn.terminate();
  assert.equal(changes.length, 2, 'no transition after closed');
});

test('terminate goes straight to closed (the node removes the connection at once, before the socket reports it)', { timeout: 60_000 }, async (t) => {
  const { conn, serverSide, changes } = await connectionPair(t);
  // Listens after the connection's own handler: once this runs, the connection has seen the close event.
  const socketClosed = once(serverSide, 'close');
  conn.terminate();
  assert.equal(conn.state, 'closed');
  assert.deepEqual(changes, [{ oldState: 'open', newState: 'closed' }]);
  await socketClosed; // the socket's own close event arrives later and changes nothing
  assert.equal(changes.length, 1);
});

test('the peer closing is reported as open → closed', { timeout: 60_000 }, async (t) => {
  const { conn, client, changes } = await connectionPair(t);
  client.close(1000);
  await eventually(() => conn.state === 'closed', 3000, "the peer's close to arrive");
  assert.deepEqual(changes, [{ oldState: 'open', newState: 'closed' }]);
});

// The race this guards: events delivered between the subscription's registration and its position
// read are held for the connection, and may sit at or below the position read. It shows on Redis (the
// read is a round trip while pub/sub keeps delivering); both engines must pass it.
test('a subscription confirmed while its stream is busy starts at a consistent position: every event after the confirmed offset arrives, none at or before it', {
  timeout: 60_000,
}, async (t) => {
  const s = await startServer(t);
  let publishing = true;
  let published = 0;
  const producer = (async () => {
    while (publishing) {
      await s.server.broadcastEpistemicUpdate('busy', epistemic('busy', 0.5));
      published++;
      await new Promise(setImmediate); // the in-memory engine never waits on I/O: let sockets be served
    }
  })();
  t.after(async () => {
    publishing = false;
    await producer;
  });
  const clients: TestClient[] = [];
  for (let i = 0; i < 10; i++) clients.push(await s.connect({ sub: `watcher_${i}`, roles: ['researcher'] }, { session: `busy_${i}` }));
  const confirmations = await Promise.all(clients.map((c) => c.subscribe({ type: 'epistemic_updates', agent_id: 'busy' })));
  const target = published + 50;
  await eventually(() => published >= target, 10_000, 'more events after the subscriptions');
  publishing = false;
  await producer;
  for (const [i, c] of clients.entries()) {
    const confirmed = confirmations[i]!;
    assert.equal(confirmed.type, 'subscription_confirmed');
    const from = confirmed.data.offset!;
    const offsets = eventsOf(await c.drain())
      .filter((m) => m.type === 'epistemic_update')
      .map((m) => m.offset);
    const last = offsets.at(-1)!;
    assert.ok(offsets.length > 0, `client ${i} received events`);
    assert.deepEqual(
      offsets,
      Array.from({ length: last - from }, (_, k) => from + 1 + k),
      `client ${i}: exactly the events after offset ${from}, in order`,
    );
  }
});

test("on Redis, the node follows a stream exactly while it has subscribers (and a user's stream while the user is connected)", {
  timeout: 60_000,
}, async (t) => {
  if (TEST_ENGINE !== 'redis') {
    t.skip('runs in the Redis-engine pass (ESCAI_TEST_ENGINE=redis)');
    return;
  }
  const s = await startServer(t);
  const admin = new Redis(TEST_REDIS_URL);
  t.after(() => admin.disconnect());
  const prefix = s.server.config.redisPrefix;
  const subscribers = async (channel: string) => Number(((await admin.call('PUBSUB', 'NUMSUB', `${prefix}:c:${channel}`)) as [string, number])[1]);
  /** Patterns this node's pub/sub connection holds (CLIENT LIST `psub` of `escai:<nodeId>:sub`). */
  const patterns = async () => {
    const line = ((await admin.call('CLIENT', 'LIST')) as string).split('\n').find((l) => l.includes(` name=escai:${s.server.nodeId}:sub `));
    return Number(/ psub=(\d+)/.exec(line ?? '')?.[1] ?? -1);
  };

  assert.equal(await subscribers('agent%3Aa1'), 0);
  assert.equal(await patterns(), 0);
  const c = await s.connect({ sub: 'alice', roles: ['researcher'] });
  assert.equal(await subscribers('user%3Aalice'), 1, "the user's notification stream while alice is connected");
  await c.subscribe({ type: 'epistemic_updates', agent_id: 'a1' });
  await c.subscribe({ type: 'agent_status', agent_id: 'a1' });
  assert.equal(await subscribers('agent%3Aa1'), 1, 'one channel subscription for both subscriptions');
  await c.request({ type: 'unsubscribe', data: { subscription_type: 'epistemic_updates', agent_id: 'a1' } }, 'unsubscription_confirmed');
  assert.equal(await subscribers('agent%3Aa1'), 1, 'agent_status still needs it');
  await c.subscribe({ type: 'pattern_alerts' });
  assert.equal(await patterns(), 1, 'an all-agents subscription follows every agent channel by pattern');

  c.ws.close();
  await connectionCount(s.server, 0, 3000, 'alice to leave');
  await eventually(
    async () => (await subscribers('agent%3Aa1')) === 0 && (await subscribers('user%3Aalice')) === 0 && (await patterns()) === 0,
    3000,
    'the node to leave both channels and the pattern',
  );
});
