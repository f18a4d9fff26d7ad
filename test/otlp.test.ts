// OTLP ingest end to end: the real OpenTelemetry JS SDK exporting (protobuf
// and JSON, gzip) to a real server on port 0, and real WebSocket subscribers.
// An instrumented agent appears with its status, activity and token usage; a
// child arriving before its parent shows the parent running; a tool-call
// loop raises a pattern alert and healthy traffic none; every bad input gets
// the OTLP spec's answer and leaves the node serving.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { AgentRecord } from '../src/protocol/api.js';
import { RpcStatus } from '../src/ingest/otlp/schema.js';
import { resolveConfig } from '../src/config/config.js';
import { EscaiServer } from '../src/server/server.js';
import { api, confirmed, eventually, SECRET, startServer, type DeliveredEvent, type HistoryBody, type TestClient, type TestServer } from './helpers.js';
import { child, exportingTracer, hexId, memoryTracer, otlpJson, postTraces, serialize, SpanStatusCode, type Encoding } from './otel-support.js';

const PRODUCER = { sub: 'otel-exporter', roles: ['developer'] };
const WATCHER = { sub: 'watcher', roles: ['researcher'] };

async function headers(s: TestServer, type = 'application/json', claims: object = PRODUCER): Promise<Record<string, string>> {
  return { 'content-type': type, authorization: `Bearer ${await s.token(claims)}` };
}

/** The next activity event of `span` (by name) in the state wanted. */
function step(c: TestClient, name: string, state: string, timeoutMs = 5000): Promise<DeliveredEvent> {
  return c.next('agent_activity', (m) => m.data?.['name'] === name && m.data?.['state'] === state, timeoutMs);
}

for (const encoding of ['protobuf', 'json'] as const satisfies readonly Encoding[]) {
  test(`an agent instrumented with the OpenTelemetry SDK (${encoding}, gzip): status, activity and tokens, live`, { timeout: 60_000 }, async (t) => {
    const s = await startServer(t);
    const agent = `planner-${encoding}`;
    const watcher = await s.connect(WATCHER);
    await confirmed(watcher, { type: 'agent_activity', agent_id: agent });
    await confirmed(watcher, { type: 'agent_status', agent_id: agent });
    await confirmed(watcher, { type: 'epistemic_updates', agent_id: agent });
    // The agent's name on the resource: every span is the agent's, whatever order they arrive in.
    const otel = exportingTracer(s.url, await s.token(PRODUCER), encoding, { 'service.name': 'support', 'gen_ai.agent.name': agent }, { gzip: true });
    t.after(() => otel.shutdown());
    const { tracer } = otel;
    const run = tracer.startSpan(`invoke_agent ${agent}`, {
      attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': agent, 'gen_ai.agent.description': 'Answers support tickets' },
    });
    const chat = child(tracer, run, 'chat gpt-4o', {
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'gpt-4o',
      'gen_ai.usage.input_tokens': 1200,
      'gen_ai.usage.output_tokens': 80,
      'gen_ai.response.finish_reasons': ['tool_calls'],
    });
    chat.end();
    await otel.flush();
    // The child arrived before its parent: the parent shows as running, then the child.
    const running = await watcher.next('agent_activity', (m) => m.data?.['state'] === 'running', 5000);
    assert.equal(running.data?.['span_id'], run.spanContext().spanId);
    assert.equal(running.data?.['inferred'], true);
    const chatEvent = await step(watcher, 'chat gpt-4o', 'ok');
    assert.equal(chatEvent.data?.['parent_span_id'], run.spanContext().spanId);
    assert.deepEqual(chatEvent.data?.['tokens'], { input: 1200, output: 80, total: 1280 });
    assert.equal((await watcher.next('agent_status_change', 5000)).status, 'running');
    const tool = child(tracer, run, 'execute_tool lookup_order', {
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'lookup_order',
      'gen_ai.tool.call.arguments': '{"order":42}',
    });
    tool.setStatus({ code: SpanStatusCode.ERROR, message: 'order service timed out' });
    tool.end();
    await otel.flush();
    const failed = await step(watcher, 'execute_tool lookup_order', 'error');
    assert.equal(failed.data?.['tool'], 'lookup_order');
    assert.deepEqual(failed.data?.['error'], { message: 'order service timed out' });
    run.end();
    await otel.flush();
    const done = await step(watcher, `invoke_agent ${agent}`, 'ok');
    assert.equal(done.data?.['kind'], 'agent');
    assert.equal((await watcher.next('agent_status_change', (m) => m.status === 'completed', 5000)).metadata?.['span_id'], run.spanContext().spanId);
    const goal = await watcher.next('epistemic_update', (m) => Array.isArray(m.data?.['goal_states']), 5000);
    assert.deepEqual(goal.data?.['goal_states'], [{ description: 'Answers support tickets', status: 'completed' }]);
    assert.equal(goal.data?.['confidence_level'], undefined, 'no figure the telemetry does not carry');
    // The agent list and record: status, what it does now, tokens.
    const reader = await s.token(WATCHER);
    await eventually(
      async () => (await api<AgentRecord>(s, 'GET', `/api/v1/agents/${agent}`, { token: reader })).body.status === 'completed',
      5000,
      'the record to say completed',
    );
    const record = (await api<AgentRecord>(s, 'GET', `/api/v1/agents/${agent}`, { token: reader })).body;
    assert.deepEqual(record.tokens, { input: 1200, output: 80, total: 1280 });
    assert.equal(record.activity?.name, `invoke_agent ${agent}`);
    assert.equal(record.activity?.state, 'ok');
    assert.equal(record.events.agent_activity, 4);
    const history = await api<HistoryBody>(s, 'GET', `/api/v1/agents/${agent}/activity?order=desc&limit=10`, { token: reader });
    assert.deepEqual(
      history.body.events.map((e) => [e.data?.['name'], e.data?.['state']]),
      [
        [`invoke_agent ${agent}`, 'ok'],
        ['execute_tool lookup_order', 'error'],
        ['chat gpt-4o', 'ok'],
        ['', 'running'],
      ],
    );
  });
}

