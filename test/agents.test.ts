// The agent-state API and what the console needs from the server: the agent
// list (activity order, cursor pages, only permitted agents), one agent's
// current state outliving history, newest-first history, `latest` on
// subscribe, CORS for the REST API, an admin closing a connection, and
// metrics by Prometheus conventions (protected, or on a port of their own).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import type { AgentPage, AgentRecord } from '../src/protocol/api.js';
import {
  api,
  confirmed,
  connectionCount,
  eventsOf,
  eventually,
  handshakeRefusal,
  publishOne,
  refusal,
  settle,
  startServer,
  type HistoryBody,
  type TestServer,
} from './helpers.js';

const RESEARCHER = { sub: 'ada', roles: ['researcher'] };
const ADMIN = { sub: 'root', roles: ['admin'] };

/** Publishes one after another, a few ms apart: activity order is by publish time (ms), ties by agent id. */
async function publishAll(s: TestServer, events: unknown[]): Promise<void> {
  for (const event of events) {
    await s.server.publish(event);
    await settle(3);
  }
}

const epistemicOf = (agentId: string, confidence: number, extra: Record<string, unknown> = {}) => ({
  type: 'epistemic_update',
  agent_id: agentId,
  data: { confidence_level: confidence, uncertainty_score: Math.round((1 - confidence) * 100) / 100, ...extra },
});

test('GET /api/v1/agents: every agent by last activity with its current figures and their positions, cut into cursor pages without overlap or gap', {
  timeout: 60_000,
}, async (t) => {
  const s = await startServer(t);
  const token = await s.token(RESEARCHER);
  for (const id of ['a1', 'a2', 'a3', 'a4', 'a5']) await publishAll(s, [epistemicOf(id, 0.5)]);
  await publishAll(s, [
    { type: 'agent_status_change', agent_id: 'a2', status: 'running' },
    epistemicOf('a2', 0.8),
    { type: 'pattern_alert', agent_id: 'a2', severity: 'critical', data: { pattern_name: 'loop' } },
    { type: 'pattern_alert', agent_id: 'a2', severity: 'info', data: { pattern_name: 'fine' } },
    { type: 'prediction_update', agent_id: 'a2', data: { risk_level: 'high' } },
  ]);
  const first = await api<AgentPage>(s, 'GET', '/api/v1/agents?limit=2', { token });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.deepEqual(
    first.body.agents.map((a) => a.agent_id),
    ['a2', 'a5'],
    'most recent activity first',
  );
  const a2 = first.body.agents[0]!;
  assert.equal(a2.status, 'running');
  assert.equal(a2.confidence_level, 0.8);
  assert.equal(a2.uncertainty_score, 0.2);
  assert.equal(a2.open_alerts, 1, 'the critical alert is open; the info one is not counted');
  assert.deepEqual(a2.events, { epistemic_update: 2, pattern_alert: 2, prediction_update: 1, agent_status_change: 1, agent_activity: 0 });
  assert.match(a2.last_event_at, /Z$/);
  // Where each figure came from, in a2's stream (epistemic 1, status 2, epistemic 3, alerts 4 and 5, prediction 6): a client merges by these, not by clocks.
  const epoch = a2.positions.status?.epoch;
  assert.ok(epoch);
  assert.deepEqual(a2.positions, { status: { epoch, offset: 2 }, epistemic: { epoch, offset: 3 }, alert: { epoch, offset: 5 }, activity: null });
  assert.ok(first.body.next_cursor);

  const seen = [...first.body.agents.map((a) => a.agent_id)];
  let cursor: string | null = first.body.next_cursor;
  while (cursor) {
    const page: { status: number; body: AgentPage } = await api<AgentPage>(s, 'GET', `/api/v1/agents?limit=2&cursor=${encodeURIComponent(cursor)}`, { token });
    assert.equal(page.status, 200);
    seen.push(...page.body.agents.map((a) => a.agent_id));
    cursor = page.body.next_cursor;
  }
  assert.deepEqual(seen, ['a2', 'a5', 'a4', 'a3', 'a1'], 'every agent once, in activity order');

  refusal(await api(s, 'GET', '/api/v1/agents?limit=0', { token }), 400, 'VALIDATION_ERROR');
  refusal(await api(s, 'GET', '/api/v1/agents'), 401, 'TOKEN_MISSING');
});

