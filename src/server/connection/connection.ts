// One client connection: its socket, who it is, its outbound path (byte cap,
// batching; the merge of a replay with live frames and the written and
// confirmed positions are pure units of src/core, made on first use), its
// inbound path (rate budget, one-at-a-time queue) and its liveness. Every field is
// private; the lifecycle moves only through `#setState`, whose transitions the
// node observes through its ConnectionHooks (one object per node, shared by
// every connection: no per-connection closures).
import { randomUUID } from 'node:crypto';
import type { RawData, WebSocket } from 'ws';
import type { Principal } from '../../auth/permissions.js';
import { NO_POSITIONS, StreamPositions } from '../../core/positions.js';
import { RecoveryMerge, type EventRef, type OutFrame } from '../../core/recovery-merge.js';
import { CloseCodes, type CloseCode, type ErrorCode } from '../../protocol/codes.js';
import { ServerMessages, type ControlMessage, type RequestId, type StreamPosition } from '../../protocol/server-messages.js';
import type { BatchLimits, FlushScheduler } from './batching.js';
import type { NodeCounters } from '../node/counters.js';
import { decodeMessage, frameText, type Decoded } from './decode.js';
import { TokenBucket } from '../edge/limits.js';

export type ConnectionState = 'open' | 'closing' | 'closed';

export interface StateChange {
  oldState: ConnectionState;
  newState: ConnectionState;
  /** Why the server closed it (on the transition out of `open`, when the server decided). */
  reason?: CloseCode;
}

/** What the node does when something happens on one of its connections. */
export interface ConnectionHooks {
  /** Every transition of every connection; `closed` is final (the socket is gone or was terminated). */
  stateChanged(conn: Connection, change: StateChange): void;
  /** One inbound message, decoded and admitted by its rate budget; handled one at a time per connection, in order. */
  message(conn: Connection, decoded: Decoded): Promise<void>;
  /** A pong arrived; `confirmed` when it confirmed newly written positions. */
  pong(conn: Connection, confirmed: boolean): void;
  socketError(conn: Connection, err: Error): void;
}

export interface ConnectionLimits extends Pick<BatchLimits, 'batchMaxMessages' | 'batchMaxBytes'> {
  maxBufferedBytes: number;
  /** Control messages (everything but publish) per second, and the burst. */
  rateLimit: number;
  rateBurst: number;
  rateLimitCloseAfter: number;
  /** Events published per second through `publish` messages (a batch counts its events), and the burst. */
  publishRate: number;
  publishBurst: number;
}

/** What a connection is opened with: decided by the upgrade gate before the 101. */
export interface Admission {
  principal: Principal;
  sessionId: string;
  /** When the session began: now, or the resumed session's start (ms since the epoch). */
  sessionStartedAt: number;
  /** Whether the gate took one of the user's cluster-wide connection slots for it. */
  holdsUserSlot: boolean;
  /** The client's address (per-address caps). */
  remoteAddress: string;
  /** The client asked for batched frames (`?batch=1`): several messages may share one frame, as a JSON array. */
  batch: boolean;
}

/** Inbound messages one connection may have waiting to be handled; more closes it with 1008. */
export const MAX_PENDING_INBOUND = 256;

/**
 * Publishes one connection may have issued to the engine and not yet
 * answered. Up to this many are pipelined (a producer's events are appended
 * in order without waiting a round trip each); beyond it the next message
 * waits for the oldest answer.
 */
export const MAX_PIPELINED_PUBLISHES = 64;

const WS_OPEN = 1;
const TEXT_FRAME = Object.freeze({ binary: false });
const CONNECTION = Symbol('escai.connection');
type TaggedSocket = WebSocket & { [CONNECTION]: Connection };

