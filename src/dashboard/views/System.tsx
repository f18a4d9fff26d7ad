// System: the server's own figures over time, from GET /ws/health polled every
// two seconds: connections, events per second in and out, handshake refusals
// and slow-consumer closes, per node on a cluster.
import { useMemo, useRef, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import type { ClusterHealth, NodeReport } from '../../protocol/server-messages.js';
import { Chart } from '../components/Chart.js';
import { ago } from '../format.js';
import { usePolling } from '../live.js';
import { api, ApiError } from '../session.js';

const POLL_MS = 2000;
const WINDOW = 150; // samples kept: five minutes
const PALETTE = ['var(--accent)', 'var(--warn)', 'var(--ok)', 'var(--lvl-high)', 'var(--lvl-critical)', 'var(--muted)'];

interface Sample {
  t: number;
  nodes: Map<string, Record<string, number>>;
}

/** Per node: the counter's rate per second between consecutive samples. */
function rates(samples: readonly Sample[], nodeIds: readonly string[], key: string): uPlot.AlignedData {
  const xs: number[] = [];
  const per = nodeIds.map(() => [] as Array<number | null>);
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]!;
    const b = samples[i]!;
    xs.push(b.t);
    nodeIds.forEach((id, k) => {
      const before = a.nodes.get(id)?.[key];
      const now = b.nodes.get(id)?.[key];
      per[k]!.push(before === undefined || now === undefined || now < before ? null : (now - before) / (b.t - a.t));
    });
  }
  return [xs, ...per];
}

function levels(samples: readonly Sample[], nodeIds: readonly string[], key: string): uPlot.AlignedData {
  return [samples.map((s) => s.t), ...nodeIds.map((id) => samples.map((s) => s.nodes.get(id)?.[key] ?? null))];
}

export function System() {
  const [samples, setSamples] = useState<Sample[]>([]);
  const [latest, setLatest] = useState<(ClusterHealth & { timestamp: string }) | null>(null);
  const [error, setError] = useState<string | null>(null);
  const names = useRef(new Map<string, string>());

  usePolling(
    async () => {
      try {
        const health = await api<ClusterHealth & { timestamp: string }>('/ws/health');
        setError(null);
        setLatest(health);
        const nodes = new Map(health.nodes.map((n: NodeReport) => [n.node_id, n.counters]));
        for (const n of health.nodes) if (!names.current.has(n.node_id)) names.current.set(n.node_id, n.address || n.node_id);
        setSamples((old) => [...old, { t: Date.now() / 1000, nodes }].slice(-WINDOW));
      } catch (err) {
        setError(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));
      }
    },
    POLL_MS,
    [],
  );

  const nodeIds = useMemo(() => [...new Set(samples.flatMap((s) => [...s.nodes.keys()]))], [samples]);
  const series = (suffix: string) => nodeIds.map((id, i) => ({ label: `${names.current.get(id) ?? id}${suffix}`, stroke: PALETTE[i % PALETTE.length]! }));
  // Per node one colour; the second figure of each pair dashed.
  const pairs = (first: string, second: string) =>
    nodeIds.flatMap((id, i) => [
      { label: `${names.current.get(id) ?? id} ${first}`, stroke: PALETTE[i % PALETTE.length]! },
      { label: `${names.current.get(id) ?? id} ${second}`, stroke: PALETTE[i % PALETTE.length]!, dash: [6, 4] },
    ]);
  const inOut = useMemo((): uPlot.AlignedData => {
    const ins = rates(samples, nodeIds, 'events_in');
    const outs = rates(samples, nodeIds, 'events_out');
    return [ins[0]!, ...nodeIds.flatMap((_, k) => [ins[k + 1]!, outs[k + 1]!])];
  }, [samples, nodeIds]);
  const troubles = useMemo((): uPlot.AlignedData => {
    const refused = rates(samples, nodeIds, 'handshake_refusals');
    const slow = rates(samples, nodeIds, 'slow_consumer_closes');
    return [refused[0]!, ...nodeIds.flatMap((_, k) => [refused[k + 1]!, slow[k + 1]!])];
  }, [samples, nodeIds]);

  return (
    <section aria-labelledby="system-title" data-testid="system" data-samples={samples.length}>
      <div class="toolbar">
        <h1 id="system-title">System</h1>
        {latest && (
          <span class="muted" data-testid="system-summary">
            {latest.status} · engine {latest.engine} · {latest.nodes.length} node{latest.nodes.length === 1 ? '' : 's'} · {latest.active_connections}/{latest.max_connections} connections ·{' '}
            {latest.total_subscriptions} subscriptions
          </span>
        )}
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="grid-2">
        <div class="panel">
          <h2>Connections</h2>
          <Chart label="Open connections per node" data={levels(samples, nodeIds, 'active_connections')} series={series('')} height={180} />
        </div>
        <div class="panel">
          <h2>Events per second (in, out)</h2>
          <Chart label="Events per second in (published) and out (delivered), per node" data={inOut} series={pairs('in', 'out (dashed)')} height={180} />
        </div>
        <div class="panel">
          <h2>Refusals and slow-consumer closes per second</h2>
          <Chart
            label="Handshake refusals and slow-consumer closes per second, per node"
            data={troubles}
            series={pairs('refused', 'slow (dashed)')}
            height={180}
          />
        </div>
        <div class="panel">
          <h2>Nodes</h2>
          <table class="table">
            <thead>
              <tr>
                <th scope="col">node</th>
                <th scope="col">address</th>
                <th scope="col">conns</th>
                <th scope="col">subs</th>
                <th scope="col">in</th>
                <th scope="col">out</th>
                <th scope="col">refused</th>
                <th scope="col">reported</th>
              </tr>
            </thead>
            <tbody>
              {(latest?.nodes ?? []).map((n) => (
                <tr key={n.node_id}>
                  <td class="mono">{n.node_id}</td>
                  <td>{n.address}</td>
                  <td>{n.counters['active_connections'] ?? 0}</td>
                  <td>{n.counters['total_subscriptions'] ?? 0}</td>
                  <td>{n.counters['events_in'] ?? 0}</td>
                  <td>{n.counters['events_out'] ?? 0}</td>
                  <td>{n.counters['handshake_refusals'] ?? 0}</td>
                  <td>{ago(new Date(n.reported_at).toISOString())}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </div>
    </section>
  );
}
