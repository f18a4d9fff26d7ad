// The presence seam: who is where in the cluster. The node registry
// (reports with a TTL), connection summaries for admin views, per-user
// connection slots counted across nodes, and leases: a job one node of the
// cluster does at a time (the behaviour detectors).
import type { NodeReport, SubscriptionView } from '../protocol/server-messages.js';

export type { NodeReport };

/** A connection as cluster-wide admin views list it. */
export interface ConnectionSummary {
  connection_id: string;
  node_id: string;
  user_id: string;
  session_id: string;
  connected_at: string;
  subscriptions: SubscriptionView[];
}

export interface Presence {
  /** Writes this node's report; it expires after `ttlMs` unless renewed. */
  reportNode(report: NodeReport, ttlMs: number): Promise<void>;
  /** Live nodes (reports not expired), this one included. */
  nodes(): Promise<NodeReport[]>;
  /** Records (or, with null, removes) a connection of this node. Fire and forget. */
  setConnection(connectionId: string, summary: ConnectionSummary | null): void;
  /** Connections of the other live nodes. */
  remoteConnections(): Promise<ConnectionSummary[]>;
  /** Takes one of the user's `cap` connection slots across live nodes; false when all are taken. */
  claimUserSlot(userId: string, cap: number): Promise<boolean>;
  releaseUserSlot(userId: string): void;
  /** Asks node `nodeId` to close its connection `connectionId` (an admin's disconnect); resolves once the request is sent. */
  requestClose(nodeId: string, connectionId: string): Promise<void>;
  /** The handler of close requests addressed to this node. */
  onCloseRequest(handler: (connectionId: string) => void): void;
  /**
   * Takes the lease `name` for this node, or renews it if this node holds
   * it, for `ttlMs`; false while another node holds it. A node that stops
   * renewing loses it when the TTL runs out. Rejects with
   * EngineUnavailableError when the engine cannot say.
   */
  holdLease(name: string, ttlMs: number): Promise<boolean>;
  /** Gives the lease up at once (if this node holds it). */
  releaseLease(name: string): Promise<void>;
}