export class Connection {
  readonly id = randomUUID();
  readonly sessionId: string;
  /** When this connection opened, ms since the epoch (a number: a Date per connection costs more). */
  readonly connectedAtMs = Date.now();
  /** When this session's first connection opened (inherited on resume), ms since the epoch. */
  readonly sessionStartedAt: number;
  /** Whether this connection holds one of its user's cluster-wide connection slots (given back when it closes). */
  readonly holdsUserSlot: boolean;
  /** The client's address, as the gate counted it. */
  readonly remoteAddress: string;
  #principal: Principal;
  #state: ConnectionState = 'open';
  readonly #ws: TaggedSocket;
  readonly #limits: ConnectionLimits;
  readonly #counters: NodeCounters;
  readonly #hooks: ConnectionHooks;
  // liveness
  #lastSeen = performance.now();
  #lastPing: string | null = null;
  #terminatedByServer = false;
  // outbound
  #lastDeliverySeq = 0;
  /** A replay's merge with live frames: made by `hold`, dropped once nothing is held or suppressed. */
  #merge: RecoveryMerge | null = null;
  /** Written and confirmed positions (what a resumed session replays from): made on the first written event. */
  #positions: StreamPositions | null = null;
  #pingSeq = 0;
  // inbound
  readonly #bucket: TokenBucket;
  /** The publishing budget, made on the first publish (a subscriber never needs one). */
  #publishBucket: TokenBucket | null = null;
  #droppedInARow = 0;
  #lastRateLimitNotice = Number.NEGATIVE_INFINITY;
  /** The last queued inbound task (null when none is waiting or running). */
  #inbound: Promise<void> | null = null;
  #pendingInbound = 0;
  /** The reply of the last publish whose engine call is issued (null when none is pending): replies go out in order. */
  #publishReplies: Promise<void> | null = null;
  #publishesInFlight = 0;
  /** Bytes a replay may add above the slow-consumer cap while it drains. */
  #allowance = 0;
  // batching (only when the client asked for it)
  readonly #batcher: FlushScheduler | undefined;
  /** A message went out since the last flush: the next ones wait for the flush (coalesced). */
  #coalescing = false;
  /** Messages waiting for the flush, and their bytes (arrays made on first use and reused). */
  #batch: Array<string | Buffer> | null = null;
  #batchBytes = 0;
  /** Events among them, as (stream, event) pairs: their positions move when the frame is written. */
  #batchEvents: Array<string | { event_id: string; offset: number; epoch: string }> | null = null;

  /** `batcher`: the node's flush scheduler, for a client that asked for batched frames. */
  constructor(ws: WebSocket, admission: Admission, limits: ConnectionLimits, counters: NodeCounters, hooks: ConnectionHooks, batcher?: FlushScheduler) {
    this.#ws = ws as TaggedSocket;
    this.#principal = admission.principal;
    this.sessionId = admission.sessionId;
    this.sessionStartedAt = admission.sessionStartedAt;
    this.holdsUserSlot = admission.holdsUserSlot;
    this.remoteAddress = admission.remoteAddress;
    this.#limits = limits;
    this.#counters = counters;
    this.#hooks = hooks;
    this.#batcher = admission.batch ? batcher : undefined;
    this.#bucket = new TokenBucket(limits.rateLimit, limits.rateBurst);
    // Module-level listeners find their connection on the socket: nothing allocated per connection for them.
    this.#ws[CONNECTION] = this;
    ws.on('message', Connection.#onMessage);
    ws.on('pong', Connection.#onPong);
    ws.on('ping', Connection.#onPing);
    ws.on('error', Connection.#onError);
    // `on`, not `once` (close comes once): `once` would allocate a wrapper per connection.
    ws.on('close', Connection.#onClose);
  }

  static #onMessage(this: WebSocket, data: RawData): void {
    (this as TaggedSocket)[CONNECTION].#receive(data);
  }

  static #onPong(this: WebSocket, payload: Buffer): void {
    const conn = (this as TaggedSocket)[CONNECTION];
    conn.#hooks.pong(conn, conn.#pongArrived(payload));
  }

  static #onPing(this: WebSocket): void {
    (this as TaggedSocket)[CONNECTION].#lastSeen = performance.now();
  }

  static #onError(this: WebSocket, err: Error): void {
    const conn = (this as TaggedSocket)[CONNECTION];
    conn.#hooks.socketError(conn, err);
  }

  static #onClose(this: WebSocket): void {
    (this as TaggedSocket)[CONNECTION].#setState('closed');
  }

  // ---- identity and lifecycle ------------------------------------------------

  get state(): ConnectionState {
    return this.#state;
  }

  get principal(): Principal {
    return this.#principal;
  }

  get userId(): string {
    return this.#principal.userId;
  }

