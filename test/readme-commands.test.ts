// The README's Quick start, command-line and Python sections, run the way a
// newcomer runs them: in a fresh copy of the checkout (the files git tracks
// or would track, uncommitted changes included; no node_modules, no dist),
// every line of their ```sh blocks, as written, through bash, in order, next
// to the server the Quick start starts on its default port. A command that
// runs until Ctrl-C gets it (SIGINT to its process group, as a terminal
// sends it) once it has shown it works, and must then exit 0. Not run
// literally: `npm ci && npm test`, which is this suite (CI runs it), and the
// placeholder host `node-b` ("another node of yours"), which is this machine.
//
// Each command must match exactly one expectation below, and each
// expectation must match a command: a line added to or changed in those
// sections fails here until it says what it should do.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { baseEnv, exitWithin, killTree, REPO_ROOT, runProcess, type CliProcess } from './cli-process.js';
import { TEST_ENGINE } from './helpers.js';
import { need, PYTHON, pythonReady } from './require.js';

/** The README sections whose commands are checked. */
const SECTIONS = ['Quick start', 'The command line', 'Python'];

/** Each ```sh line of a README section (continuations joined, comments and blank lines dropped). */
function shellCommands(readme: string, heading: string): string[] {
  const start = readme.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README has no "## ${heading}" section`);
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const commands: string[] = [];
  for (const [, block] of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of block!.replace(/\\\n\s*/g, ' ').split('\n')) {
      const trimmed = line.trim();
      if (trimmed && !trimmed.startsWith('#')) commands.push(trimmed);
    }
  }
  return commands;
}

type Stream = 'stdout' | 'stderr';
interface Expectation {
  /** Which README command this is. */
  match: RegExp;
  /**
   * exits: runs to its end, exit code 0.
   * interrupt: runs until `ready` shows, then Ctrl-C; exit code 0.
   * alongside: runs until `ready` shows and stays up while the next command runs; then `before` must show, Ctrl-C, exit code 0.
   * server: the Quick start's server, up until every other command ran.
   * suite: this test suite itself, not run here.
   */
  how: 'exits' | 'interrupt' | 'alongside' | 'server' | 'suite';
  ready?: [Stream, RegExp];
  /** For `alongside`: what it must have shown once the next command ended. */
  before?: [Stream, RegExp];
  /** What the output shows once the command ended. */
  shows?: Array<[Stream, RegExp]>;
  python?: boolean;
  timeoutMs?: number;
}

const CLI = String.raw`node dist/cli/main\.js`;
const EXPECTATIONS: Expectation[] = [
  // Quick start
  { match: /^npm ci && npm start$/, how: 'server', ready: ['stderr', /console:\s+http:\/\/127\.0\.0\.1:8000\/#token=\S+/], timeoutMs: 180_000 },
  { match: new RegExp(`^${CLI} tail$`), how: 'interrupt', ready: ['stdout', /#\d+ +(epistemic|status|prediction|alert)/] },
  { match: /^npm ci && npm test$/, how: 'suite' },
  // The command line
  { match: new RegExp(`^${CLI} tail --agent support-bot --latest\\b`), how: 'interrupt', ready: ['stdout', /support-bot +#\d+ .*\[latest\]/] },
  { match: new RegExp(`^${CLI} tail --type pattern_alerts --filter `), how: 'interrupt', ready: ['stderr', /connected to http:\/\/127\.0\.0\.1:8000/] },
  {
    match: new RegExp(`^${CLI} publish --type agent_status_change --agent support-bot --status waiting\\b`),
    how: 'exits',
    shows: [['stdout', /"offset":\d+/]],
  },
  { match: /^echo '\{.*"agent_id":"my-test-agent".*\}' > events\.ndjson\b/, how: 'exits' },
  { match: new RegExp(`^${CLI} publish --file events\\.ndjson --rate 200\\b`), how: 'exits', shows: [['stderr', /published 1 event in/]] },
  {
    match: new RegExp(`^${CLI} agents +#`),
    how: 'exits',
    shows: [
      ['stdout', /^support-bot +\w+/m],
      ['stdout', /^my-test-agent +running/m],
    ],
  },
  { match: new RegExp(`^${CLI} agents remove my-test-agent\\b`), how: 'exits' },
  {
    match: new RegExp(`^${CLI} health\\b`),
    how: 'exits',
    shows: [
      ['stdout', /engine memory/],
      ['stdout', /127\.0\.0\.1:8000/],
    ],
  },
  {
    match: new RegExp(`^${CLI} demo --url http://node-b:8000 --token "\\$DEV_TOKEN"`),
    how: 'interrupt',
    ready: ['stderr', /publishing to http:\/\/127\.0\.0\.1:8000/],
    shows: [['stderr', /demo stopped after \d+ ticks?\n/]],
  },
  { match: new RegExp(`^${CLI} token --sub alice --role researcher\\b`), how: 'exits', shows: [['stdout', /^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/]] },
  // Python: the watcher side by side with the agent it watches
  {
    match: new RegExp(`^ESCAI_TOKEN=\\$\\(${CLI} token --sub me --role researcher\\) python3 clients/python/examples/watch\\.py$`),
    how: 'alongside',
    python: true,
    ready: ['stdout', /watching ticket-bot at ws:\/\/127\.0\.0\.1:8000/],
    before: ['stdout', /STATUS +idle/],
    shows: [['stdout', /thinks +confidence=0\.\d+/]],
  },
  {
    match: new RegExp(`^ESCAI_TOKEN=\\$\\(${CLI} token --sub ticket-bot --role developer\\) python3 clients/python/examples/agent\\.py$`),
    how: 'exits',
    python: true,
    shows: [['stdout', /done: every event was accepted/]],
    timeoutMs: 120_000,
  },
];

