// Property-based tests (fast-check): whatever they are given, the filter
// compiler, the message decoder and event validation answer with a result or
// a catalogued error, never anything else, never a hang; and a compiled filter
// never throws on any event.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { DeliveredEvent } from '../src/engine/broker.js';
import { EscaiError, ErrorCodes } from '../src/protocol/codes.js';
import { decodeMessage } from '../src/server/connection/decode.js';
import { ChangeTracker } from '../src/filters/change-state.js';
import { compileFilter, compileSubscriptionFilter } from '../src/filters/compile.js';
import { compileFilter as compileFilterV1 } from './filters-v1-reference.js';
import { prepareEvents } from '../src/server/delivery/publisher.js';

const RUNS = 400;

/** Any JSON value, nested, with the keys an attacker would try among ordinary ones. */
const key = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    'min',
    'max',
    'equals',
    'contains',
    'in',
    'not_in',
    'exists',
    'a.b',
    'a..b',
    '.',
    'confidence_level',
    'belief_states.0.confidence',
    'agent_id',
    'severity',
  ),
);
const { json } = fc.letrec((tie) => ({
  json: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.integer(),
    fc.string({ maxLength: 30 }),
    fc.array(tie('json'), { maxLength: 5 }),
    fc.dictionary(key, tie('json'), { maxKeys: 5 }),
  ),
}));

/** A value JSON.parse could give for a filter: usually an object of keys and operator objects. */
const filterLike = fc.oneof(
  json,
  fc.dictionary(
    key,
    fc.oneof(json, fc.dictionary(fc.constantFrom('min', 'max', 'equals', 'contains', 'in', 'not_in', 'exists', 'regex'), json, { maxKeys: 3 })),
    { maxKeys: 6 },
  ),
);

const event = fc.record({
  type: fc.constantFrom('epistemic_update', 'pattern_alert', 'prediction_update', 'agent_status_change', 'system_alert'),
  agent_id: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }),
  severity: fc.option(fc.string({ maxLength: 8 }), { nil: undefined }),
  status: fc.option(json, { nil: undefined }),
  data: fc.option(fc.dictionary(key, json, { maxKeys: 6 }), { nil: undefined }),
});

function catalogued(err: unknown, code: keyof typeof ErrorCodes = 'VALIDATION_ERROR'): boolean {
  return err instanceof EscaiError && err.code === code;
}

test('compileFilter: any value compiles or is refused with VALIDATION_ERROR; a compiled filter never throws and answers a boolean', { timeout: 60_000 }, () => {
  fc.assert(
    fc.property(filterLike, fc.array(event, { minLength: 1, maxLength: 5 }), (filters, events) => {
      let match: (e: DeliveredEvent) => boolean;
      try {
        match = compileFilter(filters as Record<string, unknown>);
      } catch (err) {
        assert.ok(catalogued(err), `compileFilter threw ${String(err)}`);
        return;
      }
      for (const e of events) {
        const result = match({ ...e, event_id: 'x', timestamp: new Date(0).toISOString(), offset: 1, epoch: 'e' } as DeliveredEvent);
        assert.equal(typeof result, 'boolean');
      }
    }),
    { numRuns: RUNS },
  );
  // Prototype keys never read inherited properties.
  assert.throws(
    () => compileFilter({ '__proto__.polluted': 1 }),
    (err) => catalogued(err),
  );
  assert.throws(
    () => compileFilter({ 'constructor.name': { equals: 'Object' } }),
    (err) => catalogued(err),
  );
});

test('decodeMessage: any text is a message or a catalogued error, never a throw', { timeout: 60_000 }, () => {
  const message = fc.record(
    {
      type: fc.oneof(
        fc.constantFrom('subscribe', 'unsubscribe', 'ping', 'pong', 'get_subscriptions', 'get_stats', 'publish', 'refresh', 'auth'),
        fc.string(),
        json,
      ),
      data: json,
      id: json,
    },
    { requiredKeys: [] },
  );
  const text = fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary' }),
    json.map((v) => JSON.stringify(v)),
    message.map((m) => JSON.stringify(m)),
  );
  fc.assert(
    fc.property(text, (input) => {
      const decoded = decodeMessage(input);
      if (!decoded.ok) assert.ok(Object.hasOwn(ErrorCodes, decoded.code), `an uncatalogued code ${decoded.code}`);
    }),
    { numRuns: RUNS * 2 },
  );
});

