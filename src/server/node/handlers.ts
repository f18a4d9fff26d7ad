// Inbound messages, decoded on arrival (./decode.ts): dispatch to the handler
// of each client message type, and turn every failure into an error frame. Nothing here
// throws to the socket: a bad message gets a clear error and the connection
// (and every other one) carries on.
import type { Logger } from 'pino';
import { Permissions } from '../../auth/permissions.js';
import { EscaiError } from '../../protocol/codes.js';
import type { ClientMessageType, SubscribeData, UnsubscribeData } from '../../protocol/messages.js';
import { ServerMessages, type ControlMessage, type RequestId } from '../../protocol/server-messages.js';
import type { Connection } from '../connection/connection.js';
import type { Decoded } from '../connection/decode.js';
import { catalogued } from './errors.js';
import type { HealthViews } from '../http/health.js';
import { publishedRef, type Publisher, type PublishResult } from '../delivery/publisher.js';
import type { SubscriptionManager } from '../delivery/subscription-manager.js';
import type { TokenLifetime } from './token-lifetime.js';

/** What message handlers may use: each job's owner, nothing more. */
export interface HandlerContext {
  subscriptions: SubscriptionManager;
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
  publish(ctx, conn, data, id) {
    // Pipelined: the engine call is issued now, in arrival order, and the reply follows the earlier ones
    // (Connection.pipelinePublish); the connection's next message does not wait for this one's round trip.
    let work: Promise<PublishResult[]>;
    try {
      if (!conn.principal.has(Permissions.PUBLISH)) throw new EscaiError('PERMISSION_DENIED', 'publish needs events:publish');
      work = ctx.publisher.publishInput(data);
    } catch (err) {
      work = Promise.reject(err);
    }
    return conn.pipelinePublish(
      work.then(
        (results) => ServerMessages.publishConfirmed(results.map(publishedRef), id),
        (err: unknown) => errorMessage(ctx, conn, 'publish', err, id),
      ),
    );
  },
};

/** The error frame for a failed request: the catalogue's code, or INTERNAL_ERROR (logged). */
function errorMessage(ctx: HandlerContext, conn: Connection, type: ClientMessageType, err: unknown, id: RequestId | undefined): ControlMessage {
  const known = catalogued(err);
  if (known) return ServerMessages.error(known.code, known.message, id);
  ctx.log.error({ err, connectionId: conn.id, messageType: type }, 'message handler failed');
  return ServerMessages.error('INTERNAL_ERROR', 'Internal error while handling the message', id);
}

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
    conn.sendMessage(errorMessage(ctx, conn, type, err, id));
  }
}
