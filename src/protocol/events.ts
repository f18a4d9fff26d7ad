// Schemas of the events producers publish and clients receive: the ESCAI data
// models (EpistemicState, BehavioralPattern, PredictionResult) and the six event
// envelopes, and the agent activity this server adds (one event per span or
// step an agent runs). One source for validation and for the TypeScript types.
//
// The ESCAI models are loose objects: fields named on the protocol page are
// type- and range-checked when present, unknown fields are kept as sent.
import { z } from 'zod';
import { streamOfEvent } from './constants.js';

const unit = z.number().min(0).max(1);
const text = z.string().max(10_000);
const when = z.union([z.string().max(64), z.number()]);

/**
 * Identifiers that name streams: agents and users. Not dots only: `.` and `..`
 * are path segments that browsers, proxies and HTTP clients resolve away, so
 * `/api/v1/agents/..` (and the console's link to such an agent) could never
 * reach it.
 */
export const IdSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_.:@-]+$/, 'may contain only letters, digits and _ . : @ -')
  .refine((id) => !/^\.+$/.test(id), 'may not be dots only (. and .. are URL path segments)');

export const BeliefStateSchema = z.looseObject({
  content: text.optional(),
  belief_type: z.enum(['factual', 'procedural', 'conditional', 'predictive']).optional(),
  confidence: unit.optional(),
  evidence: z.array(z.unknown()).optional(),
  source: text.nullable().optional(),
  timestamp: when.nullable().optional(),
});

export const KnowledgeStateSchema = z.looseObject({
  facts: z.array(z.unknown()).optional(),
  confidence: unit.optional(),
  source: text.nullable().optional(),
});

export const GoalStateSchema = z.looseObject({
  description: text.optional(),
  status: z.enum(['active', 'completed', 'failed', 'suspended']).optional(),
  priority: z.number().int().min(1).max(10).optional(),
  primary_goals: z.array(z.unknown()).optional(),
  secondary_goals: z.array(z.unknown()).optional(),
  completion_status: z.record(z.string(), z.unknown()).optional(),
});

export const EpistemicStateSchema = z.looseObject({
  agent_id: IdSchema.optional(),
  timestamp: when.nullable().optional(),
  belief_states: z.array(BeliefStateSchema).optional(),
  knowledge_state: KnowledgeStateSchema.nullable().optional(),
  goal_states: z.array(GoalStateSchema).optional(),
  confidence_level: unit.optional(),
  uncertainty_score: unit.optional(),
});

export const ExecutionSequenceSchema = z.looseObject({
  sequence_id: text.optional(),
  agent_id: IdSchema.optional(),
  steps: z.array(z.unknown()).optional(),
  start_time: when.nullable().optional(),
  end_time: when.nullable().optional(),
  success: z.boolean().nullable().optional(),
  error_message: text.nullable().optional(),
  actions: z.array(z.unknown()).optional(),
});

export const BehavioralPatternSchema = z.looseObject({
  pattern_id: text.optional(),
  pattern_name: text.optional(),
  pattern_type: z.enum(['sequential', 'temporal', 'causal', 'feedback_loop']).optional(),
  description: text.optional(),
  execution_sequences: z.array(ExecutionSequenceSchema).optional(),
  frequency: z.number().min(0).optional(),
  success_rate: unit.optional(),
  average_duration: z.number().min(0).optional(),
  common_triggers: z.array(z.unknown()).optional(),
  failure_modes: z.array(z.unknown()).optional(),
  statistical_significance: z.number().optional(),
});

export const PredictionResultSchema = z.looseObject({
  agent_id: IdSchema.optional(),
  prediction_type: text.optional(),
  predicted_value: z.unknown().optional(),
  confidence: unit.optional(),
  uncertainty: unit.optional(),
  risk_factors: z.array(z.unknown()).optional(),
  recommended_actions: z.array(z.unknown()).optional(),
  model_used: text.optional(),
  timestamp: when.nullable().optional(),
  risk_level: z.enum(['low', 'medium', 'high', 'critical']).optional(),
  interventions: z.array(z.unknown()).optional(),
  confidence_interval: z.looseObject({ lower_bound: z.number(), upper_bound: z.number(), confidence_level: unit.optional() }).nullable().optional(),
  feature_importance: z.record(z.string(), z.number()).optional(),
});

/** What kind of step an activity event reports (docs/INGEST.md maps each convention's kinds onto these). */
export const ACTIVITY_KINDS = [
  'agent',
  'llm',
  'tool',
  'chain',
  'retriever',
  'embedding',
  'reranker',
  'guardrail',
  'evaluator',
  'handoff',
  'workflow',
  'plan',
  'other',
] as const;
export type ActivityKind = (typeof ACTIVITY_KINDS)[number];

/** `running`: started (or known to be running because a child arrived) and not ended; `ok` / `error`: ended. */
export const ACTIVITY_STATES = ['running', 'ok', 'error'] as const;
export type ActivityState = (typeof ACTIVITY_STATES)[number];

const spanRef = z.string().min(1).max(128);
const tokenCount = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** Tokens a step used, as its telemetry reports them (absent fields: not reported). */
export const TokenUsageSchema = z.looseObject({
  input: tokenCount.optional(),
  output: tokenCount.optional(),
  total: tokenCount.optional(),
  cached_input: tokenCount.optional(),
  reasoning: tokenCount.optional(),
});

