// escai-realtime/client: the SDK for browsers and Node.
export { EscaiClient, EscaiClientError } from './client.js';
export type { ClientEvents, ClientOptions, ClientState, SubscriptionInfo, SubscriptionOptions, WebSocketConstructor, WebSocketLike } from './client.js';
export { fullJitterBackoff, type BackoffFn } from './backoff.js';
export type { DeliveredEvent, EventType, PublishEventInput, SubscriptionType } from '../protocol/events.js';
