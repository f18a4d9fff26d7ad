// The SDK's positions (src/client/positions.ts), a pure unit: table tests of
// its rules and property tests (fast-check) of the guarantee it gives. Whatever
// duplicates and replays arrive, what it delivers per (stream, type, epoch) is
// strictly increasing; a replay from any earlier point delivers nothing twice
// and loses nothing; a confirmation never moves a position back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Positions, streamOf, type ArrivingEvent } from '../src/client/positions.js';

const KEYS = [
  { stream: 'agent:a1', type: 'epistemic_update' },
  { stream: 'agent:a1', type: 'pattern_alert' },
  { stream: 'agent:a2', type: 'epistemic_update' },
  { stream: 'system', type: 'system_alert' },
] as const;

const ev = (stream: string, type: string, offset: number, epoch: string, event_id = `${stream}/${type}/${epoch}/${offset}`): ArrivingEvent => ({
  stream,
  type,
  offset,
  epoch,
  event_id,
});

test("streamOf keys events as the server streams them; a user's notifications are `user`", { timeout: 10_000 }, () => {
  assert.equal(streamOf({ type: 'epistemic_update', agent_id: 'a1' }), 'agent:a1');
  assert.equal(streamOf({ type: 'pattern_alert', agent_id: 'a1' }), 'agent:a1');
  assert.equal(streamOf({ type: 'agent_activity', agent_id: 'a1' }), 'activity:a1');
  assert.equal(streamOf({ type: 'system_alert' }), 'system');
  assert.equal(streamOf({ type: 'user_notification', agent_id: 'a1' }), 'user');
});

test('the rules, one by one: offsets per epoch, a new epoch, per type, event ids, events without offsets', { timeout: 10_000 }, () => {
  const p = new Positions();
  assert.equal(p.accept(ev('agent:a1', 'epistemic_update', 5, 'E')), 'deliver');
  assert.equal(p.accept(ev('agent:a1', 'epistemic_update', 5, 'E', 'other-id')), 'duplicate', 'at the position: a duplicate, whatever its id');
  assert.equal(p.accept(ev('agent:a1', 'epistemic_update', 4, 'E')), 'duplicate', 'below it');
  assert.equal(p.accept(ev('agent:a1', 'pattern_alert', 4, 'E')), 'deliver', 'another type on the same stream has its own position');
  assert.equal(p.accept(ev('agent:a1', 'epistemic_update', 1, 'F')), 'deliver', 'a new epoch starts again');
  assert.deepEqual(p.get('agent:a1', 'epistemic_update'), { offset: 1, epoch: 'F' });
  assert.equal(p.accept(ev('agent:a1', 'epistemic_update', 9, 'F', 'agent:a1/epistemic_update/E/5')), 'duplicate', 'an id delivered before');
  assert.equal(p.accept({ stream: 'user', type: 'user_notification', event_id: 'n1' }), 'deliver', 'no offset: judged by id');
  assert.equal(p.accept({ stream: 'user', type: 'user_notification', event_id: 'n1' }), 'duplicate');
  assert.equal(p.get('user', 'user_notification'), undefined, 'an event without offset leaves no position');
});

test('get and since hand out copies; since has nothing for an all-agents subscription', { timeout: 10_000 }, () => {
  const p = new Positions();
  p.set('agent:a1', 'epistemic_update', { offset: 3, epoch: 'E' });
  const got = p.since('agent:a1', 'epistemic_update')!;
  got.offset = 100;
  assert.deepEqual(p.get('agent:a1', 'epistemic_update'), { offset: 3, epoch: 'E' });
  assert.equal(p.since(null, 'epistemic_update'), undefined);
  assert.equal(p.since('agent:a2', 'epistemic_update'), undefined);
});

test('confirm: forward only within an epoch, to any position of another epoch; nothing when a replay follows or none is given', { timeout: 10_000 }, () => {
  const p = new Positions();
  p.confirm('agent:a1', 'epistemic_update', { recovered: false, offset: 4, epoch: 'E' });
  assert.deepEqual(p.get('agent:a1', 'epistemic_update'), { offset: 4, epoch: 'E' }, 'a first confirmation sets it');
  p.confirm('agent:a1', 'epistemic_update', { offset: 2, epoch: 'E' });
  assert.deepEqual(p.get('agent:a1', 'epistemic_update'), { offset: 4, epoch: 'E' }, 'never back');
  p.confirm('agent:a1', 'epistemic_update', { recovered: true, offset: 9, epoch: 'E' });
  assert.deepEqual(p.get('agent:a1', 'epistemic_update'), { offset: 4, epoch: 'E' }, 'a replay follows: its events move it');
  p.confirm('agent:a1', 'epistemic_update', { recovered: false });
  assert.deepEqual(p.get('agent:a1', 'epistemic_update'), { offset: 4, epoch: 'E' });
  p.confirm('agent:a1', 'epistemic_update', { recovered: false, offset: 1, epoch: 'F' });
  assert.deepEqual(p.get('agent:a1', 'epistemic_update'), { offset: 1, epoch: 'F' }, 'another epoch replaces it');
  p.confirm(null, 'epistemic_update', { offset: 50, epoch: 'F' });
  assert.deepEqual(p.get('agent:a1', 'epistemic_update'), { offset: 1, epoch: 'F' }, 'an all-agents confirmation touches nothing');
});

