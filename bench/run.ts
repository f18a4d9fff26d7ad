// `npm run bench`: every scenario with its peers in the same run, servers and
// load generators in their own processes, medians of 3 runs; prints a
// summary, writes bench/results/latest.json (merged per scenario), the
// fan-out chart docs/benchmarks-fanout.svg and the generated block of
// docs/BENCHMARKS.md. Exits 2 when a target is not met (full runs only).
//
// Usage: npm run bench [-- [scenario ...] [--quick] [--runs N] [--docs]]
//   scenarios: fanout filters connections replay redis (default: all)
//   --quick  smoke run: small sizes, 1 run, no thresholds, results to
//            bench/results/quick.json only (docs untouched unless --docs)
//   --runs N runs per row (default 3)
// Needs `npm run build` first (the script does it) and Redis for "redis".
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { markdown, summary, svg, writeDocs } from './harness/report.js';
import { machine, type Check, type ChartPoint, type ResultsFile, type ScenarioResult, type Table } from './harness/results.js';
import { killAll } from './harness/rpc.js';
import { connections } from './scenarios/connections.js';
import { timingFor, type Context } from './scenarios/context.js';
import { fanout } from './scenarios/fanout.js';
import { filters } from './scenarios/filters.js';
import { redis } from './scenarios/redis.js';
import { replay } from './scenarios/replay.js';

interface Outcome {
  tables: Table[];
  checks: Check[];
  chart?: { fixedRates: Record<string, number>; points: ChartPoint[] };
}

const SCENARIOS: Readonly<Record<string, { title: string; run: (ctx: Context) => Promise<Outcome | undefined> }>> = {
  fanout: { title: 'Fan-out: one agent → 1,000 and 10,000 subscribers', run: fanout },
  filters: { title: 'Filters: 100 agents × 100 subscribers, half the events matching', run: filters },
  connections: { title: 'Connect storm and idle memory at 10,000 connections', run: connections },
  replay: { title: 'Replay of 1,000 events', run: replay },
  redis: { title: 'Two nodes on Redis', run: redis },
};

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const writeDocsToo = args.includes('--docs') || !quick;
const runsArg = args.indexOf('--runs');
const runCount = quick ? 1 : runsArg >= 0 ? Number(args[runsArg + 1]) : 3;
const selected = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--runs');
for (const s of selected) if (!SCENARIOS[s]) throw new Error(`unknown scenario ${s}; one of ${Object.keys(SCENARIOS).join(', ')}`);
const names = selected.length ? selected : Object.keys(SCENARIOS);
if (!Number.isInteger(runCount) || runCount < 1) throw new Error('--runs takes a positive integer');

const root = (p: string) => fileURLToPath(new URL(`../${p}`, import.meta.url));
const resultsPath = root(quick ? 'bench/results/quick.json' : 'bench/results/latest.json');

const ctx: Context = { quick, runs: runCount, timing: timingFor(quick), log: (line) => console.log(line) };
const file: ResultsFile = existsSync(resultsPath) && !quick ? (JSON.parse(readFileSync(resultsPath, 'utf8')) as ResultsFile) : { scenarios: {} };
const command = `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`;
const printed: string[] = [];
let crashed = false;
for (const name of names) {
  const sc = SCENARIOS[name]!;
  console.log(`\n>> ${name}: ${sc.title}`);
  const t0 = performance.now();
  try {
    const out = await sc.run(ctx);
    if (!out) continue;
    const r: ScenarioResult = {
      name,
      title: sc.title,
      date: `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
      command,
      runs: runCount,
      quick,
      machine: machine(),
      seconds: (performance.now() - t0) / 1000,
      tables: out.tables,
      checks: out.checks,
    };
    if (out.chart) r.chart = out.chart;
    file.scenarios[name] = r;
    printed.push(summary(r));
    console.log(`\n${summary(r)}`);
  } catch (err) {
    crashed = true;
    console.error(`!! ${name} failed:`, err);
  } finally {
    killAll();
  }
}

mkdirSync(root('bench/results'), { recursive: true });
writeFileSync(resultsPath, `${JSON.stringify(file, null, 2)}\n`);
if (writeDocsToo) {
  const fan = file.scenarios['fanout'];
  if (fan?.chart) {
    const m = fan.machine;
    writeFileSync(
      root('docs/benchmarks-fanout.svg'),
      svg(
        fan.chart.points,
        fan.chart.fixedRates,
        `Fan-out, one agent (${m.cores} × ${m.cpu.split(' ').slice(0, 3).join(' ')}, Node.js ${m.node}, median of ${fan.runs})`,
      ),
    );
  }
  writeDocs(root('docs/BENCHMARKS.md'), markdown(file));
}
console.log(
  `\n==== summary (${command}) ====\n\n${printed.join('\n\n')}\n\nresults: ${resultsPath}${writeDocsToo ? '; docs/BENCHMARKS.md and docs/benchmarks-fanout.svg updated' : ''}`,
);
const unmet = quick
  ? []
  : Object.values(file.scenarios)
      .filter((r) => names.includes(r.name))
      .flatMap((r) => r.checks.filter((c) => !c.ok));
if (unmet.length) console.log(`${unmet.length} target(s) not met.`);
process.exit(crashed ? 1 : unmet.length ? 2 : 0);
