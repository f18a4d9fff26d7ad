// Subscription filters through the real server: subscribe with a filter,
// publish several events, and assert exactly which arrive. Every run ends
// with a sentinel event that matches; frames to one socket leave in order,
// so once the sentinel is in, everything published before it has been decided.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { confirmed, epistemic, EVENT_TYPES, startServer, type DeliveredEvent, type SubscribeInput, type TestClient, type TestServer } from './helpers.js';

type Publish = (s: TestServer, mark: string) => Promise<number>;

/** The mark a test put on an event: in `data.mark`, or `metadata.mark` for system alerts and status changes. */
function markOf(m: DeliveredEvent): string | undefined {
  return (m.data?.['mark'] ?? m.metadata?.['mark']) as string | undefined;
}

/** Waits for the event marked `sentinel` and returns the marks of every event that arrived before it, in order. */
async function marksUntil(c: TestClient, sentinel: string): Promise<string[]> {
  await c.next(EVENT_TYPES, (m) => markOf(m) === sentinel);
  return c.takeEvents().map((m) => markOf(m) ?? `<unmarked ${m.type}>`);
}

// Publishers of marked events, one per event type.
/** An epistemic event; a key given as `undefined` in `extra` is removed from the event (a missing field). */
const ep =
  (extra: Record<string, unknown>, agentId = 'agent_1'): Publish =>
  (s, mark) => {
    const data: Record<string, unknown> = { ...epistemic(agentId, 0.5), ...extra, mark };
    for (const [k, v] of Object.entries(extra)) if (v === undefined) delete data[k];
    return s.server.broadcastEpistemicUpdate(agentId, data);
  };
const pattern =
  (data: Record<string, unknown>, options: { severity?: string; alertType?: string } = {}, agentId = 'agent_1'): Publish =>
  (s, mark) =>
    s.server.broadcastPatternAlert(agentId, { ...data, mark }, options);
const prediction =
  (data: Record<string, unknown>, agentId = 'agent_1'): Publish =>
  (s, mark) =>
    s.server.broadcastPredictionUpdate(agentId, { ...data, mark });
const system =
  (alertType: string, severity: string, message = 'msg'): Publish =>
  (s, mark) =>
    s.server.broadcastSystemAlert(alertType, message, severity, { mark });
const status =
  (st: string, agentId = 'agent_1'): Publish =>
  (s, mark) =>
    s.server.broadcastAgentStatusChange(agentId, st, { mark });

interface Case {
  /** Subscription `data` (type, agent_id, filters). */
  sub: SubscribeInput;
  /** Events to publish, by mark. */
  events: Record<string, Publish>;
  /** Marks that must arrive (in publication order). */
  expect: string[];
  /** A matching event published last. */
  sentinel: Publish;
}

/** Runs one filter case on a fresh connection of an existing server; returns nothing, asserts everything. */
async function runCase(s: TestServer, c: TestClient, { sub, events, expect, sentinel }: Case): Promise<void> {
  const conf = await confirmed(c, sub);
  assert.deepEqual(conf.data.filters, sub.filters ?? null);
  for (const [mark, publish] of Object.entries(events)) {
    const n = await publish(s, mark);
    assert.equal(n, expect.includes(mark) ? 1 : 0, `recipients of ${mark}`);
  }
  assert.equal(await sentinel(s, 'sentinel'), 1, 'the sentinel must match');
  assert.deepEqual(await marksUntil(c, 'sentinel'), expect);
}

async function filterCase(t: TestContext, kase: Case): Promise<void> {
  const s = await startServer(t);
  const c = await s.connect({ roles: ['researcher'] });
  await runCase(s, c, kase);
}

// ---- operators ---------------------------------------------------------------

test('min: numbers at or above the bound', { timeout: 60_000 }, (t) =>
  filterCase(t, {
    sub: { type: 'epistemic_updates', agent_id: 'agent_1', filters: { confidence_level: { min: 0.5 } } },
    events: { low: ep({ confidence_level: 0.3 }), edge: ep({ confidence_level: 0.5 }), high: ep({ confidence_level: 0.9 }), zero: ep({ confidence_level: 0 }) },
    expect: ['edge', 'high'],
    sentinel: ep({ confidence_level: 1 }),
  }),
);

