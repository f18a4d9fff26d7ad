// OTLP trace requests, bytes to plain spans: one reader per encoding
// (binary protobuf through the schema in ./schema.ts, and the OTLP JSON
// mapping), one result shape (../spans.ts). Pure: no I/O, no knowledge of
// attribute names. An undecodable body throws OtlpDecodeError (HTTP 400); a
// span that decodes but cannot be used (bad ids) is returned as rejected.
import { NO_ATTRIBUTES, type AttributeValue, type Attributes, type RejectedSpan, type SpanBatch, type SpanEventRecord, type SpanRecord } from '../spans.js';
import { ExportTraceServiceRequest } from './schema.js';

/** The body could not be read as an export request: the answer is 400, and nothing of it is used. */
export class OtlpDecodeError extends Error {
  override name = 'OtlpDecodeError';
}

/** Nesting of array and kvlist values kept; deeper values are replaced by a marker (a span is never refused for it). */
export const MAX_VALUE_DEPTH = 8;
const TOO_DEEP = `[nested deeper than ${MAX_VALUE_DEPTH} levels]`;

const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

// ---- protobuf ------------------------------------------------------------------

/** A 64-bit integer as protobufjs decodes it (with the `long` package it depends on). */
interface Long {
  low: number;
  high: number;
  unsigned: boolean;
}

interface PbAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: Long | number;
  doubleValue?: number;
  arrayValue?: { values?: PbAnyValue[] };
  kvlistValue?: { values?: PbKeyValue[] };
  bytesValue?: Uint8Array;
  value?: string;
}
interface PbKeyValue {
  key?: string;
  value?: PbAnyValue;
}
interface PbSpan {
  traceId?: Uint8Array;
  spanId?: Uint8Array;
  parentSpanId?: Uint8Array;
  name?: string;
  kind?: number;
  startTimeUnixNano?: Long | number;
  endTimeUnixNano?: Long | number;
  attributes?: PbKeyValue[];
  events?: Array<{ timeUnixNano?: Long | number; name?: string; attributes?: PbKeyValue[] }>;
  status?: { code?: number; message?: string };
}
interface PbRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: PbKeyValue[] };
    scopeSpans?: Array<{ scope?: { name?: string; version?: string }; spans?: PbSpan[] }>;
  }>;
}

/** A 64-bit integer as protobufjs gives it (Long, or a number) to a JS number (exact below 2^53). */
function longToNumber(v: Long | number | undefined): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') return v;
  // Two's complement: the high word signed (or not), the low word always unsigned.
  return (v.unsigned ? v.high >>> 0 : v.high) * 4294967296 + (v.low >>> 0);
}

function pbValue(v: PbAnyValue | undefined, depth: number): AttributeValue {
  if (v === undefined || v === null) return null;
  switch (v.value) {
    case 'stringValue':
      return v.stringValue ?? '';
    case 'boolValue':
      return v.boolValue ?? false;
    case 'intValue': {
      const n = longToNumber(v.intValue);
      return Number.isSafeInteger(n) ? n : String(n);
    }
    case 'doubleValue':
      return v.doubleValue ?? 0;
    case 'bytesValue':
      return Buffer.from(v.bytesValue ?? []).toString('base64');
    case 'arrayValue':
      if (depth >= MAX_VALUE_DEPTH) return TOO_DEEP;
      return (v.arrayValue?.values ?? []).map((x) => pbValue(x, depth + 1));
    case 'kvlistValue': {
      if (depth >= MAX_VALUE_DEPTH) return TOO_DEEP;
      const out: { [key: string]: AttributeValue } = {};
      for (const kv of v.kvlistValue?.values ?? []) if (kv.key !== undefined && kv.key !== '__proto__') out[kv.key] = pbValue(kv.value, depth + 1);
      return out;
    }
    default:
      return null;
  }
}

function pbAttributes(list: PbKeyValue[] | undefined): Attributes {
  if (!list || list.length === 0) return NO_ATTRIBUTES;
  const map = new Map<string, AttributeValue>();
  for (const kv of list) if (kv.key) map.set(kv.key, pbValue(kv.value, 1));
  return map;
}

function hex(bytes: Uint8Array | undefined): string {
  return bytes && bytes.length > 0 ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex') : '';
}

