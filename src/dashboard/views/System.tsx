// System: the server's own figures over time, from GET /ws/health polled every
// two seconds: connections, events per second in and out, handshake refusals
// and slow-consumer closes, per node on a cluster. The samples outlive the
// view (module scope), so coming back to it shows the last minutes at once.
import { useMemo, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import type { ClusterHealth, NodeReport } from '../../protocol/server-messages.js';
import { Chart } from '../components/Chart.js';
import { ago } from '../format.js';
import { usePolling } from '../live.js';
import { api, ApiError } from '../session.js';

const POLL_MS = 2000;
const WINDOW_S = 300; // five minutes shown
const WINDOW = WINDOW_S / (POLL_MS / 1000); // samples kept: one per poll over the window
/** Polls further apart than this did not happen (the view was away): the lines break there. */
const GAP_S = (3 * POLL_MS) / 1000;
const PALETTE = ['var(--accent)', 'var(--warn)', 'var(--ok)', 'var(--lvl-high)', 'var(--lvl-critical)', 'var(--muted)'];

type Health = ClusterHealth & { timestamp: string };

/** One poll: when (s since the epoch) and each node's counters. */
interface Sample {
  t: number;
  nodes: Map<string, Record<string, number>>;
}

/** A fixed-size ring of samples, oldest overwritten first. */
class SampleRing {
  readonly #slots: Array<Sample | undefined>;
  #next = 0;
  #size = 0;

  constructor(capacity: number) {
    this.#slots = new Array<Sample | undefined>(capacity);
  }

  push(sample: Sample): void {
    this.#slots[this.#next] = sample;
    this.#next = (this.#next + 1) % this.#slots.length;
    this.#size = Math.min(this.#size + 1, this.#slots.length);
  }

  /** The samples taken at or after `t`, oldest first (a new array: it is React state). */
  since(t: number): Sample[] {
    const out: Sample[] = [];
    const first = (this.#next - this.#size + this.#slots.length) % this.#slots.length;
    for (let i = 0; i < this.#size; i++) {
      const s = this.#slots[(first + i) % this.#slots.length]!;
      if (s.t >= t) out.push(s);
    }
    return out;
  }
}

/**
 * What the view polled, kept for the console's lifetime rather than the
 * view's: a visit to Fleet and back must not empty the charts. Polling
 * still stops while the view is away (the gap shows as a break).
 */
const recent = {
  samples: new SampleRing(WINDOW),
  latest: null as Health | null,
  /** node id → its address, for the chart labels. */
  names: new Map<string, string>(),
};

const windowNow = () => recent.samples.since(Date.now() / 1000 - WINDOW_S);

/** A figure of one node at one sample, given the sample before (undefined: none, or a gap between). */
type Column = (before: Sample | undefined, now: Sample) => number | null;

const level =
  (id: string, key: string): Column =>
  (_before, now) =>
    now.nodes.get(id)?.[key] ?? null;

/** The counter's rate per second since the sample before; none across a gap or a restart (the counter fell). */
const rate =
  (id: string, key: string): Column =>
  (before, now) => {
    const a = before?.nodes.get(id)?.[key];
    const b = now.nodes.get(id)?.[key];
    return before === undefined || a === undefined || b === undefined || b < a ? null : (b - a) / (now.t - before.t);
  };

/**
 * A chart's data: one x per sample, one series per column. Where polling
 * paused, a point of nulls between the two samples breaks every line, so a
 * pause is not drawn as a straight segment.
 */
function chartData(samples: readonly Sample[], columns: readonly Column[]): uPlot.AlignedData {
  const xs: number[] = [];
  const ys = columns.map(() => [] as Array<number | null>);
  samples.forEach((now, i) => {
    const prev = samples[i - 1];
    const gap = prev !== undefined && now.t - prev.t > GAP_S;
    if (gap) {
      xs.push((prev.t + now.t) / 2);
      for (const y of ys) y.push(null);
    }
    xs.push(now.t);
    columns.forEach((column, k) => ys[k]!.push(column(gap ? undefined : prev, now)));
  });
  return [xs, ...ys];
}

const nameOf = (id: string) => recent.names.get(id) || id;
const count = (n: number | undefined) => (n ?? 0).toLocaleString();

export function System() {
  // Seeded from what earlier visits polled: the charts have data in their first render.
  const [samples, setSamples] = useState<Sample[]>(windowNow);
  const [latest, setLatest] = useState<Health | null>(recent.latest);
  const [error, setError] = useState<string | null>(null);

  usePolling(
    async () => {
      try {
        const health = await api<Health>('/ws/health');
        setError(null);
        recent.latest = health;
        for (const n of health.nodes) recent.names.set(n.node_id, n.address || n.node_id);
        recent.samples.push({ t: Date.now() / 1000, nodes: new Map(health.nodes.map((n: NodeReport) => [n.node_id, n.counters])) });
        setLatest(health);
        setSamples(windowNow());
      } catch (err) {
        setError(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));
      }
    },
    POLL_MS,
    [],
  );

  const nodeIds = useMemo(() => [...new Set(samples.flatMap((s) => [...s.nodes.keys()]))], [samples]);
  const charts = useMemo(() => {
    const stroke = (i: number) => PALETTE[i % PALETTE.length]!;
    // Per node one colour; the second figure of each pair dashed.
    const pairs = (first: string, second: string) =>
      nodeIds.flatMap((id, i) => [
        { label: `${nameOf(id)} ${first}`, stroke: stroke(i) },
        { label: `${nameOf(id)} ${second}`, stroke: stroke(i), dash: [6, 4] },
      ]);
    return {
      connections: {
        data: chartData(samples, nodeIds.map((id) => level(id, 'active_connections'))),
        series: nodeIds.map((id, i) => ({ label: nameOf(id), stroke: stroke(i) })),
      },
      inOut: {
        data: chartData(samples, nodeIds.flatMap((id) => [rate(id, 'events_in'), rate(id, 'events_out')])),
        series: pairs('in', 'out (dashed)'),
      },
      troubles: {
        data: chartData(samples, nodeIds.flatMap((id) => [rate(id, 'handshake_refusals'), rate(id, 'slow_consumer_closes')])),
        series: pairs('refused', 'slow (dashed)'),
      },
    };
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
          <Chart label="Open connections per node" data={charts.connections.data} series={charts.connections.series} height={180} />
        </div>
        <div class="panel">
          <h2>Events per second (in, out)</h2>
          <Chart label="Events per second in (published) and out (delivered), per node" data={charts.inOut.data} series={charts.inOut.series} height={180} />
        </div>
        <div class="panel">
          <h2>Refusals and slow-consumer closes per second</h2>
          <Chart label="Handshake refusals and slow-consumer closes per second, per node" data={charts.troubles.data} series={charts.troubles.series} height={180} />
        </div>
        {/* A table of eight columns wants the whole row; below that it scrolls inside its card. */}
        <div class="panel span-all" data-testid="system-nodes">
          <h2 id="nodes-title">Nodes</h2>
          <div class="table-wrap" role="region" aria-labelledby="nodes-title" tabIndex={0}>
            <table class="table nodes">
              <thead>
                <tr>
                  <th scope="col">node</th>
                  <th scope="col">address</th>
                  <th scope="col" class="num">
                    <abbr title="open connections">conns</abbr>
                  </th>
                  <th scope="col" class="num">
                    <abbr title="subscriptions">subs</abbr>
                  </th>
                  <th scope="col" class="num">
                    <abbr title="events published (total)">in</abbr>
                  </th>
                  <th scope="col" class="num">
                    <abbr title="events delivered (total)">out</abbr>
                  </th>
                  <th scope="col" class="num">
                    <abbr title="handshakes refused (total)">refused</abbr>
                  </th>
                  <th scope="col">reported</th>
                </tr>
              </thead>
              <tbody>
                {(latest?.nodes ?? []).map((n) => (
                  <tr key={n.node_id}>
                    <td class="mono node-id">{n.node_id}</td>
                    <td class="mono">{n.address}</td>
                    <td class="num">{count(n.counters['active_connections'])}</td>
                    <td class="num">{count(n.counters['total_subscriptions'])}</td>
                    <td class="num">{count(n.counters['events_in'])}</td>
                    <td class="num">{count(n.counters['events_out'])}</td>
                    <td class="num">{count(n.counters['handshake_refusals'])}</td>
                    <td class="nowrap">{ago(new Date(n.reported_at).toISOString())}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      </div>
    </section>
  );
}
