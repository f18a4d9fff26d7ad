// What the detectors know of each agent, and what they conclude: the agent's
// run status (running, idle, completed, failed) and behaviour alerts (a tool
// call loop, an error burst, a retry storm, a runaway token burn, a stalled
// step). Pure: fed an agent's activity events in stream order and the time
// now, it answers findings; the judge (./judge.ts) publishes them.
//
// Windows run on the steps' own times (when each ended, as its telemetry
// says), so the same events always give the same findings: a node that
// takes over judging and replays the history window raises exactly what the
// previous one did (each finding has a key made of what caused it, and the
// engine drops a repeated key), and what it had missed. Idle and stall run on
// the server's clock (the events' timestamps against now).
//
// Every structure is bounded: per agent (windows by count, running steps,
// tools tracked) and across agents (the least recently active agent goes).
import { countedTokens } from '../protocol/activity.js';
import type { DeliveredEvent } from '../protocol/server-messages.js';
import type { DetectorThresholds } from './thresholds.js';

export type DetectorName = 'tool_call_loop' | 'error_burst' | 'retry_storm' | 'token_burn' | 'stalled_step';
/** The ESCAI pattern type each detector reports. */
export const PATTERN_TYPES: Readonly<Record<DetectorName, 'sequential' | 'temporal' | 'causal' | 'feedback_loop'>> = {
  tool_call_loop: 'feedback_loop',
  error_burst: 'temporal',
  retry_storm: 'causal',
  token_burn: 'temporal',
  stalled_step: 'sequential',
};

export type RunStatus = 'running' | 'idle' | 'completed' | 'failed';

export interface AlertFinding {
  type: 'alert';
  agentId: string;
  detector: DetectorName;
  /** What caused it, stable across replays: the engine's idempotency key. */
  key: string;
  severity: 'warning' | 'high';
  description: string;
  evidence: Record<string, unknown>;
}

export interface StatusFinding {
  type: 'status';
  agentId: string;
  status: RunStatus;
  key: string;
  reason: string;
  metadata: Record<string, unknown>;
}

export type Finding = AlertFinding | StatusFinding;

/** The fields of an activity event the detectors read. */
interface Step {
  span_id: string;
  trace_id: string;
  parent_span_id: string | null;
  kind: string;
  name: string;
  state: string;
  tool: string | undefined;
  model: string | undefined;
  digest: string | undefined;
  /** The step's own time (ms): when it ended, else when it started. */
  t: number;
}

function stepOf(event: DeliveredEvent): Step | undefined {
  const d = event.data;
  if (!d || typeof d['span_id'] !== 'string' || typeof d['state'] !== 'string') return undefined;
  const when = Date.parse(String(d['ended_at'] ?? d['started_at'] ?? event.timestamp));
  return {
    span_id: d['span_id'],
    trace_id: typeof d['trace_id'] === 'string' ? d['trace_id'] : '',
    parent_span_id: typeof d['parent_span_id'] === 'string' ? d['parent_span_id'] : null,
    kind: typeof d['kind'] === 'string' ? d['kind'] : 'other',
    name: typeof d['name'] === 'string' ? d['name'] : '',
    state: d['state'],
    tool: typeof d['tool'] === 'string' ? d['tool'] : undefined,
    model: typeof d['model'] === 'string' ? d['model'] : undefined,
    digest: typeof d['arguments_digest'] === 'string' ? d['arguments_digest'] : undefined,
    t: Number.isFinite(when) ? when : Date.parse(event.timestamp),
  };
}

/** A window of (time, span id) pairs, at most `max` long, oldest first. */
class Window {
  readonly items: Array<{ t: number; span: string; trace: string }> = [];
  constructor(readonly max: number) {}
  add(t: number, span: string, trace: string, windowMs: number): number {
    this.items.push({ t, span, trace });
    // Steps come in end order per node, nearly so across nodes: keep the window sorted by time.
    for (let i = this.items.length - 1; i > 0 && this.items[i - 1]!.t > this.items[i]!.t; i--)
      [this.items[i - 1], this.items[i]] = [this.items[i]!, this.items[i - 1]!];
    const newest = this.items.at(-1)!.t;
    while (this.items.length > 0 && (this.items[0]!.t < newest - windowMs || this.items.length > this.max)) this.items.shift();
    return this.items.length;
  }
  clear(): void {
    this.items.length = 0;
  }
}

interface Running {
  name: string;
  kind: string;
  trace: string;
  /** Server time it was reported running, and of its latest child. */
  since: number;
  progress: number;
  stalled: boolean;
}

