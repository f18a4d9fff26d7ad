// The Redis engine as a cluster: three real server processes (the CLI) on one
// real Redis under a fresh key prefix, real WebSocket clients, real HTTP.
// Skipped loudly where no Redis answers; mandatory under ESCAI_TEST_REQUIRE=redis.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PublishEventInput } from '../src/protocol/events.js';
import { exitWithin } from './cli-process.js';
import { clusterAvailable, NODE_TTL, publish, sleep, startCluster, token, until, type ClusterNode } from './cluster-support.js';
import {
  api,
  epistemicStateEvent,
  fannedOut,
  handshakeRefusal,
  health,
  throughMarker,
  type ConnectionsBody,
  type DeliveredEvent,
  type ErrorBody,
  type HistoryBody,
} from './helpers.js';

// Processes are spawned per test: one test at a time within this file (2 cores).
const OPTS = { timeout: 45_000, concurrency: false } as const;

test('cross-node delivery: every event type published on node A reaches subscribers on B and C, identical', OPTS, async (t) => {
  if (!(await clusterAvailable(t))) return;
  const cluster = await startCluster(t);
  const [A, B, C] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
  const watcher = await token('watcher', ['researcher']);
  const outsider = await token('outsider', ['researcher']);
  const producer = await token('producer', ['developer']);

  const { client: onA } = await cluster.connect(A, watcher, 'w-a');
  const { client: onB } = await cluster.connect(B, watcher, 'w-b');
  const { client: onC } = await cluster.connect(C, watcher, 'w-c');
  const { client: other } = await cluster.connect(B, outsider, 'o-b');
  for (const client of [onB, onC]) {
    for (const sub of [
      { type: 'epistemic_updates', agent_id: 'agent_1' },
      { type: 'pattern_alerts', agent_id: 'agent_1' },
      { type: 'prediction_updates' }, // all agents
      { type: 'agent_status', agent_id: 'agent_1' },
      { type: 'system_alerts' },
    ]) {
      assert.equal((await client.subscribe(sub)).type, 'subscription_confirmed', JSON.stringify(sub));
    }
  }
  assert.equal((await onA.subscribe({ type: 'system_alerts' })).type, 'subscription_confirmed');
  assert.equal((await other.subscribe({ type: 'system_alerts' })).type, 'subscription_confirmed');

  const events: PublishEventInput[] = [
    epistemicStateEvent('agent_1', 0.9),
    {
      type: 'pattern_alert',
      agent_id: 'agent_1',
      severity: 'high',
      data: { pattern_id: 'p1', pattern_name: 'loop', pattern_type: 'feedback_loop', frequency: 3 },
    },
    { type: 'prediction_update', agent_id: 'agent_1', data: { agent_id: 'agent_1', prediction_type: 'success', predicted_value: 0.7, confidence: 0.8 } },
    { type: 'agent_status_change', agent_id: 'agent_1', status: 'running', metadata: { step: 1 } },
    { type: 'system_alert', alert_type: 'maintenance', message: 'cluster test', severity: 'warning' },
    { type: 'user_notification', user_id: 'watcher', notification_type: 'report_ready', message: 'done', data: { n: 1 } },
  ];
  const answer = await publish(A, producer, events);
  assert.equal(answer.accepted, 6);
  const refs = answer.events;
  // One stream per agent, shared by its four event types; system and user streams of their own.
  assert.deepEqual(
    refs.map((r) => r.offset),
    [1, 2, 3, 4, 1, 1],
  );
  assert.equal(new Set(refs.slice(0, 4).map((r) => r.epoch)).size, 1, 'one epoch for the agent stream');

  for (const [name, client] of [
    ['B', onB],
    ['C', onC],
  ] as const) {
    for (const [i, sent] of events.entries()) {
      const got = await client.next(sent.type, 5000);
      assert.equal(got.event_id, refs[i]!.event_id, `node ${name}: ${sent.type} event_id`);
      assert.equal(got.offset, refs[i]!.offset, `node ${name}: ${sent.type} offset`);
      assert.equal(got.epoch, refs[i]!.epoch, `node ${name}: ${sent.type} epoch`);
    }
    const notification = client.events('user_notification');
    assert.equal(notification.length, 0, `node ${name}: the notification arrived once`);
  }
  // System alerts and user notifications reach every node, the publishing one included.
  const alertOnA = await onA.next('system_alert', 5000);
  assert.equal(alertOnA.event_id, refs[4]!.event_id);
  const noteOnA = await onA.next('user_notification', 5000);
  assert.equal(noteOnA.event_id, refs[5]!.event_id);
  assert.equal(noteOnA.message, 'done');
  const alertOnOther = await other.next('system_alert', 5000);
  assert.equal(alertOnOther.event_id, refs[4]!.event_id);
  // The barrier for what must not arrive: one more event on each stream, published after the rest. One
  // stream's events reach a connection in order, on every node, so once a client has a stream's marker,
  // whatever of that stream was sent to it before has arrived. A client that gets nothing of a stream
  // needs a witness on its node that does: a node hands each event to all its connections at once.
  const { client: witnessA } = await cluster.connect(A, await token('witness', ['researcher']), 'witness-a');
  assert.equal((await witnessA.subscribe({ type: 'epistemic_updates', agent_id: 'agent_1' })).type, 'subscription_confirmed');
  const markers = (
    await publish(A, producer, [
      { type: 'system_alert', alert_type: 'marker', message: 'barrier' },
      { type: 'user_notification', user_id: 'watcher', notification_type: 'marker', message: 'barrier' },
      epistemicStateEvent('agent_1', 0.1),
    ])
  ).events;
  await throughMarker([onA, onB, onC, other], markers[0]!.event_id);
  await throughMarker([onA, onB, onC], markers[1]!.event_id);
  await throughMarker([onB, onC], markers[2]!.event_id);
  await fannedOut(onA, witnessA, markers[2]!.event_id);
  await other.flush(); // onB, on its node, has the notification and the agent marker
  // Nothing but what was subscribed: A's watcher saw no agent events, the outsider no notification of another user.
  assert.deepEqual(onA.events('epistemic_update', 'pattern_alert', 'prediction_update', 'agent_status_change'), []);
  assert.deepEqual(other.events('user_notification', 'epistemic_update'), []);
  for (const client of [onA, onB, onC, other]) {
    assert.deepEqual(client.events('system_alert', 'user_notification', 'recovery_failed', 'error'), [], 'no duplicate, no loss report, no error');
  }
});