/** A copy of the checkout as a fresh clone has it: what git tracks or would track, nothing it ignores. */
function freshCopy(to: string): void {
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: REPO_ROOT, encoding: 'utf8' })
    .split('\0')
    .filter(Boolean);
  for (const file of files) {
    const from = join(REPO_ROOT, file);
    if (!existsSync(from)) continue; // deleted in the working tree
    mkdirSync(dirname(join(to, file)), { recursive: true });
    cpSync(from, join(to, file));
  }
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

function waitOn(proc: CliProcess, [stream, pattern]: [Stream, RegExp], timeoutMs: number): Promise<RegExpMatchArray> {
  return stream === 'stdout' ? proc.waitForStdout(pattern, timeoutMs) : proc.waitForStderr(pattern, timeoutMs);
}

function checkShows(proc: CliProcess, command: string, shows: Array<[Stream, RegExp]> = []): void {
  for (const [stream, pattern] of shows) {
    const text = stream === 'stdout' ? proc.stdout() : proc.stderr();
    assert.match(text, pattern, `\`${command}\` shows ${pattern} on ${stream}; it printed: ${text.slice(-800)}`);
  }
}

async function interrupted(proc: CliProcess, command: string): Promise<void> {
  proc.interrupt();
  const { code, signal } = await exitWithin(proc, 15_000);
  assert.equal(code, 0, `\`${command}\` exits 0 on Ctrl-C (exit ${code}, signal ${signal}); stderr: ${proc.stderr().slice(-800)}`);
}

