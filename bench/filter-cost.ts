// Filter cost bound (issue 19, item 4): what one event costs the node under the
// worst filters the limits allow, beside no filters, in the same run.
//
//   shapes   in process, no server: the heaviest shapes allowed (each at the
//            per-filter cost limit, made distinct so that nothing is shared)
//            judged against events with lists far past the scan cap; µs per
//            event per filter, and ns per cost unit.
//   server   a server in its own process (the source, under tsx), 1,000
//            subscriptions (one all-agents epistemic_updates subscription per
//            connection, the connections in a forked load-generator process) and
//            one producer in this process publishing at a fixed rate (open loop)
//            events whose list is longer than the cap. Phases alternate on the
//            same server and connections: `none` (no filter) and `worst` (the
//            heaviest allowed shape, a distinct filter per subscription, every
//            event matching so both phases deliver the same). Per phase: the
//            server's event-loop delay p99 and max (prom-client's
//            monitorEventLoopDelay, read from /metrics, which resets it at each
//            scrape; it samples every 10 ms, so its figures include those 10 ms:
//            min ≈ 10 ms on an idle loop), deliveries/s at the subscribers, server CPU.
//
// Usage: node --import tsx bench/filter-cost.ts [seconds=10] [rate=20] [subscriptions=1000] [rounds=2] [shape=all-keys]
//        node --import tsx bench/filter-cost.ts shapes
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import type { DeliveredEvent } from '../src/engine/broker.js';
import { compileSubscriptionFilter, CONTAINS_COST, FILTER_LIMITS } from '../src/filters/compile.js';
import { BENCH_SERVER_ENV, startProcess, token } from './lib.js';
import { serveWorker, spawnWorker, type Worker } from './harness/rpc.js';

const Q = FILTER_LIMITS.scanItems;
/** Elements in the benchmark events' list: past the cap, within the default ESCAI_MAX_EVENT_BYTES (64 KiB). */
const LIST_LENGTH = 2 * Q;

// ---- the shapes ----------------------------------------------------------------

interface Shape {
  /** The filter of subscription `i`: at (or just under) FILTER_LIMITS.cost, different for every `i`. */
  filter(i: number): Record<string, unknown>;
  /** Event data every filter of the shape matches (so that nothing stops early). */
  data(seq: number): Record<string, unknown>;
}

/** `all` over a list, the inner filter as many keys as the budget allows (at most FILTER_LIMITS.keys), each a `min` and a `max` that hold. */
const allKeysCount = Math.min(FILTER_LIMITS.keys, Math.floor((FILTER_LIMITS.cost - 2) / Q / 3));
/** `all` over a list, the inner filter keys of six operators that hold (7 units a key). */
const allOpsCount = Math.floor((FILTER_LIMITS.cost - 2) / Q / 7);
/** `$not` of a `contains` that never matches (3 + CONTAINS_COST units each), on lists of strings / on one long text: as many as the cost and node limits allow. */
const containsCount = Math.min(Math.floor((FILTER_LIMITS.cost - 3) / (3 + CONTAINS_COST)), Math.floor((FILTER_LIMITS.nodes - 16) / 3));
/** `any` over a list, a `contains` that never matches in each element, repeated while the budget lasts. */
const anyContainsCount = Math.max(1, Math.floor((FILTER_LIMITS.cost - 2) / (2 + Q * (2 + CONTAINS_COST))));
/** `{$and: [{$and: [≤ 32 conditions]}, …]}`: every condition judged (each holds). */
function allOf(conditions: Array<Record<string, unknown>>): Record<string, unknown> {
  const chunks: Array<Record<string, unknown>> = [];
  for (let i = 0; i < conditions.length; i += 32) chunks.push({ $and: conditions.slice(i, i + 32) });
  return { $and: chunks };
}

