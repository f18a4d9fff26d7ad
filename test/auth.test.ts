// The auth matrix of the WebSocket handshake: tokens, algorithms, time claims,
// roles and permissions, path/session/origin/capacity refusals, and the rule
// that no token ever reaches a log line. Real server, real sockets.
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { base64url, SignJWT } from 'jose';
import { signToken } from '../src/auth/jwt.js';
import { resolveConfig } from '../src/config/config.js';
import { createLogger, createPrettyLogger } from '../src/log.js';
import { EscaiServer } from '../src/server/server.js';
import type { ErrorCode } from '../src/protocol/codes.js';
import {
  api,
  confirmed,
  connectionCount,
  epistemic,
  eventsOf,
  eventually,
  fannedOut,
  handshakeRefusal,
  openMonitor,
  publishOne,
  SECRET,
  startServer,
  type ServerMessage,
  type TestClient,
  type TestServer,
} from './helpers.js';

const OTHER_SECRET = 'another-secret-9876543210-zyxwvutsrqponmlkjihgfedcba';
const key = (secret: string) => new TextEncoder().encode(secret);
const nowSec = () => Math.floor(Date.now() / 1000);

function monitorUrl(s: TestServer, token?: string, session = 'session_1'): string {
  return `${s.wsUrl}/ws/monitor/${session}${token === undefined ? '' : `?token=${encodeURIComponent(token)}`}`;
}

/** Asserts a refused handshake: status and the {"error":{"code","message"}} body. */
async function assertRefused(url: string, status: number, code: ErrorCode | undefined, headers: Record<string, string> = {}) {
  const r = await handshakeRefusal(url, headers);
  assert.equal(r.status, status, `status for ${code ?? 'refusal'}`);
  assert.equal(typeof r.body?.error?.message, 'string', 'error.message is a string');
  const error = r.body!.error;
  assert.ok(error.message.length > 0);
  if (code) assert.equal(error.code, code);
  else assert.equal(typeof error.code, 'string');
  assert.match(String(r.headers['content-type']), /application\/json/);
  return r;
}

/** A hand-built HS-family token with arbitrary claims and header. */
async function customToken(claims: Record<string, unknown>, opts: { alg?: string; secret?: string } = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: opts.alg ?? 'HS256', typ: 'JWT' }).sign(key(opts.secret ?? SECRET));
}

function errorOf(m: ServerMessage): ErrorCode | undefined {
  return m.type === 'error' ? m.code : undefined;
}

test('no token → 401 TOKEN_MISSING', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  await assertRefused(monitorUrl(s), 401, 'TOKEN_MISSING');
  await assertRefused(monitorUrl(s, ''), 401, 'TOKEN_MISSING');
});

test('garbage and tampered tokens → 401 TOKEN_INVALID', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  await assertRefused(monitorUrl(s, 'garbage'), 401, 'TOKEN_INVALID');
  await assertRefused(monitorUrl(s, 'a.b.c'), 401, 'TOKEN_INVALID');
  // A valid viewer token whose payload is swapped for an admin one, signature kept.
  const viewer = await s.token({ roles: ['viewer'] });
  const [h, , sig] = viewer.split('.');
  const forged = base64url.encode(JSON.stringify({ sub: 'user_1', roles: ['admin'], exp: nowSec() + 600 }));
  await assertRefused(monitorUrl(s, `${h}.${forged}.${sig}`), 401, 'TOKEN_INVALID');
});

test('token signed with another key → 401', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const tok = await signToken(OTHER_SECRET, { sub: 'user_1', roles: ['admin'] });
  await assertRefused(monitorUrl(s, tok), 401, 'TOKEN_INVALID');
});

test('alg "none" token → 401', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
  const payload = base64url.encode(JSON.stringify({ sub: 'user_1', roles: ['admin'], exp: nowSec() + 600 }));
  await assertRefused(monitorUrl(s, `${header}.${payload}.`), 401, 'TOKEN_INVALID');
});

