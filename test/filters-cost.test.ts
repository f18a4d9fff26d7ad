// Issue 19, item 4: a filter's cost is bounded, not only its size. The
// compiled filter carries a worst-case cost (each node 1; an operator that
// scans a list, `any`/`all`/`contains`, counts each of the at most
// FILTER_LIMITS.scanItems elements it may look at, times the inner filter's
// cost for `any`/`all`); a subscribe over the per-filter budget, or one that
// would take a connection over its budget, is refused with VALIDATION_ERROR
// naming the limit. Evaluation looks at no element past the cap, so the cost
// is a true bound on the work. Unit tests first (no sockets), then the real
// server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { DeliveredEvent } from '../src/engine/broker.js';
import { EscaiError } from '../src/protocol/codes.js';
import { compileSubscriptionFilter, CONTAINS_COST, CONTAINS_ELEMENTS, FILTER_LIMITS } from '../src/filters/compile.js';
import { FILTER_BUDGET, LATEST_WORK, REPLAY_COST_UNIT } from '../src/server/delivery/subscription-manager.js';
import {
  confirmed,
  EVENT_TYPES,
  expectFilterRefused,
  publishOne,
  startServer,
  type DeliveredEvent as Delivered,
  type TestClient,
  type TestServer,
} from './helpers.js';

const Q = FILTER_LIMITS.scanItems;
const RESEARCHER = { roles: ['researcher'] };

function delivered(data: unknown): DeliveredEvent {
  return {
    type: 'epistemic_update',
    event_id: 'x',
    agent_id: 'a1',
    timestamp: new Date(0).toISOString(),
    epoch: 'e',
    offset: 1,
    data,
  } as unknown as DeliveredEvent;
}

/** The cost a filter compiles to, or the refusal's message. */
function costOf(filters: Record<string, unknown>): number | string {
  try {
    return compileSubscriptionFilter(filters).cost;
  } catch (err) {
    assert.ok(err instanceof EscaiError && err.code === 'VALIDATION_ERROR', String(err));
    return err.message;
  }
}

/** `{items: {op: inner}}` nested `levels` deep: each level one more quantifier over a list in the element. */
function nestedQuantifiers(levels: number, op: 'any' | 'all', leaf: Record<string, unknown>): Record<string, unknown> {
  let f = leaf;
  for (let i = 0; i < levels; i++) f = { items: { [op]: f } };
  return f;
}

// ---- (a) the cost function ---------------------------------------------------

test('cost: each node 1; any/all multiply the inner cost by the elements they may scan; contains scans too', { timeout: 30_000 }, () => {
  assert.equal(compileSubscriptionFilter(null).cost, 0);
  assert.equal(compileSubscriptionFilter({}).cost, 0);
  assert.equal(costOf({ a: 1 }), 1);
  assert.equal(costOf({ a: { min: 1, max: 2 } }), 3);
  assert.equal(costOf({ $or: [{ a: 1 }, { b: 1 }] }), 3);
  assert.equal(costOf({ $not: { a: 1 } }), 2);
  assert.equal(costOf({ a: { in: Array.from({ length: 256 }, (_, i) => i) } }), 2, 'in is a set lookup: one node');
  assert.equal(costOf({ tags: { contains: 'x' } }), 2 + CONTAINS_COST, 'contains: one more per 64 characters it may search');
  assert.equal(costOf({ belief_states: { any: { content: { contains: 'refund' } } } }), 2 + Q * (2 + CONTAINS_COST), 'a text search in each element');
  // key + any + Q × (key + operator)
  assert.equal(costOf({ items: { any: { x: { max: 0.3 } } } }), 2 + Q * 2);
  assert.equal(costOf({ items: { all: { x: 1 } } }), 2 + Q);
  // An empty inner filter still visits each element (all of them, for `all`): at least 1 per element.
  assert.equal(costOf({ items: { all: {} } }), 2 + Q);
  // Nested quantifiers multiply.
  const inner = 2 + Q;
  const two = 2 + Q * inner;
  const refusal = (cost: number) => new RegExp(`^filters: cost ${cost}, over the limit of ${FILTER_LIMITS.cost} per subscription \\(limit cost`);
  if (two <= FILTER_LIMITS.cost) assert.equal(costOf(nestedQuantifiers(2, 'any', { x: 1 })), two);
  else assert.match(String(costOf(nestedQuantifiers(2, 'any', { x: 1 }))), refusal(two));
  assert.match(String(costOf(nestedQuantifiers(3, 'all', { x: 1 }))), refusal(2 + Q * two), 'three nested quantifiers are over the budget');
  // Sharing a compiled condition does not make it cheaper: the same cost from the cache.
  const f = { $or: [{ items: { any: { x: 1, y: 2 } } }, { z: 1 }] };
  assert.equal(costOf(f), costOf(structuredClone(f)));
  assert.equal(costOf(f), 1 + (2 + Q * 2) + 1);
  assert.equal(costOf({ $and: [f] }), 1 + (costOf(f) as number));
});

