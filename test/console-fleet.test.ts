// The Fleet's cards (src/dashboard/fleet.ts), without a browser: a live
// event moves a card, a polled snapshot of the agent list (from the real
// in-memory directory) merges with it, and the newer figure wins by stream
// position whatever the clocks say. The case that made cards stale: a
// snapshot whose last event carries a later timestamp (an agent's skewed
// clock, a span's own time) than a status the card received live after the
// snapshot was taken. Property: any clocks, any snapshot cut, any moment the
// snapshot lands, the card shows the latest status, confidence and step of
// everything it has seen.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MemoryAgentDirectory } from '../src/engine/memory/agents.js';
import type { AgentSummary } from '../src/protocol/api.js';
import type { DeliveredEvent } from '../src/protocol/server-messages.js';
import { applyEvent, mergeSnapshot, type Card } from '../src/dashboard/fleet.js';

const T0 = Date.parse('2026-12-04T10:00:00.000Z');
type AgentEvent = DeliveredEvent & { agent_id: string };

function status(offset: number, value: string, atMs: number, epoch = 'ep1'): AgentEvent {
  return {
    type: 'agent_status_change',
    event_id: `s${offset}`,
    agent_id: 'a',
    status: value,
    timestamp: new Date(atMs).toISOString(),
    offset,
    epoch,
  } as unknown as AgentEvent;
}
function epistemic(offset: number, confidence: number, atMs: number, epoch = 'ep1'): AgentEvent {
  return {
    type: 'epistemic_update',
    event_id: `e${offset}`,
    agent_id: 'a',
    data: { confidence_level: confidence, uncertainty_score: 1 - confidence },
    timestamp: new Date(atMs).toISOString(),
    offset,
    epoch,
  } as unknown as AgentEvent;
}
function activity(offset: number, span: string, state: string, atMs: number, epoch = 'act1'): AgentEvent {
  return {
    type: 'agent_activity',
    event_id: `a${offset}`,
    agent_id: 'a',
    data: { trace_id: 't', span_id: span, kind: 'tool', name: span, state, started_at: new Date(atMs).toISOString() },
    timestamp: new Date(atMs).toISOString(),
    offset,
    epoch,
  } as unknown as AgentEvent;
}

/** The agent list's summary of `a` after the directory recorded `events`. */
async function snapshot(events: AgentEvent[]): Promise<AgentSummary> {
  const directory = new MemoryAgentDirectory({ agentTtlMs: 10 * 365 * 86_400_000 });
  await directory.record(events);
  const page = await directory.list({ limit: 10 });
  assert.equal(page.agents.length, 1);
  return page.agents[0]!;
}

const live = (events: AgentEvent[], card?: Card) => events.reduce<Card | undefined>((c, e) => applyEvent(c, e), card);

test("a status received live after the snapshot was taken stays, though the snapshot's clock is later", { timeout: 10_000 }, async () => {
  // The snapshot: running at offset 1, then a step whose timestamp is 5 s ahead (the agent's clock).
  const taken = [status(1, 'running', T0), activity(1, 'search', 'running', T0 + 5000)];
  const summary = await snapshot(taken);
  assert.deepEqual(summary.positions.status, { epoch: 'ep1', offset: 1 }, 'the summary names the position of its status');
  // Meanwhile the card received both, and then `waiting` (offset 2), stamped by the server's clock, earlier than the step.
  const card = live([...taken, status(2, 'waiting', T0 + 1000)])!;
  const merged = mergeSnapshot(card, summary);
  assert.equal(merged.status, 'waiting', 'the later status by offset wins (the old rule compared timestamps and went back to running)');
  assert.equal(merged.activity?.span_id, 'search');
  assert.equal(merged.last_event_at, new Date(T0 + 5000).toISOString(), 'last seen is the latest time of either');
});

