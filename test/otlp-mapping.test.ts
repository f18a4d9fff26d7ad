// The telemetry mapping from tables: each convention's spans (GenAI semantic
// conventions, OpenInference, the Vercel AI SDK, plain OpenTelemetry) become
// the activity and epistemic parts the table in docs/INGEST.md promises;
// agent ids fit the id alphabet and are stable; content stays out unless
// capture is on; nothing invents a confidence; and every event the mapping
// makes from any attributes passes the publishing schema (property test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { agentIdOf, conventionOf, fallbackAgent, foldEpistemic, mapSpan, namedAgent, runningParent, taskText } from '../src/ingest/mapping.js';
import type { AttributeValue, SpanRecord } from '../src/ingest/spans.js';
import { SPAN_T0, spanRecord } from './otel-support.js';
import { IdSchema, PublishEventSchema } from '../src/protocol/events.js';

const T0 = SPAN_T0;
const span = spanRecord;

const OFF = { captureContent: false };
const ON = { captureContent: true };

/** Each row: a span as a convention writes it, and what its activity must say. */
const TABLE: Array<{ what: string; span: SpanRecord; expect: Record<string, unknown> }> = [
  {
    what: 'GenAI invoke_agent',
    span: span(
      { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'Planner', 'gen_ai.usage.input_tokens': 900, 'gen_ai.usage.output_tokens': 100 },
      { name: 'invoke_agent Planner', parentSpanId: null },
    ),
    expect: {
      kind: 'agent',
      convention: 'gen_ai',
      operation: 'invoke_agent',
      state: 'ok',
      duration_ms: 1500,
      tokens: { input: 900, output: 100, total: 1000 },
    },
  },
  {
    what: 'GenAI chat with usage and finish reasons',
    span: span(
      {
        'gen_ai.operation.name': 'chat',
        'gen_ai.request.model': 'gpt-4o',
        'gen_ai.response.model': 'gpt-4o-2024-08-06',
        'gen_ai.provider.name': 'openai',
        'gen_ai.usage.input_tokens': 120,
        'gen_ai.usage.output_tokens': 30,
        'gen_ai.response.finish_reasons': ['tool_calls'],
      },
      { name: 'chat gpt-4o' },
    ),
    expect: { kind: 'llm', model: 'gpt-4o-2024-08-06', provider: 'openai', tokens: { input: 120, output: 30, total: 150 }, finish_reasons: ['tool_calls'] },
  },
  {
    what: 'GenAI text_completion / generate_content, the old gen_ai.system and token names',
    span: span({
      'gen_ai.operation.name': 'generate_content',
      'gen_ai.request.model': 'gemini-2.0',
      'gen_ai.system': 'gcp.gemini',
      'gen_ai.usage.prompt_tokens': 5,
      'gen_ai.usage.completion_tokens': 7,
    }),
    expect: { kind: 'llm', model: 'gemini-2.0', provider: 'gcp.gemini', tokens: { input: 5, output: 7, total: 12 } },
  },
  {
    what: 'GenAI execute_tool with arguments',
    span: span(
      { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'search_docs', 'gen_ai.tool.call.arguments': '{"q":"refund policy"}' },
      { name: 'execute_tool search_docs' },
    ),
    expect: { kind: 'tool', tool: 'search_docs', arguments_digest: /^[0-9a-f]{16}$/ },
  },
  { what: 'GenAI invoke_workflow', span: span({ 'gen_ai.operation.name': 'invoke_workflow' }), expect: { kind: 'workflow' } },
  { what: 'GenAI plan', span: span({ 'gen_ai.operation.name': 'plan' }), expect: { kind: 'plan' } },
  {
    what: 'GenAI create_agent',
    span: span({ 'gen_ai.operation.name': 'create_agent', 'gen_ai.agent.name': 'x' }),
    expect: { kind: 'agent', operation: 'create_agent' },
  },
  { what: 'GenAI embeddings', span: span({ 'gen_ai.operation.name': 'embeddings', 'gen_ai.request.model': 'e5' }), expect: { kind: 'embedding', model: 'e5' } },
  {
    what: 'GenAI failure: error.type and the span status',
    span: span({ 'gen_ai.operation.name': 'chat', 'error.type': 'RateLimitError' }, { status: { code: 2, message: '429 Too Many Requests' } }),
    expect: { kind: 'llm', state: 'error', error: { type: 'RateLimitError', message: '429 Too Many Requests' } },
  },
  {
    what: 'an exception event without error.type',
    span: span(
      { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 't' },
      {
        status: { code: 2, message: '' },
        events: [
          {
            name: 'exception',
            timeMs: T0,
            attributes: new Map([
              ['exception.type', 'TimeoutError'],
              ['exception.message', 'took too long'],
            ]),
          },
        ],
      },
    ),
    expect: { state: 'error', error: { type: 'TimeoutError', message: 'took too long' } },
  },
  {
    what: 'OpenInference LLM',
    span: span({
      'openinference.span.kind': 'LLM',
      'llm.model_name': 'claude-3-5-sonnet',
      'llm.provider': 'anthropic',
      'llm.token_count.prompt': 40,
      'llm.token_count.completion': 2,
      'llm.token_count.total': 42,
      'llm.token_count.prompt_details.cache_read': 30,
    }),
    expect: {
      kind: 'llm',
      convention: 'openinference',
      model: 'claude-3-5-sonnet',
      provider: 'anthropic',
      tokens: { input: 40, output: 2, total: 42, cached_input: 30 },
    },
  },
  {
    what: 'OpenInference TOOL (its arguments in input.value)',
    span: span({ 'openinference.span.kind': 'TOOL', 'tool.name': 'calculator', 'input.value': '{"expr":"2+2"}', 'output.value': '4' }),
    expect: { kind: 'tool', tool: 'calculator', arguments_digest: /^[0-9a-f]{16}$/ },
  },
  ...(['AGENT', 'CHAIN', 'RETRIEVER', 'EMBEDDING', 'RERANKER', 'GUARDRAIL', 'EVALUATOR'] as const).map((k) => ({
    what: `OpenInference ${k}`,
    span: span({ 'openinference.span.kind': k }),
    expect: {
      kind: {
        AGENT: 'agent',
        CHAIN: 'chain',
        RETRIEVER: 'retriever',
        EMBEDDING: 'embedding',
        RERANKER: 'reranker',
        GUARDRAIL: 'guardrail',
        EVALUATOR: 'evaluator',
      }[k],
    },
  })),
  {
    what: 'AI SDK ai.generateText (the call: an agent step, its usage repeated from its model calls)',
    span: span(
      {
        'ai.operationId': 'ai.generateText',
        'operation.name': 'ai.generateText support-bot',
        'ai.model.id': 'gpt-4o-mini',
        'ai.model.provider': 'openai.chat',
        'ai.usage.promptTokens': 50,
        'ai.usage.completionTokens': 10,
        'ai.telemetry.functionId': 'support-bot',
      },
      { name: 'ai.generateText' },
    ),
    expect: { kind: 'agent', convention: 'ai_sdk', operation: 'ai.generateText', model: 'gpt-4o-mini', tokens: { input: 50, output: 10, total: 60 } },
  },
  {
    what: 'AI SDK ai.generateText.doGenerate (v5 usage names)',
    span: span(
      {
        'ai.operationId': 'ai.generateText.doGenerate',
        'ai.model.id': 'gpt-4o-mini',
        'ai.usage.inputTokens': 50,
        'ai.usage.outputTokens': 10,
        'ai.usage.totalTokens': 60,
        'ai.response.finishReason': 'tool-calls',
      },
      { name: 'ai.generateText.doGenerate' },
    ),
    expect: { kind: 'llm', model: 'gpt-4o-mini', tokens: { input: 50, output: 10, total: 60 }, finish_reasons: ['tool-calls'] },
  },
  {
    what: 'AI SDK ai.streamText.doStream',
    span: span({ 'ai.operationId': 'ai.streamText.doStream', 'gen_ai.request.model': 'claude' }, { name: 'ai.streamText.doStream' }),
    expect: { kind: 'llm', model: 'claude' },
  },
  {
    what: 'AI SDK ai.toolCall',
    span: span(
      { 'ai.operationId': 'ai.toolCall', 'ai.toolCall.name': 'weather', 'ai.toolCall.id': 'call_1', 'ai.toolCall.args': '{"city":"Oslo"}' },
      { name: 'ai.toolCall' },
    ),
    expect: { kind: 'tool', tool: 'weather', arguments_digest: /^[0-9a-f]{16}$/ },
  },
  { what: 'AI SDK ai.embedMany', span: span({ 'ai.operationId': 'ai.embedMany' }, { name: 'ai.embedMany' }), expect: { kind: 'embedding' } },
  {
    what: 'a plain HTTP client span',
    span: span({ 'http.request.method': 'GET', 'url.full': 'https://x' }, { name: 'GET', kind: 3 }),
    expect: { kind: 'other', convention: 'otel', name: 'GET' },
  },
];