test('cost: the documented examples are accepted, and so is the heaviest flat filter', { timeout: 30_000 }, () => {
  const examples: Array<Record<string, unknown>> = [
    // A text search in the elements of a list, and a quantifier inside a quantifier over one condition, fit.
    { belief_states: { any: { content: { contains: 'refund' } } } },
    { belief_states: { any: { confidence: { max: 0.3 } } } },
    { severity: { in: ['high', 'critical'] }, $not: { description: { suffix: '[test]' } } },
    { $or: [{ pattern_name: { prefix: 'retry-' } }, { severity: 'critical' }] },
    { confidence_level: { changed_by: { by: 0.2, direction: 'down' } } },
    { confidence_level: { crosses: { value: 0.5, direction: 'down' } } },
    { $max_rate: 2 },
    {
      belief_states: { any: { confidence: { max: 0.3 } } },
      $or: [{ role: 'planner' }, { role: { prefix: 'critic' } }],
      confidence_level: { changed_by: { by: 0.2, direction: 'down' } },
      $max_rate: 2,
    },
    // bench/filters.ts's compound filter
    {
      belief_states: { any: { confidence: { min: 0.5 }, belief_type: { in: ['factual', 'predictive'] } } },
      $or: [{ 'knowledge_state.confidence': { min: 0.5 } }, { role: { prefix: 'planner' } }],
      confidence_level: { changed_by: 0.01 },
    },
  ];
  for (const f of examples) assert.equal(typeof costOf(f), 'number', `refused: ${JSON.stringify(f)} → ${costOf(f)}`);
  // Without a list scan a filter costs at most its nodes: every filter within the node limit fits.
  const flat = { $and: Array.from({ length: 8 }, (_, i) => ({ $or: Array.from({ length: 15 }, (_, j) => ({ [`k${i}_${j}`]: { min: 0 } })) })) };
  assert.ok((costOf(flat) as number) <= FILTER_LIMITS.nodes);
});

// Events for the properties: lists of any length up to well past the cap, of
// objects with lists inside, of primitives.
const leafValue = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constantFrom('a', 'b', 'ab'), fc.boolean());
const element = fc.letrec<{ el: unknown }>((tie) => ({
  el: fc.oneof(
    { depthSize: 'small', maxDepth: 3 },
    leafValue,
    // Lists in an element may be long too (of primitives: long lists of long lists would make the cases huge).
    fc.record({ x: leafValue, y: leafValue, items: fc.oneof(fc.array(tie('el'), { maxLength: 4 }), longList(leafValue)) }, { requiredKeys: [] }),
  ),
}));
/**
 * A list around or past the cap: one element of its own just before, at or
 * after the cap's edge, the rest one repeated element (so that the generator
 * stays fast).
 */
function longList(item: fc.Arbitrary<unknown>, cap: number = Q): fc.Arbitrary<unknown[]> {
  return fc
    .tuple(fc.integer({ min: cap - 3, max: cap + 2 }), item, item, fc.integer({ min: 0, max: Q * 3 }))
    .map(([at, fill, special, after]) => [...Array.from({ length: at }, () => fill), special, ...Array.from({ length: after }, () => fill)]);
}
const eventData = fc.record(
  {
    items: fc.oneof(fc.array(element.el, { maxLength: 4 }), longList(element.el)),
    x: leafValue,
    tags: fc.oneof(longList(leafValue), longList(leafValue, CONTAINS_ELEMENTS)),
  },
  { requiredKeys: [] },
);

