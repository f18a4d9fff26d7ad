// The in-memory engine: one process, no external service. Broker, sessions
// and presence all live in this process; it is always ready.
import { randomBytes } from 'node:crypto';
import type { Engine, EngineStatus } from '../engine.js';
import { MemoryBroker, type MemoryBrokerOptions } from './broker.js';
import { MemoryPresence } from './presence.js';
import { MemorySessionStore } from './sessions.js';

export { MemoryBroker, type MemoryBrokerOptions, MemoryPresence, MemorySessionStore };

export class MemoryEngine implements Engine {
  readonly name = 'memory';
  readonly nodeId = `memory-${randomBytes(4).toString('hex')}`;
  readonly broker: MemoryBroker;
  readonly sessions = new MemorySessionStore();
  readonly presence = new MemoryPresence();
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: MemoryBrokerOptions) {
    this.broker = new MemoryBroker(options);
    this.#sweeper = setInterval(() => this.sessions.sweep(Date.now()), 60_000);
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
