// Loose ends of issue 20, each through a real server: a conflated event is
// delivered once (and counted) when another subscription of the connection
// also wants it; a session resume lets every subscription with conditions on
// change judge a replayed event, as the live path does; `latest` does not
// overwrite a newer live judgement; a filter nested thousands of levels deep
// is refused by name; the process metrics carry their standard names.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveConfig } from '../src/config/config.js';
import { createEngine } from '../src/engine/index.js';
import { createLogger } from '../src/log.js';
import { EscaiServer } from '../src/server/server.js';
import { signToken } from '../src/auth/jwt.js';
import {
  confirmed,
  connectionCount,
  EVENT_TYPES,
  openMonitor,
  publishOne,
  SECRET,
  startServer,
  throughMarker,
  type DeliveredEvent,
  type PublishResult,
  type TestClient,
  type TestServer,
} from './helpers.js';

const OPTS = { timeout: 60_000 };
const RESEARCHER = { roles: ['researcher'] };
const seqOf = (m: DeliveredEvent): unknown => m.data?.['seq'];

async function ep(s: Pick<TestServer, 'server'>, agentId: string, seq: number, data: Record<string, unknown> = {}): Promise<PublishResult> {
  return publishOne(s as TestServer, { type: 'epistemic_update', agent_id: agentId, data: { agent_id: agentId, seq, ...data } });
}

/** Waits for the event with data.seq `last`; returns the seqs of every event received up to it. */
async function seqsUntil(c: TestClient, last: number, timeoutMs = 10_000): Promise<unknown[]> {
  const lastOne = await c.next(EVENT_TYPES, (m) => seqOf(m) === last, timeoutMs);
  return [...c.takeEvents(), lastOne].map(seqOf);
}

async function metricValue(s: TestServer, line: RegExp): Promise<number> {
  const res = await fetch(`${s.url}/metrics`);
  const m = line.exec(await res.text());
  return m ? Number(m[1]) : Number.NaN;
}

test('$max_rate beside an unconflated subscription: each event once, and conflated sends are counted', OPTS, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  // agent_1 unconflated; every agent at most one event per 2 s per agent.
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1' });
  await confirmed(c, { type: 'epistemic_updates', filters: { $max_rate: 0.5 } });
  const before = await metricValue(s, /^escai_deliveries_total\{type="epistemic_update"\} (\S+)$/m);
  await ep(s, 'agent_1', 1);
  await ep(s, 'agent_1', 2); // also wanted by the conflated one: held there before the fix, sent twice at its window's end
  await ep(s, 'agent_2', 3); // opens agent_2's window: out at once
  await ep(s, 'agent_2', 4); // held for agent_2's window, which ends after agent_1's (one timer, windows in end order)
  assert.deepEqual(await seqsUntil(c, 4), [1, 2, 3, 4]);
  // 1, 2 (unconflated), 3 (at once), 4 (at its window's end): four deliveries, the last one too.
  const after = await metricValue(s, /^escai_deliveries_total\{type="epistemic_update"\} (\S+)$/m);
  assert.equal(after - (Number.isNaN(before) ? 0 : before), 4);
});

test('two $max_rate subscriptions wanting one event: it arrives once, not once per window', OPTS, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1', filters: { $max_rate: 0.5 } });
  await confirmed(c, { type: 'epistemic_updates', filters: { $max_rate: 0.5 } });
  await ep(s, 'agent_1', 1); // the agent's window opens, 1 goes out
  await ep(s, 'agent_1', 2); // the all-agents one opens its window: out at once, the other's copy dropped
  await ep(s, 'agent_1', 3); // held in both windows: before the fix, each window's end sent it
  await ep(s, 'agent_2', 4); // agent_2's window (all-agents only): out at once
  await ep(s, 'agent_2', 5); // held until that window ends, after the all-agents window of agent_1 (one timer, end order)
  const seqs = await seqsUntil(c, 5, 15_000);
  assert.deepEqual([...seqs].sort(), [1, 2, 3, 4, 5]);
});

test('session resume: every subscription with a condition on change judges a replayed event, as live', OPTS, async (t) => {
  const s = await startServer(t);
  const filters = { confidence_level: { changed_by: 0.25 } };
  const first = await s.open({ sub: 'alice', ...RESEARCHER }, { session: 'sess-judge' });
  await confirmed(first.client, { type: 'epistemic_updates', agent_id: 'agent_1', filters });
  await confirmed(first.client, { type: 'epistemic_updates', filters });
  await ep(s, 'agent_1', 0, { confidence_level: 0.1 });
  assert.deepEqual(await seqsUntil(first.client, 0), [0]);
  await first.client.flush();
  first.client.ws.close(1000, 'bye');
  await first.client.closeEvent;
  await connectionCount(s.server, 0, 5000, 'the server to let go');
  // While away: both subscriptions see 0.5 (0.4 from 0.1: delivered) and 0.9 (0.4: delivered) on the replay.
  await ep(s, 'agent_1', 1, { confidence_level: 0.5 });
  await ep(s, 'agent_1', 2, { confidence_level: 0.9 });
  const second = await s.open({ sub: 'alice', ...RESEARCHER }, { session: 'sess-judge' });
  assert.equal(second.hello.resumed, true);
  assert.deepEqual(await seqsUntil(second.client, 2), [1, 2]);
  // 0.95 is 0.05 from 0.9 for both. Before the fix the second subscription had judged nothing on the replay,
  // so it still stood at 0.1 and let 0.95 through.
  await ep(s, 'agent_1', 3, { confidence_level: 0.95 });
  await ep(s, 'agent_1', 4, { confidence_level: 0.2 }); // 0.7 from 0.9 for both: the marker
  assert.deepEqual(await seqsUntil(second.client, 4), [4]);
});

