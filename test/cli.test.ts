// The escai-realtime command as people run it (real processes, a real server):
// tail prints events and exits 0 on Ctrl-C; publish takes flags, JSON and
// NDJSON; agents and health print tables; exit codes follow the catalogue;
// unknown commands say so; token will not mint with a secret no server uses;
// serve in dev mode runs the demo agents and prints the console link; the demo
// agents are deterministic for a seed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { signToken } from '../src/auth/jwt.js';
import { CONFIDENT, createDemoAgents } from '../src/demo/agents.js';
import { validateEvents } from '../src/server/delivery/publisher.js';
import { exitWithin, runCli } from './cli-process.js';
import { api, eventually, SECRET, startServer, type TestServer } from './helpers.js';

/** Runs a client command against `s` and waits for it to finish. */
async function run(
  t: TestContext,
  s: TestServer | undefined,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = runCli(t, args, { ...(s ? { ESCAI_URL: s.url } : {}), ...env });
  const { code } = await exitWithin(proc, 20_000);
  return { code, stdout: proc.stdout(), stderr: proc.stderr() };
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'escai-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('--version, help, and an unknown command named with the help (exit 64)', { timeout: 60_000 }, async (t) => {
  const version = await run(t, undefined, ['--version']);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  const help = await run(t, undefined, ['tail', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--agent <id\.\.\.>/);
  assert.match(help.stdout, /Examples:/);
  const unknown = await run(t, undefined, ['frobnicate']);
  assert.equal(unknown.code, 64);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  assert.match(unknown.stderr, /Commands:/);
});

