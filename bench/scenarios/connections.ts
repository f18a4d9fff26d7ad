// Scenario "connections": a storm of N connects (two generator processes,
// 100 in flight each), each = WebSocket handshake + the server's first
// message + one subscribe confirmed (ESCAI: with a JWT, 100 users); then the
// connections sit idle and the server's RSS is read from /proc: (RSS after −
// RSS before the storm) / N. RSS includes garbage not yet collected, so the
// per-connection figure is an upper bound, for every server alike.
import { setTimeout as sleep } from 'node:timers/promises';
import type { SubscriberApi } from '../harness/api.js';
import { latencyOf } from '../harness/measure.js';
import { int, kib, median, ms, ratio, runs, type Check, type Table } from '../harness/results.js';
import { spawnWorker } from '../harness/rpc.js';
import { rssBytes, startServer } from '../harness/servers.js';
import { KIND_LABEL, type Kind } from '../harness/wire.js';

/** Connections are not batched or not: one ESCAI row. */
const label = (k: Kind): string => (k === 'escai' ? 'ESCAI Realtime' : KIND_LABEL[k]);
import type { Context } from './context.js';

interface Run {
  rate: number;
  p50: number;
  p99: number;
  perConn: number;
  rss: number;
}

export async function connections(ctx: Context): Promise<{ tables: Table[]; checks: Check[] }> {
  const n = ctx.quick ? 200 : 10_000;
  const kinds: Kind[] = ['ws', 'socketio', 'escai'];
  const agents = Array.from({ length: 100 }, (_, i) => ({ agent: `agent_${i}` }));
  const results = new Map<Kind, Run[]>(kinds.map((k) => [k, []]));
  for (let run = 1; run <= ctx.runs; run++) {
    for (const kind of kinds) {
      const dep = await startServer(kind);
      const gens = [spawnWorker<SubscriberApi>('load-subscribers.ts'), spawnWorker<SubscriberApi>('load-subscribers.ts')];
      try {
        await Promise.all(gens.map((g) => g.call('total', null))); // generators up (tsx loaded) before the clock starts
        await sleep(500);
        const before = rssBytes(dep.subPid);
        const per = n / gens.length;
        const res = await Promise.all(
          gens.map((g, i) =>
            g.call('connect', { kind, base: dep.subBase, first: i * per, count: per, concurrency: 100, sampleEvery: 0, specs: agents, users: 100 }),
          ),
        );
        const connected = res.reduce((a, r) => a + r.connected, 0);
        const failed = res.reduce((a, r) => a + r.failed, 0);
        if (failed) ctx.log(`    ${failed} connects failed: ${res.find((r) => r.firstError)?.firstError}`);
        const rate = connected / (Math.max(...res.map((r) => r.elapsedMs)) / 1000);
        const lat = latencyOf(res.flatMap((r) => r.connectUs));
        await sleep(ctx.quick ? 500 : 3000);
        const after = rssBytes(dep.subPid);
        const r: Run = { rate, p50: lat.p50, p99: lat.p99, perConn: (after - before) / Math.max(1, connected), rss: after };
        results.get(kind)!.push(r);
        ctx.log(
          `  connections: ${label(kind)}, run ${run}: ${int(connected)} in ${int(rate)}/s, p50 ${ms(r.p50)}, p99 ${ms(r.p99)}; idle RSS ${int(after / 2 ** 20)} MiB, ${kib(r.perConn)} per connection`,
        );
      } finally {
        await Promise.all(gens.map((g) => g.stop()));
        await dep.stop();
      }
    }
  }
  const rows = kinds.map((k) => {
    const rs = results.get(k)!;
    return [
      label(k),
      runs(
        rs.map((r) => r.rate),
        int,
      ),
      runs(
        rs.map((r) => r.p50),
        ms,
      ),
      runs(
        rs.map((r) => r.p99),
        ms,
      ),
      runs(
        rs.map((r) => r.rss / 2 ** 20),
        (v) => `${v.toFixed(0)} MiB`,
      ),
      runs(
        rs.map((r) => r.perConn),
        kib,
      ),
    ];
  });
  const med = (k: Kind, f: (r: Run) => number) => median(results.get(k)!.map(f));
  const checks: Check[] = [
    {
      target: "ESCAI connect rate ≥ 0.8× the raw floor's",
      value: `${int(med('escai', (r) => r.rate))} vs ${int(med('ws', (r) => r.rate))} connects/s = ${ratio(
        med('escai', (r) => r.rate),
        med('ws', (r) => r.rate),
      )}`,
      ok: med('escai', (r) => r.rate) >= 0.8 * med('ws', (r) => r.rate),
    },
    {
      target: `ESCAI idle RSS ≤ 8 KiB per authenticated connection with one subscription (${int(n)} connections)`,
      // Two decimals: the target sits on a KiB boundary.
      value: `${(med('escai', (r) => r.perConn) / 1024).toFixed(2)} KiB (raw floor ${(med('ws', (r) => r.perConn) / 1024).toFixed(2)} KiB)`,
      ok: med('escai', (r) => r.perConn) <= 8 * 1024,
    },
  ];
  return {
    tables: [
      {
        title: `Connect storm and idle memory, ${int(n)} connections`,
        head: ['server', 'connects/s', 'connect p50', 'connect p99', 'idle RSS', 'RSS per connection'],
        rows,
        notes: [
          'A connect = handshake + first server message + one subscribe confirmed; ESCAI verifies a JWT on each. Per connection = (RSS after the storm, 3 s idle − RSS before) / connections.',
        ],
      },
    ],
    checks,
  };
}
