// Prometheus metrics (GET /metrics). Gauges are read from their owners when
// scraped, so the delivery path pays nothing for them.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { EngineStatus } from '../engine/engine.js';
import type { TrafficCounters } from './connection.js';

export interface Metrics {
  registry: Registry;
  publications: Counter<'type'>;
  streamLosses: Counter;
}

/** What the gauges read at scrape time. */
export interface MetricSources {
  connections(): number;
  subscriptions(): number;
  counters: TrafficCounters;
  engineStatus(): EngineStatus;
}

export function createMetrics(sources: MetricSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'escai_process_' });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge('escai_connections', 'Open WebSocket connections on this node', sources.connections);
  gauge('escai_subscriptions', 'Subscriptions on this node', sources.subscriptions);
  gauge('escai_messages_sent', 'Frames sent to clients since start', () => sources.counters.messagesSent);
  gauge('escai_messages_received', 'Frames received from clients since start', () => sources.counters.messagesReceived);
  gauge('escai_engine_ready', '1 when the engine accepts publications', () => (sources.engineStatus().ready ? 1 : 0));
  return {
    registry,
    publications: new Counter({ name: 'escai_publications_total', help: 'Events published through this node', labelNames: ['type'], registers: [registry] }),
    streamLosses: new Counter({ name: 'escai_stream_losses_total', help: 'Streams whose lost events could not be replayed (clients told recovery_failed)', registers: [registry] }),
  };
}
