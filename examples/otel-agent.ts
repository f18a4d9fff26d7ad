// A small tool-using agent loop, instrumented with the OpenTelemetry JS SDK
// (GenAI semantic conventions) and exporting OTLP to ESCAI Realtime: open the
// console while it runs and watch its runs, model calls, tool calls and
// tokens live. No model is called: a scripted policy stands in for one, with
// realistic latencies and token counts. With --loop it gets stuck calling one
// tool with the same arguments, and the server raises a tool_call_loop alert.
// Start the server first (`npm start`), then, in the same directory:
//   ESCAI_TOKEN=$(node dist/cli/main.js token --sub otel-agent --role developer) node --import tsx examples/otel-agent.ts [--loop] [--runs N]
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';

const token = process.env['ESCAI_TOKEN'];
if (!token) throw new Error('set ESCAI_TOKEN to a token with events:publish (node dist/cli/main.js token --sub otel-agent --role developer)');
const base = process.env['ESCAI_URL'] ?? 'http://127.0.0.1:8000';
const looping = process.argv.includes('--loop');
const runsAt = process.argv.indexOf('--runs');
const runs = runsAt > 0 ? Number(process.argv[runsAt + 1]) : 5;
const AGENT = 'otel-agent';

const provider = new BasicTracerProvider({
  // The agent named on the resource: every span is its, in whatever order the spans arrive.
  resource: resourceFromAttributes({ 'service.name': AGENT, 'gen_ai.agent.name': AGENT }),
  spanProcessors: [
    // Export every half second, not every five: the console shows each step within about half a second of its end.
    new BatchSpanProcessor(new OTLPTraceExporter({ url: `${base}/v1/traces`, headers: { Authorization: `Bearer ${token}` }, compression: 'gzip' as never }), {
      scheduledDelayMillis: 500,
    }),
  ],
});
const tracer = provider.getTracer('otel-agent-example', '1.0.0');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const jitter = (lo: number, hi: number) => lo + Math.random() * (hi - lo);

/** A model call: a chat span with usage and the tool it chose (or none when it answers). */
async function chat(run: Span, step: number, tool: string | undefined): Promise<void> {
  const span = tracer.startSpan(
    'chat gpt-4o-mini',
    { kind: SpanKind.CLIENT, attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o-mini' } },
    trace.setSpan(ROOT_CONTEXT, run),
  );
  await sleep(jitter(300, 900));
  span.setAttributes({
    'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
    'gen_ai.usage.input_tokens': 600 + step * 250,
    'gen_ai.usage.output_tokens': Math.round(jitter(30, 180)),
    'gen_ai.response.finish_reasons': [tool ? 'tool_calls' : 'stop'],
  });
  span.end();
}

/** A tool call: an execute_tool span with its arguments; it fails now and then. */
async function callTool(run: Span, tool: string, args: Record<string, unknown>): Promise<void> {
  const span = tracer.startSpan(
    `execute_tool ${tool}`,
    { attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': tool, 'gen_ai.tool.call.arguments': JSON.stringify(args) } },
    trace.setSpan(ROOT_CONTEXT, run),
  );
  await sleep(jitter(100, 600));
  if (Math.random() < 0.08) span.setStatus({ code: SpanStatusCode.ERROR, message: `${tool} timed out` });
  span.end();
}

/** One ticket: the model picks tools until it can answer (or, with --loop, never stops searching). */
async function handle(ticket: number): Promise<void> {
  const run = tracer.startSpan(`invoke_agent ${AGENT}`, {
    attributes: {
      'gen_ai.operation.name': 'invoke_agent',
      'gen_ai.agent.name': AGENT,
      'gen_ai.agent.description': `Resolve support ticket #${ticket}`,
      'gen_ai.conversation.id': `ticket-${ticket}`,
    },
  });
  const plan: Array<[string, Record<string, unknown>]> = looping
    ? Array.from({ length: 7 }, () => ['search_docs', { query: 'refund policy' }] as [string, Record<string, unknown>])
    : [
        ['lookup_order', { order: 1000 + ticket }],
        ['search_docs', { query: `ticket ${ticket} refund` }],
        ['send_reply', { ticket, template: 'refund-approved' }],
      ];
  for (let step = 0; step < plan.length; step++) {
    const [tool, args] = plan[step]!;
    await chat(run, step, tool);
    await callTool(run, tool, args);
  }
  await chat(run, plan.length, undefined);
  run.end();
  console.log(`ticket #${ticket} done (${plan.length} tool calls)`);
}

for (let ticket = 1; ticket <= runs; ticket++) await handle(ticket);
await provider.forceFlush();
await provider.shutdown();
console.log(`exported to ${base}/v1/traces; open the console's agent view of ${AGENT}`);
