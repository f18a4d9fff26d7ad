// Issue 12 through the real server: conditions over lists (`any`, `all`),
// combinators (`$or`, `$and`, `$not`), `prefix`/`suffix`, conditions on change
// (`changed_by`, `crosses`: per subscription and agent, through `since` and a
// session resume), flow control (`$max_rate`: conflation with a `conflated`
// count, timers gone with the subscription), the limits, and the SDK's builder.
// Each run ends with an event known to pass; frames to one socket leave in
// order, so once it is in, everything published before it has been decided.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { filter, or, where, type Conflated, type SubscriptionFilter } from '../src/client/index.js';
import { FILTER_LIMITS } from '../src/filters/compile.js';
import { runCli } from './cli-process.js';
import {
  api,
  confirmed,
  eventually,
  connectionCount,
  EVENT_TYPES,
  eventsOf,
  expectFilterRefused,
  publishOne,
  startServer,
  type DeliveredEvent,
  type TestClient,
  type TestServer,
} from './helpers.js';

const RESEARCHER = { roles: ['researcher'] };

/** Publishes an epistemic update of `agentId` whose data is `data` plus a `seq`; returns its offset. */
async function ep(s: TestServer, agentId: string, seq: number, data: Record<string, unknown>): Promise<number> {
  const r = await publishOne(s, { type: 'epistemic_update', agent_id: agentId, data: { agent_id: agentId, seq, ...data } });
  return r.offset;
}

const seqOf = (m: DeliveredEvent): unknown => m.data?.['seq'];

/** Waits for the event with data.seq `last` and returns the seqs of every event received up to it, in order. */
async function seqsUntil(c: TestClient, last: number, timeoutMs = 5000): Promise<unknown[]> {
  const lastOne = await c.next(EVENT_TYPES, (m) => seqOf(m) === last, timeoutMs);
  return [...c.takeEvents(), lastOne].map(seqOf);
}

/** Subscribes to agent_1's (or every agent's) epistemic updates with `filters`, publishes `confidences` in order, and returns the delivered seqs. */
async function runConfidences(t: Parameters<typeof startServer>[0], filters: SubscriptionFilter, confidences: number[], sentinel: number): Promise<unknown[]> {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1', filters });
  for (const [i, v] of confidences.entries()) await ep(s, 'agent_1', i, { confidence_level: v });
  await ep(s, 'agent_1', 99, { confidence_level: sentinel });
  return seqsUntil(c, 99);
}

// ---- stateless forms -----------------------------------------------------------

test('any / all: conditions over the elements of a list (paths relative to the element)', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const anyLow = await s.connect(RESEARCHER);
  const allHigh = await s.connect(RESEARCHER);
  await confirmed(anyLow, { type: 'epistemic_updates', agent_id: 'agent_1', filters: { belief_states: { any: { confidence: { max: 0.3 } } } } });
  await confirmed(allHigh, {
    type: 'epistemic_updates',
    agent_id: 'agent_1',
    filters: { belief_states: { all: { confidence: { min: 0.5 }, belief_type: { in: ['factual', 'predictive'] } } } },
  });
  const b = (confidence: unknown, belief_type = 'factual') => ({ content: 'x', belief_type, confidence });
  await ep(s, 'agent_1', 1, { belief_states: [b(0.9), b(0.2)] }); // any low; not all high
  await ep(s, 'agent_1', 2, { belief_states: [b(0.9), b(0.8, 'predictive')] }); // all high
  await ep(s, 'agent_1', 3, { belief_states: [] }); // any of none: false; all of none: true
  await ep(s, 'agent_1', 4, { belief_states: [b(0.4)] }); // neither
  await ep(s, 'agent_1', 5, { belief_states: [{ content: 'x', belief_type: 'factual' }] }); // an element lacking the field
  await ep(s, 'agent_1', 6, {}); // missing
  await ep(s, 'agent_1', 7, { belief_states: [b(0.6, 'procedural')] }); // a type outside the list
  await ep(s, 'agent_1', 9, { belief_states: [b(0.1), b(0.9)], last: true });
  await ep(s, 'agent_1', 10, { belief_states: [b(0.9)] });
  assert.deepEqual(await seqsUntil(anyLow, 9), [1, 9]);
  assert.deepEqual(await seqsUntil(allHigh, 10), [2, 3, 10]);
});

