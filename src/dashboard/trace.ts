// The activity lane's model, without the DOM: an agent's steps merged by
// span id (an ended report is final, as the protocol says), grouped into
// traces, and one trace laid out as a waterfall: rows in tree order with
// their depth and their place on the trace's time axis. Running steps
// extend to `now`. The Agent view renders it; test/console-trace.test.ts
// checks it.
import { countedTokens } from '../protocol/activity.js';
import type { TokenTotals } from '../protocol/api.js';
import type { DeliveredEvent } from '../protocol/server-messages.js';

/** One step as the lane shows it (the fields of an `agent_activity` event it reads). */
export interface Step {
  spanId: string;
  traceId: string;
  parentSpanId: string | null;
  kind: string;
  name: string;
  state: string;
  inferred: boolean;
  startMs: number;
  /** Known once the step ended. */
  durationMs: number | undefined;
  model?: string;
  tool?: string;
  error?: string;
  tokens: TokenTotals | undefined;
  /** When the server received its latest report (orders traces by recency). */
  seenMs: number;
}

/** Steps kept per agent view: enough for a few traces of a busy agent. */
export const MAX_STEPS = 2000;

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function stepOf(event: DeliveredEvent): Step | null {
  const d = event.data ?? {};
  const spanId = str(d['span_id']);
  const traceId = str(d['trace_id']);
  if (!spanId || !traceId) return null;
  const start = Date.parse(String(d['started_at'] ?? ''));
  const seen = Date.parse(event.timestamp);
  const error = d['error'] as { type?: unknown; message?: unknown } | undefined;
  const step: Step = {
    spanId,
    traceId,
    parentSpanId: str(d['parent_span_id']) ?? null,
    kind: str(d['kind']) ?? 'other',
    name: str(d['name']) ?? '(unnamed)',
    state: str(d['state']) ?? 'ok',
    inferred: d['inferred'] === true,
    startMs: Number.isFinite(start) ? start : seen,
    durationMs: typeof d['duration_ms'] === 'number' ? d['duration_ms'] : undefined,
    tokens: countedTokens(event),
    seenMs: Number.isFinite(seen) ? seen : Date.now(),
  };
  const model = str(d['model']);
  const tool = str(d['tool']);
  if (model) step.model = model;
  if (tool) step.tool = tool;
  const message = error ? (str(error.message) ?? str(error.type)) : undefined;
  if (message) step.error = message;
  return step;
}

/**
 * Adds a report to the steps (a new map when it changes anything). An ended
 * report replaces a running one; a running report never replaces an ended
 * one; an inferred running parent keeps the name it already has if a real
 * report came first. The oldest steps go past MAX_STEPS.
 */
export function mergeStep(steps: ReadonlyMap<string, Step>, step: Step): ReadonlyMap<string, Step> {
  const old = steps.get(step.spanId);
  if (old && old.state !== 'running' && step.state === 'running') return steps;
  if (old && old.state === step.state && old.seenMs >= step.seenMs && old.durationMs === step.durationMs) return steps;
  const next = new Map(steps);
  next.set(step.spanId, old && step.inferred && !old.inferred ? { ...old, seenMs: Math.max(old.seenMs, step.seenMs) } : step);
  if (next.size > MAX_STEPS) {
    const oldest = [...next.values()].sort((a, b) => a.seenMs - b.seenMs).slice(0, next.size - MAX_STEPS);
    for (const s of oldest) next.delete(s.spanId);
  }
  return next;
}

export interface TraceSummary {
  traceId: string;
  /** The root step's name (or the earliest step's, when the root has not been seen). */
  name: string;
  steps: number;
  running: number;
  lastSeenMs: number;
}

/** The agent's traces, most recently active first. */
export function tracesOf(steps: ReadonlyMap<string, Step>): TraceSummary[] {
  const byTrace = new Map<string, Step[]>();
  for (const s of steps.values()) {
    const list = byTrace.get(s.traceId);
    if (list) list.push(s);
    else byTrace.set(s.traceId, [s]);
  }
  return [...byTrace.entries()]
    .map(([traceId, list]) => {
      const ids = new Set(list.map((s) => s.spanId));
      const roots = list.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId)).sort((a, b) => a.startMs - b.startMs);
      return {
        traceId,
        name: roots[0]?.name ?? '(trace)',
        steps: list.length,
        running: list.filter((s) => s.state === 'running').length,
        lastSeenMs: Math.max(...list.map((s) => s.seenMs)),
      };
    })
    .sort((a, b) => b.lastSeenMs - a.lastSeenMs || a.traceId.localeCompare(b.traceId));
}

