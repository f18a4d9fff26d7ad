// The Fleet's cards as data: what a live event does to a card, and how a
// polled snapshot of the agent list merges with cards that live events moved
// meanwhile. Pure, so the rule that keeps a card from going stale is tested
// on its own (test/console-fleet.test.ts).
//
// Which of two figures is newer is told by stream positions, never by
// clocks: an event's timestamp comes from whoever published it (a demo, an
// agent's own clock, a span's start), and a snapshot requested before a live
// event may be answered after it. A figure a live event set stays until a
// snapshot carries a later position of the same stream.
import type { DeliveredEvent } from '../client/index.js';
import { activityNow } from '../protocol/activity.js';
import type { AgentPositions, AgentSummary } from '../protocol/api.js';
import type { StreamPosition } from '../protocol/server-messages.js';

export const SPARK_POINTS = 40;
/** Severities that count as an open alert (as the server counts them). */
const SEVERE = new Set(['warning', 'high', 'error', 'critical']);

export interface Card extends AgentSummary {
  /** Confidence by offset, oldest first (history and live merged without duplicates). */
  spark: Array<[offset: number, confidence: number]>;
  lastAlert: string | null;
}

/** Whether `a` is later than `b` in the same stream lifetime (a position over none counts as later). */
export function later(a: StreamPosition | null, b: StreamPosition | null): boolean {
  if (!a) return false;
  if (!b) return true;
  return a.epoch === b.epoch && a.offset > b.offset;
}

export function mergeSpark(a: Card['spark'], b: Card['spark']): Card['spark'] {
  const byOffset = new Map([...a, ...b]);
  return [...byOffset].sort(([x], [y]) => x - y).slice(-SPARK_POINTS);
}

function laterTime(a: string, b: string): string {
  return Date.parse(b) > Date.parse(a) || !a ? b : a;
}

const NO_POSITIONS: AgentPositions = { status: null, epistemic: null, alert: null, activity: null };

export function emptyCard(agentId: string, at: string): Card {
  return {
    agent_id: agentId,
    status: null,
    last_event_at: at,
    confidence_level: null,
    uncertainty_score: null,
    open_alerts: 0,
    events: { epistemic_update: 0, pattern_alert: 0, prediction_update: 0, agent_status_change: 0, agent_activity: 0 },
    activity: null,
    tokens: { input: 0, output: 0, total: 0 },
    positions: NO_POSITIONS,
    spark: [],
    lastAlert: null,
  };
}

/**
 * A card after one live event of its agent. An event no later than what the
 * card shows (a replay after a reconnect, say) changes only the last-seen
 * time; a new epoch (the server's streams began again) is taken as newer.
 */
export function applyEvent(card: Card | undefined, event: DeliveredEvent & { agent_id: string }): Card {
  const base = card ?? emptyCard(event.agent_id, event.timestamp);
  const updated: Card = { ...base, last_event_at: laterTime(base.last_event_at, event.timestamp) };
  const at: StreamPosition = { epoch: event.epoch, offset: event.offset };
  const fresh = (held: StreamPosition | null) => !held || held.epoch !== at.epoch || at.offset > held.offset;
  if (event.type === 'epistemic_update') {
    if (!fresh(base.positions.epistemic)) return updated;
    const c = event.data?.['confidence_level'];
    const u = event.data?.['uncertainty_score'];
    if (typeof c === 'number') {
      updated.confidence_level = c;
      updated.spark = mergeSpark(base.spark, [[event.offset, c]]);
    }
    if (typeof u === 'number') updated.uncertainty_score = u;
    updated.positions = { ...base.positions, epistemic: at };
  } else if (event.type === 'agent_status_change') {
    if (!fresh(base.positions.status)) return updated;
    updated.status = event.status ?? null;
    updated.positions = { ...base.positions, status: at };
  } else if (event.type === 'agent_activity') {
    if (!fresh(base.positions.activity)) return updated;
    const now = activityNow(event);
    // A running report never replaces the same step's end.
    if (base.activity && base.activity.span_id === now.span_id && base.activity.state !== 'running' && now.state === 'running') return updated;
    updated.activity = now;
    updated.positions = { ...base.positions, activity: at };
  } else if (event.type === 'pattern_alert') {
    if (!fresh(base.positions.alert)) return updated;
    if (SEVERE.has(event.severity ?? '')) updated.open_alerts = base.open_alerts + 1;
    updated.lastAlert = String(event.data?.['pattern_name'] ?? event.alert_type ?? 'alert');
    updated.positions = { ...base.positions, alert: at };
  }
  return updated;
}

/**
 * A card from a snapshot of the agent list and the card as live events left
 * it (none: the agent is new to the page, or the page reloads after a
 * reconnect). Each figure is the snapshot's unless the card's came from a
 * later event of the same stream; counts and tokens are the server's.
 */
export function mergeSnapshot(prev: Card | undefined, agent: AgentSummary): Card {
  const positions = agent.positions ?? NO_POSITIONS;
  if (!prev) return { ...agent, positions, spark: [], lastAlert: null };
  const card: Card = {
    ...agent,
    positions: { ...positions },
    spark: prev.spark,
    lastAlert: prev.lastAlert,
    last_event_at: laterTime(prev.last_event_at, agent.last_event_at),
  };
  if (later(prev.positions.status, positions.status)) {
    card.status = prev.status;
    card.positions.status = prev.positions.status;
  }
  if (later(prev.positions.epistemic, positions.epistemic)) {
    card.confidence_level = prev.confidence_level;
    card.uncertainty_score = prev.uncertainty_score;
    card.positions.epistemic = prev.positions.epistemic;
  }
  if (later(prev.positions.activity, positions.activity)) {
    card.activity = prev.activity;
    card.positions.activity = prev.positions.activity;
  }
  if (later(prev.positions.alert, positions.alert)) {
    card.open_alerts = Math.max(prev.open_alerts, agent.open_alerts);
    card.positions.alert = prev.positions.alert;
  }
  return card;
}
