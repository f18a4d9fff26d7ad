// The client transcript (test/fixtures/client-transcript.json), fed to the
// TypeScript SDK's pure positions (src/client/positions.ts). The Python client
// passes the same transcript (clients/python/tests/test_transcript.py, run by
// test/python-client.test.ts): one set of rules for resume and duplicates.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { EventType } from '../src/protocol/constants.js';
import type { StreamPosition } from '../src/protocol/server-messages.js';
import { Positions, streamOf } from '../src/client/positions.js';

interface Subscription {
  id: string;
  stream: string | null;
  type: string;
}

type Step =
  | { op: 'subscribe'; sub: string; since?: StreamPosition }
  | { op: 'event'; type: string; agent_id?: string; stream: string; offset?: number; epoch?: string; event_id: string; expect: 'deliver' | 'duplicate' }
  | { op: 'confirm'; sub: string; recovered: boolean | null; offset?: number; epoch?: string }
  | { op: 'recovery_failed'; stream: string; type: string; offset: number; epoch: string }
  | { op: 'reconnect'; expect_since: Record<string, StreamPosition | null> }
  | { op: 'position'; stream: string; type: string; expect: StreamPosition | null };

interface Scenario {
  name: string;
  subscriptions: Subscription[];
  steps: Step[];
  delivered: string[];
}

const transcript = JSON.parse(readFileSync(new URL('./fixtures/client-transcript.json', import.meta.url), 'utf8')) as { scenarios: Scenario[] };

/** Plays one scenario against fresh positions; returns the ids delivered, asserting every step on the way. */
function play(scenario: Scenario): string[] {
  const positions = new Positions();
  const subs = new Map(scenario.subscriptions.map((s) => [s.id, s]));
  const sub = (id: string): Subscription => {
    const found = subs.get(id);
    assert.ok(found, `${scenario.name}: the fixture names subscription ${id}`);
    return found;
  };
  const delivered: string[] = [];
  scenario.steps.forEach((step, i) => {
    const where = `${scenario.name}, step ${i} (${step.op})`;
    switch (step.op) {
      case 'subscribe': {
        const s = sub(step.sub);
        if (step.since) positions.set(s.stream!, s.type, step.since);
        break;
      }
      case 'event': {
        // The fixture's stream is what the SDK derives from the event itself.
        assert.equal(streamOf({ type: step.type as EventType, agent_id: step.agent_id }), step.stream, `${where}: streamOf`);
        const verdict = positions.accept({ stream: step.stream, type: step.type, offset: step.offset, epoch: step.epoch, event_id: step.event_id });
        assert.equal(verdict, step.expect, `${where}: ${step.event_id} at ${step.offset}@${step.epoch}`);
        if (verdict === 'deliver') delivered.push(step.event_id);
        break;
      }
      case 'confirm': {
        const s = sub(step.sub);
        positions.confirm(s.stream, s.type, { recovered: step.recovered ?? undefined, offset: step.offset, epoch: step.epoch });
        break;
      }
      case 'recovery_failed':
        positions.set(step.stream, step.type, { offset: step.offset, epoch: step.epoch });
        break;
      case 'reconnect': {
        const sent = Object.fromEntries(scenario.subscriptions.map((s) => [s.id, positions.since(s.stream, s.type) ?? null]));
        assert.deepEqual(sent, step.expect_since, `${where}: since sent on resume`);
        break;
      }
      case 'position':
        assert.deepEqual(positions.get(step.stream, step.type) ?? null, step.expect, `${where}: position of ${step.stream} ${step.type}`);
        break;
      default:
        assert.fail(`${where}: unknown op ${(step as { op: string }).op}`);
    }
  });
  return delivered;
}

test('the client transcript: the TS positions deliver and drop exactly as the fixture says, and send its since on resume', { timeout: 10_000 }, () => {
  assert.ok(transcript.scenarios.length >= 6, 'the fixture holds its scenarios');
  const ops = new Set(transcript.scenarios.flatMap((s) => s.steps.map((step) => step.op)));
  assert.deepEqual([...ops].sort(), ['confirm', 'event', 'position', 'reconnect', 'recovery_failed', 'subscribe'], 'every kind of step is exercised');
  for (const scenario of transcript.scenarios) {
    assert.deepEqual(play(scenario), scenario.delivered, `${scenario.name}: delivered in order`);
  }
});

test('the client transcript covers what it claims: duplicates, an epoch change, several streams, two types on one stream', { timeout: 10_000 }, () => {
  const events = transcript.scenarios.flatMap((s) => s.steps.filter((step): step is Extract<Step, { op: 'event' }> => step.op === 'event'));
  assert.ok(events.some((e) => e.expect === 'duplicate') && events.some((e) => e.expect === 'deliver'));
  const epochsPerStream = new Map<string, Set<string>>();
  for (const e of events) if (e.epoch) epochsPerStream.set(e.stream, (epochsPerStream.get(e.stream) ?? new Set()).add(e.epoch));
  assert.ok(
    [...epochsPerStream.values()].some((epochs) => epochs.size >= 3),
    'a stream changes epoch',
  );
  const allAgents = transcript.scenarios.find((s) => s.subscriptions.some((sub) => sub.stream === null));
  assert.ok(allAgents, 'an all-agents subscription');
  const streams = new Set(allAgents.steps.flatMap((step) => (step.op === 'event' ? [step.stream] : [])));
  assert.ok(streams.size >= 3, 'it sees several streams');
  const typesOnA1 = (s: Scenario) => new Set(s.subscriptions.filter((sub) => sub.stream === 'agent:a1').map((sub) => sub.type));
  assert.ok(
    transcript.scenarios.some((s) => typesOnA1(s).size >= 2),
    'two types on one stream',
  );
});
