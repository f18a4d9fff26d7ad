// The OTLP decoders on their own: the SDK's own serializers' bytes (protobuf
// and JSON) decode to the same spans; the JSON mapping's rules (hex ids in
// any case, 64-bit integers as strings or numbers, wrapped values, unknown
// fields ignored); bad ids and times reject a span, not the request; and
// whatever bytes or JSON they are given, they answer spans or OtlpDecodeError,
// nothing else (property tests).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeJson, decodeProtobuf, MAX_VALUE_DEPTH, OtlpDecodeError } from '../src/ingest/otlp/decode.js';
import { exportResponse, statusResponse } from '../src/ingest/otlp/encode.js';
import { ExportTraceServiceRequest, ExportTraceServiceResponse, RpcStatus } from '../src/ingest/otlp/schema.js';
import type { SpanRecord } from '../src/ingest/spans.js';
import { child, memoryTracer, serialize, SpanStatusCode } from './otel-support.js';

/** The spans a tracer made: a root and two children, attributes of every value type, an error, an event. */
function sdkSpans() {
  const { tracer, spans } = memoryTracer({ 'service.name': 'decode-test', 'gen_ai.agent.name': 'planner' });
  const root = tracer.startSpan('invoke_agent planner', { attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.id': 'planner-1' } });
  const chat = child(tracer, root, 'chat gpt-4o', {
    'gen_ai.operation.name': 'chat',
    'gen_ai.usage.input_tokens': 1234,
    'gen_ai.request.temperature': 0.25,
    'gen_ai.response.finish_reasons': ['tool_calls'],
    streaming: true,
  });
  chat.end();
  const tool = child(tracer, root, 'execute_tool search', { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'search' });
  tool.recordException(new Error('upstream timed out'));
  tool.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream timed out' });
  tool.end();
  root.end();
  return spans();
}

/** What both decoders must agree on (times to the microsecond: JSON carries nanoseconds as text). */
function comparable(s: SpanRecord) {
  return {
    traceId: s.traceId,
    spanId: s.spanId,
    parentSpanId: s.parentSpanId,
    name: s.name,
    kind: s.kind,
    startUs: Math.round(s.startMs * 1000),
    endUs: s.endMs === null ? null : Math.round(s.endMs * 1000),
    attributes: Object.fromEntries(s.attributes),
    resource: Object.fromEntries(s.resource),
    events: s.events.map((e) => ({ name: e.name, attributes: Object.fromEntries(e.attributes) })),
    status: s.status,
    scope: s.scope,
  };
}

test("the SDK's protobuf and JSON serializations decode to the same spans, every field read", { timeout: 30_000 }, () => {
  const spans = sdkSpans();
  const proto = decodeProtobuf(serialize(spans, 'protobuf'));
  const json = decodeJson(Buffer.from(serialize(spans, 'json')));
  assert.equal(proto.rejected.length, 0);
  assert.equal(json.rejected.length, 0);
  assert.deepEqual(proto.spans.map(comparable), json.spans.map(comparable));
  const byName = new Map(proto.spans.map((s) => [s.name, s]));
  const root = byName.get('invoke_agent planner')!;
  const chat = byName.get('chat gpt-4o')!;
  const tool = byName.get('execute_tool search')!;
  const original = new Map(spans.map((s) => [s.name, s]));
  assert.equal(root.traceId, original.get('invoke_agent planner')!.spanContext().traceId);
  assert.equal(root.spanId, original.get('invoke_agent planner')!.spanContext().spanId);
  assert.equal(root.parentSpanId, null);
  assert.equal(chat.parentSpanId, root.spanId);
  assert.equal(chat.attributes.get('gen_ai.usage.input_tokens'), 1234);
  assert.equal(chat.attributes.get('gen_ai.request.temperature'), 0.25);
  assert.equal(chat.attributes.get('streaming'), true);
  assert.deepEqual(chat.attributes.get('gen_ai.response.finish_reasons'), ['tool_calls']);
  assert.equal(tool.status.code, 2);
  assert.equal(tool.status.message, 'upstream timed out');
  assert.equal(tool.events[0]?.name, 'exception');
  assert.equal(root.resource.get('service.name'), 'decode-test');
  assert.equal(root.scope.name, 'escai-test');
  const sdkRoot = original.get('invoke_agent planner')!;
  assert.ok(Math.abs(root.startMs - (sdkRoot.startTime[0] * 1000 + sdkRoot.startTime[1] / 1e6)) < 0.001, 'start time to the microsecond');
});

test('OTLP JSON mapping rules: hex ids in any case, 64-bit integers as strings or numbers, wrapped values, unknown fields ignored', { timeout: 30_000 }, () => {
  const batch = decodeJson(
    JSON.stringify({
      somethingNew: { ignored: true },
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }], futureField: 1 },
          scopeSpans: [
            {
              scope: { name: 's', version: '2' },
              spans: [
                {
                  traceId: '5B8EFFF798038103D269B633813FC60C',
                  spanId: 'EEE19B7EC3C1B174',
                  parentSpanId: '',
                  name: 'op',
                  kind: 3,
                  startTimeUnixNano: '1544712660000000000',
                  endTimeUnixNano: 1544712661000000000,
                  attributes: [
                    { key: 'i', value: { intValue: '9007199254740993' } },
                    { key: 'n', value: { intValue: 42 } },
                    { key: 'd', value: { doubleValue: 'NaN' } },
                    { key: 'arr', value: { arrayValue: { values: [{ stringValue: 'a' }, { boolValue: false }] } } },
                    {
                      key: 'kv',
                      value: {
                        kvlistValue: {
                          values: [
                            { key: 'x', value: { intValue: '1' } },
                            { key: '__proto__', value: { stringValue: 'no' } },
                          ],
                        },
                      },
                    },
                    { key: 'b', value: { bytesValue: 'AQID' } },
                    { key: 'empty', value: {} },
                  ],
                  droppedAttributesCount: 3,
                  status: { code: 1 },
                },
              ],
            },
          ],
        },
      ],
    }),
  );
  assert.equal(batch.rejected.length, 0);
  const span = batch.spans[0]!;
  assert.equal(span.traceId, '5b8efff798038103d269b633813fc60c');
  assert.equal(span.spanId, 'eee19b7ec3c1b174');
  assert.equal(span.parentSpanId, null, 'an empty parent id is a root');
  assert.equal(span.startMs, 1544712660000);
  assert.equal(span.endMs, 1544712661000);
  assert.equal(span.attributes.get('i'), '9007199254740993', 'an integer past 2^53 keeps its digits');
  assert.equal(span.attributes.get('n'), 42);
  assert.equal(span.attributes.get('d'), 'NaN');
  assert.deepEqual(span.attributes.get('arr'), ['a', false]);
  assert.deepEqual(span.attributes.get('kv'), { x: 1 });
  assert.equal(Object.getPrototypeOf(span.attributes.get('kv')), Object.prototype, 'a __proto__ key is dropped, the prototype untouched');
  assert.equal(span.attributes.get('b'), 'AQID');
  assert.equal(span.attributes.get('empty'), null);
  assert.deepEqual(span.scope, { name: 's', version: '2' });
});

