// Issue 3 benchmark: time to replay 1,000 missed events to a client that
// resubscribes with `since` (one round of bench/scenarios/replay.ts, repeated,
// unbatched client). Server in its own process (dist/), client here.
// Usage: npm run build && node --import tsx bench/replay.ts [runs=20]
import { histogram, startServerProcess, summary, token } from './lib.js';
import { round } from './scenarios/replay.js';

const RUNS = Number(process.argv[2] ?? 20);

const server = await startServerProcess();
try {
  const producer = await token('bench-producer', ['developer']);
  const watcher = await token('bench-watcher', ['researcher']);
  const h = histogram();
  for (let run = 0; run < RUNS + 2; run++) {
    const us = await round('escai', server.url, producer, watcher, `replay_agent_${run}`);
    if (run >= 2) h.recordValue(Math.round(us)); // two warm-up runs
  }
  console.log(`replay of 1000 missed events (subscribe with since → last replayed event received), ${RUNS} runs: ${summary(h)}`);
} finally {
  await server.stop();
}