test("the README's Quick start, command-line and Python commands run as written from a fresh copy", { timeout: 420_000 }, async (t: TestContext) => {
  if (TEST_ENGINE === 'redis') {
    t.skip('runs in the main pass only: the commands use the dev server, whatever the engine under test');
    return;
  }
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const commands = SECTIONS.flatMap((heading) => shellCommands(readme, heading));
  const plan = commands.map((command) => {
    const matching = EXPECTATIONS.filter((e) => e.match.test(command));
    assert.equal(matching.length, 1, `README command \`${command}\` matches ${matching.length} expectations here (exactly one wanted)`);
    return { command, expect: matching[0]! };
  });
  for (const e of EXPECTATIONS)
    assert.ok(
      plan.some((p) => p.expect === e),
      `an expectation no README command matches any more: ${e.match}`,
    );
  assert.equal(plan[0]?.expect.how, 'server', 'the Quick start starts with the server');

  const python = pythonReady('websockets');
  const withPython = need(t, 'python', python.ok, `${PYTHON} cannot import websockets: ${python.why}`);
  assert.ok(await portFree(8000), 'port 8000 is free: the README commands use the default port (stop whatever listens there)');

  const root = mkdtempSync(join(tmpdir(), 'escai-readme-'));
  const started: CliProcess[] = [];
  // Hooks run in the order they were added: the processes go before the directory they run in.
  t.after(async () => {
    for (const proc of started) killTree(proc.child);
    await Promise.all(started.map((proc) => proc.exited));
    rmSync(root, { recursive: true, force: true });
  });
  const checkout = join(root, 'escai-realtime');
  freshCopy(checkout);
  assert.ok(!existsSync(join(checkout, 'node_modules')) && !existsSync(join(checkout, 'dist')), 'the copy starts without node_modules and dist');
  // `python3` as the README says it: an interpreter that has websockets.
  const bin = join(root, 'bin');
  mkdirSync(bin);
  symlinkSync(PYTHON, join(bin, 'python3'));
  const env: Record<string, string> = { ...baseEnv(), PATH: `${bin}:${process.env['PATH'] ?? ''}` };
  const run = (command: string) => {
    const proc = runProcess(t, 'bash', ['-c', command], env, { cwd: checkout, group: true });
    started.push(proc);
    return proc;
  };

  let server: CliProcess | undefined;
  let alongside: { proc: CliProcess; command: string; expect: Expectation } | undefined;
  for (const { command, expect } of plan) {
    if (expect.how === 'suite') {
      t.diagnostic(`not run: \`${command}\` is this test suite (CI runs it)`);
      continue;
    }
    if (expect.python && !withPython) continue;
    const line = command.replaceAll('http://node-b:8000', 'http://127.0.0.1:8000');
    const timeoutMs = expect.timeoutMs ?? 30_000;
    const started = process.hrtime.bigint();
    const proc = run(line);
    if (expect.how === 'server') {
      await waitOn(proc, expect.ready!, timeoutMs);
      server = proc;
      // The demo token for `demo --token "$DEV_TOKEN"`: a developer token, as the dev banner's "a token" line signs it.
      env['DEV_TOKEN'] = execFileSync('node', ['dist/cli/main.js', 'token', '--sub', 'demo', '--role', 'developer'], {
        cwd: checkout,
        env,
        encoding: 'utf8',
      }).trim();
    } else if (expect.how === 'exits') {
      const { code } = await exitWithin(proc, timeoutMs);
      assert.equal(code, 0, `\`${command}\` exits 0; stdout: ${proc.stdout().slice(-800)} stderr: ${proc.stderr().slice(-800)}`);
      checkShows(proc, command, expect.shows);
    } else {
      await waitOn(proc, expect.ready!, timeoutMs);
      if (expect.how === 'interrupt') {
        await interrupted(proc, command);
        checkShows(proc, command, expect.shows);
      }
    }
    t.diagnostic(`${Math.round(Number(process.hrtime.bigint() - started) / 1e6)} ms: ${command}`);
    if (alongside) {
      await waitOn(alongside.proc, alongside.expect.before!, 30_000);
      await interrupted(alongside.proc, alongside.command);
      checkShows(alongside.proc, alongside.command, alongside.expect.shows);
      alongside = undefined;
    }
    if (expect.how === 'alongside') alongside = { proc, command, expect };
  }
  assert.equal(alongside, undefined, `\`${alongside?.command}\` was to run alongside a next command; there is none`);

  // Ctrl-C in the Quick start's terminal: the server (under npm) shuts down.
  assert.ok(server, 'the server ran');
  server.interrupt();
  await exitWithin(server, 20_000);
  assert.match(server.stdout(), /"msg":"shutting down"/, 'the server logged its shutdown');
});
