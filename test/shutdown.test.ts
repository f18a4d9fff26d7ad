// The real CLI as a child process: graceful shutdown on SIGTERM/SIGINT,
// refusal to start on bad settings, and dev mode's persistent secret.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { signToken } from '../src/auth/jwt.js';
import { exitWithin, REPO_ROOT, runCli } from './cli-process.js';
import { api, openMonitor, type TestClient } from './helpers.js';

const SECRET = 'shutdown-test-secret-0123456789-abcdefghijklmnop';
const SERVE = ['serve', '--port', '0'];

async function connect(port: number, token: string, session: string): Promise<TestClient> {
  return (await openMonitor(`ws://127.0.0.1:${port}`, token, { session })).client;
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal}: every client is closed with 1001 and the process exits 0`, { timeout: 20_000 }, async (t) => {
    const proc = runCli(t, SERVE, { ESCAI_JWT_SECRET: SECRET, ESCAI_LOG_LEVEL: 'info' });
    const port = await proc.port();
    const a = await connect(port, await signToken(SECRET, { sub: 'alice', roles: ['viewer'] }), 'a');
    const b = await connect(port, await signToken(SECRET, { sub: 'bob', roles: ['researcher'] }), 'b');
    t.after(() => {
      a.terminate();
      b.terminate();
    });
    assert.equal((await b.subscribe({ type: 'agent_status', agent_id: 'agent_1' })).type, 'subscription_confirmed');
    // The server is really serving both before the signal.
    assert.equal((await a.request({ type: 'ping' }, 'pong')).type, 'pong');

    proc.child.kill(signal);
    const [closeA, closeB] = await Promise.all([a.closeEvent, b.closeEvent]);
    assert.equal(closeA.code, 1001);
    assert.equal(closeB.code, 1001);
    const exit = await exitWithin(proc);
    assert.deepEqual(exit, { code: 0, signal: null }, `stderr: ${proc.stderr()}`);
    assert.doesNotMatch(proc.stderr(), /Error/);
  });
}

test('after SIGTERM the port no longer accepts connections', { timeout: 20_000 }, async (t) => {
  const proc = runCli(t, SERVE, { ESCAI_JWT_SECRET: SECRET, ESCAI_LOG_LEVEL: 'info' });
  const port = await proc.port();
  const node = { url: `http://127.0.0.1:${port}` };
  assert.equal((await api(node, 'GET', '/ws/health')).status, 200);
  proc.child.kill('SIGTERM');
  assert.equal((await exitWithin(proc)).code, 0);
  await assert.rejects(api(node, 'GET', '/ws/health'));
});

test('NODE_ENV=production without ESCAI_JWT_SECRET refuses to start', { timeout: 20_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'escai-prod-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const proc = runCli(t, SERVE, { NODE_ENV: 'production' }, { cwd: dir });
  const exit = await exitWithin(proc);
  assert.notEqual(exit.code, 0);
  assert.equal(exit.code !== null, true, 'exits on its own, not by a signal');
  assert.match(proc.stderr(), /ESCAI_JWT_SECRET/);
  assert.doesNotMatch(proc.stdout(), /"msg":"listening"/);
  assert.throws(() => readFileSync(join(dir, '.escai-dev-secret')), 'no dev secret is generated in production');
});

test('ESCAI_JWT_SECRET shorter than 32 bytes refuses to start, naming the setting', { timeout: 20_000 }, async (t) => {
  const proc = runCli(t, SERVE, { ESCAI_JWT_SECRET: 'short-secret-31-bytes-long-xxxx' });
  const exit = await exitWithin(proc);
  assert.notEqual(exit.code, 0);
  assert.equal(exit.signal, null);
  assert.match(proc.stderr(), /ESCAI_JWT_SECRET/);
  assert.match(proc.stderr(), /32/);
  assert.doesNotMatch(proc.stdout(), /"msg":"listening"/);
});

test('ESCAI_HEARTBEAT_INTERVAL=abc refuses to start, naming the variable', { timeout: 20_000 }, async (t) => {
  const proc = runCli(t, SERVE, { ESCAI_JWT_SECRET: SECRET, ESCAI_HEARTBEAT_INTERVAL: 'abc' });
  const exit = await exitWithin(proc);
  assert.notEqual(exit.code, 0);
  assert.equal(exit.signal, null);
  assert.match(proc.stderr(), /ESCAI_HEARTBEAT_INTERVAL/);
  assert.doesNotMatch(proc.stdout(), /"msg":"listening"/);
});