for (const row of TABLE) {
  test(`mapping: ${row.what}`, { timeout: 10_000 }, () => {
    const { activity } = mapSpan(row.span, OFF);
    for (const [key, want] of Object.entries(row.expect)) {
      const got = (activity as Record<string, unknown>)[key];
      if (want instanceof RegExp) assert.match(String(got), want, key);
      else assert.deepEqual(got, want, key);
    }
    assert.equal(activity.span_id, row.span.spanId);
    assert.equal(activity.trace_id, row.span.traceId);
    assert.equal(activity.started_at, new Date(row.span.startMs).toISOString());
    assert.equal(activity.ended_at, new Date(row.span.endMs!).toISOString());
    assert.equal(activity.input, undefined, 'no content without capture');
    assert.equal(activity.output, undefined);
    // Nothing the telemetry does not say: no confidence, no uncertainty.
    assert.ok(!JSON.stringify(activity).includes('confidence'));
  });
}

test('equal tool arguments give equal digests; different ones, different', { timeout: 10_000 }, () => {
  const digest = (args: string) =>
    mapSpan(span({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 't', 'gen_ai.tool.call.arguments': args }), OFF).activity.arguments_digest;
  assert.equal(digest('{"q":1}'), digest('{"q":1}'));
  assert.notEqual(digest('{"q":1}'), digest('{"q":2}'));
  assert.equal(mapSpan(span({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 't' }), OFF).activity.arguments_digest, undefined);
});