test('HS384 / HS512 tokens with the right secret → 401 (algorithm pinned to HS256)', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  for (const alg of ['HS384', 'HS512']) {
    const tok = await customToken({ sub: 'user_1', roles: ['admin'], exp: nowSec() + 600 }, { alg });
    await assertRefused(monitorUrl(s, tok), 401, 'TOKEN_INVALID');
  }
  // Control: the same claims with HS256 are accepted.
  const ok = await customToken({ sub: 'user_1', roles: ['admin'], exp: nowSec() + 600 });
  const c = await s.connect(ok);
  assert.equal(c.ws.readyState, c.ws.OPEN);
});

test('exp / nbf honoured with the 5 s clock tolerance', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const base = { sub: 'user_1', roles: ['viewer'] };
  await assertRefused(monitorUrl(s, await customToken({ ...base, exp: nowSec() - 60 })), 401, 'TOKEN_EXPIRED');
  await assertRefused(monitorUrl(s, await customToken({ ...base, exp: nowSec() + 600, nbf: nowSec() + 60 })), 401, 'TOKEN_NOT_YET_VALID');
  // A few seconds past exp / before nbf, inside the tolerance: accepted.
  const justExpired = await s.connect(await customToken({ ...base, exp: nowSec() - 2 }));
  assert.equal(justExpired.ws.readyState, justExpired.ws.OPEN);
  const almostValid = await s.connect(await customToken({ ...base, exp: nowSec() + 600, nbf: nowSec() + 2 }));
  assert.equal(almostValid.ws.readyState, almostValid.ws.OPEN);
});

test('claims: missing sub or a non-list roles claim → 401', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  await assertRefused(monitorUrl(s, await customToken({ roles: ['admin'], exp: nowSec() + 600 })), 401, 'TOKEN_INVALID');
  await assertRefused(monitorUrl(s, await customToken({ sub: 'u', roles: 'admin', exp: nowSec() + 600 })), 401, 'TOKEN_INVALID');
});

test('no websocket:connect → 403 PERMISSION_DENIED', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  await assertRefused(monitorUrl(s, await s.token({})), 403, 'PERMISSION_DENIED');
  await assertRefused(monitorUrl(s, await s.token({ roles: ['no_such_role'] })), 403, 'PERMISSION_DENIED');
  await assertRefused(monitorUrl(s, await s.token({ permissions: ['websocket:subscribe', 'agent:*:monitor'] })), 403, 'PERMISSION_DENIED');
});

test('token in an Authorization: Bearer header', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const tok = await s.token({ sub: 'bearer_user', roles: ['viewer'] });
  const { client, hello } = await s.open(null, { session: 'bearer_session', headers: { Authorization: `Bearer ${tok}` } });
  assert.equal(hello.user_id, 'bearer_user');
  assert.equal(hello.session_id, 'bearer_session');
  assert.equal((await client.request({ type: 'ping' }, 'pong')).type, 'pong');
  // A bad Bearer token is refused like a bad ?token=.
  await assertRefused(monitorUrl(s), 401, 'TOKEN_INVALID', { Authorization: 'Bearer garbage' });
});

