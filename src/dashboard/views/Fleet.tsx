// Fleet: every agent you may see as a card: status, what it is doing now
// (its latest step: running, or how the last one ended), a confidence
// sparkline, uncertainty, open alerts, tokens, last seen. Search and sort; a card opens the
// agent. The list comes from the agent API (refreshed, and reloaded after a
// reconnect); live events move the cards in between.
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { EscaiClient } from '../../client/client.js';
import type { DeliveredEvent } from '../../client/index.js';
import type { ActivityNow, AgentPage, AgentSummary } from '../../protocol/api.js';
import { Sparkline } from '../components/Sparkline.js';
import { applyEvent, mergeSnapshot, mergeSpark, SPARK_POINTS, type Card } from '../fleet.js';
import { ago, levelClass, pct, statusClass } from '../format.js';
import { count, duration } from '../trace.js';
import { usePolling, useSubscriptions } from '../live.js';
import { api, ApiError } from '../session.js';

const SPARK_SEED_AGENTS = 30;

type Sort = 'activity' | 'confidence' | 'uncertainty' | 'alerts' | 'name';

const SUBSCRIPTIONS = [
  { type: 'epistemic_updates' as const },
  { type: 'agent_status' as const },
  { type: 'pattern_alerts' as const },
  // What each agent does now needs its latest step, not every step: the server
  // conflates a busy agent's activity to two events a second for this page.
  { type: 'agent_activity' as const, options: { filters: { $max_rate: 2 } } },
];

export function Fleet({ client, connections }: { client: EscaiClient; connections: number }) {
  const [cards, setCards] = useState<Map<string, Card>>(new Map());
  const [error, setError] = useState<string | null>(null);
  const [query, setQuery] = useState('');
  const [sort, setSort] = useState<Sort>('activity');
  const [loaded, setLoaded] = useState(false);
  // Re-rendered every few seconds so "for 12 s" and "2 min ago" stay true between events.
  const [, setTick] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => setTick((n) => n + 1), 5000);
    return () => clearInterval(timer);
  }, []);

  // The list (and, for agents new to this page, a sparkline seeded from history). After a
  // reconnect everything is reloaded: the server may have restarted, its offsets with it.
  const loadedFor = useRef(-1);
  usePolling(
    async () => {
      try {
        const page = await api<AgentPage>('/api/v1/agents?limit=500');
        setError(null);
        const reload = loadedFor.current !== connections;
        loadedFor.current = connections;
        const fresh: AgentSummary[] = [];
        setCards((old) => {
          const next = new Map<string, Card>();
          for (const agent of page.agents) {
            const prev = reload ? undefined : old.get(agent.agent_id);
            if (!prev) fresh.push(agent);
            // Figures live events set after this snapshot's events keep their values (by stream position).
            next.set(agent.agent_id, mergeSnapshot(prev, agent));
          }
          return next;
        });
        setLoaded(true);
        await Promise.all(fresh.slice(0, SPARK_SEED_AGENTS).map((agent) => seedSpark(agent.agent_id, setCards)));
      } catch (err) {
        setError(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));
      }
    },
    15_000,
    [connections],
  );

  const onEvent = useCallback((event: DeliveredEvent) => {
    const id = event.agent_id;
    if (id === undefined) return;
    setCards((old) => new Map(old).set(id, applyEvent(old.get(id), { ...event, agent_id: id })));
  }, []);
  useSubscriptions(client, SUBSCRIPTIONS, onEvent, setError);

  const shown = useMemo(() => {
    const q = query.trim().toLowerCase();
    const list = [...cards.values()].filter((c) => !q || c.agent_id.toLowerCase().includes(q) || (c.status ?? '').toLowerCase().includes(q));
    const by: Record<Sort, (a: Card, b: Card) => number> = {
      activity: (a, b) => Date.parse(b.last_event_at) - Date.parse(a.last_event_at),
      confidence: (a, b) => (a.confidence_level ?? 2) - (b.confidence_level ?? 2),
      uncertainty: (a, b) => (b.uncertainty_score ?? -1) - (a.uncertainty_score ?? -1),
      alerts: (a, b) => b.open_alerts - a.open_alerts,
      name: (a, b) => a.agent_id.localeCompare(b.agent_id),
    };
    return list.sort(by[sort]);
  }, [cards, query, sort]);

  return (
    <section aria-labelledby="fleet-title">
      <div class="toolbar">
        <h1 id="fleet-title">Fleet</h1>
        <label class="field">
          <span>Search</span>
          <input type="search" value={query} onInput={(e) => setQuery((e.target as HTMLInputElement).value)} placeholder="agent or status" />
        </label>
        <label class="field">
          <span>Sort</span>
          <select value={sort} onChange={(e) => setSort((e.target as HTMLSelectElement).value as Sort)}>
            <option value="activity">last activity</option>
            <option value="confidence">lowest confidence</option>
            <option value="uncertainty">highest uncertainty</option>
            <option value="alerts">open alerts</option>
            <option value="name">name</option>
          </select>
        </label>
        <span class="muted" aria-live="polite">
          {shown.length} of {cards.size} agents
        </span>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {loaded && cards.size === 0 && <p class="empty">No agent has published yet. Start one, or run the demo agents (`escai-realtime serve --demo`).</p>}
      <ul class="cards" data-testid="fleet">
        {shown.map((card) => (
          <li key={card.agent_id}>
            <a class="card" href={`#/agent/${encodeURIComponent(card.agent_id)}`} data-agent={card.agent_id}>
              <div class="card-head">
                <strong class="agent-name">{card.agent_id}</strong>
                <span class={`badge ${statusClass(card.status)}`}>{card.status ?? 'unknown'}</span>
              </div>
              <DoingNow activity={card.activity} status={card.status} />
              <Sparkline values={card.spark.map(([, v]) => v)} label={`confidence of ${card.agent_id}`} />
              <dl class="figures">
                <div>
                  <dt>confidence</dt>
                  <dd>{pct(card.confidence_level)}</dd>
                </div>
                <div>
                  <dt>uncertainty</dt>
                  <dd>{pct(card.uncertainty_score)}</dd>
                </div>
                <div>
                  <dt>alerts</dt>
                  <dd class={card.open_alerts > 0 ? levelClass('high') : ''}>{card.open_alerts}</dd>
                </div>
              </dl>
              <div class="card-foot muted">
                <span>{ago(card.last_event_at)}</span>
                {card.tokens.total > 0 && (
                  <span data-testid="card-tokens" title={`${card.tokens.input} in, ${card.tokens.output} out`}>
                    {count(card.tokens.total)} tokens
                  </span>
                )}
                {card.lastAlert && <span class={levelClass('warning')}>⚠ {card.lastAlert}</span>}
              </div>
            </a>
          </li>
        ))}
      </ul>
    </section>
  );
}

