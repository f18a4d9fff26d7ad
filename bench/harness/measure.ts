// Fan-out measurement, shared by the fanout, filters and redis scenarios.
// One setup = a server (fresh process), subscriber generators (own
// processes) holding the subscribers, a producer process. On it:
//   capacity: open-loop steps of increasing publish rate; a step passes when
//     the deliveries counted in its window reach 95 % of published ×
//     expected-per-event, the sampled p99 is within the bound and no
//     subscriber was closed; capacity = the highest delivered rate of a
//     passing step. First run: doubling, then two bisections; later runs
//     start just under the first run's capacity (stepping down by 20 % until
//     a step passes) and step up by 20 %.
//   fixed rate: one window at a rate given by the caller (the same for every
//     server), p50/p99/max of the sampled latencies.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProducerApi, Reading, SubscriberApi } from './api.js';
import { spawnWorker, type Worker } from './rpc.js';
import type { Deployment } from './servers.js';
import { histogram } from '../lib.js';
import type { Kind, SubscribeSpec } from './wire.js';

export interface Plan {
  subscribers: number;
  /** Agents the producer cycles through. */
  agents: string[];
  /** Subscription of subscriber i: specs[i % specs.length]. */
  specs: SubscribeSpec[];
  /** Deliveries expected per published event (subscribers per agent × share of events matching). */
  perEvent: number;
  /** Subscribers of one agent: the p99 bound grows with it (one event's fan-out takes that long). */
  perAgent: number;
}

export interface Timing {
  warmSeconds: number;
  stepSeconds: number;
  fixedSeconds: number;
  p99BoundMs: number;
  maxSteps: number;
  generators: number;
}

export interface Latency {
  p50: number;
  p99: number;
  max: number;
  samples: number;
}

export interface Step {
  rate: number;
  expected: number;
  delivered: number;
  latency: Latency;
  closed: number;
  errors: number;
  pass: boolean;
}

export interface Window {
  rate: number;
  delivered: number;
  expected: number;
  latency: Latency;
}

export interface Setup {
  kind: Kind;
  plan: Plan;
  deployment: Deployment;
  connectSeconds: number;
  subscribers: Array<Worker<SubscriberApi>>;
  producer: Worker<ProducerApi>;
  closed: number;
}

export function latencyOf(samplesUs: number[]): Latency {
  const h = histogram();
  for (const v of samplesUs) h.recordValue(v);
  const ms = (us: number) => Math.round(us) / 1000;
  return { p50: ms(h.getValueAtPercentile(50)), p99: ms(h.getValueAtPercentile(99)), max: ms(h.maxValue), samples: h.totalCount };
}

/** Starts generators, connects every subscriber and the producer. */
export async function setUp(kind: Kind, plan: Plan, deployment: Deployment, t: Timing): Promise<Setup> {
  const gens = Array.from({ length: t.generators }, () => spawnWorker<SubscriberApi>('load-subscribers.ts'));
  const producer = spawnWorker<ProducerApi>('load-producer.ts');
  const per = Math.ceil(plan.subscribers / gens.length);
  const sampleEvery = Math.floor(plan.subscribers / 50) + 1; // ≈ 50 sampled subscribers, spread over agents
  const results = await Promise.all(
    gens.map((g, i) =>
      g.call('connect', {
        kind,
        base: deployment.subBase,
        first: i * per,
        count: Math.max(0, Math.min(per, plan.subscribers - i * per)),
        concurrency: 100,
        sampleEvery,
        specs: plan.specs,
        users: 100,
      }),
    ),
  );
  const failed = results.reduce((n, r) => n + r.failed, 0);
  if (failed > 0) throw new Error(`${kind}: ${failed} subscribers failed to connect (${results.find((r) => r.firstError)?.firstError})`);
  const connectSeconds = Math.max(...results.map((r) => r.elapsedMs)) / 1000;
  await producer.call('connect', { kind, base: deployment.pubBase });
  return { kind, plan, deployment, connectSeconds, subscribers: gens, producer, closed: 0 };
}

export async function tearDown(s: Setup): Promise<void> {
  await Promise.all([...s.subscribers, s.producer].map((w) => w.stop()));
  await s.deployment.stop();
}

/** Waits until no more deliveries arrive (a backlog drained), at most `maxMs`. */
async function drain(s: Setup, maxMs = 10_000): Promise<boolean> {
  let last = -1;
  let stable = 0;
  const end = performance.now() + maxMs;
  while (performance.now() < end) {
    const totals = await Promise.all(s.subscribers.map((g) => g.call('total', null)));
    const sum = totals.reduce((a, b) => a + b, 0);
    stable = sum === last ? stable + 1 : 0;
    if (stable >= 2) return true;
    last = sum;
    await sleep(150);
  }
  return false;
}

