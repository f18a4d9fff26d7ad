// The console's activity lane model (src/dashboard/trace.ts), without a
// browser: steps merge by span id with ended reports final, traces order by
// recency, the waterfall is in tree order with running steps growing to now,
// tokens count each model call once, and hostile parent ids (cycles) lose no
// step. Properties: any order of the same reports gives the same lane.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { DeliveredEvent } from '../src/protocol/server-messages.js';
import { laneOf, mergeStep, stepOf, tokensNow, tracesOf, type Step } from '../src/dashboard/trace.js';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
let offset = 0;

function report(data: Record<string, unknown>, atMs: number): DeliveredEvent {
  return {
    type: 'agent_activity',
    event_id: `e${++offset}`,
    agent_id: 'a',
    timestamp: new Date(atMs).toISOString(),
    offset,
    epoch: 'ep',
    data: { trace_id: 't1', started_at: new Date(T0).toISOString(), kind: 'other', name: 'step', state: 'ok', ...data },
  } as unknown as DeliveredEvent;
}

function steps(events: DeliveredEvent[]): ReadonlyMap<string, Step> {
  let map: ReadonlyMap<string, Step> = new Map();
  for (const e of events) {
    const s = stepOf(e);
    assert.ok(s, 'a valid report gives a step');
    map = mergeStep(map, s);
  }
  return map;
}

test('an ended report replaces a running one, never the other way round', { timeout: 10_000 }, () => {
  const running = report({ span_id: 's1', state: 'running', kind: 'agent', name: 'run' }, T0 + 100);
  const ended = report({ span_id: 's1', state: 'ok', kind: 'agent', name: 'run', duration_ms: 800 }, T0 + 900);
  for (const order of [
    [running, ended],
    [ended, running],
  ]) {
    const map = steps(order);
    assert.equal(map.size, 1);
    assert.equal(map.get('s1')!.state, 'ok');
    assert.equal(map.get('s1')!.durationMs, 800);
  }
});

test('an inferred running parent does not hide the name of a real report', { timeout: 10_000 }, () => {
  const real = report({ span_id: 'p', state: 'running', kind: 'agent', name: 'support-agent' }, T0 + 10);
  const inferred = report({ span_id: 'p', state: 'running', kind: 'other', name: 'p', inferred: true }, T0 + 20);
  const map = steps([real, inferred]);
  assert.equal(map.get('p')!.name, 'support-agent');
  assert.equal(map.get('p')!.kind, 'agent');
});

test('the lane: tree order, depth, positions on the time axis, running grows to now, tokens once per model call', { timeout: 10_000 }, () => {
  const at = (ms: number) => new Date(T0 + ms).toISOString();
  const map = steps([
    report(
      {
        span_id: 'llm1',
        parent_span_id: 'root',
        kind: 'llm',
        name: 'chat gpt',
        model: 'gpt',
        started_at: at(0),
        duration_ms: 1000,
        tokens: { input: 100, output: 20 },
      },
      T0 + 1000,
    ),
    report({ span_id: 'tool1', parent_span_id: 'root', kind: 'tool', name: 'search', tool: 'search', started_at: at(1000), duration_ms: 500 }, T0 + 1500),
    report({ span_id: 'llm2', parent_span_id: 'root', kind: 'llm', name: 'chat gpt', started_at: at(1500), state: 'running' }, T0 + 1500),
    // the agent run reports its children's tokens again: not counted twice
    report({ span_id: 'root', kind: 'agent', name: 'agent', started_at: at(0), state: 'running', tokens: { input: 100, output: 20 } }, T0 + 1600),
  ]);
  const lane = laneOf(map, 't1', T0 + 2000);
  assert.deepEqual(
    lane.rows.map((r) => [r.step.spanId, r.depth]),
    [
      ['root', 0],
      ['llm1', 1],
      ['tool1', 1],
      ['llm2', 1],
    ],
  );
  assert.equal(lane.startMs, T0);
  assert.equal(lane.spanMs, 2000, 'running steps extend the axis to now');
  const tool = lane.rows[2]!;
  assert.equal(tool.left, 0.5);
  assert.equal(tool.width, 0.25);
  assert.equal(lane.rows[3]!.elapsedMs, 500, 'a running step has run since it started');
  assert.equal(lane.running, 2);
  assert.deepEqual(lane.tokens, { input: 100, output: 20, total: 120 });
});

