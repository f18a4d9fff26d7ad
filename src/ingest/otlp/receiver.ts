// The OTLP/HTTP traces receiver: POST /v1/traces, as the OTLP specification
// says. The transport only: the content type picks the codec, gzip is
// undone within the size limit (a small body cannot inflate into a large
// one), the token needs events:publish, the publishing budget and the engine
// may say "later" (429 / 503 with Retry-After). Decoding is ./decode.ts,
// turning spans into events is the ingestor's (../ingest.ts).
//
// Answers: 200 with an empty partial_success; 200 with rejected_spans and an
// error_message; 400 undecodable; 401 / 403 token; 413 over the limit
// (before or after decompression); 415 another content type or encoding;
// 429 / 503 retry later. Every 4xx and 5xx body is a google.rpc.Status in the
// request's encoding (JSON when the request named neither).
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { TokenVerifier } from '../../auth/jwt.js';
import { Permissions, type Principal } from '../../auth/permissions.js';
import { ErrorCodes } from '../../protocol/codes.js';
import { catalogued } from '../../server/node/errors.js';
import type { KeyedBuckets } from '../../server/edge/limits.js';
import { authorize } from '../../server/http/rest.js';
import type { SpanBatch } from '../spans.js';
import { decodeJson, decodeProtobuf, OtlpDecodeError } from './decode.js';
import { CONTENT_TYPES, encodingOf, exportResponse, RpcCodes, statusResponse, type OtlpEncoding } from './encode.js';

const gunzipAsync = promisify(gunzip);

/** The path OTLP exporters send traces to (`${OTEL_EXPORTER_OTLP_ENDPOINT}/v1/traces`). */
export const TRACES_PATH = '/v1/traces';

/** Seconds a client is asked to wait when the engine is away (503). */
const ENGINE_RETRY_AFTER = 2;

/** What the ingestor made of a request's spans. */
export interface IngestOutcome {
  /** Spans that became events (or were ignored on purpose, e.g. spans of no agent). */
  accepted: number;
  /** Spans that could not be mapped, and why (the answer's partial_success). */
  rejected: number;
  reasons: string[];
}

export interface OtlpReceiverDeps {
  verifier: TokenVerifier;
  /** Turns decoded spans into events and publishes them; rejects with the engine's unavailability. */
  ingest(batch: SpanBatch, principal: Principal): Promise<IngestOutcome>;
  /** Spans per second per user (the publishing budget of traces). */
  budget: Pick<KeyedBuckets, 'take'>;
  /** The most spans one request may cost the budget (a larger request costs this much). */
  budgetBurst: number;
  budgetRate: number;
  /** Largest body, before and after decompression. */
  maxBodyBytes: number;
  onRequest?(encoding: OtlpEncoding | 'unsupported', status: number, spans: number): void;
  log: Logger;
}

/** The request's encoding (JSON for a request in neither: the answer must be readable). */
function answerEncoding(req: FastifyRequest): OtlpEncoding {
  return encodingOf(req.headers['content-type']) ?? 'json';
}

/** The gRPC code a refusal is reported with, by its HTTP status. */
function rpcCodeOf(status: number): number {
  if (status === 401) return RpcCodes.UNAUTHENTICATED;
  if (status === 403) return RpcCodes.PERMISSION_DENIED;
  if (status === 413 || status === 429) return RpcCodes.RESOURCE_EXHAUSTED;
  if (status === 503) return RpcCodes.UNAVAILABLE;
  if (status >= 500) return RpcCodes.INTERNAL;
  return RpcCodes.INVALID_ARGUMENT;
}

function refuse(reply: FastifyReply, encoding: OtlpEncoding, status: number, message: string, retryAfter?: number): FastifyReply {
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  return reply
    .code(status)
    .type(CONTENT_TYPES[encoding])
    .send(statusResponse(encoding, rpcCodeOf(status), message));
}

/** A refusal the receiver throws: its HTTP status, an OTLP-readable message, maybe a Retry-After. */
export class OtlpRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/** The body as the exporter meant it: gunzipped when it says so, never past `limit` bytes either way. */
async function plainBody(req: FastifyRequest, body: Buffer, limit: number): Promise<Buffer> {
  const coding = String(req.headers['content-encoding'] ?? 'identity')
    .trim()
    .toLowerCase();
  if (coding === 'identity' || coding === '' || coding === 'none') return body;
  if (coding !== 'gzip' && coding !== 'x-gzip') throw new OtlpRefusal(415, `Content-Encoding ${coding.slice(0, 32)} is not supported (gzip or none)`);
  try {
    return await gunzipAsync(body, { maxOutputLength: limit });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE')
      throw new OtlpRefusal(413, `the body inflates past ${limit} bytes (ESCAI_OTLP_MAX_BODY_BYTES)`);
    throw new OtlpRefusal(400, `the body is not valid gzip: ${(err as Error).message}`);
  }
}

