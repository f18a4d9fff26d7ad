// Refusals after the 101 have their own close codes. First-message auth
// (`?auth=message`) refuses on an open socket, where no HTTP status can
// answer: each refusal closes with its 44xx code from the catalogue
// (src/protocol/codes.ts), and the SDKs decide by that code alone, never by
// the reason, which is for people. A real server on port 0 for the codes, and
// a fake one (closing with a code and a misleading reason) for the SDK's decision.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { signToken } from '../src/auth/jwt.js';
import { EscaiClient, type ClientEvents, type ClientOptions } from '../src/client/index.js';
import { authRefusalClose, CloseCodes, ErrorCodes, type ErrorCode } from '../src/protocol/codes.js';
import { startServer, stateReached, TestClient, type TestServer } from './helpers.js';
import { need, PYTHON, pythonReady } from './require.js';

/** A socket opened with ?auth=message (no token yet); ended when the test ends. */
async function unauthenticated(t: TestContext, s: TestServer, session: string): Promise<TestClient> {
  const client = await TestClient.open(`${s.wsUrl}/ws/monitor/${session}?auth=message`);
  t.after(() => client.terminate());
  return client;
}

/** Sends `first` as the first message (nothing, if undefined) and resolves with how the server closed the socket. */
async function refusal(t: TestContext, s: TestServer, session: string, first?: unknown): Promise<{ code: number; reason: string }> {
  const c = await unauthenticated(t, s, session);
  if (first !== undefined) c.send(first);
  const closed = await c.closeEvent;
  assert.deepEqual(c.received, [], `${session}: nothing is answered before auth`);
  return closed;
}

/** An SDK client whose disconnects are recorded; closed when the test ends. */
function sdk(t: TestContext, options: Partial<ClientOptions> & { url: string }) {
  const client = new EscaiClient({ WebSocket, auth: 'message', minReconnectDelay: 10, maxReconnectDelay: 50, token: 'unused', ...options });
  t.after(() => client.close());
  const disconnects: Array<ClientEvents['disconnected']> = [];
  client.on('disconnected', (d) => disconnects.push(d));
  return { client, disconnects };
}

test('the catalogue: every 44xx close code names one error of the catalogue, and each refusal maps back to its own code', { timeout: 10_000 }, () => {
  const refusals = Object.entries(CloseCodes).filter(([, entry]) => entry.code >= 4400 && entry.code < 4500);
  assert.ok(refusals.length >= 6);
  const codes = new Set(Object.values(CloseCodes).map((c) => c.code));
  assert.equal(codes.size, Object.keys(CloseCodes).length, 'no close code used twice');
  const errors = new Set<string>();
  for (const [name, entry] of refusals) {
    assert.ok('error' in entry, `${name} names the error it stands for`);
    assert.ok(Object.hasOwn(ErrorCodes, entry.error), `${name}: ${entry.error} is in the catalogue`);
    assert.ok(!errors.has(entry.error), `${entry.error} has one close code`);
    errors.add(entry.error);
    assert.equal(authRefusalClose(entry.error as ErrorCode), name);
    // Reconnect advice agrees with the error's retry advice, but for an expired token (a new one may do).
    const retry = ErrorCodes[entry.error as ErrorCode].retry;
    if (entry.error !== 'TOKEN_EXPIRED') assert.equal(entry.reconnect, retry, `${name}: reconnect as ${entry.error} retries`);
    assert.ok(entry.description.length > 10);
  }
  assert.equal(authRefusalClose('VALIDATION_ERROR'), 'AUTH_INTERNAL_ERROR', "an error without a code of its own counts as the server's failure");
  // The codes of the connection's own life are unchanged.
  const { TOKEN_EXPIRED, FORBIDDEN, SLOW_CONSUMER, CLOSED_BY_ADMIN } = CloseCodes;
  assert.deepEqual([TOKEN_EXPIRED.code, FORBIDDEN.code, SLOW_CONSUMER.code, CLOSED_BY_ADMIN.code], [4001, 4003, 4008, 4010]);
});