test('the agent: gen_ai.agent.id, else gen_ai.agent.name (span or resource), else nothing named; the service for AI spans only', { timeout: 10_000 }, () => {
  assert.equal(namedAgent(span({ 'gen_ai.agent.id': 'agent-7', 'gen_ai.agent.name': 'Planner' })), 'agent-7');
  assert.equal(namedAgent(span({ 'gen_ai.agent.name': 'Planner' })), 'Planner');
  assert.equal(namedAgent(span({ 'agent.name': 'oi-agent' })), 'oi-agent', 'OpenInference agent.name');
  assert.equal(namedAgent(span({ 'ai.telemetry.functionId': 'support-bot' })), 'support-bot', 'the AI SDK functionId');
  assert.equal(
    namedAgent(
      span(
        {},
        {
          resource: new Map([
            ['gen_ai.agent.name', 'from-resource'],
            ['service.name', 'svc'],
          ]),
        },
      ),
    ),
    'from-resource',
  );
  assert.equal(namedAgent(span({ 'gen_ai.operation.name': 'chat' })), undefined);
  assert.equal(fallbackAgent(span({ 'gen_ai.operation.name': 'chat' })), 'svc');
  assert.equal(fallbackAgent(span({ 'http.request.method': 'GET' })), undefined, 'a plain span has no agent of its own');
});