test('GET /api/v1/agents lists only the agents the caller may monitor', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  for (const id of ['mine', 'other', 'also-mine']) await publishAll(s, [epistemicOf(id, 0.4)]);
  const viewer = await s.token({ sub: 'vic', roles: ['viewer'], permissions: ['agent:mine:monitor', 'agent:also-mine:monitor', 'agent:never-seen:monitor'] });
  const page = await api<AgentPage>(s, 'GET', '/api/v1/agents', { token: viewer });
  assert.equal(page.status, 200);
  assert.deepEqual(
    page.body.agents.map((a) => a.agent_id),
    ['also-mine', 'mine'],
  );
  const nobody = await s.token({ sub: 'nil', roles: ['viewer'] });
  assert.deepEqual((await api<AgentPage>(s, 'GET', '/api/v1/agents', { token: nobody })).body.agents, []);
});

test('GET /api/v1/agents/{id}: the latest epistemic state and status, recent alerts and predictions newest first, and the stream position', {
  timeout: 60_000,
}, async (t) => {
  const s = await startServer(t);
  const token = await s.token(RESEARCHER);
  await publishAll(s, [
    epistemicOf('solo', 0.3, { belief_states: [{ content: 'old', confidence: 0.3 }] }),
    { type: 'pattern_alert', agent_id: 'solo', severity: 'warning', data: { pattern_name: 'first' } },
    { type: 'agent_status_change', agent_id: 'solo', status: 'waiting' },
    { type: 'prediction_update', agent_id: 'solo', data: { risk_level: 'low', predicted_value: 0.9 } },
    { type: 'pattern_alert', agent_id: 'solo', severity: 'high', data: { pattern_name: 'second' } },
  ]);
  const last = await publishOne(s, epistemicOf('solo', 0.7, { belief_states: [{ content: 'new', confidence: 0.7 }] }) as never);
  const r = await api<AgentRecord & { offset: number; epoch: string }>(s, 'GET', '/api/v1/agents/solo', { token });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.latest_epistemic?.data?.['confidence_level'], 0.7);
  assert.deepEqual(r.body.latest_epistemic?.data?.['belief_states'], [{ content: 'new', confidence: 0.7 }]);
  assert.equal(r.body.latest_status?.status, 'waiting');
  assert.equal(r.body.status, 'waiting');
  assert.deepEqual(
    r.body.alerts.map((a) => a.data?.['pattern_name']),
    ['second', 'first'],
  );
  assert.deepEqual(
    r.body.predictions.map((p) => p.data?.['risk_level']),
    ['low'],
  );
  assert.equal(r.body.open_alerts, 2);
  assert.equal(r.body.offset, last.offset);
  assert.equal(r.body.epoch, last.epoch);

  refusal(await api(s, 'GET', '/api/v1/agents/nobody-here', { token }), 404, 'AGENT_NOT_FOUND');
  const viewer = await s.token({ sub: 'vic', roles: ['viewer'] });
  refusal(await api(s, 'GET', '/api/v1/agents/solo', { token: viewer }), 403, 'AGENT_ACCESS_DENIED');
});

