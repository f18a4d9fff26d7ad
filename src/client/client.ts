// The ESCAI Realtime client SDK: one code base for browsers and Node (pass
// `WebSocket` from `ws` in Node). It connects with a token or a getToken()
// callback, reconnects with full-jitter backoff, resumes its session or
// re-subscribes with `since` from the last offset it saw per stream, drops
// duplicates (both decided by the pure Positions of ./positions.ts), answers
// pings and token_expiring, and surfaces every state change.
import { closeAllowsReconnect, CloseCodes, errorIsRetryable } from '../protocol/codes.js';
import {
  EVENT_TYPES,
  SUBSCRIPTION_TYPES,
  subscriptionFollows,
  subscriptionKey,
  subscriptionStream,
  type EventType,
  type SubscriptionType,
} from '../protocol/constants.js';
import type { PublishEventInput } from '../protocol/events.js';
import type {
  ConnectionEstablished,
  ControlMessage,
  DeliveredEvent,
  PublishConfirmed,
  RequestReplies,
  ServerMessage,
  StreamPosition,
} from '../protocol/server-messages.js';
import { fullJitterBackoff, type BackoffFn } from './backoff.js';
import { TypedEmitter } from './emitter.js';
import { Positions, streamOf } from './positions.js';

/** The subset of the WebSocket API the client uses (browser WebSocket and `ws` both fit). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
/** Any WebSocket class (browser, `ws`): instantiated with the URL only and used through WebSocketLike. */
export type WebSocketConstructor = new (url: string) => object;

export interface ClientOptions {
  /** Server base URL (`ws://host:8000` or `http://host:8000`). */
  url: string;
  /** Session id; reconnects reuse it so the server can resume the session. Default: random. */
  sessionId?: string;
  /** A fixed token … */
  token?: string;
  /** … or a function asked for a token before every connect and on token_expiring. */
  getToken?: () => string | Promise<string>;
  /** WebSocket implementation; defaults to globalThis.WebSocket (pass `ws`'s in Node < 22). */
  WebSocket?: WebSocketConstructor;
  /** Reconnect delay bounds in ms (defaults 250 and 15000). */
  minReconnectDelay?: number;
  maxReconnectDelay?: number;
  /** Replaces the full-jitter backoff. */
  backoff?: BackoffFn;
  /** Milliseconds to wait for a reply to a request (default 10000). */
  requestTimeout?: number;
  /**
   * How the token travels: in the first message (`message`: never in a URL,
   * so never in a proxy's log; the default in browsers) or in the URL (`url`:
   * a refused handshake answers with an HTTP status; the default elsewhere).
   */
  auth?: 'message' | 'url';
  /**
   * Ask for batched frames (`?batch=1`, default true): under load the server
   * coalesces several messages into one frame (a JSON array), which costs
   * both ends far less per message. Order and delivery are the same.
   */
  batch?: boolean;
}

export type ClientState = 'disconnected' | 'connecting' | 'connected' | 'closed';

export interface SubscriptionOptions {
  agentId?: string;
  filters?: Record<string, unknown>;
  /** Single-stream subscriptions: receive the stream's newest wanted event right after the confirmation (and again after a reconnect that cannot replay). */
  latest?: boolean;
  /** Single-stream subscriptions: start after this position (replaying what followed it, if history still holds it). */
  since?: StreamPosition;
}

export interface SubscriptionInfo {
  type: SubscriptionType;
  agentId: string | null;
  filters: Record<string, unknown> | null;
}

export interface ClientEvents {
  state: { oldState: ClientState; newState: ClientState };
  connecting: { attempt: number };
  connected: { connectionId: string; sessionId: string; userId: string; resumed: boolean };
  disconnected: { code: number; reason: string; willReconnect: boolean };
  /** Events were missed and cannot be replayed: reload state (e.g. GET /api/v1/agents/{id}/events). */
  recovery_failed: { subscription: SubscriptionInfo; reason: string };
  /** Any delivered event, after de-duplication. */
  event: DeliveredEvent;
  epistemic_update: DeliveredEvent;
  pattern_alert: DeliveredEvent;
  prediction_update: DeliveredEvent;
  system_alert: DeliveredEvent;
  agent_status_change: DeliveredEvent;
  user_notification: DeliveredEvent;
  /** A step an agent runs (a model or tool call, its own run), as it starts and ends. */
  agent_activity: DeliveredEvent;
  /** The server removed a subscription (a refreshed token no longer allows it); the client stops asking for it. */
  subscription_revoked: { subscription: SubscriptionInfo; reason: string };
  /** An error frame not tied to a request. */
  error: { code: string; message: string };
}

