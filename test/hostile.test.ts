// Hostile input at the edges: handshakes with the wrong WebSocket version,
// tokens with absurd times, a token smuggled past log redaction by encoding
// its parameter name, slow and idle sockets, too many connections or
// handshakes from one address, a REST flood, and a replay larger than the
// slow-consumer cap sent to a client that reads fine.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { SignJWT } from 'jose';
import { signToken } from '../src/auth/jwt.js';
import { resolveConfig } from '../src/config/config.js';
import { createLogger } from '../src/log.js';
import { EscaiServer } from '../src/server/server.js';
import { api, confirmed, eventsOf, eventually, handshakeRefusal, refusal, SECRET, startServer } from './helpers.js';

const key = new TextEncoder().encode(SECRET);

/** A raw TCP connection to the server, destroyed when the test ends. */
async function rawSocket(t: TestContext, port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  // Flowing, so the server's close is seen even when nobody reads the answer.
  socket.resume();
  return socket;
}

/** Resolves with how long (ms) until the server closed the socket, or rejects after `timeoutMs`. */
function closedWithin(socket: Socket, timeoutMs: number): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve(0);
    const timer = setTimeout(() => reject(new Error(`socket still open after ${timeoutMs} ms`)), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(performance.now() - started);
    });
  });
}

test('an unsupported WebSocket version gets 426 naming the versions spoken (RFC 6455 §4.4)', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const token = await s.token({ roles: ['researcher'] });
  const socket = await rawSocket(t, Number(new URL(s.url).port));
  socket.write(
    [
      `GET /ws/monitor/v?token=${token} HTTP/1.1`,
      'Host: x',
      'Upgrade: websocket',
      'Connection: Upgrade',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version: 7',
      '',
      '',
    ].join('\r\n'),
  );
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d.toString()));
  await once(socket, 'end');
  assert.match(answer, /^HTTP\/1\.1 426 /);
  assert.match(answer, /^Sec-WebSocket-Version: 13, 8\r$/m);
  assert.match(answer, /"code":"UNSUPPORTED_WEBSOCKET_VERSION"/);
});

test('absurd token times are refused cleanly at connect and on refresh, and a refused refresh changes nothing', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const absurd = await new SignJWT({ roles: ['researcher'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('user_1').setExpirationTime(1e20).sign(key);
  const refused = await handshakeRefusal(`${s.wsUrl}/ws/monitor/a?token=${absurd}`);
  assert.equal(refused.status, 401);
  assert.equal(refused.body?.error.code, 'TOKEN_INVALID');
  assert.match(refused.body?.error.message ?? '', /"exp" is not a time between 1970 and 9999/);
  const farIat = await new SignJWT({ roles: ['researcher'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('user_1')
    .setIssuedAt(-5)
    .setExpirationTime('1h')
    .sign(key);
  assert.equal((await handshakeRefusal(`${s.wsUrl}/ws/monitor/a?token=${farIat}`)).body?.error.code, 'TOKEN_INVALID');

  const c = await s.connect({ roles: ['researcher'] });
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'a1' });
  const answer = await c.request({ type: 'refresh', data: { token: absurd } }, 'token_refreshed');
  assert.equal(answer.type, 'error');
  assert.equal(answer.type === 'error' && answer.code, 'TOKEN_INVALID');
  await s.server.publish({ type: 'epistemic_update', agent_id: 'a1', data: { n: 1 } });
  assert.deepEqual(
    eventsOf(await c.drain()).map((e) => e.data?.['n']),
    [1],
    'the connection carries on with its old token',
  );
});

test('a token whose parameter name is percent-encoded is still redacted from the logs', { timeout: 60_000 }, async (t) => {
  const lines: string[] = [];
  const config = resolveConfig({ port: 0, jwtSecret: SECRET, logLevel: 'debug' });
  const server = new EscaiServer({ config, logger: createLogger('debug', { write: (line: string) => void lines.push(line) }) });
  await server.listen();
  t.after(() => server.close());
  const token = await signToken(SECRET, { sub: 'sneaky', roles: ['viewer'] });
  // `%74oken` decodes to `token`: the server reads it as the token, so the log must not show it.
  const refusal = await handshakeRefusal(`${server.url.replace('http', 'ws')}/ws/monitor/bad%20id?%74oken=${token}`);
  assert.equal(refusal.status, 400);
  const viaHttp = await fetch(`${server.url}/no-such-route?%74oken=${token}&Token=${token}`);
  assert.equal(viaHttp.status, 404);
  // The lines that would carry the token: the refusal's and the request's (logged once its answer is out).
  await eventually(() => /handshake refused/.test(lines.join('')), 5000, 'the refusal to be logged');
  await eventually(() => /no-such-route/.test(lines.join('')), 5000, 'the request to be logged');
  const output = lines.join('');
  assert.ok(!output.includes(token), 'the token appears in no log line');
  assert.ok(!output.includes(token.split('.')[2]!), 'not even its signature');
});

test('a client that never finishes its headers is cut off at the header timeout', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { headerTimeout: 1 });
  const socket = await rawSocket(t, Number(new URL(s.url).port));
  socket.write('GET /ws/health HTTP/1.1\r\nHost: x\r\nX-Slow: ');
  const ms = await closedWithin(socket, 5000);
  assert.ok(ms >= 900, `not before the timeout (${Math.round(ms)} ms)`);
});

test('idle sockets that have not sent a request are capped; one more is dropped at once', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { maxPendingSockets: 3 });
  const port = Number(new URL(s.url).port);
  const idle = [await rawSocket(t, port), await rawSocket(t, port), await rawSocket(t, port)];
  const extra = await rawSocket(t, port);
  await closedWithin(extra, 3000);
  idle[0]!.destroy();
  await new Promise((r) => setTimeout(r, 50));
  const another = await rawSocket(t, port);
  another.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  const [data] = (await once(another, 'data')) as [Buffer];
  assert.match(data.toString(), /^HTTP\/1\.1 200 /, 'room again once one went');
  // A socket that sent its request is not pending any more: the cap is about idle sockets, not busy ones.
  for (const socket of idle.slice(1)) socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  const more = await rawSocket(t, port);
  more.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match(((await once(more, 'data')) as [Buffer])[0].toString(), /^HTTP\/1\.1 200 /);
});

