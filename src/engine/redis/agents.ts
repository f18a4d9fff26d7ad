// The agent directory on Redis, shared by every node: a hash per agent (the
// latest state, counts, the latest activity, token totals), two capped lists
// (recent pattern alerts and predictions), and a sorted set of agents by last
// activity. One script records a publication's events of one agent's stream
// atomically, another its activity; the latest by offset of each stream wins,
// whichever node records first. Every key expires `agentTtl` after the
// agent's last event.
import type { ActivityNow, TokenTotals } from '../../protocol/api.js';
import {
  activityNow,
  afterCursor,
  countedTokens,
  AGENT_EVENT_TYPES,
  cursorPosition,
  emptyCounts,
  encodeCursor,
  epistemicFigures,
  isAgentRecordable,
  noTokens,
  latestPosition,
  openAlerts,
  positionOf,
  RECENT_KEPT,
  type AgentDirectory,
  type AgentEventType,
  type AgentPage,
  type AgentQuery,
  type AgentRecord,
  type AgentSummary,
} from '../agents.js';
import type { DeliveredEvent } from '../broker.js';
import type { LuaScript, RedisLink } from './link.js';

// One call per agent and publication, with the publication's events folded
// first (counts, the newest of each kind, the last few alerts and
// predictions): a batch of 1,000 events of one agent is one script call.
// KEYS: agent hash, alerts list, predictions list, agents zset
// ARGV: 1 agent id, 2 epoch, 3 latest offset, 4 its ms, 5 its iso time, 6 ttl ms, 7 keep,
//       8-11 counts (epistemic_update, pattern_alert, prediction_update, agent_status_change),
//       12 latest epistemic JSON, 13 its offset, 14 confidence, 15 its offset, 16 uncertainty, 17 its offset,
//       18 latest status JSON, 19 status, 20 its offset, 21 alerts n, 22 predictions n,
//       then the alerts' JSON and the predictions' JSON, oldest first ('' = none)
// A value is written only when its event is newer than the one that value
// came from (another epoch, or a later offset; each value keeps its own
// position, `<field>:epoch` and `<field>:offset`): the latest by offset wins
// per value across nodes, whatever order they record publications in.
const RECORD_LUA = `
local h = KEYS[1]
local function later() return tonumber(ARGV[4]) >= tonumber(redis.call('HGET', h, 'ms') or '0') end
local types = { 'epistemic_update', 'pattern_alert', 'prediction_update', 'agent_status_change' }
for i = 1, 4 do
  local n = tonumber(ARGV[7 + i])
  if n > 0 then redis.call('HINCRBY', h, 'n:' .. types[i], n) end
end
local keep = tonumber(ARGV[7])
local na, np = tonumber(ARGV[21]), tonumber(ARGV[22])
if na > 0 then
  redis.call('LPUSH', KEYS[2], unpack(ARGV, 23, 22 + na))
  redis.call('LTRIM', KEYS[2], 0, keep - 1)
end
if np > 0 then
  redis.call('LPUSH', KEYS[3], unpack(ARGV, 23 + na, 22 + na + np))
  redis.call('LTRIM', KEYS[3], 0, keep - 1)
end
local hashEpoch = redis.call('HGET', h, 'epoch')
local hashOffset = redis.call('HGET', h, 'offset')
if hashEpoch ~= ARGV[2] or tonumber(ARGV[3]) > tonumber(hashOffset or '0') then redis.call('HSET', h, 'epoch', ARGV[2], 'offset', ARGV[3]) end
-- Whether the event whose offset is ARGV[i] is newer than the one \`field\` holds, by that field's own position
-- (not the hash's latest: another field's later event says nothing of this one's).
local function newer(i, field)
  if ARGV[i] == '' then return false end
  local pos = redis.call('HMGET', h, field .. ':epoch', field .. ':offset')
  local epoch, offset = pos[1], pos[2]
  if not epoch then
    if redis.call('HEXISTS', h, field) == 0 then return true end
    epoch, offset = hashEpoch, hashOffset -- written before fields kept their own position: the hash's is an upper bound
  end
  return epoch ~= ARGV[2] or tonumber(ARGV[i]) > tonumber(offset or '0')
end
local function put(i, field, ...)
  if newer(i, field) then redis.call('HSET', h, field .. ':epoch', ARGV[2], field .. ':offset', ARGV[i], ...) end
end
if later() then
  redis.call('HSET', h, 'ms', ARGV[4], 'at', ARGV[5])
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
end
put(13, 'epi', 'epi', ARGV[12])
put(15, 'conf', 'conf', ARGV[14])
put(17, 'unc', 'unc', ARGV[16])
put(20, 'st', 'st', ARGV[18], 'status', ARGV[19])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[6]) end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', tonumber(ARGV[4]) - tonumber(ARGV[6]))
return 1
`;