// Filters over those lists: no numeric path segment, so every element read is a scan's.
const path = fc.constantFrom('items', 'x', 'y', 'tags');
const filterArb = fc.letrec<{ filter: Record<string, unknown>; cond: unknown }>((tie) => ({
  cond: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    leafValue,
    fc.record({ min: fc.integer({ min: 0, max: 3 }) }),
    fc.record({ equals: leafValue }),
    fc.record({ contains: fc.constantFrom('a', 'b', 1) }),
    fc.record({ exists: fc.boolean() }),
    fc.record({ any: tie('filter') }),
    fc.record({ all: tie('filter') }),
  ),
  filter: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    fc.dictionary(path, tie('cond'), { minKeys: 1, maxKeys: 3 }),
    fc.record({ $or: fc.array(tie('filter'), { minLength: 1, maxLength: 3 }) }),
    fc.record({ $not: tie('filter') }),
  ),
}));

/** Filters that scan a list at the top (half the cases), or any filter of the grammar above. */
const scanning = fc.oneof(
  filterArb.filter,
  fc.record({ items: fc.oneof(fc.record({ any: filterArb.filter }), fc.record({ all: filterArb.filter })) }),
  fc.record({ tags: fc.record({ contains: fc.constantFrom('a', 'b', 1) }) }),
);

/** A deep copy of `value` in proxies that count every property read, and the highest list index read. */
function counted(value: unknown): { value: unknown; reads: () => number; highestIndex: () => number } {
  let reads = 0;
  let highest = -1;
  const wrap = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object') return v;
    const isList = Array.isArray(v);
    const copy: unknown = isList ? (v as unknown[]).map(wrap) : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, wrap(x)]));
    return new Proxy(copy as object, {
      get(target, key, receiver) {
        reads++;
        if (isList && typeof key === 'string' && /^\d+$/.test(key)) highest = Math.max(highest, Number(key));
        return Reflect.get(target, key, receiver);
      },
    });
  };
  return { value: wrap(value), reads: () => reads, highestIndex: () => highest };
}

/** `value` with every list cut to its first `n` elements. */
function truncated(value: unknown, n: number): unknown {
  if (Array.isArray(value)) return value.slice(0, n).map((v) => truncated(v, n));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, truncated(v, n)]));
  return value;
}

/** The compiled filter, or undefined when it is refused, which must be a VALIDATION_ERROR (over a limit), never anything else. */
function compiledOrRefused(filters: Record<string, unknown>): ReturnType<typeof compileSubscriptionFilter> | undefined {
  try {
    return compileSubscriptionFilter(filters);
  } catch (err) {
    assert.ok(err instanceof EscaiError && err.code === 'VALIDATION_ERROR', String(err));
    return undefined;
  }
}

test('property: evaluation reads no list element past the cap, and its reads stay within the cost bound', { timeout: 60_000 }, () => {
  let compiled = 0;
  let reachedCap = 0;
  fc.assert(
    fc.property(scanning, eventData, (filters, data) => {
      const f = compiledOrRefused(filters);
      if (!f) return;
      compiled++;
      const probe = counted(data);
      f.match(delivered(probe.value));
      // Never an element at or past the cap (the filters name no index, so every element read is a scan's).
      assert.ok(probe.highestIndex() < Q, `read element ${probe.highestIndex()} of a list, cap ${Q}: ${JSON.stringify(filters)}`);
      // The cost bounds the work: a node reads at most its path (FILTER_LIMITS.depth steps, and the envelope, and `data`), a scan the length and each element.
      assert.ok(probe.reads() <= (FILTER_LIMITS.depth + 3) * f.cost, `${probe.reads()} reads for cost ${f.cost}: ${JSON.stringify(filters)}`);
      // A scan ran to its cap: any/all's (scanItems), or a contains' on short elements (CONTAINS_ELEMENTS).
      if (probe.highestIndex() === Q - 1 || probe.highestIndex() === CONTAINS_ELEMENTS - 1) reachedCap++;
    }),
    { numRuns: 400 },
  );
  assert.ok(compiled > 100, `too few filters compiled (${compiled})`);
  assert.ok(reachedCap > 10, `only ${reachedCap} evaluations scanned up to a cap: the generator misses long lists`);
});

test('property: a list longer than the cap is judged on its first scanItems elements, as if cut there', { timeout: 60_000 }, () => {
  let differs = 0;
  fc.assert(
    fc.property(scanning, eventData, (filters, data) => {
      const f = compiledOrRefused(filters);
      if (!f) return;
      const whole = f.match(delivered(data));
      assert.equal(whole, f.match(delivered(truncated(data, Q))), JSON.stringify(filters));
      // One element earlier than a cap (any/all: scanItems; contains on a list: CONTAINS_ELEMENTS) may change the answer.
      if (whole !== f.match(delivered(truncated(data, Q - 1))) || whole !== f.match(delivered(truncated(data, CONTAINS_ELEMENTS - 1)))) differs++;
    }),
    { numRuns: 1500 },
  );
  // The property is not vacuous: cutting one element earlier than a cap changes some answers.
  assert.ok(differs > 0, 'no answer depended on the last element within a cap');
});