test('the id window is bounded: the oldest id is forgotten; 0 keeps none; a bad window is refused', { timeout: 10_000 }, () => {
  const p = new Positions(2);
  for (const id of ['a', 'b', 'c']) assert.equal(p.accept({ stream: 'system', type: 'system_alert', event_id: id }), 'deliver');
  assert.equal(p.accept({ stream: 'system', type: 'system_alert', event_id: 'c' }), 'duplicate');
  assert.equal(p.accept({ stream: 'system', type: 'system_alert', event_id: 'a' }), 'deliver', 'a was evicted');
  const none = new Positions(0);
  assert.equal(none.accept({ stream: 'system', type: 'system_alert', event_id: 'x' }), 'deliver');
  assert.equal(none.accept({ stream: 'system', type: 'system_alert', event_id: 'x' }), 'deliver');
  assert.throws(() => new Positions(-1), RangeError);
  assert.throws(() => new Positions(1.5), RangeError);
});

/** Arrivals on a few keys, with many repeated offsets; `bump` 0 (one in ten) starts the key's next epoch (epochs come in blocks, as on one connection). */
const arrivals = fc.array(
  fc.record({ key: fc.integer({ min: 0, max: KEYS.length - 1 }), offset: fc.integer({ min: 0, max: 12 }), bump: fc.integer({ min: 0, max: 9 }) }),
  { maxLength: 120 },
);

test('property: whatever duplicates arrive, offsets delivered per (stream, type, epoch) rise strictly; no id twice; none lost', { timeout: 30_000 }, () => {
  fc.assert(
    fc.property(arrivals, (list) => {
      const p = new Positions();
      const generation = KEYS.map(() => 0);
      const delivered = new Map<string, number[]>();
      const ids = new Set<string>();
      const highest = new Map<string, number>(); // highest offset arrived per (key, epoch)
      for (const a of list) {
        const { stream, type } = KEYS[a.key]!;
        if (a.bump === 0) generation[a.key]!++;
        const epoch = `e${generation[a.key]}`;
        const group = `${stream}|${type}|${epoch}`;
        const isNewHigh = !highest.has(group) || a.offset > highest.get(group)!;
        highest.set(group, Math.max(a.offset, highest.get(group) ?? -1));
        const event = ev(stream, type, a.offset, epoch);
        const verdict = p.accept(event);
        if (isNewHigh) assert.equal(verdict, 'deliver', `a new high ${group}@${a.offset} is delivered`);
        if (verdict === 'deliver') {
          assert.ok(!ids.has(event.event_id!), 'no id delivered twice');
          ids.add(event.event_id!);
          const seq = delivered.get(group) ?? [];
          if (seq.length > 0) assert.ok(a.offset > seq.at(-1)!, `${group}: ${a.offset} after ${seq.at(-1)}`);
          delivered.set(group, [...seq, a.offset]);
          assert.deepEqual(p.get(stream, type), { offset: a.offset, epoch }, 'the position is the last delivered');
        }
      }
    }),
    { numRuns: 500 },
  );
});

/** Per key, a server's stream (strictly increasing offsets) and the client's view of it: live events, and replays from any earlier point. */
const replayed = fc.array(
  fc.record({ key: fc.integer({ min: 0, max: KEYS.length - 1 }), step: fc.integer({ min: 1, max: 3 }), replayFrom: fc.option(fc.nat(), { nil: undefined }) }),
  { maxLength: 100 },
);

test('property: replays from any earlier point (a resume) deliver every event exactly once, in order; since is the last one', { timeout: 30_000 }, () => {
  fc.assert(
    fc.property(replayed, (list) => {
      const p = new Positions();
      const source = KEYS.map(() => [] as number[]);
      const got = KEYS.map(() => [] as number[]);
      const feed = (k: number, offset: number) => {
        const { stream, type } = KEYS[k]!;
        if (p.accept(ev(stream, type, offset, 'E')) === 'deliver') got[k]!.push(offset);
      };
      for (const a of list) {
        const stream = source[a.key]!;
        const offset = (stream.at(-1) ?? 0) + a.step;
        stream.push(offset);
        feed(a.key, offset);
        if (a.replayFrom !== undefined) for (const old of stream.slice(a.replayFrom % stream.length)) feed(a.key, old);
      }
      assert.deepEqual(got, source, 'each event once, in order, none lost');
      KEYS.forEach(({ stream, type }, k) => {
        const last = source[k]!.at(-1);
        assert.deepEqual(p.since(stream, type), last === undefined ? undefined : { offset: last, epoch: 'E' });
      });
    }),
    { numRuns: 500 },
  );
});

test('property: a confirmation without a replay leaves the position at the max of where it was and the confirmed offset', { timeout: 30_000 }, () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('event' as const), offset: fc.integer({ min: 0, max: 30 }) }),
    fc.record({ kind: fc.constant('confirm' as const), offset: fc.integer({ min: 0, max: 30 }), recovered: fc.constantFrom(true, false, undefined) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const p = new Positions();
      let expected: number | undefined;
      let n = 0;
      for (const o of ops) {
        if (o.kind === 'event') {
          // A fresh id each time: this property is about offsets alone.
          const verdict = p.accept(ev('agent:a1', 'epistemic_update', o.offset, 'E', `id-${n++}`));
          assert.equal(verdict, expected === undefined || o.offset > expected ? 'deliver' : 'duplicate');
          if (verdict === 'deliver') expected = o.offset;
        } else {
          p.confirm('agent:a1', 'epistemic_update', { recovered: o.recovered, offset: o.offset, epoch: 'E' });
          if (o.recovered !== true) expected = Math.max(expected ?? -1, o.offset);
        }
        assert.deepEqual(p.get('agent:a1', 'epistemic_update'), expected === undefined ? undefined : { offset: expected, epoch: 'E' });
      }
    }),
    { numRuns: 500 },
  );
});
