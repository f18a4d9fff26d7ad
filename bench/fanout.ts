// Fan-out benchmark: deliveries/s and end-to-end latency, one node on the
// memory engine vs two nodes on Redis (publisher on node A, subscribers on
// node B: every delivery crosses Redis). Servers run as separate processes;
// this process is the load (publisher + subscribers) and the clock.
//
// Usage: npm run build && node --import tsx bench/fanout.ts <memory|redis> [subscribers=50] [rate=400] [seconds=10]
//   rate = events/s published (open loop); 0 = closed loop, as fast as the window allows.
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { histogram, startServerProcess, summary, token, type ServerProcess } from './lib.js';

const [engine = 'memory', subsArg = '50', rateArg = '400', secondsArg = '10'] = process.argv.slice(2);
const SUBSCRIBERS = Number(subsArg);
const RATE = Number(rateArg);
const SECONDS = Number(secondsArg);
const WINDOW = 64; // closed loop: publishes in flight

const servers: ServerProcess[] = [];
if (engine === 'redis') {
  const env = { ESCAI_REDIS_URL: process.env['ESCAI_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379', ESCAI_REDIS_PREFIX: `bench-${Date.now()}` };
  servers.push(await startServerProcess(env), await startServerProcess(env));
  await new Promise((r) => setTimeout(r, 500));
} else if (engine === 'memory') {
  servers.push(await startServerProcess());
} else throw new Error('engine must be memory or redis');
const pubUrl = servers[0]!.url.replace('http', 'ws');
const subUrl = servers[servers.length - 1]!.url.replace('http', 'ws');

const h = histogram();
let deliveries = 0;
let measuring = false;

function open(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  return new Promise((resolve, reject) => {
    ws.once('message', () => resolve(ws)); // connection_established
    ws.once('error', reject);
  });
}

const watcher = await token('bench-watcher', ['researcher']);
const subs: WebSocket[] = [];
for (let i = 0; i < SUBSCRIBERS; i++) {
  const ws = await open(`${subUrl}/ws/monitor/sub-${i}?token=${watcher}`);
  ws.send(JSON.stringify({ type: 'subscribe', data: { type: 'epistemic_updates', agent_id: 'bench_agent' } }));
  ws.on('message', (raw) => {
    const text = raw.toString();
    if (!measuring || !text.startsWith('{"type":"epistemic_update"')) return;
    const sentAt = (JSON.parse(text) as { data: { sent_at: number } }).data.sent_at;
    h.recordValue(Math.max(1, Math.round((performance.now() - sentAt) * 1000)));
    deliveries++;
  });
  subs.push(ws);
}
await new Promise((r) => setTimeout(r, 500));

const producer = await open(`${pubUrl}/ws/monitor/producer?token=${await token('bench-producer', ['developer'])}`);
let inFlight = 0;
let published = 0;
const acked = () => {
  inFlight--;
};
producer.on('message', (raw) => {
  if (raw.toString().startsWith('{"type":"publish_confirmed"')) acked();
});
const publishOne = () => {
  inFlight++;
  published++;
  producer.send(
    JSON.stringify({ type: 'publish', data: { type: 'epistemic_update', agent_id: 'bench_agent', data: { confidence_level: 0.9, sent_at: performance.now(), seq: published } } }),
  );
};

// Warm-up second, then the measured run.
const runFor = async (seconds: number) => {
  const end = performance.now() + seconds * 1000;
  if (RATE > 0) {
    const start = performance.now();
    let sent = 0;
    while (performance.now() < end) {
      const due = Math.floor(((performance.now() - start) / 1000) * RATE);
      while (sent < due) {
        publishOne();
        sent++;
      }
      await new Promise((r) => setImmediate(r));
    }
  } else {
    while (performance.now() < end) {
      while (inFlight < WINDOW) publishOne();
      await new Promise((r) => setImmediate(r));
    }
  }
};
await runFor(1);
await new Promise((r) => setTimeout(r, 300));
measuring = true;
const t0 = performance.now();
const publishedBefore = published;
await runFor(SECONDS);
const elapsed = (performance.now() - t0) / 1000;
measuring = false;
const events = published - publishedBefore;
console.log(
  `engine=${engine} nodes=${servers.length} subscribers=${SUBSCRIBERS} rate=${RATE || 'closed-loop'} seconds=${SECONDS}: ` +
    `published ${Math.round(events / elapsed)} ev/s, deliveries ${Math.round(deliveries / elapsed)}/s (expected ${Math.round((events * SUBSCRIBERS) / elapsed)}/s); latency ${summary(h)}`,
);
for (const ws of [...subs, producer]) ws.terminate();
for (const s of servers) await s.stop();
process.exit(0);