/** Handshake refusals whose body could not be read (browsers never show it): these statuses cannot succeed on retry. */
const TERMINAL_HTTP = new Set([401, 403]);

export class EscaiClientError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'EscaiClientError';
    this.code = code;
  }
}

interface Pending {
  resolve: (msg: ControlMessage) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

interface DesiredSubscription extends SubscriptionInfo {
  key: string;
  latest: boolean;
  /** Asked to start from a given position (`since`): the first subscribe sends it. */
  fromSince: boolean;
  /** Set once the server has confirmed it at least once. */
  active: boolean;
  /** subscribe() calls waiting for the first confirmation. */
  waiters: Array<{ resolve: (info: SubscriptionInfo) => void; reject: (err: Error) => void }>;
}

type Position = StreamPosition;

/** The client's own request failures; each may succeed on the next connection. */
const CLIENT_SIDE_ERRORS = new Set(['DISCONNECTED', 'NOT_CONNECTED', 'TIMEOUT', 'CLOSED']);

/** Whether a failed request may succeed later: the client's own failures, and what the catalogue marks retryable. */
function transient(code: string): boolean {
  return CLIENT_SIDE_ERRORS.has(code) || errorIsRetryable(code);
}

function info(sub: DesiredSubscription): SubscriptionInfo {
  return { type: sub.type, agentId: sub.agentId, filters: sub.filters };
}

/** Resolves (or rejects) everyone waiting for this subscription's first confirmation. */
function settle(sub: DesiredSubscription, err?: Error): void {
  const waiters = sub.waiters.splice(0);
  for (const w of waiters) {
    if (err) w.reject(err);
    else w.resolve(info(sub));
  }
}

const EVENT_TYPE_SET: ReadonlySet<string> = new Set(EVENT_TYPES);

/**
 * @example
 * import WebSocket from 'ws';
 * const client = new EscaiClient({ url: 'ws://127.0.0.1:8000', getToken: fetchToken, WebSocket });
 * client.on('epistemic_update', (e) => console.log(e.agent_id, e.data?.confidence_level));
 * client.on('recovery_failed', ({ subscription }) => reload(subscription));
 * client.connect();
 * await client.subscribe('epistemic_updates', { agentId: 'agent_1', filters: { confidence_level: { min: 0.8 } } });
 */
export class EscaiClient extends TypedEmitter<ClientEvents> {
  readonly sessionId: string;
  #state: ClientState = 'disconnected';
  readonly #opts: Required<Pick<ClientOptions, 'minReconnectDelay' | 'maxReconnectDelay' | 'requestTimeout'>> & ClientOptions;
  readonly #WebSocket: WebSocketConstructor;
  readonly #backoff: BackoffFn;
  #ws: WebSocketLike | undefined;
  #attempt = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #subscriptions = new Map<string, DesiredSubscription>();
  /** Last offset seen per stream and event type: drives `since` and drops duplicates (see positions.ts). */
  readonly #positions = new Positions();
  #connectedOnce = false;
  #closeReason: string | undefined;