test('cap: any and all see exactly the first scanItems elements (named cases)', { timeout: 30_000 }, () => {
  const anyLow = compileSubscriptionFilter({ items: { any: { x: { max: 0 } } } });
  const allHigh = compileSubscriptionFilter({ items: { all: { x: { min: 1 } } } });
  const tagged = compileSubscriptionFilter({ tags: { contains: 'needle' } });
  const list = (lowAt: number, length: number) => Array.from({ length }, (_, i) => ({ x: i === lowAt ? 0 : 1 }));
  assert.equal(anyLow.match(delivered({ items: list(Q - 1, Q * 10) })), true, 'the last element within the cap is seen');
  assert.equal(anyLow.match(delivered({ items: list(Q, Q * 10) })), false, 'the first element past the cap is not');
  assert.equal(allHigh.match(delivered({ items: list(Q - 1, Q * 10) })), false);
  assert.equal(allHigh.match(delivered({ items: list(Q, Q * 10) })), true, 'all holds on the first scanItems elements');
  const tags = (at: number) => Array.from({ length: Q * 10 }, (_, i) => (i === at ? 'a needle' : 'hay'));
  // contains on a list: each element counts at least 64 characters of its 1,024, so it visits CONTAINS_ELEMENTS of them.
  assert.equal(tagged.match(delivered({ tags: tags(CONTAINS_ELEMENTS - 1) })), true);
  assert.equal(tagged.match(delivered({ tags: tags(CONTAINS_ELEMENTS) })), false);
  const objects = (at: number) => Array.from({ length: Q }, (_, i) => (i === at ? 'a needle' : { hay: 1 }));
  assert.equal(tagged.match(delivered({ tags: objects(CONTAINS_ELEMENTS - 1) })), true, 'objects are visited (and count) too');
  assert.equal(tagged.match(delivered({ tags: objects(CONTAINS_ELEMENTS) })), false);
  assert.equal(tagged.match(delivered({ tags: 'a needle in text' })), true, 'on a string, contains is a substring test as before');
  // Text: at most scanText characters searched, a string's first ones, or a list's elements' in turn.
  const T = FILTER_LIMITS.scanText;
  assert.equal(tagged.match(delivered({ tags: `${'x'.repeat(T - 6)}needle and more` })), true, 'a match ending at the last character searched');
  assert.equal(tagged.match(delivered({ tags: `${'x'.repeat(T - 5)}needle` })), false, 'a match ending past it');
  const chunk = 'y'.repeat(T / 4);
  assert.equal(tagged.match(delivered({ tags: [chunk, chunk, chunk, `${'y'.repeat(T / 4 - 6)}needle`] })), true);
  assert.equal(tagged.match(delivered({ tags: [chunk, chunk, chunk, chunk, 'needle'] })), false, 'the list had used up its characters');
});

test('the worst allowed filter, on an event with a 10,000-element list, reads only the first scanItems elements', { timeout: 60_000 }, () => {
  // The stalling shape, scaled to the budget: a quantifier over a long list whose inner filter fills the budget.
  const innerKeys = Math.min(FILTER_LIMITS.keys, Math.floor((FILTER_LIMITS.cost - 2) / Q / 3));
  const worst = { items: { all: Object.fromEntries(Array.from({ length: innerKeys }, (_, i) => [`k${i}`, { min: -1, max: 1e9 }])) } };
  const f = compileSubscriptionFilter(worst);
  assert.ok(f.cost <= FILTER_LIMITS.cost && f.cost > FILTER_LIMITS.cost / 2, `cost ${f.cost}`);
  const element = Object.fromEntries(Array.from({ length: innerKeys }, (_, i) => [`k${i}`, i]));
  // Uncapped, this shape would read 10,000 elements × innerKeys conditions per event (the work is counted, not timed).
  const probe = counted({ items: Array.from({ length: 10_000 }, () => ({ ...element })) });
  assert.equal(f.match(delivered(probe.value as Record<string, unknown>)), true);
  assert.equal(probe.highestIndex(), Q - 1, 'no element past the cap was read');
  assert.ok(probe.reads() <= (FILTER_LIMITS.depth + 3) * f.cost, `${probe.reads()} reads for cost ${f.cost}`);
});

