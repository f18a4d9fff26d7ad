// From telemetry to ESCAI events: the one place that knows attribute names.
// A span, whichever way it came in (OTLP or an adapter), becomes one
// activity event (what the agent does), and may add to its agent's epistemic
// state (the goal of a run, the decision context of a model or tool call,
// knowledge from a tool result when content capture is on). Three
// conventions are read, each by its own names: the OpenTelemetry GenAI
// semantic conventions (`gen_ai.*`), OpenInference (`openinference.span.kind`,
// `llm.*`, `input.value`…) and the Vercel AI SDK (`ai.*` spans). docs/INGEST.md
// has the table. Pure: tables in, events out; never a confidence or an
// uncertainty figure the telemetry does not carry.
import type { Activity, ActivityKind, TokenUsage } from '../protocol/events.js';
import { IdSchema } from '../protocol/events.js';
import { StatusCode, type AttributeValue, type Attributes, type SpanRecord } from './spans.js';

/** Which convention a span was read with. */
export type Convention = 'gen_ai' | 'openinference' | 'ai_sdk' | 'otel';

export interface MappingOptions {
  /** Copy prompts, outputs and tool results into events (truncated). Off: only names, models, tools, counts, times. */
  captureContent: boolean;
}

/** Longest text copied into an event when content capture is on. */
export const MAX_CONTENT_CHARS = 2000;
/** Longest goal or fact text. */
export const MAX_GOAL_CHARS = 500;
const MAX_NAME = 256;

/** What a span adds to its agent's epistemic state. */
export interface EpistemicPart {
  /** The run's goal, from an agent run (kind `agent`) that ended. */
  goal?: { description: string; status: 'active' | 'completed' | 'failed' };
  /** The model or tool this step chose or used. */
  decision?: {
    step: string;
    kind: ActivityKind;
    model?: string;
    provider?: string;
    tool?: string;
    finish_reasons?: string[];
    span_id: string;
    trace_id: string;
    at: string;
  };
  /** A tool result (content capture only). */
  fact?: { content: string; source: string; timestamp: string };
}

export interface MappedSpan {
  activity: Activity;
  epistemic: EpistemicPart;
  /** The span ended (not an adapter's start report). */
  ended: boolean;
}

// ---- reading attributes --------------------------------------------------------------

function str(a: Attributes, key: string): string | undefined {
  const v = a.get(key);
  if (typeof v === 'string') return v === '' ? undefined : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function first(a: Attributes, keys: readonly string[]): string | undefined {
  for (const k of keys) {
    const v = str(a, k);
    if (v !== undefined) return v;
  }
  return undefined;
}

function int(a: Attributes, keys: readonly string[]): number | undefined {
  for (const k of keys) {
    const v = a.get(k);
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,15}$/.test(v) ? Number(v) : undefined;
    if (n !== undefined && Number.isSafeInteger(n) && n >= 0) return n;
  }
  return undefined;
}

/** A value as text: strings as they are, anything else as JSON. */
function textOf(v: AttributeValue | undefined): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function hasPrefix(a: Attributes, prefixes: readonly string[]): boolean {
  for (const key of a.keys()) for (const p of prefixes) if (key.startsWith(p)) return true;
  return false;
}

// ---- conventions ------------------------------------------------------------------------

const GENAI_KINDS: Readonly<Record<string, ActivityKind>> = {
  invoke_agent: 'agent',
  create_agent: 'agent',
  execute_tool: 'tool',
  chat: 'llm',
  text_completion: 'llm',
  generate_content: 'llm',
  embeddings: 'embedding',
  invoke_workflow: 'workflow',
  plan: 'plan',
  retrieval: 'retriever',
  // Custom values seen in the wild: the AI SDK 7's steps and rerank, Strands' loops and graphs, OpenLLMetry's responses.
  agent_step: 'chain',
  execute_event_loop_cycle: 'chain',
  invoke_swarm: 'workflow',
  invoke_graph: 'workflow',
  rerank: 'reranker',
  response: 'llm',
  search_memory: 'retriever',
};

