// Hardening round three (docs/SECURITY.md): the per-address cap counts a
// connection from its upgrade; client addresses behind proxies cannot be
// forged; key rotation ends the sessions of a retired key; replies keep the
// order of the requests, and every request with an id gets exactly one.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { WebSocket } from 'ws';
import { signToken } from '../src/auth/jwt.js';
import { api, epistemicEvent, eventually, handshakeRefusal, openMonitor, SECRET, startServer, TestClient, type TestServer } from './helpers.js';

/** The value of a metric line (`name value`) on GET /metrics. */
async function metric(s: TestServer, name: string): Promise<number> {
  const res = await fetch(`${s.url}/metrics`);
  const line = (await res.text()).split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `metric ${name} present`);
  return Number(line.split(' ')[1]);
}

/** Sockets opened with ?auth=message, not yet authenticated: the ones that opened, and the refusals (HTTP status). */
async function waitingSockets(
  t: TestContext,
  s: TestServer,
  n: number,
  headers: Record<string, string> = {},
): Promise<{ open: TestClient[]; refused: number[] }> {
  const attempts = await Promise.allSettled(
    Array.from({ length: n }, async (_, i) => {
      const client = await TestClient.open(`${s.wsUrl}/ws/monitor/waiting-${i}?auth=message`, { headers });
      t.after(() => client.terminate());
      return client;
    }),
  );
  const open: TestClient[] = [];
  const refused: number[] = [];
  for (const a of attempts) {
    if (a.status === 'fulfilled') open.push(a.value);
    else refused.push(Number(/(\d{3})/.exec(String((a.reason as Error).message))?.[1] ?? 0));
  }
  return { open, refused };
}

/** A JWKS endpoint serving whatever set `keys` holds at the time of the request, after `delayMs`; `onRequest` hears each request. */
async function jwksServer(t: TestContext, keys: { current: JWK[]; delayMs?: number; onRequest?: () => void }, delayMs = 0): Promise<string> {
  const server: Server = createServer((_req, res) => {
    const served = keys.current;
    keys.onRequest?.();
    setTimeout(() => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ keys: served }));
    }, keys.delayMs ?? delayMs);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // the node may still be polling it (keep-alive): do not wait for it
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
}

/** RS256 key pairs by kid: their public JWKs, and a signer of researcher tokens (1 h). */
async function rsaKeys(kids: readonly string[]): Promise<{ jwks: JWK[]; sign: (kid: string, sub: string) => Promise<string> }> {
  const pairs = await Promise.all(kids.map(async (kid) => ({ kid, ...(await generateKeyPair('RS256', { extractable: true })) })));
  const jwks = await Promise.all(pairs.map(async (p) => ({ ...(await exportJWK(p.publicKey)), kid: p.kid, alg: 'RS256', use: 'sig' })));
  const sign = (kid: string, sub: string) =>
    new SignJWT({ roles: ['researcher'] })
      .setProtectedHeader({ alg: 'RS256', kid })
      .setSubject(sub)
      .setExpirationTime('1h')
      .sign(pairs.find((p) => p.kid === kid)!.privateKey);
  return { jwks, sign };
}

// ---- 1. the per-address cap from the upgrade ----------------------------------------------

test('sockets waiting for first-message auth hold the per-address cap; every way out gives the slot back', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { maxConnectionsPerIp: 3, handshakeRate: 1000, authTimeout: 2 });
  const { open, refused } = await waitingSockets(t, s, 10);
  assert.equal(open.length, 3, 'at most the cap while nobody has authenticated');
  assert.deepEqual(
    refused,
    Array.from({ length: 7 }, () => 429),
  );
  assert.equal(await metric(s, 'escai_address_slots'), 3);
  const refusal = await handshakeRefusal(`${s.wsUrl}/ws/monitor/eleventh?token=${await s.token({ roles: ['researcher'] })}`);
  assert.equal(refusal.body?.error.code, 'IP_CONNECTION_LIMIT', 'a token handshake is refused too while the three wait');

  // Out by a refused token, by the auth timeout, and by a socket that just goes away.
  const [bad, silent, gone] = open as [TestClient, TestClient, TestClient];
  bad.send({ type: 'auth', data: { token: 'not-a-token' } });
  assert.equal((await bad.closeEvent).code, 4401, 'AUTH_TOKEN_INVALID');
  gone.terminate();
  assert.equal((await silent.closeEvent).code, 4400, 'the auth timeout: AUTH_TOKEN_MISSING');
  await eventually(async () => (await metric(s, 'escai_address_slots')) === 0, 5000, 'every slot given back');
  assert.equal(await metric(s, 'escai_address_slot_holders'), 0);

  // The slots are usable again, and an opened connection gives its slot back once, on close.
  const again = await waitingSockets(t, s, 3);
  assert.equal(again.open.length, 3);
  again.open[0]!.send({ type: 'auth', data: { token: await s.token({ sub: 'late', roles: ['researcher'] }) } });
  await again.open[0]!.next('connection_established');
  assert.equal(await metric(s, 'escai_address_slots'), 3);
  for (const c of again.open) c.ws.close();
  await Promise.all(again.open.map((c) => c.closeEvent));
  await eventually(async () => (await metric(s, 'escai_address_slots')) === 0, 5000, 'every slot given back after close');
  assert.equal(await metric(s, 'escai_connections'), 0);
});

