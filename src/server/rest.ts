// HTTP routes: ESCAI's /ws/health, /ws/connections, /ws/broadcast/test, the
// publish API, and probes. Every refusal is {"error":{"code","message"}}.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { tokenFromRequest, type TokenVerifier } from '../auth/jwt.js';
import { Permissions, type Principal } from '../auth/permissions.js';
import { EscaiError, httpErrorBody } from '../protocol/codes.js';
import { IdSchema } from '../protocol/events.js';
import { describeZodError, isoNow } from '../protocol/messages.js';
import { z } from 'zod';

const HistoryQuerySchema = z.object({
  since: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
import { publishedRef } from './handlers.js';
import { describeSubscription, type RealtimeNode } from './node.js';
import { validateEvents } from './publish.js';
import type { UpgradeGate } from './upgrade.js';

export interface RestContext {
  node: RealtimeNode;
  verifier: TokenVerifier;
  gate: UpgradeGate;
}

/** Verifies the request's Bearer token and checks one permission: 401 / 403 otherwise. */
async function authorize(verifier: TokenVerifier, req: FastifyRequest, permission: string): Promise<Principal> {
  const token = tokenFromRequest(req.headers.authorization, undefined);
  if (!token) throw new EscaiError('TOKEN_MISSING', 'Authorization: Bearer <token> is required');
  const principal = await verifier.verify(token);
  if (!principal.has(permission)) throw new EscaiError('PERMISSION_DENIED', `Missing permission ${permission}`);
  return principal;
}

function sendError(reply: FastifyReply, err: EscaiError): FastifyReply {
  return reply.code(err.status).send(httpErrorBody(err.code, err.message));
}

export function registerRoutes(app: FastifyInstance, { node, verifier, gate }: RestContext): void {
  app.setErrorHandler((err, req, reply) => {
    if (err instanceof EscaiError) return sendError(reply, err);
    const e = err as { code?: string; statusCode?: number; message?: string };
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, new EscaiError('PAYLOAD_TOO_LARGE', `Body exceeds ${node.config.maxBodyBytes} bytes`));
    if (e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (e.statusCode === 400 && err instanceof SyntaxError)) {
      return sendError(reply, new EscaiError('INVALID_JSON', 'Body is not valid JSON'));
    }
    if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) {
      return sendError(reply, new EscaiError('BAD_REQUEST', e.message ?? 'Bad request'));
    }
    req.log.error({ err }, 'request failed');
    return sendError(reply, new EscaiError('INTERNAL_ERROR', 'Internal error'));
  });
  app.setNotFoundHandler((_req, reply) => sendError(reply, new EscaiError('NOT_FOUND', 'No such route')));

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    if (gate.closed) return reply.code(503).send({ status: 'not_ready', engine: node.engineName, reason: 'shutting down' });
    const engine = node.broker.status();
    if (!engine.ready) return reply.code(503).send({ status: 'not_ready', engine: node.engineName, reason: engine.reason });
    return { status: 'ready', engine: node.engineName, node_id: node.broker.nodeId };
  });

  app.get('/ws/health', async () => node.clusterHealth());

  app.get('/metrics', async (_req, reply) => {
    const registry = node.metrics?.registry;
    if (!registry) throw new EscaiError('NOT_FOUND', 'Metrics are not enabled');
    return reply.type(registry.contentType).send(await registry.metrics());
  });

  app.get('/ws/connections', async (req) => {
    await authorize(verifier, req, Permissions.ADMIN);
    const local = [...node.connections.values()].map((conn) => ({
      connection_id: conn.id,
      node_id: node.broker.nodeId,
      user_id: conn.userId,
      session_id: conn.sessionId,
      connected_at: conn.connectedAt.toISOString(),
      last_ping: conn.lastPing,
      is_alive: conn.isOpen,
      subscriptions: [...conn.subscriptions.values()].map(describeSubscription),
    }));
    // Other nodes' connections as they registered them (liveness fields are theirs to know).
    const remote = (await node.broker.remoteConnections().catch(() => [])).map((c) => ({ ...c, last_ping: null, is_alive: true }));
    const connections = [...local, ...remote];
    return { connections, total: connections.length, timestamp: isoNow() };
  });

  app.post('/ws/broadcast/test', async (req) => {
    await authorize(verifier, req, Permissions.ADMIN);
    const query = req.query as Record<string, unknown>;
    const message = typeof query['message'] === 'string' ? query['message'] : 'Test broadcast';
    const messageType = typeof query['message_type'] === 'string' && query['message_type'] ? query['message_type'] : 'test';
    const agentId = typeof query['agent_id'] === 'string' && query['agent_id'] ? query['agent_id'] : undefined;
    if (agentId !== undefined && !IdSchema.safeParse(agentId).success) throw new EscaiError('VALIDATION_ERROR', 'agent_id: invalid agent id');
    const input = agentId
      ? { type: 'agent_status_change', agent_id: agentId, status: 'test', metadata: { message, message_type: messageType } }
      : { type: 'system_alert', alert_type: messageType, message, severity: 'info', metadata: {} };
    const [result] = await node.publish(validateEvents(input, 1));
    return { message: 'Broadcast sent', recipients: result!.recipients, event_id: result!.event_id, timestamp: isoNow() };
  });

  app.get('/api/v1/agents/:agent_id/events', async (req) => {
    const { agent_id: agentId } = req.params as { agent_id: string };
    if (!IdSchema.safeParse(agentId).success) throw new EscaiError('VALIDATION_ERROR', 'agent_id: invalid agent id');
    const principal = await authorize(verifier, req, Permissions.CONNECT);
    if (!principal.canMonitor(agentId)) throw new EscaiError('AGENT_ACCESS_DENIED', `No permission to monitor agent ${agentId}`);
    const query = HistoryQuerySchema.safeParse(req.query);
    if (!query.success) throw new EscaiError('VALIDATION_ERROR', describeZodError(query.error));
    const page = await node.broker.history(`agent:${agentId}`, query.data);
    return { agent_id: agentId, events: page.events, offset: page.position.offset, epoch: page.position.epoch, complete: page.complete };
  });

  app.post('/api/v1/events', async (req, reply) => {
    await authorize(verifier, req, Permissions.PUBLISH);
    const events = validateEvents(req.body, node.config.maxBatchEvents);
    const results = await node.publish(events);
    return reply.code(202).send({ accepted: results.length, events: results.map(publishedRef) });
  });
}