test('tail prints published events one line each (and JSON lines with --json), filtered on the server; SIGINT exits 0', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const token = await s.token({ sub: 'cli', roles: ['developer'] });
  const admin = await s.token({ sub: 'ops', roles: ['admin'] });
  const tail = runCli(t, ['tail', '--agent', 'cli-agent', '--type', 'epistemic_updates', '--filter', '{"confidence_level":{"min":0.5}}', '--no-color'], {
    ESCAI_URL: s.url,
    ESCAI_TOKEN: token,
  });
  const json = runCli(t, ['tail', '--type', 'agent_status', '--json'], { ESCAI_URL: s.url, ESCAI_TOKEN: token });
  const subscriptions = async () => {
    const r = await api<{ connections: Array<{ subscriptions: unknown[] }> }>(s, 'GET', '/ws/connections', { token: admin });
    return r.body.connections.reduce((n, c) => n + c.subscriptions.length, 0);
  };
  await eventually(async () => (await subscriptions()) === 2, 15_000, 'both tails to subscribe');
  await s.server.publish([
    { type: 'epistemic_update', agent_id: 'cli-agent', data: { confidence_level: 0.9, uncertainty_score: 0.1 } },
    { type: 'epistemic_update', agent_id: 'cli-agent', data: { confidence_level: 0.2 } },
    { type: 'agent_status_change', agent_id: 'cli-agent', status: 'running', metadata: { reason: 'test' } },
    { type: 'epistemic_update', agent_id: 'cli-agent', data: { confidence_level: 0.95 } },
  ]);
  await tail.waitForStdout(/conf 0\.95/, 10_000);
  const lines = tail.stdout().trim().split('\n');
  assert.equal(lines.length, 2, `the low-confidence event was filtered out by the server: ${tail.stdout()}`);
  assert.match(lines[0]!, /^\d\d:\d\d:\d\d\.\d{3} cli-agent\s+#1 epistemic\s+conf 0\.90 unc 0\.10/);
  assert.match(lines[1]!, /cli-agent\s+#4 epistemic\s+conf 0\.95/);
  await json.waitForStdout(/"status":"running"/, 10_000);
  const event = JSON.parse(json.stdout().trim()) as { type: string; agent_id: string; offset: number; metadata: { reason: string } };
  assert.deepEqual([event.type, event.agent_id, event.offset, event.metadata.reason], ['agent_status_change', 'cli-agent', 3, 'test']);
  for (const p of [tail, json]) {
    p.child.kill('SIGINT');
    assert.equal((await exitWithin(p, 10_000)).code, 0, `SIGINT exits 0: ${p.stderr()}`);
  }
});

test('tail --since replays from an offset, and --latest starts with the current state, marked', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const token = await s.token({ sub: 'cli', roles: ['researcher'] });
  for (let i = 1; i <= 4; i++) await s.server.publish({ type: 'epistemic_update', agent_id: 'hist', data: { confidence_level: i / 10 } });
  const since = runCli(t, ['tail', '--agent', 'hist', '--type', 'epistemic_updates', '--since', '2', '--json'], { ESCAI_URL: s.url, ESCAI_TOKEN: token });
  await since.waitForStdout(/"offset":4/, 10_000);
  assert.deepEqual(
    since
      .stdout()
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { offset: number }).offset),
    [3, 4],
  );
  const latest = runCli(t, ['tail', '--agent', 'hist', '--type', 'epistemic_updates', '--latest', '--json'], { ESCAI_URL: s.url, ESCAI_TOKEN: token });
  await latest.waitForStdout(/"offset":4/, 10_000);
  assert.deepEqual(
    latest
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { offset: number; latest?: boolean })
      .map((e) => [e.offset, e.latest]),
    [[4, true]],
    'the latest event says it is one',
  );
  // Several kinds: each kind's latest comes first, marked, whatever their order; live events after them are not marked.
  await s.server.publish({ type: 'agent_status_change', agent_id: 'hist', status: 'waiting' }); // offset 5
  await s.server.publish({ type: 'epistemic_update', agent_id: 'hist', data: { confidence_level: 0.9 } }); // offset 6: status's latest is older
  const lines = runCli(t, ['tail', '--agent', 'hist', '--type', 'agent_status', 'epistemic_updates', '--latest', '--no-color'], {
    ESCAI_URL: s.url,
    ESCAI_TOKEN: token,
  });
  await lines.waitForStdout(/#6 .*\[latest\]/, 10_000);
  await lines.waitForStdout(/#5 .*\[latest\]/, 10_000);
  await s.server.publish({ type: 'agent_status_change', agent_id: 'hist', status: 'running' }); // offset 7, live
  const [live] = await lines.waitForStdout(/^.*#7 .*$/m, 10_000);
  assert.doesNotMatch(live, /\[latest\]/, 'a live line is not marked');
  for (const p of [since, latest, lines]) p.child.kill('SIGINT');
});

test("publish: flags, a JSON argument, an NDJSON file in batches; refusals exit with the catalogue's codes", { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const env = { ESCAI_TOKEN: await s.token({ sub: 'cli', roles: ['developer'] }) };
  const one = await run(t, s, ['publish', '--type', 'agent_status_change', '--agent', 'p1', '--status', 'running'], env);
  assert.equal(one.code, 0, one.stderr);
  assert.equal((JSON.parse(one.stdout) as { offset: number }).offset, 1);
  const json = await run(t, s, ['publish', '{"type":"system_alert","alert_type":"maintenance","message":"at noon"}'], env);
  assert.equal(json.code, 0, json.stderr);

  const file = join(tempDir(t), 'events.ndjson');
  writeFileSync(
    file,
    Array.from({ length: 25 }, (_, i) => JSON.stringify({ type: 'epistemic_update', agent_id: 'p2', data: { confidence_level: 0.5, seq: i } })).join('\n') +
      '\n\n',
  );
  const batch = await run(t, s, ['publish', '--file', file, '--batch', '10'], env);
  assert.equal(batch.code, 0, batch.stderr);
  assert.match(batch.stderr, /published 25 events/);
  const history = await api<{ events: Array<{ data: { seq: number } }> }>(s, 'GET', '/api/v1/agents/p2/events?limit=100', { token: env.ESCAI_TOKEN });
  assert.deepEqual(
    history.body.events.map((e) => e.data.seq),
    Array.from({ length: 25 }, (_, i) => i),
    'all 25, in order',
  );

  const invalid = await run(t, s, ['publish', '{"type":"epistemic_update","agent_id":"p1","data":{"confidence_level":7}}'], env);
  assert.equal(invalid.code, 65, 'VALIDATION_ERROR → 65');
  assert.match(invalid.stderr, /VALIDATION_ERROR: data\.confidence_level/);
  const badToken = await run(t, s, ['publish', '--type', 'agent_status_change', '--agent', 'p1', '--status', 'x'], { ESCAI_TOKEN: 'nope' });
  assert.equal(badToken.code, 77, 'TOKEN_INVALID → 77');
  const viewer = await run(t, s, ['publish', '--type', 'agent_status_change', '--agent', 'p1', '--status', 'x'], {
    ESCAI_TOKEN: await s.token({ sub: 'v', roles: ['viewer'] }),
  });
  assert.equal(viewer.code, 77, 'PERMISSION_DENIED → 77');
  const nowhere = await run(t, undefined, ['publish', '--type', 'agent_status_change', '--agent', 'p1', '--status', 'x', '--url', 'http://127.0.0.1:9'], env);
  assert.equal(nowhere.code, 69, 'unreachable → 69');
  const usage = await run(t, s, ['publish'], env);
  assert.equal(usage.code, 64);
  const missing = await run(t, s, ['publish', '--file', '/nonexistent/events.ndjson'], env);
  assert.equal(missing.code, 66);
});

test('agents and health print tables (and JSON); a dev secret next to the command signs a token by itself', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  await s.server.publish([
    { type: 'agent_status_change', agent_id: 'tbl-1', status: 'running' },
    { type: 'epistemic_update', agent_id: 'tbl-1', data: { confidence_level: 0.75, uncertainty_score: 0.25 } },
  ]);
  const dir = tempDir(t);
  writeFileSync(join(dir, '.escai-dev-secret'), `${SECRET}\n`);
  const proc = runCli(t, ['agents'], { ESCAI_URL: s.url }, { cwd: dir });
  assert.equal((await exitWithin(proc, 20_000)).code, 0, proc.stderr());
  assert.match(proc.stderr(), /dev token/);
  assert.match(proc.stdout(), /^AGENT\s+STATUS\s+CONF\s+UNC\s+ALERTS\s+EVENTS\s+LAST SEEN$/m);
  assert.match(proc.stdout(), /^tbl-1\s+running\s+0\.75\s+0\.25\s+0\s+2\s+/m);
  const health = await run(t, s, ['health', '--json']);
  assert.equal(health.code, 0);
  assert.equal((JSON.parse(health.stdout) as { nodes: unknown[] }).nodes.length, 1);
  const table = await run(t, s, ['health']);
  assert.match(table.stdout, /^NODE\s+ADDRESS\s+CONNS/m);
  const noToken = runCli(t, ['agents'], { ESCAI_URL: s.url }, { cwd: tempDir(t) });
  assert.equal((await exitWithin(noToken, 20_000)).code, 77, 'no token and no dev secret here: 77');
});