const SHAPES: Record<string, Shape> = {
  'all-keys': {
    filter: (i) => ({ items: { all: Object.fromEntries(Array.from({ length: allKeysCount }, (_, k) => [`k${k}`, { min: -1 - i, max: 1e9 + i }])) } }),
    data: (seq) => ({
      seq,
      items: Array.from({ length: LIST_LENGTH }, () => Object.fromEntries(Array.from({ length: allKeysCount }, (_, k) => [`k${k}`, k]))),
    }),
  },
  'all-ops': {
    filter: (i) => ({
      items: {
        all: Object.fromEntries(
          Array.from({ length: allOpsCount }, (_, k) => [`k${k}`, { min: -1 - i, max: 1e9 + i, equals: 1, in: [1, -i], not_in: [-1 - i], exists: true }]),
        ),
      },
    }),
    data: (seq) => ({ seq, items: Array.from({ length: LIST_LENGTH }, () => Object.fromEntries(Array.from({ length: allOpsCount }, (_, k) => [`k${k}`, 1]))) }),
  },
  'contains-lists': {
    filter: (i) => allOf(Array.from({ length: containsCount }, (_, k) => ({ $not: { [`t${k % 8}`]: { contains: `absent-${i}-${k}` } } }))),
    // Strings of 64 characters: the first scanItems of them are scanText characters, all searched.
    data: (seq) => ({
      seq,
      ...Object.fromEntries(Array.from({ length: 8 }, (_, k) => [`t${k}`, Array.from({ length: Q + 8 }, (_, j) => `tag ${j} `.padEnd(64, 'x'))])),
    }),
  },
  'contains-short': {
    // The most list elements one contains walks, each a short string: the per-element overhead, not the text search.
    filter: (i) => allOf(Array.from({ length: containsCount }, (_, k) => ({ $not: { [`t${k % 8}`]: { contains: `absent-${i}-${k}` } } }))),
    data: (seq) => ({ seq, ...Object.fromEntries(Array.from({ length: 8 }, (_, k) => [`t${k}`, Array.from({ length: Q + 8 }, (_, j) => `${j % 10}`)])) }),
  },
  'any-contains': {
    // A text search in each element of a list ("a belief whose content mentions X"), none matching: every element searched.
    filter: (i) => allOf(Array.from({ length: anyContainsCount }, (_, k) => ({ [`b${k}`]: { any: { content: { contains: `absent-${i}-${k}` } } } }))),
    data: (seq) => ({
      seq,
      ...Object.fromEntries(
        Array.from({ length: anyContainsCount }, (_, k) => [
          `b${k}`,
          Array.from({ length: Q + 8 }, (_, j) => ({ n: j, content: `belief ${j} `.padEnd(FILTER_LIMITS.scanText, 'z') })),
        ]),
      ),
    }),
  },
  'contains-text': {
    filter: (i) => allOf(Array.from({ length: containsCount }, (_, k) => ({ $not: { text: { contains: `absent-${i}-${k}` } } }))),
    data: (seq) => ({ seq, text: 'lorem ipsum dolor sit amet, '.repeat(2000) }),
  },
};

function delivered(data: Record<string, unknown>, seq: number): DeliveredEvent {
  return {
    type: 'epistemic_update',
    event_id: `e${seq}`,
    agent_id: 'a1',
    timestamp: new Date(0).toISOString(),
    epoch: 'e',
    offset: seq,
    data,
  } as unknown as DeliveredEvent;
}

/** Each shape: `filters` distinct filters judge `events` distinct events; per event per filter, and per cost unit. */
function measureShapes(filters = 200, events = 30): void {
  console.log(`shapes: scanItems=${Q} cost limit=${FILTER_LIMITS.cost}; ${filters} distinct filters × ${events} events, lists of ${LIST_LENGTH}`);
  for (const [name, shape] of Object.entries(SHAPES)) {
    const compiled = Array.from({ length: filters }, (_, i) => compileSubscriptionFilter(shape.filter(i)));
    const cost = compiled[0]!.cost;
    const evs = Array.from({ length: events + 5 }, (_, s) => delivered(shape.data(s), s));
    let matched = 0;
    for (const e of evs.slice(0, 5)) for (const f of compiled) matched += f.match(e) ? 1 : 0; // warm-up
    const t0 = performance.now();
    for (const e of evs.slice(5)) for (const f of compiled) matched += f.match(e) ? 1 : 0;
    const us = ((performance.now() - t0) * 1000) / (events * filters);
    const bytes = Buffer.byteLength(JSON.stringify(evs[0]!.data));
    console.log(
      `  ${name.padEnd(15)} cost ${cost}, ${us.toFixed(1)} µs per event per filter, ${((us * 1000) / cost).toFixed(1)} ns per unit; ` +
        `matched ${((matched / (evs.length * filters)) * 100).toFixed(0)}%; event ${bytes} B`,
    );
  }
}

