// The behaviour detectors and the run-status machine on their own (no
// server): each detector fires at its threshold and not below, healthy
// traffic raises nothing, findings are the same whoever replays the same
// events (so a node taking over judging raises nothing twice: property
// test), and state stays bounded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_THRESHOLDS, DetectorThresholdsSchema } from '../src/detect/thresholds.js';
import { Watches, type Finding } from '../src/detect/watch.js';
import type { DeliveredEvent } from '../src/protocol/server-messages.js';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');

interface StepInput {
  span: string;
  parent?: string | null;
  kind?: string;
  name?: string;
  state?: 'running' | 'ok' | 'error';
  tool?: string;
  model?: string;
  digest?: string;
  tokens?: number;
  /** Seconds after T0: when the step ended (its own time) and when the server got it. */
  at: number;
}

/** Activity events of one agent, offsets in order. */
function stream(agent = 'a1') {
  let offset = 0;
  return (s: StepInput): DeliveredEvent => {
    const ms = T0 + s.at * 1000;
    const data: Record<string, unknown> = {
      span_id: s.span,
      trace_id: 't'.repeat(32),
      parent_span_id: s.parent === undefined ? 'root' : s.parent,
      kind: s.kind ?? 'tool',
      name: s.name ?? s.tool ?? 'step',
      state: s.state ?? 'ok',
      started_at: new Date(ms - 100).toISOString(),
    };
    if ((s.state ?? 'ok') !== 'running') data['ended_at'] = new Date(ms).toISOString();
    if (s.tool) data['tool'] = s.tool;
    if (s.model) data['model'] = s.model;
    if (s.digest) data['arguments_digest'] = s.digest;
    if (s.tokens !== undefined) data['tokens'] = { input: s.tokens, output: 0, total: s.tokens };
    return { type: 'agent_activity', event_id: `e${++offset}`, agent_id: agent, data, timestamp: new Date(ms).toISOString(), offset, epoch: 'ep' };
  };
}

function alerts(findings: Finding[]): Array<Extract<Finding, { type: 'alert' }>> {
  return findings.filter((f): f is Extract<Finding, { type: 'alert' }> => f.type === 'alert');
}

function feed(w: Watches, events: DeliveredEvent[]): Finding[] {
  const out: Finding[] = [];
  for (const e of events) w.observe(e, out);
  return out;
}

test('tool-call loop: the same tool with the same arguments 5 times within 60 s, once; 4 times, or other arguments, nothing', { timeout: 10_000 }, () => {
  const ev = stream();
  const w = new Watches(DEFAULT_THRESHOLDS);
  const four = feed(
    w,
    [0, 5, 10, 15].map((s, i) => ev({ span: `s${i}`, tool: 'search', digest: 'd1', at: s })),
  );
  assert.deepEqual(alerts(four), []);
  const other = feed(w, [ev({ span: 'x', tool: 'search', digest: 'd2', at: 16 })]);
  assert.deepEqual(alerts(other), [], 'other arguments do not count');
  const fifth = alerts(feed(w, [ev({ span: 's4', tool: 'search', digest: 'd1', at: 20 })]));
  assert.equal(fifth.length, 1);
  assert.equal(fifth[0]!.detector, 'tool_call_loop');
  assert.equal(fifth[0]!.severity, 'warning');
  assert.deepEqual(fifth[0]!.evidence['span_ids'], ['s0', 's1', 's2', 's3', 's4']);
  assert.equal(fifth[0]!.evidence['count'], 5);
  assert.equal(fifth[0]!.evidence['arguments_digest'], 'd1');
  assert.equal(fifth[0]!.key, 'tool_call_loop:s4');
  // Cooldown: the loop going on does not alert again at once.
  assert.deepEqual(
    alerts(
      feed(
        w,
        [25, 30, 35, 40, 45].map((s, i) => ev({ span: `t${i}`, tool: 'search', digest: 'd1', at: s })),
      ),
    ),
    [],
  );
});

