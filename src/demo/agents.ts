// Simulated agents for the demo: each works through goals, holds beliefs whose
// confidence moves with the evidence it finds, and now and then falls into a
// behavioural pattern (a retry storm, a loop) that a pattern alert reports,
// while a predictor estimates its chance of success. What it does shows as
// activity, as a real agent's spans would: each task a run (an agent step)
// with model and tool calls under it; in trouble it calls one tool with the
// same arguments again and again, and the server's own detectors see it.
// Its run status (running, completed, failed) is the detectors' to say, from
// that activity, exactly as for a real agent; the demo says only `waiting`.
// Deterministic for a seed: the same seed gives the same agents and the same
// sequence of events (timestamps aside). Produces publish inputs only; who
// publishes them (in-process, or over HTTP to a remote node) is the caller's.
import type { PublishEventInput } from '../protocol/events.js';

/** A small, fast, seedable PRNG (mulberry32): uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

type BeliefType = 'factual' | 'procedural' | 'conditional' | 'predictive';
type GoalStatus = 'active' | 'completed' | 'failed' | 'suspended';
type AgentStatus = 'idle' | 'running' | 'waiting' | 'completed' | 'failed';

interface Belief {
  content: string;
  belief_type: BeliefType;
  confidence: number;
  evidence: string[];
  source: string;
}

interface Goal {
  description: string;
  status: GoalStatus;
  priority: number;
  progress: number;
}

interface Persona {
  id: string;
  role: string;
  beliefs: Array<[string, BeliefType]>;
  goals: string[];
  tools: string[];
}

const PERSONAS: Persona[] = [
  {
    id: 'research-agent',
    role: 'literature research',
    beliefs: [
      ['The survey covers the main benchmarks', 'factual'],
      ['Recent papers agree on the scaling trend', 'predictive'],
      ['The citation graph is complete enough', 'conditional'],
    ],
    goals: ['Collect 20 relevant papers', 'Summarise the findings', 'Draft the related-work section'],
    tools: ['search', 'fetch_pdf', 'summarise'],
  },
  {
    id: 'support-bot',
    role: 'customer support',
    beliefs: [
      ['The customer is on the Pro plan', 'factual'],
      ['Resetting the token fixes the login error', 'procedural'],
      ['The outage is over', 'conditional'],
    ],
    goals: ['Identify the customer issue', 'Apply the fix', 'Confirm resolution with the customer'],
    tools: ['crm_lookup', 'reset_token', 'send_reply'],
  },
  {
    id: 'code-reviewer',
    role: 'code review',
    beliefs: [
      ['The change is covered by tests', 'factual'],
      ['The refactor preserves behaviour', 'predictive'],
      ['Lint rules are followed', 'procedural'],
    ],
    goals: ['Read the diff', 'Run the test suite', 'Post the review'],
    tools: ['git_diff', 'run_tests', 'comment'],
  },
  {
    id: 'planner',
    role: 'trip planning',
    beliefs: [
      ['Flights on Friday are cheaper', 'factual'],
      ['The hotel will confirm within an hour', 'predictive'],
      ['A rental car is needed only if the train is late', 'conditional'],
    ],
    goals: ['Find flights', 'Book the hotel', 'Build the itinerary'],
    tools: ['flight_search', 'book_hotel', 'calendar'],
  },
  {
    id: 'data-pipeline',
    role: 'ETL orchestration',
    beliefs: [
      ['The upstream table is fresh', 'factual'],
      ['Retrying the job clears transient errors', 'procedural'],
      ['Row counts will match after the backfill', 'predictive'],
    ],
    goals: ['Extract the daily batch', 'Validate the schema', 'Load into the warehouse'],
    tools: ['sql', 'validate', 'load'],
  },
  {
    id: 'trading-analyst',
    role: 'market analysis',
    beliefs: [
      ['Volatility stays below the threshold', 'predictive'],
      ['The earnings report is priced in', 'conditional'],
      ['The data feed is complete', 'factual'],
    ],
    goals: ['Gather market data', 'Model scenarios', 'Write the recommendation'],
    tools: ['market_data', 'simulate', 'report'],
  },
];

const PATTERNS = [
  {
    name: 'Retry storm',
    type: 'feedback_loop',
    severity: 'high',
    trigger: 'tool error',
    description: 'The same tool call is retried in quick succession without changing its input.',
  },
  {
    name: 'Reasoning loop',
    type: 'sequential',
    severity: 'warning',
    trigger: 'low confidence',
    description: 'The agent revisits the same plan step repeatedly without new evidence.',
  },
  {
    name: 'Slow tool response',
    type: 'temporal',
    severity: 'medium',
    trigger: 'latency',
    description: 'Tool calls take several times longer than their usual duration.',
  },
  {
    name: 'Confidence collapse',
    type: 'causal',
    severity: 'critical',
    trigger: 'contradicting evidence',
    description: 'Evidence against a key belief keeps arriving; dependent goals are at risk.',
  },
] as const;

/** The confidence an agent needs in its beliefs before it calls a goal met (a run never completes unsure). */
export const CONFIDENT = 0.65;
/** Progress at which the work is done and the agent checks its answer until it is confident. */
const VERIFY_FROM = 0.9;
const clamp = (x: number, lo = 0, hi = 1) => Math.min(hi, Math.max(lo, x));
const round = (x: number) => Math.round(x * 1000) / 1000;