test('$or, $and, $not, prefix and suffix; entries of one object AND together', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  const filters = {
    // (critical OR a name starting "retry-") AND NOT (description ending "[test]") AND score ≥ 0.5
    $or: [{ severity: 'critical' }, { pattern_name: { prefix: 'retry-' } }],
    $not: { description: { suffix: '[test]' } },
    $and: [{ score: { min: 0.5 } }],
  };
  await confirmed(c, { type: 'pattern_alerts', agent_id: 'agent_1', filters });
  const alert = (seq: number, data: Record<string, unknown>, severity = 'medium') =>
    s.server.broadcastPatternAlert('agent_1', { seq, score: 0.9, description: 'd', ...data }, { severity });
  await alert(1, { pattern_name: 'retry-loop' }); // yes
  await alert(2, { pattern_name: 'loop-retry-' }); // prefix no, not critical
  await alert(3, { pattern_name: 'x' }, 'critical'); // yes
  await alert(4, { pattern_name: 'retry-loop', description: 'seen in [test]' }); // $not
  await alert(5, { pattern_name: 'retry-loop', score: 0.1 }); // $and
  await alert(6, { pattern_name: 'Retry-loop' }); // prefix is case-sensitive: no
  await alert(7, { pattern_name: 'retry-x', description: undefined }); // suffix on a missing field: no match, so $not holds
  await alert(9, {}, 'critical');
  assert.deepEqual(await seqsUntil(c, 9), [1, 3, 7, 9]);
});

test('combinators nest, and a key that was never legal ($...) now means a combinator, never a field', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  // NOT (a OR (b AND NOT c))
  const filters = { $not: { $or: [{ a: 1 }, { $and: [{ b: 1 }, { $not: { c: 1 } }] }] } };
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1', filters });
  await ep(s, 'agent_1', 1, { a: 1 }); // no
  await ep(s, 'agent_1', 2, { b: 1 }); // no
  await ep(s, 'agent_1', 3, { b: 1, c: 1 }); // yes
  await ep(s, 'agent_1', 4, {}); // yes
  await ep(s, 'agent_1', 5, { $or: 1, a: 2 }); // a data field named "$or" is just data: yes
  assert.deepEqual(await seqsUntil(c, 5), [3, 4, 5]);
});

test('malformed new forms and the limits are refused with VALIDATION_ERROR naming the key or the limit', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  let deep: Record<string, unknown> = { x: 1 };
  for (let i = 0; i <= FILTER_LIMITS.nesting; i++) deep = { $not: deep };
  const wide = {
    $or: Array.from({ length: 30 }, (_, i) => ({ [`k${i}`]: { min: 0, max: 1, exists: true, not_in: [1], in: [2], contains: 'a', prefix: 'p', suffix: 's' } })),
  };
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['unknown reserved key', { $xor: [{ a: 1 }] }, /filters\.\$xor: unknown reserved key/],
    ['$or with an empty list', { $or: [] }, /filters\.\$or: .*non-empty list/],
    ['$or with a non-list', { $or: { a: 1 } }, /filters\.\$or/],
    ['$and with a non-object item', { $and: [{ a: 1 }, 3] }, /filters\.\$and\.1: must be an object/],
    ['$not with a list', { $not: [{ a: 1 }] }, /filters\.\$not/],
    ['a bad operator inside $or', { $or: [{ a: { gte: 1 } }] }, /filters\.\$or\.0\.a: unknown operator/],
    ['any with a non-object', { belief_states: { any: 0.3 } }, /filters\.belief_states\.any: must be an object/],
    ['prefix with a number', { name: { prefix: 3 } }, /filters\.name: prefix needs a string/],
    ['changed_by of zero', { confidence_level: { changed_by: 0 } }, /filters\.confidence_level: changed_by needs a number above 0/],
    ['changed_by with a bad direction', { confidence_level: { changed_by: { by: 0.1, direction: 'sideways' } } }, /direction/],
    ['crosses with a string', { confidence_level: { crosses: '0.3' } }, /filters\.confidence_level: crosses needs a finite number/],
    [
      'changed_by under $or',
      { $or: [{ confidence_level: { changed_by: 0.1 } }] },
      /filters\.\$or\.0\.confidence_level: changed_by is allowed only at the top level/,
    ],
    ['crosses inside any', { belief_states: { any: { confidence: { crosses: 0.3 } } } }, /only at the top level/],
    ['exists:false with changed_by', { confidence_level: { exists: false, changed_by: 0.1 } }, /exists: false cannot be combined/],
    ['$max_rate of zero', { $max_rate: 0 }, /filters\.\$max_rate: .*above 0/],
    ['$max_rate over the limit', { $max_rate: FILTER_LIMITS.maxRate + 1 }, /filters\.\$max_rate/],
    ['$max_rate nested', { $and: [{ $max_rate: 1 }] }, /filters\.\$and\.0\.\$max_rate: \$max_rate is allowed only at the top level/],
    ['too deep', deep, /limit nesting/],
    ['too many nodes', wide, /limit nodes/],
    [
      'too many conditions on change',
      Object.fromEntries(Array.from({ length: FILTER_LIMITS.changes + 1 }, (_, i) => [`k${i}`, { changed_by: 1 }])),
      /limit changes/,
    ],
  ];
  for (const [what, filters, names] of cases) await expectFilterRefused(c, what, filters, names);
  const list = await c.expectReply({ type: 'get_subscriptions' }, 'subscriptions_list');
  assert.deepEqual(list.data.subscriptions, []);
});