test('concurrent handshakes cannot all pass the per-address check while their tokens verify', { timeout: 60_000 }, async (t) => {
  // A JWKS that answers slowly: every handshake waits in verification at the same time.
  const { jwks, sign } = await rsaKeys(['k1']);
  const s = await startServer(t, { maxConnectionsPerIp: 3, handshakeRate: 1000, jwtJwksUrl: await jwksServer(t, { current: jwks }, 500) });
  const tokens = await Promise.all(Array.from({ length: 30 }, (_, i) => sign('k1', `c${i}`)));
  const results = await Promise.allSettled(tokens.map((token, i) => openMonitor(s.wsUrl, token, { session: `storm-${i}` })));
  const opened = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.client] : []));
  t.after(() => {
    for (const c of opened) c.terminate();
  });
  assert.equal(opened.length, 3, `${opened.length} of 30 concurrent handshakes opened; the cap is 3`);
  assert.equal(await metric(s, 'escai_address_slots'), 3);
  for (const c of opened) c.ws.close();
  await Promise.all(opened.map((c) => c.closeEvent));
  await eventually(async () => (await metric(s, 'escai_address_slots')) === 0, 5000, 'the count back to zero');
});

test('a session id of dots only is refused at the handshake (browsers and proxies resolve such segments away)', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t);
  const token = await s.token({ roles: ['researcher'] });
  const refused = await handshakeRefusal(`${s.wsUrl}/ws/monitor/...?token=${token}`);
  assert.equal(refused.status, 400);
  assert.match(refused.body?.error.message ?? '', /not dots only/);
  (await s.connect(token, { session: 'v1.2' })).terminate();
});

// ---- 2. client addresses behind proxies --------------------------------------------------

test('with trust off, or from an untrusted peer, a forged X-Forwarded-For changes nothing', { timeout: 60_000 }, async (t) => {
  for (const trustProxy of [false, ['10.0.0.0/8']] as const) {
    const s = await startServer(t, { trustProxy: trustProxy as never, restRateLimit: 3, maxConnectionsPerIp: 2, handshakeRate: 1000 });
    const token = await s.token({ roles: ['researcher'] });
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await api(s, 'GET', '/api/v1/agents', { token, headers: { 'X-Forwarded-For': `198.51.100.${i}` } })).status);
    assert.deepEqual(statuses, [200, 200, 200, 429, 429], `REST budget, trust ${JSON.stringify(trustProxy)}`);
    const clients = [];
    for (let i = 0; i < 2; i++) clients.push(await s.connect(token, { session: `f${i}`, headers: { 'X-Forwarded-For': `198.51.100.${i}` } }));
    const third = await handshakeRefusal(`${s.wsUrl}/ws/monitor/f3?token=${token}`, { 'X-Forwarded-For': '198.51.100.77' });
    assert.equal(third.body?.error.code, 'IP_CONNECTION_LIMIT', `socket cap, trust ${JSON.stringify(trustProxy)}`);
  }
});