test('OpenInference and AI SDK spans from the SDK: their kinds, models, tools and tokens', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const watcher = await s.connect(WATCHER);
  await confirmed(watcher, { type: 'agent_activity' });
  const otel = exportingTracer(s.url, await s.token(PRODUCER), 'protobuf', { 'service.name': 'mixed' });
  t.after(() => otel.shutdown());
  const { tracer } = otel;
  // OpenInference (LangChain / LlamaIndex instrumentations): a chain with an LLM and a tool.
  const chain = tracer.startSpan('LangGraph', { attributes: { 'openinference.span.kind': 'AGENT', 'agent.name': 'oi-agent' } });
  child(tracer, chain, 'ChatOpenAI', {
    'openinference.span.kind': 'LLM',
    'llm.model_name': 'gpt-4o-mini',
    'llm.token_count.prompt': 300,
    'llm.token_count.completion': 20,
    'llm.token_count.total': 320,
  }).end();
  child(tracer, chain, 'tavily_search', { 'openinference.span.kind': 'TOOL', 'tool.name': 'tavily_search', 'input.value': '{"query":"weather"}' }).end();
  chain.end();
  // The Vercel AI SDK: generateText with a tool, as its telemetry writes it.
  const call = tracer.startSpan('ai.generateText', {
    attributes: {
      'ai.operationId': 'ai.generateText',
      'operation.name': 'ai.generateText weather-bot',
      'ai.telemetry.functionId': 'weather-bot',
      'ai.model.id': 'gpt-4o',
      'ai.usage.inputTokens': 90,
      'ai.usage.outputTokens': 9,
    },
  });
  child(tracer, call, 'ai.generateText.doGenerate', {
    'ai.operationId': 'ai.generateText.doGenerate',
    'ai.model.id': 'gpt-4o',
    'gen_ai.usage.input_tokens': 90,
    'gen_ai.usage.output_tokens': 9,
    'ai.response.finishReason': 'tool-calls',
  }).end();
  child(tracer, call, 'ai.toolCall', { 'ai.operationId': 'ai.toolCall', 'ai.toolCall.name': 'weather', 'ai.toolCall.args': '{"city":"Oslo"}' }).end();
  call.end();
  await otel.flush();
  // Each span was exported as it ended, children first (each its own request, so in any order): a step
  // that came before the span naming its agent showed under the service's name, then again under the
  // agent. Read the agents' own streams.
  const reader = await s.token(WATCHER);
  const stepsOf = async (agent: string) =>
    (await api<HistoryBody>(s, 'GET', `/api/v1/agents/${agent}/activity`, { token: reader })).body.events.filter((e) => e.data?.['state'] !== 'running');
  await eventually(
    async () => (await stepsOf('oi-agent')).length === 3 && (await stepsOf('weather-bot')).length === 3,
    5000,
    'both agents to hold their three steps',
  ).catch(async (err: Error) => {
    throw new Error(
      `${err.message}: ${JSON.stringify([(await stepsOf('oi-agent')).map((e) => e.data?.['name']), (await stepsOf('weather-bot')).map((e) => e.data?.['name'])])}`,
    );
  });
  const steps = [...(await stepsOf('oi-agent')), ...(await stepsOf('weather-bot'))];
  const summary = steps.map((e) => [
    e.agent_id,
    e.data?.['name'],
    e.data?.['kind'],
    e.data?.['model'] ?? e.data?.['tool'] ?? null,
    (e.data?.['tokens'] as { total?: number } | undefined)?.total ?? null,
  ]);
  assert.deepEqual(
    summary.sort(),
    [
      ['oi-agent', 'ChatOpenAI', 'llm', 'gpt-4o-mini', 320],
      ['oi-agent', 'LangGraph', 'agent', null, null],
      ['oi-agent', 'tavily_search', 'tool', 'tavily_search', null],
      ['weather-bot', 'ai.generateText', 'agent', 'gpt-4o', 99],
      ['weather-bot', 'ai.generateText.doGenerate', 'llm', 'gpt-4o', 99],
      ['weather-bot', 'ai.toolCall', 'tool', 'weather', null],
    ].sort(),
  );
  // The AI SDK call repeats its model call's tokens: counted once.
  await eventually(
    async () => (await api<AgentRecord>(s, 'GET', '/api/v1/agents/weather-bot', { token: reader })).body.tokens?.total === 99,
    5000,
    'weather-bot to have used 99 tokens, not 198',
  );
});