test('a span with bad ids or times is rejected with its reason; the others of the request are kept', { timeout: 30_000 }, () => {
  const good = {
    traceId: 'a'.repeat(32),
    spanId: 'b'.repeat(16),
    name: 'ok',
    startTimeUnixNano: '1700000000000000000',
    endTimeUnixNano: '1700000001000000000',
  };
  const batch = decodeJson({
    resourceSpans: [
      {
        scopeSpans: [
          {
            spans: [
              good,
              { ...good, traceId: '0'.repeat(32) },
              { ...good, spanId: 'xyz' },
              { ...good, parentSpanId: 'abc' },
              { ...good, startTimeUnixNano: '0' },
              { ...good, endTimeUnixNano: 1e300 },
              { ...good, spanId: 'c'.repeat(16), endTimeUnixNano: '1600000000000000000' },
            ],
          },
        ],
      },
    ],
  });
  assert.deepEqual(
    batch.rejected.map((r) => r.reason),
    [
      'invalid trace id (16 bytes, not all zero)',
      'invalid span id (8 bytes, not all zero)',
      'invalid parent span id (8 bytes)',
      'invalid start time',
      'invalid end time',
    ],
  );
  assert.equal(batch.spans.length, 2);
  assert.equal(batch.spans[1]!.endMs, batch.spans[1]!.startMs, 'an end before the start is clamped to the start');
});