export interface LaneRow {
  step: Step;
  depth: number;
  /** Where the bar starts and how wide it is, as fractions of the trace's time axis. */
  left: number;
  width: number;
  /** Known duration, or for a running step the time since it started. */
  elapsedMs: number;
}

export interface Lane {
  rows: LaneRow[];
  startMs: number;
  spanMs: number;
  running: number;
  /** Model-call tokens of the trace's ended steps (each step once). */
  tokens: TokenTotals;
}

/** Rows past this many are left out of the lane (the count says so). */
export const MAX_ROWS = 200;

/** One trace as a waterfall: depth-first from its roots, children by start time. */
export function laneOf(steps: ReadonlyMap<string, Step>, traceId: string, now: number): Lane {
  const list = [...steps.values()].filter((s) => s.traceId === traceId);
  const ids = new Set(list.map((s) => s.spanId));
  const children = new Map<string | null, Step[]>();
  for (const s of list) {
    const parent = s.parentSpanId && ids.has(s.parentSpanId) ? s.parentSpanId : null;
    const siblings = children.get(parent);
    if (siblings) siblings.push(s);
    else children.set(parent, [s]);
  }
  for (const siblings of children.values()) siblings.sort((a, b) => a.startMs - b.startMs || a.spanId.localeCompare(b.spanId));

  const ended = (s: Step): boolean => s.durationMs !== undefined && s.state !== 'running';
  // A running step runs at least until now, and until the last of the ends seen (clocks drift).
  const lastEnd = Math.max(now, ...list.filter(ended).map((s) => s.startMs + s.durationMs!));
  const endOf = (s: Step): number => (ended(s) ? s.startMs + s.durationMs! : Math.max(lastEnd, s.startMs));
  const startMs = list.length ? Math.min(...list.map((s) => s.startMs)) : now;
  const endMs = list.length ? Math.max(...list.map(endOf)) : now;
  const spanMs = Math.max(1, endMs - startMs);

  const rows: LaneRow[] = [];
  const visit = (parent: string | null, depth: number, seen: Set<string>) => {
    for (const s of children.get(parent) ?? []) {
      if (seen.has(s.spanId)) continue;
      seen.add(s.spanId);
      const end = endOf(s);
      rows.push({ step: s, depth, left: (s.startMs - startMs) / spanMs, width: Math.max(0, end - s.startMs) / spanMs, elapsedMs: end - s.startMs });
      visit(s.spanId, depth + 1, seen);
    }
  };
  const seen = new Set<string>();
  visit(null, 0, seen);
  // Steps whose parent ids loop back on each other reach no root: shown at the top level.
  for (const s of [...list].sort((a, b) => a.startMs - b.startMs || a.spanId.localeCompare(b.spanId))) {
    if (seen.has(s.spanId)) continue;
    children.set(`orphan:${s.spanId}`, [s]);
    visit(`orphan:${s.spanId}`, 0, seen);
  }

  const tokens: TokenTotals = { input: 0, output: 0, total: 0 };
  for (const s of list) {
    if (!s.tokens) continue;
    tokens.input += s.tokens.input;
    tokens.output += s.tokens.output;
    tokens.total += s.tokens.total;
  }
  return { rows, startMs, spanMs, running: list.filter((s) => s.state === 'running').length, tokens };
}

/**
 * An agent's token total as of now: the server's total (which counts every
 * model call once, up to its latest activity at `asOfMs`) plus the model calls
 * seen after that. A report at exactly `asOfMs` is left to the next poll:
 * the figure may lag a moment, never count a call twice.
 */
export function tokensNow(server: TokenTotals, asOfMs: number, steps: ReadonlyMap<string, Step>): TokenTotals {
  const out = { ...server };
  for (const s of steps.values()) {
    if (!s.tokens || !(s.seenMs > asOfMs)) continue;
    out.input += s.tokens.input;
    out.output += s.tokens.output;
    out.total += s.tokens.total;
  }
  return out;
}

/** "850 ms", "2.4 s", "3 min 5 s". */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** "12.3k" style counts for token figures. */
export function count(n: number): string {
  if (n < 1000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}
