// Filter cost benchmark (issue 12): 100 agents × 100 subscribers, each
// subscriber one connection with one all-agents subscription to epistemic
// updates, so every event is judged by every subscriber's filter; half the
// events match. Two variants, same events, same server build:
//   simple    {"confidence_level": {"min": 0.5}}
//   compound  any + $or + changed_by (per-agent state in every subscription),
//             the same filter for every subscriber (compiled once, evaluated once per event)
//   distinct  the compound filter made different per subscriber (one more $or branch):
//             only the conditions they have in common are shared
// The server runs in its own process (bench/lib.ts); this process publishes
// closed-loop (a window of unacknowledged publishes over one socket) and
// counts deliveries without parsing them. Variants alternate (ABBA), each run
// on a fresh server; the figures are deliveries/s at the subscribers and
// deliveries per server CPU-second (steadier on a shared machine).
//
// Usage: npm run build && node --import tsx bench/filters.ts [runs=3] [seconds=10] [agents=100] [subscribers=100]
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { startServerProcess, token } from './lib.js';

const [runsArg = '3', secondsArg = '10', agentsArg = '100', subsArg = '100'] = process.argv.slice(2);
const RUNS = Number(runsArg);
const SECONDS = Number(secondsArg);
const AGENTS = Array.from({ length: Number(agentsArg) }, (_, i) => `filter_agent_${i}`);
const SUBSCRIBERS = Number(subsArg);
const WINDOW = 64;

const VARIANTS = {
  simple: { confidence_level: { min: 0.5 } },
  compound: {
    belief_states: { any: { confidence: { min: 0.5 }, belief_type: { in: ['factual', 'predictive'] } } },
    $or: [{ 'knowledge_state.confidence': { min: 0.5 } }, { role: { prefix: 'planner' } }],
    confidence_level: { changed_by: 0.01 },
  },
} as const satisfies Record<string, Record<string, unknown>>;
type Variant = keyof typeof VARIANTS | 'distinct';

/**
 * The filter of subscriber `i`. `distinct`: the compound filter made different
 * per subscriber (a `$or` branch that never matches names the subscriber): 100
 * compilations, 100 evaluations per event of what differs.
 */
function filterOf(variant: Variant, i: number): Record<string, unknown> {
  if (variant !== 'distinct') return VARIANTS[variant];
  const { $or, ...rest } = VARIANTS.compound;
  return { ...rest, $or: [...$or, { role: `subscriber-${i}` }] };
}

/**
 * Event `seq` of an agent: even ones match both variants (confidence 0.50,
 * 0.51, … 0.89 over the matching events, so each moves ≥ 0.01 from the last
 * delivered one), odd ones match neither (confidence 0.3 everywhere).
 */
function eventData(agent: string, seq: number): Record<string, unknown> {
  const matching = seq % 2 === 0;
  const c = matching ? 0.5 + ((seq / 2) % 40) / 100 : 0.3;
  return {
    agent_id: agent,
    belief_states: [
      { content: 'the tool call succeeded', belief_type: 'procedural', confidence: 0.9 },
      { content: `step ${seq}`, belief_type: 'factual', confidence: c },
    ],
    knowledge_state: { facts: ['api reachable'], confidence: c },
    goal_states: [{ description: 'finish the report', status: 'active', priority: 5 }],
    role: 'coder',
    confidence_level: c,
    uncertainty_score: 1 - c,
    seq,
  };
}

/**
 * CPU seconds (user + system) the server process has used, from /proc (Linux):
 * on a shared machine deliveries per server CPU-second hold when the wall-clock
 * rate moves with the neighbours' load.
 */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('message', () => resolve(ws)); // connection_established
    ws.once('error', reject);
  });
}

