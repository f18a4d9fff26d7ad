// Profiles a connect storm: starts the built server under --cpu-prof (profile
// written to PROF_DIR, default /tmp/escai-prof, when it stops), opens N
// connections (100 at a time, 100 users' tokens, handshake + connection_established
// + one subscribe confirmed each), prints the connect rate and stops the server.
// Read the profile in Chrome DevTools (Performance → Load profile) or any
// .cpuprofile viewer.
//
// Usage: npm run build && node --import tsx bench/connect-profile.ts [connections=6000]
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { WebSocket } from 'ws';
import { SECRET, token } from './lib.js';
const N = Number(process.argv[2] ?? 6000);
const PROF_DIR = process.env['PROF_DIR'] ?? '/tmp/escai-prof';
const child = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${PROF_DIR}`, 'dist/cli/main.js', 'serve', '--port', '0'], { env: { ...process.env, ESCAI_JWT_SECRET: SECRET, ESCAI_LOG_LEVEL: 'info', ESCAI_MAX_CONNECTIONS_PER_IP: '100000', ESCAI_HANDSHAKE_RATE: '100000', ESCAI_MAX_CONNECTIONS: '100000' }, stdio: ['ignore', 'pipe', 'inherit'] });
let port = 0;
for await (const line of createInterface({ input: child.stdout! })) { try { const r = JSON.parse(line); if (r.msg === 'listening') { port = r.port; break; } } catch {} }
const tokens = await Promise.all(Array.from({ length: 100 }, (_, u) => token(`u${u}`, ['researcher'])));
const socks: WebSocket[] = [];
const one = (i: number) => new Promise<void>((res, rej) => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/monitor/s${i}?token=${tokens[i % 100]}`);
  socks.push(ws); ws.once('error', rej);
  ws.once('message', () => { ws.send(JSON.stringify({ type: 'subscribe', data: { type: 'epistemic_updates', agent_id: `a${i % 50}` } })); ws.once('message', () => res()); });
});
const t0 = performance.now();
let next = 0;
await Promise.all(Array.from({ length: 100 }, async () => { while (next < N) await one(next++); }));
console.log(`${N} connects at ${(N / ((performance.now() - t0) / 1000)).toFixed(0)}/s; profile in ${PROF_DIR}`);
for (const ws of socks) ws.terminate();
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
process.exit(0);
