// The public type surface of escai-realtime/client, checked by `tsc --noEmit`
// (the `// @ts-expect-error` lines fail the typecheck if they ever compile).
// The type checks live in functions that are never called; the runtime test
// checks the exported values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import {
  EscaiClient,
  EscaiClientError,
  closeAllowsReconnect,
  CloseCodes,
  ErrorCodes,
  errorIsRetryable,
  fullJitterBackoff,
  type BackoffFn,
  type ClientEvents,
  type ClientOptions,
  type ClientState,
  type DeliveredEvent,
  type EventType,
  type PublishConfirmed,
  type PublishEventInput,
  type ServerMessage,
  type SubscriptionView,
  type SubscriptionInfo,
  type SubscriptionType,
  type WebSocketConstructor,
} from '../src/client/index.js';
import { SUBSCRIPTION_TYPES } from '../src/protocol/events.js';

type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends <T>() => T extends Y ? 1 : 2 ? true : false;
type Expect<T extends true> = T;

// ---- exact types ------------------------------------------------------------

export type Checks = [
  Expect<Equal<SubscriptionType, 'epistemic_updates' | 'pattern_alerts' | 'prediction_updates' | 'system_alerts' | 'agent_status' | 'agent_activity'>>,
  Expect<
    Equal<
      EventType,
      'epistemic_update' | 'pattern_alert' | 'prediction_update' | 'system_alert' | 'agent_status_change' | 'user_notification' | 'agent_activity'
    >
  >,
  Expect<Equal<ClientState, 'disconnected' | 'connecting' | 'connected' | 'closed'>>,
  Expect<Equal<ClientEvents['epistemic_update'], DeliveredEvent>>,
  Expect<Equal<ClientEvents['pattern_alert'], DeliveredEvent>>,
  Expect<Equal<ClientEvents['prediction_update'], DeliveredEvent>>,
  Expect<Equal<ClientEvents['system_alert'], DeliveredEvent>>,
  Expect<Equal<ClientEvents['agent_status_change'], DeliveredEvent>>,
  Expect<Equal<ClientEvents['user_notification'], DeliveredEvent>>,
  Expect<Equal<ClientEvents['agent_activity'], DeliveredEvent>>,
  Expect<Equal<ClientEvents['event'], DeliveredEvent>>,
  Expect<Equal<ClientEvents['state'], { oldState: ClientState; newState: ClientState }>>,
  Expect<Equal<ClientEvents['disconnected'], { code: number; reason: string; willReconnect: boolean }>>,
  Expect<Equal<ClientEvents['connected'], { connectionId: string; sessionId: string; userId: string; resumed: boolean }>>,
  Expect<Equal<ClientEvents['recovery_failed']['subscription'], SubscriptionInfo>>,
  // Every event type has a typed handler.
  Expect<Equal<Extract<keyof ClientEvents, EventType>, EventType>>,
  Expect<Equal<ReturnType<EscaiClient['subscribe']>, Promise<SubscriptionInfo>>>,
  Expect<Equal<EscaiClient['state'], ClientState>>,
  Expect<Equal<EscaiClientError['code'], string>>,
  Expect<Equal<ReturnType<typeof fullJitterBackoff>, number>>,
  // Replies are typed from the shared protocol module, per request type.
  Expect<Equal<Awaited<ReturnType<EscaiClient['publish']>>, PublishConfirmed['data']>>,
  Expect<Equal<Awaited<ReturnType<typeof pingReply>>['type'], 'pong'>>,
  Expect<Equal<Awaited<ReturnType<typeof listReply>>['data']['subscriptions'][number], SubscriptionView>>,
];

function pingReply(client: EscaiClient) {
  return client.request('ping');
}
function listReply(client: EscaiClient) {
  return client.request('get_subscriptions');
}

// ---- usage that must compile, and misuse that must not ----------------------

