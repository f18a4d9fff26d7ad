// The README's command line in a checkout: `node dist/cli/main.js`, the
// build `npm ci` made (npx would copy the package into its cache and build
// it again, and an interrupted first run there breaks every later one). It
// starts fast because each command loads its heavy modules (the server, the
// SDK, jose) only when it runs; an interrupted run leaves nothing behind
// that breaks the next; the dev banner names the command that works here.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { devBanner, logFormatFor, selfCommand } from '../src/cli/commands/serve.js';
import { REPO_ROOT } from './cli-process.js';

const MAIN = join(REPO_ROOT, 'dist', 'cli', 'main.js');
const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };

function timedRun(args: string[]): { ms: number; stdout: string; status: number | null } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [MAIN, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 20_000 });
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, stdout: r.stdout, status: r.status };
}

test('node dist/cli/main.js starts in well under a second (the commands load the server only when serving)', { timeout: 60_000 }, () => {
  assert.ok(existsSync(MAIN), `${MAIN} is built (npm ci runs npm run build)`);
  const runs = Array.from({ length: 5 }, () => timedRun(['--version']));
  for (const r of runs) {
    assert.equal(r.status, 0);
    assert.equal(r.stdout.trim(), version);
  }
  const median = runs.map((r) => r.ms).sort((a, b) => a - b)[2]!;
  // Not a benchmark: a guard against the command loading the whole server again (≈ 0.7 s here) or
  // being run through npx (≈ 12 s). Unloaded it takes ≈ 0.1 s; the bound leaves room for a busy machine.
  assert.ok(median < 1000, `--version took ${Math.round(median)} ms (median of 5)`);
  const help = timedRun(['tail', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--agent/);
});

test('an interrupted first run leaves nothing that breaks the next one', { timeout: 60_000 }, async () => {
  // Interrupted while starting (as a Ctrl-C or a timeout would), then at work (a tail with no server to reach, retrying).
  for (const args of [['--version'], ['tail', '--url', 'http://127.0.0.1:9', '--token', 'x']]) {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: REPO_ROOT, stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, args.length === 1 ? 5 : 300));
    child.kill('SIGINT');
    await exited;
    const next = timedRun(['--version']);
    assert.equal(next.status, 0, `the run after an interrupted \`${args.join(' ')}\` works`);
    assert.equal(next.stdout.trim(), version);
  }
});

test('the dev banner names the command that works where the server runs', { timeout: 10_000 }, () => {
  assert.equal(selfCommand('/repo/dist/cli/main.js', '/repo'), 'node dist/cli/main.js');
  assert.equal(selfCommand('/repo/src/cli/main.ts', '/repo'), 'node --import tsx src/cli/main.ts');
  assert.equal(selfCommand('/repo/node_modules/escai-realtime/dist/cli/main.js', '/repo'), 'npx escai-realtime', 'installed as a dependency');
  assert.equal(selfCommand('/usr/lib/node_modules/escai-realtime/dist/cli/main.js', '/home/me'), 'npx escai-realtime', 'installed globally');
  assert.equal(selfCommand('', '/repo'), 'npx escai-realtime');
});

test('log format: auto is pretty only for a dev server on a terminal; an explicit setting wins', { timeout: 10_000 }, () => {
  assert.equal(logFormatFor('auto', true, true), 'pretty');
  assert.equal(logFormatFor('auto', true, false), 'json', 'dev mode piped to a file or a collector');
  assert.equal(logFormatFor('auto', false, true), 'json', 'a configured (production) server on a terminal');
  assert.equal(logFormatFor('json', true, true), 'json');
  assert.equal(logFormatFor('pretty', false, false), 'pretty');
});

test('the dev banner: the token once, inside the console link; no colour unless asked', { timeout: 10_000 }, () => {
  const facts = { url: 'http://127.0.0.1:8000', otlpUrl: undefined, token: 'aaa.bbb.ccc', demo: 'off', self: 'node dist/cli/main.js', color: false };
  const text = devBanner(facts);
  assert.equal(text.split('aaa.bbb.ccc').length - 1, 1);
  assert.match(text, /console:\s+http:\/\/127\.0\.0\.1:8000\/#token=aaa\.bbb\.ccc\n/);
  assert.match(text, /watch:\s+node dist\/cli\/main\.js tail\n/);
  assert.match(text, /OTLP:\s+OTEL_EXPORTER_OTLP_ENDPOINT=http:\/\/127\.0\.0\.1:8000\n/);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes (ESC) are what is looked for
  assert.doesNotMatch(text, /\x1b\[/);
  assert.match(
    devBanner({ ...facts, otlpUrl: 'http://127.0.0.1:4318' }),
    /OTEL_EXPORTER_OTLP_ENDPOINT=http:\/\/127\.0\.0\.1:4318\n/,
    'the OTLP port when it has its own',
  );
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes (ESC) are what is looked for
  assert.match(devBanner({ ...facts, color: true }), /\x1b\[1m/);
});
