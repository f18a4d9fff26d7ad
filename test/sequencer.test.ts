// The per-stream sequencer (src/core/sequencer.ts), on its own: no Redis, no
// sockets. Table tests for each rule (in order, duplicate, gap filled, gap
// history cannot cover, epoch change, arrivals during a fill, quiet-stream
// checks), then properties over random arrivals (reordered, repeated,
// dropped) against a model store: what is delivered is the stream in offset
// order, each event once, with a gap only where a loss was reported.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { StreamSequencer, UNKNOWN_EPOCH, type FillPage, type FillResult, type Sequenced } from '../src/core/sequencer.js';

interface Ev extends Sequenced {
  /** Tells copies apart: the same offset arriving twice is two objects. */
  copy?: number;
}

const ev = (offset: number, epoch = 'e1'): Ev => ({ offset, epoch });
const offsets = (events: readonly Sequenced[]): number[] => events.map((e) => e.offset);

/** A complete page of `epoch` holding offsets from..to, the stream standing at `at` (default `to`). */
function page(from: number, to: number, epoch = 'e1', at = to, complete = true): FillPage<Ev> {
  const events: Ev[] = [];
  for (let o = from; o <= to; o++) events.push(ev(o, epoch));
  return { events, position: { offset: at, epoch }, complete };
}

/** A fill's result that is not 'again'. */
function done(result: FillResult<Ev> | 'again'): FillResult<Ev> {
  assert.notEqual(result, 'again', 'the fill wanted another read');
  return result as FillResult<Ev>;
}

const TABLE = { timeout: 10_000 };

