// Spans in, events out: attributes a batch's spans to agents (./attribution.ts),
// maps each (./mapping.ts) to an activity event and its epistemic part,
// announces parents found running, folds each agent's epistemic parts into
// one update per batch, and publishes everything through the node's one
// publishing path. Every event carries an idempotency key made of its span
// (a request the exporter sends again appends nothing twice), so a batch may
// be appended in chunks and a retry after a partial failure is safe.
//
// Spans end children first, so a run's first steps can arrive before the
// span that names its agent: they go to a guess (the service's name). The
// activity events of a guessed trace are kept (bounded) and, once the trace
// names its agent, published again on that agent's stream (the same keys:
// never twice there), so the run shows whole under its agent.
import type { PublishEvent } from '../protocol/events.js';
import { prepareTrusted, type PreparedEvent, type Publisher } from '../server/delivery/publisher.js';
import { SpanMemory, type SpanMemoryOptions } from './attribution.js';
import { fallbackAgent, foldEpistemic, mapSpan, namedAgent, runningParent, type EpistemicPart, type MappingOptions } from './mapping.js';
import type { IngestOutcome } from './otlp/receiver.js';
import type { SpanBatch } from './spans.js';

export interface IngestorDeps {
  publisher: Pick<Publisher, 'publish'>;
  mapping: MappingOptions;
  /** Largest event (JSON bytes), as for every producer. */
  maxEventBytes: number;
  /** Events per engine call (a larger batch is appended in chunks of this many). */
  chunk: number;
  memory?: SpanMemoryOptions;
  /** Told what became of each request's spans (metrics). */
  onSpans?(counts: { accepted: number; ignored: number; rejected: number }): void;
}

/** Spans and traces remembered by default (≈ 200 bytes each). */
const DEFAULT_MEMORY: SpanMemoryOptions = { maxSpans: 200_000, maxTraces: 50_000 };
/** Guessed traces kept for a correction, and activity events kept per trace. */
const MAX_GUESSED_TRACES = 1000;
const MAX_GUESSED_EVENTS = 256;

interface Guess {
  agentId: string;
  events: Array<Extract<PublishEvent, { type: 'agent_activity' }>>;
}

export class Ingestor {
  readonly #deps: IngestorDeps;
  readonly #memory: SpanMemory;
  /** Traces attributed by a guess so far, with their activity events (oldest trace first). */
  readonly #guessed = new Map<string, Guess>();

  constructor(deps: IngestorDeps) {
    this.#deps = deps;
    this.#memory = new SpanMemory(deps.memory ?? DEFAULT_MEMORY);
  }

  /** What the span memory holds (health, tests). */
  get remembered(): { spans: number; traces: number } {
    return this.#memory.size;
  }

  /** The events of one batch, in the order they are appended (pure but for the span memory). */
  eventsOf(batch: SpanBatch): { events: PublishEvent[]; spanOf: number[]; ignored: number } {
    const { spans } = batch;
    const { agents, inferred, alsoEndsOn, guessed, named } = this.#memory.attribute(spans, namedAgent, fallbackAgent);
    const events: PublishEvent[] = [];
    /** Per event: the batch index of the span it reports (-1: not a span of the batch). */
    const spanOf: number[] = [];
    // A guessed trace that now names its agent: its earlier steps, again, on that agent's stream.
    spans.forEach((span, i) => {
      const guess = this.#guessed.get(span.traceId);
      const agentId = named[i];
      if (!guess || agentId === undefined) return;
      this.#guessed.delete(span.traceId);
      if (agentId === guess.agentId) return;
      for (const e of guess.events) {
        events.push({ ...e, agent_id: agentId });
        spanOf.push(-1);
      }
    });
    // Parents found running come first: a subscriber sees a step running before the children that revealed it end.
    const guessedTraces = new Set(spans.filter((_, i) => guessed[i]).map((s) => s.traceId));
    for (const p of inferred) {
      const event = { type: 'agent_activity' as const, agent_id: p.agentId, data: runningParent(p), idempotency_key: `${p.spanId}:r` };
      events.push(event);
      spanOf.push(-1);
      if (guessedTraces.has(p.traceId)) this.#keepGuess(p.traceId, event);
    }
    const parts = new Map<string, EpistemicPart[]>();
    const lastSpan = new Map<string, string>();
    let ignored = 0;
    spans.forEach((span, i) => {
      const agentId = agents[i];
      if (agentId === undefined) {
        ignored++;
        return;
      }
      const mapped = mapSpan(span, this.#deps.mapping);
      const key = `${span.spanId}:${mapped.ended ? 'e' : 'r'}`;
      for (const agent of alsoEndsOn[i] === undefined ? [agentId] : [agentId, alsoEndsOn[i]!]) {
        const event = { type: 'agent_activity' as const, agent_id: agent, data: mapped.activity, idempotency_key: key };
        events.push(event);
        spanOf.push(i);
        if (agent === agentId && (guessed[i] || this.#guessed.has(span.traceId))) this.#keepGuess(span.traceId, event);
      }
      let list = parts.get(agentId);
      if (!list) parts.set(agentId, (list = []));
      list.push(mapped.epistemic);
      lastSpan.set(agentId, span.spanId);
    });
    for (const [agentId, list] of parts) {
      const data = foldEpistemic(list);
      if (data === undefined) continue;
      events.push({ type: 'epistemic_update', agent_id: agentId, data: { agent_id: agentId, ...data }, idempotency_key: `${lastSpan.get(agentId)}:epistemic` });
      spanOf.push(-1);
    }
    return { events, spanOf, ignored };
  }

  #keepGuess(traceId: string, event: Guess['events'][number]): void {
    let guess = this.#guessed.get(traceId);
    if (!guess) {
      if (this.#guessed.size >= MAX_GUESSED_TRACES) this.#guessed.delete(this.#guessed.keys().next().value as string);
      this.#guessed.set(traceId, (guess = { agentId: event.agent_id, events: [] }));
    }
    if (guess.events.length < MAX_GUESSED_EVENTS) guess.events.push(event);
  }

  /** Maps and publishes one request's spans; rejects (EngineUnavailableError) when the engine cannot take them. */
  async ingest(batch: SpanBatch): Promise<IngestOutcome> {
    const { events, spanOf, ignored } = this.eventsOf(batch);
    const reasons = batch.rejected.map((r) => r.reason);
    const prepared: PreparedEvent[] = [];
    const tooLarge = new Set<number>();
    events.forEach((event, i) => {
      // Captured content is what makes an event large: without it the step itself still shows.
      const ready = prepareTrusted(event, this.#deps.maxEventBytes) ?? prepareTrusted(withoutContent(event), this.#deps.maxEventBytes);
      if (ready) prepared.push(ready);
      else if (spanOf[i]! >= 0) tooLarge.add(spanOf[i]!);
    });
    for (let n = 0; n < tooLarge.size; n++) reasons.push(`an event over the size limit of ${this.#deps.maxEventBytes} bytes (ESCAI_MAX_EVENT_BYTES)`);
    for (let i = 0; i < prepared.length; i += this.#deps.chunk) await this.#deps.publisher.publish(prepared.slice(i, i + this.#deps.chunk));
    const rejected = batch.rejected.length + tooLarge.size;
    const accepted = batch.spans.length - tooLarge.size;
    this.#deps.onSpans?.({ accepted: accepted - ignored, ignored, rejected });
    return { accepted, rejected, reasons };
  }
}

function withoutContent(event: PublishEvent): PublishEvent {
  if (event.type !== 'agent_activity') return event;
  const { input: _input, output: _output, ...data } = event.data;
  return { ...event, data };
}
