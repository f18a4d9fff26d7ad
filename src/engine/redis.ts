// The Redis engine: several nodes, one system. Streams live in Redis: one Lua
// script assigns the next offset, appends to a Redis Stream (trimmed by count
// and age) and publishes, atomically, so offsets stay gap-free and ordered
// whichever node publishes. Every node receives every publication on one
// pub/sub channel and delivers to its own subscribers.
//
// Pub/sub is fire-and-forget, so gaps are never trusted to not happen: a node
// that sees an offset jump fills it from the stream before delivering further,
// a periodic position check covers quiet streams (a lost last message), and a
// gap history no longer covers is reported through the loss handler.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { EscaiError } from '../protocol/codes.js';
import type { DeliveredEvent } from '../protocol/events.js';
import type {
  Broker,
  ConnectionSummary,
  EngineStatus,
  HistoryPage,
  HistoryQuery,
  LossHandler,
  NodeReport,
  Publication,
  PublicationHandler,
  SessionState,
  StreamPosition,
  UnsequencedEvent,
} from './broker.js';

export interface RedisBrokerOptions {
  url: string;
  /** Namespace of every key and channel. */
  prefix: string;
  historySize: number;
  historyTtlMs: number;
  log: Logger;
  /** Idle streams (and their epoch) are forgotten after this long (default 24 h). */
  streamMetaTtlMs?: number;
  idempotencyTtlMs?: number;
  /** How often quiet streams are checked against Redis for a lost last message (default 2 s). */
  positionCheckMs?: number;
}

// KEYS: meta, stream, active zset, idempotency key, event-id key
// ARGV: stream name, event JSON (without offset/epoch), maxlen, history ttl ms,
//       meta ttl ms, channel, epoch for a new stream, idempotency ttl ms, has-idempotency flag
// The event-id key makes the script safe to run twice: ioredis resends a
// command whose reply was lost with the connection, and the second run must
// not append the same event at a second offset.
const PUBLISH_LUA = `
local ran = redis.call('GET', KEYS[5])
if ran then
  local sep = string.find(ran, ' ', 1, true)
  return {0, string.sub(ARGV[2], 1, -2) .. ',"offset":' .. string.sub(ran, 1, sep - 1) .. ',"epoch":"' .. string.sub(ran, sep + 1) .. '"}'}
end
if ARGV[9] == '1' then
  local prev = redis.call('GET', KEYS[4])
  if prev then return {1, prev} end
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[7]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
end
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
local msg = string.sub(ARGV[2], 1, -2) .. ',"offset":' .. string.format('%d', offset) .. ',"epoch":"' .. epoch .. '"}'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('XADD', KEYS[2], 'MAXLEN', '=', ARGV[3], '*', 'o', offset, 'm', msg)
redis.call('XTRIM', KEYS[2], 'MINID', now - tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[3], now, ARGV[1])
redis.call('PUBLISH', ARGV[6], ARGV[1] .. '\\n' .. msg)
if ARGV[9] == '1' then redis.call('SET', KEYS[4], msg, 'PX', ARGV[8]) end
redis.call('SET', KEYS[5], string.format('%d', offset) .. ' ' .. epoch, 'PX', 30000)
return {0, msg}
`;

// KEYS: meta, stream. ARGV: mode ('p' position, 's' since, 'a' all), since, limit,
// history ttl ms, epoch for a new stream, meta ttl ms.
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
local n = offset - tonumber(ARGV[2])
if n <= 0 then return {epoch, offset, {}} end
return {epoch, offset, redis.call('XREVRANGE', KEYS[2], '+', minId, 'COUNT', n)}
`;

// KEYS: user slots hash, nodes zset. ARGV: node id, cap, oldest live report (ms).
// Counts the user's connections on live nodes only, so a dead node's slots free themselves.
const CLAIM_SLOT_LUA = `
local fields = redis.call('HGETALL', KEYS[1])
local used = 0
for i = 1, #fields, 2 do
  local score = redis.call('ZSCORE', KEYS[2], fields[i])
  if score and tonumber(score) >= tonumber(ARGV[3]) then used = used + tonumber(fields[i + 1])
  elseif fields[i] ~= ARGV[1] then redis.call('HDEL', KEYS[1], fields[i]) end
