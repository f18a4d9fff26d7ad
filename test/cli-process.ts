// Test support for the real CLI: spawns `src/cli/main.ts` under tsx as a
// child process, collects its output, finds the port it listens on, and
// guarantees the process is gone when the test ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { TestContext } from 'node:test';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CLI_MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
/** tsx's loader as an absolute URL, so the CLI can run with any cwd. */
export const TSX_LOADER = pathToFileURL(fileURLToPath(new URL('../node_modules/tsx/dist/loader.mjs', import.meta.url))).href;

export interface CliProcess {
  child: ChildProcess;
  /** SIGINT, as Ctrl-C sends it: to the process group when the process leads one. */
  interrupt(): void;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or signal) once the process ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Waits until stdout matches `pattern`; rejects if the process exits first or after `timeoutMs`. */
  waitForStdout(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Waits until stderr matches `pattern` (the dev-mode banner is written there, apart from the logs). */
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** The port from the JSON "listening" log line. */
  port(timeoutMs?: number): Promise<number>;
}

/**
 * Every CLI process a test started and that still runs. They are killed when
 * this test process ends for any reason: its tests' own cleanup normally
 * does it, but a test process that is interrupted or killed runs no hooks.
 */
const running = new Set<ChildProcess>();
function killAll(): void {
  for (const child of running) killTree(child);
}

/** SIGKILL to a child, and to its process group when it leads one (spawned `detached`). */
export function killTree(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    else child.kill('SIGKILL');
  } catch {
    child.kill('SIGKILL'); // not a group leader
  }
}

/** Adds a child any test file started to the processes killed when this test process ends (exit, SIGINT, SIGTERM). */
export function trackChild(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
}
process.once('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

/**
 * Runs `node --import tsx src/cli/main.ts ...args` with exactly `env` (plus
 * PATH/HOME) — no ESCAI_* or NODE_ENV leaks in from the test's environment.
 */
export function runCli(t: TestContext, args: string[], env: Record<string, string>, options: { cwd?: string } = {}): CliProcess {
  return runProcess(t, process.execPath, ['--import', TSX_LOADER, CLI_MAIN, ...args], { ...baseEnv(), ...env }, { cwd: options.cwd ?? REPO_ROOT });
}

/** PATH, HOME, TMPDIR and LANG from the test's environment: what a child needs, nothing that configures it. */
export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of ['PATH', 'HOME', 'TMPDIR', 'LANG']) {
    const v = process.env[key];
    if (v !== undefined) env[key] = v;
  }
  return env;
}

/**
 * Runs `file args` with exactly `env`, in `cwd`, collecting its output; it is
 * killed when the test ends (or this test process does). With `group`, it
 * leads its own process group, as a terminal's foreground job does:
 * `interrupt()` then sends SIGINT to the whole group, as Ctrl-C would, and
 * the cleanup kills the group.
 */
export function runProcess(t: TestContext, file: string, args: string[], env: Record<string, string>, options: { cwd: string; group?: boolean }): CliProcess {
  const child = spawn(file, args, { cwd: options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: options.group === true });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    for (const l of [...listeners]) l();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
    for (const l of [...listeners]) l();
  });
  trackChild(child);
  const exited = once(child, 'exit').then(([code, signal]) => {
    return { code: code as number | null, signal: signal as NodeJS.Signals | null };
  });
  let done = false;
  void exited.then(() => {
    done = true;
    for (const l of [...listeners]) l();
  });
  t.after(async () => {
    if (!done) {
      if (options.group === true) killTree(child);
      else child.kill('SIGKILL');
      await exited;
    }
  });

  function waitFor(which: 'stdout' | 'stderr', pattern: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = (which === 'stdout' ? out : err).match(pattern);
        if (m) {
          finish();
          resolve(m);
        } else if (done) {
          finish();
          reject(new Error(`process exited before ${pattern} appeared on ${which}; stdout: ${out.slice(-1000)} stderr: ${err.slice(-1000)}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out waiting for ${pattern} on ${which}; stdout: ${out.slice(-1000)} stderr: ${err.slice(-1000)}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });
  }

  const waitForStdout = (pattern: RegExp, timeoutMs?: number) => waitFor('stdout', pattern, timeoutMs);
  const waitForStderr = (pattern: RegExp, timeoutMs?: number) => waitFor('stderr', pattern, timeoutMs);

  return {
    child,
    interrupt() {
      if (done) return;
      if (options.group === true && child.pid !== undefined) process.kill(-child.pid, 'SIGINT');
      else child.kill('SIGINT');
    },
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForStdout,
    waitForStderr,
    async port(timeoutMs = 10_000) {
      const [line] = await waitForStdout(/^\{.*"msg":"listening".*\}$/m, timeoutMs);
      const port = (JSON.parse(line) as { port?: unknown }).port;
      if (typeof port !== 'number' || port <= 0) throw new Error(`no port in listening line: ${line}`);
      return port;
    },
  };
}

/** Waits for the process to exit, failing after `timeoutMs`. */
export async function exitWithin(proc: CliProcess, timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`process did not exit within ${timeoutMs} ms; stderr: ${proc.stderr().slice(-1000)}`)), timeoutMs);
  });
  try {
    return await Promise.race([proc.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
