// The one error catalogue: every error code the server can send, on the socket
// or over HTTP, with its HTTP status and whether a client should retry.
// docs/PROTOCOL.md documents each entry; test/codes.test.ts checks that it does.

export const ErrorCodes = {
  // ESCAI protocol codes (sent in {"type":"error"} frames).
  INVALID_JSON: { status: 400, retry: false, description: 'The frame is not valid JSON text.' },
  INTERNAL_ERROR: { status: 500, retry: true, description: 'The server failed while handling the message; nothing was applied.' },
  PERMISSION_DENIED: { status: 403, retry: false, description: 'The token lacks the permission this action needs.' },
  AGENT_ACCESS_DENIED: { status: 403, retry: false, description: 'The token may not monitor this agent (needs agent:{id}:monitor or agent:*:monitor).' },
  SUBSCRIPTION_EXISTS: { status: 409, retry: false, description: 'This connection already holds a subscription with that type and agent.' },
  VALIDATION_ERROR: { status: 400, retry: false, description: 'The message or event does not match its schema; the message names the field.' },
  SUBSCRIPTION_NOT_FOUND: { status: 404, retry: false, description: 'No subscription with that type and agent exists on this connection.' },
  UNKNOWN_MESSAGE_TYPE: { status: 400, retry: false, description: 'The message type is not one the server knows.' },
  // Codes this server adds.
  RATE_LIMITED: {
    status: 429,
    retry: true,
    description: 'Too many messages; the message was dropped. Slow down (the connection closes with 1008 if it goes on).',
  },
  TOO_MANY_SUBSCRIPTIONS: { status: 409, retry: false, description: 'The connection holds the maximum number of subscriptions.' },
  TOKEN_MISSING: { status: 401, retry: false, description: 'No token in ?token= or Authorization: Bearer.' },
  TOKEN_INVALID: { status: 401, retry: false, description: 'The token is malformed, badly signed, uses another algorithm, or fails iss/aud checks.' },
  TOKEN_EXPIRED: { status: 401, retry: false, description: 'The token is past its exp (beyond the clock tolerance). Get a new token.' },
  TOKEN_NOT_YET_VALID: { status: 401, retry: true, description: 'The token is before its nbf. Check clocks, or retry later.' },
  ORIGIN_NOT_ALLOWED: { status: 403, retry: false, description: 'The Origin header is not in ESCAI_ALLOWED_ORIGINS.' },
  SERVER_AT_CAPACITY: { status: 503, retry: true, description: 'The server holds its maximum number of connections; retry after Retry-After seconds.' },
  SHUTTING_DOWN: { status: 503, retry: true, description: 'The server is shutting down; retry, ideally against another node.' },
  ENGINE_UNAVAILABLE: {
    status: 503,
    retry: true,
    description:
      'The engine (Redis) is unreachable. Refused before Redis was reached, nothing was accepted; if the connection dropped mid-request the event may have been accepted: retry with the same idempotency_key.',
  },
  USER_CONNECTION_LIMIT: { status: 429, retry: true, description: 'The user holds the maximum number of connections across the cluster.' },
  IP_CONNECTION_LIMIT: {
    status: 429,
    retry: true,
    description: 'This address holds the maximum number of connections on the node, or opens them too fast; retry after Retry-After seconds.',
  },
  UNSUPPORTED_WEBSOCKET_VERSION: {
    status: 426,
    retry: false,
    description: 'The handshake asks for a WebSocket version the server does not speak; the Sec-WebSocket-Version header lists the ones it does (13, 8).',
  },
  NOT_FOUND: { status: 404, retry: false, description: 'No such route.' },
  AGENT_NOT_FOUND: { status: 404, retry: false, description: 'No event of this agent was published within the agent TTL (or ever).' },
  CONNECTION_NOT_FOUND: { status: 404, retry: false, description: 'No live connection with that id on any node.' },
  BAD_REQUEST: { status: 400, retry: false, description: 'The HTTP request is malformed (bad session id, bad body).' },
  PAYLOAD_TOO_LARGE: { status: 413, retry: false, description: 'The HTTP body exceeds the limit.' },
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

/** WebSocket close codes the server uses, and what a client should do. */
export const CloseCodes = {
  NORMAL: { code: 1000, reconnect: false, description: 'Closed normally.' },
  GOING_AWAY: { code: 1001, reconnect: true, description: 'Server shutting down; reconnect (with backoff) to any node.' },
  POLICY_VIOLATION: { code: 1008, reconnect: true, description: 'Inbound rate limit exceeded repeatedly; reconnect after a pause and send less.' },
  MESSAGE_TOO_BIG: { code: 1009, reconnect: true, description: 'An inbound frame exceeded the maximum message size; do not resend it.' },
  INTERNAL_ERROR: { code: 1011, reconnect: true, description: 'Unexpected server error; reconnect with backoff.' },
  TOKEN_EXPIRED: { code: 4001, reconnect: true, description: 'The token expired without a valid refresh; reconnect with a new token.' },
  FORBIDDEN: { code: 4003, reconnect: false, description: 'A refresh carried another user (sub) or lost websocket:connect; do not reconnect with it.' },
  SLOW_CONSUMER: {
    code: 4008,
    reconnect: true,
    description: 'The client read too slowly and its send buffer passed the cap; reconnect (the session resumes).',
  },
  CLOSED_BY_ADMIN: { code: 4010, reconnect: false, description: 'An administrator closed the connection; do not reconnect automatically.' },
  // 44xx: first-message auth (`?auth=message`) refused the socket after the 101, where an HTTP status can no longer
  // answer. One code per refusal, naming the catalogue error the same refusal gets before the 101 (`error`); the
  // tens digit is its kind: 440x the token (HTTP 401), 441x permission (403), 442x a limit (429), 443x the server (5xx).
  AUTH_TOKEN_MISSING: {
    code: 4400,
    error: 'TOKEN_MISSING',
    reconnect: false,
    description: 'First-message auth: no auth message within the auth timeout, or the first message was not {"type":"auth","data":{"token":"..."}}.',
  },
  AUTH_TOKEN_INVALID: {
    code: 4401,
    error: 'TOKEN_INVALID',
    reconnect: false,
    description: 'First-message auth: the token is malformed, badly signed, or fails iss/aud checks; do not retry with it.',
  },
  AUTH_TOKEN_EXPIRED: {
    code: 4402,
    error: 'TOKEN_EXPIRED',
    reconnect: true,
    description: 'First-message auth: the token is past its exp; reconnect only with a new token.',
  },
  AUTH_TOKEN_NOT_YET_VALID: {
    code: 4403,
    error: 'TOKEN_NOT_YET_VALID',
    reconnect: true,
    description: 'First-message auth: the token is before its nbf; check clocks, retry later.',
  },
  AUTH_PERMISSION_DENIED: {
    code: 4410,
    error: 'PERMISSION_DENIED',
    reconnect: false,
    description: 'First-message auth: the token lacks websocket:connect.',
  },
  AUTH_USER_CONNECTION_LIMIT: {
    code: 4420,
    error: 'USER_CONNECTION_LIMIT',
    reconnect: true,
    description: 'First-message auth: the user holds the maximum number of connections across the cluster; retry with backoff.',
  },
  AUTH_SHUTTING_DOWN: {
    code: 4430,
    error: 'SHUTTING_DOWN',
    reconnect: true,
    description: 'First-message auth: the server is shutting down; reconnect with backoff, ideally to another node.',
  },
  AUTH_ENGINE_UNAVAILABLE: {
    code: 4431,
    error: 'ENGINE_UNAVAILABLE',
    reconnect: true,
    description: 'First-message auth: the engine (Redis) is unreachable; reconnect with backoff.',
  },
  AUTH_INTERNAL_ERROR: {
    code: 4432,
    error: 'INTERNAL_ERROR',
    reconnect: true,
    description: 'First-message auth: the server failed while setting the connection up; reconnect with backoff.',
  },
} as const satisfies Record<string, { code: number; reconnect: boolean; description: string; error?: ErrorCode }>;

export type CloseCode = keyof typeof CloseCodes;

/**
 * The close code first-message auth refuses with for catalogue error `code`
 * (its 44xx entry); an error without one counts as the server's failure.
 */
export function authRefusalClose(code: ErrorCode): CloseCode {
  for (const [name, entry] of Object.entries(CloseCodes)) if ('error' in entry && entry.error === code) return name as CloseCode;
  return 'AUTH_INTERNAL_ERROR';
}

/** An error with a catalogue code, thrown inside the server and turned into a frame or HTTP reply. */
export class EscaiError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'EscaiError';
    this.code = code;
    this.details = details;
  }
  get status(): number {
    return ErrorCodes[this.code].status;
  }
}

/** The JSON body of every refused HTTP request: {"error":{"code","message"}}. */
export function httpErrorBody(code: ErrorCode, message: string, details?: unknown): { error: { code: ErrorCode; message: string; details?: unknown } } {
  return details === undefined ? { error: { code, message } } : { error: { code, message, details } };
}

/** Whether a client should reconnect after the server closed with `code` (unknown codes: yes, with backoff). */
export function closeAllowsReconnect(code: number): boolean {
  for (const entry of Object.values(CloseCodes)) if (entry.code === code) return entry.reconnect;
  return true;
}

/** Whether a request refused with `code` may succeed if sent again later (unknown codes: no). */
export function errorIsRetryable(code: string): boolean {
  return Object.hasOwn(ErrorCodes, code) && ErrorCodes[code as ErrorCode].retry;
}
