// Fan-out benchmark: deliveries/s and end-to-end latency for
//   memory   one ESCAI node, in-memory engine;
//   redis    two ESCAI nodes on Redis (publisher on node A, subscribers on
//            node B: every delivery crosses Redis);
//   socketio a Socket.IO 4 server doing the same job (peer, same harness).
// Servers run as separate processes; this process is the load (publisher +
// subscribers) and the clock.
//
// Usage: [BATCH=1] npm run build && node --import tsx bench/fanout.ts <memory|redis|socketio> [subscribers=50] [rate=400] [seconds=10]
//   rate = events/s published (open loop); 0 = closed loop, as fast as a window of 64 unacknowledged publishes allows.
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { io as ioClient } from 'socket.io-client';
import { WebSocket } from 'ws';
import { histogram, startProcess, startServerProcess, summary, token, type ServerProcess } from './lib.js';

const [engine = 'memory', subsArg = '50', rateArg = '400', secondsArg = '10'] = process.argv.slice(2);
const SUBSCRIBERS = Number(subsArg);
const RATE = Number(rateArg);
const SECONDS = Number(secondsArg);
const WINDOW = 64;
/** BATCH=1: ESCAI subscribers ask for batched frames (`?batch=1`). */
const BATCH = process.env['BATCH'] === '1';
const AGENT = 'bench_agent';

interface Target {
  servers: ServerProcess[];
  /** Connects subscriber `i`; calls `onEvent(sentAt)` per delivered event. */
  subscriber(i: number, onEvent: (sentAt: number) => void): Promise<() => void>;
  /** Connects the producer; `publish` sends one event and calls `onAck` when the server acknowledged it. */
  producer(onAck: () => void): Promise<{ publish(seq: number): void; close(): void }>;
}

async function escaiTarget(servers: ServerProcess[]): Promise<Target> {
  const pubUrl = servers[0]!.url.replace('http', 'ws');
  const subUrl = servers[servers.length - 1]!.url.replace('http', 'ws');
  const open = (url: string) =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once('message', () => resolve(ws)); // connection_established
      ws.once('error', reject);
    });
  const watcher = await token('bench-watcher', ['researcher']);
  const producerToken = await token('bench-producer', ['developer']);
  return {
    servers,
    async subscriber(i, onEvent) {
      const ws = await open(`${subUrl}/ws/monitor/sub-${i}?token=${watcher}${BATCH ? '&batch=1' : ''}`);
      ws.send(JSON.stringify({ type: 'subscribe', data: { type: 'epistemic_updates', agent_id: AGENT } }));
      ws.on('message', (raw) => {
        const text = raw.toString();
        if (text.startsWith('{"type":"epistemic_update"')) onEvent((JSON.parse(text) as { data: { sent_at: number } }).data.sent_at);
        else if (text.startsWith('[')) {
          // A batched frame (batch=1): several messages, in order.
          for (const m of JSON.parse(text) as Array<{ type: string; data: { sent_at: number } }>) if (m.type === 'epistemic_update') onEvent(m.data.sent_at);
        }
      });
      return () => ws.terminate();
    },
    async producer(onAck) {
      const ws = await open(`${pubUrl}/ws/monitor/producer?token=${producerToken}`);
      ws.on('message', (raw) => {
        if (raw.toString().startsWith('{"type":"publish_confirmed"')) onAck();
      });
      return {
        publish: (seq) =>
          ws.send(
            JSON.stringify({
              type: 'publish',
              data: { type: 'epistemic_update', agent_id: AGENT, data: { confidence_level: 0.9, sent_at: performance.now(), seq } },
            }),
          ),
        close: () => ws.terminate(),
      };
    },
  };
}

async function socketioTarget(): Promise<Target> {
  const server = await startProcess(['--import', 'tsx', fileURLToPath(new URL('./peer-socketio-server.ts', import.meta.url))]);
  const connect = () =>
    new Promise<ReturnType<typeof ioClient>>((resolve, reject) => {
      const socket = ioClient(server.url, { transports: ['websocket'], forceNew: true });
      socket.once('connect', () => resolve(socket));
      socket.once('connect_error', reject);
    });
  return {
    servers: [server],
    async subscriber(_i, onEvent) {
      const socket = await connect();
      socket.emit('subscribe', AGENT);
      socket.on('epistemic_update', (event: { data: { sent_at: number } }) => onEvent(event.data.sent_at));
      return () => socket.close();
    },
    async producer(onAck) {
      const socket = await connect();
      return {
        publish: (seq) =>
          socket.emit('publish', { type: 'epistemic_update', agent_id: AGENT, data: { confidence_level: 0.9, sent_at: performance.now(), seq } }, onAck),
        close: () => socket.close(),
      };
    },
  };
}

let target: Target;
if (engine === 'redis') {
  const env = { ESCAI_REDIS_URL: process.env['ESCAI_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379', ESCAI_REDIS_PREFIX: `bench-${Date.now()}` };
  target = await escaiTarget([await startServerProcess(env), await startServerProcess(env)]);
  await new Promise((r) => setTimeout(r, 500));
} else if (engine === 'memory') target = await escaiTarget([await startServerProcess()]);
else if (engine === 'socketio') target = await socketioTarget();
else throw new Error('engine must be memory, redis or socketio');

const h = histogram();
let deliveries = 0;
let measuring = false;
const closers: Array<() => void> = [];
for (let i = 0; i < SUBSCRIBERS; i++) {
  closers.push(
    await target.subscriber(i, (sentAt) => {
      if (!measuring) return;
      h.recordValue(Math.max(1, Math.round((performance.now() - sentAt) * 1000)));
      deliveries++;
    }),
  );
}
await new Promise((r) => setTimeout(r, 500));

let inFlight = 0;
let published = 0;
const producer = await target.producer(() => inFlight--);
const publishOne = () => {
  inFlight++;
  producer.publish(++published);
};

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
await runFor(1); // warm-up
await new Promise((r) => setTimeout(r, 300));
measuring = true;
const t0 = performance.now();
const publishedBefore = published;
await runFor(SECONDS);
const elapsed = (performance.now() - t0) / 1000;
measuring = false;
const events = published - publishedBefore;
console.log(
  `engine=${engine} nodes=${target.servers.length} subscribers=${SUBSCRIBERS} rate=${RATE || 'closed-loop'} seconds=${SECONDS}: ` +
    `published ${Math.round(events / elapsed)} ev/s, deliveries ${Math.round(deliveries / elapsed)}/s (expected ${Math.round((events * SUBSCRIBERS) / elapsed)}/s); latency ${summary(h)}`,
);
for (const close of closers) close();
producer.close();
for (const s of target.servers) await s.stop();
process.exit(0);
