// The agent directory seam: what is known about each agent right now, kept
// apart from stream history so it outlives the history window. Every agent
// event a node publishes is recorded once (by the publishing node); the
// directory keeps the latest epistemic state and status, the last few
// pattern alerts and predictions, per-type counts, and the time of the last
// event. An agent unseen for `agentTtl` drops out.
import type { DeliveredEvent } from '../protocol/server-messages.js';

/** The event types an agent's stream carries. */
export const AGENT_EVENT_TYPES = ['epistemic_update', 'pattern_alert', 'prediction_update', 'agent_status_change'] as const;
export type AgentEventType = (typeof AGENT_EVENT_TYPES)[number];

/** Pattern alerts and predictions kept per agent (newest first). */
export const RECENT_KEPT = 20;
/** A pattern alert counts as open for this long after it was published… */
export const OPEN_ALERT_WINDOW_MS = 15 * 60_000;
/** …when its severity is one of these. */
export const OPEN_ALERT_SEVERITIES: ReadonlySet<string> = new Set(['warning', 'high', 'error', 'critical']);

/** One agent as the agent list shows it. */
export interface AgentSummary {
  agent_id: string;
  /** The latest agent_status_change's status, or null before the first. */
  status: string | null;
  last_event_at: string;
  /** From the latest epistemic update that carried them. */
  confidence_level: number | null;
  uncertainty_score: number | null;
  /** Pattern alerts of severity warning or above published in the last 15 minutes (of the last 20 kept). */
  open_alerts: number;
  /** Events recorded per type since the agent was first seen (or came back after dropping out). */
  events: Record<AgentEventType, number>;
}

/** Everything the directory knows about one agent. */
export interface AgentRecord extends AgentSummary {
  latest_epistemic: DeliveredEvent | null;
  latest_status: DeliveredEvent | null;
  /** The last pattern alerts, newest first. */
  alerts: DeliveredEvent[];
  /** The last prediction updates, newest first. */
  predictions: DeliveredEvent[];
}

export interface AgentPage {
  agents: AgentSummary[];
  /** Pass as `cursor` for the next page; null on the last one. */
  next_cursor: string | null;
}

export interface AgentQuery {
  limit: number;
  /** From a previous page's `next_cursor`. */
  cursor?: string | undefined;
  /** Only these agents (a caller who may not monitor every agent); undefined: all. */
  only?: ReadonlySet<string> | undefined;
}

export interface AgentDirectory {
  /** Records an agent event (published, with its offset). Events of one agent may arrive out of order across nodes: the latest by offset wins. */
  record(event: DeliveredEvent): Promise<void>;
  /** Agents by last activity, newest first. */
  list(query: AgentQuery): Promise<AgentPage>;
  get(agentId: string): Promise<AgentRecord | undefined>;
}

/** The open-alert count of a list of pattern alerts (newest first), at `now`. */
export function openAlerts(alerts: readonly DeliveredEvent[], now: number): number {
  let open = 0;
  for (const alert of alerts) {
    if (now - Date.parse(alert.timestamp) > OPEN_ALERT_WINDOW_MS) break;
    if (OPEN_ALERT_SEVERITIES.has(alert.severity ?? '')) open++;
  }
  return open;
}

/** A page cursor: the (last activity, agent id) of the last agent shown, opaque to clients. */
export function encodeCursor(lastMs: number, agentId: string): string {
  return Buffer.from(JSON.stringify([lastMs, agentId])).toString('base64url');
}

export function decodeCursor(cursor: string): [number, string] | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && typeof value[0] === 'number' && typeof value[1] === 'string') return [value[0], value[1]];
  } catch {
    // not a cursor of ours
  }
  return undefined;
}

/** Whether (ms, id) comes after the cursor in the order newest first, then agent id descending. */
export function afterCursor(ms: number, id: string, cursor: [number, string] | undefined): boolean {
  if (!cursor) return true;
  return ms < cursor[0] || (ms === cursor[0] && id < cursor[1]);
}

export function emptyCounts(): Record<AgentEventType, number> {
  return { epistemic_update: 0, pattern_alert: 0, prediction_update: 0, agent_status_change: 0 };
}

/** The confidence and uncertainty an epistemic update carries, when it carries them as numbers. */
export function epistemicFigures(event: DeliveredEvent): { confidence: number | undefined; uncertainty: number | undefined } {
  const c = event.data?.['confidence_level'];
  const u = event.data?.['uncertainty_score'];
  return { confidence: typeof c === 'number' ? c : undefined, uncertainty: typeof u === 'number' ? u : undefined };
}
