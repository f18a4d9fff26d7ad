// Inbound messages: parse, validate, dispatch to the handler of each client
// message type, and turn every failure into an error frame. Nothing here
// throws to the socket: a bad message gets a clear error and the connection
// (and every other one) carries on.
import type { RawData } from 'ws';
import type { Logger } from 'pino';
import { Permissions } from '../auth/permissions.js';
import { EscaiError, type ErrorCode } from '../protocol/codes.js';
import {
  ClientMessageData,
  describeZodError,
  isClientMessageType,
  RequestIdSchema,
  type ClientMessageType,
  type SubscribeData,
  type UnsubscribeData,
} from '../protocol/messages.js';
import { ServerMessages, type RequestId } from '../protocol/server-messages.js';
import type { Connection } from './connection.js';
import { catalogued } from './errors.js';
import type { HealthViews } from './health.js';
import { publishedRef, type Publisher } from './publisher.js';
import type { Subscriptions } from './subscribe.js';
import type { TokenLifetime } from './token-lifetime.js';

/** What message handlers may use: each job's owner, nothing more. */
export interface HandlerContext {
  subscriptions: Subscriptions;
  tokens: Pick<TokenLifetime, 'refresh'>;
  publisher: Pick<Publisher, 'publishInput'>;
  health: Pick<HealthViews, 'cluster'>;
  log: Logger;
}

type Handler = (ctx: HandlerContext, conn: Connection, data: unknown, id: RequestId | undefined) => void | Promise<void>;

const handlers: Record<ClientMessageType, Handler> = {
  subscribe(ctx, conn, data, id) {
    return ctx.subscriptions.subscribe(conn, data as SubscribeData, id);
  },
  unsubscribe(ctx, conn, data, id) {
    const { subscription_type, agent_id } = data as UnsubscribeData;
    ctx.subscriptions.unsubscribe(conn, data as UnsubscribeData);
    conn.sendMessage(ServerMessages.unsubscriptionConfirmed(subscription_type, agent_id ?? null, id));
  },
  ping(_ctx, conn, _data, id) {
    conn.sendMessage(ServerMessages.pong(id));
  },
  pong() {
    // Liveness was recorded when the frame arrived.
  },
  get_subscriptions(ctx, conn, _data, id) {
    conn.sendMessage(ServerMessages.subscriptionsList(ctx.subscriptions.describe(conn), id));
  },
  async get_stats(ctx, conn, _data, id) {
    if (!conn.principal.has(Permissions.ADMIN)) throw new EscaiError('PERMISSION_DENIED', 'get_stats needs websocket:admin');
    const { timestamp: _t, ...stats } = await ctx.health.cluster();
    conn.sendMessage(ServerMessages.stats(stats, id));
  },
  auth() {
    throw new EscaiError('VALIDATION_ERROR', 'type: this connection is authenticated already; renew its token with refresh');
  },
  refresh(ctx, conn, data, id) {
    return ctx.tokens.refresh(conn, (data as { token: string }).token, id);
  },
  async publish(ctx, conn, data, id) {
    if (!conn.principal.has(Permissions.PUBLISH)) throw new EscaiError('PERMISSION_DENIED', 'publish needs events:publish');
    const results = await ctx.publisher.publishInput(data);
    conn.sendMessage(ServerMessages.publishConfirmed(results.map(publishedRef), id));
  },
};

function decode(raw: RawData): string {
  if (Buffer.isBuffer(raw)) return raw.toString('utf8');
  return Buffer.concat(Array.isArray(raw) ? raw : [Buffer.from(raw)]).toString('utf8');
}

/** A decoded client message, or the error frame to answer instead. */
export type Decoded =
  | { ok: true; type: ClientMessageType; data: unknown; id: RequestId | undefined }
  | { ok: false; code: ErrorCode; message: string; id: RequestId | undefined };

/**
 * Parses and validates one message's text: JSON, an object, an `id`, a
 * known `type`, its `data` schema. Never throws: whatever the text, the
 * answer is a message to handle or a catalogued error to send.
 */
export function decodeMessage(text: string): Decoded {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return { ok: false, code: 'INVALID_JSON', message: 'Message is not valid JSON', id: undefined };
  }
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    return { ok: false, code: 'VALIDATION_ERROR', message: 'Message must be a JSON object {"type": ..., "data": ...}', id: undefined };
  }
  const { type, data, id: rawId } = message as { type?: unknown; data?: unknown; id?: unknown };
  const idResult = rawId === undefined ? undefined : RequestIdSchema.safeParse(rawId);
  if (idResult && !idResult.success) return { ok: false, code: 'VALIDATION_ERROR', message: 'id: must be a string (≤128 chars) or a number', id: undefined };
  const id = idResult?.data;
  if (typeof type !== 'string') return { ok: false, code: 'VALIDATION_ERROR', message: 'type: required, must be a string', id };
  if (!isClientMessageType(type)) return { ok: false, code: 'UNKNOWN_MESSAGE_TYPE', message: `Unknown message type: ${type.slice(0, 64)}`, id };
  const parsed = ClientMessageData[type].safeParse(data);
  if (!parsed.success) return { ok: false, code: 'VALIDATION_ERROR', message: describeZodError(parsed.error, 'data'), id };
  return { ok: true, type, data: parsed.data, id };
}

/** Handles one inbound message; never rejects. */
export async function handleMessage(ctx: HandlerContext, conn: Connection, raw: RawData): Promise<void> {
  const decoded = decodeMessage(decode(raw));
  if (!decoded.ok) {
    conn.sendError(decoded.code, decoded.message, decoded.id);
    return;
  }
  const { type, data, id } = decoded;
  try {
    await handlers[type](ctx, conn, data, id);
  } catch (err) {
    const known = catalogued(err);
    if (known) conn.sendError(known.code, known.message, id);
    else {
      ctx.log.error({ err, connectionId: conn.id, messageType: type }, 'message handler failed');
      conn.sendError('INTERNAL_ERROR', 'Internal error while handling the message', id);
    }
  }
}
