// HTTP publish of 1,000-event batches (POST /api/v1/events, one at a time)
// against one node (memory or Redis engine, no subscribers): time to the 202.
// The measurement of the Redis scenario of `npm run bench`, on its own, to
// profile the publish path:
//   npm run build && node --import tsx bench/http-batch.ts [memory|redis] [batches] [events per batch]
//   ESCAI_BENCH_PROFILE=/tmp/prof node --import tsx bench/http-batch.ts redis   # server under --cpu-prof
import { latencyOf } from './harness/measure.js';
import { ms } from './harness/results.js';
import { ESCAI_BENCH_ENV } from './harness/servers.js';
import { startServerProcess } from './lib.js';
import { httpBatches, REDIS_URL } from './scenarios/redis.js';

const engine = process.argv[2] ?? 'redis';
const batches = Number(process.argv[3] ?? 50);
const size = Number(process.argv[4] ?? 1000);
const env: Record<string, string> = { ...ESCAI_BENCH_ENV };
if (engine === 'redis') {
  env['ESCAI_REDIS_URL'] = REDIS_URL;
  env['ESCAI_REDIS_PREFIX'] = `bench-http-${process.pid}`;
}
const server = await startServerProcess(env);
try {
  const lat = latencyOf(await httpBatches(server.url, batches, size));
  console.log(`${engine}: ${batches} POSTs of ${size} events, one at a time, time to the 202: p50 ${ms(lat.p50)}, p99 ${ms(lat.p99)}, max ${ms(lat.max)}`);
} finally {
  await server.stop();
}