// ---- conditions on change ----------------------------------------------------

test('changed_by: delivered when the number moved at least δ since the last event delivered for that agent', { timeout: 60_000 }, async (t) => {
  // Either way, δ = 0.2: 0.5 (first: delivered, the baseline), 0.6, 0.65 (0.15 away: no), 0.7 (0.2: yes), 0.55, 0.5 (0.2 down: yes)
  assert.deepEqual(await runConfidences(t, { confidence_level: { changed_by: 0.2 } }, [0.5, 0.6, 0.65, 0.7, 0.55, 0.5], 0.9), [0, 3, 5, 99]);
});

test('changed_by down: "only when confidence falls by more than 0.2"', { timeout: 60_000 }, async (t) => {
  // 0.9 (baseline), 0.8, 0.65 (fell 0.25: yes), 0.95 (rose: no, and not the baseline), 0.44 (fell 0.21 from 0.65: yes)
  const seqs = await runConfidences(t, { confidence_level: { changed_by: { by: 0.2, direction: 'down' } } }, [0.9, 0.8, 0.65, 0.95, 0.44], 0.1);
  assert.deepEqual(seqs, [0, 2, 4, 99]);
});

test('crosses: delivered when the value goes from one side of the threshold to the other (both ways, or one)', { timeout: 60_000 }, async (t) => {
  const values = [0.5, 0.2, 0.1, 0.4, 0.3, 0.25];
  // Either way, t = 0.3 (below: < 0.3): 0.5→0.2 down, 0.1→0.4 up, 0.4→0.3 stays at/above, 0.3→0.25 down.
  assert.deepEqual(await runConfidences(t, { confidence_level: { crosses: 0.3 } }, values, 0.9), [1, 3, 5, 99]);
  // "tell me when confidence drops below 0.3": down only.
  assert.deepEqual(await runConfidences(t, { confidence_level: { crosses: { value: 0.3, direction: 'down' } } }, [...values, 0.9], 0.1), [1, 5, 99]);
});

test('conditions on change are per agent, ANDed with the stateless part, and crosses sees events the rest refused', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  await confirmed(c, { type: 'epistemic_updates', filters: { confidence_level: { crosses: 0.5 }, phase: 'run' } });
  await ep(s, 'agent_1', 1, { confidence_level: 0.9, phase: 'run' }); // first of agent_1: nothing to cross from
  await ep(s, 'agent_2', 2, { confidence_level: 0.1, phase: 'run' }); // first of agent_2
  await ep(s, 'agent_1', 3, { confidence_level: 0.2, phase: 'setup' }); // crossed, but phase refuses; still seen
  await ep(s, 'agent_1', 4, { confidence_level: 0.1, phase: 'run' }); // no crossing since 0.2
  await ep(s, 'agent_2', 5, { confidence_level: 0.8, phase: 'run' }); // agent_2 crossed up
  await ep(s, 'agent_1', 6, { phase: 'run' }); // no number: no
  await ep(s, 'agent_1', 7, { confidence_level: 0.7, phase: 'run' }); // from 0.1 (the missing one left it): up
  assert.deepEqual(await seqsUntil(c, 7), [5, 7]);
});