test('role defaults: admin, researcher, developer, viewer', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const expected = {
    admin: { agent: true, stats: true, publish: true },
    researcher: { agent: true, stats: false, publish: false },
    developer: { agent: true, stats: false, publish: true },
    viewer: { agent: false, stats: false, publish: false },
  } as const;
  // Sees agent_1: the barrier for the roles that must not (see fannedOut).
  const witness = await s.connect({ sub: 'witness', roles: ['admin'] }, { session: 's_witness' });
  await confirmed(witness, { type: 'epistemic_updates', agent_id: 'agent_1' });
  for (const [role, can] of Object.entries(expected)) {
    await t.test(role, async () => {
      const c = await s.connect({ sub: `user_${role}`, roles: [role] }, { session: `s_${role}` });
      // Every default role may subscribe (no agent).
      const all = await c.subscribe({ type: 'epistemic_updates' });
      assert.equal(all.type, 'subscription_confirmed', `${role} subscribe: ${JSON.stringify(all)}`);

      const agentSub = await c.subscribe({ type: 'agent_status', agent_id: 'agent_1' });
      if (can.agent) assert.equal(agentSub.type, 'subscription_confirmed', `${role} agent subscribe: ${JSON.stringify(agentSub)}`);
      else assert.equal(errorOf(agentSub), 'AGENT_ACCESS_DENIED');

      // The agent-wide subscription delivers agent_1's events exactly when the role may monitor it.
      await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.5, { probe: role }));
      if (can.agent) {
        const ev = await c.next('epistemic_update');
        assert.equal(ev.data?.['probe'], role);
      } else {
        const marker = await publishOne(s, { type: 'epistemic_update', agent_id: 'agent_1', data: epistemic('agent_1', 0.5, { marker: role }) });
        await fannedOut(c, witness, marker.event_id);
        assert.equal(c.events('epistemic_update').length, 0, `${role} must not see agent_1`);
      }

      const stats = await c.request({ type: 'get_stats' }, 'stats');
      if (can.stats) assert.equal(stats.type, 'stats');
      else assert.equal(errorOf(stats), 'PERMISSION_DENIED');

      const pub = await c.request({ type: 'publish', data: { type: 'system_alert', alert_type: 'probe', message: role } }, 'publish_confirmed');
      if (can.publish) {
        assert.equal(pub.type, 'publish_confirmed', `${role} publish: ${JSON.stringify(pub)}`);
        assert.equal(pub.data.accepted, 1);
      } else assert.equal(errorOf(pub), 'PERMISSION_DENIED');
      c.terminate();
    });
  }
});

test('a custom roles table overrides and extends the defaults', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { roles: { auditor: ['websocket:connect', 'websocket:subscribe', 'agent:agent_7:monitor'], viewer: ['websocket:connect'] } });
  const c = await s.connect({ sub: 'aud', roles: ['auditor'] });
  assert.equal((await c.subscribe({ type: 'epistemic_updates', agent_id: 'agent_7' })).type, 'subscription_confirmed');
  assert.equal(errorOf(await c.subscribe({ type: 'epistemic_updates', agent_id: 'agent_8' })), 'AGENT_ACCESS_DENIED');
  assert.equal(errorOf(await c.request({ type: 'get_stats' }, 'stats')), 'PERMISSION_DENIED');
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_7', epistemic('agent_7', 0.6)), 1);
  assert.equal((await c.next('epistemic_update')).agent_id, 'agent_7');
  // An overridden default role takes the new table entry (viewer may no longer subscribe)…
  const v = await s.connect({ sub: 'v', roles: ['viewer'] });
  assert.equal(errorOf(await v.subscribe({ type: 'system_alerts' })), 'PERMISSION_DENIED');
  // …and defaults not overridden are kept.
  const r = await s.connect({ sub: 'r', roles: ['researcher'] });
  assert.equal((await r.subscribe({ type: 'epistemic_updates', agent_id: 'agent_9' })).type, 'subscription_confirmed');
});

test("token permissions add to the role's", { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect({ roles: ['viewer'], permissions: ['agent:agent_3:monitor', 'websocket:admin'] });
  assert.equal((await c.subscribe({ type: 'epistemic_updates', agent_id: 'agent_3' })).type, 'subscription_confirmed');
  assert.equal(errorOf(await c.subscribe({ type: 'epistemic_updates', agent_id: 'agent_4' })), 'AGENT_ACCESS_DENIED');
  assert.equal((await c.request({ type: 'get_stats' }, 'stats')).type, 'stats');
  // Permissions alone (no role) are enough to connect and subscribe.
  const bare = await s.connect({ permissions: ['websocket:connect', 'websocket:subscribe'] }, { session: 'bare' });
  assert.equal((await bare.subscribe({ type: 'system_alerts' })).type, 'subscription_confirmed');
  // A token cannot grant itself the role-only "*".
  const star = await s.connect({ permissions: ['websocket:connect', '*'] }, { session: 'star' });
  assert.equal(errorOf(await star.request({ type: 'get_stats' }, 'stats')), 'PERMISSION_DENIED');
  assert.equal(errorOf(await star.subscribe({ type: 'system_alerts' })), 'PERMISSION_DENIED');
});

