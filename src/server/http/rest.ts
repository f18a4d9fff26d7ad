// HTTP routes: ESCAI's /ws/health, /ws/connections, /ws/broadcast/test, the
// publish API, history, metrics and probes. Every refusal is {"error":{"code","message"}}.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { tokenFromRequest, type TokenVerifier } from '../../auth/jwt.js';
import { Permissions, type Principal } from '../../auth/permissions.js';
import type { Config } from '../../config/config.js';
import type { Engine } from '../../engine/engine.js';
import { EscaiError, httpErrorBody } from '../../protocol/codes.js';
import { activityStream, agentStream } from '../../protocol/constants.js';
import { IdSchema } from '../../protocol/events.js';
import { describeZodError } from '../../protocol/messages.js';
import { isoNow } from '../../protocol/server-messages.js';
import { catalogued } from '../node/errors.js';
import { HEALTH_HISTORY_S, type HealthViews } from './health.js';
import { scrape, type Metrics } from './metrics.js';
import { publishedRef, type Publisher } from '../delivery/publisher.js';
import { summarize, type ConnectionRegistry } from '../node/registry.js';
import type { SubscriptionManager } from '../delivery/subscription-manager.js';

/**
 * An offset in a query string: decimal digits only. (z.coerce reads `since=`
 * and `since=%20` as 0, a silent replay from the start, and `0x10` as 16.)
 */
const offsetParam = z
  .string()
  .regex(/^\d{1,15}$/, 'must be an offset (a whole number, in decimal digits)')
  .transform(Number);

const HistoryQuerySchema = z
  .object({
    since: offsetParam.optional(),
    order: z.enum(['asc', 'desc']).default('asc'),
    before: offsetParam.pipe(z.number().min(1)).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .refine((q) => q.order === 'desc' || q.before === undefined, { message: 'before needs order=desc', path: ['before'] })
  .refine((q) => q.order === 'asc' || q.since === undefined, { message: 'since needs order=asc', path: ['since'] });

const HealthHistoryQuerySchema = z.object({ seconds: z.coerce.number().int().min(1).max(HEALTH_HISTORY_S).default(HEALTH_HISTORY_S) });

const AgentListQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: z.string().min(1).max(512).optional(),
});

export interface RestDeps {
  config: Pick<Config, 'maxBodyBytes' | 'metricsPort' | 'metricsToken'>;
  verifier: TokenVerifier;
  engine: Pick<Engine, 'name' | 'nodeId' | 'status' | 'broker' | 'presence' | 'agents'>;
  /** Whether the node refuses new work (shutting down). */
  closing(): boolean;
  health: HealthViews;
  publisher: Publisher;
  registry: ConnectionRegistry;
  subscriptions: Pick<SubscriptionManager, 'describe'>;
  metrics: Metrics;
  /** Forgets a removed agent's detector state on this node. */
  forgetAgent(agentId: string): void;
}

/** Verifies the request's Bearer token and checks one permission: 401 / 403 otherwise. */
export async function authorize(verifier: TokenVerifier, req: FastifyRequest, permission: string): Promise<Principal> {
  const token = tokenFromRequest(req.headers.authorization, undefined);
  if (!token) throw new EscaiError('TOKEN_MISSING', 'Authorization: Bearer <token> is required');
  const principal = await verifier.verify(token);
  if (!principal.has(permission)) throw new EscaiError('PERMISSION_DENIED', `Missing permission ${permission}`);
  return principal;
}

function sendError(reply: FastifyReply, err: EscaiError): FastifyReply {
  return reply.code(err.status).send(httpErrorBody(err.code, err.message));
}

