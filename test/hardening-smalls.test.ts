// Small hardening items (issue 19, item 6), each checked on a real process or
// server: the dev secret file is kept 0600 whenever it is used; agent ids of
// dots only are refused (URLs cannot name them); a list cursor or history
// offset that does not parse is a VALIDATION_ERROR, never a silent restart
// from the beginning (on both engines); the console refuses to be framed
// with X-Frame-Options too.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { encodeCursor, type AgentDirectory, type AgentPage } from '../src/engine/agents.js';
import type { Engine } from '../src/engine/engine.js';
import { MemoryEngine } from '../src/engine/memory/index.js';
import { RedisEngine } from '../src/engine/redis/index.js';
import { createLogger } from '../src/log.js';
import { EscaiError } from '../src/protocol/codes.js';
import type { DeliveredEvent } from '../src/protocol/server-messages.js';
import { exitWithin, runCli } from './cli-process.js';
import { api, dropRedisPrefix, eventually, freshRedisPrefix, publishOne, refusal, settle, startServer, TEST_REDIS_URL, type ErrorBody } from './helpers.js';
import { redisAnswers } from './redis-support.js';
import { need } from './require.js';

const LONG_SECRET = 'a-dev-secret-made-by-hand-0123456789-abcdefghijklmnop';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'escai-smalls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A dev secret file with exactly `mode` (chmod after writing: the umask does not decide). */
function secretFile(dir: string, content: string, mode: number): string {
  const path = join(dir, '.escai-dev-secret');
  writeFileSync(path, content);
  chmodSync(path, mode);
  assert.equal(statSync(path).mode & 0o777, mode, 'the file starts with the loose mode');
  return path;
}

const modeOf = (path: string) => statSync(path).mode & 0o777;

// ---- 1. the dev secret file ------------------------------------------------

test('dev mode: serve reusing a world-readable .escai-dev-secret makes it 0600 and says so on stderr', {
  timeout: 60_000,
  skip: process.platform === 'win32' && 'no POSIX modes',
}, async (t) => {
  const dir = tempDir(t);
  const path = secretFile(dir, `${LONG_SECRET}\n`, 0o644);
  const dev = runCli(t, ['serve', '--port', '0', '--no-demo'], { ESCAI_LOG_LEVEL: 'info' }, { cwd: dir });
  await dev.port(20_000);
  await dev.waitForStderr(/\.escai-dev-secret had mode 0644 .*it is now 0600/);
  assert.equal(modeOf(path).toString(8), '600');
  assert.equal(readFileSync(path, 'utf8').trim(), LONG_SECRET, 'the secret is reused, not replaced');
  dev.child.kill('SIGTERM');
  assert.equal((await exitWithin(dev, 15_000)).code, 0);

  // Already 0600: nothing to say.
  const again = runCli(t, ['serve', '--port', '0', '--no-demo'], { ESCAI_LOG_LEVEL: 'info' }, { cwd: dir });
  await again.port(20_000);
  await again.waitForStderr(/DEV MODE/);
  assert.doesNotMatch(again.stderr(), /had mode/);
  again.child.kill('SIGTERM');
  await exitWithin(again, 15_000);
});

test('dev mode: a group-readable secret, and a too-short one rewritten in place, end up 0600 (token command too)', {
  timeout: 60_000,
  skip: process.platform === 'win32' && 'no POSIX modes',
}, async (t) => {
  const dir = tempDir(t);
  const path = secretFile(dir, `${LONG_SECRET}\n`, 0o640);
  const token = runCli(t, ['token', '--sub', 'me'], {}, { cwd: dir });
  assert.equal((await exitWithin(token, 20_000)).code, 0, token.stderr());
  assert.match(token.stderr(), /had mode 0640 .*now 0600/);
  assert.equal(modeOf(path).toString(8), '600');

  // Too short to keep: a new secret is written over it, and writeFile's `mode` does not apply to an existing file.
  secretFile(dir, 'short\n', 0o666);
  const rewritten = runCli(t, ['token', '--sub', 'me'], {}, { cwd: dir });
  assert.equal((await exitWithin(rewritten, 20_000)).code, 0, rewritten.stderr());
  assert.notEqual(readFileSync(path, 'utf8').trim(), 'short', 'a new secret was written');
  assert.equal(modeOf(path).toString(8), '600');
  assert.match(rewritten.stderr(), /had mode 0666 .*now 0600/);

  // A client command that signs its dev token with the file tightens it too (the server need not be up).
  chmodSync(path, 0o644);
  const client = runCli(t, ['agents', '--url', 'http://127.0.0.1:9'], {}, { cwd: dir });
  await exitWithin(client, 20_000);
  assert.match(client.stderr(), /had mode 0644 .*now 0600/);
  assert.equal(modeOf(path).toString(8), '600');
});

