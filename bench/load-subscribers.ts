// Load generator (own process, forked by bench/run.ts): opens subscriber
// connections to one server as fast as a window of concurrent connects
// allows (the connect storm), then counts deliveries cheaply (byte search,
// no parse) and samples latency on every n-th subscriber (parse; latency =
// receive time − the producer's `sent_at`, wall clock with sub-ms resolution,
// both processes on one machine).
import { performance } from 'node:perf_hooks';
import type { WebSocket } from 'ws';
import type { ConnectArg, ConnectResult, Reading, SubscriberApi } from './harness/api.js';
import { serveWorker } from './harness/rpc.js';
import { clientUrl, clock, countEvents, openClient, sentTimes, type Kind } from './harness/wire.js';
import { token } from './lib.js';

const MAX_SAMPLES = 200_000;
const sockets: WebSocket[] = [];
let deliveries = 0;
let closed = 0;
let markedAt = 0;
let markedDeliveries = 0;
let latencyUs: number[] = [];

function onSampled(kind: Kind, frame: Buffer): void {
  deliveries += countEvents(frame);
  if (latencyUs.length >= MAX_SAMPLES) return;
  const now = clock();
  for (const sent of sentTimes(kind, frame)) latencyUs.push(Math.max(1, Math.round((now - sent) * 1000)));
}

async function connect(arg: ConnectArg): Promise<ConnectResult> {
  const tokens = arg.kind.startsWith('escai') ? await Promise.all(Array.from({ length: arg.users }, (_, u) => token(`bench-user-${u}`, ['researcher']))) : [''];
  const connectUs: number[] = [];
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const one = async (): Promise<void> => {
    while (next < arg.count) {
      const g = arg.first + next++;
      const sampled = arg.sampleEvery > 0 && g % arg.sampleEvery === 0;
      const kind = arg.kind;
      const started = performance.now();
      try {
        const ws = await openClient({
          kind,
          url: clientUrl(kind, arg.base, `sub-${g}`, tokens[g % tokens.length]!),
          subscribe: arg.specs[g % arg.specs.length]!,
          onFrame: sampled ? (frame) => onSampled(kind, frame) : (frame) => void (deliveries += countEvents(frame)),
          onClose: () => void closed++,
        });
        connectUs.push(Math.max(1, Math.round((performance.now() - started) * 1000)));
        sockets.push(ws);
      } catch (err) {
        failed++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(arg.concurrency, arg.count) }, one));
  const result: ConnectResult = { connected: sockets.length, failed, elapsedMs: performance.now() - t0, connectUs };
  if (firstError !== undefined) result.firstError = firstError;
  return result;
}

serveWorker<SubscriberApi>({
  connect,
  mark() {
    markedAt = performance.now();
    markedDeliveries = deliveries;
    latencyUs = [];
    return null;
  },
  read(): Reading {
    return { deliveries: deliveries - markedDeliveries, elapsedMs: performance.now() - markedAt, latencyUs, closed };
  },
  total: () => deliveries,
});
