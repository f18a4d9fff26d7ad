// OTLP answers, in the request's encoding: ExportTraceServiceResponse for a
// success (partial or full), google.rpc.Status for every 4xx and 5xx. Pure.
import { ExportTraceServiceResponse, RpcStatus } from './schema.js';

/** The two encodings OTLP/HTTP speaks, by their content types. */
export type OtlpEncoding = 'protobuf' | 'json';

export const CONTENT_TYPES: Readonly<Record<OtlpEncoding, string>> = {
  protobuf: 'application/x-protobuf',
  json: 'application/json',
};

/** The encoding a request's Content-Type names, or undefined when it is neither (415). */
export function encodingOf(contentType: string | undefined): OtlpEncoding | undefined {
  const media = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (media === CONTENT_TYPES.protobuf) return 'protobuf';
  if (media === CONTENT_TYPES.json) return 'json';
  return undefined;
}

/** gRPC status codes carried in Status.code (the OTLP/HTTP spec lets clients ignore them; they help when reading logs). */
export const RpcCodes = { INVALID_ARGUMENT: 3, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, INTERNAL: 13, UNAVAILABLE: 14, UNAUTHENTICATED: 16 } as const;

/**
 * The body of a 200: nothing rejected (an empty `partial_success`), or how
 * many spans were rejected and why. JSON writes int64 as a decimal string.
 */
export function exportResponse(encoding: OtlpEncoding, rejected: number, message: string): Buffer {
  if (encoding === 'json') {
    const partialSuccess = rejected > 0 || message ? { rejectedSpans: String(rejected), errorMessage: message } : {};
    return Buffer.from(JSON.stringify({ partialSuccess }));
  }
  // Full success leaves partial_success unset (the spec's MUST): an empty message encodes to no bytes.
  if (rejected === 0 && !message) return Buffer.alloc(0);
  return Buffer.from(ExportTraceServiceResponse.encode({ partialSuccess: { rejectedSpans: rejected, errorMessage: message } }).finish());
}

/** The body of a 4xx or 5xx: a google.rpc.Status. */
export function statusResponse(encoding: OtlpEncoding, code: number, message: string): Buffer {
  if (encoding === 'json') return Buffer.from(JSON.stringify({ code, message }));
  return Buffer.from(RpcStatus.encode({ code, message }).finish());
}
