// Scenario "redis": cross-node fan-out, two ESCAI nodes on Redis (producer on
// node A, every subscriber on node B) against one node on the memory engine,
// batched clients, capacity by the same step search as fanout; and HTTP
// publish of 1,000-event batches (POST /api/v1/events, one at a time) on each,
// acknowledged latency. Skipped with a loud line when Redis is unreachable.
import { connect } from 'node:net';
import { capacity, latencyOf, setUp, tearDown, type Plan } from '../harness/measure.js';
import { int, median, ms, ratio, runs, type Check, type Table } from '../harness/results.js';
import { startRedisPair, startServer, type Deployment } from '../harness/servers.js';
import { sampleEpistemic, token } from '../lib.js';
import type { Context } from './context.js';

export const REDIS_URL = process.env['ESCAI_BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

function reachable(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(u.port || 6379), u.hostname);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * POSTs `batches` batches of `size` events, one at a time, after one warm-up
 * batch; the time to each 202, µs. Also run on its own by bench/http-batch.ts.
 */
export async function httpBatches(base: string, batches: number, size = 1000): Promise<number[]> {
  const producer = await token('bench-http-producer', ['developer']);
  const out: number[] = [];
  for (let b = 0; b < batches + 1; b++) {
    const agent = `http_agent_${b % 10}`;
    const body = JSON.stringify(
      Array.from({ length: size }, (_, i) => ({ type: 'epistemic_update', agent_id: agent, data: sampleEpistemic(agent, b * size + i) })),
    );
    const t0 = performance.now();
    const res = await fetch(`${base}/api/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${producer}`, 'content-type': 'application/json' },
      body,
    });
    await res.arrayBuffer();
    if (res.status !== 202) throw new Error(`HTTP publish: ${res.status}`);
    if (b > 0) out.push(Math.round((performance.now() - t0) * 1000)); // first one is a warm-up
  }
  return out;
}

export async function redis(ctx: Context): Promise<{ tables: Table[]; checks: Check[] } | undefined> {
  if (!(await reachable(REDIS_URL))) {
    ctx.log(`SKIPPED redis scenario: ${REDIS_URL} unreachable (set ESCAI_BENCH_REDIS_URL)`);
    return undefined;
  }
  const n = ctx.quick ? 100 : 1_000;
  const batches = ctx.quick ? 2 : 20;
  const plan: Plan = { subscribers: n, agents: ['bench_agent'], specs: [{ agent: 'bench_agent' }], perEvent: n, perAgent: n };
  const setups: Array<{ name: string; start: () => Promise<Deployment> }> = [
    { name: 'memory, 1 node', start: () => startServer('escai-batch') },
    { name: 'redis, 2 nodes (A → B)', start: () => startRedisPair(REDIS_URL) },
  ];
  const cap = new Map<string, number[]>();
  const http = new Map<string, { p50: number[]; p99: number[] }>();
  const hints = new Map<string, number>();
  const startRate = Math.max(1, (ctx.quick ? 5_000 : 20_000) / n);
  for (let run = 1; run <= ctx.runs; run++) {
    for (const d of setups) {
      ctx.log(`  redis: ${d.name}, run ${run}/${ctx.runs}`);
      const s = await setUp('escai-batch', plan, await d.start(), ctx.timing);
      try {
        const c = await capacity(s, ctx.timing, startRate, hints.get(d.name));
        if (!hints.has(d.name) && c.rate > 0) hints.set(d.name, c.rate);
        cap.set(d.name, [...(cap.get(d.name) ?? []), c.deliveries]);
        const lat = latencyOf(await httpBatches(s.deployment.pubBase, batches));
        const h = http.get(d.name) ?? { p50: [], p99: [] };
        h.p50.push(lat.p50);
        h.p99.push(lat.p99);
        http.set(d.name, h);
        ctx.log(`    capacity ${int(c.deliveries)} deliveries/s; HTTP 1,000-event batch p50 ${ms(lat.p50)}, p99 ${ms(lat.p99)}`);
      } finally {
        await tearDown(s);
      }
    }
  }
  const rows = setups.map((d) => [
    d.name,
    int(n),
    runs(cap.get(d.name) ?? [], int),
    runs(http.get(d.name)?.p50 ?? [], ms),
    runs(http.get(d.name)?.p99 ?? [], ms),
  ]);
  const mem = median(cap.get(setups[0]!.name) ?? []);
  const red = median(cap.get(setups[1]!.name) ?? []);
  return {
    tables: [
      {
        title: `Two nodes on Redis vs one memory node (${int(n)} subscribers of one agent, batched clients)`,
        head: ['deployment', 'subscribers', 'capacity, deliveries/s', 'HTTP batch of 1,000 acked, p50', 'p99'],
        rows,
        notes: [`HTTP: ${batches} POSTs of 1,000 events each, one at a time, to the producer's node; time to the 202. Redis ${REDIS_URL} on the same machine.`],
      },
    ],
    checks: [{ target: 'Cross-node deliveries/s ≥ 0.8× one memory node', value: `${int(red)} vs ${int(mem)} = ${ratio(red, mem)}`, ok: red >= 0.8 * mem }],
  };
}
