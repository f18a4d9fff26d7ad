// Assembles one ESCAI Realtime node: the engine (chosen by the config, or
// given), the jobs of the node wired with narrow dependencies, Fastify for
// HTTP, ws (noServer) behind the upgrade gate, the heartbeat, the cluster
// report, and the in-process publishing API. `createEscaiServer` is what the
// CLI runs and what tests start on port 0.
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import cors from '@fastify/cors';
import rateLimit from '@fastify/rate-limit';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { WebSocketServer, type PerMessageDeflateOptions } from 'ws';
import { createVerifier, type TokenVerifier } from '../auth/jwt.js';
import type { Config } from '../config/config.js';
import { Judge } from '../detect/judge.js';
import type { DeliveryHandler } from '../engine/broker.js';
import { createEngine, type Engine, type EngineStatus } from '../engine/index.js';
import { Ingestor } from '../ingest/ingest.js';
import { registerOtlpReceiver, type OtlpReceiverDeps } from '../ingest/otlp/receiver.js';
import { createLogger, type Logger } from '../log.js';
import { EscaiError, httpErrorBody } from '../protocol/codes.js';
import type { BehavioralPattern, EpistemicState, PredictionResult } from '../protocol/events.js';
import type { Connection } from './connection/connection.js';
import { createCounters } from './node/counters.js';
import { FanOut } from './delivery/fanout.js';
import { HEALTH_SAMPLE_MS, HealthViews } from './http/health.js';
import { Heartbeat } from './node/heartbeat.js';
import { ConnectionLifecycle } from './node/lifecycle.js';
import { KeyedBuckets } from './edge/limits.js';
import { createMetrics, serveMetrics, type Metrics } from './http/metrics.js';
import { Publisher, type PublishResult } from './delivery/publisher.js';
import { ConnectionRegistry, type ConnectionsView } from './node/registry.js';
import { registerConsole } from './http/console.js';
import { registerRoutes } from './http/rest.js';
import { SessionKeeper } from './node/sessions.js';
import { SubscriptionManager } from './delivery/subscription-manager.js';
import { SubscriptionIndex } from './delivery/subscription-index.js';
import { TokenLifetime } from './node/token-lifetime.js';
import { compileTrust, type TrustFunction } from './edge/proxy.js';
import { redactUrl, UpgradeGate } from './edge/upgrade.js';

/** Routes the REST rate limit leaves alone: probes, metrics, the console's files. */
const UNLIMITED_ROUTES = /^\/(healthz|readyz|metrics|console\/.*)?$/;

export interface ServerOptions {
  config: Config;
  logger?: Logger;
  /** Engine; defaults to the one the config asks for (Redis with a URL, else in-memory). */
  engine?: Engine;
}

/** The parts of a running node. */
interface Node {
  engine: Engine;
  fanout: FanOut;
  /** The engine's delivery handler: the fan-out, and the detectors' view of activity. */
  deliver: DeliveryHandler;
  judge: Judge;
  otlp: OtlpReceiverDeps;
  metrics: Metrics;
  registry: ConnectionRegistry;
  publisher: Publisher;
  gate: UpgradeGate;
  heartbeat: Heartbeat;
  health: HealthViews;
  tokens: TokenLifetime;
}

/** permessage-deflate as configured: off, or bounded (threshold, level, small windows, zlib concurrency). */
function deflateOptions(config: Config): PerMessageDeflateOptions | false {
  if (!config.compression) return false;
  const noTakeover = !config.compressionContextTakeover;
  return {
    threshold: config.compressionThreshold,
    concurrencyLimit: config.compressionConcurrency,
    zlibDeflateOptions: { level: config.compressionLevel, memLevel: 7 },
    serverNoContextTakeover: noTakeover,
    clientNoContextTakeover: noTakeover,
  };
}

export class EscaiServer {
  readonly config: Config;
  readonly http: FastifyInstance;
  readonly log: Logger;
  readonly #verifier: TokenVerifier;
  /** Which peers are trusted proxies: one answer for Fastify (request.ip) and the WebSocket gate. */
  readonly #trust: TrustFunction | undefined;
  readonly #engine: Engine | undefined;
  #node: Node | undefined;
  #closing: Promise<void> | undefined;
  #reportTimer: NodeJS.Timeout | undefined;
  #sampleTimer: NodeJS.Timeout | undefined;
  #metricsServer: HttpServer | undefined;
  #otlpServer: FastifyInstance | undefined;

