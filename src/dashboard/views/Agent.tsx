// Agent: what one agent does and thinks, live. Its activity (the current
// trace as a waterfall of model and tool calls, running ones marked, tokens),
// a timeline of confidence and
// uncertainty with pattern alerts and predictions marked on it, beliefs as
// bars (changes highlighted), goals with progress, recent alerts and
// predictions (risk coloured), and the raw event log with a server-side
// filter. The snapshot comes from the agent API (reloaded after a
// reconnect); live events extend it.
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import type { EscaiClient } from '../../client/client.js';
import type { DeliveredEvent, SubscriptionType } from '../../client/index.js';
import type { AgentRecord, TokenTotals } from '../../protocol/api.js';
import { ActivityLane } from '../components/ActivityLane.js';
import { Chart, type Marker } from '../components/Chart.js';
import { EventLog } from '../components/EventLog.js';
import { ago, clock, fixed, levelClass, pct, statusClass } from '../format.js';
import { usePolling, useSubscriptions } from '../live.js';
import { api, ApiError } from '../session.js';
import { mergeStep, stepOf, tokensNow, type Step } from '../trace.js';

const MAX_POINTS = 600;
const RECENT = 8;
const AGENT_TYPES: SubscriptionType[] = ['epistemic_updates', 'pattern_alerts', 'prediction_updates', 'agent_status', 'agent_activity'];
/** How often the agent's token total (kept by the server) is read again. */
const TOKENS_POLL_MS = 5000;

interface Belief {
  content?: string;
  belief_type?: string;
  confidence?: number;
}
interface Goal {
  description?: string;
  status?: string;
  priority?: number;
  completion_status?: Record<string, unknown>;
}
interface Point {
  /** epoch:offset — unique across a server restart (a new epoch restarts offsets). */
  key: string;
  offset: number;
  t: number;
  confidence: number | null;
  uncertainty: number | null;
}

interface State {
  record: AgentRecord | null;
  latest: DeliveredEvent | null;
  previous: DeliveredEvent | null;
  points: Point[];
  alerts: DeliveredEvent[];
  predictions: DeliveredEvent[];
  status: DeliveredEvent | null;
  /** Activity steps by span id. */
  steps: ReadonlyMap<string, Step>;
  missing: boolean;
}

const EMPTY: State = { record: null, latest: null, previous: null, points: [], alerts: [], predictions: [], status: null, steps: new Map(), missing: false };

/** The server's token total, and the time of the latest activity it includes. */
function serverTokens(record: AgentRecord): { totals: TokenTotals; asOfMs: number } {
  const at = record.activity ? Date.parse(record.activity.at) : Number.NEGATIVE_INFINITY;
  return { totals: record.tokens, asOfMs: Number.isFinite(at) ? at : Number.NEGATIVE_INFINITY };
}

function withSteps(steps: ReadonlyMap<string, Step>, events: readonly DeliveredEvent[]): ReadonlyMap<string, Step> {
  let next = steps;
  for (const event of events) {
    const step = stepOf(event);
    if (step) next = mergeStep(next, step);
  }
  return next;
}

function pointOf(event: DeliveredEvent): Point {
  const c = event.data?.['confidence_level'];
  const u = event.data?.['uncertainty_score'];
  return {
    key: `${event.epoch}:${event.offset}`,
    offset: event.offset,
    t: Date.parse(event.timestamp) / 1000,
    confidence: typeof c === 'number' ? c : null,
    uncertainty: typeof u === 'number' ? u : null,
  };
}

function mergePoints(a: Point[], b: Point[]): Point[] {
  const byKey = new Map<string, Point>();
  for (const p of [...a, ...b]) byKey.set(p.key, p);
  return [...byKey.values()].sort((x, y) => x.t - y.t || x.offset - y.offset).slice(-MAX_POINTS);
}

/** Events merged by id, newest first (a snapshot and live events may hold the same ones). */
function mergeEvents(a: readonly DeliveredEvent[], b: readonly DeliveredEvent[]): DeliveredEvent[] {
  const byId = new Map<string, DeliveredEvent>();
  for (const e of [...a, ...b]) byId.set(e.event_id, e);
  return [...byId.values()].sort((x, y) => Date.parse(y.timestamp) - Date.parse(x.timestamp) || y.offset - x.offset).slice(0, 20);
}