test('per-agent order under concurrent publishers on two nodes: offsets 1..400, no gap, no duplicate, on a third node', OPTS, async (t) => {
  if (!(await clusterAvailable(t))) return;
  const cluster = await startCluster(t);
  const [A, B, C] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
  const producer = await token('producer', ['developer']);
  const { client: reader } = await cluster.connect(C, await token('reader', ['researcher']), 'reader');
  const confirmed = await reader.subscribe({ type: 'epistemic_updates', agent_id: 'agent_1' });
  assert.equal(confirmed.type, 'subscription_confirmed');
  assert.equal(confirmed.data.offset, 0);

  const PER_PRODUCER = 200;
  const BATCH = 5;
  const produce = async (node: ClusterNode, name: string) => {
    const refs: Array<{ event_id: string; offset: number; epoch: string }> = [];
    for (let seq = 0; seq < PER_PRODUCER; seq += BATCH) {
      const batch = Array.from({ length: BATCH }, (_, k) => epistemicStateEvent('agent_1', 0.5, { producer: name, seq: seq + k }));
      const answer = await publish(node, producer, batch);
      assert.equal(answer.accepted, BATCH);
      refs.push(...answer.events);
    }
    return refs;
  };
  const [fromA, fromB] = await Promise.all([produce(A, 'A'), produce(B, 'B')]);
  const all = [...fromA, ...fromB];
  assert.deepEqual(
    all.map((r) => r.offset).sort((x, y) => x - y),
    Array.from({ length: 400 }, (_, i) => i + 1),
    'the 202 answers hold every offset 1..400 exactly once',
  );
  assert.equal(new Set(all.map((r) => r.epoch)).size, 1);
  // Within one producer, later publications get later offsets (batches are published in order).
  for (const refs of [fromA, fromB]) for (let i = 1; i < refs.length; i++) assert.ok(refs[i]!.offset > refs[i - 1]!.offset);

  await until(() => (reader.events('epistemic_update').length >= 400 ? true : undefined), 15_000, '400 events on node C');
  // The barrier: a marker after the 400, on the same stream; a duplicate of one of them would arrive before it.
  await throughMarker(reader, (await publish(A, producer, epistemicStateEvent('agent_1', 0.5, { producer: 'marker' }))).events[0]!.event_id, 10_000);
  const got = reader.events('epistemic_update');
  assert.equal(got.length, 400, 'no duplicate');
  assert.deepEqual(
    got.map((e) => e.offset),
    Array.from({ length: 400 }, (_, i) => i + 1),
    'offsets 1..400 in order',
  );
  const byOffset = new Map(all.map((r) => [r.offset, r.event_id]));
  for (const e of got) assert.equal(e.event_id, byOffset.get(e.offset), `event_id at offset ${e.offset}`);
  for (const name of ['A', 'B']) {
    const seqs = got.filter((e) => e.data?.['producer'] === name).map((e) => e.data?.['seq'] as number);
    assert.deepEqual(
      seqs,
      Array.from({ length: PER_PRODUCER }, (_, i) => i),
      `producer ${name}'s events in its order`,
    );
  }
  assert.deepEqual(reader.events('recovery_failed', 'error'), []);
});