/**
 * Registers POST /v1/traces in a scope of its own (its body parser takes
 * raw bytes of any content type, which no other route should see).
 */
export function registerOtlpReceiver(app: FastifyInstance, deps: OtlpReceiverDeps): void {
  const { maxBodyBytes, log } = deps;
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: maxBodyBytes }, (_req, body, done) => done(null, body));

    scope.setErrorHandler((err, req, reply) => {
      const encoding = answerEncoding(req);
      if (err instanceof OtlpRefusal) {
        deps.onRequest?.(encodingOf(req.headers['content-type']) ?? 'unsupported', err.status, 0);
        return refuse(reply, encoding, err.status, err.message, err.retryAfter);
      }
      const e = err as { code?: string; statusCode?: number; message?: string };
      if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return refuse(reply, encoding, 413, `the body exceeds ${maxBodyBytes} bytes (ESCAI_OTLP_MAX_BODY_BYTES)`);
      if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || e.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH')
        return refuse(reply, encoding, 400, e.message ?? 'bad request');
      const known = catalogued(err);
      if (known) {
        const retryAfter = known.code === 'ENGINE_UNAVAILABLE' ? ENGINE_RETRY_AFTER : undefined;
        // The REST rate limit has set its Retry-After already.
        return refuse(reply, encoding, known.status, `${known.code}: ${known.message}`, retryAfter);
      }
      if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500)
        return refuse(reply, encoding, e.statusCode, e.message ?? 'bad request');
      log.error({ err }, 'OTLP request failed');
      return refuse(reply, encoding, 500, 'INTERNAL_ERROR: internal error');
    });

    // Checked before the body is read: an unauthenticated or unreadable request costs no decompression.
    scope.addHook('onRequest', async (req) => {
      if (encodingOf(req.headers['content-type']) === undefined) {
        throw new OtlpRefusal(415, `Content-Type must be ${CONTENT_TYPES.protobuf} or ${CONTENT_TYPES.json}`);
      }
      (req as FastifyRequest & { principal?: Principal }).principal = await authorize(deps.verifier, req, Permissions.PUBLISH);
    });

    scope.post(TRACES_PATH, async (req, reply) => {
      const encoding = encodingOf(req.headers['content-type'])!;
      let spans = 0;
      try {
        const principal = (req as FastifyRequest & { principal?: Principal }).principal!;
        const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const body = await plainBody(req, raw, maxBodyBytes);
        let batch: SpanBatch;
        try {
          batch = encoding === 'protobuf' ? decodeProtobuf(body) : decodeJson(body);
        } catch (err) {
          if (err instanceof OtlpDecodeError) throw new OtlpRefusal(400, err.message);
          throw err;
        }
        spans = batch.spans.length + batch.rejected.length;
        // A user's traces share a budget in spans per second; a request larger than the burst costs the burst.
        const cost = Math.min(batch.spans.length, deps.budgetBurst);
        if (cost > 0 && !deps.budget.take(principal.userId, cost)) {
          throw new OtlpRefusal(
            429,
            `RATE_LIMITED: over ${deps.budgetRate} spans per second for ${principal.userId}; retry later`,
            Math.max(1, Math.ceil(cost / deps.budgetRate)),
          );
        }
        const outcome = await deps.ingest(batch, principal);
        const rejected = outcome.rejected;
        const message = rejected > 0 ? summarize(outcome.reasons, rejected) : '';
        deps.onRequest?.(encoding, 200, spans);
        return reply
          .code(200)
          .type(CONTENT_TYPES[encoding])
          .send(exportResponse(encoding, rejected, message));
      } catch (err) {
        if (err instanceof OtlpRefusal) {
          deps.onRequest?.(encoding, err.status, spans);
          return refuse(reply, encoding, err.status, err.message, err.retryAfter);
        }
        const known = catalogued(err);
        if (known?.code === 'ENGINE_UNAVAILABLE') {
          deps.onRequest?.(encoding, 503, spans);
          return refuse(
            reply,
            encoding,
            ErrorCodes.ENGINE_UNAVAILABLE.status,
            `ENGINE_UNAVAILABLE: ${known.message}; retry after ${ENGINE_RETRY_AFTER} s`,
            ENGINE_RETRY_AFTER,
          );
        }
        throw err;
      }
    });
  });
}

/** The partial_success message: how many spans, and each distinct reason once. */
function summarize(reasons: readonly string[], rejected: number): string {
  const distinct = [...new Set(reasons)].slice(0, 5);
  return `${rejected} span(s) rejected: ${distinct.join('; ')}`;
}
