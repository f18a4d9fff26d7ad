// One client connection: its socket, who it is, its subscriptions, its
// inbound rate budget and liveness. Frames leave through `send`, which
// enforces the outbound byte cap; state changes only through `#setState`.
import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import type { Principal } from '../auth/permissions.js';
import type { StreamPosition } from '../engine/broker.js';
import { CloseCodes, type CloseCode, type ErrorCode } from '../protocol/codes.js';
import { isoNow } from '../protocol/messages.js';
import { TokenBucket } from './limits.js';
import type { Subscriber, Subscription } from './subscriptions.js';

export type ConnectionState = 'open' | 'closing' | 'closed';

export interface ConnectionLimits {
  maxBufferedBytes: number;
  rateLimit: number;
  rateBurst: number;
  rateLimitCloseAfter: number;
}

/** Counters shared by all connections of a node (the health endpoint reads them). */
export interface TrafficCounters {
  messagesSent: number;
  messagesReceived: number;
}

export type RequestId = string | number | undefined;

/** An outbound frame; for an event, its stream and sequence, so the position moves only once it is written. */
export interface OutFrame {
  frame: string | Buffer;
  stream?: string;
  event?: { event_id: string; offset: number; epoch: string };
}

/** Replayed event ids of a stream, suppressed on the live path until the stream passes `upTo` (events still in flight). */
interface Suppression {
  upTo: number;
  epoch: string;
  ids: ReadonlySet<string>;
}

const WS_OPEN = 1;
const TEXT_FRAME = Object.freeze({ binary: false });

function clonePositions(positions: ReadonlyMap<string, StreamPosition>): Map<string, StreamPosition> {
  const copy = new Map<string, StreamPosition>();
  for (const [stream, pos] of positions) copy.set(stream, { offset: pos.offset, epoch: pos.epoch });
  return copy;
}

export class Connection implements Subscriber {
  readonly id = randomUUID();
  readonly sessionId: string;
  readonly connectedAt = new Date();
  readonly subscriptions = new Map<string, Subscription<Connection>>();
  principal: Principal;
  /** performance.now() of the last inbound frame of any kind. */
  lastSeen = performance.now();
  /** ISO time of the last heartbeat sent (null before the first). */
  lastPing: string | null = null;
  /** Sequence number of the last publication delivered here; dedupes overlapping subscriptions. */
  lastDeliverySeq = 0;
  /** Last offset written to this client per stream: what a resumed session replays from. */
  readonly positions = new Map<string, StreamPosition>();
  /** When this session's first connection opened (inherited on resume), ms since the epoch. */
  sessionStartedAt = Date.now();
  /** Inbound messages are handled one after another, in arrival order, through this chain. */
  inbound: Promise<void> = Promise.resolve();
  /** Inbound messages accepted but not yet handled. */
  pendingInbound = 0;
  /** When the live session record was last written (ms since the epoch). */
  lastSessionSave = 0;
  /** Set when a newer connection took this one's session over: it must not park it again. */
  sessionTakenOver = false;
  /** Whether this connection took one of its user's cluster-wide connection slots. */
  holdsUserSlot = false;
  /** Token-expiry timers (token_expiring, then close 4001). */
  expiryTimers: NodeJS.Timeout[] = [];
  #held: OutFrame[] | null = null;
  #suppress: Map<string, Suppression> | null = null;
  #pingSeq = 0;
  #pingSnapshot: { seq: string; positions: Map<string, StreamPosition> } | null = null;
  #confirmed = new Map<string, StreamPosition>();
  #terminatedByServer = false;
  #advancedSinceSnapshot = false;
  #state: ConnectionState = 'open';
  readonly #ws: WebSocket;
  readonly #limits: ConnectionLimits;
  readonly #counters: TrafficCounters;
  readonly #bucket: TokenBucket;
  #droppedInARow = 0;
  #lastRateLimitNotice = Number.NEGATIVE_INFINITY;