  constructor({ config, logger, engine }: ServerOptions) {
    if (!config.jwtSecret && !config.jwtJwksUrl) throw new Error('jwtSecret (ESCAI_JWT_SECRET) or jwtJwksUrl is required');
    this.config = config;
    this.log = logger ?? createLogger(config.logLevel);
    this.#engine = engine;
    this.#trust = compileTrust(config.trustProxy);
    this.#verifier = createVerifier({
      secret: config.jwtSecret,
      previousSecret: config.jwtPreviousSecret,
      previousSecretUntil: config.jwtPreviousSecretUntil === undefined ? undefined : Date.parse(config.jwtPreviousSecretUntil),
      jwksUrl: config.jwtJwksUrl,
      issuer: config.jwtIssuer,
      audience: config.jwtAudience,
      clockToleranceSec: config.clockTolerance,
      roles: config.roles,
    });
    this.http = this.#fastify();
    this.#capPendingSockets(config.maxPendingSockets);
    this.http.addHook('onResponse', async (req, reply) => {
      req.log.debug({ method: req.method, url: redactUrl(req.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
    });
  }

  /** A Fastify instance with the node's HTTP settings (the main port, and the OTLP port when there is one). */
  #fastify(): FastifyInstance {
    const { config } = this;
    const headersTimeout = config.headerTimeout * 1000;
    return Fastify({
      // Slow clients are cut off once the header timeout passes (checked every second, not Node's default 30 s).
      serverFactory: (handler) => createServer({ headersTimeout, connectionsCheckingInterval: 1000 }, handler),
      requestTimeout: Math.max(60_000, headersTimeout),
      loggerInstance: this.log as FastifyBaseLogger,
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: config.maxBodyBytes,
      // The same trust function as the gate's: without one, Fastify uses the socket's address.
      ...(this.#trust ? { trustProxy: this.#trust } : {}),
      return503OnClosing: true,
      // A `__proto__` key stays an own property of the parsed body (JSON.parse never sets a prototype),
      // so the publisher refuses it by name, exactly as on the socket, instead of a bare INVALID_JSON.
      onProtoPoisoning: 'ignore',
    });
  }

  /**
   * At most `max` TCP connections that have not sent a request (or upgrade)
   * yet: beyond that, new ones are dropped at once. With the header timeout
   * this bounds what slow or idle sockets can hold.
   */
  #capPendingSockets(max: number): void {
    const server = this.http.server;
    const pending = new Set<Socket>();
    // One listener for every socket (no closure per socket), removed once the socket has sent its request.
    function closedWhilePending(this: Socket): void {
      pending.delete(this);
    }
    const started = (socket: Socket) => {
      if (pending.delete(socket)) socket.off('close', closedWhilePending);
    };
    server.on('connection', (socket: Socket) => {
      if (pending.size >= max) {
        socket.destroy();
        return;
      }
      pending.add(socket);
      socket.on('close', closedWhilePending);
    });
    server.on('request', (req: IncomingMessage) => started(req.socket));
    server.prependListener('upgrade', (req: IncomingMessage) => started(req.socket));
  }

  /** The HTTP plugins, loaded before any route so that every route gets them. */
  async #registerPlugins(app: FastifyInstance): Promise<void> {
    const { config } = this;
    // CORS for the REST API, for the origins listed (off when none are).
    if (config.corsOrigins.length > 0) await app.register(cors, { origin: [...config.corsOrigins], methods: ['GET', 'POST', 'DELETE'], maxAge: 600 });
    // A request budget per client address for the REST API; probes, metrics and the console's files are exempt.
    await app.register(rateLimit, {
      global: true,
      max: config.restRateLimit,
      timeWindow: 60_000,
      allowList: (req) => UNLIMITED_ROUTES.test(req.url.split('?')[0] ?? ''),
      // Thrown to the error handler, which answers every refusal in the catalogue's shape.
      errorResponseBuilder: (_req, ctx) =>
        new EscaiError('RATE_LIMITED', `At most ${config.restRateLimit} requests per minute from one address; retry after ${Math.ceil(ctx.ttl / 1000)} s`),
    });
  }

  /** Wires every job of the node around one engine; each receives only what it needs. */
  #wire(engine: Engine): Node {
    const { config, log } = this;
    const { broker, presence } = engine;
    const counters = createCounters();
    const interest = { follow: (stream: string) => broker.follow(stream), unfollow: (stream: string) => broker.unfollow(stream) };
    const registry = new ConnectionRegistry(interest);
    const index = new SubscriptionIndex<Connection>(interest);
    // `judge` is built after the publisher it publishes through; the metrics read it late.
    let judge: Judge | undefined;
    const metrics = createMetrics({
      connections: () => registry.size,
      subscriptions: () => index.size,
      counters,
      engineStatus: () => engine.status(),
      detectors: () => ({ judging: judge?.judging ?? false, agents: judge?.agents ?? 0 }),
      addressSlots: () => gate.addressSlots,
      engineDrops: () => broker.drops,
    });
    const fanout = new FanOut({ registry, index, log, metrics, counters });
    // `changed` is the lifecycle's; the jobs built before it reach it through this late-bound call.
    let lifecycle: ConnectionLifecycle | undefined;
    const changed = (conn: Connection) => lifecycle?.changed(conn);
    // Per user, per second: replayed events (burst: two of the largest replays).
    const replayBudget = new KeyedBuckets(config.replayBudget, config.replayBudget * 2);
    const subscriptions = new SubscriptionManager({ config, index, broker, fanout, metrics, replayBudget, log, changed });
    const sessions = new SessionKeeper({
      config,
      nodeId: engine.nodeId,
      store: engine.sessions,
      broker,
      registry,
      index,
      subscriptions,
      fanout,
      metrics,
      replayBudget,
      log,
    });
    const tokens = new TokenLifetime({ config, verifier: this.#verifier, subscriptions, changed });
    const publisher = new Publisher({
      broker,
      agents: engine.agents,
      fanout,
      metrics,
      counters,
      limits: { maxBatch: config.maxBatchEvents, maxEventBytes: config.maxEventBytes },
      log,
    });
    // Telemetry in: OTLP spans become activity and epistemic events, published like any producer's.
    const ingestor = new Ingestor({
      publisher,
      mapping: { captureContent: config.otlpCaptureContent },
      maxEventBytes: config.maxEventBytes,
      chunk: config.maxBatchEvents,
      onSpans: ({ accepted, ignored, rejected }) => {
        if (accepted > 0) metrics.otlpSpans.inc({ outcome: 'accepted' }, accepted);
        if (ignored > 0) metrics.otlpSpans.inc({ outcome: 'ignored' }, ignored);
        if (rejected > 0) metrics.otlpSpans.inc({ outcome: 'rejected' }, rejected);
      },
    });
    const otlp: OtlpReceiverDeps = {
      verifier: this.#verifier,
      ingest: (batch) => ingestor.ingest(batch),
      budget: new KeyedBuckets(config.otlpRate, config.otlpBurst),
      budgetRate: config.otlpRate,
      budgetBurst: config.otlpBurst,
      maxBodyBytes: config.otlpMaxBodyBytes,
      onRequest: (encoding, status) => metrics.otlpRequests.inc({ encoding, status: String(status) }),
      log,
    };
    // The behaviour detectors: one node of the cluster judges every agent's activity (the lease holder).
    judge = new Judge({
      broker,
      presence,
      publish: (events) => publisher.publishInput(events, events.length),
      thresholds: config.detectors,
      leaseTtlMs: config.nodeTtl * 1000,
      onFinding: (f) => metrics.detections.inc({ detector: f.type === 'status' ? 'status' : f.detector }),
      log,
    });
    const judging = judge;
    const deliver: DeliveryHandler = (stream, event, json) => {
      fanout.deliver(stream, event, json);
      if (event.type === 'agent_activity') judging.observe(event);
    };
    const heartbeat = new Heartbeat({ connections: registry, config, log });
    const health = new HealthViews({
      config,
      engineName: engine.name,
      nodeId: engine.nodeId,
      registry,
      index,
      counters,
      presence,
      heartbeatRunning: () => heartbeat.running,
    });
    const handlers = { subscriptions, tokens, publisher, health, log };
    lifecycle = new ConnectionLifecycle({ config, nodeId: engine.nodeId, counters, registry, index, subscriptions, sessions, tokens, presence, handlers, log });
    const accepted = lifecycle;
    // maxPayload bounds inbound messages after inflation too (ws checks the inflated length).
    const wss = new WebSocketServer({ noServer: true, maxPayload: config.maxMessageBytes, clientTracking: false, perMessageDeflate: deflateOptions(config) });
    const gate: UpgradeGate = new UpgradeGate({
      trust: this.#trust,
      config,
      verifier: this.#verifier,
      wss,
      presence,
      sessions,
      connections: registry,
      accept: (ws, admission, session) => accepted.open(ws, admission, session),
      counters,
      metrics,
      log,
    });
    registerConsole(this.http);
    registerOtlpReceiver(this.http, otlp);
    registerRoutes(this.http, {
      config,
      verifier: this.#verifier,
      engine,
      closing: () => gate.closed,
      health,
      publisher,
      registry,
      subscriptions,
      metrics,
      forgetAgent: (agentId) => void judge.forget(agentId),
    });
    this.http.server.on('upgrade', gate.handle);
    registry.onChange(({ removed }) => {
      if (removed) gate.released(removed.remoteAddress);
    });
    presence.onCloseRequest((connectionId) => registry.get(connectionId)?.close('CLOSED_BY_ADMIN', 'closed by an administrator'));
    return { engine, fanout, deliver, judge, otlp, metrics, registry, publisher, gate, heartbeat, health, tokens };
  }

  /** Starts the engine and listens; resolves to the bound address. */
  async listen(): Promise<AddressInfo> {
    if (this.#node) throw new Error('already listening');
    const engine = this.#engine ?? (await createEngine(this.config, this.log));
    await this.#registerPlugins(this.http);
    const node = (this.#node = this.#wire(engine));
    await engine.broker.start(node.deliver, node.fanout.lost);
    await this.http.listen({ host: this.config.host, port: this.config.port });
    if (this.config.otlpPort !== undefined) await this.#listenOtlp(node);
    node.heartbeat.start();
    node.judge.start();
    const address = this.http.server.address() as AddressInfo;
    node.health.address = `${address.address}:${address.port}`;
    if (this.config.metricsPort !== undefined) {
      this.#metricsServer = await serveMetrics(node.metrics, { host: this.config.host, port: this.config.metricsPort, token: this.config.metricsToken });
    }
    this.#startReporting(node);
    this.log.info({ host: address.address, port: address.port, engine: engine.name, nodeId: engine.nodeId }, 'listening');
    return address;
  }

  /** The OTLP receiver on a port of its own (ESCAI_OTLP_PORT): /v1/traces and nothing else. */
  async #listenOtlp(node: Node): Promise<void> {
    const app = (this.#otlpServer = this.#fastify());
    await this.#registerPlugins(app);
    app.setNotFoundHandler((_req, reply) => reply.code(404).send(httpErrorBody('NOT_FOUND', 'Only POST /v1/traces here')));
    registerOtlpReceiver(app, node.otlp);
    await app.listen({ host: this.config.host, port: this.config.otlpPort! });
  }

  /** Where the OTLP-only port listens (`http://host:port`), when ESCAI_OTLP_PORT is set. */
  get otlpUrl(): string | undefined {
    const address = this.#otlpServer?.server.address() as AddressInfo | null | undefined;
    if (!address) return undefined;
    return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  }

  #running(): Node {
    if (!this.#node) throw new Error('the server is not listening yet (call listen())');
    return this.#node;
  }

  /** This node's registry entry, renewed every nodeTtl / 3 (failures are logged, not fatal: readyz tells). */
  #startReporting(node: Node): void {
    const ttlMs = this.config.nodeTtl * 1000;
    const report = () => {
      node.engine.presence.reportNode(node.health.nodeReport(), ttlMs).catch((err: unknown) => this.log.debug({ err }, 'node report failed'));
    };
    report();
    this.#reportTimer = setInterval(report, ttlMs / 3);
    this.#reportTimer.unref();
    // The history of /ws/health: the engine being unreachable only leaves this node in the sample.
    const sample = () => void node.health.sample().catch((err: unknown) => this.log.debug({ err }, 'health sample failed'));
    sample();
    this.#sampleTimer = setInterval(sample, HEALTH_SAMPLE_MS);
    this.#sampleTimer.unref();
  }

  /** Base URL, e.g. `http://127.0.0.1:8000` (after `listen`). */
  get url(): string {
    const { address, port, family } = this.http.server.address() as AddressInfo;
    return `http://${family === 'IPv6' ? `[${address}]` : address}:${port}`;
  }

  /** This node's id in the cluster registry. */
  get nodeId(): string {
    return this.#running().engine.nodeId;
  }

  /** The engine's readiness (what /readyz answers). */
  engineStatus(): EngineStatus {
    return this.#running().engine.status();
  }

  /** This node's open connections (read-only; `onChange` tells when they come and go). */
  get connections(): ConnectionsView {
    return this.#running().registry;
  }

  /** Graceful stop: refuse new connections, close every client with 1001, stop the engine. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    const node = this.#node;
    if (!node) {
      await this.http.close();
      return;
    }
    node.gate.close();
    node.heartbeat.stop();
    node.tokens.close();
    await node.judge.close();
    clearInterval(this.#reportTimer);
    clearInterval(this.#sampleTimer);
    const graceMs = this.config.shutdownGrace * 1000;
    // Connections leave the registry as their sockets close; unresponsive ones are terminated at the grace.
    const gone = new Promise<void>((resolve) => {
      if (node.registry.size === 0) return resolve();
      const stop = node.registry.onChange(({ size }) => {
        if (size === 0) {
          stop();
          resolve();
        }
      });
    });
    for (const conn of [...node.registry.values()]) conn.close('GOING_AWAY', 'server shutting down', graceMs);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([gone, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs + 500)))]);
    clearTimeout(timer);
    await this.http.close();
    await this.#otlpServer?.close();
    this.#metricsServer?.close();
    await node.engine.close();
    this.log.info('stopped');
  }

  // ---- in-process publishing: each resolves to the local recipient count ----

  async #publishOne(input: unknown): Promise<number> {
    const [result] = await this.#running().publisher.publishInput(input, 1, { countRecipients: true });
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
    return this.#running().publisher.publishInput(input);
  }
}

export function createEscaiServer(options: ServerOptions): EscaiServer {
  return new EscaiServer(options);
}
