// HTTP publish of 1,000-event batches (POST /api/v1/events, one at a time)
// against one node (memory or Redis engine, no subscribers): time to the 202.
// The measurement of the Redis scenario of `npm run bench`, on its own, to
// profile the publish path:
//   npm run build && node --import tsx bench/http-batch.ts [memory|redis] [batches] [events per batch]
//   ESCAI_BENCH_PROFILE=/tmp/prof node --import tsx bench/http-batch.ts redis   # server under --cpu-prof
import { latencyOf } from './harness/measure.js';
import { ms } from './harness/results.js';
import { ESCAI_BENCH_ENV } from './harness/servers.js';
import { epistemicBatch, postEvents, startServerProcess, token } from './lib.js';

const engine = process.argv[2] ?? 'redis';
const batches = Number(process.argv[3] ?? 50);
const size = Number(process.argv[4] ?? 1000);
const env: Record<string, string> = { ...ESCAI_BENCH_ENV };
if (engine === 'redis') {
  env['ESCAI_REDIS_URL'] = process.env['ESCAI_BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  env['ESCAI_REDIS_PREFIX'] = `bench-http-${process.pid}`;
}
const server = await startServerProcess(env);
try {
  const producer = await token('bench-http-producer', ['developer']);
  const samples: number[] = [];
  for (let b = 0; b <= batches; b++) {
    const events = epistemicBatch(`http_agent_${b % 10}`, b * size, size);
    const t0 = performance.now();
    await postEvents(server.url, producer, events);
    if (b > 0) samples.push(Math.round((performance.now() - t0) * 1000)); // the first is a warm-up
  }
  const lat = latencyOf(samples);
  console.log(`${engine}: ${batches} POSTs of ${size} events, one at a time, time to the 202: p50 ${ms(lat.p50)}, p99 ${ms(lat.p99)}, max ${ms(lat.max)}`);
} finally {
  await server.stop();
}