/** Tools (or models) tracked per agent for loops and retries, at most. */
const MAX_TARGETS = 64;
/** Minutes of token history kept for the baseline. */
const BASELINE_SPAN = 30;

/** One agent: its status machine and its detectors. */
class AgentWatch {
  status: RunStatus | undefined;
  /** Server time of the latest event (idle runs on it). */
  lastAt = 0;
  lastKey = '';
  readonly #running = new Map<string, Running>();
  readonly #loops = new Map<string, Window>();
  readonly #errors: Window;
  readonly #retries = new Map<string, { streak: number; failed: boolean; t: number; spans: string[] }>();
  /** Token totals per minute (span time), the last BASELINE_SPAN minutes. */
  readonly #minutes = new Map<number, number>();
  #firstMinute: number | undefined;
  readonly #tokens: Array<{ t: number; n: number }> = [];
  readonly #quietUntil = new Map<string, number>();

  constructor(
    readonly agentId: string,
    readonly th: DetectorThresholds,
  ) {
    this.#errors = new Window(Math.max(th.errorBurst.count, 1));
  }

  observe(event: DeliveredEvent, out: Finding[]): void {
    const step = stepOf(event);
    if (!step) return;
    const at = Date.parse(event.timestamp);
    this.lastAt = Math.max(this.lastAt, at);
    this.lastKey = `${event.epoch}:${event.offset}`;
    if (this.status !== 'running')
      this.#setStatus(
        'running',
        `status:running:${this.lastKey}`,
        step.name ? `${step.kind} ${step.name}` : 'activity',
        { span_id: step.span_id, trace_id: step.trace_id },
        out,
      );
    // A child's arrival is its parent's progress.
    if (step.parent_span_id !== null) {
      const parent = this.#running.get(step.parent_span_id);
      if (parent) parent.progress = Math.max(parent.progress, at);
    }
    if (step.state === 'running') {
      if (!this.#running.has(step.span_id)) {
        if (this.#running.size >= this.th.maxRunning) this.#running.delete(this.#running.keys().next().value as string);
        this.#running.set(step.span_id, { name: step.name, kind: step.kind, trace: step.trace_id, since: at, progress: at, stalled: false });
      }
      return;
    }
    // Ended: final. (A running report arriving after it, from another node, is ignored above only if never ended: see the ingest.)
    this.#running.delete(step.span_id);
    this.#loop(step, out);
    this.#errorBurst(step, out);
    this.#retry(step, out);
    this.#tokenBurn(event, step, out);
    // The trace's root ended: the run is over.
    if (step.parent_span_id === null) {
      const failed = step.state === 'error';
      this.#setStatus(
        failed ? 'failed' : 'completed',
        `status:${failed ? 'failed' : 'completed'}:${this.lastKey}`,
        `${step.kind} ${step.name} ${failed ? 'failed' : 'ended'}`,
        { span_id: step.span_id, trace_id: step.trace_id },
        out,
      );
      for (const [id, r] of this.#running) if (r.trace === step.trace_id) this.#running.delete(id);
    }
  }

