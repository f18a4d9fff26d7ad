// An engine: the seams a node needs (Broker, SessionStore, Presence, AgentDirectory)
// from one backend, its readiness, and the one error it reports. The server
// maps EngineUnavailableError to its catalogue; engines know no protocol codes.
import type { AgentDirectory } from './agents.js';
import type { Broker } from './broker.js';
import type { Presence } from './presence.js';
import type { SessionStore } from './sessions.js';

export interface EngineStatus {
  ready: boolean;
  /** Why not ready (e.g. "redis: connection refused"). */
  reason?: string;
}

export interface Engine {
  /** Engine name, for /readyz and logs. */
  readonly name: string;
  /** This node's id in the cluster registry. */
  readonly nodeId: string;
  readonly broker: Broker;
  readonly sessions: SessionStore;
  readonly presence: Presence;
  readonly agents: AgentDirectory;
  /** Whether the engine can accept publications now. */
  status(): EngineStatus;
  close(): Promise<void>;
}

/** The engine cannot do what was asked right now (its backend is unreachable); retrying later may work. */
export class EngineUnavailableError extends Error {
  override name = 'EngineUnavailableError';
}
