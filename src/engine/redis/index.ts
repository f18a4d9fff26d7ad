// The Redis engine: several nodes, one system. One link (two connections)
// shared by the broker (streams), the session store and the presence registry.
import type { Logger } from 'pino';
import type { Engine, EngineStatus } from '../engine.js';
import { RedisAgentDirectory } from './agents.js';
import { RedisBroker, type RedisBrokerOptions } from './broker.js';
import { RedisLink } from './link.js';
import { RedisPresence } from './presence.js';
import { RedisSessionStore } from './sessions.js';

export interface RedisEngineOptions extends RedisBrokerOptions {
  url: string;
  /** Namespace of every key and channel. */
  prefix: string;
  log: Logger;
  /** Milliseconds an agent stays in the directory after its last event (default 24 h). */
  agentTtlMs?: number;
}

export class RedisEngine implements Engine {
  readonly name = 'redis';
  readonly nodeId: string;
  readonly broker: RedisBroker;
  readonly sessions: RedisSessionStore;
  readonly presence: RedisPresence;
  readonly agents: RedisAgentDirectory;
  readonly #link: RedisLink;

  constructor(options: RedisEngineOptions) {
    this.#link = new RedisLink({ url: options.url, prefix: options.prefix, log: options.log });
    this.nodeId = this.#link.nodeId;
    this.broker = new RedisBroker(this.#link, options);
    this.sessions = new RedisSessionStore(this.#link);
    this.presence = new RedisPresence(this.#link, { streamMetaTtlMs: options.streamMetaTtlMs ?? 86_400_000 });
    this.agents = new RedisAgentDirectory(this.#link, { agentTtlMs: options.agentTtlMs ?? 86_400_000 });
  }

  status(): EngineStatus {
    const link = this.#link.status();
    if (!link.ready) return link;
    if (!this.broker.subscribed) return { ready: false, reason: 'redis: subscriber connection resubscribing' };
    return { ready: true };
  }

  async close(): Promise<void> {
    this.broker.close();
    await this.presence.leave();
    this.#link.close();
  }
}