test('tool-call loop without arguments in the telemetry: by tool name, at twice the count', { timeout: 10_000 }, () => {
  const ev = stream();
  const w = new Watches(DEFAULT_THRESHOLDS);
  const nine = feed(
    w,
    Array.from({ length: 9 }, (_, i) => ev({ span: `s${i}`, tool: 'read_file', at: i })),
  );
  assert.deepEqual(alerts(nine), []);
  assert.equal(alerts(feed(w, [ev({ span: 's9', tool: 'read_file', at: 9 })])).length, 1);
});

test('a loop spread wider than the window is no loop', { timeout: 10_000 }, () => {
  const ev = stream();
  const w = new Watches(DEFAULT_THRESHOLDS);
  assert.deepEqual(
    alerts(
      feed(
        w,
        [0, 20, 40, 61, 82, 103].map((s, i) => ev({ span: `s${i}`, tool: 'search', digest: 'd', at: s })),
      ),
    ),
    [],
  );
});

test('error burst: 5 failed steps within 60 s (high); the same spread over minutes, nothing', { timeout: 10_000 }, () => {
  const ev = stream();
  const spread = new Watches(DEFAULT_THRESHOLDS);
  assert.deepEqual(
    alerts(
      feed(
        spread,
        [0, 70, 140, 210, 280].map((s, i) => ev({ span: `s${i}`, kind: 'llm', model: `m${i}`, state: 'error', at: s })),
      ),
    ),
    [],
  );
  const burst = new Watches(DEFAULT_THRESHOLDS);
  const found = alerts(
    feed(
      burst,
      [0, 1, 2, 3, 4].map((s, i) => ev({ span: `b${i}`, kind: 'tool', tool: `t${i}`, state: 'error', at: s })),
    ),
  );
  assert.deepEqual(
    found.map((f) => [f.detector, f.severity, f.evidence['count']]),
    [['error_burst', 'high', 5]],
  );
});

test('retry storm: 4 calls in a row to one model, each after a failure; a success breaks the streak', { timeout: 10_000 }, () => {
  const ev = stream();
  const w = new Watches(DEFAULT_THRESHOLDS);
  const broken = feed(w, [
    ev({ span: 'a', kind: 'llm', model: 'gpt', state: 'error', at: 0 }),
    ev({ span: 'b', kind: 'llm', model: 'gpt', state: 'error', at: 1 }),
    ev({ span: 'c', kind: 'llm', model: 'gpt', state: 'ok', at: 2 }),
    ev({ span: 'd', kind: 'llm', model: 'gpt', state: 'error', at: 3 }),
  ]);
  assert.deepEqual(alerts(broken), []);
  const storm = alerts(
    feed(w, [
      ev({ span: 'e', kind: 'llm', model: 'gpt', state: 'error', at: 4 }),
      ev({ span: 'f', kind: 'llm', model: 'gpt', state: 'error', at: 5 }),
      ev({ span: 'g', kind: 'llm', model: 'gpt', state: 'ok', at: 6 }),
    ]),
  );
  // (Five failures within a minute are an error burst too: each detector says what it sees.)
  const retries = storm.filter((f) => f.detector === 'retry_storm');
  assert.deepEqual(
    retries.map((f) => [f.detector, f.evidence['target'], f.evidence['attempts']]),
    [['retry_storm', 'gpt', 4]],
  );
  assert.deepEqual(retries[0]!.evidence['span_ids'], ['d', 'e', 'f', 'g']);
});