// An agent's activity of one publication, folded: its count, the tokens it adds, the latest step.
// KEYS: agent hash, agents zset
// ARGV: 1 agent id, 2 epoch, 3 latest offset, 4 its ms, 5 its iso time, 6 ttl ms, 7 count,
//       8 input tokens, 9 output tokens, 10 total tokens, 11 the latest step's summary JSON
// The step is written only when newer than the one held (another epoch, or a later offset of the
// activity stream); the last activity time only moves forward.
const RECORD_ACTIVITY_LUA = `
local h = KEYS[1]
redis.call('HINCRBY', h, 'n:agent_activity', ARGV[7])
if ARGV[8] ~= '0' then redis.call('HINCRBY', h, 'tok:in', ARGV[8]) end
if ARGV[9] ~= '0' then redis.call('HINCRBY', h, 'tok:out', ARGV[9]) end
if ARGV[10] ~= '0' then redis.call('HINCRBY', h, 'tok:total', ARGV[10]) end
if redis.call('HGET', h, 'act:epoch') ~= ARGV[2] or tonumber(ARGV[3]) > tonumber(redis.call('HGET', h, 'act:offset') or '0') then
  redis.call('HSET', h, 'act:epoch', ARGV[2], 'act:offset', ARGV[3], 'act', ARGV[11])
end
if tonumber(ARGV[4]) >= tonumber(redis.call('HGET', h, 'ms') or '0') then
  redis.call('HSET', h, 'ms', ARGV[4], 'at', ARGV[5])
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
end
redis.call('PEXPIRE', h, ARGV[6])
return 1
`;

/** The event types of an agent's own stream, in the order the record script counts them. */
const STREAM_TYPES = AGENT_EVENT_TYPES.filter((t) => t !== 'agent_activity');

/** One agent's activity events of a publication, folded as the activity script reads them. */
interface FoldedActivity {
  latest: DeliveredEvent;
  count: number;
  tokens: TokenTotals;
}

/** One agent's events of a publication, folded as the script reads them. */
interface Folded {
  latest: DeliveredEvent;
  counts: Record<AgentEventType, number>;
  epistemic?: DeliveredEvent;
  confidence?: [number, number];
  uncertainty?: [number, number];
  status?: DeliveredEvent;
  alerts: DeliveredEvent[];
  predictions: DeliveredEvent[];
}

/** Folds a publication's agent events per agent (events in offset order per stream): its stream's, and its activity. */
function fold(events: readonly DeliveredEvent[]): { byAgent: Map<string, Folded>; activity: Map<string, FoldedActivity> } {
  const byAgent = new Map<string, Folded>();
  const activity = new Map<string, FoldedActivity>();
  for (const event of events) {
    if (!isAgentRecordable(event)) continue;
    if (event.type === 'agent_activity') {
      let a = activity.get(event.agent_id);
      if (!a) activity.set(event.agent_id, (a = { latest: event, count: 0, tokens: noTokens() }));
      a.latest = event;
      a.count++;
      const tokens = countedTokens(event);
      if (tokens) {
        a.tokens.input += tokens.input;
        a.tokens.output += tokens.output;
        a.tokens.total += tokens.total;
      }
      continue;
    }
    let f = byAgent.get(event.agent_id);
    if (!f) byAgent.set(event.agent_id, (f = { latest: event, counts: emptyCounts(), alerts: [], predictions: [] }));
    f.latest = event;
    f.counts[event.type]++;
    if (event.type === 'epistemic_update') {
      f.epistemic = event;
      const { confidence, uncertainty } = epistemicFigures(event);
      if (confidence !== undefined) f.confidence = [confidence, event.offset];
      if (uncertainty !== undefined) f.uncertainty = [uncertainty, event.offset];
    } else if (event.type === 'agent_status_change') f.status = event;
    else if (event.type === 'pattern_alert') keepLast(f.alerts, event);
    else if (event.type === 'prediction_update') keepLast(f.predictions, event);
  }
  return { byAgent, activity };
}

function keepLast(list: DeliveredEvent[], event: DeliveredEvent): void {
  list.push(event);
  if (list.length > RECENT_KEPT) list.shift();
}

/** How many more than `limit` to read past a cursor (agents sharing its exact millisecond). */
const TIE_SLACK = 64;

export class RedisAgentDirectory implements AgentDirectory {
  readonly #link: RedisLink;
  readonly #ttlMs: number;
  readonly #recordAgent: LuaScript<number>;
  readonly #recordActivity: LuaScript<number>;

  constructor(link: RedisLink, options: { agentTtlMs: number }) {
    this.#link = link;
    this.#ttlMs = options.agentTtlMs;
    this.#recordAgent = link.script(RECORD_LUA);
    this.#recordActivity = link.script(RECORD_ACTIVITY_LUA);
  }

