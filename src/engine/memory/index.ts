// The in-memory engine: one process, no external service. Broker, sessions
// and presence all live in this process; it is always ready.
import { randomBytes } from 'node:crypto';
import type { Engine, EngineStatus } from '../engine.js';
import { MemoryAgentDirectory } from './agents.js';
import { MemoryBroker, type MemoryBrokerOptions } from './broker.js';
import { MemoryPresence } from './presence.js';
import { MemorySessionStore } from './sessions.js';

export { MemoryAgentDirectory, MemoryBroker, type MemoryBrokerOptions, MemoryPresence, MemorySessionStore };

export interface MemoryEngineOptions extends MemoryBrokerOptions {
  /** Milliseconds an agent stays in the directory after its last event (default 24 h). */
  agentTtlMs?: number;
}

export class MemoryEngine implements Engine {
  readonly name = 'memory';
  readonly nodeId = `memory-${randomBytes(4).toString('hex')}`;
  readonly broker: MemoryBroker;
  readonly sessions = new MemorySessionStore();
  readonly presence = new MemoryPresence();
  readonly agents: MemoryAgentDirectory;
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: MemoryEngineOptions) {
    this.broker = new MemoryBroker(options);
    this.agents = new MemoryAgentDirectory({ agentTtlMs: options.agentTtlMs ?? 86_400_000 });
    this.#sweeper = setInterval(() => {
      const now = Date.now();
      this.sessions.sweep(now);
      this.agents.sweep(now);
    }, 60_000);
    this.#sweeper.unref();
  }

  status(): EngineStatus {
    return { ready: true };
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.broker.close();
  }
}