test('max: numbers at or below the bound', { timeout: 60_000 }, (t) =>
  filterCase(t, {
    sub: { type: 'epistemic_updates', agent_id: 'agent_1', filters: { uncertainty_score: { max: 0.4 } } },
    events: {
      low: ep({ uncertainty_score: 0.1 }),
      edge: ep({ uncertainty_score: 0.4 }),
      high: ep({ uncertainty_score: 0.41 }),
      text: ep({ score_text: 'x', uncertainty_score: undefined }),
    },
    expect: ['low', 'edge'],
    sentinel: ep({ uncertainty_score: 0 }),
  }),
);

test('min and max on a non-number never match', { timeout: 60_000 }, (t) =>
  filterCase(t, {
    sub: { type: 'epistemic_updates', filters: { score: { min: 1 } } },
    events: { str: ep({ score: '5' }), bool: ep({ score: true }), arr: ep({ score: [5] }), obj: ep({ score: { v: 5 } }), num: ep({ score: 5 }) },
    expect: ['num'],
    sentinel: ep({ score: 1 }),
  }),
);

test('equals: strict equality for strings, numbers and booleans', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c1 = await s.connect({ roles: ['researcher'] }, { session: 'c1' });
  await runCase(s, c1, {
    sub: { type: 'pattern_alerts', agent_id: 'agent_1', filters: { pattern_name: { equals: 'retry-loop' } } },
    events: {
      same: pattern({ pattern_name: 'retry-loop' }),
      case: pattern({ pattern_name: 'Retry-Loop' }),
      longer: pattern({ pattern_name: 'retry-loop-2' }),
      none: pattern({}),
    },
    expect: ['same'],
    sentinel: pattern({ pattern_name: 'retry-loop' }),
  });
  const c2 = await s.connect({ roles: ['researcher'] }, { session: 'c2' });
  await runCase(s, c2, {
    sub: { type: 'epistemic_updates', agent_id: 'agent_2', filters: { confidence_level: { equals: 0.5 } } },
    events: { eq: ep({ confidence_level: 0.5 }, 'agent_2'), ne: ep({ confidence_level: 0.55 }, 'agent_2') },
    expect: ['eq'],
    sentinel: ep({ confidence_level: 0.5 }, 'agent_2'),
  });
  const c3 = await s.connect({ roles: ['researcher'] }, { session: 'c3' });
  await runCase(s, c3, {
    sub: { type: 'prediction_updates', agent_id: 'agent_3', filters: { 'flags.urgent': { equals: true } } },
    events: {
      yes: prediction({ flags: { urgent: true } }, 'agent_3'),
      no: prediction({ flags: { urgent: false } }, 'agent_3'),
      text: prediction({ flags: { urgent: 'true' } }, 'agent_3'),
      one: prediction({ flags: { urgent: 1 } }, 'agent_3'),
    },
    expect: ['yes'],
    sentinel: prediction({ flags: { urgent: true } }, 'agent_3'),
  });
});

test('contains: substring of a string', { timeout: 60_000 }, (t) =>
  filterCase(t, {
    sub: { type: 'pattern_alerts', filters: { description: { contains: 'timeout' } } },
    events: {
      inside: pattern({ description: 'repeated timeout on step 3' }),
      start: pattern({ description: 'timeouts' }),
      other: pattern({ description: 'time out' }),
      upper: pattern({ description: 'TIMEOUT' }),
      none: pattern({}),
    },
    expect: ['inside', 'start'],
    sentinel: pattern({ description: 'timeout' }),
  }),
);

test('contains: a number is matched as text', { timeout: 60_000 }, (t) =>
  filterCase(t, {
    sub: { type: 'epistemic_updates', filters: { confidence_level: { contains: '75' } } },
    events: { a: ep({ confidence_level: 0.75 }), b: ep({ confidence_level: 0.275 }), c: ep({ confidence_level: 0.7 }), d: ep({ confidence_level: 0.57 }) },
    expect: ['a', 'b'],
    sentinel: ep({ confidence_level: 0.175 }),
  }),
);

test('contains: a numeric needle matches as text too', { timeout: 60_000 }, (t) =>
  filterCase(t, {
    sub: { type: 'pattern_alerts', filters: { pattern_id: { contains: 42 } } },
    events: { a: pattern({ pattern_id: 'p-42-x' }), b: pattern({ pattern_id: 'p-4-2' }), c: pattern({ frequency: 42 }) },
    expect: ['a'],
    sentinel: pattern({ pattern_id: '1420' }),
  }),
);