test('dev mode: the banner, once, on stderr (token once, in the console link), JSON logs on stdout; the secret survives a restart', {
  timeout: 30_000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'escai-dev-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));

  const first = runCli(t, SERVE, {}, { cwd: dir });
  const port1 = await first.port();
  const [, link] = (await first.waitForStderr(/console:\s+(\S+)/)) as RegExpMatchArray & [string, string];
  const token = decodeURIComponent(link.split('#token=')[1] ?? '');
  assert.ok(token, 'the console link carries the token');
  await first.waitForStderr(/demo agents:.*\n/);
  assert.match(first.stderr(), new RegExp(`ws://127\\.0\\.0\\.1:${port1}/ws/monitor/`), 'endpoint URL printed');
  assert.equal(first.stderr().split(token).length - 1, 1, 'the token is printed once');
  assert.equal(first.stderr().match(/DEV MODE/g)?.length, 1, 'the banner is printed once');
  await first.waitForStdout(/"msg":"dev mode: the console link with its admin token is on stderr"/);
  assert.ok(!first.stdout().includes(token), 'the logs never carry the token');
  for (const line of first.stdout().split('\n').filter(Boolean)) {
    assert.doesNotThrow(() => JSON.parse(line), `stdout holds only JSON log records (not a terminal): ${line}`);
  }
  const secretFile = readFileSync(join(dir, '.escai-dev-secret'), 'utf8');
  assert.ok(Buffer.byteLength(secretFile.trim()) >= 32);

  const c1 = await connect(port1, token, 'dev');
  t.after(() => c1.terminate());
  const est = await c1.request({ type: 'get_stats' }, 'stats');
  assert.equal(est.type, 'stats', 'the printed token is an admin token');
  first.child.kill('SIGTERM');
  await c1.closeEvent;
  assert.equal((await exitWithin(first)).code, 0);

  const second = runCli(t, SERVE, {}, { cwd: dir });
  const port2 = await second.port();
  await second.waitForStderr(/console:\s+(\S+)/);
  assert.equal(readFileSync(join(dir, '.escai-dev-secret'), 'utf8'), secretFile, 'the same secret file is reused');
  const c2 = await connect(port2, token, 'dev-again');
  t.after(() => c2.terminate());
  assert.equal((await c2.request({ type: 'ping' }, 'pong')).type, 'pong', "the first run's token still works");
  second.child.kill('SIGTERM');
  assert.equal((await exitWithin(second)).code, 0);
});

/** The pids of a process's direct children (Linux /proc). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

for (const how of ['npm start', 'the bin (node dist/cli/main.js serve)'] as const) {
  test(`SIGTERM to ${how} shuts the server down gracefully: clients get 1001, no process is left`, { timeout: 60_000 }, async (t) => {
    const bin = join(REPO_ROOT, 'dist', 'cli', 'main.js');
    assert.ok(existsSync(bin), `${bin} is built (npm ci builds it)`);
    const env = {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? '/tmp',
      ESCAI_JWT_SECRET: SECRET,
      ESCAI_PORT: '0',
      ESCAI_LOG_LEVEL: 'info',
      ESCAI_DEMO: '0',
    };
    const child =
      how === 'npm start'
        ? spawn('npm', ['start', '--silent'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn(process.execPath, [bin, 'serve'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = once(child, 'exit');
    const spawned = new Set<number>([child.pid!]);
    t.after(() => {
      for (const pid of spawned) if (alive(pid)) process.kill(pid, 'SIGKILL');
    });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 20_000);
      child.stdout!.on('data', () => {
        const m = /"port":(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
    });
    for (const pid of childrenOf(child.pid!)) spawned.add(pid);
    const client = await connect(port, await signToken(SECRET, { sub: 'alice', roles: ['viewer'] }), 'npm');
    t.after(() => client.terminate());
    child.kill('SIGTERM');
    assert.equal((await client.closeEvent).code, 1001, 'the client is told the server is going away');
    await exited;
    for (const pid of spawned) {
      const deadline = Date.now() + 5000;
      while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.ok(!alive(pid), `process ${pid} is gone`);
    }
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.status, undefined, 'nothing listens any more');
  });
}
