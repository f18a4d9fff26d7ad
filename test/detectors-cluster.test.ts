// The behaviour detectors on a cluster: real server processes on one Redis.
// One node judges (the lease holder); an agent whose spans reach two nodes
// raises its loop alert once, not twice, and not never; when the judging
// node dies, another takes over within the lease TTL, replays the history
// window and judges on, without raising the dead node's alerts again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clusterAvailable, startCluster, token, until, type ClusterNode } from './cluster-support.js';
import { confirmed, type DeliveredEvent } from './helpers.js';
import { hexId, otlpJson, postTraces } from './otel-support.js';

async function judging(node: ClusterNode): Promise<boolean> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  return /^escai_detectors_judging 1$/m.test(text);
}

/** Sends `n` calls of one tool with the same arguments, each its own request, alternating between `nodes`. */
async function loop(nodes: ClusterNode[], tok: string, agent: string, n: number, startMs = Date.now()): Promise<string[]> {
  const traceId = hexId(16);
  const parentSpanId = hexId(8);
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const spanId = hexId(8);
    ids.push(spanId);
    const body = otlpJson({ 'service.name': agent }, [
      {
        traceId,
        spanId,
        parentSpanId,
        name: 'execute_tool search',
        startMs: startMs + i * 100,
        endMs: startMs + i * 100 + 50,
        attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'search', 'gen_ai.tool.call.arguments': '{"q":"same"}' },
      },
    ]);
    const r = await postTraces(nodes[i % nodes.length]!.url, body, { 'content-type': 'application/json', authorization: `Bearer ${tok}` });
    assert.equal(r.status, 200);
  }
  return ids;
}

test('one node judges; spans of one agent through two nodes raise one alert; the next judge takes over when it dies', { timeout: 90_000 }, async (t) => {
  if (!(await clusterAvailable(t))) return;
  const cluster = await startCluster(t, {}, 2);
  const [a, b] = cluster.nodes as [ClusterNode, ClusterNode];
  const judge = await until(
    async () => {
      const flags = await Promise.all([judging(a), judging(b)]);
      return flags.filter(Boolean).length === 1 ? (flags[0] ? a : b) : undefined;
    },
    10_000,
    'exactly one node to judge',
  );
  const other = judge === a ? b : a;
  const dump = (err: Error): never => {
    throw new Error(
      `${err.message.slice(0, 300)}\nA: ${a.proc.stdout().slice(-3000)}${a.proc.stderr().slice(-2000)}\nB: ${b.proc.stdout().slice(-3000)}${b.proc.stderr().slice(-2000)}`,
    );
  };
  const producer = await token('exporter', ['developer']);
  const watcherToken = await token('watcher', ['researcher']);
  // A watcher on each node: each must see the alert exactly once.
  const onJudge = (await cluster.connect(judge, watcherToken, 'w-judge')).client;
  const onOther = (await cluster.connect(other, watcherToken, 'w-other')).client;
  await confirmed(onJudge, { type: 'pattern_alerts', agent_id: 'split-agent' });
  await confirmed(onOther, { type: 'pattern_alerts', agent_id: 'split-agent' });
  await loop([a, b], producer, 'split-agent', 6);
  const seen = await onOther.next('pattern_alert', 10_000).catch(dump);
  assert.equal(seen.data?.['pattern_name'], 'tool_call_loop');
  await onJudge.next('pattern_alert', 5000).catch(dump);
  // A marker after it: whatever else was coming has come.
  await confirmed(onOther, { type: 'pattern_alerts', agent_id: 'marker' });
  await loop([a], producer, 'marker', 5);
  await onOther.next('pattern_alert', (m) => m.agent_id === 'marker', 10_000);
  assert.deepEqual(
    onOther.events('pattern_alert').filter((e: DeliveredEvent) => e.agent_id === 'split-agent'),
    [],
    'no second alert for split-agent',
  );

  // The judge dies: the other node takes the lease over (TTL 1.5 s) and judges new traffic.
  judge.proc.child.kill('SIGKILL');
  await until(async () => ((await judging(other)) ? true : undefined), 15_000, `node ${other.name} to take judging over`);
  await confirmed(onOther, { type: 'pattern_alerts', agent_id: 'after-failover' });
  await loop([other], producer, 'after-failover', 5);
  const after = await onOther.next('pattern_alert', (m) => m.agent_id === 'after-failover', 10_000);
  assert.equal(after.data?.['pattern_name'], 'tool_call_loop');
  // Its replay of the history window raised split-agent's and marker's alerts again under the same keys: dropped as repeats.
  await confirmed(onOther, { type: 'pattern_alerts', agent_id: 'marker-2' });
  await loop([other], producer, 'marker-2', 5);
  await onOther.next('pattern_alert', (m) => m.agent_id === 'marker-2', 10_000);
  assert.deepEqual(
    onOther.events('pattern_alert').map((e: DeliveredEvent) => e.agent_id),
    [],
    'nothing but the alerts awaited above reached the watcher',
  );
});
