// System: the server's own figures over time, from GET /ws/health polled every
// two seconds: connections, events per second in and out, handshake refusals
// and slow-consumer closes, per node on a cluster. When the view opens, the
// server's own history of the last five minutes (GET /ws/health/history)
// fills the charts at once; the samples also outlive the view (module
// scope), so coming back to it keeps what it polled.
import { useEffect, useMemo, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import type { ClusterHealth, HealthHistoryPage, NodeReport } from '../../protocol/server-messages.js';
import { Chart } from '../components/Chart.js';
import { ago } from '../format.js';
import { usePolling } from '../live.js';
import { api, ApiError } from '../session.js';

const POLL_MS = 2000;
const WINDOW_S = 300; // five minutes shown
/** Polls further apart than this did not happen (the view was away): the lines break there. */
const GAP_S = (3 * POLL_MS) / 1000;
const PALETTE = ['var(--accent)', 'var(--warn)', 'var(--ok)', 'var(--lvl-high)', 'var(--lvl-critical)', 'var(--muted)'];

type Health = ClusterHealth & { timestamp: string };

/** One sample: when (s since the epoch, the server's clock) and each node's counters. */
interface Sample {
  t: number;
  nodes: Map<string, Record<string, number>>;
}

/**
 * What the view polled or was given, kept for the console's lifetime rather
 * than the view's: a visit to Fleet and back must not empty the charts.
 * Polling still stops while the view is away (the gap shows as a break).
 */
const recent = {
  /** Oldest first, one per server timestamp, none older than the window. */
  samples: [] as Sample[],
  latest: null as Health | null,
  /** node id → its address, for the chart labels. */
  names: new Map<string, string>(),
};

/**
 * Samples closer than this are one: a rate over a few milliseconds (a poll
 * just after one of the server's own samples) would draw a spike.
 */
const MIN_SPACING_S = POLL_MS / 2000;

/** Adds samples (from a poll or the server's history) in time order, at least MIN_SPACING_S apart. */
function addSamples(more: readonly Sample[]): void {
  const horizon = Date.now() / 1000 - WINDOW_S;
  const merged = [...recent.samples, ...more].filter((s) => s.t >= horizon).sort((a, b) => a.t - b.t);
  const kept: Sample[] = [];
  for (const s of merged) if (kept.length === 0 || s.t - kept[kept.length - 1]!.t >= MIN_SPACING_S) kept.push(s);
  recent.samples = kept;
}

const windowNow = () => {
  const horizon = Date.now() / 1000 - WINDOW_S;
  return recent.samples.filter((s) => s.t >= horizon);
};

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
    columns.forEach((column, k) => {
      ys[k]!.push(column(gap ? undefined : prev, now));
    });
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

  // The server's last minutes, for what this console has not seen (its first open, or a long absence).
  useEffect(() => {
    let cancelled = false;
    api<HealthHistoryPage>('/ws/health/history')
      .then((history) => {
        if (cancelled) return;
        for (const [id, address] of Object.entries(history.addresses)) if (address && !recent.names.has(id)) recent.names.set(id, address);
        addSamples(history.samples.map((s) => ({ t: s.t, nodes: new Map(Object.entries(s.nodes)) })));
        setSamples(windowNow());
      })
      .catch(() => {
        // A server without the history (an older node) leaves the charts to the polls.
      });
    return () => {
      cancelled = true;
    };
  }, []);

  usePolling(
    async () => {
      try {
        const health = await api<Health>('/ws/health');
        setError(null);
        recent.latest = health;
        for (const n of health.nodes) recent.names.set(n.node_id, n.address || n.node_id);
        addSamples([{ t: Date.parse(health.timestamp) / 1000, nodes: new Map(health.nodes.map((n: NodeReport) => [n.node_id, n.counters])) }]);
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
        data: chartData(
          samples,
          nodeIds.map((id) => level(id, 'active_connections')),
        ),
        series: nodeIds.map((id, i) => ({ label: nameOf(id), stroke: stroke(i) })),
      },
      inOut: {
        data: chartData(
          samples,
          nodeIds.flatMap((id) => [rate(id, 'events_in'), rate(id, 'events_out')]),
        ),
        series: pairs('in', 'out (dashed)'),
      },
      troubles: {
        data: chartData(
          samples,
          nodeIds.flatMap((id) => [rate(id, 'handshake_refusals'), rate(id, 'slow_consumer_closes')]),
        ),
        series: pairs('refused', 'slow (dashed)'),
      },
    };
  }, [samples, nodeIds]);

  return (
    <section aria-labelledby="system-title" data-testid="system" data-samples={samples.length} data-since={samples[0]?.t ?? ''}>
      <div class="toolbar">
        <h1 id="system-title">System</h1>
        {latest && (
          <span class="muted" data-testid="system-summary">
            {latest.status} · engine {latest.engine} · {latest.nodes.length} node{latest.nodes.length === 1 ? '' : 's'} · {latest.active_connections}/
            {latest.max_connections} connections · {latest.total_subscriptions} subscriptions
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
          <Chart
            label="Handshake refusals and slow-consumer closes per second, per node"
            data={charts.troubles.data}
            series={charts.troubles.series}
            height={180}
          />
        </div>
        {/* A table of eight columns wants the whole row; below that it scrolls inside its card. */}
        <div class="panel span-all" data-testid="system-nodes">
          <h2 id="nodes-title">Nodes</h2>
          {/* biome-ignore lint/a11y/useSemanticElements: a scrolling wrapper, not a page section; focusable so keyboards can scroll it */}
          {/* biome-ignore lint/a11y/noNoninteractiveTabindex: same: a scrollable region must take focus (WCAG 2.1.1) */}
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
