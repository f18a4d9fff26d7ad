// Configuration: one schema with the defaults, read from (lowest first) the
// defaults, a JSON file (--config), ESCAI_* environment variables and CLI
// flags. Validated once at start; a bad value stops the server with a message
// naming the setting and where it came from. The result is frozen.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';
import { DEFAULT_ROLES } from '../auth/permissions.js';
import { DetectorThresholdsSchema } from '../detect/thresholds.js';
import proxyaddr from '@fastify/proxy-addr';

const seconds = z.coerce.number().positive().max(86_400);
const count = z.coerce.number().int().positive();
const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on']);
const FALSE_WORDS = new Set(['0', 'false', 'no', 'off']);
/** Booleans from text: only the listed words; anything else is refused, not read as false. */
const bool = z.preprocess((v) => {
  if (typeof v !== 'string') return v;
  const word = v.trim().toLowerCase();
  return TRUE_WORDS.has(word) ? true : FALSE_WORDS.has(word) ? false : v;
}, z.boolean());
const list = z.preprocess(
  (v) =>
    typeof v === 'string'
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : v,
  z.array(z.string().min(1)),
);

/** The ranges proxy-addr knows by name. */
const PROXY_NAMES: ReadonlySet<string> = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** `trustProxy` from text or a config file: off, a hop count, or a list of addresses/CIDRs (each checked). */
const trustProxy = z.preprocess(
  (v) => {
    if (v === true) return 1;
    if (typeof v !== 'string') return v;
    const word = v.trim().toLowerCase();
    if (FALSE_WORDS.has(word) || word === '') return false;
    if (/^\d+$/.test(word)) return Number(word) === 0 ? false : Number(word);
    if (TRUE_WORDS.has(word)) return 1;
    return v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  },
  z.union([
    z.literal(false),
    z.number().int().min(1).max(32),
    z
      .array(z.string().min(1))
      .min(1)
      .superRefine((list, ctx) => {
        const expected = '(expected addresses or CIDRs, e.g. 10.0.0.0/8,127.0.0.1, or a hop count)';
        // Whole addresses only: the library also takes inet_aton shorthand, which would read 172.16/12 as 172.0.0.16/12.
        const shorthand = list.find((entry) => !PROXY_NAMES.has(entry) && isIP(entry.split('/')[0]!) === 0);
        if (shorthand !== undefined) {
          ctx.addIssue({ code: 'custom', message: `invalid IP address: ${shorthand} ${expected}` });
          return;
        }
        try {
          proxyaddr.compile(list);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: `${(err as Error).message} ${expected}` });
        }
      }),
  ]),
);