test('contains: an element of an array', { timeout: 60_000 }, (t) =>
  filterCase(t, {
    sub: { type: 'prediction_updates', filters: { risk_factors: { contains: 'memory' } } },
    events: {
      elem: prediction({ risk_factors: ['cpu', 'memory'] }),
      sub: prediction({ risk_factors: ['low-memory-host'] }),
      none: prediction({ risk_factors: ['cpu', 'disk'] }),
      empty: prediction({ risk_factors: [] }),
      missing: prediction({}),
    },
    expect: ['elem', 'sub'],
    sentinel: prediction({ risk_factors: ['memory'] }),
  }),
);

test('in: the value is one of a list', { timeout: 60_000 }, (t) =>
  filterCase(t, {
    sub: { type: 'prediction_updates', agent_id: 'agent_1', filters: { risk_level: { in: ['high', 'critical'] } } },
    events: {
      low: prediction({ risk_level: 'low' }),
      high: prediction({ risk_level: 'high' }),
      critical: prediction({ risk_level: 'critical' }),
      medium: prediction({ risk_level: 'medium' }),
      missing: prediction({}),
    },
    expect: ['high', 'critical'],
    sentinel: prediction({ risk_level: 'high' }),
  }),
);

test('in: numbers compare by value and type', { timeout: 60_000 }, (t) =>
  filterCase(t, {
    sub: { type: 'epistemic_updates', filters: { 'goal_states.0.priority': { in: [1, 2, 3] } } },
    events: {
      p2: ep({ goal_states: [{ description: 'g', status: 'active', priority: 2 }] }),
      p5: ep({ goal_states: [{ description: 'g', status: 'active', priority: 5 }] }),
      none: ep({ goal_states: [] }),
    },
    expect: ['p2'],
    sentinel: ep({ goal_states: [{ description: 'g', status: 'active', priority: 3 }] }),
  }),
);

test('not_in: the value is present and not in the list', { timeout: 60_000 }, (t) =>
  filterCase(t, {
    sub: { type: 'agent_status', filters: { status: { not_in: ['idle', 'stopped'] } } },
    events: { running: status('running'), idle: status('idle'), stopped: status('stopped'), failed: status('failed') },
    expect: ['running', 'failed'],
    sentinel: status('starting'),
  }),
);

test('not_in: a missing or null field is a non-match', { timeout: 60_000 }, (t) =>
  filterCase(t, {
    sub: { type: 'epistemic_updates', filters: { phase: { not_in: ['done'] } } },
    events: { missing: ep({}), nul: ep({ phase: null }), done: ep({ phase: 'done' }), work: ep({ phase: 'work' }) },
    expect: ['work'],
    sentinel: ep({ phase: 'plan' }),
  }),
);

test('exists: true matches a present, non-null field', { timeout: 60_000 }, (t) =>
  filterCase(t, {
    sub: { type: 'epistemic_updates', filters: { knowledge_state: { exists: true } } },
    events: {
      present: ep({}),
      nul: ep({ knowledge_state: null }),
      missing: ep({ knowledge_state: undefined }),
      zero: ep({ knowledge_state: { facts: [], confidence: 0 } }),
    },
    expect: ['present', 'zero'],
    sentinel: ep({}),
  }),
);

test('exists: false matches a missing or null field', { timeout: 60_000 }, (t) =>
  filterCase(t, {
    sub: { type: 'epistemic_updates', filters: { knowledge_state: { exists: false } } },
    events: {
      present: ep({}),
      nul: ep({ knowledge_state: null }),
      missing: ep({ knowledge_state: undefined }),
      falsy: ep({ knowledge_state: { facts: [], confidence: 0 } }),
    },
    expect: ['nul', 'missing'],
    sentinel: ep({ knowledge_state: null }),
  }),
);

test('exists: false on a nested path under a null parent', { timeout: 60_000 }, (t) =>
  filterCase(t, {
    sub: { type: 'epistemic_updates', filters: { 'knowledge_state.source': { exists: false } } },
    events: {
      withSource: ep({ knowledge_state: { facts: [], source: 'db' } }),
      noSource: ep({ knowledge_state: { facts: [] } }),
      nullParent: ep({ knowledge_state: null }),
    },
    expect: ['noSource', 'nullParent'],
    sentinel: ep({ knowledge_state: { facts: [], source: null } }),
  }),
);