/**
 * One step of an agent: a model call, a tool call, the agent's own run, a
 * chain. Keyed by `span_id`: a step reported `running` is later reported
 * again, ended; an ended report is final (a later `running` one for the same
 * span, which can arrive out of order across nodes, changes nothing).
 */
export const ActivitySchema = z.looseObject({
  span_id: spanRef,
  trace_id: spanRef,
  parent_span_id: spanRef.nullable().optional(),
  kind: z.enum(ACTIVITY_KINDS),
  name: z.string().max(1000),
  state: z.enum(ACTIVITY_STATES),
  /** Running because a child arrived before it ended (its name and kind are not known yet). */
  inferred: z.boolean().optional(),
  started_at: z.string().max(64),
  ended_at: z.string().max(64).optional(),
  duration_ms: z.number().min(0).optional(),
  /** gen_ai.operation.name, or the convention's own operation (`ai.generateText`). */
  operation: z.string().max(256).optional(),
  model: z.string().max(256).optional(),
  provider: z.string().max(256).optional(),
  tool: z.string().max(256).optional(),
  /** A fingerprint of the tool call's arguments (equal arguments, equal digest; not the arguments). */
  arguments_digest: z.string().max(64).optional(),
  tokens: TokenUsageSchema.optional(),
  finish_reasons: z.array(z.string().max(64)).max(16).optional(),
  error: z.looseObject({ type: z.string().max(256).optional(), message: z.string().max(2000).optional() }).optional(),
  conversation_id: z.string().max(256).optional(),
  /** Where the step was reported from: `otlp` (traces), or an adapter's name. */
  source: z.string().max(64).optional(),
  /** The telemetry convention the step was read with: `gen_ai`, `openinference`, `ai_sdk`, `otel`. */
  convention: z.string().max(64).optional(),
  /** The step's input and output text, only when content capture is on (ESCAI_OTLP_CAPTURE_CONTENT), truncated. */
  input: z.string().max(10_000).optional(),
  output: z.string().max(10_000).optional(),
});

export const SeveritySchema = z.enum(['debug', 'info', 'low', 'medium', 'warning', 'high', 'error', 'critical']);
const metadata = z.record(z.string(), z.unknown()).default({});
/** Optional producer key: a repeat within the idempotency window is not delivered twice. */
const idempotencyKey = z.string().min(1).max(256).optional();

/** What a producer publishes (HTTP, socket `publish`, or in-process), discriminated on `type`. */
export const PublishEventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('epistemic_update'),
    agent_id: IdSchema,
    data: EpistemicStateSchema,
    idempotency_key: idempotencyKey,
  }),
  z.object({
    type: z.literal('pattern_alert'),
    agent_id: IdSchema,
    alert_type: z.string().min(1).max(128).default('pattern_detected'),
    severity: SeveritySchema.default('info'),
    data: BehavioralPatternSchema,
    idempotency_key: idempotencyKey,
  }),
  z.object({
    type: z.literal('prediction_update'),
    agent_id: IdSchema,
    data: PredictionResultSchema,
    idempotency_key: idempotencyKey,
  }),
  z.object({
    type: z.literal('system_alert'),
    alert_type: z.string().min(1).max(128),
    message: z.string().max(10_000),
    severity: SeveritySchema.default('info'),
    metadata,
    idempotency_key: idempotencyKey,
  }),
  z.object({
    type: z.literal('agent_status_change'),
    agent_id: IdSchema,
    status: z.string().min(1).max(128),
    metadata,
    idempotency_key: idempotencyKey,
  }),
  z.object({
    type: z.literal('agent_activity'),
    agent_id: IdSchema,
    data: ActivitySchema,
    idempotency_key: idempotencyKey,
  }),
  z.object({
    type: z.literal('user_notification'),
    user_id: IdSchema,
    notification_type: z.string().min(1).max(128),
    message: z.string().max(10_000),
    data: z.record(z.string(), z.unknown()).default({}),
    idempotency_key: idempotencyKey,
  }),
]);

export type PublishEvent = z.infer<typeof PublishEventSchema>;
// The type names live in constants.ts (no zod), so the browser SDK can import them.
export { EVENT_TYPES, SUBSCRIPTION_TYPES, type EventType, type SubscriptionType } from './constants.js';
export type PublishEventInput = z.input<typeof PublishEventSchema>;
export type EpistemicState = z.infer<typeof EpistemicStateSchema>;
export type BehavioralPattern = z.infer<typeof BehavioralPatternSchema>;
export type PredictionResult = z.infer<typeof PredictionResultSchema>;
export type Activity = z.infer<typeof ActivitySchema>;
export type TokenUsage = z.infer<typeof TokenUsageSchema>;

export type { DeliveredEvent } from './server-messages.js';

/** The stream an event belongs to: one per agent (and one for its activity), one for system alerts, one per user. */
export function streamOf(event: PublishEvent): string {
  if (event.type === 'user_notification') return streamOfEvent(event.type, undefined, event.user_id);
  return streamOfEvent(event.type, event.type === 'system_alert' ? undefined : event.agent_id);
}
