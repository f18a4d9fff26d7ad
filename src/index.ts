// Public API of the escai-realtime package (server side).
export { createEscaiServer, EscaiServer, type ServerOptions } from './server/server.js';
export { resolveConfig, ConfigSchema, ConfigError, ENV_NAMES, type Config, type ConfigInput } from './config/config.js';
export { signToken, createVerifier, type TokenClaims } from './auth/jwt.js';
export { Principal, DEFAULT_ROLES, Permissions } from './auth/permissions.js';
export { MemoryBroker } from './engine/memory.js';
export type { Broker, Publication, HistoryPage, StreamPosition } from './engine/broker.js';
export { ErrorCodes, CloseCodes, EscaiError, type ErrorCode } from './protocol/codes.js';
export * from './protocol/events.js';
export { createLogger } from './log.js';
