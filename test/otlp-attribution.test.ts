// Which agent each span goes to, and which parents show as running, on their
// own (no server): spans arrive when they end, children first, in batches.
// A child before its parent announces the parent running, once; the parent's
// end supersedes it on the same stream; a batch's agent span attributes its
// children; a trace's agent attributes later spans; a guessed trace is published again
// under its agent once it names it; plain spans of no known trace are
// ignored; memory stays bounded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SpanMemory } from '../src/ingest/attribution.js';
import { Ingestor } from '../src/ingest/ingest.js';
import { fallbackAgent, namedAgent } from '../src/ingest/mapping.js';
import type { AttributeValue, SpanBatch, SpanRecord } from '../src/ingest/spans.js';
import { SPAN_T0, spanRecord } from './otel-support.js';

const T0 = SPAN_T0;
let seq = 0;
const id = (n: number) => n.toString(16).padStart(16, '0');

function span(spanId: number, parent: number | null, attributes: Record<string, AttributeValue>, over: Partial<SpanRecord> = {}): SpanRecord {
  seq++;
  return spanRecord(attributes, {
    spanId: id(spanId),
    parentSpanId: parent === null ? null : id(parent),
    name: `span ${spanId}`,
    startMs: T0 + seq,
    endMs: T0 + seq + 10,
    ...over,
  });
}

const AGENT = (name: string) => ({ 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': name });
const CHAT = { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'm' };
const HTTP = { 'http.request.method': 'GET' };

/** An ingestor whose events are read, not published. */
function ingestor(): Ingestor {
  return new Ingestor({ publisher: { publish: async () => [] }, mapping: { captureContent: false }, maxEventBytes: 65_536, chunk: 1000 });
}

function batch(...spans: SpanRecord[]): SpanBatch {
  return { spans, rejected: [] };
}

/** Events in brief: agent, span, state (and `inferred` when so). */
function brief(ing: Ingestor, b: SpanBatch): string[] {
  return ing.eventsOf(b).events.map((e) => {
    if (e.type !== 'agent_activity') return `${(e as { agent_id?: string }).agent_id} ${e.type}`;
    return `${e.agent_id} ${parseInt(e.data.span_id, 16)} ${e.data.state}${e.data.inferred ? ' inferred' : ''}`;
  });
}

test('a whole run in one batch: every span under the agent its run names, no parent announced', { timeout: 10_000 }, () => {
  const ing = ingestor();
  assert.deepEqual(brief(ing, batch(span(2, 1, CHAT), span(3, 2, HTTP), span(1, null, AGENT('planner')))), [
    'planner 2 ok',
    'planner 3 ok',
    'planner 1 ok',
    'planner epistemic_update',
  ]);
});

test('a child before its parent: the parent announced running once, then its end on the same stream', { timeout: 10_000 }, () => {
  const ing = ingestor();
  // The agent named on the resource: every span of the process is its, whatever order they come in.
  const named = {
    resource: new Map([
      ['service.name', 'svc'],
      ['gen_ai.agent.name', 'planner'],
    ]),
  };
  assert.deepEqual(brief(ing, batch(span(12, 11, CHAT, named))), ['planner 11 running inferred', 'planner 12 ok', 'planner epistemic_update']);
  assert.deepEqual(brief(ing, batch(span(13, 11, CHAT, named))), ['planner 13 ok', 'planner epistemic_update'], 'announced once');
  assert.deepEqual(brief(ing, batch(span(11, null, AGENT('planner'), named))), ['planner 11 ok', 'planner epistemic_update']);
});

test('a parent that ended before its child (fire and forget) is not announced running again', { timeout: 10_000 }, () => {
  const ing = ingestor();
  ing.eventsOf(batch(span(1, null, AGENT('planner'))));
  assert.deepEqual(brief(ing, batch(span(2, 1, CHAT))), ['planner 2 ok', 'planner epistemic_update']);
});

test('a run whose children come first: guessed under the service, published again under the agent once its span names it', { timeout: 10_000 }, () => {
  const ing = ingestor();
  assert.deepEqual(brief(ing, batch(span(2, 1, CHAT))), ['svc 1 running inferred', 'svc 2 ok', 'svc epistemic_update']);
  assert.deepEqual(brief(ing, batch(span(3, 1, CHAT))), ['svc 3 ok', 'svc epistemic_update']);
  // The run's own span names its agent: the earlier steps, again, on planner's stream; the end reaches both.
  assert.deepEqual(brief(ing, batch(span(1, null, AGENT('planner')))), [
    'planner 1 running inferred',
    'planner 2 ok',
    'planner 3 ok',
    'svc 1 ok',
    'planner 1 ok',
    'svc epistemic_update',
  ]);
  // Another service's run names another agent: nothing of it goes to planner (no guess by service: it may run several agents).
  const t2 = { traceId: 'b'.repeat(32) };
  assert.deepEqual(brief(ing, batch(span(22, 21, CHAT, t2))), ['svc 21 running inferred', 'svc 22 ok', 'svc epistemic_update']);
  assert.deepEqual(brief(ing, batch(span(21, null, AGENT('coder'), t2))), [
    'coder 21 running inferred',
    'coder 22 ok',
    'svc 21 ok',
    'coder 21 ok',
    'svc epistemic_update',
  ]);
});

test("plain spans: attributed inside a known agent's trace, ignored outside any", { timeout: 10_000 }, () => {
  const ing = ingestor();
  const lone = ing.eventsOf(batch(span(1, null, HTTP, { traceId: 'd'.repeat(32) })));
  assert.deepEqual(lone.events, []);
  assert.equal(lone.ignored, 1);
  ing.eventsOf(batch(span(2, null, AGENT('planner'))));
  assert.deepEqual(brief(ing, batch(span(3, 2, HTTP))), ['planner 3 ok']);
});

test('nested agents: each span goes to its nearest named ancestor', { timeout: 10_000 }, () => {
  const ing = ingestor();
  assert.deepEqual(
    brief(
      ing,
      batch(
        span(4, 3, CHAT),
        span(3, 2, AGENT('coder')),
        span(5, 2, CHAT),
        span(2, 1, { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'delegate' }),
        span(1, null, AGENT('planner')),
      ),
    ),
    ['coder 4 ok', 'coder 3 ok', 'planner 5 ok', 'planner 2 ok', 'planner 1 ok', 'coder epistemic_update', 'planner epistemic_update'],
  );
});

test('an ancestry cycle in hostile input ends; memory is bounded', { timeout: 10_000 }, () => {
  const memory = new SpanMemory({ maxSpans: 100, maxTraces: 10 });
  const cyclic = [span(1, 2, CHAT), span(2, 1, CHAT)];
  const a = memory.attribute(cyclic, namedAgent, fallbackAgent);
  assert.deepEqual(a.agents, ['svc', 'svc']);
  for (let i = 0; i < 1000; i++) memory.attribute([span(1000 + i, 5000 + i, CHAT, { traceId: i.toString(16).padStart(32, '1') })], namedAgent, fallbackAgent);
  assert.ok(memory.size.spans <= 100 && memory.size.traces <= 10, JSON.stringify(memory.size));
});