// ---- the load generator (forked: the subscribers) -------------------------------

type SubscriberApi = {
  connect: { arg: { url: string; count: number }; result: number };
  subscribe: { arg: { shape: string | null }; result: null };
  mark: { arg: null; result: null };
  read: { arg: null; result: { deliveries: number; elapsedMs: number } };
};

function subscriberProcess(): void {
  const sockets: WebSocket[] = [];
  let deliveries = 0;
  let markedAt = 0;
  let marked = 0;
  /** Per socket, the one waiting for the next control reply (subscribe / unsubscribe). */
  const waiting = new Map<WebSocket, (frame: string) => void>();
  const open = (url: string) =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once('error', reject);
      ws.once('message', () => {
        ws.on('message', (raw: Buffer) => {
          // Counted by prefix, not parsed: this process must not be the bottleneck.
          if (raw[9] === 0x65 && raw[10] === 0x70 /* {"type":"ep… */) deliveries++;
          else waiting.get(ws)?.(raw.toString());
        });
        resolve(ws);
      }); // connection_established
    });
  const reply = (ws: WebSocket, message: unknown, want: string) =>
    new Promise<void>((resolve, reject) => {
      waiting.set(ws, (frame) => {
        waiting.delete(ws);
        if (frame.startsWith(`{"type":"${want}"`)) resolve();
        else reject(new Error(frame.slice(0, 300)));
      });
      ws.send(JSON.stringify(message));
    });
  let subscribed = false;
  serveWorker<SubscriberApi>({
    async connect({ url, count }) {
      const watcher = await token('bench-watcher', ['researcher']);
      for (let i = 0; i < count; i += 50) {
        sockets.push(
          ...(await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, j) => open(`${url}/ws/monitor/sub-${i + j}?token=${watcher}`)))),
        );
      }
      return sockets.length;
    },
    async subscribe({ shape }) {
      await Promise.all(
        sockets.map(async (ws, i) => {
          if (subscribed) await reply(ws, { type: 'unsubscribe', data: { subscription_type: 'epistemic_updates' } }, 'unsubscription_confirmed');
          const data = shape === null ? { type: 'epistemic_updates' } : { type: 'epistemic_updates', filters: SHAPES[shape]!.filter(i) };
          await reply(ws, { type: 'subscribe', data }, 'subscription_confirmed');
        }),
      );
      subscribed = true;
      return null;
    },
    mark() {
      markedAt = performance.now();
      marked = deliveries;
      return null;
    },
    read: () => ({ deliveries: deliveries - marked, elapsedMs: performance.now() - markedAt }),
  });
}

// ---- the orchestrator -----------------------------------------------------------

/** CPU seconds (user + system) of a process, from /proc (Linux). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The server's event-loop delay since the last scrape (prom-client resets its histogram at each), in ms. */
async function loopDelay(base: string): Promise<{ min: number; p99: number; max: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const read = (name: string) => {
    const m = new RegExp(`^nodejs_eventloop_lag_${name}_seconds (\\S+)$`, 'm').exec(text);
    if (!m) throw new Error(`no ${name} in /metrics`);
    return Number(m[1]) * 1000;
  };
  return { min: read('min'), p99: read('p99'), max: read('max') };
}