describe('sequencer: table', TABLE, () => {
  test('in order: each next offset is delivered at once', TABLE, () => {
    const seq = new StreamSequencer<Ev>({ offset: 0, epoch: 'e1' });
    assert.deepEqual(
      [1, 2, 3].map((o) => seq.push(ev(o))),
      ['deliver', 'deliver', 'deliver'],
    );
    assert.deepEqual(seq.position, { offset: 3, epoch: 'e1' });
    assert.equal(seq.filling, false);
  });

  test('tracking from a position: the next offset after it is delivered, the ones at or before it are duplicates', TABLE, () => {
    const seq = new StreamSequencer<Ev>({ offset: 10, epoch: 'e1' });
    assert.equal(seq.push(ev(10)), 'duplicate');
    assert.equal(seq.push(ev(3)), 'duplicate');
    assert.equal(seq.push(ev(11)), 'deliver');
    assert.equal(seq.push(ev(11)), 'duplicate', 'a repeat of the last one');
    assert.deepEqual(seq.position, { offset: 11, epoch: 'e1' });
  });

  test('a gap starts a fill; the page is delivered, then what queued (duplicates of the page dropped)', TABLE, () => {
    const seq = new StreamSequencer<Ev>({ offset: 0, epoch: 'e1' });
    assert.equal(seq.push(ev(1)), 'deliver');
    assert.equal(seq.push(ev(4)), 'fill');
    assert.equal(seq.filling, true);
    assert.equal(seq.fillSince, 1);
    // Arrivals while the read is out queue behind it, whatever they are.
    assert.equal(seq.push(ev(5)), 'queued');
    assert.equal(seq.push(ev(3)), 'queued');
    assert.equal(seq.push(ev(1)), 'queued');
    assert.equal(seq.queued, 4);
    const result = done(seq.filled(page(2, 4)));
    assert.equal(result.lost, undefined);
    assert.deepEqual(offsets(result.deliver), [2, 3, 4]);
    assert.equal(result.skipped, 0);
    assert.equal(seq.filling, false);
    const drained = seq.drain();
    assert.deepEqual(offsets(drained.deliver), [5]);
    assert.deepEqual(drained.drops, ['duplicate', 'duplicate', 'duplicate'], '4 (from the page), 3 and 1');
    assert.equal(drained.fill, false);
    assert.equal(seq.queued, 0);
    assert.deepEqual(seq.position, { offset: 5, epoch: 'e1' });
  });

  test('a gap history no longer covers: the loss is reported where delivery resumes, then what history holds', TABLE, () => {
    const seq = new StreamSequencer<Ev>({ offset: 2, epoch: 'e1' });
    assert.equal(seq.push(ev(30)), 'fill');
    assert.equal(seq.fillSince, 2);
    // History keeps 26..30 only: 3..25 are gone.
    const result = done(seq.filled(page(26, 30, 'e1', 30, false)));
    assert.deepEqual(result.lost, { offset: 25, epoch: 'e1' });
    assert.deepEqual(offsets(result.deliver), [26, 27, 28, 29, 30]);
    assert.deepEqual(seq.drain().drops, ['duplicate'], 'the queued 30 came in the page');
    assert.equal(seq.push(ev(31)), 'deliver');
  });

  test("a gap history holds nothing of: the loss is reported at the stream's position", TABLE, () => {
    const seq = new StreamSequencer<Ev>({ offset: 2, epoch: 'e1' });
    assert.equal(seq.push(ev(9)), 'fill');
    const result = done(seq.filled({ events: [], position: { offset: 9, epoch: 'e1' }, complete: false }));
    assert.deepEqual(result.lost, { offset: 9, epoch: 'e1' });
    assert.deepEqual(result.deliver, []);
    assert.deepEqual(seq.drain(), { deliver: [], drops: ['duplicate'], fill: false });
    assert.deepEqual(seq.position, { offset: 9, epoch: 'e1' });
  });

  test('page events that are not next are skipped and counted', TABLE, () => {
    const seq = new StreamSequencer<Ev>({ offset: 1, epoch: 'e1' });
    assert.equal(seq.push(ev(3)), 'fill');
    const p = page(2, 3);
    const result = done(seq.filled({ ...p, events: [ev(1), ...p.events, ev(3)] }));
    assert.deepEqual(offsets(result.deliver), [2, 3]);
    assert.equal(result.skipped, 2);
  });

  test("an epoch change: read again from the new epoch's start, report the loss, deliver it; the old epoch is stale after", TABLE, () => {
    const seq = new StreamSequencer<Ev>({ offset: 5, epoch: 'e1' });
    assert.equal(seq.push(ev(2, 'e2')), 'fill');
    assert.equal(seq.fillSince, 5);
    // The first read (after 5) shows another epoch: the sequencer wants e2 from its start.
    assert.equal(seq.filled({ events: [], position: { offset: 3, epoch: 'e2' }, complete: true }), 'again');
    assert.equal(seq.filling, true);
    assert.equal(seq.fillSince, 0);
    assert.equal(seq.push(ev(6, 'e1')), 'queued', 'while the fill runs, even the stale one queues');
    const result = done(seq.filled(page(1, 3, 'e2')));
    assert.deepEqual(result.lost, { offset: 0, epoch: 'e2' });
    assert.deepEqual(offsets(result.deliver), [1, 2, 3]);
    assert.deepEqual(seq.position, { offset: 3, epoch: 'e2' });
    assert.deepEqual(seq.drain().drops, ['duplicate', 'stale_epoch']);
    assert.equal(seq.push(ev(7, 'e1')), 'stale_epoch', 'published before the reset');
    assert.equal(seq.push(ev(4, 'e2')), 'deliver');
  });

  test("an arrival of an epoch older than the store's (two resets back) is stale after one fill, not a fill forever", TABLE, () => {
    const seq = new StreamSequencer<Ev>({ offset: 5, epoch: 'e3' });
    // e1 is neither ours nor the epoch of our last reset: only the store can tell it is older.
    assert.equal(seq.push(ev(9, 'e1')), 'fill');
    // The store, read after that arrival, is still at e3: nothing new to deliver, and e1 is past.
    const result = done(seq.filled(page(6, 5, 'e3', 5)));
    assert.equal(result.lost, undefined);
    assert.deepEqual(result.deliver, []);
    const drained = seq.drain();
    assert.deepEqual(drained.drops, ['stale_epoch']);
    assert.equal(drained.fill, false, 'the same fill again, after every drain, before the fix');
    assert.equal(seq.filling, false);
    assert.equal(seq.push(ev(10, 'e1')), 'stale_epoch');
    assert.equal(seq.push(ev(6, 'e3')), 'deliver');
  });

  test('an epoch change on a stream that never delivered an event reports no loss (nothing was ours to deliver)', TABLE, () => {
    const seq = new StreamSequencer<Ev>({ offset: 0, epoch: 'e1' });
    assert.equal(seq.push(ev(2, 'e2')), 'fill');
    assert.equal(seq.filled(page(1, 2, 'e2')), 'again');
    const result = done(seq.filled(page(1, 2, 'e2')));
    assert.equal(result.lost, undefined);
    assert.deepEqual(offsets(result.deliver), [1, 2]);
  });

  test("a stream tracked before it had an epoch adopts its first event's", TABLE, () => {
    const seq = new StreamSequencer<Ev>({ offset: 0, epoch: UNKNOWN_EPOCH });
    assert.equal(seq.push(ev(1, 'e7')), 'deliver');
    assert.deepEqual(seq.position, { offset: 1, epoch: 'e7' });
    assert.equal(seq.push(ev(2, 'e7')), 'deliver');
    // Its first arrival past offset 1: the fill learns the epoch (no loss: nothing was delivered before).
    const late = new StreamSequencer<Ev>({ offset: 0, epoch: UNKNOWN_EPOCH });
    assert.equal(late.push(ev(3, 'e7')), 'fill');
    assert.equal(late.filled(page(1, 3, 'e7')), 'again');
    const result = done(late.filled(page(1, 3, 'e7')));
    assert.equal(result.lost, undefined);
    assert.deepEqual(offsets(result.deliver), [1, 2, 3]);
  });

  test('a failed read: the retry starts over from the delivered offset', TABLE, () => {
    const seq = new StreamSequencer<Ev>({ offset: 4, epoch: 'e1' });
    assert.equal(seq.push(ev(1, 'e2')), 'fill');
    assert.equal(seq.filled(page(1, 1, 'e2')), 'again');
    assert.equal(seq.fillSince, 0);
    seq.fillFailed();
    assert.equal(seq.fillSince, 4);
    assert.equal(seq.filling, true, 'still filling: the caller retries');
  });

  test('a gap among what queued during a fill starts the next fill', TABLE, () => {
    const seq = new StreamSequencer<Ev>({ offset: 1, epoch: 'e1' });
    assert.equal(seq.push(ev(3)), 'fill');
    assert.equal(seq.push(ev(7)), 'queued');
    assert.equal(seq.push(ev(8)), 'queued');
    done(seq.filled(page(2, 3)));
    const drained = seq.drain();
    assert.deepEqual(drained, { deliver: [], drops: ['duplicate'], fill: true });
    assert.equal(seq.filling, true);
    assert.equal(seq.fillSince, 3);
    assert.equal(seq.queued, 2, '7 starts the fill and 8 queues behind it again');
    const next = done(seq.filled(page(4, 8)));
    assert.deepEqual(offsets(next.deliver), [4, 5, 6, 7, 8]);
    assert.deepEqual(seq.drain().drops, ['duplicate', 'duplicate']);
  });

  test('the queue behind a fill is capped: past it the oldest goes (overflow)', TABLE, () => {
    const seq = new StreamSequencer<Ev>({ offset: 0, epoch: 'e1' }, { maxQueued: 2 });
    assert.equal(seq.push(ev(2)), 'fill');
    assert.equal(seq.push(ev(3)), 'queued');
    assert.equal(seq.push(ev(4)), 'overflow');
    assert.equal(seq.queued, 2);
    done(seq.filled(page(1, 1)));
    // 2 went; 3 and 4 are left: 3 is not next, so the next fill reads 2 from history.
    const drained = seq.drain();
    assert.equal(drained.fill, true);
    assert.deepEqual(offsets(done(seq.filled(page(2, 4))).deliver), [2, 3, 4]);
  });

  test('discard empties the queue (the stream was unfollowed) and says how many went', TABLE, () => {
    const seq = new StreamSequencer<Ev>({ offset: 0, epoch: 'e1' });
    seq.push(ev(2));
    seq.push(ev(3));
    done(seq.filled(page(1, 1)));
    assert.equal(seq.discard(), 2);
    assert.equal(seq.queued, 0);
    assert.deepEqual(seq.drain(), { deliver: [], drops: [], fill: false });
  });

  test('quiet-stream checks: behind at two checks in a row (or once, immediate) starts a fill; in step clears the suspicion', TABLE, () => {
    const seq = new StreamSequencer<Ev>({ offset: 3, epoch: 'e1' });
    assert.equal(seq.check(3, 'e1', false), false);
    assert.equal(seq.check(4, 'e1', false), false, 'first time behind: suspect only');
    assert.equal(seq.push(ev(4)), 'deliver', 'the message was only late');
    assert.equal(seq.check(5, 'e1', false), false, 'the suspicion was cleared by the delivery');
    assert.equal(seq.check(5, 'e1', false), true, 'still behind at the next check');
    assert.equal(seq.filling, true);
    assert.equal(seq.check(9, 'e1', true), false, 'a fill is already running');
    done(seq.filled(page(5, 5)));
    assert.equal(seq.check(6, 'e1', true), true, 'immediate (after a reconnect): at once');
  });

  test('quiet-stream checks: the store lost the stream (no record) is a reset; a stream nobody published to is not', TABLE, () => {
    const tracked = new StreamSequencer<Ev>({ offset: 3, epoch: 'e1' });
    assert.equal(tracked.check(0, undefined, true), true);
    const neverPublished = new StreamSequencer<Ev>({ offset: 0, epoch: UNKNOWN_EPOCH });
    assert.equal(neverPublished.check(0, undefined, true), false);
    assert.equal(neverPublished.check(0, 'e5', true), true, 'it has an epoch now: learn it');
    const other = new StreamSequencer<Ev>({ offset: 3, epoch: 'e1' });
    assert.equal(other.check(1, 'e2', true), true, 'another epoch, even at a lower offset');
  });
});

