// The Python client (clients/python, import name escai_realtime) against real
// servers: each test starts the server it needs (helpers.ts, port 0) and runs
// a slice of the package's pytest suite (clients/python/tests) against it,
// with the URL and the secret in the environment. Debian's python3-websockets
// (10.4) and python3-pytest; skipped loudly without them, mandatory where
// ESCAI_TEST_REQUIRE contains `python`.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CloseCodes, ErrorCodes } from '../src/protocol/codes.js';
import { killTree, trackChild } from './cli-process.js';
import { eventually, freshRedisPrefix, SECRET, startServer, TEST_ENGINE } from './helpers.js';
import { PrivateRedis, redisServerBinary } from './redis-support.js';
import { need, PYTHON, pythonReady } from './require.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PACKAGE = join(ROOT, 'clients', 'python');

function needPython(t: TestContext): boolean {
  const py = pythonReady('websockets, pytest');
  return need(t, 'python', py.ok, `${PYTHON} with websockets and pytest: ${py.why}`);
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** Runs PYTHON with `args` in the package directory; killed (with its process group) at `timeoutMs` or when the test ends. */
function runPython(t: TestContext, args: string[], env: Record<string, string>, timeoutMs: number): Promise<Run> {
  const child = spawn(PYTHON, args, {
    cwd: PACKAGE,
    // ESCAI_TEST_PYTHONPATH: another websockets (e.g. a source tree of a newer release) ahead of Debian's.
    env: {
      ...process.env,
      PYTHONPATH: [process.env['ESCAI_TEST_PYTHONPATH'], PACKAGE].filter(Boolean).join(':'),
      PYTHONDONTWRITEBYTECODE: '1',
      PYTHONUNBUFFERED: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: a kill reaches whatever it started
  });
  // Killed with its group when the test ends, and when this test process ends however it ends.
  trackChild(child);
  const kill = () => killTree(child);
  t.after(kill);
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      output += `\n[killed after ${timeoutMs} ms]`;
      kill();
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

/** Runs pytest on `selection` (paths / node ids relative to clients/python) and asserts it passed, with at least `minPassed` passes. */
async function pytest(t: TestContext, selection: string[], env: Record<string, string>, timeoutMs: number, minPassed: number): Promise<void> {
  const run = await runPython(t, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-rs', ...selection], env, timeoutMs);
  assert.equal(run.code, 0, `pytest ${selection.join(' ')} failed (exit ${run.code} ${run.signal ?? ''}):\n${run.output}`);
  const passed = Number(/(\d+) passed/.exec(run.output)?.[1] ?? 0);
  assert.ok(passed >= minPassed, `expected at least ${minPassed} passed, got:\n${run.output}`);
  assert.doesNotMatch(run.output, /\d+ skipped/, `a Python test skipped:\n${run.output}`);
  process.stderr.write(`pytest ${selection.join(' ')}: ${run.output.trim().split('\n').pop()}\n`);
}

/** Starts a server (with `overrides`) and runs a pytest `selection` against it (ESCAI_URL, ESCAI_SECRET and `env` set). */
async function pytestOnServer(
  t: TestContext,
  overrides: Parameters<typeof startServer>[1],
  selection: string[],
  timeoutMs: number,
  minPassed: number,
  env: Record<string, string> = {},
): Promise<void> {
  if (!needPython(t)) return;
  const s = await startServer(t, overrides);
  await pytest(t, selection, { ESCAI_URL: s.url, ESCAI_SECRET: SECRET, ...env }, timeoutMs, minPassed);
}

test('the Python catalogue of error and close codes matches src/protocol/codes.ts', { timeout: 30_000 }, async (t) => {
  if (!needPython(t)) return;
  const run = await runPython(
    t,
    [
      '-c',
      'import json, escai_realtime as e; print(json.dumps({"errors": e.ERROR_CODES, "closes": {str(k): v for k, v in e.CLOSE_CODES.items()}, "ws": e.WEBSOCKETS_VERSION}))',
    ],
    {},
    20_000,
  );
  assert.equal(run.code, 0, run.output);
  const py = JSON.parse(run.output.trim().split('\n').pop()!) as { errors: Record<string, [number, boolean]>; closes: Record<string, boolean>; ws: string };
  const errors = Object.fromEntries(Object.entries(ErrorCodes).map(([code, e]) => [code, [e.status, e.retry]]));
  const closes = Object.fromEntries(Object.values(CloseCodes).map((c) => [String(c.code), c.reconnect]));
  assert.deepEqual(py.errors, errors);
  assert.deepEqual(py.closes, closes);
  process.stderr.write(`python client: websockets ${py.ws}\n`);
});

test('Python watcher positions pass the client transcript (test/fixtures/client-transcript.json) the TS SDK passes', { timeout: 60_000 }, async (t) => {
  if (!needPython(t)) return;
  await pytest(t, ['tests/test_transcript.py'], {}, 50_000, 8);
});

test('`pip install ./clients/python` installs the package (with py.typed), offline, with no build step beyond setuptools', { timeout: 120_000 }, async (t) => {
  if (!needPython(t)) return;
  const pip = spawnSync(PYTHON, ['-c', 'import setuptools, pip'], { encoding: 'utf8' });
  if (!need(t, 'python', pip.status === 0, `${PYTHON} with pip and setuptools: ${pip.stderr.trim().split('\n').pop()}`)) return;
  const dir = mkdtempSync(join(tmpdir(), 'escai-pip-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // A copy: pip builds local directories in place, and the tree must stay clean.
  cpSync(PACKAGE, join(dir, 'src'), { recursive: true, filter: (from) => !/(__pycache__|\.egg-info|[\\/]build)$/.test(from) });
  const install = await runPython(
    t,
    ['-m', 'pip', 'install', '-q', '--no-build-isolation', '--no-index', '--no-deps', '--target', join(dir, 'site'), join(dir, 'src')],
    { PYTHONPATH: '' },
    100_000,
  );
  assert.equal(install.code, 0, install.output);
  const probe = spawnSync(
    PYTHON,
    [
      '-c',
      'import os, escai_realtime as e; d = os.path.dirname(e.__file__); print(d); print(os.path.exists(os.path.join(d, "py.typed"))); print(callable(e.watch) and callable(e.Publisher))',
    ],
    {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, PYTHONPATH: join(dir, 'site') },
      timeout: 20_000,
    },
  );
  assert.equal(probe.status, 0, probe.stderr);
  assert.deepEqual(probe.stdout.trim().split('\n'), [join(dir, 'site', 'escai_realtime'), 'True', 'True']);
});

test('Python publishers: every event type delivered (sync and asyncio), a bad batch refused whole naming the field, a lost answer retried without duplicates, a full queue bounded, atexit flush', {
  timeout: 120_000,
}, async (t) => {
  await pytestOnServer(t, {}, ['tests/test_publish.py', '-k', 'not engine_down and not 429'], 100_000, 6);
});

test('Python client, server unreachable: the cause and the URL named (refused, DNS, TLS, HTTP status), logged once by the publisher, first and every Nth reconnect by the watcher; an example without websockets stops with one line naming it', {
  timeout: 60_000,
}, async (t) => {
  if (!needPython(t)) return;
  await pytest(t, ['tests/test_unreachable.py'], {}, 50_000, 7);
});

test('Python publisher: a 429 (REST rate limit) is not retried before its Retry-After; past retry_timeout it fails with RATE_LIMITED', {
  timeout: 60_000,
}, async (t) => {
  await pytestOnServer(t, { restRateLimit: 3 }, ['tests/test_publish.py', '-k', '429'], 50_000, 1, { ESCAI_EXPECT_429: '1' });
});

test('Python publisher: 503 ENGINE_UNAVAILABLE (a Redis-engine node whose Redis is down) is retried until Redis is back; every event delivered once', {
  timeout: 120_000,
}, async (t) => {
  if (TEST_ENGINE === 'redis') {
    t.skip('runs in the main pass (it starts its own Redis-engine node, whose Redis is down at first)');
    return;
  }
  if (!needPython(t)) return;
  const bin = redisServerBinary();
  if (!need(t, 'redis', bin.ok, bin.why)) return;
  const redis = await PrivateRedis.create(t, { start: false });
  const s = await startServer(t, { redisUrl: redis.url, redisPrefix: freshRedisPrefix() });
  redis.stopAfter(t);
  const signals = mkdtempSync(join(tmpdir(), 'escai-py-'));
  t.after(() => rmSync(signals, { recursive: true, force: true }));
  const run = pytest(
    t,
    ['tests/test_publish.py::test_engine_down_503_is_retried_until_it_is_back_and_delivered_once'],
    {
      ESCAI_URL: s.url,
      ESCAI_SECRET: SECRET,
      ESCAI_SIGNAL: signals,
      ESCAI_EXPECT_503: '1',
    },
    100_000,
    1,
  );
  // Redis starts only once the publisher has been refused with 503 and is retrying.
  const retrying = eventually(() => existsSync(join(signals, 'retrying')), 60_000, 'the Python publisher to retry a 503').then(() => redis.start());
  await Promise.all([run, retrying]);
});

test('Python watcher: cut while a producer runs it gets every event once, in order; recovery_failed, terminal refusals, refused subscriptions, the callback form, array frames', {
  timeout: 120_000,
}, async (t) => {
  await pytestOnServer(t, {}, ['tests/test_watch.py', '-k', 'not token_refresh'], 100_000, 5);
});

test("Python watcher: refreshes its token on token_expiring and keeps its connection past the first token's expiry", { timeout: 90_000 }, async (t) => {
  await pytestOnServer(t, { tokenExpiryWarning: 4, tokenExpiryGrace: 1 }, ['tests/test_watch.py', '-k', 'token_refresh'], 80_000, 2);
});