test('plain value: equality for string, number and boolean', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c1 = await s.connect({ roles: ['researcher'] }, { session: 'c1' });
  await runCase(s, c1, {
    sub: { type: 'pattern_alerts', filters: { pattern_type: 'causal' } },
    events: { causal: pattern({ pattern_type: 'causal' }), temporal: pattern({ pattern_type: 'temporal' }), missing: pattern({}) },
    expect: ['causal'],
    sentinel: pattern({ pattern_type: 'causal' }),
  });
  const c2 = await s.connect({ roles: ['researcher'] }, { session: 'c2' });
  await runCase(s, c2, {
    sub: { type: 'epistemic_updates', filters: { step: 3 } },
    events: { three: ep({ step: 3 }), text: ep({ step: '3' }), four: ep({ step: 4 }) },
    expect: ['three'],
    sentinel: ep({ step: 3 }),
  });
  const c3 = await s.connect({ roles: ['researcher'] }, { session: 'c3' });
  await runCase(s, c3, {
    sub: { type: 'pattern_alerts', filters: { 'execution_sequences.0.success': false } },
    events: {
      failed: pattern({ execution_sequences: [{ sequence_id: 's', success: false }] }),
      ok: pattern({ execution_sequences: [{ sequence_id: 's', success: true }] }),
      nul: pattern({ execution_sequences: [{ sequence_id: 's', success: null }] }),
      empty: pattern({ execution_sequences: [] }),
    },
    expect: ['failed'],
    sentinel: pattern({ execution_sequences: [{ success: false }] }),
  });
});

test('min and max combined: a closed range', { timeout: 60_000 }, (t) =>
  filterCase(t, {
    sub: { type: 'epistemic_updates', filters: { confidence_level: { min: 0.4, max: 0.6 } } },
    events: {
      below: ep({ confidence_level: 0.39 }),
      lo: ep({ confidence_level: 0.4 }),
      mid: ep({ confidence_level: 0.5 }),
      hi: ep({ confidence_level: 0.6 }),
      above: ep({ confidence_level: 0.61 }),
    },
    expect: ['lo', 'mid', 'hi'],
    sentinel: ep({ confidence_level: 0.45 }),
  }),
);

test('several keys: all must match (AND)', { timeout: 60_000 }, (t) =>
  filterCase(t, {
    sub: {
      type: 'epistemic_updates',
      filters: { confidence_level: { min: 0.5 }, 'belief_states.0.belief_type': 'factual', agent_id: { in: ['agent_1', 'agent_2'] } },
    },
    events: {
      all: ep({ confidence_level: 0.8 }),
      lowConf: ep({ confidence_level: 0.2 }),
      wrongType: ep({ confidence_level: 0.8, belief_states: [{ content: 'c', belief_type: 'predictive', confidence: 0.8 }] }),
      wrongAgent: ep({ confidence_level: 0.8 }, 'agent_3'),
      agent2: ep({ confidence_level: 0.9 }, 'agent_2'),
    },
    expect: ['all', 'agent2'],
    sentinel: ep({ confidence_level: 0.5 }),
  }),
);

// ---- paths and envelope fields ----------------------------------------------

test('nested dotted path: knowledge_state.confidence', { timeout: 60_000 }, (t) =>
  filterCase(t, {
    sub: { type: 'epistemic_updates', filters: { 'knowledge_state.confidence': { min: 0.8 } } },
    events: {
      high: ep({ knowledge_state: { facts: [], confidence: 0.9 } }),
      low: ep({ knowledge_state: { facts: [], confidence: 0.7 } }),
      topLevelOnly: ep({ confidence: 0.95, knowledge_state: { facts: [] } }),
      nul: ep({ knowledge_state: null }),
    },
    expect: ['high'],
    sentinel: ep({ knowledge_state: { confidence: 0.8 } }),
  }),
);