test("a real server refuses after the 101 with each refusal's own close code: missing, invalid, expired, denied, a limit", {
  timeout: 30_000,
}, async (t) => {
  const s = await startServer(t, { authTimeout: 1, maxConnectionsPerUser: 1 });
  const auth = (token: string) => ({ type: 'auth', data: { token } });
  const forged = await signToken('another-secret-0123456789-abcdefghijklmnop', { sub: 'x', roles: ['admin'] });
  const expired = await s.token({ sub: 'late', roles: ['researcher'], expiresInSec: -120 });
  const cases: Array<[session: string, first: unknown, expected: keyof typeof CloseCodes, error: ErrorCode]> = [
    ['silent', undefined, 'AUTH_TOKEN_MISSING', 'TOKEN_MISSING'],
    ['eager', { type: 'subscribe', data: { type: 'system_alerts' } }, 'AUTH_TOKEN_MISSING', 'TOKEN_MISSING'],
    ['forged', auth(forged), 'AUTH_TOKEN_INVALID', 'TOKEN_INVALID'],
    ['garbage', auth('not-a-token'), 'AUTH_TOKEN_INVALID', 'TOKEN_INVALID'],
    ['late', auth(expired), 'AUTH_TOKEN_EXPIRED', 'TOKEN_EXPIRED'],
    ['nobody', auth(await s.token({ sub: 'nobody', roles: [] })), 'AUTH_PERMISSION_DENIED', 'PERMISSION_DENIED'],
  ];
  const results = await Promise.all(cases.map(([session, first]) => refusal(t, s, session, first)));
  cases.forEach(([session, , expected, error], i) => {
    const closed = results[i]!;
    assert.equal(closed.code, CloseCodes[expected].code, `${session}: closed with ${expected}, got ${closed.code} ${closed.reason}`);
    // The reason is for people, and still starts with the catalogue code.
    assert.ok(closed.reason.startsWith(`${error}: `), `${session}: reason ${closed.reason}`);
  });
  assert.equal(results[2]!.code, 4401);

  // The user's one connection is taken: the next, authenticated by message, is refused with the limit's code.
  const holder = await s.connect({ sub: 'busy', roles: ['researcher'] }, { session: 'holder' });
  assert.equal(holder.ws.readyState, WebSocket.OPEN);
  const limited = await refusal(t, s, 'second', auth(await s.token({ sub: 'busy', roles: ['researcher'] })));
  assert.equal(limited.code, CloseCodes.AUTH_USER_CONNECTION_LIMIT.code, `got ${limited.code} ${limited.reason}`);
  assert.equal(limited.code, 4420);
});

test('the SDK stops for good on 4401 from a real server (one disconnect, no reconnect), and on 4402 with a fixed token', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t);
  const bad = sdk(t, { url: s.wsUrl, token: 'not-a-token' });
  bad.client.connect();
  await stateReached(bad.client, 'closed', 10_000, 'the SDK to give up on a bad token');
  assert.deepEqual(
    bad.disconnects.map((d) => [d.code, d.willReconnect]),
    [[4401, false]],
  );
  assert.match(bad.client.closeReason ?? '', /^TOKEN_INVALID: /, 'the reason is kept for people');

  const expired = sdk(t, { url: s.wsUrl, token: await s.token({ sub: 'late', roles: ['researcher'], expiresInSec: -120 }) });
  expired.client.connect();
  await stateReached(expired.client, 'closed', 10_000, 'a fixed expired token cannot get better');
  assert.deepEqual(
    expired.disconnects.map((d) => [d.code, d.willReconnect]),
    [[4402, false]],
  );
});

test('the SDK with getToken reconnects after 4402 (an expired token) and asks for a new one', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t);
  let calls = 0;
  // The first token is expired (refused with 4402), the second is good.
  const getToken = async () => s.token({ sub: 'renewed', roles: ['researcher'], ...(++calls === 1 ? { expiresInSec: -120 } : {}) });
  const { client, disconnects } = sdk(t, { url: s.wsUrl, getToken });
  client.connect();
  await stateReached(client, 'connected', 10_000, 'the SDK to connect with its second token');
  assert.deepEqual(
    disconnects.map((d) => [d.code, d.willReconnect]),
    [[4402, true]],
  );
  assert.equal(calls, 2);
});

/** A fake server that closes its n-th connection with `closes[n]` (code and reason) right after the auth message. */
async function closingServer(t: TestContext, closes: Array<[code: number, reason: string]>): Promise<string> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  let n = 0;
  wss.on('connection', (ws) => {
    const [code, reason] = closes[Math.min(n++, closes.length - 1)]!;
    ws.once('message', () => ws.close(code, reason));
  });
  t.after(() => {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
  });
  return `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
}

test('the SDK decides by close code, not reason: 4401 with a plain reason stops it, 4420 with a TOKEN_INVALID one not', { timeout: 30_000 }, async (t) => {
  const plain = sdk(t, { url: await closingServer(t, [[4401, 'refused']]) });
  plain.client.connect();
  await stateReached(plain.client, 'closed', 10_000, 'the SDK to stop on 4401');
  assert.deepEqual(plain.disconnects, [{ code: 4401, reason: 'refused', willReconnect: false }]);

  const misleading = sdk(t, {
    url: await closingServer(t, [
      [4420, 'TOKEN_INVALID: says the reason'],
      [1000, 'enough'],
    ]),
  });
  misleading.client.connect();
  await stateReached(misleading.client, 'closed', 10_000, 'the SDK to reconnect once, then stop on 1000');
  assert.deepEqual(misleading.disconnects, [
    { code: 4420, reason: 'TOKEN_INVALID: says the reason', willReconnect: true },
    { code: 1000, reason: 'enough', willReconnect: false },
  ]);
});

test("the Python client's copy of the 44xx close codes names the same errors as the catalogue", { timeout: 30_000 }, (t) => {
  const py = pythonReady('websockets');
  if (!need(t, 'python', py.ok, `${PYTHON} with websockets: ${py.why}`)) return;
  const script = 'import json; from escai_realtime import codes; print(json.dumps({str(k): v for k, v in codes.CLOSE_REFUSALS.items()}))';
  const run = spawnSync(PYTHON, ['-c', script], {
    cwd: fileURLToPath(new URL('../clients/python', import.meta.url)),
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.equal(run.status, 0, run.stderr);
  const expected = Object.fromEntries(Object.values(CloseCodes).flatMap((c) => ('error' in c ? [[String(c.code), c.error]] : [])));
  assert.deepEqual(JSON.parse(run.stdout) as Record<string, string>, expected);
});