async function run(variant: Variant): Promise<{ published: number; deliveries: number; perCpuSecond: number }> {
  // Every subscriber connects from one address as one user: lift the per-address and per-user gates.
  const server = await startServerProcess({ ESCAI_DEMO: '0' });
  const wsUrl = server.url.replace('http', 'ws');
  const watcher = await token('bench-watcher', ['researcher']);
  const producerToken = await token('bench-producer', ['developer']);
  let deliveries = 0;
  let measuring = false;
  const subscribers: WebSocket[] = [];
  for (let i = 0; i < SUBSCRIBERS; i++) {
    const ws = await open(`${wsUrl}/ws/monitor/sub-${i}?token=${watcher}`);
    const confirmed = new Promise<void>((resolve, reject) => {
      ws.once('message', (raw) => (raw.toString().startsWith('{"type":"subscription_confirmed"') ? resolve() : reject(new Error(raw.toString()))));
    });
    ws.send(JSON.stringify({ type: 'subscribe', data: { type: 'epistemic_updates', filters: filterOf(variant, i) } }));
    await confirmed;
    ws.on('message', (raw: Buffer) => {
      // Counted by prefix, not parsed: this process must not be the bottleneck.
      if (measuring && raw[9] === 0x65 && raw[10] === 0x70 /* {"type":"ep… */) deliveries++;
    });
    subscribers.push(ws);
  }
  const producer = await open(`${wsUrl}/ws/monitor/producer?token=${producerToken}`);
  let inFlight = 0;
  let published = 0;
  producer.on('message', (raw) => {
    if (raw.toString().startsWith('{"type":"publish_confirmed"')) inFlight--;
  });
  const publishOne = () => {
    const agent = AGENTS[published % AGENTS.length]!;
    const seq = Math.floor(published / AGENTS.length);
    published++;
    inFlight++;
    producer.send(JSON.stringify({ type: 'publish', data: { type: 'epistemic_update', agent_id: agent, data: eventData(agent, seq) } }));
  };
  const runFor = async (seconds: number) => {
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) {
      while (inFlight < WINDOW) publishOne();
      await new Promise((r) => setImmediate(r));
    }
  };
  await runFor(2); // warm-up (and every subscription's state on every agent)
  measuring = true;
  const t0 = performance.now();
  const cpu0 = cpuSeconds(server.child.pid!);
  const before = published;
  await runFor(SECONDS);
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(server.child.pid!) - cpu0;
  measuring = false;
  const result = { published: (published - before) / elapsed, deliveries: deliveries / elapsed, perCpuSecond: deliveries / cpu };
  for (const ws of subscribers) ws.terminate();
  producer.terminate();
  await server.stop();
  return result;
}

const results: Record<Variant, number[]> = { simple: [], compound: [], distinct: [] };
const perCpu: Record<Variant, number[]> = { simple: [], compound: [], distinct: [] };
for (let i = 1; i <= RUNS; i++) {
  // ABBA order: neither variant always runs second (after a server's exit, on a warmer or busier machine).
  for (const variant of i % 2 === 1 ? (['simple', 'compound', 'distinct'] as const) : (['distinct', 'compound', 'simple'] as const)) {
    const r = await run(variant);
    results[variant].push(r.deliveries);
    perCpu[variant].push(r.perCpuSecond);
    console.log(
      `run ${i} ${variant}: published ${Math.round(r.published)} ev/s, deliveries ${Math.round(r.deliveries)}/s ` +
        `(expected ≈ ${Math.round((r.published * SUBSCRIBERS) / 2)}/s), ${Math.round(r.perCpuSecond)} deliveries per server CPU-second`,
    );
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const [s, c] = [median(results.simple), median(results.compound)];
const [sc, cc] = [median(perCpu.simple), median(perCpu.compound)];
const [d, dc] = [median(results.distinct), median(perCpu.distinct)];
console.log(`agents=${AGENTS.length} subscribers=${SUBSCRIBERS} runs=${RUNS} seconds=${SECONDS}`);
console.log(
  `simple   deliveries/s: ${results.simple.map(Math.round).join(', ')} (median ${Math.round(s)}); per server CPU-second: ${perCpu.simple.map(Math.round).join(', ')} (median ${Math.round(sc)})`,
);
console.log(
  `compound deliveries/s: ${results.compound.map(Math.round).join(', ')} (median ${Math.round(c)}); per server CPU-second: ${perCpu.compound.map(Math.round).join(', ')} (median ${Math.round(cc)})`,
);
console.log(
  `distinct deliveries/s: ${results.distinct.map(Math.round).join(', ')} (median ${Math.round(d)}); per server CPU-second: ${perCpu.distinct.map(Math.round).join(', ')} (median ${Math.round(dc)})`,
);
console.log(`compound / simple (medians): ${(c / s).toFixed(3)} wall-clock, ${(cc / sc).toFixed(3)} per server CPU-second (target ≥ 0.8)`);
console.log(`distinct / simple (medians): ${(d / s).toFixed(3)} wall-clock, ${(dc / sc).toFixed(3)} per server CPU-second`);
process.exit(0);