test('nested dotted path with an array index: belief_states.0.belief_type', { timeout: 60_000 }, (t) =>
  filterCase(t, {
    sub: { type: 'epistemic_updates', filters: { 'belief_states.0.belief_type': { equals: 'predictive' } } },
    events: {
      first: ep({ belief_states: [{ content: 'a', belief_type: 'predictive' }] }),
      second: ep({
        belief_states: [
          { content: 'a', belief_type: 'factual' },
          { content: 'b', belief_type: 'predictive' },
        ],
      }),
      empty: ep({ belief_states: [] }),
    },
    expect: ['first'],
    sentinel: ep({ belief_states: [{ belief_type: 'predictive' }] }),
  }),
);

test('envelope fields on pattern alerts: severity and alert_type', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c1 = await s.connect({ roles: ['researcher'] }, { session: 'c1' });
  await runCase(s, c1, {
    sub: { type: 'pattern_alerts', agent_id: 'agent_1', filters: { severity: { in: ['high', 'critical'] } } },
    events: {
      info: pattern({}),
      high: pattern({}, { severity: 'high' }),
      warning: pattern({}, { severity: 'warning' }),
      critical: pattern({}, { severity: 'critical' }),
    },
    expect: ['high', 'critical'],
    sentinel: pattern({}, { severity: 'critical' }),
  });
  const c2 = await s.connect({ roles: ['researcher'] }, { session: 'c2' });
  await runCase(s, c2, {
    sub: { type: 'pattern_alerts', agent_id: 'agent_2', filters: { alert_type: 'anomaly_detected' } },
    events: {
      dflt: pattern({}, {}, 'agent_2'),
      anomaly: pattern({}, { alertType: 'anomaly_detected' }, 'agent_2'),
      other: pattern({}, { alertType: 'anomaly' }, 'agent_2'),
    },
    expect: ['anomaly'],
    sentinel: pattern({}, { alertType: 'anomaly_detected', severity: 'low' }, 'agent_2'),
  });
});

test('envelope fields on system alerts: severity and alert_type (filters apply to system alerts)', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c1 = await s.connect({ roles: ['viewer'] }, { session: 'c1' });
  await runCase(s, c1, {
    sub: { type: 'system_alerts', filters: { severity: 'critical' } },
    events: { info: system('maintenance', 'info'), warning: system('maintenance', 'warning'), critical: system('outage', 'critical') },
    expect: ['critical'],
    sentinel: system('outage', 'critical'),
  });
  const c2 = await s.connect({ roles: ['viewer'] }, { session: 'c2' });
  await runCase(s, c2, {
    sub: { type: 'system_alerts', filters: { alert_type: { in: ['maintenance'] }, severity: { not_in: ['debug', 'info'] } } },
    events: { mInfo: system('maintenance', 'info'), mWarn: system('maintenance', 'warning'), oWarn: system('outage', 'warning') },
    expect: ['mWarn'],
    sentinel: system('maintenance', 'high'),
  });
  const c3 = await s.connect({ roles: ['viewer'] }, { session: 'c3' });
  await runCase(s, c3, {
    sub: { type: 'system_alerts', filters: { message: { contains: 'disk' } } },
    events: { disk: system('x', 'info', 'disk almost full'), cpu: system('x', 'info', 'cpu hot') },
    expect: ['disk'],
    sentinel: system('x', 'info', 'disk full'),
  });
});

test('envelope field on agent status: status', { timeout: 60_000 }, (t) =>
  filterCase(t, {
    sub: { type: 'agent_status', filters: { status: 'failed' } },
    events: { running: status('running'), failed: status('failed'), failed2: status('failed', 'agent_2'), failing: status('failing') },
    expect: ['failed', 'failed2'],
    sentinel: status('failed', 'agent_3'),
  }),
);

test('envelope field: agent_id on an all-agents subscription', { timeout: 60_000 }, (t) =>
  filterCase(t, {
    sub: { type: 'prediction_updates', filters: { agent_id: { in: ['agent_1', 'agent_3'] } } },
    events: { a1: prediction({}, 'agent_1'), a2: prediction({}, 'agent_2'), a3: prediction({}, 'agent_3'), a10: prediction({}, 'agent_10') },
    expect: ['a1', 'a3'],
    sentinel: prediction({}, 'agent_3'),
  }),
);

// ---- missing and null fields -------------------------------------------------