test('agent ids: kept when they fit the alphabet, made to fit otherwise, the same name always the same id, two names never one', { timeout: 10_000 }, () => {
  assert.equal(agentIdOf('support-bot'), 'support-bot');
  const spaced = agentIdOf('Support Bot (EU)');
  assert.match(spaced, /^Support_Bot_EU-[0-9a-f]{16}$/);
  assert.equal(agentIdOf('Support Bot (EU)'), spaced);
  assert.notEqual(agentIdOf('Support Bot (EU)'), agentIdOf('Support_Bot_EU'));
  assert.notEqual(agentIdOf('a b'), agentIdOf('a/b'));
  const long = agentIdOf('x'.repeat(500));
  assert.ok(long.length <= 128);
  assert.match(agentIdOf('日本語'), /^agent-[0-9a-f]{16}$/);
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), (name) => {
      const id = agentIdOf(name);
      assert.ok(IdSchema.safeParse(id).success, id);
      assert.equal(agentIdOf(name), id);
    }),
    { numRuns: 500 },
  );
});

test('content capture: off keeps prompts, outputs and tool results out; on copies them truncated and makes goals and facts of them', {
  timeout: 10_000,
}, () => {
  const agent = span({
    'gen_ai.operation.name': 'invoke_agent',
    'gen_ai.agent.name': 'p',
    'gen_ai.agent.description': 'Answers billing questions',
    'gen_ai.input.messages': JSON.stringify([
      { role: 'system', parts: [{ type: 'text', content: 'be nice' }] },
      { role: 'user', parts: [{ type: 'text', content: 'Why was I charged twice?' }] },
    ]),
  });
  assert.deepEqual(
    mapSpan(agent, OFF).epistemic.goal,
    { description: 'Answers billing questions', status: 'completed' },
    'without capture: the description, not the prompt',
  );
  assert.deepEqual(mapSpan(agent, ON).epistemic.goal, { description: 'Why was I charged twice?', status: 'completed' });
  assert.match(mapSpan(agent, ON).activity.input ?? '', /charged twice/);
  const tool = span({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'crm', 'gen_ai.tool.call.result': 'x'.repeat(5000) });
  assert.equal(mapSpan(tool, OFF).epistemic.fact, undefined);
  const on = mapSpan(tool, ON);
  assert.equal(on.activity.output!.length, 2000);
  assert.equal(on.epistemic.fact!.source, 'tool:crm');
  assert.equal(on.epistemic.fact!.content.length, 500);
  const failed = mapSpan(span({ 'gen_ai.operation.name': 'invoke_agent' }, { status: { code: 2, message: 'x' } }), OFF);
  assert.equal(failed.epistemic.goal!.status, 'failed');
});

test('the task in an input: GenAI parts, OpenAI-style messages, OpenInference input, an AI SDK prompt, plain text', { timeout: 10_000 }, () => {
  assert.equal(taskText(JSON.stringify({ messages: [{ role: 'user', content: 'find flights' }] })), 'find flights');
  assert.equal(taskText(JSON.stringify({ system: 'x', prompt: 'summarise the report' })), 'summarise the report');
  assert.equal(
    taskText([
      {
        role: 'user',
        parts: [
          { type: 'text', content: 'a' },
          { type: 'text', content: 'b' },
        ],
      },
    ]),
    'a b',
  );
  assert.equal(taskText('just text'), 'just text');
  assert.equal(taskText('{not json'), '{not json');
  assert.equal(taskText(undefined), undefined);
});