const OPENINFERENCE_KINDS: Readonly<Record<string, ActivityKind>> = {
  AGENT: 'agent',
  LLM: 'llm',
  TOOL: 'tool',
  CHAIN: 'chain',
  RETRIEVER: 'retriever',
  EMBEDDING: 'embedding',
  RERANKER: 'reranker',
  GUARDRAIL: 'guardrail',
  EVALUATOR: 'evaluator',
  PROMPT: 'chain',
};

/** The AI SDK's span names (ai.operationId) and the kind of step each is. */
function aiSdkKind(operation: string): ActivityKind | undefined {
  if (operation === 'ai.toolCall') return 'tool';
  if (/^ai\.(generateText|streamText|generateObject|streamObject)\.do(Generate|Stream)$/.test(operation)) return 'llm';
  if (/^ai\.(generateText|streamText|generateObject|streamObject)$/.test(operation)) return 'agent';
  if (/^ai\.embed(Many)?(\.doEmbed)?$/.test(operation)) return 'embedding';
  if (operation.startsWith('ai.')) return 'chain';
  return undefined;
}

/** The convention a span speaks, and its operation name. */
export function conventionOf(span: SpanRecord): { convention: Convention; operation: string | undefined } {
  const a = span.attributes;
  const genai = str(a, 'gen_ai.operation.name');
  if (str(a, 'openinference.span.kind')) return { convention: 'openinference', operation: genai };
  const aiOperation = str(a, 'ai.operationId') ?? (span.name.startsWith('ai.') ? span.name.split(' ')[0] : undefined);
  if (aiOperation !== undefined && aiSdkKind(aiOperation) !== undefined) return { convention: 'ai_sdk', operation: aiOperation };
  if (genai !== undefined || hasPrefix(a, ['gen_ai.'])) return { convention: 'gen_ai', operation: genai };
  return { convention: 'otel', operation: undefined };
}

/** Whether the span carries AI semantics (any convention), as opposed to a plain HTTP or database span. */
export function isAiSpan(span: SpanRecord): boolean {
  return conventionOf(span).convention !== 'otel' || hasPrefix(span.attributes, ['llm.', 'gen_ai.']);
}

function kindOf(span: SpanRecord, convention: Convention, operation: string | undefined): ActivityKind {
  const a = span.attributes;
  if (convention === 'openinference') return OPENINFERENCE_KINDS[str(a, 'openinference.span.kind')!.toUpperCase()] ?? 'other';
  if (convention === 'ai_sdk') return aiSdkKind(operation!) ?? 'other';
  if (operation !== undefined) return GENAI_KINDS[operation] ?? 'other';
  return 'other';
}

// ---- agents ---------------------------------------------------------------------------------

const SAFE_ID = /^[A-Za-z0-9_.:@-]+$/;

/** FNV-1a (64-bit, as two 32-bit halves) of text, in hex: stable across processes and versions. */
export function fingerprint(text: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ 0x9e3779b9;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c ^ (h1 >>> 7), 0x01000193) >>> 0;
  }
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
}

/**
 * An agent id from a name the telemetry gives: kept as it is when it fits the
 * id alphabet (letters, digits, `_ . : @ -`, at most 128), else made to fit,
 * with a fingerprint of the original so that two names never fold into one.
 * The same name always gives the same id.
 */
