// Property-based tests (fast-check): whatever they are given, the filter
// compiler, the message decoder and event validation answer with a result or
// a catalogued error, never anything else, never a hang; and a compiled filter
// never throws on any event.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { DeliveredEvent } from '../src/engine/broker.js';
import { EscaiError, ErrorCodes } from '../src/protocol/codes.js';
import { decodeMessage } from '../src/server/handlers.js';
import { compileFilter } from '../src/server/filters.js';
import { prepareEvents } from '../src/server/publisher.js';

const RUNS = 400;

/** Any JSON value, nested, with the keys an attacker would try among ordinary ones. */
const key = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'min', 'max', 'equals', 'contains', 'in', 'not_in', 'exists', 'a.b', 'a..b', '.', 'confidence_level', 'belief_states.0.confidence', 'agent_id', 'severity'),
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
  assert.throws(() => compileFilter({ '__proto__.polluted': 1 }), (err) => catalogued(err));
  assert.throws(() => compileFilter({ 'constructor.name': { equals: 'Object' } }), (err) => catalogued(err));
});

test('decodeMessage: any text is a message or a catalogued error, never a throw', { timeout: 60_000 }, () => {
  const message = fc.record(
    { type: fc.oneof(fc.constantFrom('subscribe', 'unsubscribe', 'ping', 'pong', 'get_subscriptions', 'get_stats', 'publish', 'refresh', 'auth'), fc.string(), json), data: json, id: json },
    { requiredKeys: [] },
  );
  const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), json.map((v) => JSON.stringify(v)), message.map((m) => JSON.stringify(m)));
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
      type: fc.oneof(fc.constantFrom('epistemic_update', 'pattern_alert', 'prediction_update', 'system_alert', 'agent_status_change', 'user_notification'), fc.string()),
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
