// First-message auth (for browsers that should not put a token in a URL) and
// HS key rotation. `?auth=message` opens the socket without a token; the first
// message must be `auth`, within the auth timeout; nothing else is accepted
// before; refusals close with the catalogue code in the reason. Without the
// parameter, a missing token is refused before the handshake, as ESCAI
// clients expect. A previous secret verifies until its grace window ends.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { WebSocket } from 'ws';
import { signToken } from '../src/auth/jwt.js';
import { EscaiClient } from '../src/client/index.js';
import { confirmed, eventsOf, eventually, handshakeRefusal, startServer, TestClient, type TestServer } from './helpers.js';

/** A socket opened with ?auth=message; resolves once it is open (before any auth). */
async function unauthenticated(t: TestContext, s: TestServer, session = 'by-message'): Promise<TestClient> {
  const client = await TestClient.open(`${s.wsUrl}/ws/monitor/${session}?auth=message`);
  t.after(() => client.terminate());
  return client;
}

test('?auth=message: the auth message opens the session; messages sent right behind it are handled in order', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t);
  const c = await unauthenticated(t, s);
  c.send({ type: 'auth', data: { token: await s.token({ sub: 'browser', roles: ['researcher'] }) } });
  c.send({ type: 'subscribe', data: { type: 'epistemic_updates', agent_id: 'a1' }, id: 1 });
  const hello = await c.next('connection_established');
  assert.equal(hello.user_id, 'browser');
  const conf = await c.next('subscription_confirmed');
  assert.equal(conf.id, 1);
  await s.server.publish({ type: 'epistemic_update', agent_id: 'a1', data: { n: 1 } });
  assert.deepEqual(
    eventsOf(await c.drain()).map((e) => e.data?.['n']),
    [1],
  );
  const again = await c.request({ type: 'auth', data: { token: 'x' } }, 'error');
  assert.equal(again.type === 'error' && again.code, 'VALIDATION_ERROR', 'auth on an authenticated connection is refused (refresh renews a token)');
});

test('?auth=message refusals close with the catalogue code in the reason: timeout, another first message, a bad token, no permission', {
  timeout: 30_000,
}, async (t) => {
  const s = await startServer(t, { authTimeout: 1 });
  const silent = await unauthenticated(t, s, 'silent');
  const timedOut = await silent.closeEvent;
  assert.equal(timedOut.code, 4400);
  assert.match(timedOut.reason, /^TOKEN_MISSING: no auth message within 1 s$/);

  const eager = await unauthenticated(t, s, 'eager');
  eager.send({ type: 'subscribe', data: { type: 'system_alerts' } });
  const notAuth = await eager.closeEvent;
  assert.equal(notAuth.code, 4400);
  assert.match(notAuth.reason, /^TOKEN_MISSING: the first message must be/);
  assert.deepEqual(eager.received, [], 'nothing was answered before auth');

  const forged = await unauthenticated(t, s, 'forged');
  forged.send({ type: 'auth', data: { token: await signToken('another-secret-0123456789-abcdefghijklmnop', { sub: 'x', roles: ['admin'] }) } });
  const bad = await forged.closeEvent;
  assert.equal(bad.code, 4401);
  assert.match(bad.reason, /^TOKEN_INVALID: /);

  const nobody = await unauthenticated(t, s, 'nobody');
  nobody.send({ type: 'auth', data: { token: await s.token({ sub: 'nobody', roles: [] }) } });
  const denied = await nobody.closeEvent;
  assert.equal(denied.code, 4410);
  assert.match(denied.reason, /^PERMISSION_DENIED: /);
});

test('without ?auth=message a missing token is still refused before the handshake (ESCAI clients see 401)', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t);
  const refused = await handshakeRefusal(`${s.wsUrl}/ws/monitor/plain`);
  assert.equal(refused.status, 401);
  assert.equal(refused.body?.error.code, 'TOKEN_MISSING');
});

test('the SDK authenticates by message when asked (the default in browsers) and stops for good on a refused token', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t);
  const good = new EscaiClient({
    url: s.wsUrl,
    token: await s.token({ sub: 'sdk', roles: ['researcher'] }),
    WebSocket,
    auth: 'message',
    minReconnectDelay: 20,
  });
  t.after(() => good.close());
  const got: number[] = [];
  good.on('epistemic_update', (e) => got.push(e.data?.['n'] as number));
  good.connect();
  await good.subscribe('epistemic_updates', { agentId: 'a1' });
  await s.server.publish({ type: 'epistemic_update', agent_id: 'a1', data: { n: 7 } });
  await eventually(() => got.includes(7), 5000, 'the event through a message-authenticated SDK');

  const bad = new EscaiClient({ url: s.wsUrl, token: 'not-a-token', WebSocket, auth: 'message', minReconnectDelay: 20 });
  t.after(() => bad.close());
  const disconnects: Array<{ code: number; reason: string; willReconnect: boolean }> = [];
  bad.on('disconnected', (d) => disconnects.push(d));
  bad.connect();
  await eventually(() => bad.state === 'closed', 5000, 'the SDK to give up');
  assert.equal(disconnects.length, 1, 'no reconnect loop');
  assert.equal(disconnects[0]!.code, 4401);
  assert.match(bad.closeReason ?? '', /^TOKEN_INVALID: /);
});

test('key rotation: a token signed with the previous secret verifies until its window ends, then not', { timeout: 30_000 }, async (t) => {
  const oldSecret = 'the-old-secret-0123456789-abcdefghijklmnopqrst';
  const rotating = await startServer(t, { jwtPreviousSecret: oldSecret, jwtPreviousSecretUntil: new Date(Date.now() + 3_600_000).toISOString() });
  const oldToken = await signToken(oldSecret, { sub: 'old-timer', roles: ['researcher'] });
  const c = await rotating.connect(oldToken, { session: 'old' });
  await confirmed(c, { type: 'system_alerts' });
  await rotating.connect({ sub: 'new', roles: ['researcher'] }, { session: 'new' });

  const expired = await startServer(t, { jwtPreviousSecret: oldSecret, jwtPreviousSecretUntil: new Date(Date.now() - 1000).toISOString() });
  const refused = await handshakeRefusal(`${expired.wsUrl}/ws/monitor/late?token=${oldToken}`);
  assert.equal(refused.status, 401);
  assert.equal(refused.body?.error.code, 'TOKEN_INVALID');
});