test('wildcard agent:*:monitor grants every agent; no other wildcard form', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect({ permissions: ['websocket:connect', 'websocket:subscribe', 'agent:*:monitor'] });
  for (const agent of ['agent_1', 'agent_10', 'zeta.99']) {
    assert.equal((await c.subscribe({ type: 'prediction_updates', agent_id: agent })).type, 'subscription_confirmed', agent);
  }
  assert.equal(await s.server.broadcastPredictionUpdate('zeta.99', { prediction_type: 'p', confidence: 0.4 }), 1);
  assert.equal((await c.next('prediction_update')).agent_id, 'zeta.99');

  const partial = await s.connect({ permissions: ['websocket:connect', 'websocket:subscribe', 'agent:agent_*:monitor'] }, { session: 'partial' });
  assert.equal(errorOf(await partial.subscribe({ type: 'prediction_updates', agent_id: 'agent_1' })), 'AGENT_ACCESS_DENIED');
});

test('exact agent id: agent:agent_1:monitor grants agent_1, never agent_10', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect({ permissions: ['websocket:connect', 'websocket:subscribe', 'agent:agent_1:monitor'] });
  // Sees agent_10: the barrier before asserting that c saw nothing of it (see fannedOut).
  const witness = await s.connect({ sub: 'witness', roles: ['admin'] }, { session: 'witness' });
  await confirmed(witness, { type: 'agent_status', agent_id: 'agent_10' });
  assert.equal((await c.subscribe({ type: 'agent_status', agent_id: 'agent_1' })).type, 'subscription_confirmed');
  const denied = await c.subscribe({ type: 'agent_status', agent_id: 'agent_10' });
  assert.equal(denied.type, 'error');
  assert.equal(denied.code, 'AGENT_ACCESS_DENIED');
  assert.match(denied.message, /agent_10/);

  // All-agents subscription: agent_1's events arrive, agent_10's do not.
  assert.equal((await c.subscribe({ type: 'epistemic_updates' })).type, 'subscription_confirmed');
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_10', epistemic('agent_10', 0.7)), 0);
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.7)), 1);
  const ev = await c.next('epistemic_update');
  assert.equal(ev.agent_id, 'agent_1');
  await s.server.broadcastAgentStatusChange('agent_10', 'running');
  // One stream per agent: the marker follows both of agent_10's events.
  const marker = await publishOne(s, { type: 'agent_status_change', agent_id: 'agent_10', status: 'marker' });
  await fannedOut(c, witness, marker.event_id);
  assert.deepEqual(
    eventsOf(c.received).filter((m) => m.agent_id === 'agent_10'),
    [],
    'nothing from agent_10',
  );
});

test('wrong path → 404, bad session id → 400', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const tok = await s.token({ roles: ['admin'] });
  const q = `?token=${encodeURIComponent(tok)}`;
  await assertRefused(`${s.wsUrl}/ws/other/s1${q}`, 404, 'NOT_FOUND');
  await assertRefused(`${s.wsUrl}/ws/monitor/a/b${q}`, 404, 'NOT_FOUND');
  await assertRefused(`${s.wsUrl}/ws/monitor${q}`, 404, 'NOT_FOUND');
  await assertRefused(`${s.wsUrl}/ws/monitor/bad%20id${q}`, 400, 'BAD_REQUEST');
  await assertRefused(`${s.wsUrl}/ws/monitor/${'x'.repeat(129)}${q}`, 400, 'BAD_REQUEST');
  // Control: a valid session id with the same token connects.
  const c = await s.connect(tok, { session: `ok.session:1-${'x'.repeat(100)}` });
  assert.equal(c.ws.readyState, c.ws.OPEN);
});