  /** Replaces the token's principal (a refresh of the same user). */
  setPrincipal(principal: Principal): void {
    if (principal.userId !== this.#principal.userId) throw new Error('a connection cannot change user');
    this.#principal = principal;
  }

  /** Open for sending: our state and the socket's (a close frame from the peer puts it in CLOSING before 'close' fires). */
  get isOpen(): boolean {
    return this.#state === 'open' && this.#ws.readyState === WS_OPEN;
  }

  /** The one door of the lifecycle: open → closing → closed (or open → closed). */
  #setState(newState: ConnectionState, reason?: CloseCode): void {
    const oldState = this.#state;
    if (oldState === newState || oldState === 'closed') return;
    this.#state = newState;
    if (newState === 'closed') {
      this.#merge = null;
      this.#batch = null;
      this.#batchEvents = null;
      this.#batchBytes = 0;
    }
    this.#hooks.stateChanged(this, reason === undefined ? { oldState, newState } : { oldState, newState, reason });
  }

  /** Sends a close frame; the socket is terminated if the peer does not answer within `graceMs`. */
  close(reason: CloseCode, text: string = CloseCodes[reason].description, graceMs = 2000): void {
    if (this.#state !== 'open') return;
    // What is batched goes out before the close frame.
    this.flush();
    this.#setState('closing', reason);
    this.#ws.close(CloseCodes[reason].code, text.slice(0, 120));
    const timer = setTimeout(() => this.terminate(), graceMs);
    timer.unref();
    this.#ws.once('close', () => clearTimeout(timer));
  }

  /** Drops the TCP connection at once (a dead peer, a session taken over). The connection is closed from here on. */
  terminate(): void {
    if (this.#state === 'closed') return;
    this.#terminatedByServer = true;
    this.#ws.terminate();
    this.#setState('closed');
  }

  // ---- outbound ----------------------------------------------------------------

  /**
   * Queues one frame. Never blocks: a client whose unsent bytes pass the cap
   * is disconnected (4008) rather than allowed to grow the node's memory.
   */
  send(frame: string | Buffer): boolean {
    if (!this.isOpen) return false;
    if (this.#merge !== null && this.#merge.offerFrame(frame) === 'held') return true;
    return this.#write(frame);
  }

  /** Sends a control message. */
  sendMessage(message: ControlMessage): boolean {
    return this.send(JSON.stringify(message));
  }

  sendError(code: ErrorCode, message: string, requestId?: RequestId): void {
    this.sendMessage(ServerMessages.error(code, message, requestId));
  }

  /**
   * Marks publication `seq` as delivered here; false when it already was (a
   * connection with overlapping subscriptions gets one copy).
   */
  claimDelivery(seq: number): boolean {
    if (this.#lastDeliverySeq === seq) return false;
    this.#lastDeliverySeq = seq;
    return true;
  }

  /** Whether publication `seq` was already delivered here (through another subscription). */
  deliveredNow(seq: number): boolean {
    return this.#lastDeliverySeq === seq;
  }

  /**
   * Sends an event of `stream`. Its position counts only once the frame is
   * really written (not when held, not when refused): a session resumes from
   * what was written. False when not sent (closed, duplicate of a replay, over the cap).
   */
  sendEvent(frame: string | Buffer, stream: string, event: EventRef): boolean {
    if (!this.isOpen) return false;
    const merge = this.#merge;
    if (merge !== null) {
      const offer = merge.offerEvent(frame, stream, event);
      if (offer !== 'send') return offer === 'held';
      if (merge.idle) this.#merge = null;
    }
    return this.#writeEvent(frame, stream, event);
  }

  /** Writes (or batches) an event past the merge; its position moves once it is written. */
  #writeEvent(frame: string | Buffer, stream: string, event: EventRef): boolean {
    if (!this.isOpen) return false;
    if (this.#batcher !== undefined) return this.#queue(frame, stream, event);
    if (!this.#write(frame)) return false;
    this.advance(stream, event.offset, event.epoch);
    return true;
  }

  /** Whether unsent bytes (the socket's and the batch's) allow one more frame; past the cap the client is closed as a slow consumer. */
  #underCap(): boolean {
    const buffered = this.#ws.bufferedAmount + this.#batchBytes;
    if (buffered > this.#limits.maxBufferedBytes + this.#allowance) {
      this.close('SLOW_CONSUMER', 'send buffer over limit');
      return false;
    }
    // The allowance a replay granted lasts until the buffer is back under the cap.
    if (this.#allowance > 0 && buffered <= this.#limits.maxBufferedBytes) this.#allowance = 0;
    return true;
  }

  #write(frame: string | Buffer): boolean {
    if (this.#batcher !== undefined) return this.#queue(frame);
    if (!this.#underCap()) return false;
    // Events are shared Buffers; ws would send a Buffer as a binary frame. The protocol is JSON text.
    this.#ws.send(frame, TEXT_FRAME);
    this.#counters.messagesSent++;
    return true;
  }

  /**
   * Sends a message of a batching connection. The first one since the last
   * flush goes out at once (a lone message is never held back); the ones
   * that follow before the node's flush (the end of the event-loop turn, or
   * batchMaxDelay) are coalesced into one frame, written then, or at once
   * when the batch is full.
   */
  #queue(frame: string | Buffer, stream?: string, event?: EventRef): boolean {
    if (!this.#underCap()) return false;
    if (!this.#coalescing) {
      this.#coalescing = true;
      this.#batcher!.schedule(this);
      this.#ws.send(frame, TEXT_FRAME);
      this.#counters.messagesSent++;
      if (stream !== undefined) this.advance(stream, event!.offset, event!.epoch);
      return true;
    }
    const bytes = typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length;
    const batch = (this.#batch ??= []);
    // The array's brackets and commas count too: a frame of n messages has n + 1 more bytes.
    if (batch.length > 0 && this.#batchBytes + bytes + batch.length + 2 > this.#limits.batchMaxBytes) this.#writeBatch();
    batch.push(frame);
    this.#batchBytes += bytes;
    if (stream !== undefined) (this.#batchEvents ??= []).push(stream, event!);
    this.#counters.messagesSent++;
    if (batch.length >= this.#limits.batchMaxMessages) this.#writeBatch();
    return true;
  }

  /** The node's flush (and a close): writes what is batched; the next message goes out at once again. */
  flush(): void {
    this.#coalescing = false;
    this.#writeBatch();
  }

  /**
   * Writes what is batched as one frame (a lone message as itself, several
   * as a JSON array) and moves the positions of the events in it. A no-op
   * when nothing is pending.
   */
  #writeBatch(): void {
    const batch = this.#batch;
    if (batch === null || batch.length === 0) return;
    const bytes = this.#batchBytes;
    this.#batchBytes = 0;
    if (this.isOpen) this.#ws.send(batch.length === 1 ? batch[0]! : this.#batcher!.encode(batch, bytes), TEXT_FRAME);
    const written = this.isOpen;
    batch.length = 0;
    const events = this.#batchEvents;
    if (events === null || events.length === 0) return;
    if (written) {
      for (let i = 0; i < events.length; i += 2) {
        const event = events[i + 1] as { offset: number; epoch: string };
        this.advance(events[i] as string, event.offset, event.epoch);
      }
    }
    events.length = 0;
  }

  /**
   * Holds outbound frames (a reply and its replay are being prepared): sends
   * queue until `release`, so replayed events go out before anything live.
   */
  hold(): void {
    if (this.#state !== 'closed') (this.#merge ??= new RecoveryMerge()).hold();
  }

  /** The lowest offset of `stream` (in `epoch`) among the held events, if any is held. */
  firstHeldOffset(stream: string, epoch: string): number | undefined {
    return this.#merge?.firstHeldOffset(stream, epoch);
  }

  /**
   * Sends `first` (the reply and the replay), then the held frames except
   * events already replayed, and resumes direct sending. `positions`: where
   * each replayed stream now stands (everything up to it was considered);
   * live events of those streams still in flight with a replayed id are
   * suppressed until the stream passes that position (core/recovery-merge.ts).
   */
  release(first: readonly OutFrame[], replayedIds: ReadonlySet<string> = new Set(), positions?: ReadonlyMap<string, StreamPosition>): void {
    const merge = (this.#merge ??= new RecoveryMerge());
    const out = merge.release(first, replayedIds, this.isOpen ? positions : undefined);
    if (merge.idle) this.#merge = null;
    // A replay is written at once and bounded (REPLAY_LIMITS): it may exceed the slow-consumer cap by its
    // own size, once, instead of cutting off a client that reads fine but was sent a burst.
    for (const f of first) this.#allowance += f.frame.length;
    for (const f of out) {
      if (f.event !== undefined && f.stream !== undefined) this.#writeEvent(f.frame, f.stream, f.event);
      else if (this.isOpen) this.#write(f.frame);
    }
    if (!positions || !this.isOpen) return;
    for (const [stream, pos] of positions) this.advance(stream, pos.offset, pos.epoch);
  }

  /** Moves the written position of `stream` forward (a new epoch replaces it; see core/positions.ts). */
  advance(stream: string, offset: number, epoch: string): void {
    (this.#positions ??= new StreamPositions()).advance(stream, offset, epoch);
  }

  // ---- positions (what a resumed session starts from) ---------------------------

  /** Positions a pong has confirmed the client read. */
  get confirmedPositions(): ReadonlyMap<string, StreamPosition> {
    return this.#positions?.confirmed ?? NO_POSITIONS;
  }

  /** Positions known to have been read before this connection started (a resumed session's base). */
  setConfirmedBase(positions: ReadonlyMap<string, StreamPosition>): void {
    (this.#positions ??= new StreamPositions()).setConfirmedBase(positions);
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
    return this.#positions?.resume(this.#terminatedByServer) ?? NO_POSITIONS;
  }

  // ---- liveness ------------------------------------------------------------------

  /** performance.now() of the last inbound frame of any kind. */
  get lastSeen(): number {
    return this.#lastSeen;
  }

  /** ISO time of the last heartbeat sent (null before the first). */
  get lastPing(): string | null {
    return this.#lastPing;
  }

  /**
   * One heartbeat: a protocol ping frame carrying a sequence number, then the
   * ESCAI JSON ping (`frame`, shared by every connection of the tick). The
   * positions written so far are snapshotted: when the matching pong returns,
   * the client has read everything up to them (TCP keeps order), so they are
   * confirmed. An unclean drop resumes from the confirmed positions.
   */
  heartbeat(frame: Buffer, timestamp: string): void {
    if (!this.isOpen) return;
    const seq = String(++this.#pingSeq);
    // Snapshot only when something was written since the last one (an idle connection costs nothing),
    // and never while frames are held: a pong must not confirm what was not yet sent.
    if (this.#positions !== null && this.#merge?.holding !== true) this.#positions.heartbeat(seq);
    this.#ws.ping(seq);
    this.send(frame);
    this.#lastPing = timestamp;
  }

  /** A pong frame arrived. True when it confirmed new positions. */
  #pongArrived(payload: Buffer): boolean {
    this.#lastSeen = performance.now();
    return this.#positions?.awaitingPong === true && this.#positions.pong(payload.toString());
  }

  /** Pings the peer now; resolves true if anything comes back within `timeoutMs` (the peer is alive). */
  probe(timeoutMs: number): Promise<boolean> {
    if (!this.isOpen) return Promise.resolve(false);
    const before = this.#lastSeen;
    this.#ws.ping('probe');
    return new Promise((resolve) => {
      const started = performance.now();
      const check = setInterval(() => {
        if (this.#lastSeen > before) finish(true);
        else if (!this.isOpen || performance.now() - started >= timeoutMs) finish(false);
      }, 10);
      const finish = (alive: boolean) => {
        clearInterval(check);
        resolve(alive);
      };
    });
  }

  // ---- inbound -------------------------------------------------------------------

  /**
   * Runs `task` after every message and task queued before it, so replies
   * keep the order of requests (a resumed session's replay goes first).
   */
  enqueue(task: () => Promise<void>): void {
    this.#pendingInbound++;
    const queued = (this.#inbound ?? Promise.resolve()).then(task).finally(() => {
      // Nothing left behind it: drop the chain, an idle connection keeps no promise.
      if (--this.#pendingInbound === 0 && this.#inbound === queued) this.#inbound = null;
    });
    this.#inbound = queued;
  }

  /** Handles a message that arrived before the connection existed (first-message auth), as if it arrived now. */
  receive(data: RawData): void {
    this.#receive(data);
  }

  /**
   * Accepts one inbound frame: decodes it, counts it against its rate budget
   * at once (a publish against the publishing budget, by events; anything
   * else against the control budget), then queues it behind the
   * connection's earlier messages.
   */
  #receive(data: RawData): void {
    const decoded = decodeMessage(frameText(data));
    if (!this.#admitInbound(decoded)) return;
    // Bounded: a client whose requests pile up faster than they are handled is cut off, not buffered without end.
    if (this.#pendingInbound >= MAX_PENDING_INBOUND) {
      this.close('POLICY_VIOLATION', 'too many requests in flight');
      return;
    }
    const handle = () => (this.isOpen ? this.#hooks.message(this, decoded) : Promise.resolve());
    // A publish goes on as soon as its engine call is issued (./handlers.ts); anything else first lets
    // the pending publishes answer, so every reply keeps the order of the requests.
    if (decoded.ok && decoded.type === 'publish') this.enqueue(handle);
    else this.enqueue(() => (this.#publishReplies === null ? handle() : this.#publishReplies.then(handle)));
  }

  /**
   * A publish whose engine call was just issued, in arrival order (the
   * engine appends in that order): its reply is sent after the replies of the
   * publishes before it, while the connection's next messages are handled.
   * Resolves when the next message may be handled: at once, or, with
   * MAX_PIPELINED_PUBLISHES pending, once this reply is sent. `reply` must not reject.
   */
  pipelinePublish(reply: Promise<ControlMessage>): Promise<void> {
    this.#publishesInFlight++;
    const previous = this.#publishReplies;
    const sent: Promise<void> = (previous === null ? reply : previous.then(() => reply))
      .then((message) => {
        this.sendMessage(message);
      })
      .finally(() => {
        if (--this.#publishesInFlight === 0 && this.#publishReplies === sent) this.#publishReplies = null;
      });
    this.#publishReplies = sent;
    return this.#publishesInFlight >= MAX_PIPELINED_PUBLISHES ? sent : Promise.resolve();
  }

  /**
   * Accounts an inbound message against its rate budget. False when it must
   * be dropped; after `rateLimitCloseAfter` drops in a row the connection
   * closes with 1008. A dropped publish, and any dropped request with an id,
   * is answered (with its request id, in request order): a producer must know
   * its events were not published, a client waiting for a reply gets one.
   * Messages without an id get at most one notice a second.
   */
  #admitInbound(decoded: Decoded): boolean {
    const now = (this.#lastSeen = performance.now());
    this.#counters.messagesReceived++;
    const publish = decoded.ok && decoded.type === 'publish';
    let admitted: boolean;
    if (publish) {
      const limits = this.#limits;
      const events = Array.isArray(decoded.data) ? Math.max(1, decoded.data.length) : 1;
      // A batch as large as the whole burst costs the whole burst (it is never refused for its size alone).
      admitted = (this.#publishBucket ??= new TokenBucket(limits.publishRate, limits.publishBurst, now)).take(now, Math.min(events, limits.publishBurst));
    } else admitted = this.#bucket.take(now);
    if (admitted) {
      this.#droppedInARow = 0;
      return true;
    }
    this.#droppedInARow++;
    this.#counters.rateLimited++;
    if (this.#droppedInARow >= this.#limits.rateLimitCloseAfter) {
      this.close('POLICY_VIOLATION', 'rate limit exceeded');
    } else if (publish || decoded.id !== undefined) {
      // A request with an id is answered, in its turn: after the replies of every request before it
      // (pipelined publishes still in flight). At most rateLimitCloseAfter of these before the close.
      const message = publish
        ? `Publishing over ${this.#limits.publishRate} events/s on this connection; not published, retry later`
        : 'Too many messages; request dropped, retry later';
      const id = decoded.id; // only the id is kept while the reply waits, not the message
      const refuse = () => this.sendError('RATE_LIMITED', message, id);
      if (this.#inbound === null && this.#publishReplies === null) refuse();
      else if (this.#pendingInbound >= MAX_PENDING_INBOUND) this.close('POLICY_VIOLATION', 'too many requests in flight');
      else this.enqueue(async () => (this.#publishReplies === null ? refuse() : this.#publishReplies.then(refuse)));
    } else if (now - this.#lastRateLimitNotice >= 1000) {
      // At most one notice a second, so a flood is not answered with a flood.
      this.#lastRateLimitNotice = now;
      this.sendError('RATE_LIMITED', 'Too many messages; message dropped');
    }
    return false;
  }
}