test("token burn: over the per-minute limit (high), or over 5x the agent's own baseline (warning); a steady agent, nothing", { timeout: 10_000 }, () => {
  const ev = stream();
  const steady = new Watches(DEFAULT_THRESHOLDS);
  const llm = (i: number, at: number, tokens: number) => ev({ span: `l${i}`, kind: 'llm', model: 'm', tokens, at });
  let i = 0;
  // Ten minutes at 6,000 tokens a minute.
  const calm = Array.from({ length: 60 }, (_, k) => llm(i++, k * 10, 1000));
  assert.deepEqual(alerts(feed(steady, calm)), []);
  // Then a minute at 40,000: over 5x the baseline of 6,000, under the absolute limit.
  const spike = alerts(
    feed(
      steady,
      Array.from({ length: 8 }, (_, k) => llm(i++, 600 + k * 5, 5000)),
    ),
  );
  assert.equal(spike.length, 1);
  assert.equal(spike[0]!.detector, 'token_burn');
  assert.equal(spike[0]!.severity, 'warning');
  assert.ok((spike[0]!.evidence['baseline_per_minute'] as number) <= 7000);
  const burn = new Watches(DEFAULT_THRESHOLDS);
  const big = alerts(feed(burn, [llm(i++, 0, 150_000), llm(i++, 10, 60_000)]));
  assert.deepEqual(
    big.map((f) => [f.detector, f.severity]),
    [['token_burn', 'high']],
  );
  // Agent and chain steps repeat their model calls' tokens: they do not count.
  const nested = new Watches(DEFAULT_THRESHOLDS);
  assert.deepEqual(alerts(feed(nested, [ev({ span: 'r', kind: 'agent', tokens: 500_000, at: 0 })])), []);
});

test('stalled step: running with no end and no new child for 120 s; a child resets the clock; the end clears it', { timeout: 10_000 }, () => {
  const ev = stream();
  const w = new Watches(DEFAULT_THRESHOLDS);
  feed(w, [ev({ span: 'p', state: 'running', kind: 'other', name: '', at: 0 }), ev({ span: 'q', state: 'running', kind: 'other', name: '', at: 0 })]);
  assert.deepEqual(alerts(w.tick(T0 + 100_000)), []);
  feed(w, [ev({ span: 'c1', parent: 'q', kind: 'llm', model: 'm', at: 100 })]);
  const stalled = alerts(w.tick(T0 + 121_000));
  assert.deepEqual(
    stalled.map((f) => [f.detector, f.evidence['span_ids']]),
    [['stalled_step', ['p']]],
  );
  assert.equal(stalled[0]!.key, 'stalled_step:p');
  assert.deepEqual(alerts(w.tick(T0 + 200_000)), [], 'once per step');
  feed(w, [ev({ span: 'q', parent: null, kind: 'agent', at: 210 })]);
  assert.deepEqual(alerts(w.tick(T0 + 500_000)), [], 'an ended step never stalls');
});

test("run status: running on activity, completed when the trace's root ends, failed when it fails, idle after 60 s without activity", {
  timeout: 10_000,
}, () => {
  const ev = stream();
  const w = new Watches(DEFAULT_THRESHOLDS);
  const statuses = (f: Finding[]) => f.filter((x) => x.type === 'status').map((x) => (x as { status: string }).status);
  assert.deepEqual(statuses(feed(w, [ev({ span: 'c', kind: 'llm', model: 'm', at: 0 }), ev({ span: 'd', kind: 'tool', tool: 't', at: 1 })])), ['running']);
  assert.deepEqual(statuses(feed(w, [ev({ span: 'r', parent: null, kind: 'agent', at: 2 })])), ['completed']);
  assert.deepEqual(statuses(feed(w, [ev({ span: 'c2', kind: 'llm', model: 'm', at: 10 })])), ['running']);
  assert.deepEqual(statuses(w.tick(T0 + 30_000)), []);
  assert.deepEqual(statuses(w.tick(T0 + 71_000)), ['idle']);
  assert.deepEqual(statuses(feed(w, [ev({ span: 'r2', parent: null, kind: 'agent', state: 'error', at: 80 })])), ['running', 'failed']);
  assert.equal(w.statusOf('a1'), 'failed');
});

test('healthy traffic: an agent looping through varied tools and model calls raises no alert', { timeout: 10_000 }, () => {
  const ev = stream();
  const w = new Watches(DEFAULT_THRESHOLDS);
  const tools = ['search', 'fetch', 'summarise', 'write'];
  const out: Finding[] = [];
  for (let k = 0; k < 400; k++) {
    w.observe(ev({ span: `l${k}`, kind: 'llm', model: 'gpt', tokens: 800, at: k * 3 }), out);
    w.observe(ev({ span: `t${k}`, tool: tools[k % 4], digest: `args-${k}`, state: k % 50 === 0 ? 'error' : 'ok', at: k * 3 + 1 }), out);
    if (k % 20 === 19) w.observe(ev({ span: `r${k}`, parent: null, kind: 'agent', at: k * 3 + 2 }), out);
    w.tick(T0 + (k * 3 + 2) * 1000, out);
  }
  assert.deepEqual(alerts(out), []);
});