export const ConfigSchema = z.object({
  /** Interface to listen on. */
  host: z.string().min(1).default('127.0.0.1'),
  /** TCP port (0 = any free port). */
  port: z.coerce.number().int().min(0).max(65_535).default(8000),
  /** HS256 secret, at least 32 bytes. Without it: dev mode (generated) or, in production, refusal. */
  jwtSecret: z
    .string()
    .refine((s) => Buffer.byteLength(s, 'utf8') >= 32, 'must be at least 32 bytes')
    .optional(),
  /** The HS256 secret before a rotation: tokens signed with it still verify until jwtPreviousSecretUntil. */
  jwtPreviousSecret: z
    .string()
    .refine((s) => Buffer.byteLength(s, 'utf8') >= 32, 'must be at least 32 bytes')
    .optional(),
  /** When the previous secret stops verifying (ISO-8601 time, e.g. 2026-12-31T00:00:00Z); required with it. */
  jwtPreviousSecretUntil: z.iso.datetime({ offset: true }).optional(),
  /** JWKS URL for RS/ES-signed tokens. */
  jwtJwksUrl: z.url().optional(),
  /** Seconds between JWKS fetches that check live connections' keys are still in the set (a key that left it closes them, 4001). */
  jwtJwksRefresh: seconds.default(60),
  /** Required `iss` claim, when set. */
  jwtIssuer: z.string().min(1).optional(),
  /** Required `aud` claim, when set. */
  jwtAudience: z.string().min(1).optional(),
  /** Seconds of clock skew tolerated on exp/nbf. */
  clockTolerance: z.coerce.number().min(0).max(300).default(5),
  /** Role → permissions table, merged over the defaults (admin, researcher, developer, viewer). */
  roles: z.record(z.string(), z.array(z.string())).default({}),
  /** Maximum concurrent WebSocket connections on this node. */
  maxConnections: count.default(10_000),
  /** Seconds between heartbeats (protocol ping + JSON ping). */
  heartbeatInterval: seconds.default(30),
  /** Seconds of silence past the interval before a connection is terminated. */
  heartbeatTimeout: seconds.default(10),
  /** Largest inbound WebSocket message, bytes; larger closes with 1009. */
  maxMessageBytes: count.max(16 * 1024 * 1024).default(64 * 1024),
  /** Inbound control messages (everything but publish) per second per connection (token bucket refill rate). */
  rateLimit: z.coerce.number().positive().default(50),
  /** Token bucket size: messages a connection may send in a burst. */
  rateBurst: count.default(100),
  /** Messages dropped in a row for rate before the connection is closed with 1008. */
  rateLimitCloseAfter: count.default(50),
  /** Events per second one connection may publish through `publish` messages (a batch counts its events); separate from rateLimit. */
  publishRate: z.coerce.number().positive().default(10_000),
  /** Publishing burst: events a connection may publish at once (at least one full batch). */
  publishBurst: count.default(20_000),
  /** Subscriptions one connection may hold. */
  maxSubscriptions: count.default(100),
  /** Bytes queued to one client before it is disconnected as a slow consumer (4008); a replay may exceed it by its own size while it drains. */
  maxBufferedBytes: count.default(1024 * 1024),
  /** Batched delivery (`?batch=1`): most messages in one frame. */
  batchMaxMessages: count.max(10_000).default(256),
  /** Batched delivery: most bytes in one frame (a larger single message still goes, alone). */
  batchMaxBytes: count.max(16 * 1024 * 1024).default(64 * 1024),
  /** Batched delivery: milliseconds the messages that follow a sent one wait to be coalesced (0 = until the end of the current event-loop turn). */
  batchMaxDelay: z.coerce.number().int().min(0).max(1000).default(0),
  /** permessage-deflate for clients that offer it (off: it costs CPU per connection; see docs/OPERATIONS.md). */
  compression: bool.default(false),
  /** Compression: messages (or batched frames) smaller than this many bytes go uncompressed. */
  compressionThreshold: z.coerce.number().int().min(0).default(1024),
  /** Compression: zlib level, 1 (fastest) to 9 (smallest). */
  compressionLevel: z.coerce.number().int().min(1).max(9).default(3),
  /** Compression: zlib operations running at once on the node (the rest queue). */
  compressionConcurrency: count.max(1000).default(10),
  /** Compression: keep each connection's dictionary between messages (better ratio, ≈ 300 KiB more memory per compressing connection). */
  compressionContextTakeover: bool.default(false),
  /** Open WebSocket connections per client address on this node (offices behind one NAT fit). */
  maxConnectionsPerIp: count.default(256),
  /** WebSocket handshakes per second per client address (bursts of twice that). */
  handshakeRate: count.default(20),
  /** Seconds a connection opened for first-message auth (`?auth=message`) has to send its auth message. */
  authTimeout: seconds.max(120).default(10),
  /** Seconds a client may take to send its request headers (slow clients are cut off). */
  headerTimeout: seconds.max(300).default(10),
  /** TCP connections that have not sent a request yet, per node (beyond: dropped at once). */
  maxPendingSockets: count.default(1024),
  /** HTTP requests per minute per client address on the REST API (health probes and metrics excluded). */
  restRateLimit: count.default(6000),
  /** Allowed Origin headers for WebSocket upgrades; empty = any. */
  allowedOrigins: list.default([]),
  /** Origins allowed to call the REST API from a browser (CORS); empty = CORS off. */
  corsOrigins: list.default([]),
  /** Largest HTTP body (publish API), bytes. */
  maxBodyBytes: count.default(1024 * 1024),
  /** Most events in one publish batch. */
  maxBatchEvents: count.default(1000),
  /** Largest event as subscribers receive it (JSON bytes); larger is refused with VALIDATION_ERROR. */
  maxEventBytes: count.max(16 * 1024 * 1024).default(64 * 1024),
  /** Events kept per stream. */
  historySize: count.default(1000),
  /** Seconds an event stays in history. */
  historyTtl: seconds.default(300),
  /** Bytes of history kept per stream (in-memory engine; as JSON). */
  historyStreamBytes: count.default(8 * 1024 * 1024),
  /** Bytes of history kept by the node, all streams together (in-memory engine): the oldest events anywhere go first. */
  historyNodeBytes: count.default(512 * 1024 * 1024),
  /** Replayed events per second per user (subscribe with since, session resume); bursts of twice that. */
  replayBudget: count.default(10_000),
  /** Seconds a stream nobody published to is remembered after it was last read (its position and epoch). */
  unpublishedStreamTtl: seconds.default(600),
  /** Seconds an agent stays in the agent list (and its current state is kept) after its last event. */
  agentTtl: z.coerce
    .number()
    .positive()
    .max(30 * 86_400)
    .default(86_400),
  /** Sessions (live and parked) one user keeps for resume; saving one more drops the user's least recently saved. */
  maxSessionsPerUser: count.max(10_000).default(64),
  /** Seconds a disconnected session (subscriptions + positions) is kept for resume; 0 disables resume. */
  sessionTtl: z.coerce.number().min(0).max(86_400).default(120),
  /** Seconds before a token's exp that the server sends token_expiring. */
  tokenExpiryWarning: seconds.default(30),
  /** Seconds past exp a connection may stay without a valid refresh before close 4001. */
  tokenExpiryGrace: z.coerce.number().min(0).max(3600).default(5),
  /** Redis URL: puts the node on the Redis engine (cluster). Without it: the in-memory engine. */
  redisUrl: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .optional(),
  /** Namespace of every Redis key and channel. */
  redisPrefix: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9_.:-]+$/)
    .default('escai'),
  /** Seconds a node's registry entry lives without renewal (reports every third of it). */
  nodeTtl: seconds.default(10),
  /** Connections one user may hold across the cluster (many dashboard tabs fit); 0 = no cap. */
  maxConnectionsPerUser: z.coerce.number().int().min(0).default(100),
  /** Seconds shutdown waits for clients to finish the close handshake. */
  shutdownGrace: seconds.default(5),
  /** Bearer token GET /metrics requires, when set (at least 16 characters). */
  metricsToken: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Serve /metrics on this port (on `host`) instead of the main port, when set. */
  metricsPort: z.coerce.number().int().min(1).max(65_535).optional(),
  /** pino log level. */
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Log lines as JSON, or pretty for a person; auto: pretty in dev mode when stdout is a terminal, JSON otherwise. */
  logFormat: z.enum(['auto', 'json', 'pretty']).default('auto'),
  /**
   * Which peers are proxies whose X-Forwarded-For entries are believed: off;
   * a hop count (`true` is 1: the peer is your one proxy); or their addresses
   * and CIDRs, comma-separated (`10.0.0.0/8,127.0.0.1`, also `loopback`,
   * `linklocal`, `uniquelocal`). The client is the nearest address from the
   * right that is not a trusted proxy.
   */
  trustProxy: trustProxy.default(false),
  /** Serve the OTLP/HTTP traces receiver (POST /v1/traces) on this port too (4318 by convention; 0: any free port), besides the main port. */
  otlpPort: z.coerce.number().int().min(0).max(65_535).optional(),
  /** Largest OTLP request body, bytes, before and after gzip is undone (the OTLP spec recommends 20 MiB). */
  otlpMaxBodyBytes: count.max(256 * 1024 * 1024).default(20 * 1024 * 1024),
  /** Spans per second one user may send to /v1/traces (the publishing budget of traces; over it: 429 with Retry-After). */
  otlpRate: z.coerce.number().positive().default(20_000),
  /** Spans one user may send at once (a request larger than this costs this much). */
  otlpBurst: count.default(40_000),
  /** Copy prompts, model outputs and tool results from traces into events (truncated): goals from the task's text, knowledge from tool results. */
  otlpCaptureContent: bool.default(false),
  /** Behaviour detector thresholds (JSON), merged over the defaults (docs/INGEST.md). */
  detectors: DetectorThresholdsSchema.prefault({}),
});