/** p99 bound of a passing step: `p99BoundMs` per 1,000 subscribers of one agent (at least `p99BoundMs`). */
export function p99Bound(plan: Plan, t: Timing): number {
  return t.p99BoundMs * Math.max(1, plan.perAgent / 1000);
}

/** One open-loop window at `rate` events/s: warm-up, then `seconds` measured. */
export async function window(s: Setup, rate: number, seconds: number, t: Timing): Promise<Step> {
  const run = s.producer.call('run', { rate, seconds: t.warmSeconds + seconds, agents: s.plan.agents });
  await sleep(t.warmSeconds * 1000);
  await Promise.all(s.subscribers.map((g) => g.call('mark', null)));
  await sleep(seconds * 1000);
  const readings: Reading[] = await Promise.all(s.subscribers.map((g) => g.call('read', null)));
  const published = await run;
  const drained = await drain(s);
  const delivered = readings.reduce((n, r) => n + r.deliveries / (r.elapsedMs / 1000), 0);
  const closedNow = readings.reduce((n, r) => n + r.closed, 0);
  const closed = closedNow - s.closed;
  s.closed = closedNow;
  const latency = latencyOf(readings.flatMap((r) => r.latencyUs));
  const expected = rate * s.plan.perEvent;
  // One event more or less in the window is quantization, not a shortfall.
  const enough = delivered >= 0.95 * expected - s.plan.perEvent / seconds;
  const pass = drained && enough && latency.p99 <= p99Bound(s.plan, t) && closed === 0 && published.errors === 0;
  if (published.errors > 0) console.error(`  ${s.kind}: ${published.errors} publish errors (${published.firstError})`);
  return { rate, expected: Math.round(expected), delivered: Math.round(delivered), latency, closed, errors: published.errors, pass };
}

export interface Capacity {
  /** Highest delivered rate of a passing step (deliveries/s); 0 when none passed. */
  deliveries: number;
  /** Publish rate of that step (events/s). */
  rate: number;
  latency: Latency | undefined;
  steps: Step[];
}

/** Capacity search; `hint` = a previous run's capacity publish rate. */
export async function capacity(s: Setup, t: Timing, startRate: number, hint?: number): Promise<Capacity> {
  const steps: Step[] = [];
  await window(s, Math.max(1, Math.round(startRate / 2)), t.stepSeconds, t); // warm-up (JIT, buffers), discarded
  const log = (st: Step) =>
    console.log(
      `    ${s.kind} rate ${st.rate} ev/s: ${st.delivered.toLocaleString('en-US')} / ${st.expected.toLocaleString('en-US')} deliveries/s, p99 ${st.latency.p99} ms${st.closed ? `, ${st.closed} closed` : ''} → ${st.pass ? 'pass' : 'fail'}`,
    );
  const tryRate = async (rate: number) => {
    const r = Math.max(1, Math.round(rate));
    // At low event rates a window holds at least 10 events (at most 5 s).
    const st = await window(s, r, Math.min(5, Math.max(t.stepSeconds, 10 / r)), t);
    steps.push(st);
    log(st);
    return st.pass;
  };
  if (hint && hint > 0) {
    let rate = hint * 0.8;
    // Just under the first run's capacity; when even that fails (a noisy moment), step down until one passes.
    while (steps.length < t.maxSteps && !(await tryRate(rate))) rate *= 0.8;
    if (steps.some((st) => st.pass)) {
      rate *= 1.2;
      while (steps.length < t.maxSteps && (await tryRate(rate))) rate *= 1.2;
    }
  } else {
    let pass = 0;
    let fail = 0;
    let rate = startRate;
    while (steps.length < t.maxSteps) {
      if (await tryRate(rate)) {
        pass = rate;
        rate *= 2;
      } else {
        fail = rate;
        break;
      }
    }
    for (let i = 0; i < 2 && fail > 0 && steps.length < t.maxSteps; i++) {
      const mid = (pass + fail) / 2;
      if (await tryRate(mid)) pass = mid;
      else fail = mid;
    }
  }
  const best = steps.filter((st) => st.pass).sort((a, b) => b.delivered - a.delivered)[0];
  return { deliveries: best?.delivered ?? 0, rate: best?.rate ?? 0, latency: best?.latency, steps };
}