  constructor(ws: WebSocket, principal: Principal, sessionId: string, limits: ConnectionLimits, counters: TrafficCounters) {
    this.#ws = ws;
    this.principal = principal;
    this.sessionId = sessionId;
    this.#limits = limits;
    this.#counters = counters;
    this.#bucket = new TokenBucket(limits.rateLimit, limits.rateBurst);
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get userId(): string {
    return this.principal.userId;
  }

  /** Open for sending: our state and the socket's (a close frame from the peer puts it in CLOSING before 'close' fires). */
  get isOpen(): boolean {
    return this.#state === 'open' && this.#ws.readyState === WS_OPEN;
  }

  /**
   * Queues one frame. Never blocks: a client whose unsent bytes pass the cap
   * is disconnected (4008) rather than allowed to grow the node's memory.
   */
  send(frame: string | Buffer): boolean {
    if (!this.isOpen) return false;
    if (this.#held) {
      this.#held.push({ frame });
      return true;
    }
    return this.#write(frame);
  }

  /**
   * Sends an event of `stream`. Its position counts only once the frame is
   * really written (not when held, not when refused): a session resumes from
   * what was written. False when not sent (closed, duplicate of a replay, over the cap).
   */
  sendEvent(frame: string | Buffer, stream: string, event: { event_id: string; offset: number; epoch: string }): boolean {
    if (!this.isOpen) return false;
    if (this.#suppress !== null && this.#suppressed(stream, event)) return false;
    if (this.#held) {
      this.#held.push({ frame, stream, event });
      return true;
    }
    if (!this.#write(frame)) return false;
    this.advance(stream, event.offset, event.epoch);
    return true;
  }

  #write(frame: string | Buffer): boolean {
    if (this.#ws.bufferedAmount > this.#limits.maxBufferedBytes) {
      this.close('SLOW_CONSUMER', 'send buffer over limit');
      return false;
    }
    // Events are shared Buffers; ws would send a Buffer as a binary frame. The protocol is JSON text.
    this.#ws.send(frame, TEXT_FRAME);
    this.#counters.messagesSent++;
    return true;
  }

  #suppressed(stream: string, event: { event_id: string; offset: number; epoch: string }): boolean {
    const sup = this.#suppress!.get(stream);
    if (sup === undefined) return false;
    if (event.epoch !== sup.epoch || event.offset > sup.upTo) {
      // The live stream has passed the replay: nothing later can be a duplicate.
      this.#suppress!.delete(stream);
      if (this.#suppress!.size === 0) this.#suppress = null;
      return false;
    }
    return sup.ids.has(event.event_id);
  }

  /**
   * Holds outbound frames (a replay is being prepared): sends queue until
   * `release`, so replayed events go out before anything live.
   */
  hold(): void {
    this.#held ??= [];
  }

  /**
   * Sends `first` (the reply and the replay), then the held frames except
   * events already replayed, and resumes direct sending. `positions`: where
   * each replayed stream now stands (everything up to it was considered);
   * live events of those streams still in flight with a replayed id are
   * suppressed until the stream passes that position.
   */
  release(first: readonly OutFrame[], replayedIds: ReadonlySet<string>, positions?: ReadonlyMap<string, StreamPosition>): void {
    const held = this.#held ?? [];
    this.#held = null;
    for (const out of first) this.#sendOut(out);
    for (const out of held) if (out.event === undefined || !replayedIds.has(out.event.event_id)) this.#sendOut(out);
    if (!positions || !this.isOpen) return;
    for (const [stream, pos] of positions) {
      this.advance(stream, pos.offset, pos.epoch);
      if (replayedIds.size > 0) (this.#suppress ??= new Map()).set(stream, { upTo: pos.offset, epoch: pos.epoch, ids: replayedIds });
    }
  }

  #sendOut(out: OutFrame): void {
    if (out.event !== undefined && out.stream !== undefined) this.sendEvent(out.frame, out.stream, out.event);
    else this.send(out.frame);
  }

  /** Moves the written position of `stream` forward (a new epoch replaces it). */
  advance(stream: string, offset: number, epoch: string): void {
    this.#advancedSinceSnapshot = true;
    const pos = this.positions.get(stream);
    if (pos === undefined) this.positions.set(stream, { offset, epoch });
    else if (pos.epoch !== epoch) {
      pos.offset = offset;
      pos.epoch = epoch;
    } else if (offset > pos.offset) pos.offset = offset;
  }

  sendJson(message: object): boolean {
    return this.send(JSON.stringify(message));
  }

  sendError(code: ErrorCode, message: string, requestId?: RequestId): void {
    this.sendJson({ type: 'error', code, message, timestamp: isoNow(), ...(requestId === undefined ? {} : { id: requestId }) });
  }

  /**
   * Accounts an inbound frame against the rate budget. False when it must be
   * dropped; after `rateLimitCloseAfter` drops in a row the connection closes with 1008.
   */
  admitInbound(): boolean {
    this.lastSeen = performance.now();
    this.#counters.messagesReceived++;
    if (this.#bucket.take(this.lastSeen)) {
      this.#droppedInARow = 0;
      return true;
    }
    this.#droppedInARow++;
    if (this.#droppedInARow >= this.#limits.rateLimitCloseAfter) {
      this.close('POLICY_VIOLATION', 'rate limit exceeded');
    } else if (this.lastSeen - this.#lastRateLimitNotice >= 1000) {
      // At most one notice a second, so a flood is not answered with a flood.
      this.#lastRateLimitNotice = this.lastSeen;
      this.sendError('RATE_LIMITED', 'Too many messages; message dropped');
    }
    return false;
  }

  /** Sends a close frame; the socket is terminated if the peer does not answer within `graceMs`. */
  close(reason: CloseCode, text: string = CloseCodes[reason].description, graceMs = 2000): void {
    if (this.#state !== 'open') return;
    this.#setState('closing');
    this.#ws.close(CloseCodes[reason].code, text.slice(0, 120));
    const timer = setTimeout(() => {
      this.#terminatedByServer = true;
      this.#ws.terminate();
    }, graceMs);
    timer.unref();
    this.#ws.once('close', () => clearTimeout(timer));
  }

  /** Drops the TCP connection at once (dead peer). */
  terminate(): void {
    if (this.#state === 'closed') return;
    this.#terminatedByServer = true;
    this.#setState('closing');
    this.#ws.terminate();
  }

  /**
   * Protocol-level ping frame, carrying a sequence number. The positions
   * written so far are snapshotted: when the matching pong returns, the
   * client has read everything up to them (TCP keeps order), so they are
   * confirmed. An unclean drop resumes from the confirmed positions.
   */
  ping(): void {
    if (this.#state !== 'open') return;
    const seq = String(++this.#pingSeq);
    // Snapshot only when something was written since the last one (an idle connection costs nothing),
    // and never while frames are held: a pong must not confirm what was not yet sent.
    if (this.#advancedSinceSnapshot && this.#held === null) {
      this.#pingSnapshot = { seq, positions: clonePositions(this.positions) };
      this.#advancedSinceSnapshot = false;
    }
    this.#ws.ping(seq);
  }

  /** A pong frame arrived. True when it confirmed new positions. */
  onPong(payload: Buffer): boolean {
    this.lastSeen = performance.now();
    const snapshot = this.#pingSnapshot;
    if (snapshot && payload.toString() === snapshot.seq) {
      this.#confirmed = snapshot.positions;
      this.#pingSnapshot = null;
      return true;
    }
    return false;
  }

  /** Pings the peer now; resolves true if anything comes back within `timeoutMs` (the peer is alive). */
  probe(timeoutMs: number): Promise<boolean> {
    if (!this.isOpen) return Promise.resolve(false);
    const before = this.lastSeen;
    this.#ws.ping('probe');
    return new Promise((resolve) => {
      const started = performance.now();
      const check = setInterval(() => {
        if (this.lastSeen > before) finish(true);
        else if (!this.isOpen || performance.now() - started >= timeoutMs) finish(false);
      }, 10);
      const finish = (alive: boolean) => {
        clearInterval(check);
        resolve(alive);
      };
    });
  }

  /** Positions a pong has confirmed the client read. */
  get confirmedPositions(): ReadonlyMap<string, StreamPosition> {
    return this.#confirmed;
  }

  /** Positions known to have been read before the last connection's start (resume base). */
  setConfirmedBase(positions: Map<string, StreamPosition>): void {
    this.#confirmed = clonePositions(positions);
  }

  /**
   * Where a resumed session should start per stream. When the peer ended the
   * connection (close frame, FIN/RST), everything written before was handed
   * to its TCP stack: resume after it (exactly once). When the server had to
   * terminate the socket (heartbeat timeout: a silently dead peer; a close
   * handshake that never completed), written frames may have been lost:
   * resume from what a pong confirmed (at least once; duplicates carry the
   * same event_id).
   */
  resumePositions(): ReadonlyMap<string, StreamPosition> {
    return this.#terminatedByServer ? this.#confirmed : this.positions;
  }

  /** Called once the socket has closed; the node then removes every trace of the connection. */
  markClosed(): void {
    this.#setState('closed');
    for (const t of this.expiryTimers) clearTimeout(t);
    this.expiryTimers = [];
    this.#held = null;
  }

  #setState(next: ConnectionState): void {
    if (this.#state === next) return;
    this.#state = next;
  }
}