test('prepareEvents: any input publishes or is refused with VALIDATION_ERROR, deep and odd input included', { timeout: 60_000 }, () => {
  const publishLike = fc.record(
    {
      type: fc.oneof(
        fc.constantFrom('epistemic_update', 'pattern_alert', 'prediction_update', 'system_alert', 'agent_status_change', 'user_notification'),
        fc.string(),
      ),
      agent_id: fc.oneof(fc.string({ maxLength: 10 }), json),
      user_id: fc.string({ maxLength: 10 }),
      status: json,
      alert_type: json,
      message: json,
      severity: fc.oneof(fc.constantFrom('info', 'high', 'critical'), json),
      notification_type: json,
      data: json,
      metadata: json,
      idempotency_key: json,
    },
    { requiredKeys: [] },
  );
  const deep = fc.integer({ min: 0, max: 3000 }).map((depth) => {
    let value: unknown = 1;
    for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { v: value };
    return { type: 'epistemic_update', agent_id: 'a', data: { deep: value } };
  });
  // Well-formed envelopes with anything inside, so that validation is passed often, not only refused.
  const valid = fc.record({
    type: fc.constantFrom('epistemic_update', 'prediction_update'),
    agent_id: fc.stringMatching(/^[A-Za-z0-9_.:@-]{1,20}$/),
    data: fc.dictionary(key, json, { maxKeys: 8 }),
  });
  const input = fc.oneof(publishLike, json, fc.array(publishLike, { maxLength: 4 }), deep, valid, fc.array(valid, { minLength: 1, maxLength: 3 }));
  fc.assert(
    fc.property(input, (value) => {
      try {
        const prepared = prepareEvents(value, { maxBatch: 3, maxEventBytes: 4096 });
        for (const p of prepared) {
          assert.ok(Buffer.byteLength(p.json) + 60 <= 4096, 'a prepared event fits the limit');
          assert.equal(JSON.stringify(JSON.parse(p.json)), p.json, 'what subscribers get reads back to the same text');
          assert.equal(p.json, JSON.stringify(p.envelope), 'and is the envelope kept in history');
        }
      } catch (err) {
        assert.ok(catalogued(err), `prepareEvents threw ${String(err)}`);
      }
    }),
    { numRuns: RUNS },
  );
});

// ---- issue 12: the richer grammar --------------------------------------------------

const fieldPath = fc.constantFrom('confidence_level', 'severity', 'agent_id', 'name', 'items', 'belief_states', 'belief_states.0.confidence', 'a.b', 'x');
const scalar = fc.oneof(fc.double({ noNaN: false }), fc.integer({ min: -3, max: 3 }), fc.string({ maxLength: 4 }), fc.boolean(), fc.constant(null));
/** Operator objects, mostly well formed, sometimes not; nested filters through any/all. */
const grammar = fc.letrec<{ filter: Record<string, unknown>; ops: Record<string, unknown> }>((tie) => ({
  ops: fc.dictionary(
    fc.constantFrom('min', 'max', 'equals', 'contains', 'in', 'not_in', 'exists', 'prefix', 'suffix', 'any', 'all', 'changed_by', 'crosses', 'bogus'),
    fc.oneof(
      { depthSize: 'small' },
      scalar,
      fc.array(scalar, { maxLength: 3 }),
      tie('filter'),
      fc.record({ by: scalar, direction: fc.constantFrom('up', 'down', 'either', 'x') }, { requiredKeys: [] }),
      fc.record({ value: scalar, direction: fc.constantFrom('up', 'down', 'either') }, { requiredKeys: [] }),
    ),
    { minKeys: 1, maxKeys: 3 },
  ),
  filter: fc.dictionary(
    fc.oneof(fieldPath, fc.constantFrom('$or', '$and', '$not', '$max_rate', '$bogus')),
    fc.oneof({ depthSize: 'small' }, scalar, tie('ops'), tie('filter'), fc.array(tie('filter'), { maxLength: 3 }), fc.double({ min: 0, max: 2000 })),
    { maxKeys: 4 },
  ),
}));