export function usage(client: EscaiClient): void {
  // `ws`'s WebSocket fits the injectable constructor.
  const ctor: WebSocketConstructor = WebSocket;
  const opts: ClientOptions = { url: 'ws://127.0.0.1:8000', getToken: async () => 'token', WebSocket: ctor, minReconnectDelay: 20, maxReconnectDelay: 200 };
  void new EscaiClient(opts);
  void new EscaiClient({ url: 'ws://127.0.0.1:8000', token: 'token', WebSocket });
  void new EscaiClient({ url: 'ws://127.0.0.1:8000', getToken: () => 'sync token' });
  // @ts-expect-error url is required
  void new EscaiClient({ token: 'token' });
  // @ts-expect-error getToken returns a string (or a promise of one)
  void new EscaiClient({ url: 'ws://x', getToken: () => 42 });
  const backoff: BackoffFn = fullJitterBackoff;
  void new EscaiClient({ url: 'ws://x', token: 't', backoff });

  client.on('epistemic_update', (e) => {
    const event: DeliveredEvent = e;
    const offset: number = e.offset;
    const epoch: string = e.epoch;
    const id: string = e.event_id;
    const confidence: unknown = e.data?.['confidence_level'];
    void [event, offset, epoch, id, confidence];
    // @ts-expect-error offset is a number
    const wrong: string = e.offset;
    void wrong;
  });
  client.on('event', (e) => {
    const type: EventType = e.type;
    void type;
  });
  client.on('disconnected', ({ code, reason, willReconnect }) => {
    const c: number = code;
    const r: string = reason;
    const w: boolean = willReconnect;
    void [c, r, w];
  });
  client.on('state', ({ oldState, newState }) => {
    // @ts-expect-error 'open' is not a client state
    if (newState === 'open') return;
    void oldState;
  });
  client.on('recovery_failed', ({ subscription, reason }) => {
    const agent: string | null = subscription.agentId;
    const t: SubscriptionType = subscription.type;
    void [agent, t, reason];
  });
  const off: () => void = client.on('connected', ({ resumed }) => void resumed);
  off();
  // @ts-expect-error no such event
  client.on('epistemic_updates', () => {});
  // @ts-expect-error handlers of 'connected' do not get an event
  client.on('connected', (e: DeliveredEvent) => void e);
  // @ts-expect-error emitting is the client's business, not the application's
  client.emit('event', {} as DeliveredEvent);

  // subscribe() accepts exactly the five subscription types.
  void client.subscribe('epistemic_updates', { agentId: 'agent_1', filters: { confidence_level: { min: 0.8 } } });
  void client.subscribe('pattern_alerts');
  void client.subscribe('prediction_updates', { agentId: 'agent_1' });
  void client.subscribe('agent_status', { agentId: 'agent_1' });
  void client.subscribe('system_alerts');
  // @ts-expect-error an event type, not a subscription type
  void client.subscribe('epistemic_update');
  // @ts-expect-error notifications need no subscription
  void client.subscribe('user_notifications');
  // @ts-expect-error not a type at all
  void client.subscribe('everything');
  // @ts-expect-error agentId is a string
  void client.subscribe('agent_status', { agentId: 1 });
  // @ts-expect-error the option is agentId, not agent_id
  void client.subscribe('agent_status', { agent_id: 'agent_1' });
  void client.unsubscribe('agent_status', 'agent_1');
  // @ts-expect-error unsubscribe takes a subscription type too
  void client.unsubscribe('agent_status_change', 'agent_1');

  // publish() takes the producer shapes, discriminated on type.
  const ev: PublishEventInput = { type: 'agent_status_change', agent_id: 'agent_1', status: 'running' };
  void client.publish(ev);
  void client.publish([ev, { type: 'system_alert', alert_type: 'maintenance', message: 'at noon', severity: 'warning' }]);
  // @ts-expect-error epistemic_update needs agent_id and data
  void client.publish({ type: 'epistemic_update' });
  // @ts-expect-error not an event type
  void client.publish({ type: 'ping' });
  // @ts-expect-error severity is one of the listed levels
  void client.publish({ type: 'system_alert', alert_type: 'x', message: 'y', severity: 'fatal' });

  // Server messages are one union, narrowed by `type`.
  const narrow = (m: ServerMessage): string => {
    if (m.type === 'subscription_confirmed') return m.data.subscription_type;
    if (m.type === 'error') return m.code;
    // @ts-expect-error a pong has no data
    if (m.type === 'pong') return m.data;
    return m.type;
  };
  void narrow;

  const pos: { offset: number; epoch: string } | undefined = client.position('agent:agent_1', 'epistemic_update');
  const reason: string | undefined = client.closeReason;
  void [pos, reason];
  // @ts-expect-error sessionId is read-only
  client.sessionId = 'other';
}

test('client exports: runtime values match the type surface', { timeout: 60_000 }, () => {
  assert.equal(typeof EscaiClient, 'function');
  assert.equal(typeof fullJitterBackoff, 'function');
  const err = new EscaiClientError('AGENT_ACCESS_DENIED', 'no');
  assert.ok(err instanceof Error);
  assert.equal(err.name, 'EscaiClientError');
  assert.equal(err.code, 'AGENT_ACCESS_DENIED');
  // The six subscription types of the type surface are the server's.
  const all: Record<SubscriptionType, true> = {
    epistemic_updates: true,
    pattern_alerts: true,
    prediction_updates: true,
    system_alerts: true,
    agent_status: true,
    agent_activity: true,
  };
  assert.deepEqual(Object.keys(all).sort(), Object.keys(SUBSCRIPTION_TYPES).sort());
  const client = new EscaiClient({ url: 'ws://127.0.0.1:1', token: 't', WebSocket });
  assert.equal(client.state, 'disconnected');
  assert.equal(client.position('agent:agent_1', 'epistemic_update'), undefined);
  assert.equal(client.closeReason, undefined);
  client.close();
  // Retry and terminal meanings come from the one catalogue.
  assert.equal(closeAllowsReconnect(CloseCodes.FORBIDDEN.code), false);
  assert.equal(closeAllowsReconnect(CloseCodes.SLOW_CONSUMER.code), true);
  assert.equal(errorIsRetryable('ENGINE_UNAVAILABLE'), ErrorCodes.ENGINE_UNAVAILABLE.retry);
  assert.equal(errorIsRetryable('AGENT_ACCESS_DENIED'), false);
  assert.equal(client.state, 'closed');
});
