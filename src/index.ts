// Public API of the escai-realtime package (server side).
export { createEscaiServer, EscaiServer, type ServerOptions } from './server/server.js';
export { resolveConfig, ConfigSchema, ConfigError, ENV_NAMES, type Config, type ConfigInput } from './config/config.js';
export { signToken, createVerifier, type TokenClaims } from './auth/jwt.js';
export { Principal, DEFAULT_ROLES, Permissions } from './auth/permissions.js';
export { MemoryEngine } from './engine/memory/index.js';
export { createEngine, EngineUnavailableError, ALL_ACTIVITY_STREAMS, ALL_AGENT_STREAMS } from './engine/index.js';
export type { Engine, EngineStatus, Broker, PublishReceipt, HistoryPage, SessionStore, SessionState, Presence } from './engine/index.js';
export type { ConnectionsView } from './server/node/registry.js';
export type { PublishResult } from './server/delivery/publisher.js';
export * from './protocol/server-messages.js';
export { ErrorCodes, CloseCodes, EscaiError, type ErrorCode } from './protocol/codes.js';
export * from './protocol/events.js';
export { createLogger } from './log.js';