// ---- (b) the real server -------------------------------------------------------

/** Publishes an epistemic update of agent_1 whose data is `data` plus a `seq`. */
async function ep(s: TestServer, seq: number, data: Record<string, unknown>, agentId = 'agent_1'): Promise<void> {
  await publishOne(s, { type: 'epistemic_update', agent_id: agentId, data: { agent_id: agentId, seq, ...data } });
}

async function seqsUntil(c: TestClient, last: number): Promise<unknown[]> {
  const seqOf = (m: Delivered): unknown => m.data?.['seq'];
  const lastOne = await c.next(EVENT_TYPES, (m) => seqOf(m) === last, 5000);
  return [...c.takeEvents(), lastOne].map(seqOf);
}

test('server: the stalling shape (nested any/all, a few hundred nodes) is refused with VALIDATION_ERROR naming the cost limit', {
  timeout: 30_000,
}, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  // any over a list, all over a list in each element, a $or of many conditions inside: ~200 nodes.
  const branches = Array.from({ length: 30 }, (_, i) => ({ [`k${i}`]: { min: 0, max: 1, not_in: [i] } }));
  const stalling = { items: { any: { sub: { all: { $or: branches } } } } };
  await expectFilterRefused(
    c,
    'nested any/all',
    stalling,
    new RegExp(`^filters: cost \\d+, over the limit of ${FILTER_LIMITS.cost} per subscription \\(limit cost`),
  );
  // Three nested quantifiers over the smallest inner filter are over the budget too.
  await expectFilterRefused(c, 'three nested any', nestedQuantifiers(3, 'any', { x: 1 }), /limit cost/);
  // The connection is still usable, and a filter at the budget is accepted and works.
  const innerKeys = Math.min(FILTER_LIMITS.keys, Math.floor((FILTER_LIMITS.cost - 2) / Q / 3));
  const allowed = { items: { any: Object.fromEntries(Array.from({ length: innerKeys }, (_, i) => [`k${i}`, { equals: 1, exists: true }])) } };
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1', filters: allowed });
  const hit = Object.fromEntries(Array.from({ length: innerKeys }, (_, i) => [`k${i}`, 1]));
  const miss = { ...hit, k0: 0 };
  const list = (hitAt: number) => Array.from({ length: Q * 2 }, (_, i) => (i === hitAt ? hit : miss)); // within ESCAI_MAX_EVENT_BYTES
  await ep(s, 1, { items: list(Q - 1) }); // delivered: within the cap
  await ep(s, 2, { items: list(Q) }); // not delivered: past the cap, not scanned
  await ep(s, 3, { items: list(0) });
  assert.deepEqual(await seqsUntil(c, 3), [1, 3]);
});

test('server: latest looks back fewer events for a costly filter (LATEST_WORK / cost), the whole window for a cheap one', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { historySize: 1000 });
  const c = await s.connect(RESEARCHER);
  const innerKeys = Math.min(FILTER_LIMITS.keys, Math.floor((FILTER_LIMITS.cost - 2) / Q / 3));
  const costly = { items: { any: Object.fromEntries(Array.from({ length: innerKeys }, (_, i) => [`k${i}`, { equals: 1, exists: true }])) } };
  const reach = Math.floor(LATEST_WORK / compileSubscriptionFilter(costly).cost);
  assert.ok(reach < 100 && reach >= 1, `reach ${reach}`);
  const hit = Object.fromEntries(Array.from({ length: innerKeys }, (_, i) => [`k${i}`, 1]));
  // The one event both filters want, then 100 newer ones neither wants: it lies beyond the costly filter's reach.
  await ep(s, 0, { marker: 'hit', items: [hit] });
  for (let i = 1; i <= 100; i++) await ep(s, i, { marker: 'miss', items: [{ ...hit, k0: 0 }] });
  const cheap = await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1', filters: { marker: 'hit' }, latest: true });
  const found = await c.next('epistemic_update', 5000);
  assert.equal(found.data?.['seq'], 0, `the cheap filter finds it 101 events back: ${JSON.stringify(found).slice(0, 300)}`);
  assert.equal(cheap.data.offset, found.offset - 1);
  const other = await s.connect(RESEARCHER);
  const limited = await confirmed(other, { type: 'epistemic_updates', agent_id: 'agent_1', filters: costly, latest: true });
  assert.equal(limited.data.offset, 101, "no latest event: the confirmation names the stream's end");
  await ep(s, 200, { marker: 'hit', items: [hit] });
  const first = await other.next('epistemic_update', 5000);
  assert.equal(first.data?.['seq'], 200, 'the first event is the live one, not an old latest');
  assert.notEqual((first as { latest?: boolean }).latest, true);
});

