// Issue 3 benchmark: time to replay 1,000 missed events to a client that
// resubscribes with `since`. Server in its own process (dist/), client here.
// Usage: npm run build && node --import tsx bench/replay.ts [runs=20]
import { WebSocket } from 'ws';
import { epistemicBatch, histogram, postEvents, startServerProcess, summary, token } from './lib.js';

const RUNS = Number(process.argv[2] ?? 20);
const MISSED = 1000;

const server = await startServerProcess();
const producer = await token('bench-producer', ['developer']);
const watcher = await token('bench-watcher', ['researcher']);
const h = histogram();

async function publishBatch(agentId: string, from: number): Promise<{ offset: number; epoch: string }> {
  return (await postEvents(server.url, producer, epistemicBatch(agentId, from, MISSED))).at(-1)!;
}

for (let run = 0; run < RUNS + 2; run++) {
  const agentId = `replay_agent_${run}`;
  const first = await publishBatch(agentId, 0); // offsets 1..1000: the client "saw" these
  await publishBatch(agentId, MISSED); // 1001..2000: missed while away
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws/monitor/bench-${run}?token=${watcher}`);
  await new Promise((resolve) => ws.once('message', resolve)); // connection_established
  let got = 0;
  const t0 = process.hrtime.bigint();
  const done = new Promise<void>((resolve) =>
    ws.on('message', (raw) => {
      const msg = JSON.parse(raw.toString()) as { type: string };
      if (msg.type === 'epistemic_update' && ++got === MISSED) resolve();
    }),
  );
  ws.send(JSON.stringify({ type: 'subscribe', data: { type: 'epistemic_updates', agent_id: agentId, since: { offset: first.offset, epoch: first.epoch } } }));
  await done;
  const us = Number(process.hrtime.bigint() - t0) / 1000;
  if (run >= 2) h.recordValue(us); // two warm-up runs
  ws.close();
}
console.log(`replay of ${MISSED} missed events (subscribe with since → last replayed event received), ${RUNS} runs: ${summary(h)}`);
await server.stop();
