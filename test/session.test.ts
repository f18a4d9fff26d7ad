// Session resume for plain ESCAI clients (no offsets): reconnecting to the same
// session id with a token of the same sub within sessionTtl restores the
// subscriptions and replays what was missed. Real server, real sockets; plus a
// Python ESCAI client disconnected for 10 s (the "done when").
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  confirmed,
  connectionCount,
  epistemicEvent,
  eventsOf,
  publishOne,
  SECRET,
  settle,
  sortedByType,
  startServer,
  type TestClient,
  type TestServer,
} from './helpers.js';
import { need, PYTHON, pythonReady } from './require.js';

const RESEARCHER = { roles: ['researcher'] };

type Drop = 'terminate' | 'close';

/** Disconnects the client and waits until the server has let go of the connection (and parked its session). */
async function disconnect(s: TestServer, c: TestClient, how: Drop): Promise<void> {
  if (how === 'terminate') c.terminate();
  else c.ws.close(1000, 'bye');
  await c.closeEvent;
  await connectionCount(s.server, 0, 3000, 'the server to notice the disconnect');
}

// ---- the main resume path ---------------------------------------------------

for (const how of ['terminate', 'close'] as const) {
  test(`resume after ${how === 'terminate' ? 'a dropped socket' : 'a clean close'}: subscriptions back, exactly the missed matching events in order, then live`, {
    timeout: 60_000,
  }, async (t) => {
    const s = await startServer(t);
    const filters = { confidence_level: { min: 0.5 } };
    const first = await s.open({ sub: 'alice', ...RESEARCHER }, { session: 'sess-A' });
    assert.equal(first.hello.resumed, false);
    await confirmed(first.client, { type: 'epistemic_updates', agent_id: 'agent_1', filters });
    await confirmed(first.client, { type: 'system_alerts' });
    // Two events before the drop: received live, never again.
    await publishOne(s, epistemicEvent('agent_1', 0, 0.9));
    await publishOne(s, epistemicEvent('agent_1', 0, 0.9));
    const before = eventsOf(await first.client.drain());
    assert.deepEqual(
      before.map((m) => m.offset),
      [1, 2],
    );

    await disconnect(s, first.client, how);
    const missed: number[] = [];
    for (let i = 1; i <= 50; i++) {
      const conf = i % 2 === 0 ? 0.9 : 0.2;
      const r = await publishOne(s, epistemicEvent('agent_1', i, conf));
      if (conf >= 0.5) missed.push(r.offset);
      // Noise the subscriptions do not ask for.
      if (i % 10 === 0) {
        await publishOne(s, { type: 'pattern_alert', agent_id: 'agent_1', data: { pattern_name: 'x' } });
        await publishOne(s, epistemicEvent('agent_2', i, 0.9));
      }
    }
    const sys = await publishOne(s, { type: 'system_alert', alert_type: 'maintenance', message: 'while away' });

    const second = await s.open({ sub: 'alice', ...RESEARCHER }, { session: 'sess-A' });
    assert.equal(second.hello.resumed, true, JSON.stringify(second.hello));
    assert.equal(second.hello.recovered, true);
    assert.equal(second.hello.session_id, 'sess-A');
    assert.notEqual(second.hello.connection_id, first.hello.connection_id);
    const restored = sortedByType(second.hello.subscriptions);
    assert.deepEqual(restored, [
      { type: 'epistemic_updates', agent_id: 'agent_1', filters },
      { type: 'system_alerts', agent_id: null, filters: null },
    ]);
    assert.equal(second.hello.dropped_subscriptions, undefined);

    const replay = eventsOf(await second.client.drain());
    const agentEvents = replay.filter((m) => m.type === 'epistemic_update');
    assert.deepEqual(
      agentEvents.map((m) => m.offset),
      missed,
      'exactly the missed matching events, in order',
    );
    assert.deepEqual(
      agentEvents.map((m) => m.data?.['seq']),
      missed.map((_, i) => (i + 1) * 2),
    );
    assert.ok(agentEvents.every((m) => m.agent_id === 'agent_1'));
    assert.deepEqual(
      replay.filter((m) => m.type === 'system_alert').map((m) => m.event_id),
      [sys.event_id],
    );
    assert.equal(
      replay.length,
      agentEvents.length + 1,
      `nothing else: ${JSON.stringify(replay.filter((m) => m.type !== 'epistemic_update' && m.type !== 'system_alert'))}`,
    );

    // Live events follow, and nothing is delivered twice.
    const live = await publishOne(s, epistemicEvent('agent_1', 51, 0.95));
    await publishOne(s, epistemicEvent('agent_1', 52, 0.1));
    const after = eventsOf(await second.client.drain());
    assert.deepEqual(
      after.map((m) => m.offset),
      [live.offset],
    );
  });
}