export type Config = Readonly<Omit<z.infer<typeof ConfigSchema>, 'roles'> & { roles: Readonly<Record<string, readonly string[]>> }>;

/** Settings given as JSON text in the environment. */
const JSON_SETTINGS: ReadonlySet<string> = new Set(['roles', 'detectors']);
export type ConfigInput = z.input<typeof ConfigSchema>;
export type SettingName = keyof z.infer<typeof ConfigSchema>;

/** The environment variable of each setting. */
export const ENV_NAMES: Readonly<Record<SettingName, string>> = {
  host: 'ESCAI_HOST',
  port: 'ESCAI_PORT',
  jwtSecret: 'ESCAI_JWT_SECRET',
  jwtPreviousSecret: 'ESCAI_JWT_PREVIOUS_SECRET',
  jwtPreviousSecretUntil: 'ESCAI_JWT_PREVIOUS_SECRET_UNTIL',
  jwtJwksUrl: 'ESCAI_JWT_JWKS_URL',
  jwtJwksRefresh: 'ESCAI_JWT_JWKS_REFRESH',
  jwtIssuer: 'ESCAI_JWT_ISSUER',
  jwtAudience: 'ESCAI_JWT_AUDIENCE',
  clockTolerance: 'ESCAI_CLOCK_TOLERANCE',
  roles: 'ESCAI_ROLES',
  maxConnections: 'ESCAI_MAX_CONNECTIONS',
  heartbeatInterval: 'ESCAI_HEARTBEAT_INTERVAL',
  heartbeatTimeout: 'ESCAI_HEARTBEAT_TIMEOUT',
  maxMessageBytes: 'ESCAI_MAX_MESSAGE_BYTES',
  rateLimit: 'ESCAI_RATE_LIMIT',
  rateBurst: 'ESCAI_RATE_BURST',
  rateLimitCloseAfter: 'ESCAI_RATE_LIMIT_CLOSE_AFTER',
  publishRate: 'ESCAI_PUBLISH_RATE',
  publishBurst: 'ESCAI_PUBLISH_BURST',
  maxSubscriptions: 'ESCAI_MAX_SUBSCRIPTIONS',
  maxBufferedBytes: 'ESCAI_MAX_BUFFERED_BYTES',
  batchMaxMessages: 'ESCAI_BATCH_MAX_MESSAGES',
  compression: 'ESCAI_COMPRESSION',
  compressionThreshold: 'ESCAI_COMPRESSION_THRESHOLD',
  compressionLevel: 'ESCAI_COMPRESSION_LEVEL',
  compressionConcurrency: 'ESCAI_COMPRESSION_CONCURRENCY',
  compressionContextTakeover: 'ESCAI_COMPRESSION_CONTEXT_TAKEOVER',
  batchMaxBytes: 'ESCAI_BATCH_MAX_BYTES',
  batchMaxDelay: 'ESCAI_BATCH_MAX_DELAY',
  maxConnectionsPerIp: 'ESCAI_MAX_CONNECTIONS_PER_IP',
  handshakeRate: 'ESCAI_HANDSHAKE_RATE',
  authTimeout: 'ESCAI_AUTH_TIMEOUT',
  headerTimeout: 'ESCAI_HEADER_TIMEOUT',
  maxPendingSockets: 'ESCAI_MAX_PENDING_SOCKETS',
  restRateLimit: 'ESCAI_REST_RATE_LIMIT',
  allowedOrigins: 'ESCAI_ALLOWED_ORIGINS',
  corsOrigins: 'ESCAI_CORS_ORIGINS',
  maxBodyBytes: 'ESCAI_MAX_BODY_BYTES',
  maxBatchEvents: 'ESCAI_MAX_BATCH_EVENTS',
  maxEventBytes: 'ESCAI_MAX_EVENT_BYTES',
  historySize: 'ESCAI_HISTORY_SIZE',
  historyTtl: 'ESCAI_HISTORY_TTL',
  historyStreamBytes: 'ESCAI_HISTORY_STREAM_BYTES',
  historyNodeBytes: 'ESCAI_HISTORY_NODE_BYTES',
  replayBudget: 'ESCAI_REPLAY_BUDGET',
  unpublishedStreamTtl: 'ESCAI_UNPUBLISHED_STREAM_TTL',
  agentTtl: 'ESCAI_AGENT_TTL',
  sessionTtl: 'ESCAI_SESSION_TTL',
  maxSessionsPerUser: 'ESCAI_MAX_SESSIONS_PER_USER',
  tokenExpiryWarning: 'ESCAI_TOKEN_EXPIRY_WARNING',
  tokenExpiryGrace: 'ESCAI_TOKEN_EXPIRY_GRACE',
  redisUrl: 'ESCAI_REDIS_URL',
  redisPrefix: 'ESCAI_REDIS_PREFIX',
  nodeTtl: 'ESCAI_NODE_TTL',
  maxConnectionsPerUser: 'ESCAI_MAX_CONNECTIONS_PER_USER',
  shutdownGrace: 'ESCAI_SHUTDOWN_GRACE',
  metricsToken: 'ESCAI_METRICS_TOKEN',
  metricsPort: 'ESCAI_METRICS_PORT',
  logLevel: 'ESCAI_LOG_LEVEL',
  logFormat: 'ESCAI_LOG_FORMAT',
  trustProxy: 'ESCAI_TRUST_PROXY',
  otlpPort: 'ESCAI_OTLP_PORT',
  otlpMaxBodyBytes: 'ESCAI_OTLP_MAX_BODY_BYTES',
  otlpRate: 'ESCAI_OTLP_RATE',
  otlpBurst: 'ESCAI_OTLP_BURST',
  otlpCaptureContent: 'ESCAI_OTLP_CAPTURE_CONTENT',
  detectors: 'ESCAI_DETECTORS',
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads ESCAI_* variables into setting values (strings; the schema coerces). JSON for `roles` and `detectors`. */
export function configFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [setting, name] of Object.entries(ENV_NAMES)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    if (JSON_SETTINGS.has(setting)) {
      try {
        out[setting] = JSON.parse(raw);
      } catch {
        throw new ConfigError(`Invalid setting ${setting} (${name}): not valid JSON`);
      }
    } else out[setting] = raw;
  }
  return out;
}