export function agentIdOf(name: string): string {
  if (name.length <= 128 && SAFE_ID.test(name) && IdSchema.safeParse(name).success) return name;
  const base =
    name
      .replace(/[^A-Za-z0-9_.:@-]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(0, 110) || 'agent';
  return `${base}-${fingerprint(name)}`;
}

/** The agent a span names itself (its own attributes, else its resource's), as an id. */
export function namedAgent(span: SpanRecord): string | undefined {
  for (const attrs of [span.attributes, span.resource]) {
    const name = first(attrs, ['gen_ai.agent.id', 'gen_ai.agent.name', 'agent.name']);
    if (name !== undefined) return agentIdOf(name);
  }
  // The AI SDK's name for a call site (experimental_telemetry.functionId).
  const fn = str(span.attributes, 'ai.telemetry.functionId');
  return fn === undefined ? undefined : agentIdOf(fn);
}

/** The agent of a span nothing else attributes: its service, when the span speaks an AI convention; else none (ignored). */
export function fallbackAgent(span: SpanRecord): string | undefined {
  if (!isAiSpan(span)) return undefined;
  return agentIdOf(str(span.resource, 'service.name') ?? 'unknown_service');
}

// ---- one span --------------------------------------------------------------------------------

function tokensOf(a: Attributes): TokenUsage | undefined {
  const input = int(a, ['gen_ai.usage.input_tokens', 'gen_ai.usage.prompt_tokens', 'llm.token_count.prompt', 'ai.usage.inputTokens', 'ai.usage.promptTokens']);
  const output = int(a, [
    'gen_ai.usage.output_tokens',
    'gen_ai.usage.completion_tokens',
    'llm.token_count.completion',
    'ai.usage.outputTokens',
    'ai.usage.completionTokens',
  ]);
  const total = int(a, ['gen_ai.usage.total_tokens', 'llm.usage.total_tokens', 'llm.token_count.total', 'ai.usage.totalTokens']);
  const cached = int(a, [
    'gen_ai.usage.cache_read.input_tokens',
    'gen_ai.usage.cache_read_input_tokens',
    'llm.token_count.prompt_details.cache_read',
    'ai.usage.cachedInputTokens',
  ]);
  const reasoning = int(a, [
    'gen_ai.usage.reasoning.output_tokens',
    'gen_ai.usage.reasoning_tokens',
    'llm.token_count.completion_details.reasoning',
    'ai.usage.reasoningTokens',
  ]);
  if (input === undefined && output === undefined && total === undefined) return undefined;
  const t: TokenUsage = {};
  if (input !== undefined) t.input = input;
  if (output !== undefined) t.output = output;
  t.total = total ?? (input ?? 0) + (output ?? 0);
  if (cached !== undefined) t.cached_input = cached;
  if (reasoning !== undefined) t.reasoning = reasoning;
  return t;
}

function finishReasons(a: Attributes): string[] | undefined {
  const v = a.get('gen_ai.response.finish_reasons') ?? a.get('ai.response.finishReason') ?? a.get('llm.finish_reason');
  const list = Array.isArray(v) ? v : typeof v === 'string' && v !== '' ? [v] : [];
  const out = list
    .filter((x): x is string => typeof x === 'string')
    .slice(0, 16)
    .map((x) => cut(x, 64));
  return out.length > 0 ? out : undefined;
}

/** The span's error: its status, `error.type`, or an `exception` event. */
function errorOf(span: SpanRecord): Activity['error'] | undefined {
  const exception = span.events.find((e) => e.name === 'exception');
  const type = str(span.attributes, 'error.type') ?? (exception ? str(exception.attributes, 'exception.type') : undefined);
  const failed = span.status.code === StatusCode.ERROR || (type !== undefined && span.status.code !== StatusCode.OK);
  if (!failed) return undefined;
  const message = span.status.message || (exception ? str(exception.attributes, 'exception.message') : undefined);
  const error: NonNullable<Activity['error']> = {};
  if (type !== undefined) error.type = cut(type, 256);
  if (message) error.message = cut(message, 2000);
  return error;
}

function toolArguments(a: Attributes, convention: Convention, kind: ActivityKind): AttributeValue | undefined {
  if (kind !== 'tool') return undefined;
  return (
    a.get('gen_ai.tool.call.arguments') ??
    a.get('ai.toolCall.args') ??
    a.get('ai.toolCall.input') ??
    (convention === 'openinference' ? a.get('input.value') : undefined)
  );
}

function toolResult(a: Attributes, convention: Convention): AttributeValue | undefined {
  return (
    a.get('gen_ai.tool.call.result') ??
    a.get('ai.toolCall.result') ??
    a.get('ai.toolCall.output') ??
    (convention === 'openinference' ? a.get('output.value') : undefined)
  );
}

function inputOf(a: Attributes): AttributeValue | undefined {
  return a.get('gen_ai.input.messages') ?? a.get('input.value') ?? a.get('ai.prompt') ?? a.get('ai.prompt.messages') ?? a.get('gen_ai.prompt');
}

function outputOf(a: Attributes): AttributeValue | undefined {
  return a.get('gen_ai.output.messages') ?? a.get('output.value') ?? a.get('ai.response.text') ?? a.get('ai.response.object') ?? a.get('gen_ai.completion');
}

/**
 * The user's request in an input, best effort: the last user message of a
 * message list (GenAI `parts`, OpenAI-style `content`), a `prompt` or `input`
 * field, else the text itself.
 */
export function taskText(value: AttributeValue | undefined): string | undefined {
  if (value === undefined || value === null) return undefined;
  let doc: AttributeValue = value;
  if (typeof value === 'string') {
    const t = value.trim();
    if (!(t.startsWith('{') || t.startsWith('['))) return t || undefined;
    try {
      doc = JSON.parse(t) as AttributeValue;
    } catch {
      return t;
    }
  }
  const fromMessage = (m: AttributeValue): string | undefined => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return undefined;
    const content = m['content'] ?? m['parts'];
    if (typeof content === 'string') return content;
    if (Array.isArray(content)) {
      const texts = content
        .map((p) => (typeof p === 'string' ? p : typeof p === 'object' && p !== null && !Array.isArray(p) ? (p['content'] ?? p['text']) : undefined))
        .filter((x): x is string => typeof x === 'string');
      return texts.join(' ') || undefined;
    }
    return undefined;
  };
  const messages = Array.isArray(doc) ? doc : typeof doc === 'object' && doc !== null ? (doc['messages'] ?? null) : null;
  if (Array.isArray(messages)) {
    for (let i = messages.length - 1; i >= 0; i--) {
      const m = messages[i]!;
      if (typeof m === 'object' && m !== null && !Array.isArray(m) && m['role'] === 'user') return fromMessage(m);
    }
    const last = messages.at(-1);
    return last === undefined ? undefined : fromMessage(last);
  }
  if (typeof doc === 'object' && doc !== null && !Array.isArray(doc)) {
    for (const key of ['prompt', 'input', 'query', 'question', 'task']) {
      const v = doc[key];
      if (typeof v === 'string') return v;
    }
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

const iso = (ms: number) => new Date(Math.round(ms)).toISOString();

/** One span as its activity event's data and its epistemic part. */
export function mapSpan(span: SpanRecord, options: MappingOptions, source = 'otlp'): MappedSpan {
  const a = span.attributes;
  const { convention, operation } = conventionOf(span);
  const kind = kindOf(span, convention, operation);
  const ended = span.endMs !== null;
  const error = ended ? errorOf(span) : undefined;
  const activity: Activity = {
    span_id: span.spanId,
    trace_id: span.traceId,
    parent_span_id: span.parentSpanId,
    kind,
    name: cut(span.name || operation || kind, MAX_NAME),
    state: !ended ? 'running' : error ? 'error' : 'ok',
    started_at: iso(span.startMs),
    source,
    convention,
  };
  if (ended) {
    activity.ended_at = iso(span.endMs!);
    activity.duration_ms = Math.max(0, Math.round((span.endMs! - span.startMs) * 1000) / 1000);
  }
  if (operation !== undefined) activity.operation = cut(operation, MAX_NAME);
  const model = first(a, ['gen_ai.response.model', 'gen_ai.request.model', 'llm.model_name', 'ai.response.model', 'ai.model.id']);
  if (model !== undefined && (kind === 'llm' || kind === 'agent' || kind === 'embedding' || kind === 'chain')) activity.model = cut(model, MAX_NAME);
  const provider = first(a, ['gen_ai.provider.name', 'gen_ai.system', 'llm.provider', 'llm.system', 'ai.model.provider']);
  if (provider !== undefined && activity.model !== undefined) activity.provider = cut(provider, MAX_NAME);
  const tool =
    kind === 'tool' ? (first(a, ['gen_ai.tool.name', 'tool.name', 'ai.toolCall.name']) ?? (convention === 'openinference' ? span.name : undefined)) : undefined;
  if (tool !== undefined) activity.tool = cut(tool, MAX_NAME);
  const args = textOf(toolArguments(a, convention, kind));
  if (args !== undefined) activity.arguments_digest = fingerprint(args);
  const tokens = tokensOf(a);
  if (tokens) activity.tokens = tokens;
  const reasons = finishReasons(a);
  if (reasons) activity.finish_reasons = reasons;
  if (error) activity.error = error;
  const conversation = first(a, ['gen_ai.conversation.id', 'session.id']);
  if (conversation !== undefined) activity.conversation_id = cut(conversation, 256);
  const input = inputOf(a);
  const result = kind === 'tool' ? toolResult(a, convention) : outputOf(a);
  if (options.captureContent) {
    const i = textOf(input);
    const o = textOf(result);
    if (i !== undefined) activity.input = cut(i, MAX_CONTENT_CHARS);
    if (o !== undefined) activity.output = cut(o, MAX_CONTENT_CHARS);
  }

  const epistemic: EpistemicPart = {};
  const at = ended ? activity.ended_at! : activity.started_at;
  if (kind === 'agent') {
    const task = options.captureContent ? taskText(input) : undefined;
    const description = task ?? str(a, 'gen_ai.agent.description') ?? activity.name;
    epistemic.goal = { description: cut(description, MAX_GOAL_CHARS), status: !ended ? 'active' : error ? 'failed' : 'completed' };
  }
  if (kind === 'llm' || kind === 'tool') {
    const decision: NonNullable<EpistemicPart['decision']> = { step: activity.name, kind, span_id: span.spanId, trace_id: span.traceId, at };
    if (activity.model !== undefined) decision.model = activity.model;
    if (activity.provider !== undefined) decision.provider = activity.provider;
    if (activity.tool !== undefined) decision.tool = activity.tool;
    if (reasons) decision.finish_reasons = reasons;
    epistemic.decision = decision;
  }
  if (kind === 'tool' && options.captureContent && ended && !error) {
    const content = textOf(result);
    if (content !== undefined && content !== '')
      epistemic.fact = { content: cut(content, MAX_GOAL_CHARS), source: `tool:${activity.tool ?? activity.name}`, timestamp: at };
  }
  return { activity, epistemic, ended };
}

/** A parent announced running because a child arrived first: all that is known of it. */
export function runningParent(p: { spanId: string; traceId: string; startMs: number }, source = 'otlp'): Activity {
  return { span_id: p.spanId, trace_id: p.traceId, kind: 'other', name: '', state: 'running', inferred: true, started_at: iso(p.startMs), source };
}

/** Facts and goals kept in one epistemic update. */
const MAX_PARTS = 5;

/**
 * One agent's epistemic update from the parts of one batch's spans (in the
 * order they ended): its goals (the latest run's first), the latest decision
 * context, the latest facts. Undefined when the spans add nothing.
 */
export function foldEpistemic(parts: readonly EpistemicPart[]): Record<string, unknown> | undefined {
  const goals: Array<NonNullable<EpistemicPart['goal']>> = [];
  const facts: Array<NonNullable<EpistemicPart['fact']>> = [];
  let decision: EpistemicPart['decision'];
  for (const p of parts) {
    if (p.goal) goals.unshift(p.goal);
    if (p.fact) facts.unshift(p.fact);
    if (p.decision && (decision === undefined || p.decision.at >= decision.at)) decision = p.decision;
  }
  if (goals.length === 0 && facts.length === 0 && decision === undefined) return undefined;
  const data: Record<string, unknown> = { source: 'otlp' };
  if (goals.length > 0) data['goal_states'] = goals.slice(0, MAX_PARTS);
  if (decision) data['decision_context'] = decision;
  if (facts.length > 0) data['knowledge_state'] = { facts: facts.slice(0, MAX_PARTS), source: 'tool results' };
  return data;
}
