// OTLP ingest against plain publishing, in the same run: N spans made by the
// OpenTelemetry SDK (agent runs of model and tool calls, GenAI conventions),
// sent as OTLP protobuf and as OTLP JSON in batches of 512 to POST /v1/traces,
// against the events those same spans map to sent to POST /api/v1/events
// (same batches, same idempotency keys). Each (mode, round) gets a fresh
// server process (memory engine, detectors on), the load comes from this
// process, 4 requests in flight. Then the latency from an export to a
// subscriber's socket, one span at a time.
//   npm run build && node --import tsx bench/ingest.ts [spans=51200] [rounds=3]
import { WebSocket } from 'ws';
import { Ingestor } from '../src/ingest/ingest.js';
import { decodeProtobuf } from '../src/ingest/otlp/decode.js';
import { child, memoryTracer, serialize } from '../test/otel-support.js';
import { latencyOf } from './harness/measure.js';
import { ESCAI_BENCH_ENV } from './harness/servers.js';
import { startServerProcess, token } from './lib.js';

const SPANS = Number(process.argv[2] ?? 51_200);
const ROUNDS = Number(process.argv[3] ?? 3);
const BATCH = 512;
const IN_FLIGHT = 4;
const ENV = { ...ESCAI_BENCH_ENV, ESCAI_OTLP_RATE: '10000000', ESCAI_OTLP_BURST: '10000000' };

/** Agent runs of 1 agent span + 4 model calls + 3 tool calls, spread over 20 agents, in batches of BATCH (end order, as exporters send). */
function makeBatches() {
  const { tracer, spans, provider } = memoryTracer({ 'service.name': 'bench-agents' });
  let made = 0;
  let run = 0;
  while (made < SPANS) {
    const agent = `bench-agent-${run % 20}`;
    const root = tracer.startSpan(`invoke_agent ${agent}`, {
      attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': agent, 'gen_ai.agent.description': 'answers questions' },
    });
    for (let i = 0; i < 4 && made < SPANS - 1; i++, made++) {
      child(tracer, root, 'chat gpt-4o', {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'gpt-4o',
        'gen_ai.usage.input_tokens': 800 + i,
        'gen_ai.usage.output_tokens': 60,
        'gen_ai.response.finish_reasons': ['tool_calls'],
      }).end();
      if (i < 3 && made < SPANS - 2) {
        child(tracer, root, 'execute_tool search', {
          'gen_ai.operation.name': 'execute_tool',
          'gen_ai.tool.name': `tool_${i}`,
          'gen_ai.tool.call.arguments': `{"q":"${run}-${i}"}`,
        }).end();
        made++;
      }
    }
    root.end();
    made++;
    run++;
  }
  const all = spans().slice(0, SPANS);
  void provider.shutdown(); // after reading: the in-memory exporter forgets its spans on shutdown
  const batches = [];
  for (let i = 0; i < all.length; i += BATCH) batches.push(all.slice(i, i + BATCH));
  const protobuf = batches.map((b) => Buffer.from(serialize(b, 'protobuf')));
  const json = batches.map((b) => Buffer.from(serialize(b, 'json')));
  // The events the server makes of them, made here by the same mapping, as a producer would send them.
  const ingestor = new Ingestor({ publisher: { publish: async () => [] }, mapping: { captureContent: false }, maxEventBytes: 65_536, chunk: 1000 });
  const events = protobuf.map((bytes) => Buffer.from(JSON.stringify(ingestor.eventsOf(decodeProtobuf(bytes)).events)));
  return { protobuf, json, events, spans: all.length };
}

type Mode = 'otlp-protobuf' | 'otlp-json' | 'publish-json';

async function round(mode: Mode, bodies: Buffer[]): Promise<{ spansPerSec: number; p50: number; p99: number }> {
  const server = await startServerProcess(ENV);
  try {
    const tok = await token('bench-producer', ['developer']);
    const path = mode === 'publish-json' ? '/api/v1/events' : '/v1/traces';
    const type = mode === 'otlp-protobuf' ? 'application/x-protobuf' : 'application/json';
    const want = mode === 'publish-json' ? 202 : 200;
    const latencies: number[] = [];
    let next = 0;
    const started = performance.now();
    const worker = async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        const t0 = performance.now();
        const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': type, authorization: `Bearer ${tok}` }, body });
        const text = await res.text();
        if (res.status !== want) throw new Error(`${mode}: ${res.status} ${text.slice(0, 200)}`);
        latencies.push((performance.now() - t0) * 1000);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    const seconds = (performance.now() - started) / 1000;
    const lat = latencyOf(latencies);
    return { spansPerSec: (bodies.length * BATCH) / seconds, p50: lat.p50, p99: lat.p99 };
  } finally {
    await server.stop();
  }
}

