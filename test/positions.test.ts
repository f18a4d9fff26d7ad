// Written and confirmed positions per stream (src/core/positions.ts), pure:
// what a resumed session starts from. Table tests for each rule, then
// properties: a position never goes back within an epoch, and a pong confirms
// exactly what was written before its heartbeat.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MAX_TRACKED_STREAMS, StreamPositions } from '../src/core/positions.js';

const OPTS = { timeout: 20_000 };
const plain = (m: ReadonlyMap<string, { offset: number; epoch: string }>) => Object.fromEntries([...m].map(([k, v]) => [k, { ...v }]));

test('positions: forward only within an epoch; a new epoch replaces the position', OPTS, () => {
  const p = new StreamPositions();
  p.advance('s', 5, 'e1');
  p.advance('s', 3, 'e1');
  assert.deepEqual(plain(p.written), { s: { offset: 5, epoch: 'e1' } });
  p.advance('s', 2, 'e2');
  assert.deepEqual(plain(p.written), { s: { offset: 2, epoch: 'e2' } });
});

test('positions: past MAX_TRACKED_STREAMS the stream tracked first goes', OPTS, () => {
  const p = new StreamPositions();
  for (let i = 0; i <= MAX_TRACKED_STREAMS; i++) p.advance(`s${i}`, 1, 'e');
  assert.equal(p.written.size, MAX_TRACKED_STREAMS);
  assert.equal(p.written.has('s0'), false);
  assert.equal(p.written.has(`s${MAX_TRACKED_STREAMS}`), true);
});

test('positions: a pong confirms the heartbeat snapshot it answers, not later writes, not another seq', OPTS, () => {
  const p = new StreamPositions();
  assert.equal(p.awaitingPong, false);
  p.heartbeat('1');
  assert.equal(p.awaitingPong, false, 'nothing written: no snapshot');
  p.advance('s', 4, 'e');
  p.heartbeat('2');
  p.advance('s', 9, 'e');
  assert.equal(p.pong('1'), false);
  assert.equal(p.confirmed.size, 0);
  assert.equal(p.pong('2'), true);
  assert.deepEqual(plain(p.confirmed), { s: { offset: 4, epoch: 'e' } });
  assert.equal(p.awaitingPong, false);
  assert.equal(p.pong('2'), false, 'one pong confirms once');
  // Nothing new since the snapshot? 9 was written after it: the next heartbeat snapshots again.
  p.heartbeat('3');
  assert.equal(p.pong('3'), true);
  assert.deepEqual(plain(p.confirmed), { s: { offset: 9, epoch: 'e' } });
  p.heartbeat('4');
  assert.equal(p.awaitingPong, false, 'nothing written since the last snapshot');
});

test('positions: resume after written on a peer close, after confirmed when the server terminated', OPTS, () => {
  const p = new StreamPositions();
  p.setConfirmedBase(new Map([['s', { offset: 2, epoch: 'e' }]]));
  p.advance('s', 7, 'e');
  assert.deepEqual(plain(p.resume(false)), { s: { offset: 7, epoch: 'e' } });
  assert.deepEqual(plain(p.resume(true)), { s: { offset: 2, epoch: 'e' } });
});

test('positions: the confirmed base is a copy, not the map it was given', OPTS, () => {
  const base = new Map([['s', { offset: 2, epoch: 'e' }]]);
  const p = new StreamPositions();
  p.setConfirmedBase(base);
  base.get('s')!.offset = 99;
  assert.equal(p.confirmed.get('s')!.offset, 2);
});

test('positions (property): written = the last epoch per stream with its highest offset; pongs confirm what preceded their ping', OPTS, () => {
  const step = fc.oneof(
    fc.record({ kind: fc.constant('write' as const), stream: fc.constantFrom('a', 'b', 'c'), offset: fc.nat(50), epoch: fc.constantFrom('e1', 'e2') }),
    fc.record({ kind: fc.constant('ping' as const) }),
    fc.record({ kind: fc.constant('pong' as const), back: fc.nat(3) }),
  );
  fc.assert(
    fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
      const p = new StreamPositions();
      const model = new Map<string, { offset: number; epoch: string }>();
      const pings: Array<{ seq: string; at: Record<string, { offset: number; epoch: string }> }> = [];
      let confirmed: Record<string, { offset: number; epoch: string }> = {};
      let awaited: { seq: string; at: Record<string, { offset: number; epoch: string }> } | null = null;
      let dirty = false;
      let seq = 0;
      for (const s of steps) {
        if (s.kind === 'write') {
          const cur = model.get(s.stream);
          if (cur === undefined || cur.epoch !== s.epoch) model.set(s.stream, { offset: s.offset, epoch: s.epoch });
          else cur.offset = Math.max(cur.offset, s.offset);
          p.advance(s.stream, s.offset, s.epoch);
          dirty = true;
        } else if (s.kind === 'ping') {
          const ping = { seq: String(++seq), at: plain(model) };
          pings.push(ping);
          if (dirty) {
            awaited = ping;
            dirty = false;
          }
          p.heartbeat(ping.seq);
        } else if (pings.length > 0) {
          // A pong for one of the last pings (older pongs arrive too).
          const ping = pings[Math.max(0, pings.length - 1 - s.back)]!;
          const ok: boolean = awaited !== null && awaited.seq === ping.seq;
          assert.equal(p.pong(ping.seq), ok);
          if (ok) {
            confirmed = awaited!.at;
            awaited = null;
          }
        }
        assert.deepEqual(plain(p.written), plain(model));
        assert.deepEqual(plain(p.confirmed), confirmed);
      }
    }),
    { numRuns: 400 },
  );
});
