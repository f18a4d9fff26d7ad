// Load generator (own process, forked by bench/run.ts): one producer
// connection publishing at a fixed rate (open loop: a 1 ms timer sends what
// is due, whatever the acknowledgements do), each event stamped with its
// send time in `data.sent_at`. Counts acknowledgements and errors.
import { performance } from 'node:perf_hooks';
import type { WebSocket } from 'ws';
import type { ProducerApi, ProducerConnectArg, RunArg, RunResult } from './harness/api.js';
import { serveWorker } from './harness/rpc.js';
import { clientUrl, clock, isAck, isError, openClient, publishFrame, type BenchEvent, type Kind } from './harness/wire.js';
import { sampleEpistemic, token } from './lib.js';

let ws: WebSocket | undefined;
let kind: Kind = 'ws';
let errors = 0;
let firstError: string | undefined;
let seq = 0;
/** Per-agent event counters: each agent's events alternate confidence 0.7 / 0.3 (half match `min: 0.5`). */
const perAgent = new Map<string, number>();

async function connect(arg: ProducerConnectArg): Promise<null> {
  kind = arg.kind;
  const producerToken = kind.startsWith('escai') ? await token('bench-producer', ['developer']) : '';
  ws = await openClient({
    kind,
    url: clientUrl(kind === 'escai-batch' ? 'escai' : kind, arg.base, 'producer', producerToken),
    onFrame: (frame) => {
      if (isAck(kind, frame)) return; // an acknowledgement is never an error
      if (isError(kind, frame)) {
        errors++;
        firstError ??= frame.toString().slice(0, 300);
      }
    },
    onClose: () => {
      errors++;
      firstError ??= 'producer connection closed';
    },
  });
  return null;
}

function event(agent: string): BenchEvent {
  const k = perAgent.get(agent) ?? 0;
  perAgent.set(agent, k + 1);
  const data = sampleEpistemic(agent, ++seq) as BenchEvent['data'];
  data['confidence_level'] = k % 2 === 0 ? 0.7 : 0.3;
  data.sent_at = clock();
  return { type: 'epistemic_update', agent_id: agent, data };
}

function run(arg: RunArg): Promise<RunResult> {
  const socket = ws;
  if (!socket) throw new Error('not connected');
  const errorsBefore = errors;
  let published = 0;
  const start = performance.now();
  const end = start + arg.seconds * 1000;
  return new Promise<RunResult>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      const due = Math.floor(((Math.min(now, end) - start) / 1000) * arg.rate);
      while (published < due) {
        const agent = arg.agents[published % arg.agents.length]!;
        socket.send(publishFrame(kind, event(agent), seq + 1));
        published++;
      }
      if (now >= end) {
        clearInterval(timer);
        // Acknowledgements of the last events: give them a moment.
        setTimeout(() => {
          const result: RunResult = { published, errors: errors - errorsBefore };
          if (firstError !== undefined) result.firstError = firstError;
          resolve(result);
        }, 200);
      }
    }, 1);
  });
}

serveWorker<ProducerApi>({ connect, run });