// ---- 2. agent ids of dots only -------------------------------------------

test('agent ids made only of dots are refused on publish (REST and socket) and on subscribe; ids with dots inside are not', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t);
  const publisher = await s.token({ sub: 'p', roles: ['developer'] });
  for (const id of ['.', '..', '...']) {
    const r = await api<ErrorBody>(s, 'POST', '/api/v1/events', { token: publisher, json: { type: 'epistemic_update', agent_id: id, data: {} } });
    const error = refusal(r, 400, 'VALIDATION_ERROR');
    assert.match(error.message, /agent_id: may not be dots only/, `${id}: ${error.message}`);
  }
  for (const id of ['a.b', '.a', 'a..', 'v1.2.3']) {
    const r = await api(s, 'POST', '/api/v1/events', { token: publisher, json: { type: 'epistemic_update', agent_id: id, data: {} } });
    assert.equal(r.status, 202, `${id} is an id: ${JSON.stringify(r.body)}`);
  }

  const c = await s.connect({ sub: 'w', roles: ['developer'] });
  const subscribe = await c.subscribe({ type: 'epistemic_updates', agent_id: '..' });
  assert.ok(subscribe.type === 'error', JSON.stringify(subscribe));
  assert.equal(subscribe.code, 'VALIDATION_ERROR');
  assert.match(subscribe.message, /agent_id: may not be dots only/);
  const published = await c.request({ type: 'publish', data: { type: 'agent_status_change', agent_id: '.', status: 'x' } }, 'publish_confirmed');
  assert.ok(published.type === 'error', JSON.stringify(published));
  assert.equal(published.code, 'VALIDATION_ERROR');
  assert.match(published.message, /agent_id: may not be dots only/);
  const ok = await c.subscribe({ type: 'epistemic_updates', agent_id: 'a.b' });
  assert.equal(ok.type, 'subscription_confirmed', JSON.stringify(ok));
});

// ---- 3. positions that do not parse ----------------------------------------

const BAD_CURSORS = [
  'garbage',
  '',
  Buffer.from('{}').toString('base64url'),
  Buffer.from('[1]').toString('base64url'),
  Buffer.from('["x","a1"]').toString('base64url'),
];

test('GET /api/v1/agents with a cursor that is not a next_cursor: 400 VALIDATION_ERROR, not the first page again', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t);
  const token = await s.token({ sub: 'ada', roles: ['researcher'] });
  for (const id of ['a1', 'a2', 'a3']) {
    await publishOne(s, { type: 'epistemic_update', agent_id: id, data: { confidence_level: 0.5 } });
    await settle(3); // activity order is by the millisecond
  }
  await eventually(async () => (await api<AgentPage>(s, 'GET', '/api/v1/agents', { token })).body.agents.length === 3, 5000, 'three agents listed');
  const first = await api<AgentPage>(s, 'GET', '/api/v1/agents?limit=2', { token });
  assert.equal(first.status, 200);
  const cursor = first.body.next_cursor;
  assert.ok(cursor);
  const second = await api<AgentPage>(s, 'GET', `/api/v1/agents?limit=2&cursor=${encodeURIComponent(cursor)}`, { token });
  assert.deepEqual(
    second.body.agents.map((a) => a.agent_id),
    ['a1'],
    'a real cursor still pages',
  );

  for (const bad of [...BAD_CURSORS.filter((c) => c !== ''), `${cursor}!!`, `${cursor.slice(0, -1)}`]) {
    const r = await api<ErrorBody>(s, 'GET', `/api/v1/agents?limit=2&cursor=${encodeURIComponent(bad)}`, { token });
    const error = refusal(r, 400, 'VALIDATION_ERROR');
    assert.match(error.message, /^cursor: /, `${bad}: ${error.message}`);
  }
});