test('DELETE /api/v1/agents/{id} (admin) removes an agent from the list; its history stays; its next event brings it back', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const admin = await s.token(ADMIN);
  const researcher = await s.token(RESEARCHER);
  await publishAll(s, [
    epistemicOf('junk', 0.5),
    { type: 'pattern_alert', agent_id: 'junk', severity: 'high', data: { pattern_name: 'x' } },
    epistemicOf('keep', 0.6),
  ]);
  const ids = async () => (await api<AgentPage>(s, 'GET', '/api/v1/agents', { token: researcher })).body.agents.map((a) => a.agent_id);
  assert.deepEqual(await ids(), ['keep', 'junk']);

  refusal(await api(s, 'DELETE', '/api/v1/agents/junk', { token: researcher }), 403, 'PERMISSION_DENIED');
  refusal(await api(s, 'DELETE', '/api/v1/agents/junk'), 401, 'TOKEN_MISSING');
  refusal(await api(s, 'DELETE', '/api/v1/agents/bad%20id', { token: admin }), 400, 'VALIDATION_ERROR');
  const removed = await api<{ removed: string }>(s, 'DELETE', '/api/v1/agents/junk', { token: admin });
  assert.equal(removed.status, 200, JSON.stringify(removed.body));
  assert.equal(removed.body.removed, 'junk');
  assert.deepEqual(await ids(), ['keep'], 'gone from the list');
  refusal(await api(s, 'GET', '/api/v1/agents/junk', { token: researcher }), 404, 'AGENT_NOT_FOUND');
  refusal(await api(s, 'DELETE', '/api/v1/agents/junk', { token: admin }), 404, 'AGENT_NOT_FOUND');
  const history = await api<HistoryBody>(s, 'GET', '/api/v1/agents/junk/events', { token: researcher });
  assert.equal(history.body.events.length, 2, 'its history stays until it ages out');

  await publishAll(s, [epistemicOf('junk', 0.9)]);
  assert.deepEqual(await ids(), ['junk', 'keep'], 'an agent that publishes again is back');
  const back = (await api<AgentRecord>(s, 'GET', '/api/v1/agents/junk', { token: researcher })).body;
  assert.deepEqual(back.events, { epistemic_update: 1, pattern_alert: 0, prediction_update: 0, agent_status_change: 0, agent_activity: 0 }, 'counted afresh');
  assert.equal(back.open_alerts, 0, 'its old alerts went with it');
});

test('a batch leaves the same agent state as its events published one by one (counts, newest of each kind, the last 20 alerts and predictions)', {
  timeout: 60_000,
}, async (t) => {
  const s = await startServer(t);
  const token = await s.token(RESEARCHER);
  const eventsFor = (agentId: string) => [
    { type: 'agent_status_change', agent_id: agentId, status: 'running' },
    epistemicOf(agentId, 0.4, { belief_states: [{ content: 'early', confidence: 0.4 }] }),
    ...Array.from({ length: 23 }, (_, i) => ({
      type: 'pattern_alert',
      agent_id: agentId,
      severity: i % 2 ? 'critical' : 'info',
      data: { pattern_name: `p${i}` },
    })),
    epistemicOf(agentId, 0.9),
    ...Array.from({ length: 22 }, (_, i) => ({ type: 'prediction_update', agent_id: agentId, data: { risk_level: 'low', predicted_value: i } })),
    { type: 'agent_status_change', agent_id: agentId, status: 'waiting' },
    // The newest epistemic update carries no figures: confidence and uncertainty stay those of the one before.
    { type: 'epistemic_update', agent_id: agentId, data: { belief_states: [{ content: 'late', confidence: 0.5 }] } },
    { type: 'system_alert', alert_type: 'info', message: `not an agent event (${agentId})` },
  ];
  // Two agents' events interleaved in one batch: each agent's are folded apart, in their order.
  const batched = eventsFor('batched');
  const other = eventsFor('other');
  await s.server.publish(batched.flatMap((e, i) => [e, other[i]!]));
  for (const event of eventsFor('single')) await s.server.publish(event);
  const view = async (agentId: string) => {
    const r = await api<AgentRecord & { offset: number }>(s, 'GET', `/api/v1/agents/${agentId}`, { token });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const b = r.body;
    return {
      status: b.status,
      confidence_level: b.confidence_level,
      uncertainty_score: b.uncertainty_score,
      open_alerts: b.open_alerts,
      events: b.events,
      offset: b.offset,
      latest_epistemic: b.latest_epistemic?.data,
      latest_status: [b.latest_status?.status, b.latest_status?.offset],
      alerts: b.alerts.map((a) => [a.data?.['pattern_name'], a.offset]),
      predictions: b.predictions.map((p) => [p.data?.['predicted_value'], p.offset]),
    };
  };
  const single = await view('single');
  assert.equal(single.alerts.length, 20);
  assert.equal(single.alerts[0]![0], 'p22', 'newest alert first');
  assert.equal(single.confidence_level, 0.9);
  assert.deepEqual(single.latest_epistemic, { belief_states: [{ content: 'late', confidence: 0.5 }] });
  assert.deepEqual(await view('batched'), single);
  assert.deepEqual(await view('other'), single, 'two agents in one batch are folded apart');
});