/** One simulated agent. `step()` advances it by one tick and returns what it published. */
export class DemoAgent {
  readonly id: string;
  readonly #persona: Persona;
  readonly #random: () => number;
  #status: AgentStatus = 'idle';
  #beliefs: Belief[];
  #goals: Goal[];
  #goalIndex = 0;
  #trouble = 0;
  #ticks = 0;
  #restartAt = 0;
  /** The current task's run: its trace and root step. */
  #run: { traceId: string; spanId: string; startMs: number } | undefined;
  /** When the last step ended (the next one starts after it). */
  #lastStepEnd = 0;

  constructor(persona: Persona, id: string, random: () => number) {
    this.#persona = persona;
    this.id = id;
    this.#random = random;
    this.#beliefs = persona.beliefs.map(([content, belief_type]) => ({
      content,
      belief_type,
      confidence: round(0.5 + random() * 0.3),
      evidence: [],
      source: persona.tools[0]!,
    }));
    this.#goals = this.#freshGoals();
  }

  #freshGoals(): Goal[] {
    return this.#persona.goals.map((description, i) => ({ description, status: i === 0 ? 'active' : 'suspended', priority: 8 - i * 2, progress: 0 }));
  }

  /** A hex id of `bytes` bytes from the seeded generator (the same seed, the same ids). */
  #hex(bytes: number): string {
    let out = '';
    while (out.length < bytes * 2)
      out += Math.floor(this.#random() * 0x100000000)
        .toString(16)
        .padStart(8, '0');
    return out.slice(0, bytes * 2).replace(/^0/, '1');
  }

  /** An activity event of this agent. */
  #activity(data: Record<string, unknown>): PublishEventInput {
    return { type: 'agent_activity', agent_id: this.id, data: { source: 'demo', ...data } } as PublishEventInput;
  }

  #startRun(out: PublishEventInput[]): void {
    const now = Date.now();
    this.#run = { traceId: this.#hex(16), spanId: this.#hex(8), startMs: now };
    out.push(
      this.#activity({
        span_id: this.#run.spanId,
        trace_id: this.#run.traceId,
        parent_span_id: null,
        kind: 'agent',
        name: `invoke_agent ${this.id}`,
        state: 'running',
        started_at: new Date(now).toISOString(),
      }),
    );
  }

  #endRun(out: PublishEventInput[], failed: boolean, why: string): void {
    const run = this.#run;
    if (!run) return;
    this.#run = undefined;
    const now = Date.now();
    out.push(
      this.#activity({
        span_id: run.spanId,
        trace_id: run.traceId,
        parent_span_id: null,
        kind: 'agent',
        name: `invoke_agent ${this.id}`,
        state: failed ? 'error' : 'ok',
        started_at: new Date(run.startMs).toISOString(),
        ended_at: new Date(now).toISOString(),
        duration_ms: now - run.startMs,
        ...(failed ? { error: { type: 'GoalFailed', message: why } } : {}),
      }),
    );
  }

  /**
   * Steps under the current run, back to back, the last ending now. Like a
   * real agent loop they follow one another, after the previous tick's steps
   * and after the run's start; when their nominal lengths do not fit in that
   * time (a fast tick), they shrink to fit.
   */
  #steps(out: PublishEventInput[], steps: ReadonlyArray<{ ms: number; data: Record<string, unknown> }>): void {
    const run = this.#run;
    if (!run || steps.length === 0) return;
    const now = Date.now();
    const room = Math.max(0, now - Math.max(run.startMs, this.#lastStepEnd));
    const wanted = steps.reduce((sum, s) => sum + s.ms, 0);
    const scale = wanted > room ? room / wanted : 1;
    let start = now - Math.round(wanted * scale);
    for (const { ms, data } of steps) {
      const end = Math.min(now, start + Math.round(ms * scale));
      out.push(
        this.#activity({
          span_id: this.#hex(8),
          trace_id: run.traceId,
          parent_span_id: run.spanId,
          state: 'ok',
          started_at: new Date(start).toISOString(),
          ended_at: new Date(end).toISOString(),
          duration_ms: end - start,
          ...data,
        }),
      );
      start = end;
    }
    this.#lastStepEnd = now;
  }

  /** This tick's work: a model call, and most ticks a tool call (in trouble, the same one with the same arguments, often failing). */
  #work(out: PublishEventInput[]): void {
    const r = this.#random;
    const input = 300 + Math.floor(r() * 1200);
    const output = 40 + Math.floor(r() * 260);
    const steps: Array<{ ms: number; data: Record<string, unknown> }> = [
      {
        ms: 150 + Math.floor(r() * 600),
        data: {
          kind: 'llm',
          name: 'chat demo-model',
          operation: 'chat',
          model: 'demo-model',
          provider: 'demo',
          tokens: { input, output, total: input + output },
          finish_reasons: ['tool_calls'],
        },
      },
    ];
    if (r() >= 0.3 || this.#trouble > 0) {
      const stuck = this.#trouble > 0;
      const tool = stuck ? this.#persona.tools[0]! : this.#pick(this.#persona.tools);
      const failed = r() < (stuck ? 0.4 : 0.03);
      steps.push({
        ms: 50 + Math.floor(r() * 400),
        data: {
          kind: 'tool',
          name: `execute_tool ${tool}`,
          operation: 'execute_tool',
          tool,
          state: failed ? 'error' : 'ok',
          arguments_digest: stuck ? `${tool}-same-args` : this.#hex(8),
          ...(failed ? { error: { type: 'ToolError', message: `${tool} timed out` } } : {}),
        },
      });
    }
    this.#steps(out, steps);
  }

  #pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.#random() * items.length)]!;
  }

  /** Mean confidence of the beliefs, pulled down while the agent is in trouble. */
  get confidence(): number {
    const mean = this.#beliefs.reduce((s, b) => s + b.confidence, 0) / this.#beliefs.length;
    return round(clamp(mean - this.#trouble * 0.15));
  }

  /** One tick (about a second of the agent's life). */
  step(): PublishEventInput[] {
    this.#ticks++;
    const out: PublishEventInput[] = [];
    const r = this.#random;
    if (this.#status === 'idle' || ((this.#status === 'completed' || this.#status === 'failed') && this.#ticks >= this.#restartAt)) {
      if (this.#status !== 'idle') this.#goals = this.#freshGoals();
      this.#goalIndex = 0;
      this.#trouble = 0;
      this.#status = 'running'; // the detectors say so, from the run that starts now
      this.#startRun(out);
    }
    if (this.#status === 'completed' || this.#status === 'failed') return out;

    // Evidence: each belief drifts, with now and then a jump for or against it.
    const verifying = this.#goals[this.#goalIndex]!.progress >= VERIFY_FROM && this.confidence < CONFIDENT;
    for (const belief of this.#beliefs) {
      // Checking its answer before it calls a goal done, the agent looks for (and mostly finds) support.
      let delta = (r() - 0.45) * 0.06 - this.#trouble * 0.02 + (verifying ? 0.02 : 0);
      if (r() < 0.08) {
        const supports = r() > 0.35 + this.#trouble * 0.2;
        delta += supports ? 0.15 : -0.2;
        belief.evidence = [...belief.evidence, `${supports ? 'supports' : 'contradicts'}: ${this.#pick(this.#persona.tools)} result #${this.#ticks}`].slice(-3);
        belief.source = this.#pick(this.#persona.tools);
      }
      belief.confidence = round(clamp(belief.confidence + delta, 0.02, 0.99));
    }

    // Work on the active goal.
    const goal = this.#goals[this.#goalIndex]!;
    if (this.#status === 'waiting') {
      if (r() < 0.3) out.push(this.#statusChange('running', 'tool answered'));
    } else if (r() < 0.05) {
      out.push(this.#statusChange('waiting', `waiting for ${this.#pick(this.#persona.tools)}`));
    } else {
      // Work done is not a goal met: progress stops short of the end until the agent is confident in its answer.
      const cap = this.confidence >= CONFIDENT ? 1 : VERIFY_FROM;
      goal.progress = round(Math.min(cap, Math.max(goal.progress, clamp(goal.progress + (0.04 + r() * 0.08) * (1 - this.#trouble * 0.6)))));
      this.#work(out);
    }

    // Trouble comes and goes; while it lasts, patterns are detected.
    if (this.#trouble === 0 && r() < 0.02) this.#trouble = 1;
    else if (this.#trouble > 0 && r() < 0.12) this.#trouble = 0;
    if (this.#trouble > 0 && r() < 0.25) out.push(this.#patternAlert());

    if (goal.progress >= 1 && this.confidence >= CONFIDENT) {
      goal.status = 'completed';
      this.#goalIndex++;
      if (this.#goalIndex >= this.#goals.length) {
        out.push(this.#epistemic());
        this.#status = 'completed';
        this.#endRun(out, false, 'all goals met');
        this.#restartAt = this.#ticks + 5 + Math.floor(r() * 10);
        return out;
      }
      this.#goals[this.#goalIndex]!.status = 'active';
    } else if (this.confidence < 0.2 && r() < 0.2) {
      goal.status = 'failed';
      out.push(this.#epistemic());
      this.#status = 'failed';
      this.#endRun(out, true, `gave up on "${goal.description}"`);
      this.#restartAt = this.#ticks + 5 + Math.floor(r() * 10);
      return out;
    }

    out.push(this.#epistemic());
    if (this.#ticks % 5 === 0 || r() < 0.05) out.push(this.#prediction());
    return out;
  }

  #statusChange(status: AgentStatus, reason: string): PublishEventInput {
    this.#status = status;
    return { type: 'agent_status_change', agent_id: this.id, status, metadata: { reason, role: this.#persona.role } };
  }

  #epistemic(): PublishEventInput {
    const confidence = this.confidence;
    return {
      type: 'epistemic_update',
      agent_id: this.id,
      data: {
        agent_id: this.id,
        timestamp: new Date().toISOString(),
        belief_states: this.#beliefs.map((b) => ({ ...b, evidence: [...b.evidence], timestamp: new Date().toISOString() })),
        knowledge_state: {
          facts: this.#beliefs.filter((b) => b.confidence > 0.8).map((b) => b.content),
          confidence: round(clamp(confidence + 0.05)),
          source: this.#persona.role,
        },
        goal_states: this.#goals.map((g) => ({
          description: g.description,
          status: g.status,
          priority: g.priority,
          primary_goals: [g.description],
          secondary_goals: [],
          completion_status: { progress: g.progress },
        })),
        confidence_level: confidence,
        uncertainty_score: round(clamp(1 - confidence + (this.#random() - 0.5) * 0.1)),
      },
    };
  }

  #patternAlert(): PublishEventInput {
    const pattern = this.#pick(PATTERNS);
    const tool = this.#pick(this.#persona.tools);
    return {
      type: 'pattern_alert',
      agent_id: this.id,
      alert_type: 'pattern_detected',
      severity: pattern.severity,
      data: {
        pattern_id: `${this.id}-${pattern.type}-${this.#ticks}`,
        pattern_name: pattern.name,
        pattern_type: pattern.type,
        description: pattern.description,
        frequency: 2 + Math.floor(this.#random() * 8),
        success_rate: round(0.2 + this.#random() * 0.4),
        average_duration: round(0.5 + this.#random() * 4),
        common_triggers: [pattern.trigger, tool],
        failure_modes: [`${tool} keeps failing`],
        statistical_significance: round(0.9 + this.#random() * 0.09),
      },
    };
  }

  #prediction(): PublishEventInput {
    const confidence = this.confidence;
    const success = round(clamp(confidence * 0.8 + (1 - this.#trouble) * 0.15 + (this.#random() - 0.5) * 0.1));
    const risk_level = success > 0.75 ? 'low' : success > 0.5 ? 'medium' : success > 0.3 ? 'high' : 'critical';
    return {
      type: 'prediction_update',
      agent_id: this.id,
      data: {
        agent_id: this.id,
        prediction_type: 'task_success',
        predicted_value: success,
        confidence: round(clamp(0.6 + this.#random() * 0.3)),
        uncertainty: round(clamp(1 - confidence)),
        risk_level,
        risk_factors: this.#trouble > 0 ? ['recent pattern alert', 'falling belief confidence'] : confidence < 0.5 ? ['weak evidence'] : [],
        recommended_actions: risk_level === 'low' ? [] : ['review the current plan step', 'check tool availability'],
        model_used: 'demo-logistic-v1',
        timestamp: new Date().toISOString(),
        confidence_interval: { lower_bound: round(clamp(success - 0.1)), upper_bound: round(clamp(success + 0.1)), confidence_level: 0.9 },
        feature_importance: { belief_confidence: 0.5, goal_progress: 0.3, pattern_alerts: 0.2 },
      },
    };
  }
}

export interface DemoOptions {
  /** Seed of every random choice (same seed, same story). */
  seed: number;
  /** How many agents (up to 6 distinct roles; more get numbered). */
  agents?: number;
}

/** The demo's agents for a seed. */
export function createDemoAgents({ seed, agents = 6 }: DemoOptions): DemoAgent[] {
  const random = seededRandom(seed);
  return Array.from({ length: agents }, (_, i) => {
    const persona = PERSONAS[i % PERSONAS.length]!;
    const id = i < PERSONAS.length ? persona.id : `${persona.id}-${Math.floor(i / PERSONAS.length) + 1}`;
    return new DemoAgent(persona, id, random);
  });
}

export type PublishFn = (events: PublishEventInput[]) => Promise<unknown>;

export interface DemoRunner {
  stop(): void;
  /** Ticks run so far. */
  readonly ticks: number;
}

/**
 * Runs the agents: every `tickMs` (default 1000), each agent steps and its
 * events are published in one batch. A failed publish is reported to
 * `onError` and the demo carries on with the next tick.
 */
export function runDemo(publish: PublishFn, options: DemoOptions & { tickMs?: number; onError?: (err: unknown) => void }): DemoRunner {
  const agents = createDemoAgents(options);
  let ticks = 0;
  let busy = false;
  const tick = async () => {
    if (busy) return; // a slow publish skips a tick rather than piling up
    busy = true;
    try {
      const events = agents.flatMap((agent) => agent.step());
      if (events.length > 0) await publish(events);
      ticks++;
    } catch (err) {
      options.onError?.(err);
    } finally {
      busy = false;
    }
  };
  void tick();
  const timer = setInterval(() => void tick(), options.tickMs ?? 1000);
  timer.unref();
  return {
    stop: () => clearInterval(timer),
    get ticks() {
      return ticks;
    },
  };
}