/** Export of one span (OTLP protobuf) to its activity event on a subscriber's socket, `n` times, one at a time. */
async function exportToSocket(n: number): Promise<ReturnType<typeof latencyOf>> {
  const server = await startServerProcess(ENV);
  try {
    const producer = await token('bench-producer', ['developer']);
    const watcher = await token('bench-watcher', ['researcher']);
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws/monitor/bench?token=${watcher}`);
    const waiting = new Map<string, () => void>();
    ws.on('message', (raw) => {
      const m = JSON.parse(String(raw)) as { type: string; data?: { span_id?: string; state?: string } };
      if (m.type === 'agent_activity' && m.data?.state !== 'running') waiting.get(m.data?.span_id ?? '')?.();
    });
    await new Promise<void>((resolve) =>
      ws.on('message', function first(raw) {
        if ((JSON.parse(String(raw)) as { type: string }).type === 'connection_established') {
          ws.off('message', first);
          resolve();
        }
      }),
    );
    const confirmed = new Promise<void>((resolve) =>
      ws.on('message', (raw) => (JSON.parse(String(raw)) as { type: string }).type === 'subscription_confirmed' && resolve()),
    );
    ws.send(JSON.stringify({ type: 'subscribe', data: { type: 'agent_activity', agent_id: 'latency-agent' } }));
    await confirmed;
    const samples: number[] = [];
    for (let i = 0; i < n; i++) {
      const { tracer, spans } = memoryTracer({ 'service.name': 'latency', 'gen_ai.agent.name': 'latency-agent' });
      tracer.startSpan('chat m', { attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'm' } }).end();
      const [span] = spans();
      const body = Buffer.from(serialize([span!], 'protobuf'));
      const arrived = new Promise<void>((resolve) => waiting.set(span!.spanContext().spanId, resolve));
      const t0 = performance.now();
      const res = await fetch(`${server.url}/v1/traces`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${producer}` },
        body,
      });
      await res.arrayBuffer();
      await arrived;
      samples.push((performance.now() - t0) * 1000);
    }
    ws.close();
    return latencyOf(samples);
  } finally {
    await server.stop();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const data = makeBatches();
console.log(
  `${data.spans} spans in ${data.protobuf.length} batches of ${BATCH}; ${data.events.reduce((n, b) => n + (JSON.parse(b.toString()) as unknown[]).length, 0)} mapped events`,
);
console.log(
  `body sizes per batch: protobuf ${Math.round(data.protobuf[0]!.length / 1024)} KiB, OTLP JSON ${Math.round(data.json[0]!.length / 1024)} KiB, mapped events JSON ${Math.round(data.events[0]!.length / 1024)} KiB`,
);
const results: Record<Mode, Array<{ spansPerSec: number; p50: number; p99: number }>> = { 'otlp-protobuf': [], 'otlp-json': [], 'publish-json': [] };
const modes: Mode[] = ['otlp-protobuf', 'otlp-json', 'publish-json'];
for (let r = 0; r < ROUNDS; r++) {
  // Rotated each round, so no mode always runs first on a cold machine.
  for (const mode of [...modes.slice(r % 3), ...modes.slice(0, r % 3)]) {
    const bodies = mode === 'otlp-protobuf' ? data.protobuf : mode === 'otlp-json' ? data.json : data.events;
    results[mode].push(await round(mode, bodies));
  }
}
const base = median(results['publish-json'].map((x) => x.spansPerSec));
for (const mode of modes) {
  const rate = median(results[mode].map((x) => x.spansPerSec));
  console.log(
    `${mode.padEnd(14)} ${Math.round(rate).toString().padStart(7)} spans/s (median of ${ROUNDS}; rounds ${results[mode].map((x) => Math.round(x.spansPerSec)).join(', ')})  ${(rate / base).toFixed(2)}× publish  request p50 ${median(results[mode].map((x) => x.p50))} ms p99 ${median(results[mode].map((x) => x.p99))} ms`,
  );
}
const lat = await exportToSocket(300);
console.log(`export → subscriber socket, one span at a time (OTLP protobuf, 300 spans): p50 ${lat.p50} ms, p99 ${lat.p99} ms, max ${lat.max} ms`);
