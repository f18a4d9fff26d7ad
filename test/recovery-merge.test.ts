// The merge of a replay with live traffic (src/core/recovery-merge.ts), pure:
// fed live frames while a replay is read, asked what to send. Table tests for
// each rule, then a property: whatever the timing of the history read and of
// the live events around it, the client gets every event after its position
// exactly once, in order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RecoveryMerge, type OutFrame } from '../src/core/recovery-merge.js';

const OPTS = { timeout: 20_000 };

const ev = (offset: number, stream = 's', epoch = 'e1'): OutFrame<string> => ({
  frame: `${stream}#${offset}`,
  stream,
  event: { event_id: `${stream}-${epoch}-${offset}`, offset, epoch },
});
const ids = (frames: ReadonlyArray<OutFrame<string>>) => new Set(frames.map((f) => f.event!.event_id));
const frames = (out: ReadonlyArray<OutFrame<string>>) => out.map((f) => f.frame);

test('merge: sends at once when not holding; holds events and other frames while a replay is read', OPTS, () => {
  const m = new RecoveryMerge<string>();
  assert.equal(m.offerEvent('a', 's', ev(1).event!), 'send');
  assert.equal(m.offerFrame('reply'), 'send');
  assert.ok(m.idle);
  m.hold();
  assert.ok(m.holding);
  assert.equal(m.offerEvent('s#2', 's', ev(2).event!), 'held');
  assert.equal(m.offerFrame('notice'), 'held');
  assert.equal(m.offerEvent('s#3', 's', ev(3).event!), 'held');
  assert.equal(m.firstHeldOffset('s', 'e1'), 2);
  assert.equal(m.firstHeldOffset('s', 'e2'), undefined);
  assert.equal(m.firstHeldOffset('t', 'e1'), undefined);
  // The replay carried 2: the reply and replay first, then what was held minus the replayed event, in order.
  const out = m.release([{ frame: 'subscribed' }, ev(2)], ids([ev(2)]));
  assert.deepEqual(frames(out), ['subscribed', 's#2', 'notice', 's#3']);
  assert.equal(m.holding, false);
  assert.ok(m.idle, 'no positions given: nothing is suppressed');
});

test('merge: live events still in flight with a replayed id are dropped until the stream passes the replay', OPTS, () => {
  const m = new RecoveryMerge<string>();
  m.hold();
  const replay = [ev(4), ev(5), ev(6)];
  const out = m.release(replay, ids(replay), new Map([['s', { offset: 6, epoch: 'e1' }]]));
  assert.deepEqual(frames(out), ['s#4', 's#5', 's#6']);
  assert.equal(m.idle, false);
  assert.equal(m.offerEvent('s#5', 's', ev(5).event!), 'drop');
  assert.equal(m.offerEvent('s#6', 's', ev(6).event!), 'drop');
  // Another stream is not affected.
  assert.equal(m.offerEvent('t#5', 't', ev(5, 't').event!), 'send');
  // The stream passes 6: suppression ends for good (an old id after that is not compared any more).
  assert.equal(m.offerEvent('s#7', 's', ev(7).event!), 'send');
  assert.ok(m.idle);
  assert.equal(m.offerEvent('s#6', 's', ev(6).event!), 'send');
});

test('merge: a new epoch on the live path ends suppression of the old one', OPTS, () => {
  const m = new RecoveryMerge<string>();
  m.hold();
  m.release([ev(1), ev(2)], ids([ev(1), ev(2)]), new Map([['s', { offset: 2, epoch: 'e1' }]]));
  assert.equal(m.offerEvent('x', 's', ev(1, 's', 'e2').event!), 'send');
  assert.ok(m.idle);
});

test('merge: a second release drops replayed events an earlier release still suppresses', OPTS, () => {
  const m = new RecoveryMerge<string>();
  m.hold();
  m.release([ev(1), ev(2)], ids([ev(1), ev(2)]), new Map([['s', { offset: 2, epoch: 'e1' }]]));
  m.hold();
  // A second replay of the same stream (another subscription) read 2 again, and 3.
  const out = m.release([ev(2), ev(3)], ids([ev(2), ev(3)]), new Map([['s', { offset: 3, epoch: 'e1' }]]));
  assert.deepEqual(frames(out), ['s#3']);
});

test('merge: clear forgets what is held and suppressed', OPTS, () => {
  const m = new RecoveryMerge<string>();
  m.hold();
  m.offerEvent('s#1', 's', ev(1).event!);
  m.clear();
  assert.ok(m.idle);
  assert.deepEqual(m.release([], new Set()), []);
});

test('merge (property): replay + held + live give every event after the position exactly once, in order', OPTS, () => {
  // A stream of n events; the client stands at `since`; live delivery to this connection starts at `live`
  // (the subscription was indexed before history was read, so live ≤ read + 1); history is read up to `read`
  // while live events up to `releaseAt` arrive held; the rest arrive after the release, some still ≤ read.
  const scenario = fc.record({ n: fc.integer({ min: 0, max: 40 }), a: fc.nat(), b: fc.nat(), c: fc.nat(), d: fc.nat() }).map(({ n, a, b, c, d }) => {
    const since = a % (n + 1);
    const read = since + (b % (n - since + 1));
    const live = since + 1 + (c % (read - since + 1));
    const releaseAt = live - 1 + (d % (n - live + 2));
    return { n, since, read, live, releaseAt };
  });
  fc.assert(
    fc.property(scenario, ({ n, since, read, live, releaseAt }) => {
      const m = new RecoveryMerge<string>();
      const sent: string[] = [];
      const offer = (o: number) => {
        const f = ev(o);
        if (m.offerEvent(f.frame, f.stream!, f.event!) === 'send') sent.push(f.frame);
      };
      m.hold();
      for (let o = live; o <= releaseAt; o++) offer(o);
      const replay: Array<OutFrame<string>> = [];
      for (let o = since + 1; o <= read; o++) replay.push(ev(o));
      for (const f of m.release(replay, ids(replay), new Map([['s', { offset: read, epoch: 'e1' }]]))) sent.push(f.frame);
      for (let o = Math.max(live, releaseAt + 1); o <= n; o++) offer(o);
      const expected: string[] = [];
      for (let o = since + 1; o <= n; o++) expected.push(`s#${o}`);
      assert.deepEqual(sent, expected);
    }),
    { numRuns: 500 },
  );
});