async function serverRun(seconds: number, rate: number, subscriptions: number, rounds: number, shapeName: string): Promise<void> {
  const shape = SHAPES[shapeName];
  if (!shape) throw new Error(`unknown shape ${shapeName} (${Object.keys(SHAPES).join(', ')})`);
  const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
  // The benchmark servers' environment, on the source (no build needed).
  const server = await startProcess(['--import', 'tsx', cli, 'serve', '--port', '0'], { ...BENCH_SERVER_ENV, ESCAI_DEMO: '0' });
  const wsUrl = server.url.replace('http', 'ws');
  const subscribers: Worker<SubscriberApi> = spawnWorker<SubscriberApi>('filter-cost.ts');
  const connected = await subscribers.call('connect', { url: wsUrl, count: subscriptions });
  const producer = new WebSocket(`${wsUrl}/ws/monitor/producer?token=${await token('bench-producer', ['developer'])}`);
  await new Promise((resolve, reject) => {
    producer.once('message', resolve);
    producer.once('error', reject);
  });
  let errors = 0;
  producer.on('message', (raw: Buffer) => void (raw.toString().startsWith('{"type":"error"') && errors++));
  const example = compileSubscriptionFilter(shape.filter(0));
  const eventBytes = Buffer.byteLength(JSON.stringify(shape.data(0)));
  console.log(
    `server: ${connected} subscriptions, ${rate} events/s for ${seconds} s per phase, ${rounds} rounds; shape ${shapeName} (cost ${example.cost} of ${FILTER_LIMITS.cost}), ` +
      `events of ${eventBytes} B (lists longer than the cap)`,
  );
  let seq = 0;
  const publishFor = (ms: number) =>
    new Promise<number>((resolve) => {
      const start = performance.now();
      let sent = 0;
      const timer = setInterval(() => {
        const due = Math.floor(((Math.min(performance.now(), start + ms) - start) / 1000) * rate);
        for (; sent < due; sent++)
          producer.send(JSON.stringify({ type: 'publish', data: { type: 'epistemic_update', agent_id: `agent_${seq % 10}`, data: shape.data(seq++) } }));
        if (performance.now() >= start + ms) {
          clearInterval(timer);
          resolve(sent);
        }
      }, 1);
    });
  const results: Record<'none' | 'worst', Array<{ min: number; p99: number; max: number; perSecond: number; expected: number; cpu: number }>> = {
    none: [],
    worst: [],
  };
  for (let r = 0; r < rounds; r++) {
    // ABBA: neither phase always runs first.
    for (const phase of r % 2 === 0 ? (['none', 'worst'] as const) : (['worst', 'none'] as const)) {
      await subscribers.call('subscribe', { shape: phase === 'none' ? null : shapeName });
      await publishFor(1000); // warm-up
      await new Promise((resolve) => setTimeout(resolve, 500));
      await loopDelay(server.url); // resets the histogram
      await subscribers.call('mark', null);
      const cpu0 = cpuSeconds(server.child.pid!);
      const sent = await publishFor(seconds * 1000);
      await new Promise((resolve) => setTimeout(resolve, 500)); // the last deliveries
      const delay = await loopDelay(server.url);
      const cpu = (cpuSeconds(server.child.pid!) - cpu0) / seconds;
      const { deliveries, elapsedMs } = await subscribers.call('read', null);
      void elapsedMs; // the count includes the tail's deliveries of events published within the phase
      const row = { ...delay, perSecond: deliveries / seconds, expected: (sent * connected) / seconds, cpu };
      results[phase].push(row);
      console.log(
        `  round ${r + 1} ${phase.padEnd(5)}: event-loop delay min ${row.min.toFixed(1)} ms, p99 ${row.p99.toFixed(1)} ms, max ${row.max.toFixed(1)} ms; ` +
          `deliveries ${Math.round(row.perSecond)}/s of ${Math.round(row.expected)}/s published × subscribers; server CPU ${(cpu * 100).toFixed(0)}%`,
      );
    }
  }
  if (errors > 0) console.log(`producer errors: ${errors}`);
  const list = (xs: number[], digits = 1) => xs.map((x) => x.toFixed(digits)).join(' · ');
  for (const phase of ['none', 'worst'] as const) {
    const rows = results[phase];
    console.log(
      `${phase.padEnd(5)} (${rows.length} phases): p99 ${list(rows.map((x) => x.p99))} ms; max ${list(rows.map((x) => x.max))} ms; ` +
        `deliveries/s ${list(
          rows.map((x) => x.perSecond),
          0,
        )}; server CPU ${list(
          rows.map((x) => x.cpu * 100),
          0,
        )} %`,
    );
  }
  producer.terminate();
  await subscribers.stop();
  await server.stop();
}

if (process.send) subscriberProcess();
else {
  const args = process.argv.slice(2);
  if (args[0] === 'shapes') measureShapes();
  else {
    const [seconds = '10', rate = '20', subscriptions = '1000', rounds = '2', shape = 'all-keys'] = args;
    await serverRun(Number(seconds), Number(rate), Number(subscriptions), Number(rounds), shape);
    process.exit(0);
  }
}