/** Decodes a binary protobuf ExportTraceServiceRequest. */
export function decodeProtobuf(body: Uint8Array): SpanBatch {
  let request: PbRequest;
  try {
    request = ExportTraceServiceRequest.decode(body) as unknown as PbRequest;
  } catch (err) {
    // protobufjs recurses per nested message: a body nested past the stack's depth is refused as undecodable too.
    const why = /call stack|max depth/i.test((err as Error).message) ? 'nested too deeply' : (err as Error).message;
    throw new OtlpDecodeError(`body is not a protobuf ExportTraceServiceRequest: ${why}`);
  }
  const batch: SpanBatch = { spans: [], rejected: [] };
  for (const rs of request.resourceSpans ?? []) {
    const resource = pbAttributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      const scope = { name: ss.scope?.name ?? '', version: ss.scope?.version ?? '' };
      for (const span of ss.spans ?? []) {
        const events: SpanEventRecord[] = (span.events ?? []).map((e) => ({
          name: e.name ?? '',
          timeMs: longToNumber(e.timeUnixNano) / 1e6 || 0,
          attributes: pbAttributes(e.attributes),
        }));
        admit(batch, {
          traceId: hex(span.traceId),
          spanId: hex(span.spanId),
          parentSpanId: hex(span.parentSpanId) || null,
          name: span.name ?? '',
          kind: span.kind ?? 0,
          startMs: longToNumber(span.startTimeUnixNano) / 1e6,
          endMs: longToNumber(span.endTimeUnixNano) / 1e6,
          attributes: pbAttributes(span.attributes),
          events,
          status: { code: span.status?.code ?? 0, message: span.status?.message ?? '' },
          resource,
          scope,
        });
      }
    }
  }
  return batch;
}

// ---- JSON ------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A repeated field: absent or null is empty; anything but an array is not an export request. */
function list(v: Json | undefined, where: string): Json[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new OtlpDecodeError(`${where}: expected an array`);
  return v;
}

function object(v: Json | undefined, where: string): JsonObject | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new OtlpDecodeError(`${where}: expected an object`);
  return v;
}

function text(v: Json | undefined): string {
  return typeof v === 'string' ? v : '';
}

/** A 64-bit integer field: a decimal string or a number (the proto3 JSON mapping allows both). */
function int64(v: Json | undefined): number {
  if (typeof v === 'number') return Number.isFinite(v) ? v : 0;
  if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) return Number(v);
  return 0;
}

/** A double: a number, or the mapping's "NaN" / "Infinity" / "-Infinity" texts (kept as text: JSON has no such numbers). */
function double(v: Json | undefined): AttributeValue {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number.isFinite(Number(v)) && v.trim() !== '' ? Number(v) : v;
  return 0;
}

function jsonValue(v: Json | undefined, depth: number): AttributeValue {
  if (!isObject(v)) return null;
  if ('stringValue' in v) return text(v['stringValue']);
  if ('boolValue' in v) return v['boolValue'] === true;
  if ('intValue' in v) {
    const n = int64(v['intValue']);
    return Number.isSafeInteger(n) ? n : typeof v['intValue'] === 'string' ? v['intValue'] : String(n);
  }
  if ('doubleValue' in v) return double(v['doubleValue']);
  if ('bytesValue' in v) return text(v['bytesValue']);
  if ('arrayValue' in v) {
    if (depth >= MAX_VALUE_DEPTH) return TOO_DEEP;
    const arr = isObject(v['arrayValue']) ? v['arrayValue']['values'] : undefined;
    return Array.isArray(arr) ? arr.map((x) => jsonValue(x, depth + 1)) : [];
  }
  if ('kvlistValue' in v) {
    if (depth >= MAX_VALUE_DEPTH) return TOO_DEEP;
    const kvs = isObject(v['kvlistValue']) ? v['kvlistValue']['values'] : undefined;
    const out: { [key: string]: AttributeValue } = {};
    if (Array.isArray(kvs))
      for (const kv of kvs) if (isObject(kv) && typeof kv['key'] === 'string' && kv['key'] !== '__proto__') out[kv['key']] = jsonValue(kv['value'], depth + 1);
    return out;
  }
  return null;
}

function jsonAttributes(v: Json | undefined, where: string): Attributes {
  const items = list(v, where);
  if (items.length === 0) return NO_ATTRIBUTES;
  const map = new Map<string, AttributeValue>();
  for (const kv of items) if (isObject(kv) && typeof kv['key'] === 'string' && kv['key'] !== '') map.set(kv['key'], jsonValue(kv['value'], 1));
  return map;
}