test('a node killed with SIGKILL: its client resumes on another node with the same session and loses nothing', OPTS, async (t) => {
  if (!(await clusterAvailable(t))) return;
  const cluster = await startCluster(t);
  const [A, B, C] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
  const producer = await token('producer', ['developer']);
  const userToken = await token('resumer', ['researcher']);
  const SESSION = 'kill-session';
  const { client: first } = await cluster.connect(B, userToken, SESSION);
  assert.equal((await first.subscribe({ type: 'epistemic_updates', agent_id: 'agent_1' })).type, 'subscription_confirmed');

  const TOTAL = 150;
  const KILL_AT = 75;
  const refs: Array<{ event_id: string; offset: number; epoch: string }> = [];
  let killed!: () => void;
  const killedSignal = new Promise<void>((r) => (killed = r));
  const producing = (async () => {
    for (let seq = 1; seq <= TOTAL; seq++) {
      if (seq === KILL_AT) {
        B.proc.child.kill('SIGKILL');
        killed();
      }
      const answer = await publish(A, producer, epistemicStateEvent('agent_1', 0.5, { seq }));
      refs.push(answer.events[0]!);
      await sleep(8);
    }
  })();

  await killedSignal;
  const closed = await first.closeEvent;
  assert.notEqual(closed.code, 1001, 'an unclean death, not a graceful shutdown');
  assert.equal((await B.proc.exited).signal, 'SIGKILL');
  // The client reconnects, same session id and token, through the load balancer: node C.
  const { client: second, hello } = await cluster.connect(C, userToken, SESSION);
  assert.equal(hello.resumed, true, `resumed: ${JSON.stringify(hello)}`);
  assert.equal(hello.recovered, true, 'history still covers what was missed');
  assert.deepEqual(hello.subscriptions, [{ type: 'epistemic_updates', agent_id: 'agent_1', filters: null }]);

  await producing;
  assert.deepEqual(
    refs.map((r) => r.offset),
    Array.from({ length: TOTAL }, (_, i) => i + 1),
  );
  const received = () => [...first.events('epistemic_update'), ...second.events('epistemic_update')];
  const wanted = new Set(refs.map((r) => r.event_id));
  await until(
    () =>
      wanted.size ===
      new Set(
        received()
          .map((e) => e.event_id)
          .filter((id) => wanted.has(id)),
      ).size
        ? true
        : undefined,
    10_000,
    'every event of the producer',
  ).catch((err: Error) => {
    const seen = new Set(received().map((e) => e.event_id));
    throw new Error(
      `${err.message}; missing offsets: ${refs
        .filter((r) => !seen.has(r.event_id))
        .map((r) => r.offset)
        .join(',')}`,
    );
  });
  // The barrier: a marker after the producer's last event, on the same stream; a duplicate would arrive before it.
  await throughMarker(second, (await publish(A, producer, epistemicStateEvent('agent_1', 0.5, { seq: TOTAL + 1 }))).events[0]!.event_id, 10_000);
  const all = received();
  // At least once: a duplicate carries the same event_id, offset and seq; after dedupe, offset order.
  const firstSeen = new Map<string, DeliveredEvent>();
  for (const e of all) {
    const prev = firstSeen.get(e.event_id);
    if (prev) {
      assert.equal(e.offset, prev.offset, 'a duplicate has the same offset');
      assert.equal(e.data?.['seq'], prev.data?.['seq'], 'a duplicate has the same payload');
    } else firstSeen.set(e.event_id, e);
  }
  const deduped = [...firstSeen.values()];
  assert.deepEqual(
    deduped.map((e) => e.offset),
    Array.from({ length: TOTAL }, (_, i) => i + 1),
    'all 150 events, in offset order',
  );
  for (const e of deduped) assert.equal(e.data?.['seq'], e.offset, 'the event at each offset is the one published there');
  // The new connection itself is in order: replay first, then live, no duplicate within it.
  const onSecond = second.events('epistemic_update').map((e) => e.offset);
  assert.ok(onSecond.length > 0, 'node C delivered the rest');
  for (let i = 1; i < onSecond.length; i++) assert.equal(onSecond[i], onSecond[i - 1]! + 1, `node C: offsets ${onSecond.join(',')}`);
  assert.deepEqual(second.events('recovery_failed', 'error'), []);
  t.diagnostic(`received ${all.length} frames for ${TOTAL} events (${all.length - TOTAL} duplicates after the unclean death)`);
});

