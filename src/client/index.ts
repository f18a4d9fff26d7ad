// escai-realtime/client: the SDK for browsers and Node.
export { EscaiClient, EscaiClientError } from './client.js';
export type { ClientEvents, ClientOptions, ClientState, SubscriptionInfo, SubscriptionOptions, WebSocketConstructor, WebSocketLike } from './client.js';
export { fullJitterBackoff, type BackoffFn } from './backoff.js';
export type { PublishEventInput } from '../protocol/events.js';
export type * from '../protocol/server-messages.js';
export { ErrorCodes, CloseCodes, closeAllowsReconnect, errorIsRetryable, type ErrorCode, type CloseCode } from '../protocol/codes.js';
export { EVENT_TYPES, SUBSCRIPTION_TYPES, type EventType, type SubscriptionType } from '../protocol/constants.js';
export {
  filter,
  where,
  and,
  or,
  not,
  FilterBuilder,
  type Filter,
  type SubscriptionFilter,
  type FieldCondition,
  type FieldOperators,
  type ChangeOperators,
  type ChangeDirection,
  type FilterValue,
  type Conflated,
} from './filters.js';