test('a missing field and a null field are non-matches for every operator', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const specs: Array<[string, unknown]> = [
    ['min', { min: 0 }],
    ['max', { max: 100 }],
    ['equals', { equals: 'x' }],
    ['contains', { contains: 'null' }],
    ['in', { in: ['x'] }],
    ['exists', { exists: true }],
    ['plain', 'x'],
  ];
  for (const [name, spec] of specs) {
    const c = await s.connect({ roles: ['researcher'] }, { session: `s_${name}` });
    const conf = await c.subscribe({ type: 'epistemic_updates', agent_id: `agent_${name}`, filters: { 'extra.value': spec } });
    assert.equal(conf.type, 'subscription_confirmed', JSON.stringify(conf));
    const agent = `agent_${name}`;
    assert.equal(await s.server.broadcastEpistemicUpdate(agent, { ...epistemic(agent, 0.5), mark: 'missing' }), 0, `${name}: missing`);
    assert.equal(await s.server.broadcastEpistemicUpdate(agent, { ...epistemic(agent, 0.5), extra: null, mark: 'nullParent' }), 0, `${name}: null parent`);
    assert.equal(await s.server.broadcastEpistemicUpdate(agent, { ...epistemic(agent, 0.5), extra: { value: null }, mark: 'null' }), 0, `${name}: null`);
    assert.equal(await s.server.broadcastEpistemicUpdate(agent, { ...epistemic(agent, 0.5), extra: 'x', mark: 'scalarParent' }), 0, `${name}: scalar parent`);
    const good = name === 'min' || name === 'max' ? 5 : name === 'contains' ? 'nullable' : 'x';
    assert.equal(
      await s.server.broadcastEpistemicUpdate(agent, { ...epistemic(agent, 0.5), extra: { value: good }, mark: 'sentinel' }),
      1,
      `${name}: sentinel`,
    );
    assert.deepEqual(await marksUntil(c, 'sentinel'), [], name);
  }
});

test('a null field under min skips only that subscriber; the broadcast continues (defect #4)', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  // The filtering subscribers are registered first, so they are evaluated before the others.
  const f1 = await s.connect({ sub: 'f1', roles: ['researcher'] }, { session: 'f1' });
  await f1.subscribe({ type: 'epistemic_updates', agent_id: 'agent_1', filters: { 'knowledge_state.confidence': { min: 0.5 } } });
  const f2 = await s.connect({ sub: 'f2', roles: ['researcher'] }, { session: 'f2' });
  await f2.subscribe({ type: 'epistemic_updates', filters: { score: { min: 0.5 } } });
  const other = await s.connect({ sub: 'other', roles: ['researcher'] }, { session: 'other' });
  await other.subscribe({ type: 'epistemic_updates', agent_id: 'agent_1' });
  const all = await s.connect({ sub: 'all', roles: ['researcher'] }, { session: 'all' });
  await all.subscribe({ type: 'epistemic_updates', filters: { confidence_level: { max: 1 } } });

  assert.equal(await s.server.broadcastEpistemicUpdate('agent_1', { ...epistemic('agent_1', 0.5), knowledge_state: null, score: null, mark: 'nulls' }), 2);
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_1', { ...epistemic('agent_1', 0.5), knowledge_state: { facts: [] }, mark: 'missing' }), 2);
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_1', { ...epistemic('agent_1', 0.9), score: 0.9, mark: 'sentinel' }), 4);
  assert.deepEqual(await marksUntil(other, 'sentinel'), ['nulls', 'missing']);
  assert.deepEqual(await marksUntil(all, 'sentinel'), ['nulls', 'missing']);
  assert.deepEqual(await marksUntil(f1, 'sentinel'), []);
  assert.deepEqual(await marksUntil(f2, 'sentinel'), []);
});

// ---- malformed filters ---------------------------------------------------------

