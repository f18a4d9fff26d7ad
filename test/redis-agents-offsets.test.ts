// The Redis agent directory keeps each field's latest by that field's own
// position: an agent's epistemic state, confidence, uncertainty and status
// each come from the newest event that carried them, whichever order nodes
// record publications in. (Comparing with the hash's overall latest offset
// refused an older-but-newest epistemic update recorded after a later status
// change, and let a stale one of a left epoch overwrite a newer one.)
// On the real Redis (127.0.0.1:6379 or ESCAI_TEST_REDIS_URL).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';
import type { DeliveredEvent } from '../src/engine/index.js';
import type { RedisEngine } from '../src/engine/redis/index.js';
import { TEST_ENGINE } from './helpers.js';
import { startRedisEngine } from './redis-support.js';

/** A started Redis engine under a fresh prefix, closed and cleaned when the test ends; undefined when skipped. */
async function directory(t: TestContext): Promise<RedisEngine | undefined> {
  return (await startRedisEngine(t))?.engine;
}

const AGENT = 'agent-offsets';
const base = Date.parse('2026-01-01T00:00:00Z');

function epistemic(offset: number, epoch: string, confidence: number, uncertainty: number): DeliveredEvent {
  return {
    type: 'epistemic_update',
    event_id: randomUUID(),
    agent_id: AGENT,
    data: { confidence_level: confidence, uncertainty_score: uncertainty },
    timestamp: new Date(base + offset * 1000).toISOString(),
    offset,
    epoch,
  };
}

function status(offset: number, epoch: string, value: string): DeliveredEvent {
  const timestamp = new Date(base + offset * 1000).toISOString();
  return { type: 'agent_status_change', event_id: randomUUID(), agent_id: AGENT, status: value, timestamp, offset, epoch };
}

const OWN_ENGINE = { skip: TEST_ENGINE === 'redis' && 'runs in the main pass (it starts its own engine)', timeout: 60_000 };

describe('redis agent directory: per-field positions', OWN_ENGINE, () => {
  test('an epistemic update recorded after a later status change still becomes the latest epistemic state', { timeout: 30_000 }, async (t) => {
    const engine = await directory(t);
    if (!engine) return;
    const { agents } = engine;
    // Node B records the publication at offset 5 before node A records the one at offset 3.
    await agents.record([status(5, 'e1', 'running')]);
    const ep = epistemic(3, 'e1', 0.7, 0.2);
    await agents.record([ep]);
    const record = await agents.get(AGENT);
    assert.ok(record);
    assert.equal(record.latest_epistemic?.event_id, ep.event_id, 'the only epistemic update there is, though older than the status change');
    assert.equal(record.confidence_level, 0.7);
    assert.equal(record.uncertainty_score, 0.2);
    assert.deepEqual(record.positions.epistemic, { offset: 3, epoch: 'e1' });
    assert.equal(record.status, 'running', 'the status change stays');
    assert.deepEqual(record.positions.status, { offset: 5, epoch: 'e1' });
  });

  test('a status recorded after a later epistemic update becomes the status; an older value never replaces a newer one', { timeout: 30_000 }, async (t) => {
    const engine = await directory(t);
    if (!engine) return;
    const { agents } = engine;
    const newest = epistemic(7, 'e1', 0.9, 0.1);
    await agents.record([newest]);
    await agents.record([status(6, 'e1', 'idle')]);
    await agents.record([epistemic(4, 'e1', 0.1, 0.8)]); // older than the epistemic held: refused
    await agents.record([status(2, 'e1', 'starting')]); // older than the status held: refused
    const record = await agents.get(AGENT);
    assert.ok(record);
    assert.equal(record.status, 'idle');
    assert.deepEqual(record.positions.status, { offset: 6, epoch: 'e1' });
    assert.equal(record.latest_epistemic?.event_id, newest.event_id);
    assert.equal(record.confidence_level, 0.9);
    assert.equal(record.uncertainty_score, 0.1);
  });

  test('after a new epoch, a late update of the old epoch, older than the field holds, does not replace it', { timeout: 30_000 }, async (t) => {
    const engine = await directory(t);
    if (!engine) return;
    const { agents } = engine;
    const held = epistemic(10, 'e1', 0.9, 0.1);
    await agents.record([held]);
    await agents.record([status(1, 'e2', 'restarted')]); // the stream was reset: a new epoch, from offset 1
    await agents.record([epistemic(4, 'e1', 0.3, 0.6)]); // late, of the old epoch, older than epistemic e1:10
    let record = await agents.get(AGENT);
    assert.ok(record);
    assert.equal(record.latest_epistemic?.event_id, held.event_id);
    assert.equal(record.confidence_level, 0.9);
    assert.equal(record.status, 'restarted');
    // The new epoch's own epistemic update replaces it, whatever its offset.
    const next = epistemic(2, 'e2', 0.5, 0.5);
    await agents.record([next]);
    record = await agents.get(AGENT);
    assert.equal(record?.latest_epistemic?.event_id, next.event_id);
    assert.deepEqual(record?.positions.epistemic, { offset: 2, epoch: 'e2' });
  });
});
