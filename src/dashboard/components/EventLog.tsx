// The raw event log of one agent, filtered by the server: the filter box
// takes the subscription filter syntax (docs/PROTOCOL.md, Filters), and the
// log resubscribes with it on a connection of its own, so the live views
// keep receiving everything.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { EscaiClient } from '../../client/client.js';
import type { DeliveredEvent, SubscriptionType } from '../../client/index.js';
import { clock, levelClass } from '../format.js';
import { createClient } from '../live.js';
import { api, currentToken } from '../session.js';

const TYPES: SubscriptionType[] = ['epistemic_updates', 'pattern_alerts', 'prediction_updates', 'agent_status'];
const KEEP = 200;
/** How far back (in stream events) the log starts. */
const BACKLOG = 100;

function summary(event: DeliveredEvent): string {
  const d = event.data ?? {};
  switch (event.type) {
    case 'epistemic_update':
      return `confidence ${String(d['confidence_level'] ?? '–')}, uncertainty ${String(d['uncertainty_score'] ?? '–')}`;
    case 'pattern_alert':
      return `${event.severity ?? ''} ${String(d['pattern_name'] ?? event.alert_type ?? '')}`;
    case 'prediction_update':
      return `${String(d['prediction_type'] ?? '')} ${String(d['predicted_value'] ?? '')} risk ${String(d['risk_level'] ?? '–')}`;
    case 'agent_status_change':
      return `status ${event.status ?? ''}`;
    default:
      return event.type;
  }
}

export function EventLog({ agentId }: { agentId: string }) {
  const [filterText, setFilterText] = useState('');
  const [filters, setFilters] = useState<Record<string, unknown> | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [events, setEvents] = useState<DeliveredEvent[]>([]);
  const [open, setOpen] = useState<string | null>(null);
  const client = useRef<EscaiClient | null>(null);

  // A connection of the log's own, for as long as the log is shown.
  useEffect(() => {
    const token = currentToken();
    if (!token) return;
    const c = createClient(token);
    client.current = c;
    c.on('event', (event) => {
      // One stream per agent: offsets order the four types together, newest first.
      if (event.agent_id === agentId) setEvents((old) => [event, ...old].sort((a, b) => b.offset - a.offset).slice(0, KEEP));
    });
    c.connect();
    return () => {
      c.close();
      client.current = null;
    };
  }, [agentId]);

  // (Re)subscribe with the current filter, starting BACKLOG events back: the server replays what of
  // them passes the filter, then live events follow, without a gap. (Where history no longer
  // reaches that far, each type starts with its latest matching event instead.)
  useEffect(() => {
    const c = client.current;
    if (!c) return;
    let cancelled = false;
    setEvents([]);
    setProblem(null);
    const start = async () => {
      const position = await api<{ offset: number; epoch: string }>(`/api/v1/agents/${encodeURIComponent(agentId)}/events?order=desc&limit=1`).catch(
        () => null,
      );
      if (cancelled) return;
      const since = position ? { offset: Math.max(0, position.offset - BACKLOG), epoch: position.epoch } : undefined;
      for (const type of TYPES) {
        c.subscribe(type, { agentId, latest: true, ...(since ? { since } : {}), ...(filters ? { filters } : {}) }).catch((err: Error & { code?: string }) =>
          setProblem(`${err.code ?? 'ERROR'}: ${err.message}`),
        );
      }
    };
    void start();
    return () => {
      cancelled = true;
      for (const type of TYPES) c.unsubscribe(type, agentId).catch(() => {});
    };
  }, [agentId, filters]);

  const apply = (e: Event) => {
    e.preventDefault();
    const text = filterText.trim();
    if (!text) {
      setFilters(null);
      return;
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('a filter is a JSON object');
      setFilters(parsed as Record<string, unknown>);
    } catch (err) {
      setProblem(`Not a filter: ${(err as Error).message}`);
    }
  };

  return (
    <div class="panel">
      <h2 id="log-title">Event log</h2>
      <form class="filter" onSubmit={apply} aria-labelledby="log-title">
        <label class="field grow">
          <span>Server-side filter (JSON)</span>
          <input
            type="text"
            data-testid="log-filter"
            value={filterText}
            placeholder='{"confidence_level": {"max": 0.5}}  ·  {"severity": {"in": ["high", "critical"]}}'
            onInput={(e) => setFilterText((e.target as HTMLInputElement).value)}
            spellcheck={false}
          />
        </label>
        <button type="submit">Apply</button>
        <button
          type="button"
          onClick={() => {
            setFilterText('');
            setFilters(null);
          }}
        >
          Clear
        </button>
      </form>
      {problem && (
        <p class="error" role="alert">
          {problem}
        </p>
      )}
      <p class="muted small">
        {filters ? `filtered by the server: ${JSON.stringify(filters)}` : 'every event'} · newest first · {events.length} shown
      </p>
      <ol class="log" data-testid="event-log">
        {events.map((e) => (
          <li key={e.event_id} data-offset={e.offset}>
            <button type="button" class="log-line" aria-expanded={open === e.event_id} onClick={() => setOpen(open === e.event_id ? null : e.event_id)}>
              <span class="muted">{clock(e.timestamp)}</span> <span class="mono">#{e.offset}</span>{' '}
              <span class={`badge ${e.type === 'pattern_alert' ? levelClass(e.severity) : 'lvl-info'}`}>{e.type}</span> {summary(e)}
            </button>
            {open === e.event_id && <pre class="json">{JSON.stringify(e, null, 2)}</pre>}
          </li>
        ))}
      </ol>
    </div>
  );
}
