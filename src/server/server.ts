// Assembles one ESCAI Realtime node: Fastify for HTTP, ws (noServer) behind
// the upgrade gate, the engine, the heartbeat, and the in-process publishing
// API. `createEscaiServer` is what the CLI runs and what tests start on port 0.
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { WebSocketServer } from 'ws';
import { createVerifier, type TokenVerifier } from '../auth/jwt.js';
import type { Config } from '../config/config.js';
import type { Broker } from '../engine/broker.js';
import { RedisBroker } from '../engine/redis.js';
import { MemoryBroker } from '../engine/memory.js';
import { createLogger, type Logger } from '../log.js';
import type { BehavioralPattern, EpistemicState, PredictionResult } from '../protocol/events.js';
import { Heartbeat } from './heartbeat.js';
import { createMetrics } from './metrics.js';
import { RealtimeNode, type PublishResult } from './node.js';
import { validateEvents } from './publish.js';
import { registerRoutes } from './rest.js';
import { redactUrl, UpgradeGate } from './upgrade.js';

export interface ServerOptions {
  config: Config;
  logger?: Logger;
  /** Engine; defaults to the in-memory engine built from the config. */
  broker?: Broker;
}

export class EscaiServer {
  readonly config: Config;
  readonly node: RealtimeNode;
  readonly http: FastifyInstance;
  readonly log: Logger;
  readonly #verifier: TokenVerifier;
  readonly #wss: WebSocketServer;
  readonly #gate: UpgradeGate;
  readonly #heartbeat: Heartbeat;
  #closing: Promise<void> | undefined;
  #reportTimer: NodeJS.Timeout | undefined;

  constructor({ config, logger, broker }: ServerOptions) {
    if (!config.jwtSecret && !config.jwtJwksUrl) throw new Error('jwtSecret (ESCAI_JWT_SECRET) or jwtJwksUrl is required');
    this.config = config;
    this.log = logger ?? createLogger(config.logLevel);
    const engine = broker ?? createEngine(config, this.log);
    this.#verifier = createVerifier({
      secret: config.jwtSecret,
      jwksUrl: config.jwtJwksUrl,
      issuer: config.jwtIssuer,
      audience: config.jwtAudience,
      clockToleranceSec: config.clockTolerance,
      roles: config.roles,
    });
    this.node = new RealtimeNode(config, engine, this.#verifier, this.log);
    this.node.metrics = createMetrics(this.node);
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: config.maxMessageBytes, clientTracking: false, perMessageDeflate: false });
    this.#gate = new UpgradeGate(this.node, this.#verifier, this.#wss);
    this.#heartbeat = new Heartbeat(this.node);
    this.http = Fastify({
      loggerInstance: this.log as FastifyBaseLogger,
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: config.maxBodyBytes,
      trustProxy: config.trustProxy,
      return503OnClosing: true,
    });
    this.http.addHook('onResponse', async (req, reply) => {
      req.log.debug({ method: req.method, url: redactUrl(req.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
    });
    registerRoutes(this.http, { node: this.node, verifier: this.#verifier, gate: this.#gate });
    this.http.server.on('upgrade', this.#gate.handle);
  }

  /** Starts the engine and listens; resolves to the bound address. */
  async listen(): Promise<AddressInfo> {
    await this.node.broker.start(this.node.deliver, this.node.onLoss);
    await this.http.listen({ host: this.config.host, port: this.config.port });
    this.#heartbeat.start();
    const address = this.http.server.address() as AddressInfo;
    this.node.address = `${address.address}:${address.port}`;
    this.#startReporting();
    this.log.info({ host: address.address, port: address.port, engine: this.node.engineName, nodeId: this.node.broker.nodeId }, 'listening');
    return address;
  }

  /** This node's registry entry, renewed every nodeTtl / 3 (failures are logged, not fatal: readyz tells). */
  #startReporting(): void {
    const ttlMs = this.config.nodeTtl * 1000;
    const report = () => {
      this.node.broker.reportNode(this.node.nodeReport(), ttlMs).catch((err: unknown) => this.log.debug({ err }, 'node report failed'));
    };
    report();
    this.#reportTimer = setInterval(report, ttlMs / 3);
    this.#reportTimer.unref();
  }


  /** Base URL, e.g. `http://127.0.0.1:8000` (after `listen`). */
  get url(): string {
    const { address, port, family } = this.http.server.address() as AddressInfo;
    return `http://${family === 'IPv6' ? `[${address}]` : address}:${port}`;
  }

  /** Graceful stop: refuse new connections, close every client with 1001, stop the engine. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#gate.closed = true;
    this.#heartbeat.stop();
    clearInterval(this.#reportTimer);
    const graceMs = this.config.shutdownGrace * 1000;
    for (const conn of this.node.connections.values()) conn.close('GOING_AWAY', 'server shutting down', graceMs);
    // Connections leave the registry as their sockets close; unresponsive ones are terminated at the grace.
    const deadline = Date.now() + graceMs + 500;
    while (this.node.connections.size > 0 && Date.now() < deadline) await sleep(20);
    await this.http.close();
    await this.node.broker.close();
    this.log.info('stopped');
  }

  // ---- in-process publishing: each resolves to the local recipient count ----

  async #publishOne(input: unknown): Promise<number> {
    const [result] = await this.node.publish(validateEvents(input, 1));
    return result!.recipients;
  }

  broadcastEpistemicUpdate(agentId: string, state: EpistemicState): Promise<number> {
    return this.#publishOne({ type: 'epistemic_update', agent_id: agentId, data: state });
  }

  broadcastPatternAlert(agentId: string, pattern: BehavioralPattern, options: { alertType?: string; severity?: string } = {}): Promise<number> {
    return this.#publishOne({ type: 'pattern_alert', agent_id: agentId, alert_type: options.alertType, severity: options.severity, data: pattern });
  }

  broadcastPredictionUpdate(agentId: string, prediction: PredictionResult): Promise<number> {
    return this.#publishOne({ type: 'prediction_update', agent_id: agentId, data: prediction });
  }

  broadcastSystemAlert(alertType: string, message: string, severity = 'info', metadata: Record<string, unknown> = {}): Promise<number> {
    return this.#publishOne({ type: 'system_alert', alert_type: alertType, message, severity, metadata });
  }

  sendUserNotification(userId: string, notificationType: string, message: string, data: Record<string, unknown> = {}): Promise<number> {
    return this.#publishOne({ type: 'user_notification', user_id: userId, notification_type: notificationType, message, data });
  }

  broadcastAgentStatusChange(agentId: string, status: string, metadata: Record<string, unknown> = {}): Promise<number> {
    return this.#publishOne({ type: 'agent_status_change', agent_id: agentId, status, metadata });
  }

  /** Publishes raw events (one or a batch, validated all-or-nothing), as the HTTP API does. */
  publish(input: unknown): Promise<PublishResult[]> {
    return this.node.publish(validateEvents(input, this.config.maxBatchEvents));
  }
}

/** The engine the config asks for: Redis with a URL, else the in-memory engine. */
function createEngine(config: Config, log: Logger): Broker {
  const history = { historySize: config.historySize, historyTtlMs: config.historyTtl * 1000 };
  if (config.redisUrl) return new RedisBroker({ ...history, url: config.redisUrl, prefix: config.redisPrefix, log });
  return new MemoryBroker(history);
}

export function createEscaiServer(options: ServerOptions): EscaiServer {
  return new EscaiServer(options);
}