export function configFromFile(path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`Cannot read config file ${path}: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`Config file ${path} must hold a JSON object`);
  }
  const unknown = Object.keys(parsed).filter((k) => !Object.hasOwn(ENV_NAMES, k));
  if (unknown.length > 0) throw new ConfigError(`Config file ${path}: unknown setting(s) ${unknown.join(', ')}`);
  return parsed as Record<string, unknown>;
}

/**
 * Validates merged settings (later sources win) and freezes the result.
 * Throws ConfigError naming the first bad setting and its variable.
 */
export function resolveConfig(...sources: Array<Record<string, unknown>>): Config {
  const merged: Record<string, unknown> = {};
  for (const source of sources) for (const [k, v] of Object.entries(source)) if (v !== undefined) merged[k] = v;
  const result = ConfigSchema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const setting = String(issue.path[0] ?? '');
    const env = Object.hasOwn(ENV_NAMES, setting) ? ` (${ENV_NAMES[setting as SettingName]})` : '';
    throw new ConfigError(`Invalid setting ${issue.path.join('.') || setting}${env}: ${issue.message}`);
  }
  const config = result.data;
  if (config.jwtPreviousSecret && !config.jwtPreviousSecretUntil) {
    throw new ConfigError(
      'Invalid setting jwtPreviousSecretUntil (ESCAI_JWT_PREVIOUS_SECRET_UNTIL): required with jwtPreviousSecret (when the old secret stops verifying)',
    );
  }
  const roles = Object.fromEntries(Object.entries({ ...DEFAULT_ROLES, ...config.roles }).map(([role, perms]) => [role, Object.freeze([...perms])]));
  return Object.freeze({
    ...config,
    allowedOrigins: Object.freeze([...config.allowedOrigins]),
    corsOrigins: Object.freeze([...config.corsOrigins]),
    trustProxy: Array.isArray(config.trustProxy) ? Object.freeze([...config.trustProxy]) : config.trustProxy,
    roles: Object.freeze(roles),
  }) as Config;
}