  async record(events: readonly DeliveredEvent[]): Promise<void> {
    const calls: Array<Promise<number>> = [];
    const { byAgent, activity } = fold(events);
    // One script call per agent and stream; the command connection pipelines them.
    for (const [agentId, a] of activity) {
      const { latest, tokens } = a;
      const keys = [this.#link.key('ag', agentId), this.#link.key('agents')];
      const args = [...this.#latestArgs(agentId, latest), a.count, tokens.input, tokens.output, tokens.total, JSON.stringify(activityNow(latest))];
      calls.push(this.#link.run('agent record', () => this.#recordActivity(keys, args)));
    }
    for (const [agentId, f] of byAgent) {
      const { latest, epistemic, status } = f;
      const keys = [this.#link.key('ag', agentId), this.#link.key('ag', agentId, 'alerts'), this.#link.key('ag', agentId, 'preds'), this.#link.key('agents')];
      const args: Array<string | number> = [
        ...this.#latestArgs(agentId, latest),
        RECENT_KEPT,
        ...STREAM_TYPES.map((type) => f.counts[type]),
        epistemic ? JSON.stringify(epistemic) : '',
        epistemic?.offset ?? '',
        f.confidence?.[0] ?? '',
        f.confidence?.[1] ?? '',
        f.uncertainty?.[0] ?? '',
        f.uncertainty?.[1] ?? '',
        status ? JSON.stringify(status) : '',
        status?.status ?? '',
        status?.offset ?? '',
        f.alerts.length,
        f.predictions.length,
        ...f.alerts.map((e) => JSON.stringify(e)),
        ...f.predictions.map((e) => JSON.stringify(e)),
      ];
      calls.push(this.#link.run('agent record', () => this.#recordAgent(keys, args)));
    }
    await Promise.all(calls);
  }

  /** The arguments both record scripts open with: the agent, its latest event's position and time, the TTL. */
  #latestArgs(agentId: string, latest: DeliveredEvent): Array<string | number> {
    return [agentId, latest.epoch, latest.offset, Date.parse(latest.timestamp), latest.timestamp, this.#ttlMs];
  }

  async list({ limit, cursor, only }: AgentQuery): Promise<AgentPage> {
    const after = cursorPosition(cursor);
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
    const ordered = candidates.filter(([id, ms]) => ms >= minMs && afterCursor(ms, id, after)).sort(([a, x], [b, y]) => y - x || (a < b ? 1 : a > b ? -1 : 0));
    const page = ordered.slice(0, limit);
    const records = await this.#read(
      page.map(([id]) => id),
      false,
    );
    const last = page.at(-1);
    return {
      agents: records.filter((r): r is AgentRecord => r !== undefined).map(toSummary),
      next_cursor: ordered.length > limit && last ? encodeCursor(last[1], last[0]) : null,
    };
  }

  async remove(agentId: string): Promise<boolean> {
    const { cmd } = this.#link;
    const [deleted] = await this.#link.run('agent remove', async () => {
      const results = await cmd
        .multi()
        .del(this.#link.key('ag', agentId))
        .del(this.#link.key('ag', agentId, 'alerts'), this.#link.key('ag', agentId, 'preds'))
        .zrem(this.#link.key('agents'), agentId)
        .exec();
      return (results ?? []).map(([err, value]) => {
        if (err) throw err;
        return value;
      });
    });
    return Number(deleted) > 0;
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
      const latestEpistemic = hash['epi'] ? (JSON.parse(hash['epi']) as DeliveredEvent) : null;
      const latestStatus = hash['st'] ? (JSON.parse(hash['st']) as DeliveredEvent) : null;
      return {
        agent_id: id,
        status: hash['status'] ?? null,
        last_event_at: hash['at'] ?? '',
        confidence_level: hash['conf'] === undefined ? null : Number(hash['conf']),
        uncertainty_score: hash['unc'] === undefined ? null : Number(hash['unc']),
        open_alerts: openAlerts(alerts, now),
        events,
        latest_epistemic: latestEpistemic,
        latest_status: latestStatus,
        activity: hash['act'] ? (JSON.parse(hash['act']) as ActivityNow) : null,
        tokens: { input: Number(hash['tok:in'] ?? 0), output: Number(hash['tok:out'] ?? 0), total: Number(hash['tok:total'] ?? 0) },
        positions: {
          status: positionOf(latestStatus),
          epistemic: positionOf(latestEpistemic),
          alert: latestPosition(alerts),
          activity: hash['act'] && hash['act:epoch'] !== undefined ? { epoch: hash['act:epoch'], offset: Number(hash['act:offset'] ?? 0) } : null,
        },
        alerts,
        predictions,
      };
    });
  }
}

function toSummary(record: AgentRecord): AgentSummary {
  const { agent_id, status, last_event_at, confidence_level, uncertainty_score, open_alerts, events, activity, tokens, positions } = record;
  return { agent_id, status, last_event_at, confidence_level, uncertainty_score, open_alerts, events, activity, tokens, positions };
}
