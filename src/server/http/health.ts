// Health views: this node's ESCAI counters, the registry entry it writes for
// the cluster, GET /ws/health summed over every live node, and the last
// minutes of it (GET /ws/health/history).
import type { Config } from '../../config/config.js';
import type { Presence } from '../../engine/presence.js';
import { isoNow, type ClusterHealth, type HealthCounters, type HealthHistoryPage, type NodeReport } from '../../protocol/server-messages.js';
import type { NodeCounters } from '../node/counters.js';
import { HealthHistory } from './health-history.js';
import type { ConnectionRegistry } from '../node/registry.js';

export interface HealthDeps {
  config: Pick<Config, 'maxConnections' | 'heartbeatInterval' | 'heartbeatTimeout'>;
  engineName: string;
  nodeId: string;
  registry: ConnectionRegistry;
  index: { readonly size: number; readonly agentCount: number };
  counters: NodeCounters;
  presence: Pick<Presence, 'nodes'>;
  heartbeatRunning(): boolean;
}

/** How often a node samples /ws/health into its history, and how far back the history reaches. */
export const HEALTH_SAMPLE_MS = 2000;
export const HEALTH_HISTORY_S = 300;

function statusOf(active: number, max: number): HealthCounters['status'] {
  return active === 0 ? 'idle' : active >= max * 0.9 ? 'near_capacity' : 'healthy';
}

/** Numbers of the health view that are a node's settings, not counters: not summed over the cluster. */
const NODE_SETTINGS: ReadonlySet<string> = new Set(['heartbeat_interval', 'heartbeat_timeout']);

export class HealthViews {
  readonly #deps: HealthDeps;
  readonly startedAt = new Date().toISOString();
  /** host:port this node listens on (set once it listens). */
  address = '';
  readonly #history = new HealthHistory(HEALTH_HISTORY_S / (HEALTH_SAMPLE_MS / 1000));

  constructor(deps: HealthDeps) {
    this.#deps = deps;
  }

  /** This node's counters. */
  local(): HealthCounters & { timestamp: string } {
    const { config, registry, index, counters } = this.#deps;
    const active = registry.size;
    return {
      status: statusOf(active, config.maxConnections),
      max_connections: config.maxConnections,
      heartbeat_interval: config.heartbeatInterval,
      heartbeat_timeout: config.heartbeatTimeout,
      heartbeat_running: this.#deps.heartbeatRunning(),
      active_connections: active,
      total_connections_ever: registry.totalEver,
      active_users: registry.userCount,
      total_subscriptions: index.size,
      messages_sent: counters.messagesSent,
      messages_received: counters.messagesReceived,
      agent_subscribers: index.agentCount,
      events_in: counters.publications,
      events_out: counters.deliveries,
      handshake_refusals: counters.handshakeRefusals,
      rate_limited: counters.rateLimited,
      slow_consumer_closes: counters.slowConsumerCloses,
      timestamp: isoNow(),
    };
  }

  /** The registry entry this node writes every nodeTtl / 3 seconds. */
  nodeReport(local = this.local()): NodeReport {
    const { status: _s, timestamp: _t, heartbeat_running: _h, heartbeat_interval: _i, heartbeat_timeout: _o, ...counters } = local;
    return { node_id: this.#deps.nodeId, address: this.address, started_at: this.startedAt, reported_at: Date.now(), counters };
  }

  /**
   * /ws/health across the cluster: the ESCAI counters summed over live nodes
   * (this node's own figures live, the others' as last reported), plus each node's.
   */
  async cluster(): Promise<ClusterHealth & { timestamp: string }> {
    const local = this.local();
    const nodes = await this.#liveNodes(this.nodeReport(local));
    // Every number of a node's report is summed over the live nodes, except this node's own settings: one list
    // of counters (`local`), so a counter added there is summed here too.
    const summed: Record<string, number> = {};
    for (const [key, value] of Object.entries(local)) {
      if (typeof value === 'number' && !NODE_SETTINGS.has(key)) summed[key] = nodes.reduce((total, n) => total + (n.counters[key] ?? 0), 0);
    }
    const cluster = summed as Pick<HealthCounters, 'active_connections' | 'max_connections'>;
    return {
      ...local,
      ...summed,
      status: statusOf(cluster.active_connections, cluster.max_connections),
      engine: this.#deps.engineName,
      node_id: this.#deps.nodeId,
      nodes,
    };
  }

  /** This node's report (its figures live), then the other live nodes' as last reported. */
  async #liveNodes(self: NodeReport): Promise<NodeReport[]> {
    try {
      return [self, ...(await this.#deps.presence.nodes()).filter((n) => n.node_id !== self.node_id)];
    } catch {
      return [self]; // engine unreachable: this node alone (readyz says why)
    }
  }

  /** Takes one sample of what /ws/health lists per node into the history (the sampling timer calls it). */
  async sample(): Promise<void> {
    const t = Date.now() / 1000;
    this.#history.record(t, await this.#liveNodes(this.nodeReport()));
  }

  /** The history, the last `seconds` of it (at most the window). */
  history(seconds = HEALTH_HISTORY_S): HealthHistoryPage {
    const samples = this.#history.since(Date.now() / 1000 - Math.min(seconds, HEALTH_HISTORY_S));
    return {
      node_id: this.#deps.nodeId,
      interval_s: HEALTH_SAMPLE_MS / 1000,
      window_s: HEALTH_HISTORY_S,
      addresses: this.#history.addresses(samples),
      samples,
      timestamp: isoNow(),
    };
  }
}
