// Inbound frames: parse, validate, dispatch to the handler of each client
// message type, and turn every failure into an error frame. Nothing here
// throws to the socket: a bad message gets a clear error and the connection
// (and every other one) carries on.
import { Permissions } from '../auth/permissions.js';
import { EscaiError } from '../protocol/codes.js';
import {
  ClientMessageData,
  describeZodError,
  isClientMessageType,
  isoNow,
  RequestIdSchema,
  type ClientMessageType,
  type SubscribeData,
  type UnsubscribeData,
} from '../protocol/messages.js';
import type { Connection, RequestId } from './connection.js';
import { describeSubscription, reply, type RealtimeNode } from './node.js';
import { validateEvents } from './publish.js';

type Handler = (node: RealtimeNode, conn: Connection, data: unknown, id: RequestId) => void | Promise<void>;

function send(conn: Connection, type: string, data: unknown, id: RequestId): void {
  conn.sendJson(reply(type, data, id));
}

const handlers: Record<ClientMessageType, Handler> = {
  subscribe(node, conn, data, id) {
    return node.subscribe(conn, data as SubscribeData, id);
  },
  unsubscribe(node, conn, data, id) {
    const { subscription_type, agent_id } = data as UnsubscribeData;
    node.unsubscribe(conn, data as UnsubscribeData);
    send(conn, 'unsubscription_confirmed', { subscription_type, agent_id: agent_id ?? null }, id);
  },
  ping(_node, conn, _data, id) {
    conn.sendJson(id === undefined ? { type: 'pong', timestamp: isoNow() } : { type: 'pong', timestamp: isoNow(), id });
  },
  pong() {
    // Liveness was recorded when the frame arrived.
  },
  get_subscriptions(_node, conn, _data, id) {
    send(conn, 'subscriptions_list', { subscriptions: [...conn.subscriptions.values()].map(describeSubscription) }, id);
  },
  async get_stats(node, conn, _data, id) {
    if (!conn.principal.has(Permissions.ADMIN)) throw new EscaiError('PERMISSION_DENIED', 'get_stats needs websocket:admin');
    const { timestamp: _t, ...stats } = await node.clusterHealth();
    send(conn, 'stats', stats, id);
  },
  refresh(node, conn, data, id) {
    return node.refresh(conn, (data as { token: string }).token, id);
  },
  async publish(node, conn, data, id) {
    if (!conn.principal.has(Permissions.PUBLISH)) throw new EscaiError('PERMISSION_DENIED', 'publish needs events:publish');
    const events = validateEvents(data, node.config.maxBatchEvents);
    const results = await node.publish(events);
    send(conn, 'publish_confirmed', { accepted: results.length, events: results.map(publishedRef) }, id);
  },
};

export function publishedRef(r: { event_id: string; offset: number; epoch: string; duplicate: boolean }) {
  return r.duplicate ? { event_id: r.event_id, offset: r.offset, epoch: r.epoch, duplicate: true } : { event_id: r.event_id, offset: r.offset, epoch: r.epoch };
}

/**
 * Accepts one inbound frame: counts it against the rate budget at once, then
 * queues it behind the connection's earlier messages, so replies keep order.
 */
export function receiveFrame(node: RealtimeNode, conn: Connection, raw: Buffer | ArrayBuffer | Buffer[]): void {
  if (!conn.admitInbound()) return;
  // Bounded: a client whose requests pile up faster than they are handled is cut off, not buffered without end.
  if (conn.pendingInbound >= MAX_PENDING_INBOUND) {
    conn.close('POLICY_VIOLATION', 'too many requests in flight');
    return;
  }
  conn.pendingInbound++;
  conn.inbound = conn.inbound.then(() => handleFrame(node, conn, raw)).finally(() => conn.pendingInbound--);
}

/** Inbound messages one connection may have waiting to be handled. */
export const MAX_PENDING_INBOUND = 256;

/** Handles one inbound frame; never rejects. */
async function handleFrame(node: RealtimeNode, conn: Connection, raw: Buffer | ArrayBuffer | Buffer[]): Promise<void> {
  if (!conn.isOpen) return;
  let message: unknown;
  try {
    message = JSON.parse(Buffer.isBuffer(raw) ? raw.toString('utf8') : Buffer.concat(Array.isArray(raw) ? raw : [Buffer.from(raw)]).toString('utf8'));
  } catch {
    conn.sendError('INVALID_JSON', 'Message is not valid JSON');
    return;
  }
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    conn.sendError('VALIDATION_ERROR', 'Message must be a JSON object {"type": ..., "data": ...}');
    return;
  }
  const { type, data, id: rawId } = message as { type?: unknown; data?: unknown; id?: unknown };
  const idResult = rawId === undefined ? undefined : RequestIdSchema.safeParse(rawId);
  if (idResult && !idResult.success) {
    conn.sendError('VALIDATION_ERROR', 'id: must be a string (≤128 chars) or a number');
    return;
  }
  const id = idResult?.data;
  if (typeof type !== 'string') {
    conn.sendError('VALIDATION_ERROR', 'type: required, must be a string', id);
    return;
  }
  if (!isClientMessageType(type)) {
    conn.sendError('UNKNOWN_MESSAGE_TYPE', `Unknown message type: ${type.slice(0, 64)}`, id);
    return;
  }
  const parsed = ClientMessageData[type].safeParse(data);
  if (!parsed.success) {
    conn.sendError('VALIDATION_ERROR', describeZodError(parsed.error, 'data'), id);
    return;
  }
  try {
    await handlers[type](node, conn, parsed.data, id);
  } catch (err) {
    if (err instanceof EscaiError) conn.sendError(err.code, err.message, id);
    else {
      node.log.error({ err, connectionId: conn.id, messageType: type }, 'message handler failed');
      conn.sendError('INTERNAL_ERROR', 'Internal error while handling the message', id);
    }
  }
}