test('one address may hold maxConnectionsPerIp connections, and open handshakeRate per second (bursts of twice that)', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { maxConnectionsPerIp: 3, handshakeRate: 1000 });
  const clients = [];
  for (let i = 0; i < 3; i++) clients.push(await s.connect({ sub: `u${i}`, roles: ['researcher'] }, { session: `ip-${i}` }));
  const token = await s.token({ sub: 'u9', roles: ['researcher'] });
  const fourth = await handshakeRefusal(`${s.wsUrl}/ws/monitor/ip-4?token=${token}`);
  assert.equal(fourth.status, 429);
  assert.equal(fourth.body?.error.code, 'IP_CONNECTION_LIMIT');
  assert.equal(fourth.headers['retry-after'], '5');
  clients[0]!.ws.close();
  await clients[0]!.closeEvent;
  await s.connect(token, { session: 'ip-5' });

  const paced = await startServer(t, { handshakeRate: 2 });
  const tok = await paced.token({ roles: ['researcher'] });
  const results = await Promise.all(Array.from({ length: 8 }, (_, i) => handshakeRefusal(`${paced.wsUrl}/ws/monitor/${'x'.repeat(200)}-${i}?token=${tok}`)));
  // Refused for the bad session id (400) while within the burst of 4; refused for the rate (429) beyond it.
  const statuses = results.map((r) => r.status).sort();
  assert.deepEqual(statuses, [400, 400, 400, 400, 429, 429, 429, 429]);
  const limited = results.find((r) => r.status === 429)!;
  assert.equal(limited.body?.error.code, 'IP_CONNECTION_LIMIT');
  assert.equal(limited.headers['retry-after'], '1');
});

test("the REST API has a per-address budget (429 RATE_LIMITED in the catalogue's shape); probes are exempt", { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { restRateLimit: 5 });
  const token = await s.token({ roles: ['researcher'] });
  for (let i = 0; i < 5; i++) assert.equal((await api(s, 'GET', '/api/v1/agents', { token })).status, 200);
  const limited = refusal(await api(s, 'GET', '/api/v1/agents', { token }), 429, 'RATE_LIMITED');
  assert.match(limited.message, /At most 5 requests per minute/);
  for (let i = 0; i < 10; i++) assert.equal((await api(s, 'GET', '/healthz')).status, 200);
});

test('a replay bigger than the slow-consumer cap reaches a client that reads fine; the cap still holds afterwards', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { historySize: 5000 });
  const pad = 'x'.repeat(600);
  for (let sent = 0; sent < 3000; sent += 1000) {
    await s.server.publish(Array.from({ length: 1000 }, (_, i) => ({ type: 'epistemic_update', agent_id: 'big-replay', data: { n: sent + i, pad } })));
  }
  const c = await s.connect({ roles: ['researcher'] });
  const position = await confirmed(c, { type: 'prediction_updates', agent_id: 'big-replay' });
  const replay = await confirmed(c, { type: 'epistemic_updates', agent_id: 'big-replay', since: { offset: 0, epoch: position.data.epoch! } });
  assert.equal(replay.data.recovered, true, 'about 2 MiB replayed under a 1 MiB cap');
  const got = eventsOf(await c.drain());
  assert.equal(got.length, 3000);
  assert.equal(c.ws.readyState, c.ws.OPEN);
});