test('values nested deeper than the limit are cut with a marker, in both encodings, and the span is kept', { timeout: 30_000 }, () => {
  let value: Record<string, unknown> = { stringValue: 'bottom' };
  for (let i = 0; i < 50; i++) value = { kvlistValue: { values: [{ key: 'k', value }] } };
  const batch = decodeJson({
    resourceSpans: [
      {
        scopeSpans: [
          {
            spans: [
              {
                traceId: 'a'.repeat(32),
                spanId: 'b'.repeat(16),
                name: 'deep',
                startTimeUnixNano: '1700000000000000000',
                endTimeUnixNano: '1700000000000000000',
                attributes: [{ key: 'deep', value }],
              },
            ],
          },
        ],
      },
    ],
  });
  let v: unknown = batch.spans[0]!.attributes.get('deep');
  let depth = 0;
  while (typeof v === 'object' && v !== null) {
    v = (v as Record<string, unknown>)['k'];
    depth++;
  }
  assert.equal(depth, MAX_VALUE_DEPTH - 1);
  assert.match(String(v), /nested deeper than/);
  // The same in protobuf (20 levels: 60 messages deep, within protoc's limit of 100 that protobufjs applies too).
  let pv: Record<string, unknown> = { stringValue: 'bottom' };
  for (let i = 0; i < 20; i++) pv = { kvlistValue: { values: [{ key: 'k', value: pv }] } };
  const hex = (h: string) => Buffer.from(h, 'hex');
  const bytes = ExportTraceServiceRequest.encode({
    resourceSpans: [
      {
        scopeSpans: [
          {
            spans: [
              {
                traceId: hex('a'.repeat(32)),
                spanId: hex('b'.repeat(16)),
                name: 'deep',
                startTimeUnixNano: 1.7e18,
                endTimeUnixNano: 1.7e18,
                attributes: [{ key: 'deep', value: pv }],
              },
            ],
          },
        ],
      },
    ],
  }).finish();
  const proto = decodeProtobuf(bytes);
  let d: unknown = proto.spans[0]!.attributes.get('deep');
  let levels = 0;
  while (typeof d === 'object' && d !== null) {
    d = (d as Record<string, unknown>)['k'];
    levels++;
  }
  assert.equal(levels, MAX_VALUE_DEPTH - 1);
  assert.match(String(d), /nested deeper than/);
});

test('undecodable bodies throw OtlpDecodeError: garbage, truncation, nesting past the stack, JSON of the wrong shape', { timeout: 30_000 }, () => {
  const bytes = serialize(sdkSpans(), 'protobuf');
  assert.throws(() => decodeProtobuf(bytes.subarray(0, bytes.length - 7)), OtlpDecodeError);
  assert.throws(() => decodeProtobuf(Buffer.from('this is not protobuf at all, just text that looks wrong')), OtlpDecodeError);
  // A KeyValueList inside a KeyValueList … far deeper than any stack: refused, not a crash.
  assert.throws(
    () => decodeProtobuf(nestedAttribute(100_000)),
    (err: unknown) => err instanceof OtlpDecodeError && /nested too deeply/.test(err.message),
  );
  assert.throws(() => decodeJson('{"resourceSpans":'), OtlpDecodeError);
  assert.throws(() => decodeJson('[1,2]'), OtlpDecodeError);
  assert.throws(() => decodeJson('{"resourceSpans":{"not":"a list"}}'), OtlpDecodeError);
  assert.deepEqual(decodeJson('{}'), { spans: [], rejected: [] }, 'an empty request is a success with nothing in it');
  assert.deepEqual(decodeProtobuf(new Uint8Array()), { spans: [], rejected: [] });
});