test('token refuses to mint with a secret no server uses, unless asked to create the dev secret', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const refused = runCli(t, ['token', '--sub', 'me'], {}, { cwd: dir });
  assert.equal((await exitWithin(refused, 20_000)).code, 78);
  assert.match(refused.stderr(), /would be refused by the server/);
  const created = runCli(t, ['token', '--sub', 'me', '--create-dev-secret'], {}, { cwd: dir });
  assert.equal((await exitWithin(created, 20_000)).code, 0);
  assert.match(created.stdout(), /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
  assert.match(created.stderr(), /created .*\.escai-dev-secret/);
  const again = runCli(t, ['token', '--sub', 'me'], {}, { cwd: dir });
  assert.equal((await exitWithin(again, 20_000)).code, 0, 'the dev secret is there now');
});

/**
 * The agents a node lists once a marker event of our own is in: the barrier before asserting that no demo
 * agent ran. A demo's first step is published as soon as the server listens, before the node prints its
 * port or banner, so it is appended and recorded before a publish we send after seeing them answers.
 */
async function agentsAfterMarker(url: string, token: string): Promise<string[]> {
  const marker = await api({ url }, 'POST', '/api/v1/events', { token, json: { type: 'agent_status_change', agent_id: 'marker-agent', status: 'running' } });
  assert.equal(marker.status, 202, JSON.stringify(marker.body));
  const r = await api<{ agents: Array<{ agent_id: string }> }>({ url }, 'GET', '/api/v1/agents', { token });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.agents.map((a) => a.agent_id);
}

