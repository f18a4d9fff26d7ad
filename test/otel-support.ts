// OpenTelemetry for the tests: the real JS SDK (sdk-trace-base 2.x) making
// spans, its own serializers (otlp-transformer) making OTLP bytes of them,
// and its OTLP exporters (proto and JSON) sending them to a real server.
// Also a builder for hand-made OTLP JSON bodies (hostile input, exact times).
import { randomBytes } from 'node:crypto';
import { ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { AttributeValue, SpanRecord } from '../src/ingest/spans.js';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';

export { SpanStatusCode };

export type Encoding = 'protobuf' | 'json';

/** A tracer whose spans stay in memory (for serializing by hand). */
export function memoryTracer(resource: Attributes = { 'service.name': 'test-service' }): {
  tracer: Tracer;
  spans(): ReadableSpan[];
  provider: BasicTracerProvider;
} {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes(resource), spanProcessors: [new SimpleSpanProcessor(exporter)] });
  return { tracer: provider.getTracer('escai-test', '1.0.0'), spans: () => exporter.getFinishedSpans(), provider };
}

/** OTLP request bytes of spans, as the SDK's exporters would send them. */
export function serialize(spans: ReadableSpan[], encoding: Encoding): Uint8Array {
  const out = encoding === 'protobuf' ? ProtobufTraceSerializer.serializeRequest(spans) : JsonTraceSerializer.serializeRequest(spans);
  if (!out) throw new Error('the serializer produced nothing');
  return out;
}

/** A tracer exporting every span as it ends (SimpleSpanProcessor) to `url`/v1/traces with the SDK's OTLP exporter. */
export function exportingTracer(
  url: string,
  token: string,
  encoding: Encoding,
  resource: Attributes,
  options: { gzip?: boolean } = {},
): { tracer: Tracer; flush(): Promise<void>; shutdown(): Promise<void>; exporter: SpanExporter } {
  const config = { url: `${url}/v1/traces`, headers: { Authorization: `Bearer ${token}` }, ...(options.gzip ? { compression: 'gzip' as never } : {}) };
  const exporter: SpanExporter = encoding === 'protobuf' ? new ProtoExporter(config) : new JsonExporter(config);
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes(resource), spanProcessors: [new SimpleSpanProcessor(exporter)] });
  return { tracer: provider.getTracer('escai-test', '1.0.0'), flush: () => provider.forceFlush(), shutdown: () => provider.shutdown(), exporter };
}

/** Starts a child of `parent` (no context manager needed). */
export function child(tracer: Tracer, parent: Span, name: string, attributes: Attributes = {}): Span {
  return tracer.startSpan(name, { attributes }, trace.setSpan(ROOT_CONTEXT, parent));
}

// ---- spans as the mapping reads them -----------------------------------------------

/** A decoded span (what the mapping reads) with test defaults: ended, 1.5 s long, service `svc`. */
export function spanRecord(attributes: Record<string, AttributeValue>, over: Partial<SpanRecord> = {}): SpanRecord {
  return {
    traceId: 'a'.repeat(32),
    spanId: 'b'.repeat(16),
    parentSpanId: 'c'.repeat(16),
    name: 'step',
    kind: 1,
    startMs: SPAN_T0,
    endMs: SPAN_T0 + 1500,
    attributes: new Map(Object.entries(attributes)),
    events: [],
    status: { code: 0, message: '' },
    resource: new Map([['service.name', 'svc']]),
    scope: { name: 's', version: '' },
    ...over,
  };
}

/** The start time spanRecord() gives. */
export const SPAN_T0 = Date.parse('2026-12-01T10:00:00.000Z');

// ---- hand-made OTLP JSON ---------------------------------------------------------

export interface JsonSpanInput {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startMs: number;
  endMs: number;
  attributes?: Record<string, string | number | boolean>;
  error?: string;
}

/** A fresh random id of `bytes` bytes, as hex (never all zero). */
export function hexId(bytes: 8 | 16): string {
  const id = randomBytes(bytes);
  id[0] = id[0]! | 1;
  return id.toString('hex');
}

function anyValue(v: string | number | boolean): Record<string, unknown> {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
}

const ns = (ms: number) => `${Math.round(ms)}000000`;

/** An OTLP JSON ExportTraceServiceRequest of one resource and scope. */
export function otlpJson(resource: Record<string, string>, spans: JsonSpanInput[]): Record<string, unknown> {
  return {
    resourceSpans: [
      {
        resource: { attributes: Object.entries(resource).map(([key, v]) => ({ key, value: anyValue(v) })) },
        scopeSpans: [
          {
            scope: { name: 'escai-test' },
            spans: spans.map((s) => ({
              traceId: s.traceId,
              spanId: s.spanId,
              ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
              name: s.name,
              kind: 1,
              startTimeUnixNano: ns(s.startMs),
              endTimeUnixNano: ns(s.endMs),
              attributes: Object.entries(s.attributes ?? {}).map(([key, v]) => ({ key, value: anyValue(v) })),
              status: s.error ? { code: 2, message: s.error } : {},
            })),
          },
        ],
      },
    ],
  };
}

/** POSTs an OTLP body to `base`/v1/traces. */
export async function postTraces(
  base: string,
  body: Uint8Array | string | Record<string, unknown>,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const payload = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
  const res = await fetch(`${base}/v1/traces`, { method: 'POST', headers, body: payload });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}