test('latest: a live event judged while the latest one is read stays the state conditions on change judge against', OPTS, async (t) => {
  // The engine is the real one; only its newest-first history read (the latest scan) waits for the test,
  // so that a live event reaches the subscription between its indexing and the scan's answer.
  const config = resolveConfig({ port: 0, jwtSecret: SECRET, logLevel: 'silent' });
  const log = createLogger(config.logLevel);
  const engine = await createEngine(config, log);
  const broker = engine.broker;
  const history = broker.history.bind(broker);
  let paused: (() => void) | undefined;
  let scanning: (() => void) | undefined;
  const scanStarted = new Promise<void>((r) => (scanning = r));
  (broker as { history: typeof history }).history = async (stream, opts) => {
    if (opts?.order === 'desc' && paused === undefined) {
      await new Promise<void>((r) => {
        paused = r;
        scanning!();
      });
    }
    return history(stream, opts);
  };
  const server = new EscaiServer({ config, logger: log, engine });
  await server.listen();
  const wsUrl = server.url.replace(/^http/, 'ws');
  const token = (claims: Record<string, unknown>) => signToken(SECRET, { sub: 'user_1', ...claims });
  const clients: TestClient[] = [];
  t.after(async () => {
    paused?.();
    for (const c of clients) c.terminate();
    await server.close();
  });
  const s = { server } as TestServer;
  await ep(s, 'agent_1', 0, { confidence_level: 0.5 });
  const { client: c } = await openMonitor(wsUrl, await token(RESEARCHER), {}, (x) => clients.push(x));
  const reply = confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1', latest: true, filters: { confidence_level: { changed_by: 0.25 } } });
  await scanStarted;
  await ep(s, 'agent_1', 1, { confidence_level: 0.9 }); // live, held for the connection, judged: the first of agent_1
  paused!();
  await reply;
  // The client holds 0.5 (latest) then 0.9 (live). 0.3 is 0.6 from 0.9: delivered. Before the fix the latest
  // seeded 0.5 over 0.9 and 0.3 (0.2 from 0.5) was refused.
  await ep(s, 'agent_1', 2, { confidence_level: 0.3 });
  await ep(s, 'agent_1', 3, { confidence_level: 0.95 }); // the marker: far from both
  assert.deepEqual(await seqsUntil(c, 3), [0, 1, 2, 3]);
});

test('a filter nested thousands of levels deep is refused with VALIDATION_ERROR naming the limit', OPTS, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  // Written as text: JSON.stringify itself cannot go that deep.
  const deep = `${'{"$and":['.repeat(5000)}{"confidence_level":{"min":0.5}}${']}'.repeat(5000)}`;
  c.ws.send(`{"type":"subscribe","id":"deep","data":{"type":"epistemic_updates","agent_id":"agent_1","filters":${deep}}}`);
  const reply = await c.next(['error', 'subscription_confirmed']);
  assert.equal(reply.type, 'error');
  assert.equal(reply.code, 'VALIDATION_ERROR', JSON.stringify(reply));
  assert.match(reply.message, /filters: nested deeper than \d+ levels .*limit nesting/);
  // The connection is fine afterwards.
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1' });
  const marker = await ep(s, 'agent_1', 1);
  await throughMarker(c, marker.event_id);
});

test('process metrics carry the names stock Node.js dashboards expect', OPTS, async (t) => {
  const s = await startServer(t);
  const text = await (await fetch(`${s.url}/metrics`)).text();
  assert.match(text, /^process_cpu_seconds_total \S+$/m);
  assert.match(text, /^process_resident_memory_bytes \S+$/m);
  assert.match(text, /^nodejs_eventloop_lag_p99_seconds \S+$/m);
  assert.doesNotMatch(text, /escai_process_/);
  // Ours keep their prefix; the engine's drops are wired to the node's registry.
  assert.match(text, /^escai_connections(_\w+)? \S+$/m);
  assert.match(text, /^escai_engine_dropped_messages_total\{reason="unparsable"\} \d+$/m);
});