test('max connections → 503 SERVER_AT_CAPACITY with Retry-After; a freed slot is reusable', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { maxConnections: 2 });
  const tok = await s.token({ roles: ['viewer'] });
  const a = await s.connect(tok, { session: 'a' });
  await s.connect(tok, { session: 'b' });
  const r = await assertRefused(monitorUrl(s, tok, 'c'), 503, 'SERVER_AT_CAPACITY');
  const retryAfter = Number(r.headers['retry-after']);
  assert.ok(Number.isInteger(retryAfter) && retryAfter > 0, `Retry-After: ${r.headers['retry-after']}`);

  a.ws.close();
  await a.closeEvent;
  await connectionCount(s.server, 1, 3000, 'the closed connection to leave');
  const c = await s.connect(tok, { session: 'c' });
  assert.equal(c.ws.readyState, c.ws.OPEN);
  await assertRefused(monitorUrl(s, tok, 'd'), 503, 'SERVER_AT_CAPACITY');
});

test('allowedOrigins: wrong or missing Origin → 403 ORIGIN_NOT_ALLOWED; listed Origin accepted', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { allowedOrigins: ['https://dash.example'] });
  const tok = await s.token({ roles: ['viewer'] });
  await assertRefused(monitorUrl(s, tok), 403, 'ORIGIN_NOT_ALLOWED', { Origin: 'https://evil.example' });
  await assertRefused(monitorUrl(s, tok), 403, 'ORIGIN_NOT_ALLOWED');
  const { hello } = await s.open(tok, { headers: { Origin: 'https://dash.example' } });
  assert.equal(hello.user_id, 'user_1');
});

test('jwtIssuer / jwtAudience: tokens must carry both', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { jwtIssuer: 'escai-auth', jwtAudience: 'escai-realtime' });
  const claims = { sub: 'user_1', roles: ['viewer'] };
  await assertRefused(monitorUrl(s, await signToken(SECRET, claims)), 401, 'TOKEN_INVALID');
  await assertRefused(monitorUrl(s, await signToken(SECRET, { ...claims, issuer: 'escai-auth' })), 401, 'TOKEN_INVALID');
  await assertRefused(monitorUrl(s, await signToken(SECRET, { ...claims, audience: 'escai-realtime' })), 401, 'TOKEN_INVALID');
  await assertRefused(monitorUrl(s, await signToken(SECRET, { ...claims, issuer: 'someone-else', audience: 'escai-realtime' })), 401, 'TOKEN_INVALID');
  const c = await s.connect(await signToken(SECRET, { ...claims, issuer: 'escai-auth', audience: 'escai-realtime' }));
  assert.equal(c.ws.readyState, c.ws.OPEN);
});

