// Reading agent activity events: what the agent list shows of the latest one,
// and which tokens count towards an agent's total. Dependency-free: the
// engines, the detectors and the console share it.
import type { ActivityNow, TokenTotals } from './api.js';
import type { DeliveredEvent } from './server-messages.js';

/** The activity event's data fields the readers here use. */
interface ActivityData {
  span_id?: unknown;
  trace_id?: unknown;
  kind?: unknown;
  name?: unknown;
  state?: unknown;
  started_at?: unknown;
  duration_ms?: unknown;
  model?: unknown;
  tool?: unknown;
  tokens?: { input?: unknown; output?: unknown; total?: unknown };
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);

/** An activity event in brief, as the agent list shows what an agent does now. */
export function activityNow(event: DeliveredEvent): ActivityNow {
  const d = (event.data ?? {}) as ActivityData;
  const now: ActivityNow = {
    span_id: str(d.span_id),
    trace_id: str(d.trace_id),
    kind: str(d.kind),
    name: str(d.name),
    state: str(d.state),
    at: event.timestamp,
    started_at: str(d.started_at),
  };
  if (typeof d.duration_ms === 'number') now.duration_ms = d.duration_ms;
  if (typeof d.model === 'string') now.model = d.model;
  if (typeof d.tool === 'string') now.tool = d.tool;
  return now;
}

/**
 * The tokens an activity event adds to its agent's total: those of model
 * calls (kind `llm`) that ended. An agent run, a chain or an AI SDK call
 * reports the tokens of the model calls inside it again, so counting them
 * too would count every token twice. Total: as reported, else input + output.
 */
export function countedTokens(event: DeliveredEvent): TokenTotals | undefined {
  const d = (event.data ?? {}) as ActivityData;
  if (d.kind !== 'llm' || d.state === 'running' || d.tokens === undefined) return undefined;
  const input = num(d.tokens.input);
  const output = num(d.tokens.output);
  const total = typeof d.tokens.total === 'number' ? num(d.tokens.total) : input + output;
  if (input === 0 && output === 0 && total === 0) return undefined;
  return { input, output, total };
}

export function noTokens(): TokenTotals {
  return { input: 0, output: 0, total: 0 };
}
