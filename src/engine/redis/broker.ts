// The Redis broker: several nodes, one system. Streams live in Redis: one Lua
// script assigns the next offset, appends to a Redis Stream (trimmed by count
// and age) and publishes on the stream's own channel, atomically, so offsets
// stay gap-free and ordered whichever node publishes. A node subscribes only
// to the channels of streams it has subscribers for (and to the pattern of a
// stream family, every agent or every activity channel, while it follows
// that family's wildcard), so its pub/sub traffic is its own interest, not
// the whole cluster's.
//
// Pub/sub is fire-and-forget, so gaps are never trusted to not happen: a node
// that sees an offset jump fills it from the stream before delivering further,
// a periodic position check covers quiet streams (a lost last message), and a
// gap history no longer covers is reported through the loss handler. That
// ordering is the pure StreamSequencer's (src/core/sequencer.ts), one per
// tracked stream; this class only does its I/O. Whatever it receives and
// does not deliver is counted by reason (`drops`) and logged at debug.
import { randomBytes } from 'node:crypto';
import { StreamSequencer, UNKNOWN_EPOCH, type FillResult, type Verdict } from '../../core/sequencer.js';
import { EngineUnavailableError } from '../engine.js';
import {
  wildcardOf,
  zeroDrops,
  type Broker,
  type DeliveredEvent,
  type DeliveryHandler,
  type DropCounts,
  type DropReason,
  type HistoryPage,
  type HistoryQuery,
  type LossHandler,
  type PublishEntry,
  type PublishReceipt,
  type StreamPosition,
  type StreamWildcard,
} from '../broker.js';
import type { LuaScript, RedisLink } from './link.js';

export interface RedisBrokerOptions {
  historySize: number;
  historyTtlMs: number;
  /** Idle streams (and their epoch) are forgotten after this long (default 24 h). */
  streamMetaTtlMs?: number;
  idempotencyTtlMs?: number;
  /** How often quiet streams are checked against Redis for a lost last message (default 2 s). */
  positionCheckMs?: number;
  /** A stream only read, never published to, is forgotten after this long (default 10 minutes). */
  unpublishedTtlMs?: number;
}

// A batch, appended atomically (a script runs whole or not at all).
// KEYS[1]: the active zset; KEYS[2]: the batch's key (its first event's id);
//   then per event i (from 0), three keys from 3 + 3i: meta, stream, idempotency key.
// ARGV[1..5]: maxlen, history ttl ms, meta ttl ms, idempotency ttl ms, the
//   epoch a stream gets if it is new; then per event i, four from 6 + 4i:
//   stream name, event JSON (no offset/epoch), channel, has-idempotency flag.
// Returns, per event, {duplicate flag, offset, epoch, stored JSON}, flattened: the JSON only for a
// duplicate (the first publication's, whose event id differs); otherwise '' (the caller has the event).
// The batch's key keeps the reply for 30 s and makes the script safe to run
// twice: ioredis resends a command whose reply was lost with the connection,
// and the second run must answer the first one's positions, not append the
// batch again. A stream's epoch and offset are read once per batch and its
// trimming, expiry and activity written once, after its events.
const PUBLISH_LUA = `
local done = redis.call('GET', KEYS[2])
if done then return cjson.decode(done) end
local out = {}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = (#ARGV - 5) / 4
local streams, order = {}, {}
for i = 0, n - 1 do
  local k = 2 + i * 3
  local a = 5 + i * 4
  local name, json = ARGV[a + 1], ARGV[a + 2]
  local prev = false
  if ARGV[a + 4] == '1' then prev = redis.call('GET', KEYS[k + 3]) end
  if prev then
    out[#out + 1] = 1
    out[#out + 1] = ''
    out[#out + 1] = ''
    out[#out + 1] = prev
  else
    local s = streams[name]
    if not s then
      local meta = KEYS[k + 1]
      local epoch = redis.call('HGET', meta, 'epoch')
      local offset = 0
      if epoch then
        offset = tonumber(redis.call('HGET', meta, 'offset') or '0')
      else
        epoch = ARGV[5]
        redis.call('HSET', meta, 'epoch', epoch, 'offset', 0)
      end
      s = { k = k, epoch = epoch, offset = offset }
      streams[name] = s
      order[#order + 1] = name
    end
    s.offset = s.offset + 1
    local offset = string.format('%d', s.offset)
    local msg = string.sub(json, 1, -2) .. ',"offset":' .. offset .. ',"epoch":"' .. s.epoch .. '"}'
    redis.call('XADD', KEYS[k + 2], '*', 'o', offset, 'm', msg)
    redis.call('PUBLISH', ARGV[a + 3], name .. '\\n' .. msg)
    if ARGV[a + 4] == '1' then redis.call('SET', KEYS[k + 3], msg, 'PX', ARGV[4]) end
    out[#out + 1] = 0
    out[#out + 1] = offset
    out[#out + 1] = s.epoch
    out[#out + 1] = ''
  end
end
for _, name in ipairs(order) do
  local s = streams[name]
  redis.call('HSET', KEYS[s.k + 1], 'offset', string.format('%d', s.offset))
  redis.call('XTRIM', KEYS[s.k + 2], 'MAXLEN', '=', ARGV[1])
  redis.call('XTRIM', KEYS[s.k + 2], 'MINID', now - tonumber(ARGV[2]))
  redis.call('PEXPIRE', KEYS[s.k + 2], ARGV[3])
  redis.call('PEXPIRE', KEYS[s.k + 1], ARGV[3])
  redis.call('ZADD', KEYS[1], now, name)
end
redis.call('SET', KEYS[2], cjson.encode(out), 'PX', 30000)
return out
`;