test("an agent's state outlives its history window, and drops out after the agent TTL", { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { historyTtl: 0.3, agentTtl: 1.5 });
  const token = await s.token(RESEARCHER);
  await publishAll(s, [epistemicOf('brief', 0.6), { type: 'agent_status_change', agent_id: 'brief', status: 'running' }]);
  await settle(500);
  const history = await api<HistoryBody>(s, 'GET', '/api/v1/agents/brief/events', { token });
  assert.deepEqual(history.body.events, [], 'history expired');
  const state = await api<AgentRecord>(s, 'GET', '/api/v1/agents/brief', { token });
  assert.equal(state.status, 200);
  assert.equal(state.body.confidence_level, 0.6);
  assert.equal(state.body.status, 'running');
  assert.deepEqual(
    (await api<AgentPage>(s, 'GET', '/api/v1/agents', { token })).body.agents.map((a) => a.agent_id),
    ['brief'],
  );
  await eventually(async () => (await api(s, 'GET', '/api/v1/agents/brief', { token })).status === 404, 5000, 'the agent to drop out after agentTtl');
  assert.deepEqual((await api<AgentPage>(s, 'GET', '/api/v1/agents', { token })).body.agents, []);
});

test('history newest first: order=desc with limit, and before= to page back', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const token = await s.token(RESEARCHER);
  for (let i = 1; i <= 7; i++) await publishAll(s, [epistemicOf('h', 0.5, { seq: i })]);
  const newest = await api<HistoryBody>(s, 'GET', '/api/v1/agents/h/events?order=desc&limit=3', { token });
  assert.deepEqual(
    newest.body.events.map((e) => e.offset),
    [7, 6, 5],
  );
  assert.equal(newest.body.offset, 7);
  const older = await api<HistoryBody>(s, 'GET', '/api/v1/agents/h/events?order=desc&limit=3&before=5', { token });
  assert.deepEqual(
    older.body.events.map((e) => e.offset),
    [4, 3, 2],
  );
  const oldest = await api<HistoryBody>(s, 'GET', '/api/v1/agents/h/events?order=desc&limit=3&before=2', { token });
  assert.deepEqual(
    oldest.body.events.map((e) => e.offset),
    [1],
  );
  const asc = await api<HistoryBody>(s, 'GET', '/api/v1/agents/h/events?since=5', { token });
  assert.deepEqual(
    asc.body.events.map((e) => e.offset),
    [6, 7],
    'the default stays oldest first',
  );
  refusal(await api(s, 'GET', '/api/v1/agents/h/events?before=3', { token }), 400, 'VALIDATION_ERROR');
});

test('subscribe with latest: the newest event the subscription wants comes right after the confirmation, then live ones, no gap, no duplicate', {
  timeout: 60_000,
}, async (t) => {
  const s = await startServer(t);
  await publishAll(s, [
    epistemicOf('lt', 0.9, { seq: 1 }),
    epistemicOf('lt', 0.2, { seq: 2 }),
    { type: 'agent_status_change', agent_id: 'lt', status: 'running' },
  ]);
  const c = await s.connect(RESEARCHER);
  const conf = await confirmed(c, { type: 'epistemic_updates', agent_id: 'lt', filters: { confidence_level: { min: 0.5 } }, latest: true });
  assert.equal(conf.data.offset, 0, 'the confirmation names the offset just before the latest wanted event (seq 1, offset 1)');
  await publishAll(s, [epistemicOf('lt', 0.95, { seq: 4 })]);
  const got = eventsOf(await c.drain());
  assert.deepEqual(
    got.map((e) => [e.offset, e.data?.['seq']]),
    [
      [1, 1],
      [4, 4],
    ],
    'seq 2 fails the filter; the status change is another type',
  );

  const none = await confirmed(c, { type: 'pattern_alerts', agent_id: 'lt', latest: true });
  assert.equal(none.data.offset, 4, 'no wanted event: the stream position');
  assert.deepEqual(eventsOf(await c.drain()), []);

  const refused = await c.subscribe({ type: 'agent_status', latest: true });
  assert.equal(refused.type, 'error');
  assert.equal(refused.type === 'error' && refused.code, 'VALIDATION_ERROR');
});

