// Sessions on Redis: one hash per user and session id (a field for the times,
// one for the positions, one per subscription), so a change writes only
// what changed; a sorted set per user caps how many sessions the user keeps.
// Taking one is atomic (a script reads and deletes it): of two reconnects,
// one wins.
import { savedSubscriptionKey, type SavedSubscription, type SessionPatch, type SessionState, type SessionStore } from '../sessions.js';
import type { LuaScript, RedisLink } from './link.js';

// KEYS: session hash, user index. ARGV: ttl ms, max per user, member (escaped session id), now ms,
// key prefix of the user's sessions, then field/value pairs.
// (The user's other session keys are derived from the prefix: one node-local Redis, or one hash slot per user.)
const SAVE_LUA = `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
local n = redis.call('ZCARD', KEYS[2])
local cap = tonumber(ARGV[2])
if n > cap then
  for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, n - cap - 1)) do
    redis.call('DEL', ARGV[5] .. member)
    redis.call('ZREM', KEYS[2], member)
  end
end
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[1]) * 2)
return 1
`;

// KEYS: session hash. ARGV: ttl ms, meta JSON, positions JSON ('' = unchanged), then field/value pairs ('' = delete).
const PATCH_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'meta', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'pos', ARGV[3]) end
for i = 4, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i]) else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`;

// KEYS: session hash, user index. ARGV: member.
const TAKE_LUA = `
local fields = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return fields
`;

interface Scripts {
  save: LuaScript<number>;
  patch: LuaScript<number>;
  take: LuaScript<string[]>;
}

type Meta = Pick<SessionState, 'userId' | 'sessionId' | 'startedAt' | 'detachedAt' | 'live'>;

const SUB = 's:';

export class RedisSessionStore implements SessionStore {
  readonly #link: RedisLink;
  readonly #scripts: Scripts;

  constructor(link: RedisLink) {
    this.#link = link;
    this.#scripts = { save: link.script(SAVE_LUA), patch: link.script(PATCH_LUA), take: link.script(TAKE_LUA) };
  }

  /** The session's key and its member in the user's index (the escaped id, the key's last part). */
  #keys(userId: string, sessionId: string): { hash: string; index: string; member: string; siblings: string } {
    const hash = this.#link.key('sess', userId, sessionId);
    const siblings = `${this.#link.key('sess', userId)}:`;
    return { hash, index: this.#link.key('sessu', userId), member: hash.slice(siblings.length), siblings };
  }

  async save(state: SessionState, ttlMs: number, maxPerUser: number): Promise<void> {
    const { hash, index, member, siblings } = this.#keys(state.userId, state.sessionId);
    const meta: Meta = {
      userId: state.userId,
      sessionId: state.sessionId,
      startedAt: state.startedAt,
      detachedAt: state.detachedAt,
      ...(state.live ? { live: state.live } : {}),
    };
    const fields: string[] = ['meta', JSON.stringify(meta), 'pos', JSON.stringify(state.positions)];
    for (const sub of state.subscriptions) fields.push(SUB + savedSubscriptionKey(sub), JSON.stringify(sub));
    const ttl = Math.max(1, Math.round(ttlMs));
    await this.#link.run('session save', () => this.#scripts.save([hash, index], [ttl, maxPerUser, member, Date.now(), siblings, ...fields]));
  }

  async patch(userId: string, sessionId: string, patch: SessionPatch, ttlMs: number): Promise<void> {
    const { hash } = this.#keys(userId, sessionId);
    const meta: Meta = { userId, sessionId, startedAt: patch.startedAt, detachedAt: patch.detachedAt, ...(patch.live ? { live: patch.live } : {}) };
    const pairs: string[] = [];
    for (const [key, sub] of Object.entries(patch.subscriptions ?? {})) pairs.push(SUB + key, sub ? JSON.stringify(sub) : '');
    const ttl = Math.max(1, Math.round(ttlMs));
    await this.#link.run('session patch', () =>
      this.#scripts.patch([hash], [ttl, JSON.stringify(meta), patch.positions ? JSON.stringify(patch.positions) : '', ...pairs]),
    );
  }

  async take(userId: string, sessionId: string): Promise<SessionState | undefined> {
    const { hash, index, member } = this.#keys(userId, sessionId);
    let fields: string[];
    try {
      fields = await this.#link.run('session lookup', () => this.#scripts.take([hash, index], [member]));
    } catch (err) {
      this.#link.log.warn({ err: (err as Error).message }, 'session lookup failed; starting a fresh session');
      return undefined;
    }
    let meta: Meta | undefined;
    let positions: SessionState['positions'] = [];
    const subscriptions: SavedSubscription[] = [];
    for (let i = 0; i < fields.length; i += 2) {
      const [field, value] = [fields[i]!, fields[i + 1]!];
      if (field === 'meta') meta = JSON.parse(value) as Meta;
      else if (field === 'pos') positions = JSON.parse(value) as SessionState['positions'];
      else if (field.startsWith(SUB)) subscriptions.push(JSON.parse(value) as SavedSubscription);
    }
    if (!meta) return undefined;
    // Subscriptions in the order they were made (a hash keeps none).
    subscriptions.sort((a, b) => a.created_at - b.created_at);
    return { ...meta, subscriptions, positions };
  }
}