test('a clean close while a producer keeps publishing: what the old connection got plus the resume is every event, each once', {
  timeout: 60_000,
}, async (t) => {
  const s = await startServer(t);
  const first = await s.open({ sub: 'alice', ...RESEARCHER }, { session: 'sess-P' });
  await confirmed(first.client, { type: 'epistemic_updates', agent_id: 'agent_1' });
  const TOTAL = 200;
  let closed = false;
  const producer = (async () => {
    for (let i = 1; i <= TOTAL; i++) {
      await publishOne(s, epistemicEvent('agent_1', i, 0.9));
      if (i === 60) {
        first.client.ws.close(1000, 'bye');
        void first.client.closeEvent.then(() => (closed = true));
      }
      await new Promise((r) => setImmediate(r));
    }
  })();
  await producer;
  await first.client.closeEvent;
  assert.ok(closed);
  await connectionCount(s.server, 0, 3000, 'the server to notice the disconnect');
  const got = first.client.events('epistemic_update').map((m) => m.offset);
  const second = await s.open({ sub: 'alice', ...RESEARCHER }, { session: 'sess-P' });
  assert.equal(second.hello.resumed, true);
  assert.equal(second.hello.recovered, true);
  const replayed = eventsOf(await second.client.drain()).map((m) => m.offset);
  const all = [...got, ...replayed];
  assert.equal(new Set(all).size, all.length, `no duplicate (old connection ended at ${got.at(-1)}, replay starts at ${replayed[0]})`);
  assert.deepEqual(
    all,
    Array.from({ length: TOTAL }, (_, i) => i + 1),
    `no gap: old connection ended at ${got.at(-1)}, replay starts at ${replayed[0]}`,
  );
});

test('all-agents subscriptions are resumed: events of monitorable agents, including a stream never seen before', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const viewer = { sub: 'vera', roles: ['viewer'], permissions: ['agent:agent_1:monitor', 'agent:agent_3:monitor'] };
  // agent_3 published before the subscription existed: never part of the replay.
  await publishOne(s, epistemicEvent('agent_3', 0, 0.9));
  const first = await s.open(viewer, { session: 'sess-all' });
  await confirmed(first.client, { type: 'epistemic_updates', filters: { confidence_level: { min: 0.5 } } });
  await publishOne(s, epistemicEvent('agent_1', 0, 0.9));
  assert.deepEqual(
    eventsOf(await first.client.drain()).map((m) => [m.agent_id, m.offset]),
    [['agent_1', 1]],
  );
  await disconnect(s, first.client, 'terminate');

  const expected1: number[] = [];
  const expected3: number[] = [];
  for (let i = 1; i <= 12; i++) {
    const conf = i % 3 === 0 ? 0.1 : 0.8;
    const r1 = await publishOne(s, epistemicEvent('agent_1', i, conf));
    if (conf >= 0.5) expected1.push(r1.offset);
    await publishOne(s, epistemicEvent('agent_2', i, 0.9)); // not monitorable
    const r3 = await publishOne(s, epistemicEvent('agent_3', i, conf));
    if (conf >= 0.5) expected3.push(r3.offset);
    await publishOne(s, { type: 'agent_status_change', agent_id: 'agent_1', status: 'running' }); // another type
  }

  const second = await s.open(viewer, { session: 'sess-all' });
  assert.equal(second.hello.resumed, true);
  assert.equal(second.hello.recovered, true);
  assert.deepEqual(second.hello.subscriptions, [{ type: 'epistemic_updates', agent_id: null, filters: { confidence_level: { min: 0.5 } } }]);
  const replay = eventsOf(await second.client.drain());
  assert.ok(
    replay.every((m) => m.type === 'epistemic_update'),
    JSON.stringify(replay.map((m) => m.type)),
  );
  assert.deepEqual(
    replay.filter((m) => m.agent_id === 'agent_1').map((m) => m.offset),
    expected1,
  );
  assert.deepEqual(
    replay.filter((m) => m.agent_id === 'agent_3').map((m) => m.offset),
    expected3,
    'the stream first seen while away is replayed from the subscription on',
  );
  assert.equal(replay.filter((m) => m.agent_id === 'agent_2').length, 0, 'an agent the user may not monitor');
  assert.equal(replay.length, expected1.length + expected3.length);

  await publishOne(s, epistemicEvent('agent_2', 99, 0.9));
  const live3 = await publishOne(s, epistemicEvent('agent_3', 99, 0.9));
  assert.deepEqual(
    eventsOf(await second.client.drain()).map((m) => [m.agent_id, m.offset]),
    [['agent_3', live3.offset]],
  );
});