export function registerRoutes(app: FastifyInstance, deps: RestDeps): void {
  const { config, verifier, engine, health, publisher, registry, subscriptions, metrics } = deps;
  app.setErrorHandler((err, req, reply) => {
    const known = catalogued(err);
    if (known) return sendError(reply, known);
    const e = err as { code?: string; statusCode?: number; message?: string };
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, new EscaiError('PAYLOAD_TOO_LARGE', `Body exceeds ${config.maxBodyBytes} bytes`));
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
    if (deps.closing()) return reply.code(503).send({ status: 'not_ready', engine: engine.name, reason: 'shutting down' });
    const status = engine.status();
    if (!status.ready) return reply.code(503).send({ status: 'not_ready', engine: engine.name, reason: status.reason });
    return { status: 'ready', engine: engine.name, node_id: engine.nodeId };
  });

  app.get('/ws/health', async () => health.cluster());

  // The last minutes of /ws/health (open like it): the console's System view draws them when it opens.
  app.get('/ws/health/history', async (req) => health.history(parse(HealthHistoryQuerySchema, req.query).seconds));

  if (config.metricsPort === undefined) {
    app.get('/metrics', async (req, reply) => {
      const answer = await scrape(metrics, config.metricsToken, req.headers.authorization);
      return reply.code(answer.status).type(answer.type).send(answer.body);
    });
  }

  app.get('/ws/connections', async (req) => {
    await authorize(verifier, req, Permissions.ADMIN);
    const local = [...registry.values()].map((conn) => ({
      ...summarize(conn, engine.nodeId, subscriptions.describe(conn)),
      last_ping: conn.lastPing,
      is_alive: conn.isOpen,
    }));
    // Other nodes' connections as they registered them (liveness fields are theirs to know).
    const remote = (await engine.presence.remoteConnections().catch(() => [])).map((c) => ({ ...c, last_ping: null, is_alive: true }));
    const connections = [...local, ...remote];
    return { connections, total: connections.length, timestamp: isoNow() };
  });

  app.delete('/ws/connections/:connection_id', async (req, reply) => {
    await authorize(verifier, req, Permissions.ADMIN);
    const { connection_id: connectionId } = req.params as { connection_id: string };
    const local = registry.get(connectionId);
    if (local) {
      local.close('CLOSED_BY_ADMIN', 'closed by an administrator');
      return reply.code(202).send({ closing: connectionId, node_id: engine.nodeId });
    }
    const remote = (await engine.presence.remoteConnections()).find((c) => c.connection_id === connectionId);
    if (!remote) throw new EscaiError('CONNECTION_NOT_FOUND', `No live connection ${connectionId.slice(0, 64)}`);
    await engine.presence.requestClose(remote.node_id, connectionId);
    return reply.code(202).send({ closing: connectionId, node_id: remote.node_id });
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
    const [result] = await publisher.publishInput(input, 1, { countRecipients: true });
    return { message: 'Broadcast sent', recipients: result!.recipients, event_id: result!.event_id, timestamp: isoNow() };
  });

  /** The agent of the route, checked: a valid id the caller may monitor. */
  async function agentOf(req: FastifyRequest): Promise<string> {
    const { agent_id: agentId } = req.params as { agent_id: string };
    if (!IdSchema.safeParse(agentId).success) throw new EscaiError('VALIDATION_ERROR', 'agent_id: invalid agent id');
    const principal = await authorize(verifier, req, Permissions.CONNECT);
    if (!principal.canMonitor(agentId)) throw new EscaiError('AGENT_ACCESS_DENIED', `No permission to monitor agent ${agentId}`);
    return agentId;
  }

  function parse<T>(schema: z.ZodType<T>, input: unknown): T {
    const result = schema.safeParse(input);
    if (!result.success) throw new EscaiError('VALIDATION_ERROR', describeZodError(result.error));
    return result.data;
  }

  app.get('/api/v1/agents', async (req) => {
    const principal = await authorize(verifier, req, Permissions.CONNECT);
    const query = parse(AgentListQuerySchema, req.query);
    return engine.agents.list({ limit: query.limit, cursor: query.cursor, only: principal.monitorsAll ? undefined : principal.monitoredAgents() });
  });

  app.get('/api/v1/agents/:agent_id', async (req) => {
    const agentId = await agentOf(req);
    const [record, position] = await Promise.all([engine.agents.get(agentId), engine.broker.position(agentStream(agentId))]);
    if (!record) throw new EscaiError('AGENT_NOT_FOUND', `No event of agent ${agentId} within the agent TTL`);
    return { ...record, offset: position.offset, epoch: position.epoch };
  });

  app.delete('/api/v1/agents/:agent_id', async (req) => {
    const { agent_id: agentId } = req.params as { agent_id: string };
    if (!IdSchema.safeParse(agentId).success) throw new EscaiError('VALIDATION_ERROR', 'agent_id: invalid agent id');
    const principal = await authorize(verifier, req, Permissions.ADMIN);
    const removed = await engine.agents.remove(agentId);
    deps.forgetAgent(agentId);
    if (!removed) throw new EscaiError('AGENT_NOT_FOUND', `No event of agent ${agentId} within the agent TTL`);
    req.log.info({ agent: agentId, by: principal.userId }, 'agent removed from the directory');
    return { removed: agentId, timestamp: isoNow() };
  });

  /** One of the agent's streams, read like /events: what it thinks (`agent:{id}`) or what it does (`activity:{id}`). */
  const historyRoute = (streamOf: (agentId: string) => string) => async (req: FastifyRequest) => {
    const agentId = await agentOf(req);
    const query = parse(HistoryQuerySchema, req.query);
    const page = await engine.broker.history(streamOf(agentId), query);
    return { agent_id: agentId, events: page.events, offset: page.position.offset, epoch: page.position.epoch, complete: page.complete };
  };
  app.get('/api/v1/agents/:agent_id/events', historyRoute(agentStream));
  app.get('/api/v1/agents/:agent_id/activity', historyRoute(activityStream));

  app.post('/api/v1/events', async (req, reply) => {
    await authorize(verifier, req, Permissions.PUBLISH);
    const results = await publisher.publishInput(req.body);
    return reply.code(202).send({ accepted: results.length, events: results.map(publishedRef) });
  });
}