test('a loop of the same tool call raises a pattern alert with its evidence; a healthy agent raises none', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const watcher = await s.connect(WATCHER);
  await confirmed(watcher, { type: 'pattern_alerts' });
  // One service per agent, no agent names: the service is the agent (the common setup).
  const token = await s.token(PRODUCER);
  const runOf = (agent: string, tools: Array<[string, string]>) => {
    const otel = exportingTracer(s.url, token, 'json', { 'service.name': agent });
    t.after(() => otel.shutdown());
    const { tracer } = otel;
    const run = tracer.startSpan('invoke_agent', { attributes: { 'gen_ai.operation.name': 'invoke_agent' } });
    const ids: string[] = [];
    for (const [tool, args] of tools) {
      const span = child(tracer, run, `execute_tool ${tool}`, {
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': tool,
        'gen_ai.tool.call.arguments': args,
      });
      ids.push(span.spanContext().spanId);
      span.end();
    }
    run.end();
    return { ids, flush: () => otel.flush() };
  };
  const healthy = runOf('healthy-agent', [
    ['search', '{"q":"a"}'],
    ['fetch', '{"u":1}'],
    ['search', '{"q":"b"}'],
    ['summarise', '{}'],
    ['search', '{"q":"c"}'],
    ['write', '{}'],
  ]);
  await healthy.flush();
  const looping = runOf(
    'looping-agent',
    Array.from({ length: 6 }, () => ['search_docs', '{"q":"refund policy"}'] as [string, string]),
  );
  await looping.flush();
  const looped = looping.ids;
  const alert = await watcher.next('pattern_alert', 10_000);
  assert.equal(alert.agent_id, 'looping-agent', "the first (and only) alert is the loop's: the healthy agent, judged first, raised none");
  assert.equal(alert.severity, 'warning');
  assert.equal(alert.data?.['pattern_name'], 'tool_call_loop');
  assert.equal(alert.data?.['pattern_type'], 'feedback_loop');
  const evidence = alert.data?.['evidence'] as { span_ids: string[]; count: number; tool: string; window_s: number };
  assert.equal(evidence.tool, 'search_docs');
  assert.equal(evidence.count, 5);
  assert.equal(evidence.window_s, 60);
  // Exported one by one, the spans may reach the server in any order: five of the six, each once.
  assert.equal(evidence.span_ids.length, 5);
  assert.equal(new Set(evidence.span_ids).size, 5);
  assert.ok(
    evidence.span_ids.every((id) => looped.includes(id)),
    JSON.stringify(evidence.span_ids),
  );
  // The metric counts it.
  const metrics = await (await fetch(`${s.url}/metrics`)).text();
  assert.match(metrics, /escai_detections_total\{detector="tool_call_loop"\} 1/);
});