end
if used >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[1], 86400000)
return 1
`;

type StreamEntry = [id: string, fields: string[]];

/** Publications queued per stream behind a gap fill; past it the oldest go (the fill reads them from the stream). */
const MAX_QUEUED = 10_000;

interface Track {
  offset: number;
  epoch: string;
  /** A gap fill is running: publications queue behind it. */
  filling: boolean;
  queue: DeliveredEvent[];
  /** Offset Redis reported at the previous quiet-stream check, while we were behind it. */
  suspect: number | undefined;
  /** The epoch before the last reset: late publications of it are stale, not a new reset. */
  oldEpoch?: string;
  /** Last time this stream was published to or read (ms): idle streams stop being checked. */
  lastActivity: number;
}

function escapeKeyPart(part: string): string {
  return part.replace(/%/g, '%25').replace(/:/g, '%3A');
}

function newEpoch(): string {
  return randomBytes(6).toString('hex');
}

function messageOf(entry: StreamEntry): string | undefined {
  const fields = entry[1];
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === 'm') return fields[i + 1];
  return undefined;
}

export class RedisBroker implements Broker {
  readonly name = 'redis';
  readonly nodeId = `${hostname()}-${randomBytes(4).toString('hex')}`;
  readonly #opts: Required<Omit<RedisBrokerOptions, 'log'>>;
  readonly #log: Logger;
  readonly #cmd: Redis;
  readonly #sub: Redis;
  readonly #channel: string;
  readonly #tracks = new Map<string, Track>();
  /** Local recipient counts of recent publications, for `publish` callers (keyed stream@offset). */
  readonly #delivered = new Map<string, number>();
  readonly #waiters = new Map<string, (count: number) => void>();
  /** The channel text of events received live, reused as their frame (weak: gone with the event). */
  readonly #jsonOf = new WeakMap<DeliveredEvent, string>();
  #handler: PublicationHandler = () => 0;
  #onLoss: LossHandler = () => {};
  #subscribed = false;
  #lastError: string | undefined;
  #checkTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #nodeTtlMs = 10_000;

  constructor(options: RedisBrokerOptions) {
    this.#opts = {
      url: options.url,
      prefix: options.prefix,
      historySize: options.historySize,
      historyTtlMs: options.historyTtlMs,
      streamMetaTtlMs: options.streamMetaTtlMs ?? 86_400_000,
      idempotencyTtlMs: options.idempotencyTtlMs ?? 300_000,
      positionCheckMs: options.positionCheckMs ?? 2000,
    };
    this.#log = options.log.child({ engine: 'redis' });
    this.#channel = `${options.prefix}:pub`;
    const retryStrategy = (times: number) => Math.min(5000, 100 * 2 ** Math.min(times, 6)) * (0.5 + Math.random() / 2);
    const common: RedisOptions = { lazyConnect: true, retryStrategy, connectionName: `escai:${this.nodeId}` };
    // Commands fail at once while Redis is away: nothing is accepted that cannot be delivered.
    this.#cmd = new Redis(options.url, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    this.#sub = new Redis(options.url, { ...common, autoResubscribe: true });
    this.#cmd.defineCommand('escaiPublish', { numberOfKeys: 5, lua: PUBLISH_LUA });
    this.#cmd.defineCommand('escaiHistory', { numberOfKeys: 2, lua: HISTORY_LUA });
    this.#cmd.defineCommand('escaiClaimSlot', { numberOfKeys: 2, lua: CLAIM_SLOT_LUA });
    for (const [name, client] of [
      ['commands', this.#cmd],
      ['subscriber', this.#sub],
    ] as const) {
      client.on('error', (err: Error) => {
        if (this.#lastError !== err.message) this.#log.warn({ connection: name, err: err.message }, 'redis error');
        this.#lastError = err.message;
      });
      client.on('ready', () => {
        this.#lastError = undefined;
        this.#log.info({ connection: name }, 'redis ready');
      });
    }
  }

  /** prefix:part:part — each part escaped, so ids containing ':' cannot collide with other keys. */
  #key(...parts: string[]): string {
    return [this.#opts.prefix, ...parts.map(escapeKeyPart)].join(':');
  }

  async start(handler: PublicationHandler, onLoss: LossHandler): Promise<void> {
    this.#handler = handler;
    this.#onLoss = onLoss;
    this.#sub.on('message', (_channel: string, message: string) => this.#onMessage(message));
    this.#sub.on('ready', () => {
      // (Re)subscribed: anything published while we were away is a gap; check every stream we follow.
      if (this.#subscribed) this.#checkPositions(true);
    });
    this.#sub.on('close', () => {
      if (!this.#closed) this.#log.warn('redis subscriber connection lost');
    });
    // Connect in the background: a node starts without Redis and keeps retrying (readyz says why).
    this.#cmd.connect().catch(() => {});
    this.#sub
      .connect()
      .then(() => this.#sub.subscribe(this.#channel))
      .then(() => {
        this.#subscribed = true;
      })
      .catch(() => {
        // ioredis keeps reconnecting; autoResubscribe only covers channels subscribed once, so retry.
        const retry = setInterval(() => {
          if (this.#closed || this.#subscribed) return clearInterval(retry);
          if (this.#sub.status === 'ready') {
            this.#sub.subscribe(this.#channel).then(
              () => {
                this.#subscribed = true;
                clearInterval(retry);
              },
              () => {},
            );
          }
        }, 250);
        retry.unref();
      });
    this.#checkTimer = setInterval(() => this.#checkPositions(false), this.#opts.positionCheckMs);
    this.#checkTimer.unref();
  }

  status(): EngineStatus {
    if (this.#cmd.status !== 'ready') return { ready: false, reason: `redis: commands connection ${this.#cmd.status}${this.#lastError ? ` (${this.#lastError})` : ''}` };
    if (this.#sub.status !== 'ready' || !this.#subscribed) {
      return { ready: false, reason: `redis: subscriber connection ${this.#sub.status}${this.#lastError ? ` (${this.#lastError})` : ''}` };
    }
    return { ready: true };
  }

  #requireReady(): void {
    const status = this.status();
    if (!status.ready) throw new EscaiError('ENGINE_UNAVAILABLE', status.reason ?? 'redis unavailable');
  }

  // ---- publishing --------------------------------------------------------

  async publish(stream: string, event: UnsequencedEvent, idempotencyKey?: string): Promise<Publication> {
    this.#requireReady();
    const idemKey = idempotencyKey === undefined ? this.#key('i', '-') : this.#key('i', stream, idempotencyKey);
    let reply: [number, string];
    try {
      reply = (await (this.#cmd as unknown as RedisScripts).escaiPublish(
        this.#key('m', stream),
        this.#key('s', stream),
        this.#key('active'),
        idemKey,
        this.#key('e', stream, event.event_id),
        stream,
        JSON.stringify(event),
        this.#opts.historySize,
        this.#opts.historyTtlMs,
        this.#opts.streamMetaTtlMs,
        this.#channel,
        newEpoch(),
        this.#opts.idempotencyTtlMs,
        idempotencyKey === undefined ? '0' : '1',
      )) as [number, string];
    } catch (err) {
      throw new EscaiError('ENGINE_UNAVAILABLE', `redis: publish failed (${(err as Error).message})`);
    }
    const delivered = JSON.parse(reply[1]) as DeliveredEvent;
    const publication: Publication = { stream, event: delivered };
    if (reply[0] === 1) return { ...publication, duplicate: true, localRecipients: 0 };
    publication.localRecipients = await this.#localCount(stream, delivered.offset);
    return publication;
  }

  /** Waits (briefly) for our own subscriber to deliver the publication locally, and returns its recipient count. */
  #localCount(stream: string, offset: number): Promise<number> {
    const key = `${stream}@${offset}`;
    const known = this.#delivered.get(key);
    if (known !== undefined) return Promise.resolve(known);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(key);
        resolve(0);
      }, 2000);
      timer.unref();
      this.#waiters.set(key, (count) => {
        clearTimeout(timer);
        resolve(count);
      });
    });
  }

  // ---- receiving, in order, without silent gaps ---------------------------

  #onMessage(message: string): void {
    const nl = message.indexOf('\n');
    if (nl < 0) return;
    const stream = message.slice(0, nl);
    const json = message.slice(nl + 1);
    let event: DeliveredEvent;
    try {
      event = JSON.parse(json) as DeliveredEvent;
    } catch {
      this.#log.error({ stream }, 'unparsable publication on the channel');
      return;
    }
    this.#jsonOf.set(event, json);
    this.#accept(stream, event);
  }

  /** Delivers `event` if it is the next of its stream; otherwise queues it behind a gap fill. */
  #accept(stream: string, event: DeliveredEvent): void {
    const track = this.#tracks.get(stream);
    if (!track) {
      // First event of this stream we see: nothing before it was ours to deliver.
      this.#tracks.set(stream, { offset: event.offset, epoch: event.epoch, filling: false, queue: [], suspect: undefined, lastActivity: Date.now() });
      this.#deliver(stream, event);
      return;
    }
    track.lastActivity = Date.now();
    if (event.epoch === track.oldEpoch) return; // stale: published before the reset we already handled
    if (track.filling) {
      if (track.queue.length >= MAX_QUEUED) {
        track.queue.shift(); // the fill reads them from the stream anyway; the queue only saves round trips
      }
      track.queue.push(event);
      return;
    }
    // A new epoch (the stream was reset, its history lost) is handled by the fill: loss reported, new epoch replayed from its start.
    if (event.epoch === track.epoch && event.offset <= track.offset) return; // already delivered (filled from history)
    if (event.epoch === track.epoch && event.offset === track.offset + 1) {
      track.offset = event.offset;
      track.suspect = undefined;
      this.#deliver(stream, event);
      return;
    }
    track.filling = true;
    track.queue.push(event);
    void this.#fill(stream, track);
  }

  /**
   * Reads the missing events from the stream, delivers them, then what queued
   * meanwhile. Events history no longer holds (or a new epoch: the stream was
   * reset, e.g. Redis restarted empty) are reported through the loss handler
   * before delivery resumes from what history does hold.
   */
  async #fill(stream: string, track: Track): Promise<void> {
    let page: HistoryPage;
    let lost = false;
    try {
      page = await this.history(stream, { since: track.offset });
      if (page.position.epoch !== track.epoch) {
        page = await this.history(stream, { since: 0 }); // the new epoch, from its start
        track.oldEpoch = track.epoch;
        track.epoch = page.position.epoch;
        track.offset = 0;
        lost = true;
      }
    } catch (err) {
      if (this.#closed) return;
      this.#log.warn({ stream, err: (err as Error).message }, 'gap fill failed; retrying');
      const retry = setTimeout(() => void this.#fill(stream, track), 500);
      retry.unref();
      return;
    }
    if (!page.complete) {
      // Deliver what history still holds after the hole, from its first kept offset.
      const first = page.events[0];
      track.offset = first ? first.offset - 1 : page.position.offset;
      lost = true;
    }
    if (lost) {
      this.#log.warn({ stream, resumeAfter: track.offset, epoch: track.epoch }, 'events lost beyond history; subscribers are told');
      this.#onLoss(stream, { offset: track.offset, epoch: track.epoch });
    }
    for (const event of page.events) {
      if (event.offset !== track.offset + 1) continue;
      track.offset = event.offset;
      this.#deliver(stream, event);
    }
    track.suspect = undefined;
    track.filling = false;
    const queued = track.queue.splice(0);
    for (const event of queued) this.#accept(stream, event);
  }

  #deliver(stream: string, event: DeliveredEvent): void {
    let count = 0;
    try {
      const json = this.#jsonOf.get(event);
      count = this.#handler(json === undefined ? { stream, event } : { stream, event, json });
    } catch (err) {
      this.#log.error({ err, stream }, 'delivery failed');
    }
    const key = `${stream}@${event.offset}`;
    const waiter = this.#waiters.get(key);
    if (waiter) {
      this.#waiters.delete(key);
      waiter(count);
    } else {
      this.#delivered.set(key, count);
      if (this.#delivered.size > 10_000) this.#delivered.delete(this.#delivered.keys().next().value!);
    }
  }

  /**
   * Compares each followed stream with Redis. A stream Redis is ahead on, at
   * two checks in a row (or at once after a reconnect), lost a message: fill it.
   */
  #checkPositions(immediate: boolean): void {
    if (this.#cmd.status !== 'ready' || this.#tracks.size === 0) return;
    // Streams quiet for longer than history lasts are no longer followed: nothing left to fill, and their
    // metadata expiring later must not look like a reset.
    const idleBefore = Date.now() - this.#opts.historyTtlMs;
    for (const [stream, track] of this.#tracks) if (!track.filling && track.lastActivity < idleBefore) this.#tracks.delete(stream);
    const streams = [...this.#tracks.keys()];
    const pipeline = this.#cmd.pipeline();
    for (const stream of streams) pipeline.hmget(this.#key('m', stream), 'offset', 'epoch');
    pipeline.exec().then(
      (results) => {
        results?.forEach(([err, value], i) => {
          if (err) return;
          const stream = streams[i]!;
          const track = this.#tracks.get(stream);
          const [offset, epoch] = value as [string | null, string | null];
          if (!track || track.filling) return;
          // No record: Redis lost the stream (restarted empty, or it expired): a reset, like a new epoch.
          const redisOffset = offset === null ? 0 : Number(offset);
          if (epoch !== track.epoch || redisOffset > track.offset) {
            if (immediate || track.suspect !== undefined) {
              track.filling = true;
              void this.#fill(stream, track);
            } else track.suspect = redisOffset;
          } else track.suspect = undefined;
        });
      },
      () => {},
    );
  }

  // ---- history -------------------------------------------------------------

  async history(stream: string, query: HistoryQuery): Promise<HistoryPage> {
    const mode = query.since === undefined ? 'a' : 's';
    const limit = query.limit ?? this.#opts.historySize;
    const [epoch, offset, entries] = await this.#historyScript(stream, mode, query.since ?? 0, limit);
    const position = { offset, epoch };
    this.#noteFollowed(stream, position);
    if (mode === 'a') {
      const events = entries.map(parseEntry).filter((e): e is DeliveredEvent => e !== undefined);
      return { events, position, complete: true };
    }
    // Newest first: every offset since+1..offset must be there for the page to be complete.
    const ascending = entries.map(parseEntry).filter((e): e is DeliveredEvent => e !== undefined).reverse();
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
    try {
      const [epoch, offset, entries] = (await (this.#cmd as unknown as RedisScripts).escaiHistory(
        this.#key('m', stream),
        this.#key('s', stream),
        mode,
        since,
        limit,
        this.#opts.historyTtlMs,
        newEpoch(),
        this.#opts.streamMetaTtlMs,
      )) as [string, number, StreamEntry[]];
      return [epoch, Number(offset), entries];
    } catch (err) {
      throw new EscaiError('ENGINE_UNAVAILABLE', `redis: history read failed (${(err as Error).message})`);
    }
  }

  /** A position read for a subscriber starts following the stream there, so a lost next message is noticed. */
  #noteFollowed(stream: string, position: StreamPosition): void {
    const track = this.#tracks.get(stream);
    if (track) track.lastActivity = Date.now();
    else {
      this.#tracks.set(stream, { offset: position.offset, epoch: position.epoch, filling: false, queue: [], suspect: undefined, lastActivity: Date.now() });
    }
  }

  async streamsActiveSince(prefix: string, sinceMs: number): Promise<string[]> {
    const names = await this.#cmd.zrangebyscore(this.#key('active'), sinceMs, '+inf');
    return names.filter((n) => n.startsWith(prefix));
  }

  // ---- sessions --------------------------------------------------------------

  async saveSession(state: SessionState, ttlMs: number): Promise<void> {
    await this.#cmd.set(this.#key('sess', state.userId, state.sessionId), JSON.stringify(state), 'PX', Math.max(1, Math.round(ttlMs)));
  }

  async takeSession(userId: string, sessionId: string): Promise<SessionState | undefined> {
    try {
      const raw = await this.#cmd.getdel(this.#key('sess', userId, sessionId));
      return raw ? (JSON.parse(raw) as SessionState) : undefined;
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'session lookup failed; starting a fresh session');
      return undefined;
    }
  }

  // ---- presence ----------------------------------------------------------------

  async reportNode(report: NodeReport, ttlMs: number): Promise<void> {
    this.#nodeTtlMs = ttlMs;
    await this.#cmd
      .multi()
      .set(this.#key('node', this.nodeId), JSON.stringify(report), 'PX', ttlMs)
      .zadd(this.#key('nodes'), report.reported_at, this.nodeId)
      .zremrangebyscore(this.#key('nodes'), '-inf', report.reported_at - ttlMs * 10)
      .pexpire(this.#key('conns', this.nodeId), ttlMs)
      .zremrangebyscore(this.#key('active'), '-inf', Date.now() - this.#opts.streamMetaTtlMs)
      .exec();
  }

  async #liveNodeIds(): Promise<string[]> {
    return this.#cmd.zrangebyscore(this.#key('nodes'), Date.now() - this.#nodeTtlMs, '+inf');
  }

  async nodes(): Promise<NodeReport[]> {
    const ids = await this.#liveNodeIds();
    if (ids.length === 0) return [];
    const raws = await this.#cmd.mget(ids.map((id) => this.#key('node', id)));
    return raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as NodeReport);
  }

  setConnection(connectionId: string, summary: ConnectionSummary | null): void {
    if (this.#cmd.status !== 'ready') return;
    const key = this.#key('conns', this.nodeId);
    const op = summary ? this.#cmd.hset(key, connectionId, JSON.stringify(summary)) : this.#cmd.hdel(key, connectionId);
    op.catch(() => {});
  }

  async remoteConnections(): Promise<ConnectionSummary[]> {
    const ids = (await this.#liveNodeIds()).filter((id) => id !== this.nodeId);
    const out: ConnectionSummary[] = [];
    for (const id of ids) {
      const all = await this.#cmd.hgetall(this.#key('conns', id));
      for (const raw of Object.values(all)) out.push(JSON.parse(raw) as ConnectionSummary);
    }
    return out;
  }

  async claimUserSlot(userId: string, cap: number): Promise<boolean> {
    const ok = await (this.#cmd as unknown as RedisScripts).escaiClaimSlot(
      this.#key('uslots', userId),
      this.#key('nodes'),
      this.nodeId,
      cap,
      Date.now() - this.#nodeTtlMs,
    );
    return ok === 1;
  }

  releaseUserSlot(userId: string): void {
    const key = this.#key('uslots', userId);
    this.#cmd
      .hincrby(key, this.nodeId, -1)
      .then((left) => (left <= 0 ? this.#cmd.hdel(key, this.nodeId) : 0))
      .catch(() => {});
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#checkTimer);
    // Leave the registry at once rather than at TTL expiry.
    await this.#cmd
      .multi()
      .zrem(this.#key('nodes'), this.nodeId)
      .del(this.#key('node', this.nodeId), this.#key('conns', this.nodeId))
      .exec()
      .catch(() => {});
    this.#sub.disconnect();
    this.#cmd.disconnect();
  }
}

interface RedisScripts {
  escaiPublish(...args: Array<string | number>): Promise<unknown>;
  escaiHistory(...args: Array<string | number>): Promise<unknown>;
  escaiClaimSlot(...args: Array<string | number>): Promise<number>;
}

function parseEntry(entry: StreamEntry): DeliveredEvent | undefined {
  const msg = messageOf(entry);
  return msg === undefined ? undefined : (JSON.parse(msg) as DeliveredEvent);
}
