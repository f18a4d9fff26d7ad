// Choosing the engine. The Redis engine is loaded only when a Redis URL is
// configured, so a node on the in-memory engine never loads ioredis.
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Engine } from './engine.js';
import { MemoryEngine } from './memory/index.js';

export type { Engine, EngineStatus } from './engine.js';
export { EngineUnavailableError } from './engine.js';
export {
  ALL_ACTIVITY_STREAMS,
  ALL_AGENT_STREAMS,
  type Broker,
  type DeliveredEvent,
  type DeliveryHandler,
  type HistoryPage,
  type HistoryQuery,
  type LossHandler,
  type PublishEntry,
  type PublishReceipt,
  type UnsequencedEvent,
} from './broker.js';
export type { SessionState, SessionStore, SavedSubscription } from './sessions.js';
export type { ConnectionSummary, Presence } from './presence.js';
export type { AgentDirectory, AgentPage, AgentRecord, AgentSummary } from './agents.js';

/** The engine the config asks for: Redis with a URL, else the in-memory engine. */
export async function createEngine(config: Config, log: Logger): Promise<Engine> {
  const history = {
    historySize: config.historySize,
    historyTtlMs: config.historyTtl * 1000,
    agentTtlMs: config.agentTtl * 1000,
    unpublishedTtlMs: config.unpublishedStreamTtl * 1000,
  };
  if (config.redisUrl) {
    const { RedisEngine } = await import('./redis/index.js');
    return new RedisEngine({ ...history, url: config.redisUrl, prefix: config.redisPrefix, log });
  }
  return new MemoryEngine({ ...history, historyBytesPerStream: config.historyStreamBytes, historyBytesTotal: config.historyNodeBytes });
}
