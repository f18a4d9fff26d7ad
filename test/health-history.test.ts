// The health history's ring (src/server/http/health-history.ts), pure: order,
// capacity, clocks that step back, addresses of nodes that left; and a
// property over any sequence of samples.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { HealthHistory } from '../src/server/http/health-history.js';
import type { NodeReport } from '../src/protocol/server-messages.js';

const report = (id: string, events_in: number, address = `10.0.0.${id.length}:8000`): NodeReport => ({
  node_id: id,
  address,
  started_at: '2026-12-04T00:00:00.000Z',
  reported_at: 0,
  counters: { events_in },
});

test('health history: oldest first, the oldest overwritten at capacity, since() cuts by time', { timeout: 10_000 }, () => {
  const h = new HealthHistory(3);
  for (let t = 1; t <= 5; t++) h.record(t, [report('a', t * 10)]);
  assert.equal(h.size, 3);
  assert.deepEqual(
    h.since(-Infinity).map((s) => s.t),
    [3, 4, 5],
  );
  assert.deepEqual(
    h.since(4).map((s) => s.nodes['a']!['events_in']),
    [40, 50],
  );
  assert.deepEqual(h.since(6), []);
});

test('health history: a sample at or before the newest is ignored (a clock that stepped back)', { timeout: 10_000 }, () => {
  const h = new HealthHistory(10);
  h.record(10, [report('a', 1)]);
  h.record(10, [report('a', 2)]);
  h.record(9, [report('a', 3)]);
  h.record(11, [report('a', 4)]);
  assert.deepEqual(
    h.since(-Infinity).map((s) => [s.t, s.nodes['a']!['events_in']]),
    [
      [10, 1],
      [11, 4],
    ],
  );
});

test('health history: a sample holds copies, not the reports it was given', { timeout: 10_000 }, () => {
  const h = new HealthHistory(2);
  const r = report('a', 1);
  h.record(1, [r]);
  r.counters['events_in'] = 99;
  assert.equal(h.since(-Infinity)[0]!.nodes['a']!['events_in'], 1);
});

test('health history: addresses of the nodes in the samples asked for; a node gone from every sample is forgotten', { timeout: 10_000 }, () => {
  const h = new HealthHistory(2);
  h.record(1, [report('a', 1, 'host-a:8000'), report('b', 1, 'host-b:8000')]);
  h.record(2, [report('a', 2, 'host-a:8000')]);
  assert.deepEqual(h.addresses(h.since(-Infinity)), { a: 'host-a:8000', b: 'host-b:8000' });
  assert.deepEqual(h.addresses(h.since(2)), { a: 'host-a:8000' });
  // Two more turns without b: b is in no sample, and its address is gone with it.
  for (let t = 3; t <= 6; t++) h.record(t, [report('a', t, 'host-a:8000')]);
  assert.deepEqual(h.addresses(h.since(-Infinity)), { a: 'host-a:8000' });
  h.record(7, [report('b', 7, '')]);
  assert.deepEqual(h.addresses(h.since(7)), { b: '' }, 'b came back without an address: not the stale one');
});

test('health history (property): strictly increasing times, at most capacity, the newest accepted samples kept', { timeout: 30_000 }, () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 60 }), (capacity, times) => {
      const h = new HealthHistory(capacity);
      const accepted: number[] = [];
      for (const t of times) {
        h.record(t, [report('a', t)]);
        if (accepted.length === 0 || t > accepted[accepted.length - 1]!) accepted.push(t);
      }
      const kept = h.since(-Infinity).map((s) => s.t);
      assert.deepEqual(kept, accepted.slice(-capacity));
      for (let i = 1; i < kept.length; i++) assert.ok(kept[i]! > kept[i - 1]!);
      assert.equal(h.size, kept.length);
    }),
  );
});

test('health history: capacity must be a positive integer', { timeout: 10_000 }, () => {
  assert.throws(() => new HealthHistory(0), RangeError);
  assert.throws(() => new HealthHistory(1.5), RangeError);
});
