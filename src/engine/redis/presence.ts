// Presence on Redis: each node's report with a TTL (and a sorted set of
// report times, so dead nodes drop out), each node's connection summaries in
// a hash that expires with the node, and per-user slots counted over live
// nodes only, so a dead node's slots free themselves. Leases are keys holding
// the node id with a TTL, taken or renewed by one script.
import type { ConnectionSummary, NodeReport, Presence } from '../presence.js';
import type { LuaScript, RedisLink } from './link.js';

// KEYS: user slots hash, nodes zset. ARGV: node id, cap, oldest live report (ms). Slots of nodes whose report is
// older are dropped (a dead node's); the asking node's own always count (it is alive, whether or not it has reported yet).
const CLAIM_SLOT_LUA = `
local fields = redis.call('HGETALL', KEYS[1])
local used = 0
for i = 1, #fields, 2 do
  local score = redis.call('ZSCORE', KEYS[2], fields[i])
  if fields[i] == ARGV[1] or (score and tonumber(score) >= tonumber(ARGV[3])) then used = used + tonumber(fields[i + 1])
  else redis.call('HDEL', KEYS[1], fields[i]) end
end
if used >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[1], 86400000)
return 1
`;

// KEYS: the lease. ARGV: node id, ttl ms. Takes a free lease or renews this node's own; 0 when another holds it.
const HOLD_LEASE_LUA = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;

// KEYS: the lease. ARGV: node id. Deletes it only if this node holds it.
const RELEASE_LEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

export interface RedisPresenceOptions {
  /** Idle streams' activity entries are dropped after this long (the broker forgets them then too). */
  streamMetaTtlMs: number;
}

export class RedisPresence implements Presence {
  readonly #link: RedisLink;
  readonly #opts: RedisPresenceOptions;
  #nodeTtlMs = 10_000;
  readonly #claimSlot: LuaScript<number>;
  readonly #holdLease: LuaScript<number>;
  readonly #releaseLease: LuaScript<number>;

  constructor(link: RedisLink, options: RedisPresenceOptions) {
    this.#link = link;
    this.#opts = options;
    this.#claimSlot = link.script(CLAIM_SLOT_LUA);
    this.#holdLease = link.script(HOLD_LEASE_LUA);
    this.#releaseLease = link.script(RELEASE_LEASE_LUA);
  }

  async holdLease(name: string, ttlMs: number): Promise<boolean> {
    const { key, nodeId } = this.#parts();
    return (await this.#link.run('lease', () => this.#holdLease([key('lease', name)], [nodeId, Math.ceil(ttlMs)]))) === 1;
  }

  async releaseLease(name: string): Promise<void> {
    const { key, nodeId } = this.#parts();
    await this.#link.run('lease release', () => this.#releaseLease([key('lease', name)], [nodeId])).catch(() => {});
  }

  /** This node's own channel: requests addressed to it (an admin's disconnect) arrive there. */
  get #nodeChannel(): string {
    return this.#link.key('n', this.#link.nodeId);
  }

  async requestClose(nodeId: string, connectionId: string): Promise<void> {
    await this.#link.run('close request', () => this.#link.cmd.publish(this.#link.key('n', nodeId), `close\n${connectionId}`));
  }

  onCloseRequest(handler: (connectionId: string) => void): void {
    const { sub } = this.#link;
    const channel = this.#nodeChannel;
    sub.on('message', (from: string, message: string) => {
      if (from !== channel) return;
      const [command, connectionId] = message.split('\n');
      if (command === 'close' && connectionId) handler(connectionId);
    });
    // Subscribed on every (re)connect: the link does not resubscribe by itself.
    const subscribe = () => void sub.subscribe(channel).catch(() => {});
    sub.on('ready', subscribe);
    if (sub.status === 'ready') subscribe();
  }

  async reportNode(report: NodeReport, ttlMs: number): Promise<void> {
    const { key, cmd, nodeId } = this.#parts();
    this.#nodeTtlMs = ttlMs;
    await this.#link.run('node report', () =>
      cmd
        .multi()
        .set(key('node', nodeId), JSON.stringify(report), 'PX', ttlMs)
        .zadd(key('nodes'), report.reported_at, nodeId)
        .zremrangebyscore(key('nodes'), '-inf', report.reported_at - ttlMs * 10)
        .pexpire(key('conns', nodeId), ttlMs)
        .zremrangebyscore(key('active'), '-inf', Date.now() - this.#opts.streamMetaTtlMs)
        .exec(),
    );
  }

  async #liveNodeIds(): Promise<string[]> {
    const { key, cmd } = this.#parts();
    return this.#link.run('node list', () => cmd.zrangebyscore(key('nodes'), Date.now() - this.#nodeTtlMs, '+inf'));
  }

  async nodes(): Promise<NodeReport[]> {
    const { key, cmd } = this.#parts();
    const ids = await this.#liveNodeIds();
    if (ids.length === 0) return [];
    const raws = await this.#link.run('node reports', () => cmd.mget(ids.map((id) => key('node', id))));
    return raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as NodeReport);
  }

  setConnection(connectionId: string, summary: ConnectionSummary | null): void {
    const { key, cmd, nodeId } = this.#parts();
    if (cmd.status !== 'ready') return;
    const op = summary ? cmd.hset(key('conns', nodeId), connectionId, JSON.stringify(summary)) : cmd.hdel(key('conns', nodeId), connectionId);
    op.catch(() => {});
  }

  async remoteConnections(): Promise<ConnectionSummary[]> {
    const { key, cmd, nodeId } = this.#parts();
    const ids = (await this.#liveNodeIds()).filter((id) => id !== nodeId);
    const out: ConnectionSummary[] = [];
    for (const id of ids) {
      const all = await this.#link.run('connection list', () => cmd.hgetall(key('conns', id)));
      for (const raw of Object.values(all)) out.push(JSON.parse(raw) as ConnectionSummary);
    }
    return out;
  }

  async claimUserSlot(userId: string, cap: number): Promise<boolean> {
    const { key, nodeId } = this.#parts();
    const ok = await this.#link.run('slot claim', () => this.#claimSlot([key('uslots', userId), key('nodes')], [nodeId, cap, Date.now() - this.#nodeTtlMs]));
    return ok === 1;
  }

  releaseUserSlot(userId: string): void {
    const { key, cmd, nodeId } = this.#parts();
    const slots = key('uslots', userId);
    cmd
      .hincrby(slots, nodeId, -1)
      .then((left) => (left <= 0 ? cmd.hdel(slots, nodeId) : 0))
      .catch(() => {});
  }

  /** Leaves the registry at once rather than at TTL expiry. */
  async leave(): Promise<void> {
    const { key, cmd, nodeId } = this.#parts();
    await cmd
      .multi()
      .zrem(key('nodes'), nodeId)
      .del(key('node', nodeId), key('conns', nodeId))
      .exec()
      .catch(() => {});
  }

  #parts() {
    const link = this.#link;
    return { key: (...parts: string[]) => link.key(...parts), cmd: link.cmd, nodeId: link.nodeId };
  }
}