test('malformed filters are refused at subscribe with VALIDATION_ERROR naming the key', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect({ roles: ['researcher'] });
  const tooMany: Record<string, unknown> = {};
  for (let i = 0; i < 33; i++) tooMany[`k${i}`] = i;
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['unknown operator', { confidence_level: { gte: 0.5 } }, /confidence_level/],
    ['unknown operator beside a good one', { confidence_level: { min: 0.1, above: 0.5 } }, /confidence_level/],
    ['min with a string', { confidence_level: { min: '0.5' } }, /confidence_level/],
    ['max with null', { confidence_level: { max: null } }, /confidence_level/],
    ['in with an empty list', { risk_level: { in: [] } }, /risk_level/],
    ['in with a non-list', { risk_level: { in: 'high' } }, /risk_level/],
    ['not_in with a non-list', { risk_level: { not_in: { a: 1 } } }, /risk_level/],
    ['in with an object item', { risk_level: { in: ['high', { x: 1 }] } }, /risk_level/],
    ['exists with a non-boolean', { knowledge_state: { exists: 'yes' } }, /knowledge_state/],
    ['plain array value', { tags: ['a', 'b'] }, /tags/],
    ['plain null value', { severity: null }, /severity/],
    ['empty operator object', { severity: {} }, /severity/],
    ['equals with an object', { severity: { equals: { a: 1 } } }, /severity/],
    ['path segment __proto__', { 'knowledge_state.__proto__.x': 1 }, /knowledge_state\.__proto__/],
    ['path segment constructor', { constructor: 1 }, /constructor/],
    ['empty path segment', { 'knowledge_state..confidence': { min: 0 } }, /knowledge_state\.\.confidence/],
    ['more than 32 keys', tooMany, /filters/],
    ['exists:false with min', { confidence_level: { exists: false, min: 0.5 } }, /confidence_level/],
    ['min with exists:false after it', { confidence_level: { min: 0.5, exists: false } }, /confidence_level/],
  ];
  for (const [what, filters, names] of cases) {
    c.send({ type: 'subscribe', data: { type: 'epistemic_updates', filters } });
    const reply = await c.next(['error', 'subscription_confirmed']);
    if (reply.type === 'subscription_confirmed') {
      // Keep going with a clean slate so one failure does not mask the others.
      await c.request({ type: 'unsubscribe', data: { subscription_type: 'epistemic_updates' } }, 'unsubscription_confirmed');
    }
    assert.equal(reply.type, 'error', `${what}: accepted (${JSON.stringify(reply)})`);
    assert.equal(reply.code, 'VALIDATION_ERROR', `${what}: ${JSON.stringify(reply)}`);
    assert.match(reply.message, names, `${what}: ${reply.message}`);
    assert.match(reply.message, /filters/, `${what}: ${reply.message}`);
  }
  // Nothing was subscribed, and the connection still works.
  const list = await c.expectReply({ type: 'get_subscriptions' }, 'subscriptions_list');
  assert.deepEqual(list.data.subscriptions, []);
  const ok = await c.subscribe({ type: 'epistemic_updates', filters: { confidence_level: { min: 0.5 } } });
  assert.equal(ok.type, 'subscription_confirmed');
});

test('a top-level filter key "__proto__" is refused, not silently dropped', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect({ roles: ['researcher'] });
  // Sent as raw JSON text, so the key really is an own "__proto__" property, as any client could send it.
  c.send('{"type":"subscribe","data":{"type":"epistemic_updates","agent_id":"agent_1","filters":{"__proto__":{"min":0.9}}}}');
  const reply = await c.next(['error', 'subscription_confirmed']);
  assert.equal(reply.type, 'error', `accepted: ${JSON.stringify(reply)}`);
  assert.equal(reply.code, 'VALIDATION_ERROR');
  assert.match(reply.message, /filters\.__proto__/);
});

test('limits that are allowed: exactly 32 keys, an empty filter object', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect({ roles: ['researcher'] });
  const keys: Record<string, unknown> = {};
  for (let i = 0; i < 32; i++) keys[`k${i}`] = { exists: true };
  const conf = await c.subscribe({ type: 'epistemic_updates', agent_id: 'agent_1', filters: keys });
  assert.equal(conf.type, 'subscription_confirmed', JSON.stringify(conf).slice(0, 300));
  const empty = await c.subscribe({ type: 'pattern_alerts', agent_id: 'agent_1', filters: {} });
  assert.equal(empty.type, 'subscription_confirmed');
  const full = Object.fromEntries(Object.keys(keys).map((k) => [k, 1]));
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_1', { ...epistemic('agent_1', 0.5), ...full, k31: null, mark: 'one-null' }), 0);
  assert.equal(await s.server.broadcastPatternAlert('agent_1', { mark: 'any' }), 1);
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_1', { ...epistemic('agent_1', 0.5), ...full, mark: 'sentinel' }), 1);
  assert.deepEqual(await marksUntil(c, 'sentinel'), ['any']);
});