test("one epistemic update per agent and batch: the latest run's goal first, the latest decision, no figures invented", { timeout: 10_000 }, () => {
  const parts = [
    mapSpan(span({ 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'm1' }, { endMs: T0 + 100 }), OFF).epistemic,
    mapSpan(span({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'search' }, { endMs: T0 + 200 }), OFF).epistemic,
    mapSpan(span({ 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.description': 'first' }), OFF).epistemic,
    mapSpan(span({ 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.description': 'second' }), OFF).epistemic,
  ];
  const data = foldEpistemic(parts)!;
  assert.deepEqual(
    (data['goal_states'] as Array<{ description: string }>).map((g) => g.description),
    ['second', 'first'],
  );
  assert.equal((data['decision_context'] as { tool?: string }).tool, 'search');
  assert.equal(data['confidence_level'], undefined);
  assert.equal(data['uncertainty_score'], undefined);
  assert.equal(foldEpistemic([mapSpan(span({ 'http.request.method': 'GET' }), OFF).epistemic]), undefined, 'a plain span adds nothing');
});

test('a parent found running: its ids and a start no later than its child, nothing else claimed', { timeout: 10_000 }, () => {
  const a = runningParent({ spanId: 'd'.repeat(16), traceId: 'a'.repeat(32), startMs: T0 });
  assert.deepEqual(a, {
    span_id: 'd'.repeat(16),
    trace_id: 'a'.repeat(32),
    kind: 'other',
    name: '',
    state: 'running',
    inferred: true,
    started_at: new Date(T0).toISOString(),
    source: 'otlp',
  });
});

test('conventions are told apart by their own markers', { timeout: 10_000 }, () => {
  assert.equal(conventionOf(span({ 'openinference.span.kind': 'LLM', 'gen_ai.operation.name': 'chat' })).convention, 'openinference');
  assert.equal(conventionOf(span({}, { name: 'ai.generateText' })).convention, 'ai_sdk');
  assert.equal(conventionOf(span({ 'gen_ai.request.model': 'x' })).convention, 'gen_ai');
  assert.equal(conventionOf(span({ 'db.system': 'postgresql' })).convention, 'otel');
});

test('property: every event the mapping makes, from any attributes, passes the publishing schema', { timeout: 60_000 }, () => {
  const keys = fc.constantFrom(
    'gen_ai.operation.name',
    'gen_ai.agent.name',
    'gen_ai.agent.id',
    'gen_ai.request.model',
    'gen_ai.response.model',
    'gen_ai.provider.name',
    'gen_ai.usage.input_tokens',
    'gen_ai.usage.output_tokens',
    'gen_ai.response.finish_reasons',
    'gen_ai.tool.name',
    'gen_ai.tool.call.arguments',
    'gen_ai.tool.call.result',
    'gen_ai.input.messages',
    'error.type',
    'openinference.span.kind',
    'llm.model_name',
    'llm.token_count.prompt',
    'llm.token_count.total',
    'input.value',
    'output.value',
    'tool.name',
    'ai.operationId',
    'ai.toolCall.name',
    'ai.usage.inputTokens',
    'session.id',
    'gen_ai.conversation.id',
    'other',
  );
  const value: fc.Arbitrary<AttributeValue> = fc.oneof(
    fc.string({ maxLength: 3000 }),
    fc.constantFrom('chat', 'execute_tool', 'invoke_agent', 'LLM', 'TOOL', 'AGENT', 'ai.toolCall', 'ai.generateText'),
    fc.integer({ min: -5, max: 2 ** 40 }),
    fc.double(),
    fc.boolean(),
    fc.array(fc.oneof(fc.string({ maxLength: 100 }), fc.integer()), { maxLength: 30 }),
    fc.constant(null),
  );
  fc.assert(
    fc.property(
      fc.dictionary(keys, value, { maxKeys: 12 }),
      fc.string({ maxLength: 2000 }),
      fc.boolean(),
      fc.constantFrom(0, 1, 2),
      fc.boolean(),
      (attrs, name, capture, code, root) => {
        const s = span(attrs, { name, status: { code, message: 'm'.repeat(code === 2 ? 3000 : 0) }, parentSpanId: root ? null : 'c'.repeat(16) });
        const mapped = mapSpan(s, { captureContent: capture });
        const agent = namedAgent(s) ?? fallbackAgent(s) ?? 'x';
        assert.ok(
          PublishEventSchema.safeParse({ type: 'agent_activity', agent_id: agent, data: mapped.activity }).success,
          JSON.stringify(PublishEventSchema.safeParse({ type: 'agent_activity', agent_id: agent, data: mapped.activity }).error?.issues),
        );
        const epi = foldEpistemic([mapped.epistemic]);
        if (epi) assert.ok(PublishEventSchema.safeParse({ type: 'epistemic_update', agent_id: agent, data: epi }).success, JSON.stringify(epi));
      },
    ),
    { numRuns: 600 },
  );
});