test('changed_by through `since`: the replay is judged in offset order, then live events go on from its state', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const values = [0.5, 0.55, 0.8, 0.7, 0.5];
  const { epoch } = await publishOne(s, { type: 'epistemic_update', agent_id: 'agent_1', data: { seq: 0, confidence_level: values[0] } });
  for (const [i, v] of values.entries()) if (i > 0) await ep(s, 'agent_1', i, { confidence_level: v });
  const c = await s.connect(RESEARCHER);
  const conf = await confirmed(c, {
    type: 'epistemic_updates',
    agent_id: 'agent_1',
    since: { offset: 0, epoch },
    filters: { confidence_level: { changed_by: 0.25 } },
  });
  assert.equal(conf.data.recovered, true);
  await ep(s, 'agent_1', 10, { confidence_level: 0.6 }); // 0.1 from the last delivered (0.5): no
  await ep(s, 'agent_1', 11, { confidence_level: 0.2 }); // 0.3: yes
  // 0.5 (baseline), 0.8 (0.3), 0.5 (0.3) replayed; then 11.
  assert.deepEqual(await seqsUntil(c, 11), [0, 2, 4, 11]);
});

for (const drop of ['terminate', 'close'] as const) {
  test(`changed_by and crosses survive a session resume (${drop}): the replay is judged against the state the session left`, { timeout: 60_000 }, async (t) => {
    const s = await startServer(t);
    const first = await s.open({ sub: 'alice', ...RESEARCHER }, { session: 'sess-change' });
    const filters = { confidence_level: { changed_by: 0.25 } };
    const crossing = { uncertainty_score: { crosses: 0.5 } };
    await confirmed(first.client, { type: 'epistemic_updates', agent_id: 'agent_1', filters });
    await confirmed(first.client, { type: 'prediction_updates', agent_id: 'agent_1', filters: crossing });
    await ep(s, 'agent_1', 1, { confidence_level: 0.9 }); // baseline, delivered
    await ep(s, 'agent_1', 2, { confidence_level: 0.8 }); // judged, refused
    const pred = (seq: number, u: number) => publishOne(s, { type: 'prediction_update', agent_id: 'agent_1', data: { seq, uncertainty_score: u } } as never);
    await pred(3, 0.4); // first: nothing to cross from
    assert.deepEqual(await seqsUntil(first.client, 1), [1]);
    await first.client.flush();
    if (drop === 'terminate') first.client.terminate();
    else first.client.ws.close(1000, 'bye');
    await first.client.closeEvent;
    await connectionCount(s.server, 0, 3000, 'the server to let go');
    // While away: 0.7 is 0.2 from the baseline 0.9 (refused); 0.6 is 0.3 (delivered on resume).
    // Without the saved state, 0.7 would pass as a first event.
    await ep(s, 'agent_1', 4, { confidence_level: 0.7 });
    await pred(5, 0.6); // crossed up from 0.4 (the saved last seen)
    await ep(s, 'agent_1', 6, { confidence_level: 0.6 });
    const second = await s.open({ sub: 'alice', ...RESEARCHER }, { session: 'sess-change' });
    assert.equal(second.hello.resumed, true);
    assert.equal(second.hello.recovered, true);
    assert.deepEqual(
      second.hello.subscriptions?.map((x) => x.filters),
      [filters, crossing],
    );
    await ep(s, 'agent_1', 7, { confidence_level: 0.5 }); // 0.1 from 0.6: no
    await ep(s, 'agent_1', 8, { confidence_level: 0.3 }); // 0.3 from 0.6: yes
    assert.deepEqual(await seqsUntil(second.client, 8), [5, 6, 8]);
  });
}

// ---- flow control ----------------------------------------------------------------

