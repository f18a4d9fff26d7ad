// Scenario "replay" (bench/replay.ts runs one round kind on its own). A stream
// holds 2,000 events; a client resubscribes with `since` the 1,000th; time
// from sending `subscribe` to the 1,000th replayed event received, unbatched
// and batched. Two warm-up rounds discarded, a fresh agent per round. The
// one client lives in the orchestrator (one socket: no load to speak of).
import { WebSocket } from 'ws';
import { latencyOf } from '../harness/measure.js';
import { ms, runs, type Check, type Table } from '../harness/results.js';
import { startServer } from '../harness/servers.js';
import { clientUrl, countEvents, KIND_LABEL, type Kind } from '../harness/wire.js';
import { epistemicBatch, postEvents, token } from '../lib.js';
import type { Context } from './context.js';

const MISSED = 1000;

async function publishBatch(base: string, producer: string, agentId: string, from: number): Promise<{ offset: number; epoch: string }> {
  return (await postEvents(base, producer, epistemicBatch(agentId, from, MISSED))).at(-1)!;
}

/** Most a replay of 1,000 events may take before the round fails (a refused or short replay must not hang the run). */
const ROUND_TIMEOUT_MS = 30_000;

/** One round on a fresh agent: publish 2,000, resubscribe with `since` the 1,000th; µs to the 1,000th replayed event. */
export async function round(kind: Kind, base: string, producer: string, watcher: string, agentId: string): Promise<number> {
  const first = await publishBatch(base, producer, agentId, 0);
  await publishBatch(base, producer, agentId, MISSED);
  const ws = new WebSocket(clientUrl(kind, base, `replay-${agentId}`, watcher), { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    ws.once('message', resolve);
    ws.once('error', reject);
  });
  let got = 0;
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<void>((resolve, reject) => {
    ws.on('message', (raw: Buffer) => {
      got += countEvents(raw);
      if (got >= MISSED) resolve();
    });
    ws.once('close', (code) => reject(new Error(`replay: the socket closed (${code}) after ${got} of ${MISSED} events`)));
    timer = setTimeout(() => reject(new Error(`replay: ${got} of ${MISSED} events after ${ROUND_TIMEOUT_MS} ms`)), ROUND_TIMEOUT_MS);
  });
  ws.send(JSON.stringify({ type: 'subscribe', data: { type: 'epistemic_updates', agent_id: agentId, since: { offset: first.offset, epoch: first.epoch } } }));
  try {
    await done;
    return (performance.now() - t0) * 1000;
  } finally {
    clearTimeout(timer);
    ws.removeAllListeners('close');
    ws.close();
  }
}

export async function replay(ctx: Context): Promise<{ tables: Table[]; checks: Check[] }> {
  const rounds = ctx.quick ? 3 : 20;
  const kinds: Kind[] = ['escai', 'escai-batch'];
  const rows: string[][] = [];
  const producer = await token('bench-producer', ['developer']);
  const watcher = await token('bench-watcher', ['researcher']);
  for (const kind of kinds) {
    const p50: number[] = [];
    const p99: number[] = [];
    const max: number[] = [];
    for (let run = 1; run <= ctx.runs; run++) {
      const dep = await startServer(kind);
      try {
        const samples: number[] = [];
        for (let r = 0; r < rounds + 2; r++) {
          const us = await round(kind, dep.pubBase, producer, watcher, `replay_${run}_${r}`);
          if (r >= 2) samples.push(Math.round(us));
        }
        const lat = latencyOf(samples);
        p50.push(lat.p50);
        p99.push(lat.p99);
        max.push(lat.max);
        ctx.log(`  replay: ${KIND_LABEL[kind]}, run ${run}: p50 ${ms(lat.p50)}, p99 ${ms(lat.p99)}`);
      } finally {
        await dep.stop();
      }
    }
    rows.push([KIND_LABEL[kind], String(rounds), runs(p50, ms), runs(p99, ms), runs(max, ms)]);
  }
  return {
    tables: [
      {
        title: `Replay of ${MISSED.toLocaleString('en-US')} missed events (subscribe with since → last replayed event)`,
        head: ['client', 'rounds per run', 'p50', 'p99', 'max'],
        rows,
      },
    ],
    checks: [],
  };
}
