// The agent directory on Redis, shared by every node: a hash per agent (the
// latest state, counts), two capped lists (recent pattern alerts and
// predictions), and a sorted set of agents by last activity. One script
// records an event atomically; the latest by offset wins, whichever node
// records first. Every key expires `agentTtl` after the agent's last event.
import {
  afterCursor,
  AGENT_EVENT_TYPES,
  decodeCursor,
  emptyCounts,
  encodeCursor,
  epistemicFigures,
  openAlerts,
  RECENT_KEPT,
  type AgentDirectory,
  type AgentPage,
  type AgentQuery,
  type AgentRecord,
  type AgentSummary,
} from '../agents.js';
import type { DeliveredEvent } from '../broker.js';
import type { RedisLink } from './link.js';

// KEYS: agent hash, alerts list, predictions list, agents zset
// ARGV: agent id, type, offset, epoch, ms, iso time, event JSON, status, confidence, uncertainty, ttl ms, keep
const RECORD_LUA = `
local h = KEYS[1]
redis.call('HINCRBY', h, 'n:' .. ARGV[2], 1)
if ARGV[2] == 'pattern_alert' then
  redis.call('LPUSH', KEYS[2], ARGV[7])
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[12]) - 1)
elseif ARGV[2] == 'prediction_update' then
  redis.call('LPUSH', KEYS[3], ARGV[7])
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[12]) - 1)
end
local epoch = redis.call('HGET', h, 'epoch')
local offset = tonumber(redis.call('HGET', h, 'offset') or '0')
if epoch ~= ARGV[4] or tonumber(ARGV[3]) > offset then
  redis.call('HSET', h, 'epoch', ARGV[4], 'offset', ARGV[3], 'ms', ARGV[5], 'at', ARGV[6])
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
  if ARGV[2] == 'epistemic_update' then
    redis.call('HSET', h, 'epi', ARGV[7])
    if ARGV[9] ~= '' then redis.call('HSET', h, 'conf', ARGV[9]) end
    if ARGV[10] ~= '' then redis.call('HSET', h, 'unc', ARGV[10]) end
  elseif ARGV[2] == 'agent_status_change' then
    redis.call('HSET', h, 'st', ARGV[7], 'status', ARGV[8])
  end
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[11]) end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', tonumber(ARGV[5]) - tonumber(ARGV[11]))
return 1
`;

/** How many more than `limit` to read past a cursor (agents sharing its exact millisecond). */
const TIE_SLACK = 64;

export class RedisAgentDirectory implements AgentDirectory {
  readonly #link: RedisLink;
  readonly #ttlMs: number;

  constructor(link: RedisLink, options: { agentTtlMs: number }) {
    this.#link = link;
    this.#ttlMs = options.agentTtlMs;
    link.cmd.defineCommand('escaiRecordAgent', { numberOfKeys: 4, lua: RECORD_LUA });
  }

