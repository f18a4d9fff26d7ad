// The agent directory of the in-memory engine: one entry per agent, swept
// once its last event is older than the agent TTL.
import type { ActivityNow, TokenTotals } from '../../protocol/api.js';
import {
  activityNow,
  afterCursor,
  countedTokens,
  cursorPosition,
  emptyCounts,
  encodeCursor,
  epistemicFigures,
  isAgentRecordable,
  noTokens,
  latestPosition,
  openAlerts,
  positionOf,
  RECENT_KEPT,
  type AgentDirectory,
  type AgentEventType,
  type AgentPage,
  type AgentQuery,
  type AgentRecord,
  type AgentSummary,
} from '../agents.js';
import type { DeliveredEvent } from '../broker.js';

interface Entry {
  lastMs: number;
  lastAt: string;
  offset: number;
  epoch: string;
  status: string | null;
  confidence: number | null;
  uncertainty: number | null;
  counts: Record<AgentEventType, number>;
  epistemic: DeliveredEvent | null;
  statusEvent: DeliveredEvent | null;
  alerts: DeliveredEvent[];
  predictions: DeliveredEvent[];
  /** The latest activity, by its own stream's offset. */
  activity: ActivityNow | null;
  activityOffset: number;
  activityEpoch: string;
  tokens: TokenTotals;
}

export class MemoryAgentDirectory implements AgentDirectory {
  readonly #agents = new Map<string, Entry>();
  readonly #ttlMs: number;

  constructor(options: { agentTtlMs: number }) {
    this.#ttlMs = options.agentTtlMs;
  }

  async record(events: readonly DeliveredEvent[]): Promise<void> {
    for (const event of events) if (isAgentRecordable(event)) this.#recordOne(event.agent_id, event);
  }

  #recordOne(agentId: string, event: DeliveredEvent & { type: AgentEventType }): void {
    let entry = this.#agents.get(agentId);
    if (!entry) {
      entry = {
        lastMs: 0,
        lastAt: '',
        offset: 0,
        epoch: '',
        status: null,
        confidence: null,
        uncertainty: null,
        counts: emptyCounts(),
        epistemic: null,
        statusEvent: null,
        alerts: [],
        predictions: [],
        activity: null,
        activityOffset: 0,
        activityEpoch: '',
        tokens: noTokens(),
      };
      this.#agents.set(agentId, entry);
    }
    entry.counts[event.type]++;
    const ms = Date.parse(event.timestamp);
    if (ms >= entry.lastMs) {
      entry.lastMs = ms;
      entry.lastAt = event.timestamp;
    }
    if (event.type === 'agent_activity') {
      const tokens = countedTokens(event);
      if (tokens) {
        entry.tokens.input += tokens.input;
        entry.tokens.output += tokens.output;
        entry.tokens.total += tokens.total;
      }
      if (event.epoch === entry.activityEpoch && event.offset <= entry.activityOffset) return; // an older step: the latest stays
      entry.activityOffset = event.offset;
      entry.activityEpoch = event.epoch;
      entry.activity = activityNow(event);
      return;
    }
    if (event.type === 'pattern_alert') entry.alerts = [event, ...entry.alerts].slice(0, RECENT_KEPT);
    if (event.type === 'prediction_update') entry.predictions = [event, ...entry.predictions].slice(0, RECENT_KEPT);
    if (event.epoch === entry.epoch && event.offset <= entry.offset) return; // an older event: the latest stays
    entry.offset = event.offset;
    entry.epoch = event.epoch;
    if (event.type === 'epistemic_update') {
      entry.epistemic = event;
      const { confidence, uncertainty } = epistemicFigures(event);
      if (confidence !== undefined) entry.confidence = confidence;
      if (uncertainty !== undefined) entry.uncertainty = uncertainty;
    } else if (event.type === 'agent_status_change') {
      entry.statusEvent = event;
      entry.status = event.status ?? null;
    }
  }

  async list({ limit, cursor, only }: AgentQuery): Promise<AgentPage> {
    const cutoff = Date.now() - this.#ttlMs;
    const after = cursorPosition(cursor);
    const sorted = [...this.#agents]
      .filter(([id, e]) => e.lastMs >= cutoff && (only === undefined || only.has(id)) && afterCursor(e.lastMs, id, after))
      .sort(([a, x], [b, y]) => y.lastMs - x.lastMs || (a < b ? 1 : a > b ? -1 : 0));
    const page = sorted.slice(0, limit);
    const last = page.at(-1);
    const now = Date.now();
    return {
      agents: page.map(([id, e]) => summary(id, e, now)),
      next_cursor: sorted.length > limit && last ? encodeCursor(last[1].lastMs, last[0]) : null,
    };
  }

  async get(agentId: string): Promise<AgentRecord | undefined> {
    const e = this.#agents.get(agentId);
    if (!e || e.lastMs < Date.now() - this.#ttlMs) return undefined;
    return {
      ...summary(agentId, e, Date.now()),
      latest_epistemic: e.epistemic,
      latest_status: e.statusEvent,
      alerts: [...e.alerts],
      predictions: [...e.predictions],
    };
  }

  async remove(agentId: string): Promise<boolean> {
    const known = this.#agents.get(agentId);
    this.#agents.delete(agentId);
    return known !== undefined && known.lastMs >= Date.now() - this.#ttlMs;
  }

  /** Forgets agents unseen for the TTL (the engine calls it periodically). */
  sweep(now: number): void {
    const cutoff = now - this.#ttlMs;
    for (const [id, e] of this.#agents) if (e.lastMs < cutoff) this.#agents.delete(id);
  }
}

function summary(agentId: string, e: Entry, now: number): AgentSummary {
  return {
    agent_id: agentId,
    status: e.status,
    last_event_at: e.lastAt,
    confidence_level: e.confidence,
    uncertainty_score: e.uncertainty,
    open_alerts: openAlerts(e.alerts, now),
    events: { ...e.counts },
    activity: e.activity,
    tokens: { ...e.tokens },
    positions: {
      status: positionOf(e.statusEvent),
      epistemic: positionOf(e.epistemic),
      alert: latestPosition(e.alerts),
      activity: e.activity ? { epoch: e.activityEpoch, offset: e.activityOffset } : null,
    },
  };
}