test('$max_rate: the latest wins, says how many it replaced, offsets stay true', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  // One event per 2 s per agent: a window long enough that a loaded machine publishes 1..5 inside it.
  await confirmed(c, { type: 'epistemic_updates', filters: { $max_rate: 0.5 } });
  const offsets: number[] = [];
  for (let i = 1; i <= 5; i++) offsets.push(await ep(s, 'agent_1', i, { confidence_level: i / 10 }));
  const other = await ep(s, 'agent_2', 100, {}); // another agent: its own window
  // The first went out at once; 2..4 were replaced by 5, delivered when the window closed.
  const last = await c.next('epistemic_update', (m) => seqOf(m) === 5, 6000);
  const delivered = [...eventsOf(c.received)];
  c.takeEvents();
  assert.deepEqual(delivered.map(seqOf), [1, 100]);
  assert.equal(delivered[0]!.offset, offsets[0]);
  assert.equal(delivered[1]!.offset, other);
  assert.equal((delivered[0] as Conflated<DeliveredEvent>).conflated, undefined, 'an event sent at once carries no count');
  assert.equal(last.offset, offsets[4], 'the delivered event keeps its own offset');
  assert.equal((last as Conflated<DeliveredEvent>).conflated, 3);
  // The pace holds: a new window opened when 5 went out, so 6 waits for it, alone (no count: it replaced none).
  await ep(s, 'agent_1', 6, {});
  const sixth = await c.next('epistemic_update', (m) => seqOf(m) === 6, 6000);
  assert.equal((sixth as Conflated<DeliveredEvent>).conflated, undefined);
});

test('$max_rate: an unsubscribe or a disconnect ends the windows; nothing held is sent afterwards', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1', filters: { $max_rate: 1 } });
  // The barrier: a window twice as long, opened by the same event. When it sends what it held, c's
  // window (and its timer, due first) has ended; whatever that sent is on c's socket before a ping's reply.
  const slower = await s.connect(RESEARCHER);
  await confirmed(slower, { type: 'epistemic_updates', agent_id: 'agent_1', filters: { $max_rate: 0.5 } });
  await ep(s, 'agent_1', 1, {});
  await ep(s, 'agent_1', 2, {}); // held
  await c.next('epistemic_update', (m) => seqOf(m) === 1);
  await c.expectReply({ type: 'unsubscribe', data: { subscription_type: 'epistemic_updates', agent_id: 'agent_1' } }, 'unsubscription_confirmed');
  await slower.next('epistemic_update', (m) => seqOf(m) === 2, 6000);
  await c.flush();
  assert.deepEqual(c.takeEvents().map(seqOf), []);
  await slower.expectReply({ type: 'unsubscribe', data: { subscription_type: 'epistemic_updates', agent_id: 'agent_1' } }, 'unsubscription_confirmed');
  slower.terminate();
  await connectionCount(s.server, 1, 3000);
  // A disconnect: the held event goes nowhere and the server lets go of the connection.
  const d = await s.connect(RESEARCHER);
  await confirmed(d, { type: 'epistemic_updates', agent_id: 'agent_1', filters: { $max_rate: 4 } });
  // The same barrier: a window twice as long as d's (500 ms), opened by the same event.
  const witness = await s.connect(RESEARCHER);
  await confirmed(witness, { type: 'epistemic_updates', agent_id: 'agent_1', filters: { $max_rate: 2 } });
  await ep(s, 'agent_1', 3, {});
  await ep(s, 'agent_1', 4, {});
  await d.next('epistemic_update', (m) => seqOf(m) === 3);
  d.terminate();
  await connectionCount(s.server, 2, 3000);
  // Past the window's end (250 ms): its timer finds the subscription gone and sends nothing; the node carries on.
  await witness.next('epistemic_update', (m) => seqOf(m) === 4, 6000);
  assert.equal((await c.expectReply({ type: 'ping', id: 'after' }, 'pong')).id, 'after');
});

test('$max_rate with a resume: the event held at the disconnect is replayed (nothing after the written position is lost)', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const first = await s.open({ sub: 'bob', ...RESEARCHER }, { session: 'sess-rate' });
  await confirmed(first.client, { type: 'epistemic_updates', agent_id: 'agent_1', filters: { $max_rate: 0.2 } });
  await ep(s, 'agent_1', 1, {});
  await first.client.next('epistemic_update', (m) => seqOf(m) === 1);
  await ep(s, 'agent_1', 2, {}); // held in the (5 s) window
  await ep(s, 'agent_1', 3, {}); // replaces it
  await first.client.flush();
  first.client.terminate();
  await first.client.closeEvent;
  await connectionCount(s.server, 0, 3000);
  const second = await s.open({ sub: 'bob', ...RESEARCHER }, { session: 'sess-rate' });
  assert.equal(second.hello.resumed, true);
  // A replay is not conflated: everything after the written position, in order.
  assert.deepEqual(await seqsUntil(second.client, 3), [2, 3]);
});

// ---- the SDK's builder ---------------------------------------------------------------