test('a token never appears in any log line', { timeout: 60_000 }, async (t) => {
  const lines: string[] = [];
  const config = resolveConfig({ port: 0, jwtSecret: SECRET, logLevel: 'debug' });
  const server = new EscaiServer({ config, logger: createLogger('debug', { write: (line: string) => void lines.push(line) }) });
  await server.listen();
  const opened: TestClient[] = [];
  t.after(async () => {
    for (const c of opened) c.terminate();
    await server.close();
  });
  const wsUrl = server.url.replace(/^http/, 'ws');
  const ws = (token: string, path = '/ws/monitor/log_session') => `${wsUrl}${path}?token=${encodeURIComponent(token)}`;

  const valid = await signToken(SECRET, { sub: 'log_user', roles: ['admin'] });
  const viewer = await signToken(SECRET, { sub: 'log_viewer', roles: ['viewer'] });
  const noConnect = await signToken(SECRET, { sub: 'log_nobody' });
  const wrongKey = await signToken(OTHER_SECRET, { sub: 'log_user', roles: ['admin'] });
  const expired = await customToken({ sub: 'log_user', roles: ['admin'], exp: nowSec() - 120 });
  const tokens = { valid, viewer, noConnect, wrongKey, expired };

  // Accepted handshake (?token=), then a clean close.
  const { client: c } = await openMonitor(wsUrl, valid, { session: 'log_session' }, (client) => opened.push(client));
  await c.subscribe({ type: 'system_alerts' });
  // Refused handshakes: bad signature, expired, no permission, wrong path, bad session.
  assert.equal((await handshakeRefusal(ws(wrongKey))).status, 401);
  assert.equal((await handshakeRefusal(ws(expired))).status, 401);
  assert.equal((await handshakeRefusal(ws(noConnect))).status, 403);
  assert.equal((await handshakeRefusal(ws(valid, '/ws/nowhere'))).status, 404);
  assert.equal((await handshakeRefusal(ws(valid, '/ws/monitor/bad%20session'))).status, 400);
  // REST with Bearer: allowed, forbidden, invalid; and a token in a REST query string.
  const node = { url: server.url };
  assert.equal((await api(node, 'GET', '/ws/connections', { token: valid })).status, 200);
  assert.equal((await api(node, 'GET', '/ws/connections', { token: viewer })).status, 403);
  assert.equal((await api(node, 'GET', '/ws/connections', { token: wrongKey })).status, 401);
  assert.equal((await api(node, 'POST', '/ws/broadcast/test', { token: valid })).status, 200);
  const pub = await api(node, 'POST', '/api/v1/events', { token: expired, json: { type: 'system_alert', alert_type: 'x', message: 'y' } });
  assert.equal(pub.status, 401);
  assert.equal((await api(node, 'GET', `/ws/health?token=${encodeURIComponent(valid)}`)).status, 200);
  await c.next('system_alert');
  c.ws.close();
  await c.closeEvent;
  await connectionCount(server, 0, 3000, 'the connection to close');
  // The capture works: debug lines about connections and requests are there (a request's once its answer is out).
  for (const line of [/connection opened/, /connection closed/, /\/ws\/health/]) {
    await eventually(() => line.test(lines.join('')), 5000, `a log line matching ${line}`);
  }

  const output = lines.join('');
  for (const [name, tok] of Object.entries(tokens)) {
    assert.ok(!output.includes(tok), `token "${name}" appears in the log`);
    const signature = tok.split('.')[2]!;
    assert.ok(!output.includes(signature), `the signature of token "${name}" appears in the log`);
  }
});

test('a token without exp is refused (it could never be revoked)', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const noExp = await new SignJWT({ roles: ['admin'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('u1')
    .setIssuedAt()
    .sign(new TextEncoder().encode(SECRET));
  const r = await handshakeRefusal(`${s.wsUrl}/ws/monitor/s1?token=${noExp}`);
  assert.equal(r.status, 401);
  assert.equal(r.body?.error.code, 'TOKEN_INVALID');
  assert.match(r.body!.error.message, /exp/);
});

test('a malformed upgrade is refused before anything is claimed: no per-user slot leaks', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { maxConnectionsPerUser: 1 });
  const token = await s.token({ sub: 'solo', roles: ['viewer'] });
  const raw = createConnection({ host: '127.0.0.1', port: Number(new URL(s.url).port) });
  raw.write(
    `GET /ws/monitor/s1?token=${token} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: bad\r\n\r\n`,
  );
  const answer = await new Promise<string>((resolve) => {
    let text = '';
    raw.on('data', (d) => (text += d.toString()));
    raw.on('close', () => resolve(text));
  });
  assert.match(answer, /^HTTP\/1\.1 400 /);
  assert.match(answer, /"code":"BAD_REQUEST"/);
  // The user's one slot is still free.
  await s.connect(token);
  assert.equal(s.server.connections.size, 1);
});

test('the pretty logger (ESCAI_LOG_FORMAT=pretty) redacts the same paths as the JSON one', { timeout: 10_000 }, async () => {
  const out = new PassThrough();
  let text = '';
  out.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const log = await createPrettyLogger('info', out);
  log.info({ token: 'tok-secret-1', req: { headers: { authorization: 'Bearer tok-secret-2' } }, conn: { token: 'tok-secret-3' } }, 'a record with secrets');
  log.flush();
  await new Promise((resolve) => setImmediate(resolve));
  assert.match(text, /INFO.*a record with secrets/);
  assert.match(text, /\[REDACTED\]/);
  assert.doesNotMatch(text, /tok-secret/);
  assert.doesNotMatch(text, /^\{/m, 'one readable line, not JSON');
});