test('ESCAI clients see nothing new: activity reaches only agent_activity subscribers', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t);
  const old = await s.connect(WATCHER);
  await confirmed(old, { type: 'epistemic_updates' });
  const activity = await s.connect(WATCHER);
  await confirmed(activity, { type: 'agent_activity', agent_id: 'quiet' });
  const now = Date.now();
  const traceId = hexId(16);
  const r = await postTraces(
    s.url,
    otlpJson({ 'service.name': 'quiet' }, [
      {
        traceId,
        spanId: hexId(8),
        name: 'GET /health',
        startMs: now,
        endMs: now + 5,
        attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'ping', 'gen_ai.agent.name': 'quiet' },
      },
    ]),
    await headers(s),
  );
  assert.equal(r.status, 200);
  await step(activity, 'GET /health', 'ok');
  // An epistemic update follows (the tool call's decision context): the old client gets that, and no activity.
  const e = await old.next('epistemic_update', 5000);
  assert.equal(e.agent_id, 'quiet');
  assert.deepEqual(old.events('agent_activity'), []);
});

test("bad OTLP input gets the spec's answers, and the node carries on serving", { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { otlpMaxBodyBytes: 1024 * 1024 });
  const watcher = await s.connect(WATCHER);
  await confirmed(watcher, { type: 'agent_activity', agent_id: 'survivor' });
  const json = await headers(s);
  const proto = await headers(s, 'application/x-protobuf');
  const now = Date.now();
  const one = (attributes: Record<string, string | number | boolean>, name = 'step') =>
    otlpJson({ 'service.name': 'bad' }, [
      { traceId: hexId(16), spanId: hexId(8), name, startMs: now, endMs: now + 1, attributes: { 'gen_ai.operation.name': 'chat', ...attributes } },
    ]);
  const statusOf = (body: Buffer, encoding: Encoding) =>
    encoding === 'json'
      ? (JSON.parse(body.toString()) as { code: number; message: string })
      : (RpcStatus.toObject(RpcStatus.decode(body)) as { code: number; message: string });

  // Undecodable: garbage protobuf, a truncated one, JSON that is not JSON, JSON of the wrong shape, bad gzip.
  const garbage = await postTraces(s.url, Buffer.from('\x0a\xff\xff\xff\x0fnot protobuf'), proto);
  assert.equal(garbage.status, 400);
  assert.equal(garbage.headers.get('content-type'), 'application/x-protobuf', "answered in the request's encoding");
  assert.match(statusOf(garbage.body, 'protobuf').message, /not a protobuf ExportTraceServiceRequest/);
  const good = Buffer.from(JSON.stringify(one({})));
  assert.equal((await postTraces(s.url, good.subarray(0, good.length - 9), json)).status, 400, 'truncated JSON');
  assert.equal((await postTraces(s.url, '{"resourceSpans": 7}', json)).status, 400);
  const badGzip = await postTraces(s.url, Buffer.from('not gzip'), { ...json, 'content-encoding': 'gzip' });
  assert.equal(badGzip.status, 400);
  assert.match(statusOf(badGzip.body, 'json').message, /not valid gzip/);
  // Too large: over the limit as sent, and a small gzip body that inflates past it (a bomb).
  assert.equal((await postTraces(s.url, Buffer.alloc(1100 * 1024, 32), json)).status, 413);
  const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024, 32));
  assert.ok(bomb.length < 100 * 1024, `the bomb is small (${bomb.length} bytes)`);
  const exploded = await postTraces(s.url, bomb, { ...json, 'content-encoding': 'gzip' });
  assert.equal(exploded.status, 413);
  assert.match(statusOf(exploded.body, 'json').message, /inflates past/);
  // The wrong content type or encoding: 415.
  assert.equal((await postTraces(s.url, good, { ...json, 'content-type': 'text/plain' })).status, 415);
  assert.equal((await postTraces(s.url, good, { ...json, 'content-encoding': 'br' })).status, 415);
  // No token, a bad one, or one without events:publish.
  const anonymous = await postTraces(s.url, good, { 'content-type': 'application/json' });
  assert.equal(anonymous.status, 401);
  assert.equal(statusOf(anonymous.body, 'json').code, 16);
  assert.equal((await postTraces(s.url, good, { ...json, authorization: 'Bearer nope' })).status, 401);
  assert.equal((await postTraces(s.url, good, await headers(s, 'application/json', { sub: 'v', roles: ['viewer'] }))).status, 403);
  // Accepted, and bounded: 10,000 attributes, a huge name, deeply nested values, a huge string attribute.
  const many: Record<string, string> = {};
  for (let i = 0; i < 10_000; i++) many[`attr.${i}`] = 'v';
  assert.equal((await postTraces(s.url, one(many), json)).status, 200);
  const huge = await postTraces(s.url, one({ 'gen_ai.request.model': 'm'.repeat(100_000) }, 'n'.repeat(100_000)), json);
  assert.equal(huge.status, 200);
  let nested: Record<string, unknown> = { stringValue: 'x' };
  for (let i = 0; i < 1000; i++) nested = { kvlistValue: { values: [{ key: 'k', value: nested }] } };
  const deep = one({});
  (deep['resourceSpans'] as Array<{ scopeSpans: Array<{ spans: Array<{ attributes: unknown[] }> }> }>)[0]!.scopeSpans[0]!.spans[0]!.attributes.push({
    key: 'deep',
    value: nested,
  });
  assert.equal((await postTraces(s.url, deep, json)).status, 200);
  // A partially bad request: 200 with the rejected count.
  const partial = otlpJson({ 'service.name': 'bad' }, [
    { traceId: hexId(16), spanId: hexId(8), name: 'fine', startMs: now, endMs: now + 1, attributes: { 'gen_ai.operation.name': 'chat' } },
    { traceId: 'zz', spanId: hexId(8), name: 'broken', startMs: now, endMs: now + 1 },
  ]);
  const answer = await postTraces(s.url, partial, json);
  assert.equal(answer.status, 200);
  assert.deepEqual(JSON.parse(answer.body.toString()), {
    partialSuccess: { rejectedSpans: '1', errorMessage: '1 span(s) rejected: invalid trace id (16 bytes, not all zero)' },
  });
  assert.deepEqual(JSON.parse((await postTraces(s.url, '{}', json)).body.toString()), { partialSuccess: {} }, 'an empty request is a success');
  // The node serves on: a span sent now arrives.
  const ok = await postTraces(
    s.url,
    otlpJson({ 'service.name': 'bad' }, [
      {
        traceId: hexId(16),
        spanId: hexId(8),
        name: 'still here',
        startMs: now,
        endMs: now + 1,
        attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.agent.name': 'survivor' },
      },
    ]),
    json,
  );
  assert.equal(ok.status, 200);
  await step(watcher, 'still here', 'ok');
  assert.equal((await api(s, 'GET', '/readyz')).status, 200);
  // What the oversized ones made stays bounded (names cut to 256 characters).
  const reader = await s.token(WATCHER);
  const page = await api<HistoryBody>(s, 'GET', '/api/v1/agents/bad/activity?order=desc&limit=20', { token: reader });
  assert.ok(
    page.body.events.every((e) => JSON.stringify(e).length < 8000),
    'every event stays small',
  );
  assert.ok(page.body.events.some((e) => String(e.data?.['name']).length === 256));
});

