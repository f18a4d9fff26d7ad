// Where an idle connection's bytes go: runs a server in this process (with
// --expose-gc), opens N authenticated connections with one subscription each
// from a child process, then reports RSS, heap and external memory per
// connection and the heap's biggest object kinds per connection (from a heap
// snapshot taken before and after).
//
// Usage: node --expose-gc --import tsx bench/connection-memory.ts [connections=5000]
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import type { WebSocket } from 'ws';
import { clientUrl, openClient } from './harness/wire.js';
import { resolveConfig } from '../src/config/config.js';
import { createLogger } from '../src/log.js';
import { EscaiServer } from '../src/server/server.js';
import { SECRET, token } from './lib.js';

const N = Number(process.argv.find((a, i) => i >= 2 && /^\d+$/.test(a)) ?? 5000);

if (process.argv.includes('--clients')) {
  // Child: opens the connections, one subscription each, then waits to be killed.
  const [url, tok] = [process.env['URL']!, process.env['TOKEN']!];
  const sockets: WebSocket[] = [];
  let open = 0;
  // Each connect: handshake, connection_established, one subscribe confirmed (a refusal fails the run).
  const openOne = async (i: number) => {
    sockets.push(
      await openClient({ kind: 'escai', url: clientUrl('escai', url, `m${i}`, tok), subscribe: { agent: `agent-${i % 100}` }, onFrame() {}, onClose() {} }),
    );
    open++;
  };
  for (let i = 0; i < N; i += 100) await Promise.all(Array.from({ length: Math.min(100, N - i) }, (_, k) => openOne(i + k)));
  process.send!({ open });
  await new Promise(() => {});
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] }; node_count: number };
  nodes: number[];
  strings: string[];
}

/** Self size by object kind (constructor name for objects; the node type otherwise). */
function heapByKind(): Map<string, { count: number; bytes: number }> {
  const file = writeHeapSnapshot(join(tmpdir(), `escai-conn-${process.pid}-${Date.now()}.heapsnapshot`));
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  rmSync(file);
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [typeAt, nameAt, sizeAt] = [fields.indexOf('type'), fields.indexOf('name'), fields.indexOf('self_size')];
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    const type = types[snap.nodes[i + typeAt]!]!;
    const kind = type === 'object' || type === 'closure' ? `${type}:${snap.strings[snap.nodes[i + nameAt]!]}` : type;
    const entry = out.get(kind) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += snap.nodes[i + sizeAt]!;
    out.set(kind, entry);
  }
  return out;
}

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const config = resolveConfig({
  port: 0,
  jwtSecret: SECRET,
  logLevel: 'silent',
  maxConnections: N + 100,
  maxConnectionsPerIp: N + 100,
  handshakeRate: 100_000,
  maxConnectionsPerUser: 0,
  heartbeatInterval: 3600,
});
const server = new EscaiServer({ config, logger: createLogger(config.logLevel) });
await server.listen();
const settle = async () => {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 100));
  }
};
await settle();
const before = process.memoryUsage();
const heapBefore = heapByKind();
await settle();
const child = fork(new URL(import.meta.url).pathname, ['--clients', String(N)], {
  env: { ...process.env, URL: server.url, TOKEN: await token('memory-watcher', ['researcher']) },
  execArgv: ['--import', 'tsx'],
});
// The clients' count, or the child's exit (a failed connect) as an error: never a wait without end.
const [ready] = (await Promise.race([
  once(child, 'message'),
  once(child, 'exit').then(([code]) => {
    throw new Error(`the client process exited (${String(code)}) before opening its connections`);
  }),
])) as [{ open: number }];
await settle();
const after = process.memoryUsage();
const heapAfter = heapByKind();
const per = (a: number, b: number) => `${((a - b) / ready.open / 1024).toFixed(2)} KiB`;
console.log(`${ready.open} connections (one subscription each), Node ${process.version}`);
console.log(
  `per connection: rss ${per(after.rss, before.rss)}, heapUsed ${per(after.heapUsed, before.heapUsed)}, external ${per(after.external, before.external)}, arrayBuffers ${per(after.arrayBuffers, before.arrayBuffers)}`,
);
const rows = [...heapAfter].map(([kind, a]) => {
  const b = heapBefore.get(kind) ?? { count: 0, bytes: 0 };
  return { kind, count: (a.count - b.count) / ready.open, bytes: (a.bytes - b.bytes) / ready.open };
});
rows.sort((x, y) => y.bytes - x.bytes);
console.log('heap per connection by kind (snapshot after − before):');
for (const r of rows.slice(0, 30)) console.log(`  ${r.bytes.toFixed(0).padStart(6)} B  ${r.count.toFixed(2).padStart(6)} ×  ${r.kind}`);
child.kill('SIGKILL');
await server.close();
process.exit(0);
