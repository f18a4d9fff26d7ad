// Scenario "fanout": one agent → N subscribers, for the raw ws floor,
// Socket.IO 4, ESCAI unbatched and ESCAI batched (`batch=1`). Per server and
// size: capacity (deliveries/s, open-loop step search) and latency at one
// fixed publish rate shared by all servers (half the floor's first-run
// capacity). Also used by the filters scenario (many agents, a filter).
import { capacity, setUp, tearDown, window, type Plan, type Step } from '../harness/measure.js';
import { int, median, ms, ratio, runs, type ChartPoint, type Check, type Table } from '../harness/results.js';
import { startServer } from '../harness/servers.js';
import { KIND_LABEL, type Kind } from '../harness/wire.js';
import type { Context } from './context.js';

export interface SeriesRuns {
  kind: Kind;
  subscribers: number;
  capacity: number[];
  capacityP99: number[];
  fixedRate: number;
  fixed: Step[];
}

/** Runs `kinds` × `runs` on one plan; the first kind's first capacity sets the fixed rate. */
export async function measurePlan(ctx: Context, plan: Plan, kinds: Kind[], label: string): Promise<SeriesRuns[]> {
  const series = new Map<Kind, SeriesRuns>(
    kinds.map((k) => [k, { kind: k, subscribers: plan.subscribers, capacity: [], capacityP99: [], fixedRate: 0, fixed: [] }]),
  );
  const hints = new Map<Kind, number>();
  let fixedRate = 0;
  const startRate = Math.max(1, (ctx.quick ? 5_000 : 20_000) / plan.perEvent);
  for (let run = 1; run <= ctx.runs; run++) {
    for (const kind of kinds) {
      ctx.log(`  ${label}: ${KIND_LABEL[kind]}, run ${run}/${ctx.runs}`);
      const sr = series.get(kind)!;
      const s = await setUp(kind, plan, await startServer(kind), ctx.timing);
      try {
        ctx.log(`    ${plan.subscribers} subscribers connected in ${s.connectSeconds.toFixed(1)} s`);
        const cap = await capacity(s, ctx.timing, startRate, hints.get(kind));
        if (!hints.has(kind) && cap.rate > 0) hints.set(kind, cap.rate);
        if (fixedRate === 0) fixedRate = Math.max(1, Math.round((cap.rate || startRate) / 2));
        sr.capacity.push(cap.deliveries);
        sr.capacityP99.push(cap.latency?.p99 ?? NaN);
      } finally {
        await tearDown(s);
      }
      // The fixed-rate window runs on a fresh server and fresh load generators: after a capacity
      // search (up to 750,000 deliveries/s for batched clients) every process carries its garbage,
      // and the window would measure that rather than the server at this rate.
      const f = await setUp(kind, plan, await startServer(kind), ctx.timing);
      try {
        const fixed = await window(f, fixedRate, ctx.timing.fixedSeconds, ctx.timing);
        ctx.log(
          `    fixed ${fixedRate} ev/s (fresh processes): ${int(fixed.delivered)} deliveries/s, p50 ${ms(fixed.latency.p50)}, p99 ${ms(fixed.latency.p99)}`,
        );
        sr.fixedRate = fixedRate;
        sr.fixed.push(fixed);
      } finally {
        await tearDown(f);
      }
    }
  }
  return [...series.values()];
}

/** The table rows of a plan's series. */
export function rowsOf(series: SeriesRuns[]): string[][] {
  return series.map((sr) => [
    KIND_LABEL[sr.kind],
    int(sr.subscribers),
    runs(sr.capacity, int),
    runs(sr.capacityP99, ms),
    `${int(sr.fixedRate)} ev/s (${int(sr.fixed[0]?.expected ?? 0)} deliveries/s due)`,
    runs(
      sr.fixed.map((f) => f.latency.p50),
      ms,
    ),
    runs(
      sr.fixed.map((f) => f.latency.p99),
      ms,
    ),
    runs(
      sr.fixed.map((f) => f.latency.max),
      ms,
    ),
  ]);
}

export const HEAD = ['server', 'subscribers', 'capacity, deliveries/s', 'p99 at capacity', 'fixed rate', 'p50', 'p99', 'max'];

export async function fanout(ctx: Context): Promise<{ tables: Table[]; checks: Check[]; chart: { fixedRates: Record<string, number>; points: ChartPoint[] } }> {
  const sizes = ctx.quick ? [100] : [1_000, 10_000];
  const kinds: Kind[] = ['ws', 'socketio', 'escai', 'escai-batch'];
  const all: SeriesRuns[] = [];
  for (const size of sizes) {
    const plan: Plan = { subscribers: size, agents: ['bench_agent'], specs: [{ agent: 'bench_agent' }], perEvent: size, perAgent: size };
    all.push(...(await measurePlan(ctx, plan, kinds, `fanout ${size}`)));
  }
  const checks: Check[] = [];
  const at = (kind: Kind, size: number) => all.find((s) => s.kind === kind && s.subscribers === size);
  const checkSize = ctx.quick ? sizes[0]! : 1_000;
  const floor = at('ws', checkSize);
  const batched = at('escai-batch', checkSize);
  const unbatched = at('escai', checkSize);
  if (floor && batched && unbatched) {
    const b = median(batched.capacity);
    const f = median(floor.capacity);
    checks.push({
      target: `ESCAI batched capacity ≥ 4× the raw floor's (unbatched) at ${int(checkSize)} subscribers`,
      value: `${int(b)} vs ${int(f)} deliveries/s = ${ratio(b, f)}`,
      ok: b >= 4 * f,
    });
    const pb = median(batched.fixed.map((x) => x.latency.p99));
    const pu = median(unbatched.fixed.map((x) => x.latency.p99));
    checks.push({
      target: `ESCAI batched p99 ≤ unbatched p99 at the same rate (${int(batched.fixedRate)} ev/s, ${int(checkSize)} subscribers)`,
      value: `${ms(pb)} vs ${ms(pu)}`,
      ok: pb <= pu,
    });
  }
  const fixedRates: Record<string, number> = {};
  for (const s of all) fixedRates[String(s.subscribers)] = s.fixedRate;
  const points: ChartPoint[] = all.map((s) => ({
    kind: s.kind,
    subscribers: s.subscribers,
    deliveries: median(s.capacity),
    p99: median(s.fixed.map((f) => f.latency.p99)),
  }));
  return {
    tables: [
      {
        title: 'One agent → N subscribers',
        head: HEAD,
        rows: rowsOf(all),
        notes: [
          'Capacity: highest deliveries/s of an open-loop step that delivered ≥ 95 % of what was due (± one event) with sampled p99 ≤ 250 ms per 1,000 subscribers of the agent and no subscriber closed.',
          "Fixed rate: half the raw floor's first-run capacity at that size, the same for every server, on fresh processes (new server, new load generators); latency = receive − send time of ≈ 50 sampled subscribers.",
        ],
      },
    ],
    checks,
    chart: { fixedRates, points },
  };
}