test('CORS is off by default, and answers only the allowlisted origins when set', { timeout: 60_000 }, async (t) => {
  const off = await startServer(t);
  const plain = await fetch(`${off.url}/api/v1/agents`, {
    method: 'OPTIONS',
    headers: { origin: 'https://console.example', 'access-control-request-method': 'GET' },
  });
  assert.equal(plain.headers.get('access-control-allow-origin'), null);

  const s = await startServer(t, { corsOrigins: 'https://console.example,https://ops.example' });
  const preflight = await fetch(`${s.url}/api/v1/agents`, {
    method: 'OPTIONS',
    headers: { origin: 'https://ops.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get('access-control-allow-origin'), 'https://ops.example');
  const token = await s.token(RESEARCHER);
  const get = await fetch(`${s.url}/api/v1/agents`, { headers: { origin: 'https://console.example', authorization: `Bearer ${token}` } });
  assert.equal(get.headers.get('access-control-allow-origin'), 'https://console.example');
  const stranger = await fetch(`${s.url}/api/v1/agents`, { headers: { origin: 'https://evil.example', authorization: `Bearer ${token}` } });
  assert.equal(stranger.headers.get('access-control-allow-origin'), null);
});

test('an admin closes one connection (4010, no automatic reconnect); others carry on; unknown ids are 404', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const admin = await s.token(ADMIN);
  const { client: victim, hello } = await s.open(RESEARCHER, { session: 'victim' });
  const bystander = await s.connect(RESEARCHER, { session: 'bystander' });
  refusal(await api(s, 'DELETE', `/ws/connections/${hello.connection_id}`, { token: await s.token(RESEARCHER) }), 403, 'PERMISSION_DENIED');
  const r = await api<{ closing: string; node_id: string }>(s, 'DELETE', `/ws/connections/${hello.connection_id}`, { token: admin });
  assert.equal(r.status, 202);
  assert.equal(r.body.closing, hello.connection_id);
  const closed = await victim.closeEvent;
  assert.equal(closed.code, 4010);
  await connectionCount(s.server, 1);
  await bystander.flush();
  refusal(await api(s, 'DELETE', `/ws/connections/${hello.connection_id}`, { token: admin }), 404, 'CONNECTION_NOT_FOUND');
});

test('metrics follow Prometheus conventions and count refusals by code, events in and out, and delivery latency', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect(RESEARCHER);
  await confirmed(c, { type: 'epistemic_updates', agent_id: 'm1' });
  await publishAll(s, [epistemicOf('m1', 0.5), epistemicOf('m1', 0.6)]);
  assert.equal((await handshakeRefusal(`${s.wsUrl}/ws/monitor/s?token=bad`)).status, 401);
  const text = await (await fetch(`${s.url}/metrics`)).text();
  assert.match(text, /^escai_publications_total\{type="epistemic_update"\} 2$/m);
  assert.match(text, /^escai_deliveries_total\{type="epistemic_update"\} 2$/m);
  assert.match(text, /^escai_delivery_latency_seconds_count 2$/m);
  assert.match(text, /^escai_handshake_refusals_total\{code="TOKEN_INVALID"\} 1$/m);
  assert.match(text, /^escai_messages_sent_total \d+$/m);
  assert.match(text, /^escai_slow_consumer_closes_total 0$/m);
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (type === 'counter') assert.match(name!, /_total$/, `counter ${name} ends in _total`);
  }
});

test('metrics behind a token, or on a port of their own', { timeout: 60_000 }, async (t) => {
  const token = 'scrape-0123456789abcdef';
  const guarded = await startServer(t, { metricsToken: token });
  assert.equal((await fetch(`${guarded.url}/metrics`)).status, 401);
  assert.equal((await fetch(`${guarded.url}/metrics`, { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status, 401);
  const ok = await fetch(`${guarded.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(ok.status, 200);
  assert.match(await ok.text(), /escai_connections/);

  const probe = (await import('node:net')).createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const port = (probe.address() as { port: number }).port;
  probe.close();
  const apart = await startServer(t, { metricsPort: port });
  refusal(await api(apart, 'GET', '/metrics'), 404, 'NOT_FOUND');
  const scraped = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(scraped.status, 200);
  assert.match(await scraped.text(), /escai_engine_ready 1/);
});
