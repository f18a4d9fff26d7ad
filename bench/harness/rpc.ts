// Typed request/response over the IPC channel of a forked load generator:
// the orchestrator calls `worker.call('connect', {...})`, the child answers
// from a handler table. One door for every child, so each can be killed on
// exit, error and SIGINT (see `killAll`).
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A child's API: command name → argument and result types. */
export type Api = Record<string, { arg: unknown; result: unknown }>;

interface Request {
  id: number;
  cmd: string;
  arg: unknown;
}
interface Response {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

const children = new Set<ChildProcess>();

/** Kills every child started with `spawnWorker` (and registered processes); safe to call twice. */
export function killAll(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
}

/** Registers a process started elsewhere (a server) so `killAll` ends it too. */
export function track(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

// Whatever ends a benchmark script (its end, an error, Ctrl-C, SIGTERM) ends every process it started.
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });

export interface Worker<A extends Api> {
  readonly pid: number;
  call<K extends keyof A & string>(cmd: K, arg: A[K]['arg']): Promise<A[K]['result']>;
  stop(): Promise<void>;
}

/** Forks `node --import tsx bench/<file>` and returns a typed caller. */
export function spawnWorker<A extends Api>(file: string): Worker<A> {
  const path = fileURLToPath(new URL(`../${file}`, import.meta.url));
  const child = fork(path, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  track(child);
  let next = 1;
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  child.on('message', (raw) => {
    const res = raw as Response;
    const p = pending.get(res.id);
    if (!p) return;
    pending.delete(res.id);
    if (res.ok) p.resolve(res.result);
    else p.reject(new Error(`${file}: ${res.error}`));
  });
  child.once('exit', (code, signal) => {
    for (const p of pending.values()) p.reject(new Error(`${file} exited (${code ?? signal})`));
    pending.clear();
  });
  return {
    pid: child.pid ?? 0,
    call<K extends keyof A & string>(cmd: K, arg: A[K]['arg']): Promise<A[K]['result']> {
      const id = next++;
      return new Promise<A[K]['result']>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ id, cmd, arg } satisfies Request);
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Child side: answers requests with the handler table; exits when the parent goes away. */
export function serveWorker<A extends Api>(handlers: { [K in keyof A]: (arg: A[K]['arg']) => Promise<A[K]['result']> | A[K]['result'] }): void {
  process.on('message', (raw) => {
    const req = raw as Request;
    const handler = handlers[req.cmd as keyof A];
    Promise.resolve()
      .then(() => handler(req.arg as A[keyof A]['arg']))
      .then(
        (result) => process.send?.({ id: req.id, ok: true, result } satisfies Response),
        (err: unknown) => process.send?.({ id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) } satisfies Response),
      );
  });
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
}