test('history: a since or before that is not decimal digits (empty, blank, hex) is a 400, not a replay from offset 0', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t);
  for (let i = 1; i <= 3; i++) await publishOne(s, { type: 'epistemic_update', agent_id: 'h', data: { seq: i } });
  const token = await s.token({ sub: 'ada', roles: ['researcher'] });
  const all = await api<{ events: unknown[] }>(s, 'GET', '/api/v1/agents/h/events?since=0', { token });
  assert.equal(all.body.events.length, 3);
  assert.equal((await api<{ events: unknown[] }>(s, 'GET', '/api/v1/agents/h/events?since=2', { token })).body.events.length, 1);
  for (const q of ['since=', 'since=%20', 'since=0x1', 'since=1e0', 'since=%2B1', 'order=desc&before=', 'order=desc&before=%20', 'order=desc&before=0']) {
    for (const route of ['events', 'activity']) {
      const r = await api<ErrorBody>(s, 'GET', `/api/v1/agents/h/${route}?${q}`, { token });
      const error = refusal(r, 400, 'VALIDATION_ERROR');
      assert.match(error.message, /^(since|before): /, `${q}: ${error.message}`);
    }
  }
});

/** An agent event as the directory records it (the publisher gives it its offset and epoch). */
function agentEvent(agentId: string, ms: number): DeliveredEvent {
  return {
    type: 'epistemic_update',
    event_id: randomUUID(),
    agent_id: agentId,
    data: { confidence_level: 0.5 },
    timestamp: new Date(ms).toISOString(),
    offset: 1,
    epoch: 'e1',
  };
}

async function memoryEngine(t: TestContext): Promise<Engine> {
  const engine = new MemoryEngine({ historySize: 100, historyTtlMs: 60_000 });
  t.after(() => engine.close());
  return engine;
}

async function redisEngine(t: TestContext): Promise<Engine | undefined> {
  const answer = await redisAnswers(TEST_REDIS_URL);
  if (!need(t, 'redis', answer.ok, answer.why)) return undefined;
  const prefix = freshRedisPrefix();
  const engine = new RedisEngine({ url: TEST_REDIS_URL, prefix, log: createLogger('silent'), historySize: 100, historyTtlMs: 60_000 });
  t.after(async () => {
    await engine.close();
    await dropRedisPrefix(TEST_REDIS_URL, prefix);
  });
  await engine.broker.start(
    () => {},
    () => {},
  );
  await eventually(() => engine.status().ready, 5000, 'the Redis engine to be ready');
  return engine;
}

for (const [name, make] of [
  ['memory', memoryEngine],
  ['redis', redisEngine],
] as const) {
  test(`agent directory (${name}): a cursor that does not decode is refused with VALIDATION_ERROR; its own cursors page`, { timeout: 30_000 }, async (t) => {
    const engine = await make(t);
    if (!engine) return;
    const agents: AgentDirectory = engine.agents;
    const now = Date.now();
    await agents.record([agentEvent('a1', now - 3000)]);
    await agents.record([agentEvent('a2', now - 2000)]);
    await agents.record([agentEvent('a3', now - 1000)]);
    const first = await agents.list({ limit: 2 });
    assert.deepEqual(
      first.agents.map((a) => a.agent_id),
      ['a3', 'a2'],
    );
    assert.equal(first.next_cursor, encodeCursor(now - 2000, 'a2'));
    const rest = await agents.list({ limit: 2, cursor: first.next_cursor! });
    assert.deepEqual(
      rest.agents.map((a) => a.agent_id),
      ['a1'],
    );
    for (const bad of [...BAD_CURSORS, `${first.next_cursor}!!`]) {
      await assert.rejects(
        agents.list({ limit: 2, cursor: bad }),
        (err: unknown) => err instanceof EscaiError && err.code === 'VALIDATION_ERROR' && /^cursor: /.test(err.message),
        `cursor ${JSON.stringify(bad)} is refused`,
      );
    }
  });
}

// ---- 4. the console's framing headers --------------------------------------

test("the console sends X-Frame-Options: DENY beside CSP frame-ancestors 'none'", { timeout: 30_000 }, async (t) => {
  const s = await startServer(t);
  for (const path of ['/', '/console/app.js']) {
    const res = await fetch(`${s.url}${path}`);
    await res.arrayBuffer();
    assert.equal(res.status, 200, `${path} is served (the console is built)`);
    assert.equal(res.headers.get('x-frame-options'), 'DENY', path);
    assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, path);
  }
});
