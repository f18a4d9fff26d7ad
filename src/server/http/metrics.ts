// Prometheus metrics (GET /metrics), named by Prometheus conventions
// (counters end in _total, durations in seconds). Totals the node already
// keeps (NodeCounters) are read at scrape time, so the delivery path pays
// nothing for them; labelled counters are bumped once per publication or per
// refusal, never once per recipient.
import { timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { httpErrorBody } from '../../protocol/codes.js';
import type { DropCounts } from '../../engine/broker.js';
import type { EngineStatus } from '../../engine/engine.js';
import type { NodeCounters } from '../node/counters.js';

export type RecoveryKind = 'subscribe' | 'resume';
export type RecoveryOutcome = 'recovered' | 'lost' | 'limited';

export interface Metrics {
  registry: Registry;
  /** Events accepted from producers, by type (events in). */
  publications: Counter<'type'>;
  /** Events written to sockets, by type (events out). */
  deliveries: Counter<'type'>;
  /** Seconds from an event's publish time to the fan-out's socket writes. */
  deliveryLatency: Histogram;
  handshakeRefusals: Counter<'code'>;
  recoveries: Counter<'kind' | 'outcome'>;
  streamLosses: Counter;
  /** OTLP export requests, by encoding and HTTP status. */
  otlpRequests: Counter<'encoding' | 'status'>;
  /** OTLP spans by outcome: accepted (events made), ignored (no agent), rejected (partial success). */
  otlpSpans: Counter<'outcome'>;
  /** Behaviour detector findings this node published, by detector (and `status` for run-status changes). */
  detections: Counter<'detector'>;
}

/** What the gauges and totals read at scrape time. */
export interface MetricSources {
  connections(): number;
  subscriptions(): number;
  counters: NodeCounters;
  engineStatus(): EngineStatus;
  /** Messages the engine received and did not deliver, by reason (the broker's `drops`). */
  engineDrops?(): DropCounts;
  /** Whether this node runs the cluster's detectors, and how many agents they follow. */
  detectors?(): { judging: boolean; agents: number };
  /** Connection slots held by client addresses (open connections and handshakes in progress), and by how many addresses. */
  addressSlots?(): { slots: number; addresses: number };
}

export function createMetrics(sources: MetricSources): Metrics {
  const registry = new Registry();
  const registers = [registry];
  // Unprefixed: stock Node.js dashboards and alerts expect process_cpu_seconds_total, nodejs_eventloop_lag_*, ...
  collectDefaultMetrics({ register: registry });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  /** A counter whose value is one of the node's own totals. */
  const total = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  const { counters } = sources;
  gauge('escai_connections', 'Open WebSocket connections on this node', sources.connections);
  gauge('escai_subscriptions', 'Subscriptions on this node', sources.subscriptions);
  gauge('escai_engine_ready', '1 when the engine accepts publications', () => (sources.engineStatus().ready ? 1 : 0));
  total('escai_messages_sent_total', 'Frames written to clients', () => counters.messagesSent);
  total('escai_messages_received_total', 'Frames received from clients', () => counters.messagesReceived);
  total('escai_rate_limited_total', 'Inbound messages dropped by the per-connection rate limit', () => counters.rateLimited);
  gauge('escai_detectors_judging', "1 when this node runs the behaviour detectors (it holds the cluster's lease)", () =>
    sources.detectors?.().judging ? 1 : 0,
  );
  gauge('escai_detectors_agents', 'Agents the behaviour detectors on this node follow', () => sources.detectors?.().agents ?? 0);
  gauge(
    'escai_address_slots',
    'Connection slots held against the per-address cap: open connections plus handshakes in progress',
    () => sources.addressSlots?.().slots ?? 0,
  );
  gauge('escai_address_slot_holders', 'Client addresses holding at least one connection slot', () => sources.addressSlots?.().addresses ?? 0);
  total('escai_slow_consumer_closes_total', 'Connections closed with 4008 (send buffer over the cap)', () => counters.slowConsumerCloses);
  new Counter({
    name: 'escai_engine_dropped_messages_total',
    help: 'Messages the engine received from its backend and did not deliver, by reason (unparsable, unfollowed, duplicate, stale_epoch, overflow)',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      const drops = sources.engineDrops?.();
      if (drops) for (const [reason, n] of Object.entries(drops)) this.inc({ reason }, n);
    },
  });
  return {
    registry,
    publications: new Counter({
      name: 'escai_publications_total',
      help: 'Events accepted from producers through this node, by type',
      labelNames: ['type'],
      registers,
    }),
    deliveries: new Counter({
      name: 'escai_deliveries_total',
      help: 'Events written to client sockets (one per recipient), by type',
      labelNames: ['type'],
      registers,
    }),
    deliveryLatency: new Histogram({
      name: 'escai_delivery_latency_seconds',
      help: "From an event's publish timestamp to its fan-out on this node (across nodes this includes clock skew)",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    handshakeRefusals: new Counter({
      name: 'escai_handshake_refusals_total',
      help: 'WebSocket handshakes refused before the 101, by error code',
      labelNames: ['code'],
      registers,
    }),
    recoveries: new Counter({
      name: 'escai_recoveries_total',
      help: "Recoveries asked for (subscribe with since, session resume), by outcome: recovered, lost (history no longer holds it) or limited (the user's replay budget was spent); the client reloads unless recovered",
      labelNames: ['kind', 'outcome'],
      registers,
    }),
    streamLosses: new Counter({
      name: 'escai_stream_losses_total',
      help: 'Streams whose lost events could not be replayed (clients told recovery_failed)',
      registers,
    }),
    otlpRequests: new Counter({
      name: 'escai_otlp_requests_total',
      help: 'OTLP/HTTP export requests (POST /v1/traces), by encoding and HTTP status',
      labelNames: ['encoding', 'status'],
      registers,
    }),
    otlpSpans: new Counter({
      name: 'escai_otlp_spans_total',
      help: 'OTLP spans received, by outcome: accepted (made events), ignored (a plain span of no known agent), rejected (answered in partial_success)',
      labelNames: ['outcome'],
      registers,
    }),
    detections: new Counter({
      name: 'escai_detections_total',
      help: 'Findings the behaviour detectors published from this node, by detector (status: run-status changes)',
      labelNames: ['detector'],
      registers,
    }),
  };
}

/** A scrape: the metrics text, or 401 when a metrics token is set and the request does not carry it. */
export async function scrape(
  metrics: Metrics,
  token: string | undefined,
  authorization: string | undefined,
): Promise<{ status: number; type: string; body: string }> {
  if (token !== undefined && !bearerMatches(authorization, token)) {
    return {
      status: 401,
      type: 'application/json; charset=utf-8',
      body: JSON.stringify(httpErrorBody('TOKEN_MISSING', 'GET /metrics needs Authorization: Bearer <ESCAI_METRICS_TOKEN>')),
    };
  }
  return { status: 200, type: metrics.registry.contentType, body: await metrics.registry.metrics() };
}

function bearerMatches(authorization: string | undefined, token: string): boolean {
  const given = Buffer.from(/^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1] ?? '');
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** /metrics on a port of its own (ESCAI_METRICS_PORT): a plain HTTP server that answers nothing else. */
export async function serveMetrics(metrics: Metrics, options: { host: string; port: number; token: string | undefined }): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(httpErrorBody('NOT_FOUND', 'Only GET /metrics here')));
      return;
    }
    scrape(metrics, options.token, req.headers.authorization).then(
      (answer) => res.writeHead(answer.status, { 'content-type': answer.type }).end(answer.body),
      () => res.writeHead(500).end(),
    );
  });
  server.listen(options.port, options.host);
  await once(server, 'listening');
  return server;
}