test('serve in dev mode runs the demo agents through the publish path and prints the console link; --no-demo does not', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const dev = runCli(t, ['serve', '--port', '0'], { ESCAI_LOG_LEVEL: 'info' }, { cwd: dir });
  const port = await dev.port(20_000);
  const [, link] = (await dev.waitForStderr(/console:\s+(\S+)/)) as RegExpMatchArray & [string, string];
  assert.match(link, new RegExp(`^http://127\\.0\\.0\\.1:${port}/#token=`));
  const token = decodeURIComponent(link.split('#token=')[1]!);
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    async () => (await api<{ agents: unknown[] }>({ url }, 'GET', '/api/v1/agents', { token })).body.agents.length === 6,
    15_000,
    'the six demo agents',
  );
  const console = await fetch(`${url}/`);
  assert.equal(console.status, 200);
  assert.match(await console.text(), /<div id="app">/);
  const csp = console.headers.get('content-security-policy') ?? '';
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, new RegExp(`connect-src 'self' ws://127\\.0\\.0\\.1:${port} wss://127\\.0\\.0\\.1:${port};`), "sockets to the page's own host only");
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|ws: |wss: /);
  dev.child.kill('SIGTERM');
  assert.equal((await exitWithin(dev, 15_000)).code, 0);

  const quiet = runCli(t, ['serve', '--port', '0', '--no-demo'], { ESCAI_LOG_LEVEL: 'info' }, { cwd: dir });
  const quietPort = await quiet.port(20_000);
  await quiet.waitForStderr(/demo agents:\s+off/);
  assert.deepEqual(await agentsAfterMarker(`http://127.0.0.1:${quietPort}`, token), ['marker-agent'], 'no demo agent');
  quiet.child.kill('SIGTERM');
  await exitWithin(quiet, 15_000);

  // In production the demo runs only when asked.
  const prod = runCli(t, ['serve', '--port', '0'], { NODE_ENV: 'production', ESCAI_JWT_SECRET: SECRET, ESCAI_LOG_LEVEL: 'info' }, { cwd: dir });
  const prodPort = await prod.port(20_000);
  const prodToken = await signToken(SECRET, { sub: 'ops', roles: ['admin'] });
  assert.deepEqual(await agentsAfterMarker(`http://127.0.0.1:${prodPort}`, prodToken), ['marker-agent'], 'no demo agent');
  prod.child.kill('SIGTERM');
  await exitWithin(prod, 15_000);
});

test('log output: pretty lines with ESCAI_LOG_FORMAT=pretty; production: JSON only, no banner', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const pretty = runCli(t, ['serve', '--port', '0', '--no-demo'], { ESCAI_LOG_FORMAT: 'pretty', NO_COLOR: '1' }, { cwd: dir });
  const [, port] = (await pretty.waitForStderr(/console:\s+http:\/\/127\.0\.0\.1:(\d+)\//, 20_000)) as RegExpMatchArray & [string, string];
  await pretty.waitForStdout(/INFO.*: listening/);
  assert.doesNotMatch(pretty.stdout(), /^\{/m, 'no JSON record on a pretty stdout');
  assert.match(pretty.stdout(), /\d\d:\d\d:\d\d\.\d{3}\]? .*INFO.*: listening .*"port":\d+/, 'time, level, message and fields on one line');
  const health = await fetch(`http://127.0.0.1:${port}/ws/health`);
  assert.equal(health.status, 200, 'the server the banner names answers');
  pretty.child.kill('SIGTERM');
  assert.equal((await exitWithin(pretty, 15_000)).code, 0);

  const prod = runCli(t, ['serve', '--port', '0'], { NODE_ENV: 'production', ESCAI_JWT_SECRET: SECRET }, { cwd: dir });
  await prod.port(20_000);
  prod.child.kill('SIGTERM');
  assert.equal((await exitWithin(prod, 15_000)).code, 0);
  const lines = prod.stdout().split('\n').filter(Boolean);
  assert.ok(lines.length >= 2);
  for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `production stdout is JSON lines: ${line}`);
  assert.doesNotMatch(prod.stderr(), /DEV MODE|console:/, 'no banner in production');
});