// KEYS: meta, stream. ARGV: mode ('p' position, 's' since, 'a' all, 'd' newest first before ARGV[2] (0: none)), since, limit,
// history ttl ms, epoch for a new stream, ttl ms of a stream created by this read (nobody published to it: short).
// Reads the position and the entries in one step, so they agree.
const HISTORY_LUA = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[5]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
end
local offset = tonumber(redis.call('HGET', KEYS[1], 'offset'))
if ARGV[1] == 'p' then return {epoch, offset, {}} end
local t = redis.call('TIME')
local minId = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[4])
if ARGV[1] == 'a' then
  return {epoch, offset, redis.call('XRANGE', KEYS[2], minId, '+', 'COUNT', ARGV[3])}
end
if ARGV[1] == 'd' then
  local skip = 0
  if tonumber(ARGV[2]) > 0 then skip = math.max(0, offset - tonumber(ARGV[2]) + 1) end
  return {epoch, offset, redis.call('XREVRANGE', KEYS[2], '+', minId, 'COUNT', skip + tonumber(ARGV[3]))}
end
local n = offset - tonumber(ARGV[2])
if n <= 0 then return {epoch, offset, {}} end
return {epoch, offset, redis.call('XREVRANGE', KEYS[2], '+', minId, 'COUNT', n)}
`;

type StreamEntry = [id: string, fields: string[]];

/** A followed stream this node tracks: where its delivery stands, and when it last saw traffic. */
interface Track {
  /** Offsets, gaps, fills and resets: the pure part. */
  seq: StreamSequencer<DeliveredEvent>;
  /** Last time this stream was published to or read (ms): idle streams stop being checked. */
  lastActivity: number;
}

/** A track starting at `position` (a stream never published to: offset 0 under UNKNOWN_EPOCH). */
function trackAt(position: StreamPosition): Track {
  return { seq: new StreamSequencer(position), lastActivity: Date.now() };
}

function newEpoch(): string {
  return randomBytes(6).toString('hex');
}

function parseEntry(entry: StreamEntry): DeliveredEvent | undefined {
  const fields = entry[1];
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === 'm') return JSON.parse(fields[i + 1]!) as DeliveredEvent;
  return undefined;
}

/**
 * A channel payload as an event, if it is one the sequencer can place (an
 * object with an integer offset and an epoch): anything else would look
 * like a gap and make it read history for nothing.
 */
function asEvent(value: unknown): DeliveredEvent | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { offset, epoch } = value as Partial<DeliveredEvent>;
  return Number.isInteger(offset) && typeof epoch === 'string' ? (value as DeliveredEvent) : undefined;
}

/** Whether a followed name is a wildcard (every stream of a family), not a stream. */
function isWildcard(name: string): name is StreamWildcard {
  return name.endsWith(':*');
}

export class RedisBroker implements Broker {
  readonly #link: RedisLink;
  readonly #opts: Required<RedisBrokerOptions>;
  readonly #publishLua: LuaScript<Array<number | string>>;
  readonly #historyLua: LuaScript<[epoch: string, offset: number | string, entries: StreamEntry[]]>;
  /** Received and not delivered, by reason. */
  readonly #drops = zeroDrops();
  readonly #tracks = new Map<string, Track>();
  /** Followed streams (wildcards included) and how many followers each has on this node. */
  readonly #interest = new Map<string, number>();
  /** SUBSCRIBE / PSUBSCRIBE in flight per followed stream: later followers wait for it too. */
  readonly #subscribing = new Map<string, Promise<void>>();
  /** Wildcards whose pattern is confirmed: their streams arrive through it, own-channel copies are skipped. */
  readonly #patternsActive = new Set<StreamWildcard>();
  /** The subscriber connection is up and every followed channel subscribed on it. */
  #reconciled = false;
  /** The channel text of events received live, reused as their frame (weak: gone with the event). */
  readonly #jsonOf = new WeakMap<DeliveredEvent, string>();
  #onDelivery: DeliveryHandler = () => {};
  #onLoss: LossHandler = () => {};
  #checkTimer: NodeJS.Timeout | undefined;

  constructor(link: RedisLink, options: RedisBrokerOptions) {
    this.#link = link;
    this.#opts = {
      historySize: options.historySize,
      historyTtlMs: options.historyTtlMs,
      streamMetaTtlMs: options.streamMetaTtlMs ?? 86_400_000,
      idempotencyTtlMs: options.idempotencyTtlMs ?? 300_000,
      positionCheckMs: options.positionCheckMs ?? 2000,
      unpublishedTtlMs: options.unpublishedTtlMs ?? 600_000,
    };
    this.#publishLua = link.script(PUBLISH_LUA);
    this.#historyLua = link.script(HISTORY_LUA);
  }

  /** Messages received and not delivered since start, by reason (read by the metrics at scrape time). */
  get drops(): DropCounts {
    return this.#drops;
  }

  /** Up and subscribed to everything followed. */
  get subscribed(): boolean {
    return this.#reconciled && this.#link.sub.status === 'ready';
  }

  async start(onDelivery: DeliveryHandler, onLoss: LossHandler): Promise<void> {
    this.#onDelivery = onDelivery;
    this.#onLoss = onLoss;
    const sub = this.#link.sub;
    const streamChannels = this.#link.channel('');
    sub.on('message', (channel: string, message: string) => {
      if (channel.startsWith(streamChannels)) this.#onMessage(message, false);
    });
    sub.on('pmessage', (_pattern: string, _channel: string, message: string) => this.#onMessage(message, true));
    sub.on('ready', () => void this.#reconcile());
    sub.on('close', () => {
      this.#reconciled = false;
      this.#patternsActive.clear();
    });
    this.#checkTimer = setInterval(() => this.#checkPositions(false), this.#opts.positionCheckMs);
    this.#checkTimer.unref();
    // Connect only now, so the subscriber's first 'ready' finds the listeners above.
    this.#link.connect();
  }

  /**
   * (Re)subscribed: every followed channel again, then every followed stream
   * checked at once (anything published while we were away is a gap).
   */
  async #reconcile(): Promise<void> {
    const sub = this.#link.sub;
    const followed = [...this.#interest.keys()];
    const channels = followed.filter((s) => !isWildcard(s)).map((s) => this.#link.channel(s));
    try {
      if (channels.length > 0) await sub.subscribe(...channels);
      for (const wildcard of followed.filter(isWildcard)) {
        await sub.psubscribe(this.#link.pattern(wildcard));
        this.#patternsActive.add(wildcard);
      }
    } catch (err) {
      // The connection went away again; its next 'ready' reconciles.
      this.#link.log.debug({ err: (err as Error).message }, 'resubscribe failed');
      return;
    }
    this.#reconciled = true;
    this.#checkPositions(true);
  }

  // ---- interest ------------------------------------------------------------

  async follow(stream: string): Promise<void> {
    const refs = this.#interest.get(stream) ?? 0;
    this.#interest.set(stream, refs + 1);
    if (refs > 0) {
      await this.#subscribing.get(stream);
      return;
    }
    const subscribing = this.#subscribe(stream).finally(() => {
      if (this.#subscribing.get(stream) === subscribing) this.#subscribing.delete(stream);
    });
    this.#subscribing.set(stream, subscribing);
    await subscribing;
  }

  /**
   * Subscribes one followed stream's channel (or a wildcard's pattern) and,
   * for a single stream, starts tracking it from its current position, so
   * that even a lost first message is noticed. While Redis is away the
   * interest stays recorded and this resolves at once: the next reconcile
   * subscribes it, and nothing can be published meanwhile.
   */
  async #subscribe(stream: string): Promise<void> {
    const sub = this.#link.sub;
    if (this.#link.subscriberDown() !== undefined) return;
    try {
      if (isWildcard(stream)) {
        await sub.psubscribe(this.#link.pattern(stream));
        if (this.#interest.has(stream)) this.#patternsActive.add(stream);
        return;
      }
      await sub.subscribe(this.#link.channel(stream));
      if (!this.#tracks.has(stream)) await this.#trackFromRedis(stream);
    } catch (err) {
      // The connection went away mid-command: its next 'ready' reconciles.
      this.#link.log.debug({ stream, err: (err as Error).message }, 'follow deferred to the next reconnect');
    }
  }

  /**
   * Starts tracking a followed stream where Redis has it, without creating
   * anything: a stream never published to (most users' notification streams)
   * is tracked at offset 0 under an unknown epoch, adopted from its first event.
   */
  async #trackFromRedis(stream: string): Promise<void> {
    const [offset, epoch] = await this.#link.cmd.hmget(this.#link.key('m', stream), 'offset', 'epoch');
    if (this.#tracks.has(stream) || !this.#receives(stream)) return;
    this.#tracks.set(stream, trackAt({ offset: Number(offset ?? 0), epoch: epoch ?? UNKNOWN_EPOCH }));
  }

  unfollow(stream: string): void {
    const refs = (this.#interest.get(stream) ?? 0) - 1;
    if (refs > 0) {
      this.#interest.set(stream, refs);
      return;
    }
    this.#interest.delete(stream);
    const sub = this.#link.sub;
    if (isWildcard(stream)) {
      this.#patternsActive.delete(stream);
      if (sub.status === 'ready') sub.punsubscribe(this.#link.pattern(stream)).catch(() => {});
      for (const tracked of this.#tracks.keys()) if (wildcardOf(tracked) === stream && !this.#interest.has(tracked)) this.#tracks.delete(tracked);
      return;
    }
    if (sub.status === 'ready') sub.unsubscribe(this.#link.channel(stream)).catch(() => {});
    // Not received any more: a later follow starts from the position then, not from a stale one.
    if (!this.#receives(stream)) this.#tracks.delete(stream);
  }

  // ---- publishing --------------------------------------------------------

  async publish(entries: readonly PublishEntry[]): Promise<PublishReceipt[]> {
    if (entries.length === 0) return [];
    // Nothing is accepted that this node could not deliver: both connections must be up.
    const status = this.#link.status();
    if (!status.ready) throw new EngineUnavailableError(status.reason ?? 'redis unavailable');
    const link = this.#link;
    const first = entries[0]!;
    const keys: string[] = [link.key('active'), link.key('e', first.stream, first.event.event_id)];
    // One epoch for the streams this batch creates: epochs are compared per stream, and a stream created again draws another.
    const args: Array<string | number> = [this.#opts.historySize, this.#opts.historyTtlMs, this.#opts.streamMetaTtlMs, this.#opts.idempotencyTtlMs, newEpoch()];
    const named = new Map<string, [meta: string, history: string, channel: string]>();
    for (const { stream, event, json, idempotencyKey } of entries) {
      let names = named.get(stream);
      if (!names) named.set(stream, (names = [link.key('m', stream), link.key('s', stream), link.channel(stream)]));
      keys.push(names[0], names[1], idempotencyKey === undefined ? link.key('i', '-') : link.key('i', stream, idempotencyKey));
      args.push(stream, json ?? JSON.stringify(event), names[2], idempotencyKey === undefined ? '0' : '1');
    }
    // One round trip for the whole batch.
    const reply = await link.run('publish', () => this.#publishLua(keys, args));
    // Only a duplicate's stored event is parsed (its id is the first publication's); the rest need no JSON.
    const receipts: PublishReceipt[] = [];
    for (let i = 0; i < reply.length; i += 4) {
      if (reply[i] === 1) {
        const stored = JSON.parse(reply[i + 3] as string) as DeliveredEvent;
        receipts.push({ event_id: stored.event_id, offset: stored.offset, epoch: stored.epoch, duplicate: true });
      } else receipts.push({ event_id: entries[i / 4]!.event.event_id, offset: Number(reply[i + 1]), epoch: reply[i + 2] as string, duplicate: false });
    }
    return receipts;
  }

  // ---- receiving, in order, without silent gaps ---------------------------

  #onMessage(message: string, viaPattern: boolean): void {
    const nl = message.indexOf('\n');
    if (nl < 0) {
      this.#drop('unparsable', undefined);
      return;
    }
    const stream = message.slice(0, nl);
    // A stream followed on its own channel and through its family's pattern arrives twice: keep one copy.
    // (Not a drop: the pattern's copy of the same publication is the one handled.)
    if (!viaPattern && this.#patternsActive.size > 0) {
      const wildcard = wildcardOf(stream);
      if (wildcard !== undefined && this.#patternsActive.has(wildcard)) return;
    }
    // In flight when the stream was unfollowed: nobody here wants it any more.
    if (!this.#receives(stream)) {
      this.#drop('unfollowed', stream);
      return;
    }
    const json = message.slice(nl + 1);
    let event: DeliveredEvent | undefined;
    try {
      event = asEvent(JSON.parse(json));
    } catch {
      event = undefined;
    }
    if (event === undefined) {
      // Not the publish script's: counted, and logged louder than other drops (something else writes on our channels).
      this.#drops.unparsable++;
      this.#link.log.error({ stream, reason: 'unparsable' }, 'unparsable publication on the channel');
      return;
    }
    this.#jsonOf.set(event, json);
    this.#accept(stream, event);
  }

  /** Hands `event` to its stream's sequencer and does what it answers: deliver, start a fill, or nothing (queued, dropped). */
  #accept(stream: string, event: DeliveredEvent): void {
    let track = this.#tracks.get(stream);
    if (track) track.lastActivity = Date.now();
    else {
      // First event of this stream we see: nothing before it was ours to deliver.
      track = trackAt({ offset: event.offset - 1, epoch: event.epoch });
      this.#tracks.set(stream, track);
    }
    this.#act(stream, track, event, track.seq.push(event));
  }

  #act(stream: string, track: Track, event: DeliveredEvent, verdict: Verdict): void {
    if (verdict === 'deliver') this.#deliver(stream, event);
    else if (verdict === 'fill') void this.#fill(stream, track);
    // (An overflow dropped the oldest queued event, not this one.)
    else if (verdict !== 'queued') this.#drop(verdict, stream, verdict === 'overflow' ? undefined : event.offset);
  }

  /**
   * Reads the missing events from the stream for the sequencer, delivers
   * what it answers, then what queued meanwhile. Events history no longer
   * holds (or a new epoch: the stream was reset, e.g. Redis restarted empty)
   * are reported through the loss handler before delivery resumes.
   */
  async #fill(stream: string, track: Track): Promise<void> {
    const { seq } = track;
    let result: FillResult<DeliveredEvent> | 'again';
    try {
      // A page of a new epoch answers 'again': the sequencer then wants the new epoch from its start.
      do result = seq.filled(await this.history(stream, { since: seq.fillSince }));
      while (result === 'again');
    } catch (err) {
      seq.fillFailed();
      if (this.#link.closed) return;
      this.#link.log.warn({ stream, err: (err as Error).message }, 'gap fill failed; retrying');
      const retry = setTimeout(() => void this.#fill(stream, track), 500);
      retry.unref();
      return;
    }
    if (result.lost) {
      this.#link.log.warn({ stream, resumeAfter: result.lost.offset, epoch: result.lost.epoch }, 'events lost beyond history; subscribers are told');
      this.#onLoss(stream, result.lost);
    }
    for (const event of result.deliver) this.#deliver(stream, event);
    if (result.skipped > 0) this.#drop('duplicate', stream, undefined, result.skipped);
    // Unfollowed meanwhile: what queued is nobody's any more.
    if (this.#tracks.get(stream) !== track) {
      const discarded = seq.discard();
      if (discarded > 0) this.#drop('unfollowed', stream, undefined, discarded);
      return;
    }
    if (seq.queued === 0) return;
    track.lastActivity = Date.now();
    const next = seq.drain();
    for (const event of next.deliver) this.#deliver(stream, event);
    for (const reason of next.drops) this.#drop(reason, stream);
    if (next.fill) void this.#fill(stream, track);
  }

  /** Counts a received message not delivered, and says why at debug level. */
  #drop(reason: DropReason, stream: string | undefined, offset?: number, count = 1): void {
    this.#drops[reason] += count;
    const log = this.#link.log;
    if (log.isLevelEnabled('debug')) log.debug({ stream, reason, offset, count }, 'received message dropped');
  }

  #deliver(stream: string, event: DeliveredEvent): void {
    try {
      this.#onDelivery(stream, event, this.#jsonOf.get(event));
    } catch (err) {
      this.#link.log.error({ err, stream }, 'delivery failed');
    }
  }

  /**
   * Compares each followed stream with Redis. A stream Redis is ahead on, at
   * two checks in a row (or at once after a reconnect), lost a message: fill it.
   */
  #checkPositions(immediate: boolean): void {
    const cmd = this.#link.cmd;
    if (cmd.status !== 'ready' || this.#tracks.size === 0) return;
    // Streams quiet for longer than history lasts are no longer checked: nothing left to fill, and their
    // metadata expiring later must not look like a reset.
    const idleBefore = Date.now() - this.#opts.historyTtlMs;
    for (const [stream, track] of this.#tracks) if (!track.seq.filling && track.lastActivity < idleBefore) this.#tracks.delete(stream);
    const streams = [...this.#tracks.keys()];
    const pipeline = cmd.pipeline();
    for (const stream of streams) pipeline.hmget(this.#link.key('m', stream), 'offset', 'epoch');
    pipeline.exec().then(
      (results) => {
        results?.forEach(([err, value], i) => {
          if (err) return;
          const stream = streams[i]!;
          const track = this.#tracks.get(stream);
          const [offset, epoch] = value as [string | null, string | null];
          if (!track) return;
          // No record (epoch null): Redis lost the stream; the sequencer treats it as a reset.
          if (track.seq.check(offset === null ? 0 : Number(offset), epoch ?? undefined, immediate)) void this.#fill(stream, track);
        });
      },
      () => {},
    );
  }

  // ---- history -------------------------------------------------------------

  async history(stream: string, query: HistoryQuery): Promise<HistoryPage> {
    const limit = query.limit ?? this.#opts.historySize;
    if (query.order === 'desc') {
      const [epoch, offset, entries] = await this.#historyScript(stream, 'd', query.before ?? 0, limit);
      const before = query.before ?? Number.POSITIVE_INFINITY;
      const events = entries.map(parseEntry).filter((e): e is DeliveredEvent => e !== undefined && e.offset < before);
      return { events: events.slice(0, limit), position: { offset, epoch }, complete: true };
    }
    const mode = query.since === undefined ? 'a' : 's';
    const [epoch, offset, entries] = await this.#historyScript(stream, mode, query.since ?? 0, limit);
    const position = { offset, epoch };
    this.#noteFollowed(stream, position);
    if (mode === 'a') {
      const events = entries.map(parseEntry).filter((e): e is DeliveredEvent => e !== undefined);
      return { events, position, complete: true };
    }
    // Newest first: every offset since+1..offset must be there for the page to be complete.
    const ascending = entries
      .map(parseEntry)
      .filter((e): e is DeliveredEvent => e !== undefined)
      .reverse();
    const wanted = offset - query.since!;
    const complete = wanted <= 0 || (ascending.length === wanted && ascending[0]?.offset === query.since! + 1);
    return { events: ascending.slice(0, limit), position, complete };
  }

  async position(stream: string): Promise<StreamPosition> {
    const [epoch, offset] = await this.#historyScript(stream, 'p', 0, 0);
    const position = { offset, epoch };
    this.#noteFollowed(stream, position);
    return position;
  }

  async #historyScript(stream: string, mode: string, since: number, limit: number): Promise<[string, number, StreamEntry[]]> {
    const link = this.#link;
    const [epoch, offset, entries] = await link.run('history read', () =>
      this.#historyLua([link.key('m', stream), link.key('s', stream)], [mode, since, limit, this.#opts.historyTtlMs, newEpoch(), this.#opts.unpublishedTtlMs]),
    );
    return [epoch, Number(offset), entries];
  }

  /** A position read of a stream this node receives starts tracking it there, so a lost next message is noticed. */
  #noteFollowed(stream: string, position: StreamPosition): void {
    const track = this.#tracks.get(stream);
    if (track) track.lastActivity = Date.now();
    else if (this.#receives(stream)) this.#tracks.set(stream, trackAt(position));
  }

  /** Whether this node is subscribed (or subscribing) to the stream's events. */
  #receives(stream: string): boolean {
    if (this.#interest.has(stream)) return true;
    const wildcard = wildcardOf(stream);
    return wildcard !== undefined && this.#interest.has(wildcard);
  }

  async streamsActiveSince(prefix: string, sinceMs: number): Promise<string[]> {
    const names = await this.#link.run('activity read', () => this.#link.cmd.zrangebyscore(this.#link.key('active'), sinceMs, '+inf'));
    return names.filter((n) => n.startsWith(prefix));
  }

  close(): void {
    clearInterval(this.#checkTimer);
  }
}