/** The later of two events (by publish time), either possibly missing. */
function newer(a: DeliveredEvent | null, b: DeliveredEvent | null): DeliveredEvent | null {
  if (!a) return b;
  if (!b) return a;
  return Date.parse(b.timestamp) > Date.parse(a.timestamp) || (a.timestamp === b.timestamp && b.offset > a.offset) ? b : a;
}

function progressOf(goal: Goal): number {
  const p = goal.completion_status?.['progress'];
  if (typeof p === 'number') return Math.min(1, Math.max(0, p));
  return goal.status === 'completed' ? 1 : 0;
}

export function Agent({ client, agentId, connections }: { client: EscaiClient; agentId: string; connections: number }) {
  const [state, setState] = useState<State>(EMPTY);
  const [error, setError] = useState<string | null>(null);
  const [tokens, setTokens] = useState<{ totals: TokenTotals; asOfMs: number } | null>(null);

  // A new agent starts from nothing (the view is reused across agents).
  useEffect(() => {
    setState(EMPTY);
    setTokens(null);
  }, [agentId]);

  // The snapshot: current state and recent history. Reloaded on each (re)connection.
  useEffect(() => {
    let cancelled = false;
    const load = async () => {
      try {
        const [record, history, activity] = await Promise.all([
          api<AgentRecord>(`/api/v1/agents/${encodeURIComponent(agentId)}`).catch((err: unknown) => {
            if (err instanceof ApiError && err.code === 'AGENT_NOT_FOUND') return null;
            throw err;
          }),
          api<{ events: DeliveredEvent[] }>(`/api/v1/agents/${encodeURIComponent(agentId)}/events?order=desc&limit=1000`),
          api<{ events: DeliveredEvent[] }>(`/api/v1/agents/${encodeURIComponent(agentId)}/activity?order=desc&limit=1000`),
        ]);
        if (cancelled) return;
        setError(null);
        if (record) setTokens(serverTokens(record));
        const epistemic = history.events.filter((e) => e.type === 'epistemic_update');
        // Merged with what arrived live meanwhile: the snapshot may be older than the newest live event.
        setState((old) => {
          const latest = newer(old.latest, record?.latest_epistemic ?? epistemic[0] ?? null);
          return {
            record,
            latest,
            previous: latest === old.latest ? old.previous : (epistemic.find((e) => e.event_id !== latest?.event_id) ?? null),
            points: mergePoints(old.points, epistemic.map(pointOf)),
            alerts: mergeEvents(old.alerts, record?.alerts ?? []),
            predictions: mergeEvents(old.predictions, record?.predictions ?? []),
            status: newer(old.status, record?.latest_status ?? null),
            // Oldest first, so a step's ended report comes after its running one.
            steps: withSteps(old.steps, [...activity.events].reverse()),
            missing: record === null && latest === null && old.status === null && old.steps.size === 0 && activity.events.length === 0,
          };
        });
      } catch (err) {
        if (!cancelled) setError(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));
      }
    };
    void load();
    return () => {
      cancelled = true;
    };
  }, [agentId, connections]);

  const onEvent = useCallback(
    (event: DeliveredEvent) => {
      if (event.agent_id !== agentId) return;
      setState((old) => {
        switch (event.type) {
          case 'epistemic_update':
            if (newer(old.latest, event) !== event) return { ...old, points: mergePoints(old.points, [pointOf(event)]) };
            return { ...old, previous: old.latest, latest: event, points: mergePoints(old.points, [pointOf(event)]), missing: false };
          case 'pattern_alert':
            return { ...old, alerts: mergeEvents(old.alerts, [event]), missing: false };
          case 'prediction_update':
            return { ...old, predictions: mergeEvents(old.predictions, [event]), missing: false };
          case 'agent_status_change':
            return { ...old, status: newer(old.status, event), missing: false };
          case 'agent_activity': {
            const steps = withSteps(old.steps, [event]);
            return steps === old.steps ? old : { ...old, steps, missing: false };
          }
          default:
            return old;
        }
      });
    },
    [agentId],
  );
  // The token total is the server's (it counts every model call once); read again while the view
  // is open and the agent reports activity (an agent not seen yet would only answer 404).
  const active = useRef(false);
  active.current = state.steps.size > 0;
  usePolling(
    async () => {
      if (!active.current) return;
      try {
        const record = await api<AgentRecord>(`/api/v1/agents/${encodeURIComponent(agentId)}`);
        setTokens(serverTokens(record));
      } catch {
        // The snapshot's error (if any) is the one shown; a missed poll is retried.
      }
    },
    TOKENS_POLL_MS,
    [agentId],
  );

  const wanted = useMemo(() => AGENT_TYPES.map((type) => ({ type, options: { agentId } })), [agentId]);
  useSubscriptions(client, wanted, onEvent, setError);

  const chart = useMemo(() => {
    const xs = state.points.map((p) => p.t);
    const data: uPlot.AlignedData = [xs, state.points.map((p) => p.confidence), state.points.map((p) => p.uncertainty)];
    const color = (cls: string) => getComputedStyle(document.documentElement).getPropertyValue(`--${cls}`).trim() || '#c00';
    const markers: Marker[] = [
      ...state.alerts.map((a) => ({ t: Date.parse(a.timestamp) / 1000, color: color(levelClass(a.severity)), shape: 'bar' as const })),
      ...state.predictions.map((p) => ({
        t: Date.parse(p.timestamp) / 1000,
        color: color(levelClass(String(p.data?.['risk_level'] ?? ''))),
        shape: 'dot' as const,
      })),
    ];
    return { data, markers };
  }, [state.points, state.alerts, state.predictions]);

  const beliefs = (state.latest?.data?.['belief_states'] as Belief[] | undefined) ?? [];
  const before = new Map(((state.previous?.data?.['belief_states'] as Belief[] | undefined) ?? []).map((b) => [b.content ?? '', b.confidence]));
  const goals = (state.latest?.data?.['goal_states'] as Goal[] | undefined) ?? [];
  const knowledge = state.latest?.data?.['knowledge_state'] as { facts?: unknown[]; confidence?: number } | null | undefined;
  const status = state.status?.status ?? state.record?.status ?? null;

  return (
    <section aria-labelledby="agent-title" class="agent">
      <div class="toolbar">
        <a href="#/fleet" class="back">
          ← Fleet
        </a>
        <h1 id="agent-title">{agentId}</h1>
        <span class={`badge ${statusClass(status)}`} data-testid="agent-status">
          {status ?? 'unknown'}
        </span>
        <span class="muted">last event {ago(state.latest?.timestamp ?? state.record?.last_event_at)}</span>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {state.missing && <p class="empty">No event of {agentId} yet; anything it publishes shows here as it happens.</p>}

      <ActivityLane agentId={agentId} steps={state.steps} tokens={tokens && tokensNow(tokens.totals, tokens.asOfMs, state.steps)} />

      <div class="panel">
        <h2>Confidence and uncertainty</h2>
        <div class="figures-row">
          <span>
            confidence <strong data-testid="agent-confidence">{pct(state.latest?.data?.['confidence_level'] as number | undefined)}</strong>
          </span>
          <span>
            uncertainty <strong>{pct(state.latest?.data?.['uncertainty_score'] as number | undefined)}</strong>
          </span>
          <span class="muted legend-note">▮ pattern alert · ● prediction (coloured by severity / risk)</span>
        </div>
        <Chart
          data={chart.data}
          markers={chart.markers}
          label={`Timeline of ${agentId}: confidence and uncertainty`}
          ranges={{ y: [0, 1] }}
          series={[
            { label: 'confidence', stroke: 'var(--accent)' },
            { label: 'uncertainty', stroke: 'var(--warn)' },
          ]}
        />
      </div>

      <div class="grid-2">
        <div class="panel">
          <h2>Beliefs</h2>
          {beliefs.length === 0 && <p class="muted">No beliefs reported.</p>}
          <ul class="bars">
            {beliefs.map((b, i) => {
              const prior = before.get(b.content ?? '');
              const delta = typeof prior === 'number' && typeof b.confidence === 'number' ? b.confidence - prior : 0;
              const changed = Math.abs(delta) >= 0.005;
              return (
                <li key={`${b.content}-${i}`} class={changed ? 'changed' : ''}>
                  <div class="bar-label">
                    <span>{b.content ?? '(no content)'}</span>
                    <span class="muted">{b.belief_type}</span>
                  </div>
                  {/* biome-ignore lint/a11y/useSemanticElements: a styled bar; <meter> cannot be drawn the same in every browser */}
                  <div
                    class="bar"
                    role="meter"
                    aria-valuemin={0}
                    aria-valuemax={1}
                    aria-valuenow={b.confidence ?? 0}
                    aria-label={`confidence in: ${b.content ?? ''}`}
                  >
                    <span style={{ width: `${Math.round((b.confidence ?? 0) * 100)}%` }} />
                  </div>
                  <span class="bar-value">
                    {pct(b.confidence)}
                    {changed && <span class={delta > 0 ? 'up' : 'down'}>{delta > 0 ? ` ▲${Math.round(delta * 100)}` : ` ▼${Math.round(-delta * 100)}`}</span>}
                  </span>
                </li>
              );
            })}
          </ul>
          {knowledge && (
            <p class="muted">
              knowledge: {factCount(knowledge.facts)}, confidence {pct(knowledge.confidence)}
            </p>
          )}
        </div>

        <div class="panel">
          <h2>Goals</h2>
          {goals.length === 0 && <p class="muted">No goals reported.</p>}
          <ul class="bars">
            {goals.map((g, i) => (
              <li key={`${g.description}-${i}`}>
                <div class="bar-label">
                  <span>{g.description ?? '(no description)'}</span>
                  <span class={`badge ${statusClass(g.status === 'active' ? 'running' : g.status)}`}>{g.status ?? '–'}</span>
                </div>
                <div
                  class="bar goal"
                  role="progressbar"
                  aria-valuemin={0}
                  aria-valuemax={100}
                  aria-valuenow={Math.round(progressOf(g) * 100)}
                  aria-label={`progress of: ${g.description ?? ''}`}
                >
                  <span style={{ width: `${Math.round(progressOf(g) * 100)}%` }} />
                </div>
                <span class="bar-value">{g.priority !== undefined ? `p${g.priority}` : ''}</span>
              </li>
            ))}
          </ul>
        </div>
      </div>

      <div class="grid-2">
        <div class="panel">
          <h2>Pattern alerts</h2>
          {state.alerts.length === 0 && <p class="muted">None recently.</p>}
          <ul class="list">
            {state.alerts.slice(0, RECENT).map((a) => (
              <li key={a.event_id}>
                <span class={`badge ${levelClass(a.severity)}`}>{a.severity ?? 'info'}</span>{' '}
                <strong>{String(a.data?.['pattern_name'] ?? a.alert_type ?? 'pattern')}</strong>{' '}
                <span class="muted">
                  {String(a.data?.['pattern_type'] ?? '')} · {clock(a.timestamp)}
                </span>
                {typeof a.data?.['description'] === 'string' && <div class="muted small">{a.data['description']}</div>}
              </li>
            ))}
          </ul>
        </div>
        <div class="panel">
          <h2>Predictions</h2>
          {state.predictions.length === 0 && <p class="muted">None recently.</p>}
          <ul class="list">
            {state.predictions.slice(0, RECENT).map((p) => {
              const risk = String(p.data?.['risk_level'] ?? '–');
              const factors = Array.isArray(p.data?.['risk_factors']) ? (p.data['risk_factors'] as unknown[]).map(String) : [];
              return (
                <li key={p.event_id}>
                  <span class={`badge ${levelClass(risk)}`}>risk {risk}</span> {String(p.data?.['prediction_type'] ?? 'prediction')}{' '}
                  <strong>{fixed(p.data?.['predicted_value'])}</strong>{' '}
                  <span class="muted">
                    confidence {pct(p.data?.['confidence'] as number | undefined)} · {clock(p.timestamp)}
                  </span>
                  {factors.length > 0 && <div class="muted small">{factors.join(', ')}</div>}
                </li>
              );
            })}
          </ul>
        </div>
      </div>

      <EventLog agentId={agentId} />
    </section>
  );
}

function factCount(facts: unknown): string {
  const n = Array.isArray(facts) ? facts.length : 0;
  return `${n} fact${n === 1 ? '' : 's'}`;
}