test('the demo agents are deterministic for a seed, valid, and tell a story (status, beliefs, alerts, predictions, activity)', { timeout: 60_000 }, () => {
  const run = (seed: number) => {
    const agents = createDemoAgents({ seed, agents: 6 });
    const events = [];
    for (let tick = 0; tick < 300; tick++) for (const agent of agents) events.push(...agent.step());
    assert.equal(validateEvents(events, events.length).length, events.length, 'every event passes the publish schema');
    // Times aside, the same seed gives the same events.
    const TIMES = new Set(['timestamp', 'started_at', 'ended_at', 'duration_ms']);
    return events.map((e) => JSON.stringify(e, (key, value: unknown) => (TIMES.has(key) ? undefined : value)));
  };
  const a = run(42);
  assert.deepEqual(run(42), a);
  assert.notDeepEqual(run(43), a);
  const types = new Set(a.map((e) => (JSON.parse(e) as { type: string }).type));
  assert.deepEqual([...types].sort(), ['agent_activity', 'agent_status_change', 'epistemic_update', 'pattern_alert', 'prediction_update']);
  // The demo says `waiting` (and `running` when it ends); running, completed and failed are the detectors' to derive from its runs.
  const statuses = new Set(
    a
      .map((e) => JSON.parse(e) as { status?: string })
      .map((e) => e.status)
      .filter(Boolean),
  );
  for (const status of ['running', 'waiting']) assert.ok(statuses.has(status), `an agent reaches ${status} within 300 ticks`);
  const steps = a
    .map((e) => JSON.parse(e) as { type: string; data: { kind?: string; state?: string; parent_span_id?: string | null } })
    .filter((e) => e.type === 'agent_activity');
  const roots = steps.filter((e) => e.data.parent_span_id === null);
  assert.ok(roots.some((e) => e.data.state === 'running') && roots.some((e) => e.data.state === 'ok'), 'runs start and end');
  for (const kind of ['agent', 'llm', 'tool'])
    assert.ok(
      steps.some((e) => e.data.kind === kind),
      `a ${kind} step`,
    );
  // A coherent story: an agent whose goals are all met says so confidently; one that gives up does so unsure.
  type Epistemic = { type: string; agent_id: string; data: { confidence_level: number; uncertainty_score: number; goal_states: Array<{ status: string }> } };
  const updates = a.map((e) => JSON.parse(e) as Epistemic).filter((e) => e.type === 'epistemic_update');
  const done = updates.filter((e) => e.data.goal_states.every((g) => g.status === 'completed'));
  assert.ok(done.length >= 3, `runs complete within 300 ticks (${done.length})`);
  for (const e of done) {
    assert.ok(e.data.confidence_level >= CONFIDENT, `${e.agent_id} completed at confidence ${e.data.confidence_level}`);
    assert.ok(e.data.uncertainty_score <= 1 - CONFIDENT + 0.05, `${e.agent_id} completed at uncertainty ${e.data.uncertainty_score}`);
  }
  for (const e of updates.filter((u) => u.data.goal_states.some((g) => g.status === 'failed'))) {
    assert.ok(e.data.confidence_level < 0.2, `${e.agent_id} gave up at confidence ${e.data.confidence_level}`);
  }
});
