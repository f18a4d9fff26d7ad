// Which agent a span belongs to, and which of its parents are still running.
// Spans arrive when they end, children before their parents, in batches, so
// both questions need a memory of recent spans: a bounded one (least recently
// used forgotten first), kept per node. Pure: no I/O, no attribute names (the
// mapping says which agent a span names itself, if any).
//
// A span's agent, first found wins:
//   1. the agent it names itself (attributes, or its resource's);
//   2. the nearest ancestor's agent, in this batch or remembered;
//   3. its trace's agent (the latest agent named in the trace), in this batch or remembered;
//   4. the fallback (the mapping's: the resource's service.name for spans that
//      carry AI semantics), or none: the span is ignored (a plain HTTP or database
//      span outside any known agent's trace).
// A span once announced running under an agent stays that agent's, so its end
// reaches the stream that showed it running.
import type { SpanRecord } from './spans.js';

/** Ancestors followed at most (a cycle in hostile input cannot loop). */
const MAX_ANCESTRY = 64;

interface Remembered {
  agentId: string;
  /** `ended`: reported ended; `running`: announced running (a child arrived first). */
  state: 'ended' | 'running';
}

/** A Map used as an LRU: reads refresh, the oldest entries go past `max`. */
class Lru<K, V> {
  readonly #map = new Map<K, V>();
  constructor(readonly max: number) {}
  get(key: K): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }
  peek(key: K): V | undefined {
    return this.#map.get(key);
  }
  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.max) this.#map.delete(this.#map.keys().next().value as K);
  }
  get size(): number {
    return this.#map.size;
  }
}

export interface SpanMemoryOptions {
  /** Spans remembered (their agent, ended or running). */
  maxSpans: number;
  /** Traces remembered (their agent). */
  maxTraces: number;
}

/** A parent announced running because a child arrived before it ended. */
export interface InferredParent {
  spanId: string;
  traceId: string;
  agentId: string;
  /** The earliest start among the children that revealed it (it started no later). */
  startMs: number;
}

/** What the batch's attribution found. */
export interface Attribution {
  /** Per span of the batch (same order): its agent, or undefined (ignored). */
  agents: Array<string | undefined>;
  /** Parents to announce running, in the order their first child appeared. */
  inferred: InferredParent[];
  /** Per span: other agent streams that showed it running, which must see it end too. */
  alsoEndsOn: Array<string | undefined>;
  /** Per span: attributed only by its service or the fallback (a guess its trace may correct later). */
  guessed: boolean[];
  /** Per span: the agent it names itself, if any. */
  named: Array<string | undefined>;
}

export class SpanMemory {
  readonly #spans: Lru<string, Remembered>;
  readonly #traces: Lru<string, string>;

  constructor(options: SpanMemoryOptions) {
    this.#spans = new Lru(options.maxSpans);
    this.#traces = new Lru(options.maxTraces);
  }

  get size(): { spans: number; traces: number } {
    return { spans: this.#spans.size, traces: this.#traces.size };
  }

  /**
   * Attributes a batch's spans to agents and finds the parents to announce
   * running, then remembers the batch (ended spans, traces' agents, announced
   * parents). `named` is the agent a span names itself; `fallback` the
   * agent of a span nothing else attributes (undefined: ignore it).
   *
   * (No guess by service beyond the fallback: a service may run several
   * agents, and a step filed under the wrong agent would raise that agent's
   * alerts; the service's own name says plainly that it is a guess.)
   */
  attribute(spans: readonly SpanRecord[], named: (span: SpanRecord) => string | undefined, fallback: (span: SpanRecord) => string | undefined): Attribution {
    const index = new Map<string, number>();
    for (const [i, s] of spans.entries()) index.set(s.spanId, i);
    const own = spans.map(named);
    // The latest agent each trace names in this batch.
    const batchTraces = new Map<string, string>();
    spans.forEach((s, i) => {
      const a = own[i];
      if (a !== undefined) batchTraces.set(s.traceId, a);
    });

    const guessed = spans.map(() => false);
    const agents = spans.map((span, i) => {
      const announced = this.#spans.peek(span.spanId);
      if (announced?.state === 'running') return announced.agentId; // sticky: it was shown running there
      const found = own[i] ?? this.#ancestorAgent(span, spans, index, own) ?? batchTraces.get(span.traceId) ?? this.#traces.get(span.traceId);
      if (found !== undefined) return found;
      guessed[i] = true;
      return fallback(span);
    });

    const alsoEndsOn = spans.map((span, i) => {
      const announced = this.#spans.peek(span.spanId);
      const mine = own[i];
      return announced?.state === 'running' && mine !== undefined && mine !== announced.agentId ? mine : undefined;
    });

    const inferred: InferredParent[] = [];
    const seen = new Map<string, InferredParent>();
    spans.forEach((span, i) => {
      const parent = span.parentSpanId;
      const agentId = agents[i];
      if (parent === null || agentId === undefined || index.has(parent)) return;
      if (this.#spans.peek(parent) !== undefined) return; // ended already, or announced before
      const known = seen.get(parent);
      if (known) known.startMs = Math.min(known.startMs, span.startMs);
      else {
        const p: InferredParent = { spanId: parent, traceId: span.traceId, agentId, startMs: span.startMs };
        seen.set(parent, p);
        inferred.push(p);
      }
    });

    // Remember: what ended, who each trace belongs to, which parents now show as running.
    spans.forEach((span, i) => {
      const agentId = agents[i];
      if (agentId === undefined) return;
      // Its descendants go to the agent it names, even when it was shown running under a guess.
      this.#spans.set(span.spanId, { agentId: own[i] ?? agentId, state: span.endMs === null ? 'running' : 'ended' });
      const a = own[i];
      if (a !== undefined) this.#traces.set(span.traceId, a);
    });
    for (const p of inferred) this.#spans.set(p.spanId, { agentId: p.agentId, state: 'running' });
    return { agents, inferred, alsoEndsOn, guessed, named: own };
  }

  #ancestorAgent(
    span: SpanRecord,
    spans: readonly SpanRecord[],
    index: ReadonlyMap<string, number>,
    own: ReadonlyArray<string | undefined>,
  ): string | undefined {
    let parent = span.parentSpanId;
    for (let hops = 0; parent !== null && hops < MAX_ANCESTRY; hops++) {
      const i = index.get(parent);
      if (i === undefined) return this.#spans.get(parent)?.agentId;
      const a = own[i];
      if (a !== undefined) return a;
      parent = spans[i]!.parentSpanId;
    }
    return undefined;
  }
}