test("user notifications sent while disconnected are replayed on resume (and only the user's own)", { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const first = await s.open({ sub: 'nora', roles: ['viewer'] }, { session: 'sess-n' });
  await s.server.sendUserNotification('nora', 'report_ready', 'before');
  assert.deepEqual(
    eventsOf(await first.client.drain()).map((m) => m.message),
    ['before'],
  );
  await disconnect(s, first.client, 'terminate');
  for (let i = 1; i <= 5; i++) {
    await s.server.sendUserNotification('nora', 'report_ready', `away-${i}`, { i });
    await s.server.sendUserNotification('other', 'report_ready', `other-${i}`);
  }
  const second = await s.open({ sub: 'nora', roles: ['viewer'] }, { session: 'sess-n' });
  assert.equal(second.hello.resumed, true);
  assert.equal(second.hello.recovered, true);
  assert.deepEqual(second.hello.subscriptions, []);
  const replay = eventsOf(await second.client.drain());
  assert.deepEqual(
    replay.map((m) => [m.type, m.message, m.offset]),
    [1, 2, 3, 4, 5].map((i) => ['user_notification', `away-${i}`, i + 1]),
  );
  await s.server.sendUserNotification('nora', 'report_ready', 'live');
  assert.deepEqual(
    eventsOf(await second.client.drain()).map((m) => m.message),
    ['live'],
  );
});

test('notifications are replayed on resume even when the user never received one before', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const first = await s.open({ sub: 'nick', roles: ['viewer'] }, { session: 'sess-n2' });
  await disconnect(s, first.client, 'close');
  await s.server.sendUserNotification('nick', 'alert', 'n1');
  await s.server.sendUserNotification('nick', 'alert', 'n2');
  const second = await s.open({ sub: 'nick', roles: ['viewer'] }, { session: 'sess-n2' });
  assert.equal(second.hello.resumed, true);
  assert.deepEqual(
    eventsOf(await second.client.drain()).map((m) => m.message),
    ['n1', 'n2'],
  );
});

test('a restored subscription keeps working: get_subscriptions lists it, unsubscribe removes it', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const filters = { 'knowledge_state.confidence': { min: 0.5 } };
  const first = await s.open({ sub: 'alice', ...RESEARCHER }, { session: 'sess-u' });
  await confirmed(first.client, { type: 'epistemic_updates', agent_id: 'agent_1', filters });
  await confirmed(first.client, { type: 'agent_status', agent_id: 'agent_1' });
  await disconnect(s, first.client, 'terminate');
  const second = await s.open({ sub: 'alice', ...RESEARCHER }, { session: 'sess-u' });
  assert.equal(second.hello.resumed, true);
  const list = await second.client.expectReply({ type: 'get_subscriptions' }, 'subscriptions_list');
  const subs = sortedByType(list.data.subscriptions);
  assert.deepEqual(subs, [
    { type: 'agent_status', agent_id: 'agent_1', filters: null },
    { type: 'epistemic_updates', agent_id: 'agent_1', filters },
  ]);
  // Subscribing again is refused: it is active.
  const dup = await second.client.subscribe({ type: 'agent_status', agent_id: 'agent_1' });
  assert.equal(dup.type, 'error');
  assert.equal(dup.code, 'SUBSCRIPTION_EXISTS');

  await publishOne(s, { type: 'epistemic_update', agent_id: 'agent_1', data: { knowledge_state: { facts: [], confidence: 0.9 } } });
  await publishOne(s, { type: 'epistemic_update', agent_id: 'agent_1', data: { knowledge_state: { facts: [], confidence: 0.1 } } });
  await publishOne(s, { type: 'agent_status_change', agent_id: 'agent_1', status: 'running' });
  assert.deepEqual(
    eventsOf(await second.client.drain()).map((m) => [m.type, m.offset]),
    [
      ['epistemic_update', 1],
      ['agent_status_change', 3],
    ],
  );

  const u = await second.client.request(
    { type: 'unsubscribe', data: { subscription_type: 'epistemic_updates', agent_id: 'agent_1' } },
    'unsubscription_confirmed',
  );
  assert.equal(u.type, 'unsubscription_confirmed', JSON.stringify(u));
  await publishOne(s, { type: 'epistemic_update', agent_id: 'agent_1', data: { knowledge_state: { facts: [], confidence: 0.9 } } });
  await publishOne(s, { type: 'agent_status_change', agent_id: 'agent_1', status: 'done' });
  assert.deepEqual(
    eventsOf(await second.client.drain()).map((m) => [m.type, m.offset]),
    [['agent_status_change', 5]],
  );
  const list2 = await second.client.expectReply({ type: 'get_subscriptions' }, 'subscriptions_list');
  assert.deepEqual(list2.data.subscriptions, [{ type: 'agent_status', agent_id: 'agent_1', filters: null }]);
});