/** Trace and span ids in OTLP JSON are hex (any case), not base64. */
function jsonId(v: Json | undefined): string {
  return typeof v === 'string' ? v.toLowerCase() : '';
}

/** Decodes an OTLP JSON ExportTraceServiceRequest (already parsed, or as text). */
export function decodeJson(body: string | Buffer | unknown): SpanBatch {
  let doc: unknown = body;
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    try {
      doc = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
    } catch (err) {
      throw new OtlpDecodeError(`body is not JSON: ${(err as Error).message}`);
    }
  }
  if (!isObject(doc)) throw new OtlpDecodeError('body: expected a JSON object (an ExportTraceServiceRequest)');
  const batch: SpanBatch = { spans: [], rejected: [] };
  const resourceSpans = list(doc['resourceSpans'], 'resourceSpans');
  resourceSpans.forEach((rs, i) => {
    const where = `resourceSpans[${i}]`;
    const rsObj = object(rs, where) ?? {};
    const resource = jsonAttributes(object(rsObj['resource'], `${where}.resource`)?.['attributes'], `${where}.resource.attributes`);
    list(rsObj['scopeSpans'], `${where}.scopeSpans`).forEach((ss, j) => {
      const swhere = `${where}.scopeSpans[${j}]`;
      const ssObj = object(ss, swhere) ?? {};
      const scopeObj = object(ssObj['scope'], `${swhere}.scope`);
      const scope = { name: text(scopeObj?.['name']), version: text(scopeObj?.['version']) };
      list(ssObj['spans'], `${swhere}.spans`).forEach((span, k) => {
        const pwhere = `${swhere}.spans[${k}]`;
        const s = object(span, pwhere) ?? {};
        const status = object(s['status'], `${pwhere}.status`);
        const events: SpanEventRecord[] = list(s['events'], `${pwhere}.events`).map((e, n) => {
          const eo = object(e, `${pwhere}.events[${n}]`) ?? {};
          return {
            name: text(eo['name']),
            timeMs: int64(eo['timeUnixNano']) / 1e6,
            attributes: jsonAttributes(eo['attributes'], `${pwhere}.events[${n}].attributes`),
          };
        });
        admit(batch, {
          traceId: jsonId(s['traceId']),
          spanId: jsonId(s['spanId']),
          parentSpanId: jsonId(s['parentSpanId']) || null,
          name: text(s['name']),
          kind: typeof s['kind'] === 'number' ? s['kind'] : 0,
          startMs: int64(s['startTimeUnixNano']) / 1e6,
          endMs: int64(s['endTimeUnixNano']) / 1e6,
          attributes: jsonAttributes(s['attributes'], `${pwhere}.attributes`),
          events,
          status: { code: typeof status?.['code'] === 'number' ? status['code'] : 0, message: text(status?.['message']) },
          resource,
          scope,
        });
      });
    });
  });
  return batch;
}

// ---- both ----------------------------------------------------------------------------

/** Keeps a decoded span, or rejects it when its ids or times cannot name it. */
function admit(batch: SpanBatch, span: SpanRecord): void {
  const reason = invalid(span);
  if (reason) {
    batch.rejected.push({ reason } satisfies RejectedSpan);
    return;
  }
  if (span.endMs !== null && span.endMs < span.startMs) span.endMs = span.startMs; // a clock step backwards: no negative durations
  batch.spans.push(span);
}

/** The latest time a JS Date can hold (ms): later (or negative, or zero) times name no moment. */
const MAX_TIME_MS = 8.64e15;

function validTime(ms: number): boolean {
  return Number.isFinite(ms) && ms > 0 && ms <= MAX_TIME_MS;
}

function invalid(span: SpanRecord): string | undefined {
  if (!TRACE_ID.test(span.traceId) || span.traceId === ZERO_TRACE) return 'invalid trace id (16 bytes, not all zero)';
  if (!SPAN_ID.test(span.spanId) || span.spanId === ZERO_SPAN) return 'invalid span id (8 bytes, not all zero)';
  if (span.parentSpanId !== null && !SPAN_ID.test(span.parentSpanId)) return 'invalid parent span id (8 bytes)';
  if (!validTime(span.startMs)) return 'invalid start time';
  if (span.endMs !== null && !validTime(span.endMs)) return 'invalid end time';
  return undefined;
}