test("property: findings are a pure function of the events (same events, same keys; a prefix's findings are the whole run's), which a takeover's replay relies on", {
  timeout: 60_000,
}, () => {
  const step = fc.record({
    kind: fc.constantFrom('tool', 'llm', 'agent', 'other'),
    tool: fc.constantFrom('a', 'b'),
    digest: fc.constantFrom('x', 'y', undefined),
    state: fc.constantFrom('ok', 'error', 'error', 'running'),
    tokens: fc.nat(100_000),
    gap: fc.nat(20),
    root: fc.boolean(),
  });
  fc.assert(
    fc.property(fc.array(step, { maxLength: 120 }), fc.nat(120), (steps, cut) => {
      const ev = stream();
      let at = 0;
      const events = steps.map((s, i) => {
        at += s.gap;
        return ev({
          span: `s${i}`,
          parent: s.root ? null : 'p',
          kind: s.kind,
          tool: s.tool,
          model: 'm',
          digest: s.digest,
          state: s.state as 'ok',
          tokens: s.tokens,
          at,
        });
      });
      const keys = (f: Finding[]) => f.map((x) => x.key);
      const first = keys(feed(new Watches(DEFAULT_THRESHOLDS), events));
      assert.deepEqual(keys(feed(new Watches(DEFAULT_THRESHOLDS), events)), first, 'deterministic');
      // A takeover: the old judge published findings of a prefix; the new one replays everything.
      const before = new Set(keys(feed(new Watches(DEFAULT_THRESHOLDS), events.slice(0, cut))));
      const replayed = keys(feed(new Watches(DEFAULT_THRESHOLDS), events));
      for (const k of before) assert.ok(replayed.includes(k), `the replay raises ${k} again (the engine drops it as a repeat)`);
      assert.equal(new Set(replayed).size, replayed.length, 'no key twice in one judge');
    }),
    { numRuns: 300 },
  );
});

test('bounded: agents beyond maxAgents forget the least recently active; running steps per agent capped', { timeout: 10_000 }, () => {
  const th = DetectorThresholdsSchema.parse({ maxAgents: 50, maxRunning: 10 });
  const w = new Watches(th);
  for (let a = 0; a < 500; a++) w.observe(stream(`agent-${a}`)({ span: 's', at: 0 }));
  assert.equal(w.size, 50);
  const ev = stream('busy');
  for (let k = 0; k < 1000; k++) w.observe(ev({ span: `r${k}`, state: 'running', kind: 'other', at: 0 }));
  assert.equal(alerts(w.tick(T0 + 10_000_000)).length, 10, 'only the last 10 running steps are watched');
});

test('thresholds are validated: unknown keys and bad values refused, defaults documented', { timeout: 10_000 }, () => {
  assert.throws(() => DetectorThresholdsSchema.parse({ toolLoop: { count: 0 } }));
  assert.throws(() => DetectorThresholdsSchema.parse({ toolLop: {} }));
  assert.deepEqual(DEFAULT_THRESHOLDS.toolLoop, { count: 5, window: 60, countWithoutArguments: 10 });
});

test('a forgotten agent (removed from the directory) gets no idle status; one still watched does', { timeout: 10_000 }, () => {
  const w = new Watches(DEFAULT_THRESHOLDS);
  feed(w, [stream('gone')({ span: 'r1', state: 'running', at: 0 }), stream('kept')({ span: 'r2', state: 'running', at: 0 })]);
  assert.equal(w.statusOf('gone'), 'running');
  assert.equal(w.forget('gone'), true);
  assert.equal(w.forget('gone'), false);
  const later = w.tick(T0 + (DEFAULT_THRESHOLDS.idleAfter + 1) * 1000);
  const statuses = later.filter((f) => f.type === 'status').map((f) => [f.agentId, (f as { status?: string }).status]);
  assert.deepEqual(statuses, [['kept', 'idle']]);
});