/** A request whose resource holds one attribute nested `levels` deep (KeyValue → AnyValue.kvlist → KeyValueList → KeyValue …). */
function nestedAttribute(levels: number): Buffer {
  const field = (tag: number, body: Buffer) => Buffer.concat([Buffer.from([tag, ...varint(body.length)]), body]);
  const innermost = Buffer.concat([field(0x0a, Buffer.from('k')), field(0x12, field(0x0a, Buffer.from('bottom')))]);
  // Each level wraps the one inside as key "k" + value(AnyValue.kvlist(KeyValueList.values(…))). Only the
  // headers are built, inside out, and joined once: wrapping the whole buffer per level copies O(levels²)
  // bytes (minutes on a loaded machine, and a synchronous test's timeout cannot stop it).
  const prefixes: Buffer[] = [];
  let length = innermost.length;
  for (let i = 0; i < levels; i++) {
    const values = [0x0a, ...varint(length)];
    length += values.length;
    const kvlist = [0x32, ...varint(length)];
    length += kvlist.length;
    const value = [0x12, ...varint(length)];
    length += value.length;
    const key = [0x0a, 1, 0x6b]; // field 1, length 1, "k"
    length += key.length;
    prefixes.push(Buffer.from([...key, ...value, ...kvlist, ...values]));
  }
  const kv = Buffer.concat([...prefixes.reverse(), innermost]);
  // ExportTraceServiceRequest.resource_spans(1) → ResourceSpans.resource(1) → Resource.attributes(1)
  return field(0x0a, field(0x0a, field(0x0a, kv)));
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

test('answers: an empty partial_success, or rejected spans and a message; a Status for refusals; both encodings', { timeout: 30_000 }, () => {
  assert.deepEqual(JSON.parse(exportResponse('json', 0, '').toString()), { partialSuccess: {} });
  assert.deepEqual(JSON.parse(exportResponse('json', 2, 'two bad').toString()), { partialSuccess: { rejectedSpans: '2', errorMessage: 'two bad' } });
  assert.equal(exportResponse('protobuf', 0, '').length, 0, 'full success leaves partial_success unset');
  const partial = ExportTraceServiceResponse.toObject(ExportTraceServiceResponse.decode(exportResponse('protobuf', 3, 'why')), { longs: Number });
  assert.deepEqual(partial, { partialSuccess: { rejectedSpans: 3, errorMessage: 'why' } });
  assert.deepEqual(RpcStatus.toObject(RpcStatus.decode(statusResponse('protobuf', 3, 'bad'))), { code: 3, message: 'bad' });
  assert.deepEqual(JSON.parse(statusResponse('json', 16, 'who').toString()), { code: 16, message: 'who' });
});

test('property: any bytes decode to spans or OtlpDecodeError, never another error', { timeout: 60_000 }, () => {
  const valid = serialize(sdkSpans(), 'protobuf');
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }),
        fc.tuple(fc.nat(valid.length), fc.uint8Array({ maxLength: 8 })).map(([cut, tail]) => Buffer.concat([valid.subarray(0, cut), tail])),
      ),
      (bytes) => {
        try {
          const batch = decodeProtobuf(bytes);
          for (const s of batch.spans) assert.match(s.spanId, /^[0-9a-f]{16}$/);
        } catch (err) {
          if (!(err instanceof OtlpDecodeError)) throw err;
        }
      },
    ),
    { numRuns: 500 },
  );
});

test('property: any JSON decodes to spans or OtlpDecodeError, never another error', { timeout: 60_000 }, () => {
  const { json } = fc.letrec((tie) => ({
    json: fc.oneof(
      { depthSize: 'small' },
      fc.constant(null),
      fc.boolean(),
      fc.double(),
      fc.string({ maxLength: 40 }),
      fc.array(tie('json'), { maxLength: 4 }),
      fc.dictionary(
        fc.constantFrom(
          'resourceSpans',
          'scopeSpans',
          'spans',
          'resource',
          'attributes',
          'key',
          'value',
          'stringValue',
          'intValue',
          'kvlistValue',
          'arrayValue',
          'values',
          'traceId',
          'spanId',
          'startTimeUnixNano',
          'status',
          'events',
          '__proto__',
        ),
        tie('json'),
        { maxKeys: 5 },
      ),
    ),
  }));
  fc.assert(
    fc.property(json, (doc) => {
      try {
        decodeJson(doc);
      } catch (err) {
        if (!(err instanceof OtlpDecodeError)) throw err;
      }
    }),
    { numRuns: 1000 },
  );
});