test('the publishing budget answers 429 with Retry-After; an unreachable engine 503 with Retry-After', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { otlpRate: 10, otlpBurst: 10 });
  const now = Date.now();
  const spans = (n: number) =>
    otlpJson(
      { 'service.name': 'busy' },
      Array.from({ length: n }, (_, i) => ({
        traceId: hexId(16),
        spanId: hexId(8),
        name: `s${i}`,
        startMs: now,
        endMs: now + 1,
        attributes: { 'gen_ai.operation.name': 'chat' },
      })),
    );
  const h = await headers(s);
  assert.equal((await postTraces(s.url, spans(8), h)).status, 200);
  const limited = await postTraces(s.url, spans(8), h);
  assert.equal(limited.status, 429);
  assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  assert.match((JSON.parse(limited.body.toString()) as { message: string }).message, /RATE_LIMITED/);
  // A node whose Redis does not answer: nothing accepted, retry later (protobuf asked, protobuf answered).
  const down = new EscaiServer({
    config: resolveConfig({ port: 0, jwtSecret: SECRET, logLevel: 'silent', redisUrl: `redis://127.0.0.1:${await freePort()}` }),
  });
  t.after(() => down.close());
  await down.listen();
  const bytes = serialize(sdkRun(), 'protobuf');
  const refused = await postTraces(down.url, bytes, { 'content-type': 'application/x-protobuf', authorization: `Bearer ${await s.token(PRODUCER)}` });
  assert.equal(refused.status, 503);
  assert.equal(refused.headers.get('retry-after'), '2');
  assert.match((RpcStatus.toObject(RpcStatus.decode(refused.body)) as { message: string }).message, /ENGINE_UNAVAILABLE/);
});