test('another sub on the same session id does not resume it; the owner still can', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const first = await s.open({ sub: 'alice', ...RESEARCHER }, { session: 'shared-id' });
  await confirmed(first.client, { type: 'epistemic_updates', agent_id: 'agent_1' });
  await disconnect(s, first.client, 'terminate');
  for (let i = 1; i <= 5; i++) await publishOne(s, epistemicEvent('agent_1', i, 0.9));

  const mallory = await s.open({ sub: 'mallory', ...RESEARCHER }, { session: 'shared-id' });
  assert.equal(mallory.hello.resumed, false);
  assert.equal(mallory.hello.user_id, 'mallory');
  assert.ok(!mallory.hello.subscriptions || mallory.hello.subscriptions.length === 0, JSON.stringify(mallory.hello));
  await publishOne(s, epistemicEvent('agent_1', 6, 0.9));
  assert.deepEqual(eventsOf(await mallory.client.drain()), [], "no replay and no live events of the other user's subscriptions");
  const list = await mallory.client.expectReply({ type: 'get_subscriptions' }, 'subscriptions_list');
  assert.deepEqual(list.data.subscriptions, []);

  const owner = await s.open({ sub: 'alice', ...RESEARCHER }, { session: 'shared-id' });
  assert.equal(owner.hello.resumed, true);
  assert.deepEqual(
    eventsOf(await owner.client.drain()).map((m) => m.offset),
    [1, 2, 3, 4, 5, 6],
  );
});

test('an expired session (sessionTtl 0.5 s) starts fresh', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { sessionTtl: 0.5 });
  const first = await s.open({ sub: 'alice', ...RESEARCHER }, { session: 'sess-e' });
  await confirmed(first.client, { type: 'epistemic_updates', agent_id: 'agent_1' });
  await disconnect(s, first.client, 'terminate');
  await publishOne(s, epistemicEvent('agent_1', 1, 0.9));
  await sleep(800);
  const second = await s.open({ sub: 'alice', ...RESEARCHER }, { session: 'sess-e' });
  assert.equal(second.hello.resumed, false);
  assert.ok(!second.hello.subscriptions || second.hello.subscriptions.length === 0, JSON.stringify(second.hello));
  await publishOne(s, epistemicEvent('agent_1', 2, 0.9));
  assert.deepEqual(eventsOf(await second.client.drain()), []);
  const list = await second.client.expectReply({ type: 'get_subscriptions' }, 'subscriptions_list');
  assert.deepEqual(list.data.subscriptions, []);
});

test('within sessionTtl (0.5 s) the same session resumes (control for the expiry test)', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { sessionTtl: 0.5 });
  const first = await s.open({ sub: 'alice', ...RESEARCHER }, { session: 'sess-e2' });
  await confirmed(first.client, { type: 'epistemic_updates', agent_id: 'agent_1' });
  await disconnect(s, first.client, 'terminate');
  await publishOne(s, epistemicEvent('agent_1', 1, 0.9));
  const second = await s.open({ sub: 'alice', ...RESEARCHER }, { session: 'sess-e2' });
  assert.equal(second.hello.resumed, true);
  assert.deepEqual(
    eventsOf(await second.client.drain()).map((m) => m.offset),
    [1],
  );
});

