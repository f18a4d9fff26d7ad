// The REST API's answer shapes that clients (the console, the CLI, SDK users)
// read: the agent list and an agent's current state, and the connection
// list. Dependency-free, like server-messages.ts.
import type { DeliveredEvent, StreamPosition, SubscriptionView } from './server-messages.js';

/** The event types an agent's streams carry (its activity on a stream of its own). */
export const AGENT_EVENT_TYPES = ['epistemic_update', 'pattern_alert', 'prediction_update', 'agent_status_change', 'agent_activity'] as const;
export type AgentEventType = (typeof AGENT_EVENT_TYPES)[number];

/** What an agent is doing now, as the agent list shows it: its latest activity event, in brief. */
export interface ActivityNow {
  span_id: string;
  trace_id: string;
  kind: string;
  name: string;
  /** `running` (started, not ended yet), `ok` or `error`. */
  state: string;
  /** When the server received it. */
  at: string;
  started_at: string;
  duration_ms?: number;
  model?: string;
  tool?: string;
}

/** Tokens an agent's model calls used (steps of kind `llm` only: the steps nesting them report the same tokens again). */
export interface TokenTotals {
  input: number;
  output: number;
  total: number;
}

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
  /** Its latest activity (a running step, or the last one that ended); null before the first. */
  activity: ActivityNow | null;
  /** Tokens used since the agent was first seen (or came back after dropping out). */
  tokens: TokenTotals;
  /**
   * Where the figures above come from: the position (epoch, offset) of the
   * event each was read from, null before the first. A client that also
   * holds live events keeps its own figure when its event is later in the
   * same stream, and never has to compare clocks.
   */
  positions: AgentPositions;
}

/** The stream positions of an agent summary's figures (status, epistemic and alert on the agent's stream; activity on its own). */
export interface AgentPositions {
  status: StreamPosition | null;
  epistemic: StreamPosition | null;
  alert: StreamPosition | null;
  activity: StreamPosition | null;
}

/** The position of an event, or null. */
export function positionOf(event: { epoch: string; offset: number } | null | undefined): StreamPosition | null {
  return event ? { epoch: event.epoch, offset: event.offset } : null;
}

/** The latest position among events of one stream kept newest first: the highest offset in the first event's epoch. */
export function latestPosition(events: readonly { epoch: string; offset: number }[]): StreamPosition | null {
  const first = events[0];
  if (!first) return null;
  let offset = first.offset;
  for (const e of events) if (e.epoch === first.epoch && e.offset > offset) offset = e.offset;
  return { epoch: first.epoch, offset };
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

/** One connection as GET /ws/connections lists it. */
export interface ConnectionEntry {
  connection_id: string;
  node_id: string;
  user_id: string;
  session_id: string;
  connected_at: string;
  subscriptions: SubscriptionView[];
  /** When the node last pinged it (null when another node holds it, or before the first ping). */
  last_ping: string | null;
  is_alive: boolean;
}