/** The card's "now" line: the step running, or the last one and how it ended. */
function DoingNow({ activity, status }: { activity: ActivityNow | null; status: string | null }) {
  if (!activity)
    return (
      <div class="now muted" data-testid="doing-now">
        no activity reported
      </div>
    );
  const what = activity.kind === 'llm' ? (activity.model ?? activity.name) : activity.kind === 'tool' ? (activity.tool ?? activity.name) : activity.name;
  if (activity.state === 'running' && status !== 'completed' && status !== 'failed' && status !== 'idle') {
    const since = Date.parse(activity.started_at);
    return (
      <div class="now" data-testid="doing-now" data-state="running">
        <span class="st-running">▶</span> {activity.kind} <strong>{what}</strong>
        {Number.isFinite(since) && <span class="muted"> · for {duration(Math.max(0, Date.now() - since))}</span>}
      </div>
    );
  }
  return (
    <div class="now" data-testid="doing-now" data-state={activity.state}>
      <span class="muted">last</span> {activity.kind} <strong>{what}</strong>{' '}
      <span class={activity.state === 'error' ? 'lvl-high' : 'muted'}>
        {activity.state === 'error' ? 'failed' : 'ok'}
        {activity.duration_ms !== undefined ? ` · ${duration(activity.duration_ms)}` : ''}
      </span>
    </div>
  );
}

/** Seeds a card's sparkline from the agent's recent history. */
async function seedSpark(agentId: string, setCards: (fn: (old: Map<string, Card>) => Map<string, Card>) => void): Promise<void> {
  try {
    const page = await api<{ events: DeliveredEvent[] }>(`/api/v1/agents/${encodeURIComponent(agentId)}/events?order=desc&limit=200`);
    const points: Card['spark'] = page.events
      .filter((e) => e.type === 'epistemic_update' && typeof e.data?.['confidence_level'] === 'number')
      .slice(0, SPARK_POINTS)
      .map((e) => [e.offset, e.data!['confidence_level'] as number]);
    setCards((old) => {
      const card = old.get(agentId);
      if (!card) return old;
      const next = new Map(old);
      next.set(agentId, { ...card, spark: mergeSpark(points, card.spark) });
      return next;
    });
  } catch {
    // A sparkline is a nicety: the card shows without it.
  }
}