  async record(event: DeliveredEvent): Promise<void> {
    const agentId = event.agent_id;
    if (agentId === undefined || event.type === 'system_alert' || event.type === 'user_notification') return;
    const { cmd } = this.#link;
    const { confidence, uncertainty } = epistemicFigures(event);
    const record = (cmd as unknown as { escaiRecordAgent(...args: Array<string | number>): Promise<number> }).escaiRecordAgent;
    await this.#link.run('agent record', () =>
      record.call(
        cmd,
        this.#link.key('ag', agentId),
        this.#link.key('ag', agentId, 'alerts'),
        this.#link.key('ag', agentId, 'preds'),
        this.#link.key('agents'),
        agentId,
        event.type,
        event.offset,
        event.epoch,
        Date.parse(event.timestamp),
        event.timestamp,
        JSON.stringify(event),
        event.status ?? '',
        confidence ?? '',
        uncertainty ?? '',
        this.#ttlMs,
        RECENT_KEPT,
      ),
    );
  }

  async list({ limit, cursor, only }: AgentQuery): Promise<AgentPage> {
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    const { cmd } = this.#link;
    const minMs = Date.now() - this.#ttlMs;
    let candidates: Array<[string, number]>;
    if (only !== undefined) {
      // A caller limited to named agents: their scores, sorted here (the set is small: one permission each).
      const ids = [...only];
      const scores = ids.length === 0 ? [] : await this.#link.run('agent list', () => cmd.zmscore(this.#link.key('agents'), ...ids));
      candidates = ids.flatMap((id, i) => (scores[i] === null || scores[i] === undefined ? [] : [[id, Number(scores[i])] as [string, number]]));
    } else {
      const max = after ? String(after[0]) : '+inf';
      const raw = await this.#link.run('agent list', () =>
        cmd.zrevrangebyscore(this.#link.key('agents'), max, minMs, 'WITHSCORES', 'LIMIT', 0, limit + 1 + (after ? TIE_SLACK : 0)),
      );
      candidates = [];
      for (let i = 0; i < raw.length; i += 2) candidates.push([raw[i]!, Number(raw[i + 1])]);
    }
    const ordered = candidates
      .filter(([id, ms]) => ms >= minMs && afterCursor(ms, id, after))
      .sort(([a, x], [b, y]) => y - x || (a < b ? 1 : a > b ? -1 : 0));
    const page = ordered.slice(0, limit);
    const records = await this.#read(page.map(([id]) => id), false);
    const last = page.at(-1);
    return {
      agents: records.filter((r): r is AgentRecord => r !== undefined).map(toSummary),
      next_cursor: ordered.length > limit && last ? encodeCursor(last[1], last[0]) : null,
    };
  }

  async get(agentId: string): Promise<AgentRecord | undefined> {
    const [record] = await this.#read([agentId], true);
    return record;
  }

  /** Reads agents' hashes (and, with `full`, their recent lists) in one pipeline. */
  async #read(ids: readonly string[], full: boolean): Promise<Array<AgentRecord | undefined>> {
    if (ids.length === 0) return [];
    const { cmd } = this.#link;
    const results = await this.#link.run('agent read', async () => {
      const pipeline = cmd.pipeline();
      for (const id of ids) {
        pipeline.hgetall(this.#link.key('ag', id));
        pipeline.lrange(this.#link.key('ag', id, 'alerts'), 0, RECENT_KEPT - 1);
        if (full) pipeline.lrange(this.#link.key('ag', id, 'preds'), 0, RECENT_KEPT - 1);
      }
      return (await pipeline.exec()) ?? [];
    });
    const per = full ? 3 : 2;
    const now = Date.now();
    return ids.map((id, i) => {
      const hash = (results[i * per]?.[1] ?? {}) as Record<string, string>;
      if (hash['ms'] === undefined) return undefined;
      const alerts = ((results[i * per + 1]?.[1] ?? []) as string[]).map((j) => JSON.parse(j) as DeliveredEvent);
      const predictions = full ? ((results[i * per + 2]?.[1] ?? []) as string[]).map((j) => JSON.parse(j) as DeliveredEvent) : [];
      const events = emptyCounts();
      for (const type of AGENT_EVENT_TYPES) events[type] = Number(hash[`n:${type}`] ?? 0);
      return {
        agent_id: id,
        status: hash['status'] ?? null,
        last_event_at: hash['at'] ?? '',
        confidence_level: hash['conf'] === undefined ? null : Number(hash['conf']),
        uncertainty_score: hash['unc'] === undefined ? null : Number(hash['unc']),
        open_alerts: openAlerts(alerts, now),
        events,
        latest_epistemic: hash['epi'] ? (JSON.parse(hash['epi']) as DeliveredEvent) : null,
        latest_status: hash['st'] ? (JSON.parse(hash['st']) as DeliveredEvent) : null,
        alerts,
        predictions,
      };
    });
  }
}

function toSummary(record: AgentRecord): AgentSummary {
  const { agent_id, status, last_event_at, confidence_level, uncertainty_score, open_alerts, events } = record;
  return { agent_id, status, last_event_at, confidence_level, uncertainty_score, open_alerts, events };
}
