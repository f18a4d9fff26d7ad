// The agent directory seam: what is known about each agent right now, kept
// apart from stream history so it outlives the history window. Every agent
// event a node publishes is recorded once (by the publishing node); the
// directory keeps the latest epistemic state and status, the last few
// pattern alerts and predictions, the latest activity and the tokens used,
// per-type counts, and the time of the last event. An agent unseen for
// `agentTtl` drops out.
import { OPEN_ALERT_SEVERITIES, OPEN_ALERT_WINDOW_MS, type AgentEventType, type AgentPage, type AgentRecord } from '../protocol/api.js';
import { EscaiError } from '../protocol/codes.js';
import type { DeliveredEvent } from '../protocol/server-messages.js';

export * from '../protocol/api.js';

export interface AgentQuery {
  limit: number;
  /** From a previous page's `next_cursor`. */
  cursor?: string | undefined;
  /** Only these agents (a caller who may not monitor every agent); undefined: all. */
  only?: ReadonlySet<string> | undefined;
}

export interface AgentDirectory {
  /**
   * Records the agent events of one publication (with their offsets, in
   * offset order per stream; other events are ignored). Events of one agent
   * may arrive out of order across nodes: the latest by offset of its stream
   * wins (the agent stream's and the activity stream's apart), and the last
   * activity time only moves forward.
   */
  record(events: readonly DeliveredEvent[]): Promise<void>;
  /** Agents by last activity, newest first. */
  list(query: AgentQuery): Promise<AgentPage>;
  get(agentId: string): Promise<AgentRecord | undefined>;
  /**
   * Forgets an agent (its card in the console, its row in the list): true if
   * it was known. Its streams' history stays until it ages out; its next
   * event makes it known again.
   */
  remove(agentId: string): Promise<boolean>;
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

/** The position a cursor names, or undefined when it is not one `encodeCursor` made. */
export function decodeCursor(cursor: string): [number, string] | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (!Array.isArray(value) || value.length !== 2 || !Number.isFinite(value[0]) || typeof value[1] !== 'string') return undefined;
    const position: [number, string] = [value[0] as number, value[1]];
    // Node's base64url decoder skips characters it does not know: only the exact text we made is ours.
    return encodeCursor(...position) === cursor ? position : undefined;
  } catch {
    return undefined; // not JSON: not a cursor of ours
  }
}

/**
 * The position a list query starts after: none without a cursor; a cursor
 * that is not a `next_cursor` of ours is refused, never read as "from the
 * newest agent" (a client would page through the same agents again).
 */
export function cursorPosition(cursor: string | undefined): [number, string] | undefined {
  if (cursor === undefined) return undefined;
  const position = decodeCursor(cursor);
  if (!position) throw new EscaiError('VALIDATION_ERROR', 'cursor: not a next_cursor this server gave (omit it to start from the newest agent)');
  return position;
}

/** Whether (ms, id) comes after the cursor in the order newest first, then agent id descending. */
export function afterCursor(ms: number, id: string, cursor: [number, string] | undefined): boolean {
  if (!cursor) return true;
  return ms < cursor[0] || (ms === cursor[0] && id < cursor[1]);
}

/** Whether the directory keeps this event (agent events only). */
export function isAgentRecordable(event: DeliveredEvent): event is DeliveredEvent & { agent_id: string; type: AgentEventType } {
  return event.agent_id !== undefined && event.type !== 'system_alert' && event.type !== 'user_notification';
}

export function emptyCounts(): Record<AgentEventType, number> {
  return { epistemic_update: 0, pattern_alert: 0, prediction_update: 0, agent_status_change: 0, agent_activity: 0 };
}

export { activityNow, countedTokens, noTokens } from '../protocol/activity.js';

/** The confidence and uncertainty an epistemic update carries, when it carries them as numbers. */
export function epistemicFigures(event: DeliveredEvent): { confidence: number | undefined; uncertainty: number | undefined } {
  const c = event.data?.['confidence_level'];
  const u = event.data?.['uncertainty_score'];
  return { confidence: typeof c === 'number' ? c : undefined, uncertainty: typeof u === 'number' ? u : undefined };
}
