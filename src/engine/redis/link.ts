// The Redis engine's two connections (commands, and pub/sub), the key and
// channel names under the prefix, and the one way Redis failures surface:
// EngineUnavailableError. The broker, the session store and the presence
// registry share one link, and register their Lua scripts through it.
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { wildcardPrefix, type StreamWildcard } from '../../protocol/constants.js';
import { EngineUnavailableError, type EngineStatus } from '../engine.js';

/** prefix:part:part: each part escaped, so ids containing ':' cannot collide with other keys. */
function escapeKeyPart(part: string): string {
  return part.replace(/%/g, '%25').replace(/:/g, '%3A');
}

/**
 * A Lua script as a typed function: its keys, then its arguments (the key
 * count is the keys' length, so it cannot disagree with the call). `R` is
 * the reply's shape as the script builds it.
 */
export type LuaScript<R> = (keys: readonly string[], args: ReadonlyArray<string | number>) => Promise<R>;

export interface RedisLinkOptions {
  url: string;
  /** Namespace of every key and channel. */
  prefix: string;
  log: Logger;
}

export class RedisLink {
  readonly nodeId = `${hostname()}-${randomBytes(4).toString('hex')}`;
  readonly prefix: string;
  readonly log: Logger;
  /** Commands (and scripts). Fails at once while Redis is away: nothing is accepted that cannot be delivered. */
  readonly cmd: Redis;
  /** Pub/sub only. */
  readonly sub: Redis;
  #lastError: string | undefined;
  #closed = false;

  constructor(options: RedisLinkOptions) {
    this.prefix = options.prefix;
    this.log = options.log.child({ engine: 'redis' });
    const retryStrategy = (times: number) => Math.min(5000, 100 * 2 ** Math.min(times, 6)) * (0.5 + Math.random() / 2);
    const common: RedisOptions = { lazyConnect: true, retryStrategy };
    // Auto-pipelining: commands issued in the same turn (a batch's agent records, many sessions saved) go in one write.
    this.cmd = new Redis(options.url, {
      ...common,
      connectionName: `escai:${this.nodeId}:cmd`,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      enableAutoPipelining: true,
    });
    // The broker re-subscribes what it follows itself on every (re)connect, so nothing waits in an offline queue.
    this.sub = new Redis(options.url, { ...common, connectionName: `escai:${this.nodeId}:sub`, enableOfflineQueue: false, autoResubscribe: false });
    for (const [name, client] of [
      ['commands', this.cmd],
      ['subscriber', this.sub],
    ] as const) {
      client.on('error', (err: Error) => {
        if (this.#lastError !== err.message) this.log.warn({ connection: name, err: err.message }, 'redis error');
        this.#lastError = err.message;
      });
      client.on('ready', () => {
        this.#lastError = undefined;
        this.log.info({ connection: name }, 'redis ready');
      });
      client.on('close', () => {
        if (!this.#closed) this.log.debug({ connection: name }, 'redis connection closed');
      });
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Connects both in the background: a node starts without Redis and keeps retrying (readyz says why). */
  connect(): void {
    this.cmd.connect().catch(() => {});
    this.sub.connect().catch(() => {});
  }

  key(...parts: string[]): string {
    return [this.prefix, ...parts.map(escapeKeyPart)].join(':');
  }

  /** The pub/sub channel of one stream. */
  channel(stream: string): string {
    return this.key('c', stream);
  }

  /** The pattern matching the channel of every stream a wildcard covers (ids cannot hold glob characters). */
  pattern(wildcard: StreamWildcard): string {
    return `${this.key('c', wildcardPrefix(wildcard))}*`;
  }

  /** Why the commands connection is not usable, or undefined when it is. */
  commandsDown(): string | undefined {
    if (this.cmd.status === 'ready') return undefined;
    return `redis: commands connection ${this.cmd.status}${this.#lastError ? ` (${this.#lastError})` : ''}`;
  }

  subscriberDown(): string | undefined {
    if (this.sub.status === 'ready') return undefined;
    return `redis: subscriber connection ${this.sub.status}${this.#lastError ? ` (${this.#lastError})` : ''}`;
  }

  status(): EngineStatus {
    const reason = this.commandsDown() ?? this.subscriberDown();
    return reason === undefined ? { ready: true } : { ready: false, reason };
  }

  /**
   * Registers a Lua script on the commands connection. Each call is an
   * EVALSHA; a Redis that does not know the script (it restarted empty)
   * answers NOSCRIPT and the call is sent once more as EVAL, which loads it.
   *
   *   const take = link.script<string[]>(TAKE_LUA);
   *   const fields = await take([hashKey, indexKey], [member]);
   */
  script<R>(lua: string): LuaScript<R> {
    const sha = createHash('sha1').update(lua).digest('hex');
    const cmd = this.cmd;
    return async (keys, args) => {
      try {
        // The reply is whatever the script returns: its shape is the script's contract, stated once by `R`.
        return (await cmd.evalsha(sha, keys.length, ...keys, ...args)) as R;
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
        return (await cmd.eval(lua, keys.length, ...keys, ...args)) as R;
      }
    };
  }

  /** Runs a Redis call; any failure becomes EngineUnavailableError naming `what`. */
  async run<T>(what: string, call: () => Promise<T>): Promise<T> {
    const down = this.commandsDown();
    if (down !== undefined) throw new EngineUnavailableError(down);
    try {
      return await call();
    } catch (err) {
      throw new EngineUnavailableError(`redis: ${what} failed (${(err as Error).message})`);
    }
  }

  close(): void {
    this.#closed = true;
    this.sub.disconnect();
    this.cmd.disconnect();
  }
}