// ---- properties, against a model store -------------------------------------------

/** The store a sequencer reads: streams of successive epochs (a reset starts the next, empty), history keeping the last `keep` events. */
class Store {
  readonly epochs: string[] = ['e1'];
  readonly counts: number[];
  /** Whether the current epoch exists in the store yet (a read or a publish creates it). */
  created: boolean;
  readonly #keep: number;

  constructor(start: number, created: boolean, keep: number) {
    this.counts = [start];
    this.created = created;
    this.#keep = keep;
  }

  get epoch(): string {
    return this.epochs.at(-1)!;
  }

  get count(): number {
    return this.counts.at(-1)!;
  }

  publish(): void {
    this.counts[this.counts.length - 1]! += 1;
    this.created = true;
  }

  reset(): void {
    this.epochs.push(`e${this.epochs.length + 1}`);
    this.counts.push(0);
    this.created = false;
  }

  /** What a quiet-stream check reads: the position, or no record. */
  check(): [number, string | undefined] {
    return this.created ? [this.count, this.epoch] : [0, undefined];
  }

  /** A history read after `since` (as the Redis script answers it). */
  read(since: number): FillPage<Ev> {
    this.created = true;
    const at = this.count;
    const position = { offset: at, epoch: this.epoch };
    if (at <= since) return { events: [], position, complete: true };
    const from = Math.max(since + 1, at - this.#keep + 1, 1);
    const events: Ev[] = [];
    for (let o = from; o <= at; o++) events.push(ev(o, this.epoch));
    return { events, position, complete: from === since + 1 };
  }
}

type Op = { kind: 'publish' } | { kind: 'reset' } | { kind: 'answer' } | { kind: 'check'; immediate: boolean } | { kind: 'arrive'; pick: number; old: boolean };

/** One thing the sequencer made happen, in order. */
type Happened = { deliver: Ev } | { lost: { offset: number; epoch: string } };

/**
 * Runs `ops` against a sequencer and the store, answering fills when an
 * 'answer' comes (arrivals meanwhile queue), then publishes the rest, lets
 * every fill finish and a last immediate check catch up. Answers what
 * happened, and the number of fills.
 */
function run(seq: StreamSequencer<Ev>, store: Store, ops: readonly Op[], total: number, maxResets: number): Happened[] {
  const happened: Happened[] = [];
  let resets = 0;
  let copies = 0;
  const answer = () => {
    let result = seq.filled(store.read(seq.fillSince));
    if (result === 'again') result = seq.filled(store.read(seq.fillSince));
    assert.notEqual(result, 'again', 'a second read never asks again');
    const { lost, deliver } = result as FillResult<Ev>;
    if (lost) happened.push({ lost });
    for (const e of deliver) happened.push({ deliver: e });
    for (const e of seq.drain().deliver) happened.push({ deliver: e });
  };
  for (const op of ops) {
    if (op.kind === 'publish') {
      if (store.count < total) store.publish();
    } else if (op.kind === 'reset') {
      if (resets < maxResets) {
        resets++;
        store.reset();
      }
    } else if (op.kind === 'answer') {
      if (seq.filling) answer();
    } else if (op.kind === 'check') {
      const [offset, epoch] = store.check();
      seq.check(offset, epoch, op.immediate);
    } else {
      // Any event published so far arrives: late, early, again, or (never picked) not at all. A late one may be of the previous epoch.
      const i = op.old && store.epochs.length > 1 ? store.epochs.length - 2 : store.epochs.length - 1;
      const count = store.counts[i]!;
      if (count === 0) continue;
      const e: Ev = { offset: 1 + (op.pick % count), epoch: store.epochs[i]!, copy: ++copies };
      if (seq.push(e) === 'deliver') happened.push({ deliver: e });
    }
  }
  while (store.count < total) store.publish();
  for (let rounds = 0; ; rounds++) {
    assert.ok(rounds < 50, 'the sequencer settles');
    if (seq.filling) answer();
    else {
      const [offset, epoch] = store.check();
      if (!seq.check(offset, epoch, true)) break;
    }
  }
  return happened;
}

/**
 * Walks what happened from `start`: each delivery is the next offset of the
 * current epoch; a loss moves the position forward (or to a later epoch);
 * an epoch changes silently only from offset 0 (nothing delivered of it).
 * Answers where delivery ended.
 */
function walk(start: { offset: number; epoch: string }, happened: readonly Happened[], epochs: readonly string[]): { offset: number; epoch: string } {
  let at = { ...start };
  const rank = (epoch: string) => (epoch === UNKNOWN_EPOCH ? -1 : epochs.indexOf(epoch));
  for (const h of happened) {
    if ('lost' in h) {
      if (h.lost.epoch === at.epoch) assert.ok(h.lost.offset >= at.offset, `a loss never moves back: ${JSON.stringify([at, h.lost])}`);
      else assert.ok(rank(h.lost.epoch) > rank(at.epoch), `a loss moves to a later epoch: ${JSON.stringify([at, h.lost])}`);
      at = { ...h.lost };
      continue;
    }
    const e = h.deliver;
    if (e.epoch !== at.epoch) {
      assert.equal(at.offset, 0, `an epoch changed without a loss after delivering ${JSON.stringify(at)}`);
      assert.ok(rank(e.epoch) > rank(at.epoch), `never back to an older epoch: ${JSON.stringify([at, e])}`);
      at = { offset: 0, epoch: e.epoch };
    }
    assert.equal(e.offset, at.offset + 1, `delivered ${e.offset} after ${at.offset} (${e.epoch}) without a reported loss`);
    at = { offset: e.offset, epoch: e.epoch };
  }
  return at;
}

const opArb = (withResets: boolean): fc.Arbitrary<Op> =>
  fc.oneof(
    { arbitrary: fc.constant<Op>({ kind: 'publish' }), weight: 5 },
    { arbitrary: fc.record({ kind: fc.constant('arrive' as const), pick: fc.nat(), old: fc.boolean() }), weight: 8 },
    { arbitrary: fc.constant<Op>({ kind: 'answer' }), weight: 2 },
    { arbitrary: fc.record({ kind: fc.constant('check' as const), immediate: fc.boolean() }), weight: 1 },
    { arbitrary: fc.constant<Op>({ kind: withResets ? 'reset' : 'publish' }), weight: 1 },
  );

const PROPS = { timeout: 60_000 };

describe('sequencer: properties', PROPS, () => {
  test('history holding the stream: exactly the suffix after the start, in order, each once, no loss', PROPS, () => {
    fc.assert(
      fc.property(fc.nat(5), fc.integer({ min: 0, max: 30 }), fc.boolean(), fc.array(opArb(false), { maxLength: 150 }), (start, more, unknown, ops) => {
        // A stream never published to is tracked at offset 0 under no epoch; otherwise from a position read.
        const begin = unknown ? 0 : start;
        const seq = new StreamSequencer<Ev>({ offset: begin, epoch: unknown ? UNKNOWN_EPOCH : 'e1' });
        const store = new Store(begin, !unknown, Number.POSITIVE_INFINITY);
        const total = begin + more;
        const happened = run(seq, store, ops, total, 0);
        assert.ok(
          happened.every((h) => 'deliver' in h),
          'no loss reported',
        );
        const delivered = happened.map((h) => ('deliver' in h ? h.deliver.offset : -1));
        assert.deepEqual(
          delivered,
          Array.from({ length: more }, (_, i) => begin + i + 1),
        );
        assert.equal(new Set(happened.map((h) => ('deliver' in h ? h.deliver : undefined))).size, happened.length, 'no object delivered twice');
        assert.equal(seq.queued, 0);
      }),
      { numRuns: 500 },
    );
  });

  test('history keeping only the last few: strictly increasing, no duplicate, a gap only behind a reported loss, ending at the head', PROPS, () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 30 }), fc.array(opArb(false), { maxLength: 150 }), (keep, total, ops) => {
        const seq = new StreamSequencer<Ev>({ offset: 0, epoch: 'e1' });
        const store = new Store(0, true, keep);
        const happened = run(seq, store, ops, total, 0);
        const end = walk({ offset: 0, epoch: 'e1' }, happened, store.epochs);
        assert.deepEqual(end, { offset: total, epoch: 'e1' });
        const delivered = happened.flatMap((h) => ('deliver' in h ? [h.deliver.offset] : []));
        assert.ok(
          delivered.every((o, i) => i === 0 || o > delivered[i - 1]!),
          `strictly increasing: ${delivered.join(',')}`,
        );
      }),
      { numRuns: 500 },
    );
  });

  test("a reset (new epoch, history lost) mid-stream: the old epoch's late events never follow the new one's; delivery ends at the new head", PROPS, () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 20 }), fc.array(opArb(true), { maxLength: 150 }), (keep, total, ops) => {
        const seq = new StreamSequencer<Ev>({ offset: 0, epoch: 'e1' });
        const store = new Store(0, true, keep);
        const happened = run(seq, store, ops, total, 1);
        const end = walk({ offset: 0, epoch: 'e1' }, happened, store.epochs);
        assert.deepEqual(seq.position, { offset: store.count, epoch: store.epoch });
        // Deliveries show the new epoch unless it has no event yet (then the switch delivered nothing).
        assert.equal(end.offset, store.count);
        if (store.count > 0) assert.equal(end.epoch, store.epoch);
      }),
      { numRuns: 500 },
    );
  });
});