  /** Idle and stalled steps, judged at `now` (server time). */
  tick(now: number, out: Finding[]): void {
    if (this.status === 'running' && now - this.lastAt >= this.th.idleAfter * 1000) {
      this.#setStatus('idle', `status:idle:${this.lastKey}`, `no activity for ${this.th.idleAfter} s`, {}, out);
    }
    const stallMs = this.th.stalledStep.after * 1000;
    for (const [spanId, r] of this.#running) {
      if (r.stalled || now - r.progress < stallMs) continue;
      r.stalled = true;
      const quiet = Math.round((now - r.progress) / 1000);
      out.push(
        this.#alert('stalled_step', spanId, 'warning', `${r.name || `step ${spanId}`} has been running with no end and no new step for ${quiet} s`, {
          span_ids: [spanId],
          trace_ids: [r.trace],
          step: r.name || null,
          kind: r.kind,
          running_since: new Date(r.since).toISOString(),
          quiet_s: quiet,
          threshold_s: this.th.stalledStep.after,
        }),
      );
    }
  }

  #setStatus(status: RunStatus, key: string, reason: string, metadata: Record<string, unknown>, out: Finding[]): void {
    if (this.status === status) return;
    this.status = status;
    out.push({ type: 'status', agentId: this.agentId, status, key, reason, metadata: { ...metadata, reason, source: 'detector' } });
  }

  #quiet(subject: string, t: number): boolean {
    const until = this.#quietUntil.get(subject);
    return until !== undefined && t < until;
  }

  #hush(subject: string, t: number): void {
    if (this.#quietUntil.size >= MAX_TARGETS * 4) this.#quietUntil.delete(this.#quietUntil.keys().next().value as string);
    this.#quietUntil.set(subject, t + this.th.cooldown * 1000);
  }

  #alert(detector: DetectorName, key: string, severity: 'warning' | 'high', description: string, evidence: Record<string, unknown>): AlertFinding {
    return { type: 'alert', agentId: this.agentId, detector, key: `${detector}:${key}`, severity, description, evidence: { detector, ...evidence } };
  }

  #loop(step: Step, out: Finding[]): void {
    if (step.kind !== 'tool' || !(step.tool ?? step.name)) return;
    const tool = step.tool ?? step.name;
    const withArgs = step.digest !== undefined;
    const subject = `${tool}\u0000${step.digest ?? ''}`;
    const need = withArgs ? this.th.toolLoop.count : this.th.toolLoop.countWithoutArguments;
    let w = this.#loops.get(subject);
    if (!w) {
      if (this.#loops.size >= MAX_TARGETS) this.#loops.delete(this.#loops.keys().next().value as string);
      this.#loops.set(subject, (w = new Window(need)));
    } else {
      this.#loops.delete(subject);
      this.#loops.set(subject, w);
    }
    const n = w.add(step.t, step.span_id, step.trace_id, this.th.toolLoop.window * 1000);
    if (n < need || this.#quiet(`loop:${subject}`, step.t)) return;
    this.#hush(`loop:${subject}`, step.t);
    const spans = w.items.map((i) => i.span);
    out.push(
      this.#alert(
        'tool_call_loop',
        step.span_id,
        'warning',
        `${tool} called ${n} times ${withArgs ? 'with the same arguments ' : '(arguments not reported) '}within ${this.th.toolLoop.window} s`,
        {
          tool,
          arguments_digest: step.digest ?? null,
          count: n,
          window_s: this.th.toolLoop.window,
          threshold: need,
          span_ids: spans,
          trace_ids: [...new Set(w.items.map((i) => i.trace))],
          first_at: new Date(w.items[0]!.t).toISOString(),
          last_at: new Date(step.t).toISOString(),
        },
      ),
    );
    w.clear();
  }

  #errorBurst(step: Step, out: Finding[]): void {
    if (step.state !== 'error') return;
    const w = this.#errors;
    const n = w.add(step.t, step.span_id, step.trace_id, this.th.errorBurst.window * 1000);
    if (n < this.th.errorBurst.count || this.#quiet('errors', step.t)) return;
    this.#hush('errors', step.t);
    out.push(
      this.#alert('error_burst', step.span_id, 'high', `${n} failed steps within ${this.th.errorBurst.window} s`, {
        count: n,
        window_s: this.th.errorBurst.window,
        threshold: this.th.errorBurst.count,
        span_ids: w.items.map((i) => i.span),
        trace_ids: [...new Set(w.items.map((i) => i.trace))],
        first_at: new Date(w.items[0]!.t).toISOString(),
        last_at: new Date(step.t).toISOString(),
      }),
    );
    w.clear();
  }

  #retry(step: Step, out: Finding[]): void {
    const target = step.kind === 'tool' ? (step.tool ?? step.name) : step.kind === 'llm' ? step.model : undefined;
    if (!target) return;
    const subject = `${step.kind}:${target}`;
    let r = this.#retries.get(subject);
    if (!r) {
      if (this.#retries.size >= MAX_TARGETS) this.#retries.delete(this.#retries.keys().next().value as string);
      this.#retries.set(subject, (r = { streak: 0, failed: false, t: step.t, spans: [] }));
    }
    // A call right after a failed one to the same target is a retry; anything else starts over.
    const retried = r.failed && step.t - r.t <= this.th.retryStorm.window * 1000;
    r.streak = retried ? r.streak + 1 : 1;
    r.spans = retried ? [...r.spans, step.span_id].slice(-this.th.retryStorm.count) : [step.span_id];
    r.failed = step.state === 'error';
    r.t = step.t;
    if (r.streak < this.th.retryStorm.count || this.#quiet(`retry:${subject}`, step.t)) return;
    this.#hush(`retry:${subject}`, step.t);
    out.push(
      this.#alert(
        'retry_storm',
        step.span_id,
        'warning',
        `${r.streak} calls in a row to ${step.kind === 'llm' ? 'model' : 'tool'} ${target}, each after a failure`,
        {
          target,
          target_kind: step.kind === 'llm' ? 'model' : 'tool',
          attempts: r.streak,
          window_s: this.th.retryStorm.window,
          threshold: this.th.retryStorm.count,
          span_ids: r.spans,
          last_failed: r.failed,
        },
      ),
    );
    r.streak = 0;
    r.spans = [];
  }

  #tokenBurn(event: DeliveredEvent, step: Step, out: Finding[]): void {
    const tokens = countedTokens(event);
    if (!tokens || tokens.total === 0) return;
    const t = step.t;
    const minute = Math.floor(t / 60_000);
    this.#firstMinute = Math.min(this.#firstMinute ?? minute, minute);
    this.#minutes.set(minute, (this.#minutes.get(minute) ?? 0) + tokens.total);
    for (const m of this.#minutes.keys()) if (m < minute - BASELINE_SPAN) this.#minutes.delete(m);
    this.#tokens.push({ t, n: tokens.total });
    while (this.#tokens.length > 0 && (this.#tokens[0]!.t <= t - 60_000 || this.#tokens.length > 10_000)) this.#tokens.shift();
    const perMinute = this.#tokens.reduce((s, x) => s + x.n, 0);
    // The baseline: the mean of the complete minutes before this one since the agent was first seen (quiet minutes count as 0).
    const from = Math.max(this.#firstMinute, minute - BASELINE_SPAN);
    const minutes = minute - from;
    let before = 0;
    for (let m = from; m < minute; m++) before += this.#minutes.get(m) ?? 0;
    const baseline = minutes > 0 ? before / minutes : 0;
    const { perMinute: ceiling, factor, baselineMinutes, minimum } = this.th.tokenBurn;
    const overCeiling = perMinute > ceiling;
    const overBaseline = minutes >= baselineMinutes && perMinute >= minimum && perMinute > factor * baseline;
    if ((!overCeiling && !overBaseline) || this.#quiet('tokens', t)) return;
    this.#hush('tokens', t);
    const description = overCeiling
      ? `${perMinute} tokens in the last minute, over the limit of ${ceiling}`
      : `${perMinute} tokens in the last minute, ${(perMinute / Math.max(baseline, 1)).toFixed(1)}× the agent's baseline of ${Math.round(baseline)} per minute`;
    out.push(
      this.#alert('token_burn', step.span_id, overCeiling ? 'high' : 'warning', description, {
        tokens_last_minute: perMinute,
        limit_per_minute: ceiling,
        baseline_per_minute: Math.round(baseline),
        baseline_minutes: minutes,
        factor,
        span_ids: [step.span_id],
        model: step.model ?? null,
      }),
    );
  }
}