test('the typed builder writes the grammar, and the server accepts what it builds', { timeout: 60_000 }, async (t) => {
  const built = filter()
    .any('belief_states', filter().where('confidence', { max: 0.3 }))
    .or(where('role', 'planner'), where('role', { prefix: 'critic' }))
    .changedBy('confidence_level', 0.2, 'down')
    .where('confidence_level', { min: 0 })
    .maxRate(2)
    .build();
  assert.deepEqual(built, {
    belief_states: { any: { confidence: { max: 0.3 } } },
    $or: [{ role: 'planner' }, { role: { prefix: 'critic' } }],
    confidence_level: { changed_by: { by: 0.2, direction: 'down' }, min: 0 },
    $max_rate: 2,
  });
  assert.deepEqual(
    filter()
      .crosses('x', 0.3)
      .not(or(where('a', 1), where('b', 2)))
      .or(where('c', 1))
      .build(),
    {
      x: { crosses: 0.3 },
      $and: [{ $not: { $or: [{ a: 1 }, { b: 2 }] } }, { $or: [{ c: 1 }] }],
    },
  );
  // Compile-time: the filter fits where the SDK takes `filters`, and the operators are typed.
  const asOption: Record<string, unknown> = built;
  void asOption;
  // @ts-expect-error min takes a number
  filter().where('x', { min: '1' });
  // @ts-expect-error no such direction
  filter().changedBy('x', 0.1, 'sideways');
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  const conf = await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1', filters: built });
  assert.deepEqual(conf.data.filters, built);
  await ep(s, 'agent_1', 1, { role: 'planner', confidence_level: 0.9, belief_states: [{ confidence: 0.2 }] }); // baseline
  await ep(s, 'agent_1', 2, { role: 'critic-2', confidence_level: 0.6, belief_states: [{ confidence: 0.9 }] }); // no low belief
  await ep(s, 'agent_1', 3, { role: 'coder', confidence_level: 0.5, belief_states: [{ confidence: 0.1 }] }); // role
  await ep(s, 'agent_1', 4, { role: 'critic', confidence_level: 0.65, belief_states: [{ confidence: 0.1 }] }); // fell 0.25 from 0.9
  assert.deepEqual(await seqsUntil(c, 4), [1, 4]);
});

// ---- everywhere filters appear ----------------------------------------------------------

test('escai-realtime tail --filter passes the new forms through (any + $or + changed_by + $max_rate)', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const token = await s.token({ sub: 'cli', roles: ['developer'] });
  const admin = await s.token({ sub: 'ops', roles: ['admin'] });
  const filters = {
    belief_states: { any: { confidence: { max: 0.3 } } },
    $or: [{ role: 'planner' }, { role: { suffix: '-critic' } }],
    confidence_level: { changed_by: 0.2 },
    $max_rate: 100,
  };
  const tail = runCli(t, ['tail', '--agent', 'cli-agent', '--type', 'epistemic_updates', '--filter', JSON.stringify(filters), '--json'], {
    ESCAI_URL: s.url,
    ESCAI_TOKEN: token,
  });
  await eventually(
    async () => {
      const r = await api<{ connections: Array<{ subscriptions: Array<{ filters: unknown }> }> }>(s, 'GET', '/ws/connections', { token: admin });
      return r.body.connections.some((c) => c.subscriptions.some((x) => JSON.stringify(x.filters) === JSON.stringify(filters)));
    },
    15_000,
    'the tail to subscribe with the filter as given',
  );
  const low = [{ content: 'x', confidence: 0.2 }];
  await ep(s, 'cli-agent', 1, { role: 'planner', confidence_level: 0.9, belief_states: low }); // first: delivered
  await ep(s, 'cli-agent', 2, { role: 'coder', confidence_level: 0.5, belief_states: low }); // role
  await ep(s, 'cli-agent', 3, { role: 'plan-critic', confidence_level: 0.8, belief_states: low }); // moved 0.1 only
  await ep(s, 'cli-agent', 4, { role: 'plan-critic', confidence_level: 0.6, belief_states: low }); // moved 0.3
  await tail.waitForStdout(/"seq":4/, 10_000);
  const seqs = tail
    .stdout()
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { data: { seq: number } }).data.seq);
  assert.deepEqual(seqs, [1, 4]);
  tail.child.kill('SIGINT');
  await tail.exited;
});