test('through trusted proxies the client is the nearest untrusted address from the right; what it wrote on the left is ignored', {
  timeout: 60_000,
}, async (t) => {
  // The test's peer is 127.0.0.1 (the last proxy); 10.0.0.2 is a proxy in front of it.
  const s = await startServer(t, { trustProxy: ['127.0.0.1', '10.0.0.0/8'], restRateLimit: 2, maxConnectionsPerIp: 1, handshakeRate: 1000 });
  const token = await s.token({ roles: ['researcher'] });
  const get = (xff: string) => api(s, 'GET', '/api/v1/agents', { token, headers: { 'X-Forwarded-For': xff } }).then((r) => r.status);
  assert.equal(await get('203.0.113.1, 10.0.0.2'), 200);
  assert.equal(await get('203.0.113.1, 10.0.0.2'), 200);
  assert.equal(await get('203.0.113.1, 10.0.0.2'), 429, "the real client's budget is spent");
  assert.equal(await get('192.0.2.99, 203.0.113.1, 10.0.0.2'), 429, 'a forged entry on the left is not the client');
  assert.equal(await get('203.0.113.2, 10.0.0.2'), 200, 'another client behind the same proxies has its own budget');

  const first = await s.connect(token, { session: 'p1', headers: { 'X-Forwarded-For': '203.0.113.5, 10.0.0.2' } });
  const forged = await handshakeRefusal(`${s.wsUrl}/ws/monitor/p2?token=${token}`, { 'X-Forwarded-For': '192.0.2.1, 203.0.113.5, 10.0.0.2' });
  assert.equal(forged.body?.error.code, 'IP_CONNECTION_LIMIT', 'the same client, whatever it writes on the left');
  const other = await s.connect(token, { session: 'p3', headers: { 'X-Forwarded-For': '203.0.113.6, 10.0.0.2' } });
  assert.ok(first.ws.readyState === WebSocket.OPEN && other.ws.readyState === WebSocket.OPEN);

  // A hop count: one proxy (the peer); its entry is the rightmost.
  const hops = await startServer(t, { trustProxy: 1, restRateLimit: 1 });
  const hop = (xff: string) => api(hops, 'GET', '/api/v1/agents', { token, headers: { 'X-Forwarded-For': xff } }).then((r) => r.status);
  assert.equal(await hop('198.51.100.1, 203.0.113.9'), 200);
  assert.equal(await hop('198.51.100.2, 203.0.113.9'), 429, 'one hop: the client is the rightmost entry');
  assert.equal(await hop('203.0.113.10'), 200);
});

// ---- 3. key rotation ends sessions -------------------------------------------------------

const OLD_SECRET = 'old-secret-0123456789-abcdefghijklmnopqrstuvw';

