// The span as the mapping reads it, whichever way it came in: decoded from
// OTLP (protobuf or JSON) or reported by an adapter on a framework's hooks.
// Plain data, no encoding left in it: ids are lowercase hex text, times are
// milliseconds, attribute values are JSON-like values.

/** An attribute's value: OTLP's AnyValue as plain data (bytes as base64 text). */
export type AttributeValue = string | number | boolean | null | AttributeValue[] | { [key: string]: AttributeValue };

export type Attributes = ReadonlyMap<string, AttributeValue>;

/** OTLP span kinds (trace.proto `SpanKind`). */
export const SpanKind = { UNSPECIFIED: 0, INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;

/** OTLP status codes (trace.proto `Status.StatusCode`). */
export const StatusCode = { UNSET: 0, OK: 1, ERROR: 2 } as const;

export interface SpanEventRecord {
  name: string;
  timeMs: number;
  attributes: Attributes;
}

export interface SpanRecord {
  traceId: string;
  spanId: string;
  /** Null for a root span. */
  parentSpanId: string | null;
  name: string;
  /** One of SpanKind. */
  kind: number;
  startMs: number;
  /** Null while the span runs (an adapter's start report); OTLP spans always ended. */
  endMs: number | null;
  attributes: Attributes;
  events: readonly SpanEventRecord[];
  /** One of StatusCode, and its message. */
  status: { code: number; message: string };
  /** The resource's attributes (service.name, …), shared by the spans of one resource. */
  resource: Attributes;
  scope: { name: string; version: string };
}

/** A span the decoder could not read, and why (it counts as rejected). */
export interface RejectedSpan {
  reason: string;
}

/** What one export request held. */
export interface SpanBatch {
  spans: SpanRecord[];
  rejected: RejectedSpan[];
}

const EMPTY: Attributes = new Map();
export const NO_ATTRIBUTES = EMPTY;
