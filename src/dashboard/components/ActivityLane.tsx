// The activity lane: one trace of an agent as a waterfall of its steps
// (agent runs, model calls, tool calls), indented by nesting, each bar placed
// on the trace's time axis. Running steps are marked and grow while they
// run; ended ones show their duration, errors and tokens. Picks the most
// recently active trace unless the user pins another.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { count, duration, laneOf, MAX_ROWS, tracesOf, type Step } from '../trace.js';

function useNow(ms: number, active: boolean): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms, active]);
  return active ? now : Date.now();
}

function detail(step: Step): string {
  const what = step.kind === 'llm' ? step.model : step.kind === 'tool' ? step.tool : undefined;
  return what && !step.name.includes(what) ? what : '';
}

export function ActivityLane({
  agentId,
  steps,
  tokens,
}: {
  agentId: string;
  steps: ReadonlyMap<string, Step>;
  tokens: { total: number; input: number; output: number } | null;
}) {
  const traces = useMemo(() => tracesOf(steps), [steps]);
  const [pinned, setPinned] = useState<string | null>(null);
  const traceId = pinned && traces.some((t) => t.traceId === pinned) ? pinned : (traces[0]?.traceId ?? null);
  const current = traces.find((t) => t.traceId === traceId);
  const now = useNow(1000, (current?.running ?? 0) > 0);
  const lane = useMemo(() => (traceId ? laneOf(steps, traceId, now) : null), [steps, traceId, now]);

  return (
    <div class="panel" data-testid="activity">
      <div class="panel-head">
        <h2>Activity</h2>
        {traces.length > 1 && (
          <label class="field">
            <span>Trace</span>
            <select value={pinned ?? ''} onChange={(e) => setPinned((e.target as HTMLSelectElement).value || null)} data-testid="trace-select">
              <option value="">latest</option>
              {traces.slice(0, 20).map((t) => (
                <option key={t.traceId} value={t.traceId}>
                  {t.name} · {t.traceId.slice(0, 8)}
                  {t.running > 0 ? ' · running' : ''}
                </option>
              ))}
            </select>
          </label>
        )}
      </div>
      <div class="figures-row">
        {lane && (
          <>
            <span>
              trace <code title={traceId ?? ''}>{traceId?.slice(0, 8)}</code> · {lane.rows.length} step{lane.rows.length === 1 ? '' : 's'} ·{' '}
              {duration(lane.spanMs)}
            </span>
            <span data-testid="activity-running">{lane.running > 0 ? <strong class="st-running">{lane.running} running</strong> : 'nothing running'}</span>
            <span>
              tokens in trace <strong data-testid="trace-tokens">{count(lane.tokens.total)}</strong>
              <span class="muted">
                {' '}
                ({count(lane.tokens.input)} in · {count(lane.tokens.output)} out)
              </span>
            </span>
          </>
        )}
        {tokens && (
          <span>
            tokens since first seen <strong data-testid="agent-tokens">{count(tokens.total)}</strong>
          </span>
        )}
      </div>
      {!lane && (
        <p class="muted">
          No activity of {agentId} yet. Agents that export OpenTelemetry traces (docs/INGEST.md) show their model and tool calls here as they happen.
        </p>
      )}
      {lane && (
        <ol class="lane" aria-label={`Steps of trace ${traceId ?? ''}`}>
          {lane.rows.slice(0, MAX_ROWS).map((row) => {
            const s = row.step;
            const extra = detail(s);
            return (
              <li key={s.spanId} class={`lane-row k-${s.kind} s-${s.state}`} data-state={s.state} data-kind={s.kind} data-span={s.spanId}>
                <div class="lane-label" style={{ paddingLeft: `${Math.min(row.depth, 12) * 0.9}rem` }}>
                  <span class="kind">{s.inferred ? 'step' : s.kind}</span>{' '}
                  {s.inferred ? (
                    <span class="lane-name" title="Its children arrived before it ended: its name and kind come with its end">
                      <em>in progress</em>
                    </span>
                  ) : (
                    <span class="lane-name">{s.name}</span>
                  )}
                  {extra && <span class="muted"> · {extra}</span>}
                </div>
                <div class="lane-track" aria-hidden="true">
                  <span class="lane-bar" style={{ left: `${(row.left * 100).toFixed(2)}%`, width: `max(3px, ${(row.width * 100).toFixed(2)}%)` }} />
                </div>
                <div class="lane-value" title={s.error}>
                  {s.state === 'running' ? <span class="st-running">▶ {duration(row.elapsedMs)}</span> : duration(row.elapsedMs)}
                  {s.tokens && <span class="muted"> · {count(s.tokens.total)} tok</span>}
                  {s.state === 'error' && <span class="lvl-high"> · {s.error ?? 'error'}</span>}
                </div>
              </li>
            );
          })}
        </ol>
      )}
      {lane && lane.rows.length > MAX_ROWS && <p class="muted small">{lane.rows.length - MAX_ROWS} more steps not shown.</p>}
    </div>
  );
}