test('sessionTtl 0 disables resume', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { sessionTtl: 0 });
  const first = await s.open({ sub: 'alice', ...RESEARCHER }, { session: 'sess-0' });
  await confirmed(first.client, { type: 'epistemic_updates', agent_id: 'agent_1' });
  await disconnect(s, first.client, 'terminate');
  await publishOne(s, epistemicEvent('agent_1', 1, 0.9));
  const second = await s.open({ sub: 'alice', ...RESEARCHER }, { session: 'sess-0' });
  assert.equal(second.hello.resumed, false);
  await publishOne(s, epistemicEvent('agent_1', 2, 0.9));
  assert.deepEqual(eventsOf(await second.client.drain()), []);
});

test('resume after history was lost: resumed, recovered false, no partial replay; live events flow', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { historySize: 5 });
  const first = await s.open({ sub: 'alice', ...RESEARCHER }, { session: 'sess-h' });
  await confirmed(first.client, { type: 'epistemic_updates', agent_id: 'agent_1' });
  await publishOne(s, epistemicEvent('agent_1', 1, 0.9));
  assert.equal(eventsOf(await first.client.drain()).length, 1);
  await disconnect(s, first.client, 'terminate');
  for (let i = 2; i <= 30; i++) await publishOne(s, epistemicEvent('agent_1', i, 0.9));
  const second = await s.open({ sub: 'alice', ...RESEARCHER }, { session: 'sess-h' });
  assert.equal(second.hello.resumed, true);
  assert.equal(second.hello.recovered, false);
  assert.deepEqual(second.hello.subscriptions, [{ type: 'epistemic_updates', agent_id: 'agent_1', filters: null }]);
  assert.deepEqual(eventsOf(await second.client.drain()), [], 'none of the kept tail is replayed');
  await publishOne(s, epistemicEvent('agent_1', 31, 0.9));
  assert.deepEqual(
    eventsOf(await second.client.drain()).map((m) => m.offset),
    [31],
  );
});

test('a resume with a token lacking a permission the old one had drops that subscription and delivers nothing of it', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const before = { sub: 'vic', roles: ['viewer'], permissions: ['agent:agent_1:monitor', 'agent:agent_2:monitor'] };
  const after = { sub: 'vic', roles: ['viewer'], permissions: ['agent:agent_2:monitor'] };
  const first = await s.open(before, { session: 'sess-d' });
  await confirmed(first.client, { type: 'epistemic_updates', agent_id: 'agent_1' });
  await confirmed(first.client, { type: 'epistemic_updates', agent_id: 'agent_2' });
  await confirmed(first.client, { type: 'agent_status' }); // all agents: checked per event
  await disconnect(s, first.client, 'terminate');
  for (let i = 1; i <= 4; i++) {
    await publishOne(s, epistemicEvent('agent_1', i, 0.9));
    await publishOne(s, epistemicEvent('agent_2', i, 0.9));
    await publishOne(s, { type: 'agent_status_change', agent_id: 'agent_1', status: `s${i}` });
    await publishOne(s, { type: 'agent_status_change', agent_id: 'agent_2', status: `s${i}` });
  }
  const second = await s.open(after, { session: 'sess-d' });
  assert.equal(second.hello.resumed, true);
  assert.ok(Array.isArray(second.hello.dropped_subscriptions), JSON.stringify(second.hello));
  assert.equal(second.hello.dropped_subscriptions.length, 1);
  assert.match(second.hello.dropped_subscriptions[0]!, /epistemic_updates/);
  assert.match(second.hello.dropped_subscriptions[0]!, /agent_1/);
  const subs = sortedByType(second.hello.subscriptions);
  assert.deepEqual(subs, [
    { type: 'agent_status', agent_id: null, filters: null },
    { type: 'epistemic_updates', agent_id: 'agent_2', filters: null },
  ]);
  const replay = eventsOf(await second.client.drain());
  assert.ok(replay.length > 0);
  assert.ok(
    replay.every((m) => m.agent_id === 'agent_2'),
    `nothing of agent_1: ${JSON.stringify(replay.map((m) => [m.type, m.agent_id]))}`,
  );
  assert.deepEqual(
    replay.filter((m) => m.type === 'epistemic_update').map((m) => m.data?.['seq']),
    [1, 2, 3, 4],
  );
  assert.deepEqual(
    replay.filter((m) => m.type === 'agent_status_change').map((m) => m.status),
    ['s1', 's2', 's3', 's4'],
  );

  await publishOne(s, epistemicEvent('agent_1', 5, 0.9));
  await publishOne(s, { type: 'agent_status_change', agent_id: 'agent_1', status: 'live' });
  await publishOne(s, epistemicEvent('agent_2', 5, 0.9));
  assert.deepEqual(
    eventsOf(await second.client.drain()).map((m) => [m.type, m.agent_id]),
    [['epistemic_update', 'agent_2']],
  );
});