/** Resolves with the close event, or rejects after `ms` (a connection that should have been closed). */
function closedWithin(c: TestClient, ms: number, what: string): Promise<{ code: number; reason: string }> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    c.closeEvent.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still open after ${ms} ms`)), ms))),
  ]);
}

test("at the previous secret's cut-off its connections close with 4001; one that refreshed before it stays", { timeout: 30_000 }, async (t) => {
  const cutOff = Date.now() + 2500;
  const s = await startServer(t, { jwtPreviousSecret: OLD_SECRET, jwtPreviousSecretUntil: new Date(cutOff).toISOString(), tokenExpiryWarning: 1 });
  const oldToken = (sub: string) => signToken(OLD_SECRET, { sub, roles: ['researcher'], expiresInSec: 3600 });
  const stale = await s.connect(await oldToken('stale'), { session: 'stale' });
  const renewed = await s.connect(await oldToken('renewed'), { session: 'renewed' });
  const warned = await renewed.next('token_expiring', 5000);
  assert.equal(warned.data.expires_at, new Date(cutOff).toISOString(), "the warning names the cut-off, not the token's exp");
  const refreshed = await renewed.request(
    { type: 'refresh', id: 'r', data: { token: await signToken(SECRET, { sub: 'renewed', roles: ['researcher'] }) } },
    'token_refreshed',
  );
  assert.equal(refreshed.type, 'token_refreshed');

  const closed = await closedWithin(stale, 10_000, 'the connection on the retired secret');
  assert.equal(closed.code, 4001);
  assert.ok(Date.now() >= cutOff - 20, 'not before the cut-off');
  assert.ok(stale.events('token_expiring').length === 1, 'it was warned first');
  assert.equal((await renewed.request({ type: 'ping', id: 'still' }, 'pong')).type, 'pong', 'the refreshed connection stays');
});

test('when a key leaves the JWKS its connections close with 4001; one that refreshed to a key still there stays', { timeout: 30_000 }, async (t) => {
  const { jwks, sign } = await rsaKeys(['k1', 'k2']);
  const keys = { current: jwks };
  const s = await startServer(t, { jwtJwksUrl: await jwksServer(t, keys), jwtJwksRefresh: 0.3 });
  const onK1 = await s.connect(await sign('k1', 'one'), { session: 'one' });
  const moved = await s.connect(await sign('k1', 'two'), { session: 'two' });
  assert.equal((await moved.request({ type: 'refresh', id: 'r', data: { token: await sign('k2', 'two') } }, 'token_refreshed')).type, 'token_refreshed');
  const k1Token = await sign('k1', 'three');
  await s.connect(k1Token, { session: 'three-a' }).then((c) => c.terminate());

  keys.current = jwks.filter((k) => k.kid === 'k2');
  const closed = await closedWithin(onK1, 10_000, 'the connection on the retired key');
  assert.equal(closed.code, 4001);
  assert.match(closed.reason, /key retired/);
  assert.equal((await moved.request({ type: 'ping', id: 'still' }, 'pong')).type, 'pong', 'the refreshed connection stays');
  const late = await handshakeRefusal(`${s.wsUrl}/ws/monitor/three-b?token=${k1Token}`);
  assert.equal(late.status, 401, 'a token of the retired key (verified before, once cached) is refused now');
});

test('a refresh to a retired key that lands while the key check is fetching the new set is caught by the next check', { timeout: 30_000 }, async (t) => {
  const { jwks, sign } = await rsaKeys(['k1', 'k2']);
  const keys: { current: JWK[]; delayMs?: number; onRequest?: () => void } = { current: jwks };
  const s = await startServer(t, { jwtJwksUrl: await jwksServer(t, keys), jwtJwksRefresh: 0.3 });
  const c = await s.connect(await sign('k2', 'racer'), { session: 'racer' });
  // Wait for a check to have seen the full set, then remove k1 and slow the next fetch down.
  await new Promise<void>((resolve) => (keys.onRequest = resolve));
  keys.current = jwks.filter((k) => k.kid === 'k2');
  keys.delayMs = 800;
  const fetching = new Promise<void>((resolve) => (keys.onRequest = resolve));
  await fetching;
  // The check's fetch is in flight: the verifier still holds the old set, so a k1 token verifies now.
  const refreshed = await c.request({ type: 'refresh', id: 'r', data: { token: await sign('k1', 'racer') } }, 'token_refreshed');
  assert.equal(refreshed.type, 'token_refreshed', 'verified against the set fetched before the key left');
  keys.onRequest = undefined;
  const closed = await closedWithin(c, 10_000, 'the connection refreshed to the retired key');
  assert.equal(closed.code, 4001);
  assert.match(closed.reason, /key retired/);
});

// ---- 5. replies keep request order -------------------------------------------------------

test('a RATE_LIMITED reply to a pipelined publish waits for the replies before it; a dropped request with an id is answered', {
  timeout: 30_000,
}, async (t) => {
  const s = await startServer(t, { publishRate: 1, publishBurst: 5, rateLimit: 1, rateBurst: 3, rateLimitCloseAfter: 40 });
  const producer = await s.connect({ sub: 'producer', roles: ['developer'] }, { session: 'producer' });
  const ids = Array.from({ length: 12 }, (_, i) => `p${i}`);
  for (const [i, id] of ids.entries()) producer.send({ type: 'publish', id, data: epistemicEvent('ordered', i) });
  await eventually(() => producer.events('publish_confirmed', 'error').length === ids.length, 10_000, 'a reply to every publish');
  const replies = producer.events('publish_confirmed', 'error');
  assert.deepEqual(
    replies.map((m) => m.id),
    ids,
    'replies in request order',
  );
  assert.deepEqual(
    replies.map((m) => (m.type === 'error' ? m.code : m.type)),
    [...Array(5).fill('publish_confirmed'), ...Array(7).fill('RATE_LIMITED')],
  );

  // Control requests past their budget: each one with an id gets its reply, in order.
  const pings = Array.from({ length: 8 }, (_, i) => `q${i}`);
  for (const id of pings) producer.send({ type: 'ping', id });
  await eventually(() => producer.events('pong', 'error').filter((m) => pings.includes(String(m.id))).length === pings.length, 10_000, 'a reply to every ping');
  const answers = producer.events('pong', 'error').filter((m) => pings.includes(String(m.id)));
  assert.deepEqual(
    answers.map((m) => m.id),
    pings,
  );
  assert.ok(
    answers.some((m) => m.type === 'error' && m.code === 'RATE_LIMITED'),
    'some pings were over the budget',
  );
  assert.equal(producer.ws.readyState, WebSocket.OPEN);
});