test('history and recovery from any node: since on node C replays, GET history on node B matches', OPTS, async (t) => {
  if (!(await clusterAvailable(t))) return;
  const cluster = await startCluster(t);
  const [A, B, C] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
  const producer = await token('producer', ['developer']);
  const reader = await token('reader', ['researcher']);
  const kinds = ['e', 'e', 'e', 's', 'e', 'e', 's', 'e'];
  const events = kinds.map((k, i) =>
    k === 'e' ? epistemicStateEvent('agent_1', 0.6, { n: i + 1 }) : { type: 'agent_status_change', agent_id: 'agent_1', status: `step-${i + 1}` },
  );
  const refs = (await publish(A, producer, events)).events;
  assert.deepEqual(
    refs.map((r) => r.offset),
    [1, 2, 3, 4, 5, 6, 7, 8],
  );
  const epoch = refs[0]!.epoch;

  const { client } = await cluster.connect(C, reader, 'recover-c');
  const confirmed = await client.subscribe({ type: 'epistemic_updates', agent_id: 'agent_1', since: { offset: 3, epoch } });
  assert.equal(confirmed.type, 'subscription_confirmed', JSON.stringify(confirmed));
  assert.equal(confirmed.data.recovered, true);
  assert.equal(confirmed.data.offset, 8);
  assert.equal(confirmed.data.epoch, epoch);
  // Then a live event, published on a third node.
  const live = (await publish(B, producer, epistemicStateEvent('agent_1', 0.7, { n: 9 }))).events[0]!;
  assert.equal(live.offset, 9);
  await until(() => (client.events('epistemic_update').length >= 4 ? true : undefined), 5000, 'replay and live event on node C');

  // A stale epoch on another node: recovered false, no replay.
  const { client: stale } = await cluster.connect(B, reader, 'recover-b');
  const staleConfirm = await stale.subscribe({ type: 'epistemic_updates', agent_id: 'agent_1', since: { offset: 3, epoch: 'not-the-epoch' } });
  assert.equal(staleConfirm.type, 'subscription_confirmed', JSON.stringify(staleConfirm));
  assert.equal(staleConfirm.data.recovered, false);
  assert.equal(staleConfirm.data.offset, 9);

  // The history first, while the stream still ends at 9 (the barrier below adds an event).
  const allRefs = [...refs, live];
  const full = await api<HistoryBody>(B, 'GET', '/api/v1/agents/agent_1/events', { token: reader });
  assert.equal(full.status, 200, JSON.stringify(full.body));
  assert.equal(full.body.agent_id, 'agent_1');
  assert.equal(full.body.offset, 9);
  assert.equal(full.body.epoch, epoch);
  assert.equal(full.body.complete, true);
  assert.deepEqual(
    full.body.events.map((e) => e.event_id),
    allRefs.map((r) => r.event_id),
  );
  assert.deepEqual(
    full.body.events.map((e) => e.offset),
    [1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  assert.equal(full.body.events[3]?.status, 'step-4');
  const page = await api<HistoryBody>(B, 'GET', '/api/v1/agents/agent_1/events?since=3&limit=2', { token: reader });
  assert.equal(page.status, 200);
  assert.deepEqual(
    page.body.events.map((e) => e.offset),
    [4, 5],
  );
  assert.equal(page.body.complete, true);
  // The same page from the node that published it.
  const fromA = await api<HistoryBody>(A, 'GET', '/api/v1/agents/agent_1/events?since=3&limit=2', { token: reader });
  assert.deepEqual(fromA.body.events, page.body.events);

  // The barrier before asserting what did not arrive: a marker at offset 10. One stream's events reach a
  // connection in order, so once both clients have it, anything of offsets 1..9 sent to them has arrived.
  const marker = (await publish(A, producer, epistemicStateEvent('agent_1', 0.7, { n: 10 }))).events[0]!;
  assert.equal(marker.offset, 10);
  await throughMarker([client, stale], marker.event_id);
  const got = client.events('epistemic_update');
  assert.deepEqual(
    got.map((e) => e.offset),
    [5, 6, 8, 9],
    'the missed epistemic updates after 3, then the live one',
  );
  assert.deepEqual(
    got.map((e) => e.event_id),
    [refs[4]!.event_id, refs[5]!.event_id, refs[7]!.event_id, live.event_id],
  );
  assert.deepEqual(client.events('agent_status_change'), [], 'the replay passes the subscription type only');
  assert.deepEqual(stale.events('epistemic_update'), [], 'a stale epoch: no replay');
});

test('node registry: /ws/health reports every node and cluster totals; SIGKILL drops out within the TTL, SIGTERM at once', OPTS, async (t) => {
  if (!(await clusterAvailable(t))) return;
  const PER_NODE = 50;
  const cluster = await startCluster(t, { ESCAI_MAX_CONNECTIONS: String(PER_NODE) });
  const [A, B, C] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
  const viewer = (sub: string) => token(sub, ['viewer']);
  await cluster.connect(A, await viewer('u1'), 's1');
  const { client: b1 } = await cluster.connect(B, await viewer('u2'), 's2');
  const { client: b2 } = await cluster.connect(B, await viewer('u3'), 's3');
  await cluster.connect(C, await viewer('u4'), 's4');
  const expected = new Map([
    [A.nodeId, { node: A, active: 1 }],
    [B.nodeId, { node: B, active: 2 }],
    [C.nodeId, { node: C, active: 1 }],
  ]);

  for (const node of [A, B, C]) {
    // Other nodes' figures are as last reported (every TTL/3): wait for them to settle.
    const h = await until(
      async () => {
        const h = await health(node);
        return h.active_connections === 4 && h.nodes.every((n) => n.counters.active_connections === expected.get(n.node_id)?.active) ? h : undefined;
      },
      5000,
      `node ${node.name}: cluster totals`,
    );
    assert.equal(h.engine, 'redis');
    assert.equal(h.node_id, node.nodeId);
    assert.equal(h.nodes.length, 3);
    assert.deepEqual(new Set(h.nodes.map((n) => n.node_id)), new Set(expected.keys()));
    for (const n of h.nodes) {
      const want = expected.get(n.node_id)!;
      assert.equal(n.address, `127.0.0.1:${want.node.port}`, 'address');
      assert.equal(n.counters.active_connections, want.active);
      assert.equal(n.counters.max_connections, PER_NODE);
      assert.equal(typeof n.reported_at, 'number');
      assert.equal(typeof n.started_at, 'string');
    }
    assert.equal(h.max_connections, 3 * PER_NODE);
    assert.equal(h.active_users, 4);
    assert.equal(h.status, 'healthy');
  }

  // SIGKILL: C cannot say goodbye; its entry must expire within the node TTL.
  C.proc.child.kill('SIGKILL');
  await C.proc.exited;
  const killedAt = Date.now();
  const slackMs = 2500;
  const afterKill = await until(
    async () => {
      const h = await health(A);
      return h.nodes.length === 2 ? h : undefined;
    },
    NODE_TTL * 1000 + slackMs,
    `node C to drop out of the registry within ${NODE_TTL} s (+${slackMs} ms slack)`,
  );
  t.diagnostic(`SIGKILLed node dropped out after ${Date.now() - killedAt} ms (node TTL ${NODE_TTL * 1000} ms)`);
  assert.deepEqual(new Set(afterKill.nodes.map((n) => n.node_id)), new Set([A.nodeId, B.nodeId]));
  assert.equal(afterKill.active_connections, 3);
  assert.equal(afterKill.max_connections, 2 * PER_NODE);
  const fromB = await health(B);
  assert.equal(fromB.nodes.length, 2);

  // SIGTERM: B leaves the registry as it stops, not at TTL expiry.
  B.proc.child.kill('SIGTERM');
  const [closeB1, closeB2] = await Promise.all([b1.closeEvent, b2.closeEvent]);
  assert.equal(closeB1.code, 1001);
  assert.equal(closeB2.code, 1001);
  assert.equal((await exitWithin(B.proc)).code, 0);
  const afterTerm = await health(A);
  assert.deepEqual(
    afterTerm.nodes.map((n) => n.node_id),
    [A.nodeId],
    'a SIGTERMed node is gone from the registry at once',
  );
  assert.equal(afterTerm.active_connections, 1);
  assert.equal(afterTerm.max_connections, PER_NODE);
});

test('GET /ws/connections on one node lists the connections of every live node, each with its node_id', OPTS, async (t) => {
  if (!(await clusterAvailable(t))) return;
  const cluster = await startCluster(t);
  const [A, B, C] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
  const admin = await token('ops', ['admin']);
  const { hello: ha } = await cluster.connect(A, await token('u1', ['researcher']), 'conn-a');
  const { client: cb, hello: hb } = await cluster.connect(B, await token('u2', ['researcher']), 'conn-b');
  const { client: cc, hello: hc } = await cluster.connect(C, await token('u3', ['researcher']), 'conn-c');
  assert.equal(
    (await cb.subscribe({ type: 'epistemic_updates', agent_id: 'agent_1', filters: { confidence_level: { min: 0.5 } } })).type,
    'subscription_confirmed',
  );
  assert.equal((await cc.subscribe({ type: 'system_alerts' })).type, 'subscription_confirmed');

  const expected = [
    { id: ha.connection_id, node: A, user: 'u1', session: 'conn-a', subscriptions: [] },
    {
      id: hb.connection_id,
      node: B,
      user: 'u2',
      session: 'conn-b',
      subscriptions: [{ type: 'epistemic_updates', agent_id: 'agent_1', filters: { confidence_level: { min: 0.5 } } }],
    },
    { id: hc.connection_id, node: C, user: 'u3', session: 'conn-c', subscriptions: [{ type: 'system_alerts', agent_id: null, filters: null }] },
  ];
  for (const viewFrom of [A, C]) {
    const body = await until(
      async () => {
        const { status, body } = await api<ConnectionsBody>(viewFrom, 'GET', '/ws/connections', { token: admin });
        assert.equal(status, 200, JSON.stringify(body));
        const ok =
          body.connections.length === 3 &&
          expected.every((e) => body.connections.some((c) => c.connection_id === e.id && c.subscriptions.length === e.subscriptions.length));
        return ok ? body : undefined;
      },
      5000,
      `node ${viewFrom.name} to list all three connections`,
    );
    assert.equal(body.total, 3);
    for (const e of expected) {
      const c = body.connections.find((c) => c.connection_id === e.id);
      assert.ok(c, `connection ${e.id} is listed`);
      assert.equal(c.node_id, e.node.nodeId, `connection on node ${e.node.name} carries its node_id`);
      assert.equal(c.user_id, e.user);
      assert.equal(c.session_id, e.session);
      assert.equal(typeof c.connected_at, 'string');
      assert.deepEqual(c.subscriptions, e.subscriptions);
    }
  }
  const denied = await api<ErrorBody>(A, 'GET', '/ws/connections', { token: await token('u1', ['researcher']) });
  assert.equal(denied.status, 403);
  assert.equal(denied.body.error.code, 'PERMISSION_DENIED');

  // A closed connection leaves the view; so do the connections of a dead node (within the TTL).
  cc.ws.close(1000);
  await cc.closeEvent;
  await until(
    async () =>
      (await api<ConnectionsBody>(A, 'GET', '/ws/connections', { token: admin })).body.connections.some((c) => c.connection_id === hc.connection_id)
        ? undefined
        : true,
    5000,
    'the closed connection to leave the view',
  );
  B.proc.child.kill('SIGKILL');
  await B.proc.exited;
  const after = await until(
    async () => {
      const { body } = await api<ConnectionsBody>(A, 'GET', '/ws/connections', { token: admin });
      return body.connections.some((c) => c.node_id === B.nodeId) ? undefined : body;
    },
    NODE_TTL * 1000 + 2500,
    "the dead node's connections to leave the view",
  );
  assert.deepEqual(
    after.connections.map((c) => c.connection_id),
    [ha.connection_id],
  );
  assert.equal(after.total, 1);
});

test('per-user connection cap across the cluster: refused with 429 USER_CONNECTION_LIMIT before the handshake', OPTS, async (t) => {
  if (!(await clusterAvailable(t))) return;
  const cluster = await startCluster(t, { ESCAI_MAX_CONNECTIONS_PER_USER: '2' });
  const [A, B, C] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
  const capped = await token('capped', ['researcher']);
  const { client: c1 } = await cluster.connect(A, capped, 'cap-1');
  const { client: c2 } = await cluster.connect(B, capped, 'cap-2');

  for (const node of [C, A]) {
    const refusal = await handshakeRefusal(`${node.wsUrl}/ws/monitor/cap-3?token=${encodeURIComponent(capped)}`);
    assert.equal(refusal.status, 429, `node ${node.name}`);
    assert.equal(refusal.body?.error.code, 'USER_CONNECTION_LIMIT');
  }
  // Another user is unaffected.
  const { hello: otherHello } = await cluster.connect(C, await token('someone-else', ['researcher']), 'other-1');
  assert.equal(otherHello.user_id, 'someone-else');
  // The two accepted connections still work.
  assert.equal((await c1.request({ type: 'ping' }, 'pong')).type, 'pong');
  assert.equal((await c2.request({ type: 'ping' }, 'pong')).type, 'pong');

  // One closes: a new connection of the user is accepted (on a third node).
  c1.ws.close(1000);
  await c1.closeEvent;
  const { client: c3, hello } = await until(() => cluster.connect(C, capped, 'cap-3'), 5000, 'a connection after one of the two closed');
  assert.equal(hello.user_id, 'capped');
  assert.equal((await c3.request({ type: 'ping' }, 'pong')).type, 'pong');
  // The cap holds again.
  const again = await handshakeRefusal(`${A.wsUrl}/ws/monitor/cap-4?token=${encodeURIComponent(capped)}`);
  assert.equal(again.status, 429);
  assert.equal(again.body?.error.code, 'USER_CONNECTION_LIMIT');

  // A node that dies holding a slot gives it back once it drops out of the registry.
  B.proc.child.kill('SIGKILL');
  await B.proc.exited;
  const { hello: afterDeath } = await until(() => cluster.connect(A, capped, 'cap-5'), NODE_TTL * 1000 + 2500, "the dead node's slot to free itself");
  assert.equal(afterDeath.user_id, 'capped');
});

test('the agent directory is cluster-wide, and an admin on one node closes a connection held by another', OPTS, async (t) => {
  if (!(await clusterAvailable(t))) return;
  const cluster = await startCluster(t, {}, 2);
  const [A, B] = cluster.nodes as [ClusterNode, ClusterNode];
  const admin = await token('ops', ['admin']);
  const producer = await token('producer', ['developer']);
  await publish(A, producer, [{ type: 'agent_status_change', agent_id: 'x1', status: 'running' }, epistemicStateEvent('x1', 0.4)]);
  await publish(B, producer, [
    epistemicStateEvent('x1', 0.8),
    { type: 'pattern_alert', agent_id: 'x1', severity: 'high', data: { pattern_name: 'retry storm' } },
  ]);
  for (const node of [A, B]) {
    const list = await api<{
      agents: Array<{ agent_id: string; confidence_level: number; status: string; open_alerts: number; events: Record<string, number> }>;
    }>(node, 'GET', '/api/v1/agents', { token: admin });
    assert.equal(list.status, 200);
    const [x1] = list.body.agents;
    assert.equal(x1?.agent_id, 'x1', `node ${node.name} lists the agent`);
    assert.equal(x1.confidence_level, 0.8, 'the latest epistemic update, published on B');
    assert.equal(x1.status, 'running', 'the status, published on A');
    assert.equal(x1.open_alerts, 1);
    assert.deepEqual(x1.events, { epistemic_update: 2, pattern_alert: 1, prediction_update: 0, agent_status_change: 1, agent_activity: 0 });
  }

  const { client, hello } = await cluster.connect(B, await token('u1', ['researcher']), 'to-close');
  // B records its connections in Redis as they open, without holding the greeting back: wait until A sees it.
  await until(
    async () =>
      (await api<ConnectionsBody>(A, 'GET', '/ws/connections', { token: admin })).body.connections.some((c) => c.connection_id === hello.connection_id)
        ? true
        : undefined,
    10_000,
    'node A to see the connection held by B',
  );
  const closing = await api<{ closing: string; node_id: string }>(A, 'DELETE', `/ws/connections/${hello.connection_id}`, { token: admin });
  assert.equal(closing.status, 202, JSON.stringify(closing.body));
  assert.equal(closing.body.node_id, B.nodeId);
  assert.equal((await client.closeEvent).code, 4010);
  const gone = await api<ErrorBody>(A, 'DELETE', '/ws/connections/not-a-connection', { token: admin });
  assert.equal(gone.status, 404);
  assert.equal(gone.body.error.code, 'CONNECTION_NOT_FOUND');
});