const richEvent = fc.record({
  type: fc.constantFrom('epistemic_update', 'pattern_alert', 'system_alert'),
  agent_id: fc.option(fc.constantFrom('a1', 'a2', 'a3'), { nil: undefined }),
  severity: fc.option(fc.oneof(fc.string({ maxLength: 6 }), json), { nil: undefined }),
  offset: fc.integer({ min: 1, max: 50 }),
  data: fc.option(
    fc.record(
      {
        confidence_level: scalar,
        name: fc.oneof(fc.string({ maxLength: 6 }), json),
        items: fc.oneof(fc.array(json, { maxLength: 4 }), json),
        belief_states: fc.oneof(fc.array(fc.record({ confidence: scalar }, { requiredKeys: [] }), { maxLength: 3 }), json),
        a: json,
        x: json,
      },
      { requiredKeys: [] },
    ),
    { nil: undefined },
  ),
});

function delivered(e: Record<string, unknown>): DeliveredEvent {
  return { event_id: 'x', timestamp: new Date(0).toISOString(), epoch: 'e', ...e } as unknown as DeliveredEvent;
}

test('compileSubscriptionFilter: any filter of the richer grammar compiles or is refused with VALIDATION_ERROR; the predicate and the change state never throw', {
  timeout: 60_000,
}, () => {
  let compiled = 0;
  fc.assert(
    fc.property(fc.oneof(grammar.filter, filterLike), fc.array(richEvent, { minLength: 1, maxLength: 12 }), (filters, events) => {
      let f: ReturnType<typeof compileSubscriptionFilter>;
      try {
        f = compileSubscriptionFilter(filters as Record<string, unknown>);
      } catch (err) {
        assert.ok(catalogued(err), `compileSubscriptionFilter threw ${String(err)}`);
        return;
      }
      compiled++;
      if (f.maxRate !== undefined) assert.ok(f.maxRate > 0 && f.maxRate <= 1000);
      const tracker = f.changes.length > 0 ? new ChangeTracker(f.changes) : undefined;
      for (const raw of events) {
        const e = delivered(raw);
        const m = f.match(e);
        assert.equal(typeof m, 'boolean');
        if (tracker) {
          const r = tracker.judge(e, m);
          assert.equal(typeof r, 'boolean');
          if (r) assert.ok(m, 'a condition on change never lets through what the rest refuses');
        }
      }
      if (tracker) {
        // What a session keeps reads back to the same judgement.
        const saved = JSON.parse(JSON.stringify(tracker.save())) as unknown;
        const again = new ChangeTracker(f.changes);
        again.restore(saved);
        assert.equal(again.size, tracker.size);
        // The same events again, later in their streams: the restored tracker judges each as the live one does.
        events.forEach((raw, i) => {
          const e = { ...delivered(raw), offset: 1e9 + i };
          const m = f.match(e);
          assert.equal(again.judge(e, m), tracker.judge(e, m), `event ${i} judged differently after restore`);
        });
      }
    }),
    { numRuns: RUNS },
  );
  assert.ok(compiled > RUNS / 10, `too few filters compiled (${compiled}): the generator misses the grammar`);
});