test("a snapshot later than the card replaces its figures; a new epoch is the server's to say", { timeout: 10_000 }, async () => {
  const card = live([status(1, 'running', T0), epistemic(2, 0.4, T0)])!;
  const newer = await snapshot([status(1, 'running', T0), epistemic(2, 0.4, T0), status(3, 'completed', T0 - 60_000), epistemic(4, 0.8, T0 - 60_000)]);
  const merged = mergeSnapshot(card, newer);
  assert.equal(merged.status, 'completed');
  assert.equal(merged.confidence_level, 0.8);
  // The server restarted: its streams have a new epoch with small offsets; its snapshot wins over the old lifetime's.
  const restarted = await snapshot([status(1, 'idle', T0, 'ep2')]);
  assert.equal(mergeSnapshot(merged, restarted).status, 'idle');
  // And a card with nothing newer than the snapshot takes it whole, except its own sparkline.
  assert.deepEqual(mergeSnapshot(undefined, newer).spark, []);
});

test("a live event no later than the card's (a replay after reconnecting) changes no figure", { timeout: 10_000 }, () => {
  const card = live([status(1, 'running', T0), status(2, 'waiting', T0 + 1000), epistemic(3, 0.7, T0 + 1000)])!;
  const replayed = live([status(1, 'running', T0), epistemic(3, 0.7, T0)], card)!;
  assert.equal(replayed.status, 'waiting');
  assert.equal(replayed.confidence_level, 0.7);
  // A running report never replaces the same step's end, even at a later offset.
  const ended = live([activity(1, 'fetch', 'ok', T0), activity(2, 'fetch', 'running', T0)])!;
  assert.equal(ended.activity?.state, 'ok');
});

test('property: any clocks, any snapshot cut, any landing moment: the card shows the latest of all it has seen', { timeout: 60_000 }, async () => {
  const kinds = fc.constantFrom('status', 'epistemic', 'activity');
  const item = fc.record({ kind: kinds, value: fc.integer({ min: 0, max: 3 }), skewMs: fc.integer({ min: -60_000, max: 60_000 }) });
  await fc.assert(
    fc.asyncProperty(fc.array(item, { minLength: 1, maxLength: 25 }), fc.nat(), fc.nat(), fc.nat(), async (items, cutSeed, deliveredSeed, landSeed) => {
      // One agent's events in publication order: its agent stream and its activity stream numbered apart.
      let agentOffset = 0;
      let activityOffset = 0;
      const events = items.map(({ kind, value, skewMs }, i) => {
        const at = T0 + i * 1000 + skewMs;
        if (kind === 'status') return status(++agentOffset, ['running', 'waiting', 'completed', 'failed'][value]!, at);
        if (kind === 'epistemic') return epistemic(++agentOffset, value / 4, at);
        return activity(++activityOffset, `span${i}`, value % 2 === 0 ? 'ok' : 'error', at);
      });
      const cut = cutSeed % (events.length + 1); // the directory had recorded events[0, cut) when asked
      const delivered = deliveredSeed % (events.length + 1); // the card received events[0, delivered) live, in order
      const land = landSeed % (delivered + 1); // the snapshot landed after `land` of them
      let card = live(events.slice(0, land));
      card = mergeSnapshot(card, await snapshot(events.slice(0, Math.max(cut, 1))));
      card = live(events.slice(land, delivered), card)!;
      const seen = events.slice(0, Math.max(cut, 1, delivered));
      const lastOf = (type: string) => seen.filter((e) => e.type === type).at(-1);
      assert.equal(card.status, lastOf('agent_status_change')?.status ?? null, 'status');
      assert.equal(card.confidence_level, (lastOf('epistemic_update')?.data?.['confidence_level'] as number | undefined) ?? null, 'confidence');
      assert.equal(card.activity?.span_id ?? null, (lastOf('agent_activity')?.data?.['span_id'] as string | undefined) ?? null, 'activity');
    }),
    { numRuns: 300 },
  );
});