// ---- Python ESCAI client: 10 s away, 50 events, all received in order -----

const SCRIPT = fileURLToPath(new URL('./interop/escai_resume.py', import.meta.url));

test('a plain Python ESCAI client disconnected for 10 s while 50 events are published receives all 50, in order, after reconnecting with the same session id', {
  timeout: 60_000,
}, async (t) => {
  const py = pythonReady();
  if (!need(t, 'python', py.ok, `${PYTHON} with websockets and jwt: ${py.why}`)) return;
  const s = await startServer(t);
  const child = spawn(PYTHON, [SCRIPT, s.url, SECRET, '10'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null) child.kill();
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const lines: string[] = [];
  let published = 0;
  let publishing: Promise<void> | undefined;
  const rl = createInterface({ input: child.stdout });
  rl.on('line', (line) => {
    lines.push(line);
    if (line === 'DISCONNECTED') {
      publishing = (async () => {
        await connectionCount(s.server, 0, 5000, 'the server to notice the Python client left');
        // 50 events spread over the first ~5 s of the absence; a low-confidence one and another agent's in between.
        for (let seq = 1; seq <= 50; seq++) {
          await publishOne(s, epistemicEvent('agent_1', seq, 0.9));
          published++;
          if (seq % 10 === 0) await publishOne(s, epistemicEvent('agent_2', seq, 0.9));
          await sleep(100);
        }
      })();
    }
  });
  const code = await exited;
  await publishing;
  assert.equal(code, 0, `python exited ${code}: ${lines.join('\n')}\n${stderr}`);
  assert.ok(lines.includes('READY') && lines.includes('DISCONNECTED'), lines.join('\n'));
  assert.equal(published, 50);
  const result = JSON.parse(lines.at(-1)!);
  assert.equal(result.resumed, true, JSON.stringify(result));
  assert.ok(result.away_seconds >= 10, `away ${result.away_seconds} s`);
  assert.deepEqual(
    result.seqs,
    Array.from({ length: 50 }, (_, i) => i + 1),
    'all 50, in order',
  );
  assert.equal(result.offsets_increasing, true);
  assert.equal(result.extra, 0, 'nothing more (no duplicate) before the pong');
  assert.deepEqual(result.subscriptions, [{ type: 'epistemic_updates', agent_id: 'agent_1', filters: null }]);
});

test('ids containing ":" cannot reach another user\'s session (engine keys are escaped)', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const alice = await s.open({ sub: 'alice', roles: ['researcher'] }, { session: 'team:dash' });
  await confirmed(alice.client, { type: 'epistemic_updates', agent_id: 'secret-agent' });
  await disconnect(s, alice.client, 'close');
  const other = await s.open({ sub: 'alice:team', roles: ['researcher'] }, { session: 'dash' });
  assert.equal(other.hello.resumed, false);
  const again = await s.open({ sub: 'alice', roles: ['researcher'] }, { session: 'team:dash' });
  assert.equal(again.hello.resumed, true);
  assert.deepEqual(
    again.hello.subscriptions?.map((x) => x.agent_id),
    ['secret-agent'],
  );
});

test('a request still in flight when the client leaves does not wipe the parked session', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const tok = await s.token({ sub: 'user_1', roles: ['researcher'] });
  for (let i = 0; i < 10; i++) {
    const { client: c } = await s.open(tok, { session: 'racy' });
    if (i === 0) await confirmed(c, { type: 'epistemic_updates', agent_id: 'agent_1' });
    else assert.equal(c.received.length, 0);
    // A refresh (async token verification) races the disconnect: the socket is gone before the refresh is handled.
    c.send({ type: 'refresh', data: { token: tok } });
    c.terminate();
    await c.closeEvent;
    await connectionCount(s.server, 0, 3000, 'the server to let go');
    await settle(20);
    const { client: next, hello } = await s.open(tok, { session: 'racy' });
    assert.equal(hello.resumed, true, `round ${i}`);
    assert.deepEqual(
      hello.subscriptions?.map((x) => x.agent_id),
      ['agent_1'],
      `round ${i}: subscriptions survive`,
    );
    next.ws.close(1000);
    await next.closeEvent;
    await connectionCount(s.server, 0, 3000, 'the server to let go');
  }
});