  constructor(options: ClientOptions) {
    super();
    if (!options.token && !options.getToken) throw new TypeError('EscaiClient needs `token` or `getToken`');
    this.#opts = { minReconnectDelay: 250, maxReconnectDelay: 15_000, requestTimeout: 10_000, ...options };
    const ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!ctor) throw new TypeError('No WebSocket implementation: pass `WebSocket` (e.g. from the ws package)');
    this.#WebSocket = ctor;
    this.#backoff = options.backoff ?? fullJitterBackoff;
    this.sessionId = options.sessionId ?? `sdk-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  }

  get state(): ClientState {
    return this.#state;
  }

  /** Why the client stopped for good (after a terminal close), if it did. */
  get closeReason(): string | undefined {
    return this.#closeReason;
  }

  /** The last offset/epoch seen on a stream (`agent:{id}`, `system`, `user`) for one event type. */
  position(stream: string, eventType: EventType): Position | undefined {
    return this.#positions.get(stream, eventType);
  }

  /** Opens the connection (and keeps it open until `close()`). */
  connect(): void {
    if (this.#state === 'closed') throw new Error('client is closed');
    if (this.#state !== 'disconnected' || this.#reconnectTimer) return;
    void this.#open();
  }

  /** Closes for good: no reconnect, pending requests rejected. */
  close(): void {
    this.#closeReason ??= 'closed by the application';
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    const ws = this.#ws;
    this.#ws = undefined;
    this.#setState('closed');
    this.#rejectPending(new EscaiClientError('CLOSED', 'client closed'));
    for (const sub of this.#subscriptions.values()) settle(sub, new EscaiClientError('CLOSED', 'client closed'));
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      ws.close(1000, 'client closed');
    }
  }

  /** Subscribes (now, and again after every reconnect). Resolves when the server first confirms. */
  subscribe(type: SubscriptionType, options: SubscriptionOptions = {}): Promise<SubscriptionInfo> {
    if (this.#state === 'closed') return Promise.reject(new EscaiClientError('CLOSED', 'client closed'));
    const sub: DesiredSubscription = {
      key: subscriptionKey(type, options.agentId ?? null),
      type,
      agentId: options.agentId ?? null,
      filters: options.filters ?? null,
      latest: options.latest === true,
      fromSince: options.since !== undefined,
      active: false,
      waiters: [],
    };
    this.#subscriptions.set(sub.key, sub);
    const stream = subscriptionStream(type, sub.agentId);
    if (options.since) {
      if (stream === null) return Promise.reject(new EscaiClientError('VALIDATION_ERROR', 'since needs a single stream (an agentId, or system_alerts)'));
      this.#positions.set(stream, SUBSCRIPTION_TYPES[type], options.since);
    }
    const confirmed = new Promise<SubscriptionInfo>((resolve, reject) => sub.waiters.push({ resolve, reject }));
    if (this.#state === 'connected') void this.#sendSubscribe(sub, sub.fromSince);
    return confirmed;
  }

  async unsubscribe(type: SubscriptionType, agentId?: string): Promise<void> {
    const key = subscriptionKey(type, agentId ?? null);
    this.#subscriptions.delete(key);
    if (this.#state === 'connected') await this.request('unsubscribe', { subscription_type: type, agent_id: agentId ?? null });
  }

  /** Publishes one event or a batch (needs events:publish). */
  async publish(events: PublishEventInput | PublishEventInput[]): Promise<PublishConfirmed['data']> {
    const reply = await this.request('publish', events);
    return reply.data;
  }

  /** Sends a request and resolves with its reply (rejects with EscaiClientError on an error frame). */
  request<T extends keyof RequestReplies>(type: T, data?: unknown): Promise<RequestReplies[T]>;
  request(type: string, data?: unknown): Promise<ControlMessage>;
  request(type: string, data?: unknown): Promise<ControlMessage> {
    const ws = this.#ws;
    if (!ws || this.#state !== 'connected') return Promise.reject(new EscaiClientError('NOT_CONNECTED', 'not connected'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new EscaiClientError('TIMEOUT', `no reply to ${type} within ${this.#opts.requestTimeout} ms`));
      }, this.#opts.requestTimeout);
      this.#pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify(data === undefined ? { type, id } : { type, data, id }));
    });
  }

  // ---- connection lifecycle ------------------------------------------------

  async #open(): Promise<void> {
    this.#setState('connecting');
    this.emit('connecting', { attempt: this.#attempt });
    let token: string;
    try {
      token = this.#opts.getToken ? await this.#opts.getToken() : this.#opts.token!;
    } catch (err) {
      this.#scheduleReconnect(0, `getToken failed: ${(err as Error).message}`);
      return;
    }
    if (this.#state !== 'connecting') return; // closed meanwhile
    const base = this.#opts.url.replace(/^http/, 'ws').replace(/\/+$/, '');
    const byMessage = (this.#opts.auth ?? (typeof (globalThis as { document?: unknown }).document === 'object' ? 'message' : 'url')) === 'message';
    const query = (byMessage ? 'auth=message' : `token=${encodeURIComponent(token)}`) + (this.#opts.batch === false ? '' : '&batch=1');
    const ws = new this.#WebSocket(`${base}/ws/monitor/${encodeURIComponent(this.sessionId)}?${query}`) as WebSocketLike;
    this.#ws = ws;
    if (byMessage) ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', data: { token } }));
    let refusal: { status: number | undefined; code: string | undefined } | undefined;
    // `ws` (Node) reports a refused handshake's response (status and the catalogue code in its body); browsers cannot.
    type RefusedResponse = { statusCode?: number; setEncoding(enc: string): void; on(ev: string, fn: (chunk?: string) => void): void };
    const nodeWs = ws as unknown as { on?: (ev: string, fn: (req: unknown, res: RefusedResponse) => void) => void; terminate?: () => void };
    nodeWs.on?.('unexpected-response', (_req, res) => {
      refusal = { status: res.statusCode, code: undefined };
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk ?? ''));
      const finish = () => {
        try {
          refusal!.code = (JSON.parse(body) as { error?: { code?: string } }).error?.code;
        } catch {
          // not a catalogue answer (a proxy's page): decided by status
        }
        nodeWs.terminate?.();
      };
      res.on('end', finish);
      res.on('error', finish);
    });
    ws.onmessage = (ev) => this.#onMessage(ws, ev.data);
    ws.onerror = () => {};
    ws.onclose = (ev) => {
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      this.#rejectPending(new EscaiClientError('DISCONNECTED', 'connection closed'));
      // Decided by the close code alone (first-message auth refusals have their own, 44xx): the reason is for people.
      // An expired token (at first-message auth, or mid-session without a refresh) is worth a reconnect only
      // with a getToken to ask for a new one; as the Python watcher decides (codes.py NEEDS_NEW_TOKEN).
      const renewable = this.#opts.getToken !== undefined;
      const expired = ev.code === CloseCodes.AUTH_TOKEN_EXPIRED.code || ev.code === CloseCodes.TOKEN_EXPIRED.code;
      const needsNewToken = expired && !renewable;
      if (
        refusal !== undefined &&
        !(refusal.code === 'TOKEN_EXPIRED' && renewable) &&
        (refusal.code !== undefined ? !errorIsRetryable(refusal.code) : TERMINAL_HTTP.has(refusal.status ?? 0))
      ) {
        this.#stop(ev.code, `handshake refused with HTTP ${refusal.status}${refusal.code ? ` ${refusal.code}` : ''}`);
      } else if (!closeAllowsReconnect(ev.code) || needsNewToken) {
        this.#stop(ev.code, ev.reason || `closed with ${ev.code}`);
      } else {
        this.#scheduleReconnect(ev.code, ev.reason);
      }
    };
  }

  #stop(code: number, reason: string): void {
    this.#closeReason = reason;
    this.emit('disconnected', { code, reason, willReconnect: false });
    this.close();
  }

  #scheduleReconnect(code: number, reason: string): void {
    if (this.#state === 'closed') return;
    this.#setState('disconnected');
    this.emit('disconnected', { code, reason, willReconnect: true });
    const delay = this.#backoff(this.#attempt++, this.#opts.minReconnectDelay, this.#opts.maxReconnectDelay);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#state === 'disconnected') void this.#open();
    }, delay);
  }

  #setState(newState: ClientState): void {
    const oldState = this.#state;
    if (oldState === newState) return;
    this.#state = newState;
    this.emit('state', { oldState, newState });
  }

  #rejectPending(err: Error): void {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.#pending.clear();
  }

  // ---- inbound ---------------------------------------------------------------

  #onMessage(ws: WebSocketLike, raw: unknown): void {
    let parsed: ServerMessage | ServerMessage[];
    try {
      parsed = JSON.parse(typeof raw === 'string' ? raw : String(raw)) as ServerMessage | ServerMessage[];
    } catch {
      return;
    }
    // A batched frame carries several messages, in order.
    if (Array.isArray(parsed)) for (const msg of parsed) this.#onServerMessage(ws, msg);
    else this.#onServerMessage(ws, parsed);
  }

  #onServerMessage(ws: WebSocketLike, msg: ServerMessage): void {
    if (msg === null || typeof msg !== 'object' || typeof msg.type !== 'string') return;
    if (EVENT_TYPE_SET.has(msg.type)) {
      this.#onEvent(msg as DeliveredEvent);
      return;
    }
    const control = msg as ControlMessage;
    const id = 'id' in control ? control.id : undefined;
    const pending = typeof id === 'number' ? this.#pending.get(id) : undefined;
    if (pending) {
      this.#pending.delete(id as number);
      clearTimeout(pending.timer);
      if (control.type === 'error') pending.reject(new EscaiClientError(control.code, control.message));
      else pending.resolve(control);
      return;
    }
    switch (control.type) {
      case 'connection_established':
        void this.#onEstablished(ws, control);
        break;
      case 'ping':
        ws.send('{"type":"pong"}');
        break;
      case 'token_expiring':
        void this.#refreshToken(ws);
        break;
      case 'error':
        this.emit('error', { code: control.code, message: control.message });
        break;
      case 'recovery_failed': {
        // The server lost events of a stream beyond its history (cluster engine outage): reload.
        const { stream, offset, epoch, reason } = control.data;
        for (const sub of this.#subscriptions.values()) {
          if (!subscriptionFollows(sub.type, sub.agentId, stream)) continue;
          this.#positions.set(stream, SUBSCRIPTION_TYPES[sub.type], { offset, epoch });
          this.emit('recovery_failed', { subscription: info(sub), reason });
        }
        break;
      }
      case 'subscription_revoked': {
        const { subscription_type, agent_id, reason } = control.data;
        const sub = this.#subscriptions.get(subscriptionKey(subscription_type, agent_id ?? null));
        if (sub) {
          this.#subscriptions.delete(sub.key);
          this.emit('subscription_revoked', { subscription: info(sub), reason });
        }
        break;
      }
      default:
        break;
    }
  }

  #onEvent(event: DeliveredEvent): void {
    const { type, offset, epoch, event_id } = event;
    if (this.#positions.accept({ stream: streamOf(event), type, offset, epoch, event_id }) === 'duplicate') return;
    this.emit('event', event);
    this.emit(event.type, event);
  }

  async #onEstablished(ws: WebSocketLike, msg: ConnectionEstablished): Promise<void> {
    const resumed = msg.resumed === true;
    const reconnect = this.#connectedOnce;
    this.#connectedOnce = true;
    this.#attempt = 0;
    this.#setState('connected');
    this.emit('connected', { connectionId: msg.connection_id, sessionId: msg.session_id, userId: msg.user_id, resumed });
    if (resumed) {
      // The server restored our subscriptions and replays what we missed.
      if (msg.recovered === false) {
        for (const sub of this.#subscriptions.values()) this.emit('recovery_failed', { subscription: info(sub), reason: 'history lost during resume' });
      }
      const restored = new Set((msg.subscriptions ?? []).map((s) => subscriptionKey(s.type, s.agent_id ?? null)));
      for (const sub of this.#subscriptions.values()) {
        if (restored.has(sub.key)) {
          sub.active = true;
          settle(sub);
        } else void this.#sendSubscribe(sub);
      }
      return;
    }
    for (const sub of this.#subscriptions.values()) {
      if (this.#ws !== ws) return;
      void this.#sendSubscribe(sub, (reconnect && sub.active) || sub.fromSince);
    }
  }

  async #sendSubscribe(sub: DesiredSubscription, recovering = false): Promise<void> {
    const stream = subscriptionStream(sub.type, sub.agentId);
    const eventType = SUBSCRIPTION_TYPES[sub.type];
    const since = recovering ? this.#positions.since(stream, eventType) : undefined;
    const data: Record<string, unknown> = { type: sub.type, agent_id: sub.agentId, filters: sub.filters };
    if (since) data['since'] = since;
    if (sub.latest) data['latest'] = true;
    let confirmed: RequestReplies['subscribe']['data'];
    try {
      confirmed = (await this.request('subscribe', data)).data;
    } catch (err) {
      const code = err instanceof EscaiClientError ? err.code : 'INTERNAL_ERROR';
      if (code === 'SUBSCRIPTION_EXISTS') {
        sub.active = true;
        settle(sub);
      } else if (!transient(code)) {
        // The server refuses this subscription (permission, validation): stop asking for it.
        this.#subscriptions.delete(sub.key);
        settle(sub, err as Error);
      }
      // Transient: the next connection subscribes again.
      return;
    }
    sub.active = true;
    sub.fromSince = false;
    settle(sub);
    // Start from the confirmed position unless a replay from our own is coming (never backwards).
    const { recovered } = confirmed;
    this.#positions.confirm(stream, eventType, confirmed);
    // Without a position (all-agents subscription) or with one the server no longer
    // holds, it cannot prove nothing was missed while disconnected.
    if (recovering && since !== undefined && recovered === false) {
      this.emit('recovery_failed', { subscription: info(sub), reason: 'position no longer in history' });
    } else if (recovering && stream === null) {
      this.emit('recovery_failed', { subscription: info(sub), reason: 'session not resumed; all-agents subscriptions have no single position' });
    }
  }

  async #refreshToken(ws: WebSocketLike): Promise<void> {
    if (!this.#opts.getToken) return;
    try {
      const token = await this.#opts.getToken();
      if (this.#ws === ws && this.#state === 'connected') await this.request('refresh', { token });
    } catch (err) {
      this.emit('error', { code: err instanceof EscaiClientError ? err.code : 'REFRESH_FAILED', message: (err as Error).message });
    }
  }
}