/** Every agent's watch, bounded across agents (the least recently active is forgotten first). */
export class Watches {
  readonly #agents = new Map<string, AgentWatch>();
  readonly #th: DetectorThresholds;

  constructor(thresholds: DetectorThresholds) {
    this.#th = thresholds;
  }

  get size(): number {
    return this.#agents.size;
  }

  /** Feeds one activity event (in its stream's order); returns what it concludes. */
  observe(event: DeliveredEvent, out: Finding[] = []): Finding[] {
    const agentId = event.agent_id;
    if (agentId === undefined || event.type !== 'agent_activity') return out;
    let watch = this.#agents.get(agentId);
    if (watch) this.#agents.delete(agentId);
    else {
      if (this.#agents.size >= this.#th.maxAgents) this.#agents.delete(this.#agents.keys().next().value as string);
      watch = new AgentWatch(agentId, this.#th);
    }
    this.#agents.set(agentId, watch); // most recently active last
    watch.observe(event, out);
    return out;
  }

  /** Idle agents and stalled steps at `now`. */
  tick(now: number, out: Finding[] = []): Finding[] {
    for (const watch of this.#agents.values()) watch.tick(now, out);
    return out;
  }

  /** The run status the detectors hold for an agent (tests, health). */
  statusOf(agentId: string): RunStatus | undefined {
    return this.#agents.get(agentId)?.status;
  }

  /** Forgets one agent (removed from the directory): no closing status is derived for it. */
  forget(agentId: string): boolean {
    return this.#agents.delete(agentId);
  }

  /** Forgets every agent (judging moved to another node). */
  clear(): void {
    this.#agents.clear();
  }
}