test('traces order by their latest report; the root names the trace', { timeout: 10_000 }, () => {
  const map = steps([
    report({ span_id: 'a1', trace_id: 'tA', name: 'first run', kind: 'agent' }, T0 + 10),
    report({ span_id: 'b1', trace_id: 'tB', name: 'second run', kind: 'agent' }, T0 + 20),
    report({ span_id: 'a2', trace_id: 'tA', parent_span_id: 'a1', name: 'late step', state: 'running' }, T0 + 30),
  ]);
  assert.deepEqual(
    tracesOf(map).map((t) => [t.traceId, t.name, t.steps, t.running]),
    [
      ['tA', 'first run', 2, 1],
      ['tB', 'second run', 1, 0],
    ],
  );
});

test('parent ids that loop (hostile input) lose no step and end', { timeout: 10_000 }, () => {
  const map = steps([
    report({ span_id: 'x', parent_span_id: 'y' }, T0 + 1),
    report({ span_id: 'y', parent_span_id: 'x' }, T0 + 2),
    report({ span_id: 'z', parent_span_id: 'z' }, T0 + 3),
  ]);
  const lane = laneOf(map, 't1', T0 + 10);
  assert.deepEqual(lane.rows.map((r) => r.step.spanId).sort(), ['x', 'y', 'z']);
});

test("the token total: the server's up to its latest activity, plus model calls seen after it, none twice", { timeout: 10_000 }, () => {
  const map = steps([
    report({ span_id: 'old', kind: 'llm', tokens: { input: 10, output: 5 } }, T0 + 100),
    report({ span_id: 'same', kind: 'llm', tokens: { input: 1, output: 1 } }, T0 + 200),
    report({ span_id: 'new', kind: 'llm', tokens: { input: 100, output: 20 } }, T0 + 300),
    report({ span_id: 'run', kind: 'agent', tokens: { input: 999, output: 999 } }, T0 + 400),
  ]);
  assert.deepEqual(tokensNow({ input: 11, output: 6, total: 17 }, T0 + 200, map), { input: 111, output: 26, total: 137 });
});

test('a report without span or trace id is no step', { timeout: 10_000 }, () => {
  assert.equal(stepOf(report({ span_id: '' }, T0)), null);
  assert.equal(stepOf(report({ span_id: 's', trace_id: 5 }, T0)), null);
});

test('property: any order of the same reports gives the same lane', { timeout: 10_000 }, () => {
  const spanIds = ['s0', 's1', 's2', 's3', 's4', 's5'];
  const reportArb = fc.record({
    span: fc.integer({ min: 0, max: 5 }),
    parent: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
    start: fc.integer({ min: 0, max: 5000 }),
    ended: fc.boolean(),
    duration: fc.integer({ min: 0, max: 5000 }),
  });
  fc.assert(
    fc.property(fc.array(reportArb, { minLength: 1, maxLength: 20 }), fc.array(fc.nat(), { minLength: 12, maxLength: 12 }), (inputs, keys) => {
      // One truth per span (its parent, start, end), reported running and/or ended in any order.
      const truth = new Map<number, (typeof inputs)[number]>();
      for (const r of inputs) if (!truth.has(r.span)) truth.set(r.span, r);
      const events: DeliveredEvent[] = [];
      for (const r of truth.values()) {
        const data = {
          span_id: spanIds[r.span],
          parent_span_id: r.parent === undefined ? undefined : spanIds[r.parent],
          started_at: new Date(T0 + r.start).toISOString(),
          name: `n${r.span}`,
        };
        events.push(report({ ...data, state: 'running' }, T0 + r.start));
        if (r.ended) events.push(report({ ...data, state: 'ok', duration_ms: r.duration }, T0 + r.start + r.duration));
      }
      const shuffled = events
        .map((e, i) => [keys[i]!, i, e] as const)
        .sort((x, y) => x[0] - y[0] || x[1] - y[1])
        .map(([, , e]) => e);
      const reversed = [...events].reverse();
      const now = T0 + 20_000;
      const a = laneOf(steps(events), 't1', now);
      const b = laneOf(steps(reversed), 't1', now);
      const c = laneOf(steps(shuffled), 't1', now);
      const shape = (l: ReturnType<typeof laneOf>) => l.rows.map((r) => [r.step.spanId, r.depth, r.step.state, r.left, r.width]);
      assert.deepEqual(shape(b), shape(a));
      assert.deepEqual(shape(c), shape(a));
      assert.equal(a.rows.length, truth.size, 'every span is a row');
    }),
    { numRuns: 300 },
  );
});