test('ESCAI_OTLP_PORT: the receiver on a port of its own too, and nothing else there', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t, { otlpPort: 0 });
  const otlpUrl = s.server.otlpUrl!;
  assert.ok(otlpUrl && otlpUrl !== s.url);
  const now = Date.now();
  const body = otlpJson({ 'service.name': 'porty' }, [
    { traceId: hexId(16), spanId: hexId(8), name: 'x', startMs: now, endMs: now + 1, attributes: { 'gen_ai.operation.name': 'chat' } },
  ]);
  assert.equal((await postTraces(otlpUrl, body, await headers(s))).status, 200);
  assert.equal((await fetch(`${otlpUrl}/api/v1/agents`)).status, 404);
  assert.equal((await postTraces(otlpUrl, body, { 'content-type': 'application/json' })).status, 401);
});

/** Spans of one small run, made by the SDK and kept in memory. */
function sdkRun() {
  const { tracer, spans } = memoryTracer({ 'service.name': 'offline' });
  const run = tracer.startSpan('invoke_agent', { attributes: { 'gen_ai.operation.name': 'invoke_agent' } });
  child(tracer, run, 'chat', { 'gen_ai.operation.name': 'chat' }).end();
  run.end();
  return spans();
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

test('live judgement on the server clock: a parent left running raises stalled_step, a quiet agent turns idle', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t, { detectors: { stalledStep: { after: 1 }, idleAfter: 1.5 } });
  const watcher = await s.connect(WATCHER);
  await confirmed(watcher, { type: 'pattern_alerts', agent_id: 'slow-agent' });
  await confirmed(watcher, { type: 'agent_status', agent_id: 'slow-agent' });
  const now = Date.now();
  const parent = hexId(8);
  const r = await postTraces(
    s.url,
    otlpJson({ 'service.name': 'slow', 'gen_ai.agent.name': 'slow-agent' }, [
      {
        traceId: hexId(16),
        spanId: hexId(8),
        parentSpanId: parent,
        name: 'chat m',
        startMs: now,
        endMs: now + 5,
        attributes: { 'gen_ai.operation.name': 'chat' },
      },
    ]),
    await headers(s),
  );
  assert.equal(r.status, 200);
  assert.equal((await watcher.next('agent_status_change', 5000)).status, 'running');
  const stalled = await watcher.next('pattern_alert', 10_000);
  assert.equal(stalled.data?.['pattern_name'], 'stalled_step');
  assert.deepEqual((stalled.data?.['evidence'] as { span_ids: string[] } | undefined)?.span_ids, [parent]);
  const idle = await watcher.next('agent_status_change', 10_000);
  assert.equal(idle.status, 'idle');
  assert.match(String(idle.metadata?.['reason']), /no activity for 1.5 s/);
});