test('backward compatibility: a filter the old compiler accepted answers exactly as before on every event', { timeout: 60_000 }, () => {
  let accepted = 0;
  fc.assert(
    fc.property(fc.oneof(filterLike, grammar.filter), fc.array(fc.oneof(event, richEvent), { minLength: 1, maxLength: 6 }), (filters, events) => {
      // The wire carries only objects as filters (FiltersSchema); the old compiler also took strings and lists as objects.
      if (filters === null || typeof filters !== 'object' || Array.isArray(filters)) return;
      let old: ((e: DeliveredEvent) => boolean) | undefined;
      try {
        old = compileFilterV1(filters as Record<string, unknown>);
      } catch {
        old = undefined;
      }
      let now: ((e: DeliveredEvent) => boolean) | undefined;
      try {
        now = compileFilter(filters as Record<string, unknown>);
      } catch (err) {
        assert.ok(catalogued(err));
        now = undefined;
      }
      if (old === undefined) return;
      accepted++;
      assert.ok(now, `a filter valid before is refused now: ${JSON.stringify(filters)}`);
      for (const raw of events) {
        const e = delivered(raw as Record<string, unknown>);
        assert.equal(now(e), old(e), `${JSON.stringify(filters)} on ${JSON.stringify(e)}`);
      }
    }),
    { numRuns: RUNS * 2 },
  );
  assert.ok(accepted > RUNS / 20, `too few old-style filters (${accepted})`);
});

test('limits: a filter past any limit is refused before it costs anything, naming the limit', { timeout: 60_000 }, () => {
  const limitOf = (f: Record<string, unknown>): string => {
    try {
      compileSubscriptionFilter(f);
      return 'accepted';
    } catch (err) {
      assert.ok(catalogued(err));
      return (err as Error).message;
    }
  };
  let deep: Record<string, unknown> = { x: 1 };
  for (let i = 0; i < 7; i++) deep = { items: { any: deep } };
  assert.match(limitOf(deep), /limit nesting/);
  const many = { $and: Array.from({ length: 32 }, () => ({ $or: Array.from({ length: 32 }, (_, i) => ({ [`k${i}`]: 1 })) })) };
  assert.match(limitOf(many), /limit nodes/);
  // A condition compiled (and shared) once still counts where it is used: its nodes, and its nesting.
  const inner = { items: { any: { x: 1 } } };
  assert.equal(limitOf(inner), 'accepted');
  let wrapped: Record<string, unknown> = inner;
  for (let i = 0; i < 6; i++) wrapped = { $not: wrapped };
  assert.match(limitOf(wrapped), /limit nesting/);
  const shared = {
    $or: Array.from({ length: 32 }, (_, i) => ({ [`k${i}`]: { min: 0, max: 1, exists: true, in: [1], not_in: [2], prefix: 'p', suffix: 's' } })),
  };
  assert.match(limitOf({ $and: [shared] }), /limit nodes/);
  assert.match(limitOf({ $and: [shared] }), /limit nodes/, 'the second time too (from the cache)');
  // A huge list is refused by its length, not walked.
  assert.match(limitOf({ $or: new Array(100_000).fill({ x: 1 }) }), /\$or holds at most 32 filters/);
});

test('a change state saved with a session and restored judges later events exactly as the live state does', { timeout: 60_000 }, () => {
  const f = compileSubscriptionFilter({ confidence_level: { changed_by: 0.2 }, 'belief_states.0.confidence': { crosses: 0.5 } });
  assert.equal(f.changes.length, 2);
  const step = fc.record({
    agent: fc.constantFrom('a1', 'a2', 'a3'),
    c: fc.double({ min: 0, max: 1, noNaN: true }),
    b: fc.double({ min: 0, max: 1, noNaN: true }),
  });
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 20 }), fc.array(step, { minLength: 1, maxLength: 20 }), (before, after) => {
      let offset = 0;
      const event = (x: { agent: string; c: number; b: number }) =>
        delivered({ type: 'epistemic_update', agent_id: x.agent, offset: ++offset, data: { confidence_level: x.c, belief_states: [{ confidence: x.b }] } });
      const live = new ChangeTracker(f.changes);
      for (const x of before) {
        const e = event(x);
        live.judge(e, f.match(e));
      }
      const restored = new ChangeTracker(f.changes);
      restored.restore(JSON.parse(JSON.stringify(live.save())));
      for (const x of after) {
        const e = event(x);
        const m = f.match(e);
        assert.equal(restored.judge(e, m), live.judge(e, m), `offset ${e.offset}`);
      }
    }),
    { numRuns: RUNS },
  );
});
