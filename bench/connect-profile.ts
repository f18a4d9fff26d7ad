// Profiles a connect storm: starts the built server under --cpu-prof (profile
// written to PROF_DIR, default /tmp/escai-prof, when it stops), opens N
// connections (100 at a time, 100 users' tokens, handshake + connection_established
// + one subscribe confirmed each), prints the connect rate and stops the server.
// Read the profile in Chrome DevTools (Performance → Load profile) or any
// .cpuprofile viewer.
//
// Usage: npm run build && node --import tsx bench/connect-profile.ts [connections=6000]
import type { WebSocket } from 'ws';
import { clientUrl, openClient } from './harness/wire.js';
import { ESCAI_BENCH_ENV } from './harness/servers.js';
import { startServerProcess, token } from './lib.js';

const N = Number(process.argv[2] ?? 6000);
const PROF_DIR = process.env['PROF_DIR'] ?? '/tmp/escai-prof';
// startServerProcess runs the server under --cpu-prof when ESCAI_BENCH_PROFILE names a directory.
process.env['ESCAI_BENCH_PROFILE'] = PROF_DIR;
const server = await startServerProcess({ ...ESCAI_BENCH_ENV });
const tokens = await Promise.all(Array.from({ length: 100 }, (_, u) => token(`u${u}`, ['researcher'])));
const socks: WebSocket[] = [];
// A connect: handshake, connection_established, one subscribe confirmed (a refusal fails the run).
const one = async (i: number) => {
  const ws = await openClient({
    kind: 'escai',
    url: clientUrl('escai', server.url, `s${i}`, tokens[i % 100]!),
    subscribe: { agent: `a${i % 50}` },
    onFrame() {},
    onClose() {},
  });
  socks.push(ws);
};
try {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 100 }, async () => {
      while (next < N) await one(next++);
    }),
  );
  console.log(`${N} connects at ${(N / ((performance.now() - t0) / 1000)).toFixed(0)}/s; profile in ${PROF_DIR}`);
} finally {
  for (const ws of socks) ws.terminate();
  await server.stop();
}
process.exit(0);
