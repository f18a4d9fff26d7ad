// Inbound messages, decoded on arrival (./decode.ts): dispatch to the handler
// of each client message type, and turn every failure into an error frame. Nothing here
// throws to the socket: a bad message gets a clear error and the connection
// (and every other one) carries on.
import type { Logger } from 'pino';
import { Permissions } from '../auth/permissions.js';
import { EscaiError } from '../protocol/codes.js';
import type { ClientMessageType, SubscribeData, UnsubscribeData } from '../protocol/messages.js';
import { ServerMessages, type RequestId } from '../protocol/server-messages.js';
import type { Connection } from './connection.js';
import type { Decoded } from './decode.js';
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

/** Handles one inbound message; never rejects. */
export async function handleMessage(ctx: HandlerContext, conn: Connection, decoded: Decoded): Promise<void> {
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
