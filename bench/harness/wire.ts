// The wire of each server under test, seen from a raw `ws` client: how to
// connect, subscribe, publish and recognise an acknowledgement. Every server
// is driven by the same `ws` client code so the client side costs the same:
// deliveries are counted by searching the frame bytes for
// `"type":"epistemic_update"` (no parse); only sampled subscribers parse
// frames, to read `data.sent_at` for latency.
//
//   ws          bench/peer-ws-floor.ts: the raw `ws` floor (no auth, no checks).
//   socketio    bench/peer-socketio-server.ts, spoken as Engine.IO 4 /
//               Socket.IO 5 packets ("0" open, "40" connect, "42" event,
//               "43" ack, "2"/"3" ping/pong).
//   escai       ESCAI Realtime, one event per frame.
//   escai-batch ESCAI Realtime with `batch=1`: a frame holds one message or a
//               JSON array of messages.
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';

export type Kind = 'ws' | 'socketio' | 'escai' | 'escai-batch';
export const KIND_LABEL: Readonly<Record<Kind, string>> = {
  ws: 'raw ws floor',
  socketio: 'Socket.IO 4',
  escai: 'ESCAI unbatched',
  'escai-batch': 'ESCAI batched',
};

/** What one subscriber subscribes to. */
export interface SubscribeSpec {
  agent: string;
  /** ESCAI filter object (docs/PROTOCOL.md#filters); the peers ignore it. */
  filters?: Record<string, unknown>;
}

/** The event every server carries: the producer's object, as ESCAI's publish takes it. */
export interface BenchEvent {
  type: 'epistemic_update';
  agent_id: string;
  data: Record<string, unknown> & { sent_at: number };
}

const PATTERN = Buffer.from('"type":"epistemic_update"');

/** Wall-clock milliseconds with sub-ms resolution, comparable across processes on one machine. */
export function clock(): number {
  return performance.timeOrigin + performance.now();
}

/** Deliveries in one frame, without parsing it. */
export function countEvents(frame: Buffer): number {
  let n = 0;
  let at = frame.indexOf(PATTERN);
  while (at !== -1) {
    n++;
    at = frame.indexOf(PATTERN, at + PATTERN.length);
  }
  return n;
}

/** `data.sent_at` of every event in a frame (sampled subscribers only). */
export function sentTimes(kind: Kind, frame: Buffer): number[] {
  let text = frame.toString();
  if (kind === 'socketio') {
    if (!text.startsWith('42')) return [];
    text = text.slice(2);
    const packet = JSON.parse(text) as [string, BenchEvent];
    return packet[0] === 'epistemic_update' ? [packet[1].data.sent_at] : [];
  }
  const parsed = JSON.parse(text) as { type?: string; data?: { sent_at?: number } } | Array<{ type?: string; data?: { sent_at?: number } }>;
  const items = Array.isArray(parsed) ? parsed : [parsed];
  const out: number[] = [];
  for (const m of items) if (m.type === 'epistemic_update' && typeof m.data?.sent_at === 'number') out.push(m.data.sent_at);
  return out;
}

/** Where a client of this kind connects. `id` names the connection (ESCAI session id). */
export function clientUrl(kind: Kind, base: string, id: string, token: string): string {
  const ws = base.replace(/^http/, 'ws');
  switch (kind) {
    case 'ws':
      return `${ws}/ws`;
    case 'socketio':
      return `${ws}/socket.io/?EIO=4&transport=websocket`;
    case 'escai':
      return `${ws}/ws/monitor/${id}?token=${token}`;
    case 'escai-batch':
      return `${ws}/ws/monitor/${id}?token=${token}&batch=1`;
  }
}

function subscribeFrame(kind: Kind, spec: SubscribeSpec): string {
  if (kind === 'socketio') return `420${JSON.stringify(['subscribe', spec.agent])}`;
  const data: Record<string, unknown> = { type: 'epistemic_updates', agent_id: spec.agent };
  if (spec.filters && kind !== 'ws') data['filters'] = spec.filters;
  return JSON.stringify({ type: 'subscribe', data });
}

/** A publish frame; `id` numbers Socket.IO acks. */
export function publishFrame(kind: Kind, event: BenchEvent, id: number): string {
  if (kind === 'socketio') return `42${id}${JSON.stringify(['publish', event])}`;
  return JSON.stringify({ type: 'publish', data: event });
}

/** Whether a frame to the producer acknowledges a publish / reports an error. */
export function isAck(kind: Kind, frame: Buffer): boolean {
  if (kind === 'socketio') return frame[0] === 0x34 && frame[1] === 0x33; // "43"
  return frame.includes('"publish_confirmed"');
}
export function isError(kind: Kind, frame: Buffer): boolean {
  return kind !== 'socketio' && frame.includes('"type":"error"');
}

export interface OpenOptions {
  kind: Kind;
  url: string;
  /** Subscribe after the first server message, and resolve once the subscription is confirmed. */
  subscribe?: SubscribeSpec;
  /** Called for every frame once open (and subscribed). */
  onFrame(frame: Buffer): void;
  /** Called when the socket closes after it was open. */
  onClose(): void;
  timeoutMs?: number;
}

/**
 * Opens one client and runs its handshake: resolves when the server's first
 * message arrived (and, with `subscribe`, the subscription is confirmed).
 * Socket.IO: the Engine.IO open packet, then our "40" answered by the
 * namespace's "40{sid}" (its first message), then "420[subscribe]" answered
 * by the ack "430".
 */
export function openClient(o: OpenOptions): Promise<WebSocket> {
  return new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(o.url, { perMessageDeflate: false, skipUTF8Validation: true });
    let stage: 'open' | 'first' | 'confirm' | 'ready' = o.kind === 'socketio' ? 'open' : 'first';
    const timer = setTimeout(() => fail(new Error('handshake timeout')), o.timeoutMs ?? 30_000);
    const fail = (err: Error) => {
      if (stage === 'ready') return;
      clearTimeout(timer);
      stage = 'ready';
      ws.terminate();
      reject(err);
    };
    const ready = () => {
      stage = 'ready';
      clearTimeout(timer);
      resolve(ws);
    };
    ws.on('error', (err) => fail(err));
    ws.on('close', () => {
      if (stage === 'ready') o.onClose();
      else fail(new Error('closed during handshake'));
    });
    ws.on('message', (raw: Buffer) => {
      if (o.kind === 'socketio' && raw.length === 1 && raw[0] === 0x32) {
        ws.send('3'); // Engine.IO ping → pong
        return;
      }
      switch (stage) {
        case 'ready':
          o.onFrame(raw);
          return;
        case 'open': // Engine.IO open packet
          ws.send('40');
          stage = 'first';
          return;
        case 'first':
          if (o.kind === 'socketio' && !raw.toString().startsWith('40')) return;
          if (!o.subscribe) return ready();
          ws.send(subscribeFrame(o.kind, o.subscribe));
          stage = 'confirm';
          return;
        case 'confirm': {
          const confirmed = o.kind === 'socketio' ? raw.toString().startsWith('430') : raw.includes('"subscription_confirmed"');
          if (confirmed) {
            ready();
            if (o.kind !== 'socketio' && countEvents(raw) > 0) o.onFrame(raw);
          } else if (raw.includes('"type":"error"')) fail(new Error(`subscribe refused: ${raw.toString().slice(0, 200)}`));
          return;
        }
      }
    });
  });
}
