// The console's live connection: one SDK client per signed-in tab (the SDK
// reconnects, resumes and recovers), and small hooks the views use to follow
// its state and its events.
import { useEffect, useRef, useState } from 'preact/hooks';
import { EscaiClient } from '../client/client.js';
import type { ClientState, SubscriptionOptions } from '../client/client.js';
import type { DeliveredEvent, SubscriptionType } from '../client/index.js';

export interface LiveState {
  state: ClientState;
  /** Reconnect attempts since the last successful connection. */
  attempt: number;
  /** Why the last connection ended (code and reason), while disconnected. */
  lastClose: string | null;
  /** Why the client stopped for good (a terminal refusal). */
  stopped: string | null;
  /** Connections made so far (the views reload their snapshots on each one after the first). */
  connections: number;
}

export function createClient(token: string): EscaiClient {
  return new EscaiClient({ url: location.origin, token, sessionId: `console-${crypto.randomUUID()}`, maxReconnectDelay: 5000 });
}

/** The client's connection state, kept current. */
export function useLiveState(client: EscaiClient): LiveState {
  const [live, setLive] = useState<LiveState>({ state: client.state, attempt: 0, lastClose: null, stopped: null, connections: 0 });
  useEffect(() => {
    const offs = [
      client.on('state', ({ newState }) => setLive((l) => ({ ...l, state: newState }))),
      client.on('connecting', ({ attempt }) => setLive((l) => ({ ...l, attempt }))),
      client.on('connected', () => setLive((l) => ({ ...l, attempt: 0, lastClose: null, connections: l.connections + 1 }))),
      client.on('disconnected', ({ code, reason, willReconnect }) =>
        setLive((l) => ({ ...l, lastClose: `${code}${reason ? ` ${reason}` : ''}`, stopped: willReconnect ? null : reason || `closed with ${code}` })),
      ),
    ];
    return () => {
      for (const off of offs) off();
    };
  }, [client]);
  return live;
}

/**
 * Holds subscriptions while a view is shown (and drops them when it goes),
 * calling `onEvent` for their events. Resolves errors into `onError`.
 */
export function useSubscriptions(
  client: EscaiClient,
  wanted: ReadonlyArray<{ type: SubscriptionType; options?: SubscriptionOptions }>,
  onEvent: (event: DeliveredEvent) => void,
  onError?: (message: string) => void,
): void {
  const key = JSON.stringify(wanted);
  // The latest handlers, without resubscribing when they change.
  const handlers = useRef({ onEvent, onError });
  handlers.current = { onEvent, onError };
  useEffect(() => {
    const off = client.on('event', (event) => handlers.current.onEvent(event));
    for (const { type, options } of wanted) {
      client.subscribe(type, options).catch((err: Error & { code?: string }) => handlers.current.onError?.(`${err.code ?? 'ERROR'}: ${err.message}`));
    }
    return () => {
      off();
      for (const { type, options } of wanted) client.unsubscribe(type, options?.agentId).catch(() => {});
    };
    // `key` stands for `wanted`.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, key]);
}

/** Runs `fn` now and every `ms`, and again whenever `deps` change; stops when the view goes. */
export function usePolling(fn: () => void | Promise<void>, ms: number, deps: unknown[]): void {
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      try {
        await fn();
      } finally {
        if (!stopped) timer = setTimeout(run, ms);
      }
    };
    void run();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
}