test('server: a replay through a costly filter counts for more of the replay budget, and a spent budget reads nothing', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { replayBudget: 1000, historySize: 1000 });
  const innerKeys = Math.min(FILTER_LIMITS.keys, Math.floor((FILTER_LIMITS.cost - 2) / Q / 3));
  const costly = { items: { any: Object.fromEntries(Array.from({ length: innerKeys }, (_, i) => [`k${i}`, { equals: 1, exists: true }])) } };
  const weight = compileSubscriptionFilter(costly).cost / REPLAY_COST_UNIT;
  assert.ok(weight > 7, `weight ${weight}`);
  const hit = Object.fromEntries(Array.from({ length: innerKeys }, (_, i) => [`k${i}`, 1]));
  for (let i = 0; i < 300; i++) await ep(s, i, { items: [hit] });
  const replays = async (user: string, filters: Record<string, unknown> | undefined, times: number): Promise<boolean[]> => {
    const c = await s.connect({ sub: user, roles: ['researcher'] }, { session: user });
    const start = await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1', ...(filters ? { filters } : {}) });
    const outcomes: boolean[] = [];
    for (let i = 0; i < times; i++) {
      await c.request({ type: 'unsubscribe', data: { subscription_type: 'epistemic_updates', agent_id: 'agent_1' } }, 'unsubscription_confirmed');
      const conf = await confirmed(c, {
        type: 'epistemic_updates',
        agent_id: 'agent_1',
        ...(filters ? { filters } : {}),
        since: { offset: 0, epoch: start.data.epoch! },
      });
      outcomes.push(conf.data.recovered);
      await c.drain();
    }
    return outcomes;
  };
  // A budget of 1,000 events a second, 2,000 at once: 300 events through the costly filter count ≈ 2,500, so only the first fits.
  assert.deepEqual(await replays('costly', costly, 2), [true, false]);
  // Through no filter they count 300: the first six fit.
  assert.deepEqual((await replays('plain', undefined, 6)).slice(0, 6), [true, true, true, true, true, true]);
});

test('server: many cheap filters on one connection hit the per-connection cost budget, named; unsubscribing frees it', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect({ roles: ['researcher'] });
  // A cheap, legitimate filter (one quantifier, two conditions): well under the per-filter limit.
  const cheap = { belief_states: { any: { confidence: { max: 0.3 }, belief_type: 'factual' } } };
  const each = compileSubscriptionFilter(cheap).cost;
  assert.ok(each <= FILTER_LIMITS.cost / 8, `cost ${each}`);
  const fits = Math.floor(FILTER_BUDGET.cost / each);
  assert.ok(fits < 100, 'the budget binds before the subscription count does');
  for (let i = 0; i < fits; i++) await confirmed(c, { type: 'epistemic_updates', agent_id: `agent_${i}`, filters: cheap });
  const reply = await c.subscribe({ type: 'epistemic_updates', agent_id: 'agent_over', filters: cheap });
  assert.equal(reply.type, 'error', JSON.stringify(reply));
  assert.equal(reply.code, 'VALIDATION_ERROR');
  assert.equal(
    reply.message,
    `filters: the connection's filters would cost ${each * (fits + 1)}, over the limit of ${FILTER_BUDGET.cost} per connection (limit connection cost)`,
  );
  // Unfiltered subscriptions cost no filter work: still accepted.
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_plain' });
  // Another connection has its own budget.
  const other = await s.connect({ roles: ['researcher'] });
  await confirmed(other, { type: 'epistemic_updates', agent_id: 'agent_over', filters: cheap });
  // Unsubscribing one frees its cost.
  await c.expectReply({ type: 'unsubscribe', data: { subscription_type: 'epistemic_updates', agent_id: 'agent_0' } }, 'unsubscription_confirmed');
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_over', filters: cheap });
  // And the accepted ones filter as asked.
  await ep(s, 1, { belief_states: [{ confidence: 0.9, belief_type: 'factual' }] }, 'agent_over');
  await ep(s, 2, { belief_states: [{ confidence: 0.2, belief_type: 'factual' }] }, 'agent_over');
  assert.deepEqual(await seqsUntil(c, 2), [2]);
});
