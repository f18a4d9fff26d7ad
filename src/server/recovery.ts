// Replays of missed events: for a `subscribe` with `since`, and for a resumed
// session. Reads history through the engine seam and turns the events the
// client wants into frames, all-or-nothing per stream: a stream whose
// position was lost (epoch changed, or the offset left history) replays
// nothing and marks the result unrecovered, so the client knows to reload.
import type { Broker, DeliveredEvent, StreamPosition } from '../engine/broker.js';
import type { OutFrame } from './connection.js';

export interface ReplayPlan {
  stream: string;
  /** Replay after this position. Without one, replay by time from `notBefore`. */
  since?: StreamPosition;
  /** Stream unknown to the client: events at or after this time (ms since the epoch). */
  notBefore?: number;
  /** Which events of the stream the client wants. */
  wants: (event: DeliveredEvent) => boolean;
}

export interface Replay {
  frames: OutFrame[];
  /** Ids of replayed events: live frames held meanwhile with these ids are dropped. */
  ids: Set<string>;
  /** False when some stream could not be replayed completely. */
  recovered: boolean;
  /** Current position of each planned stream (applied to the connection once the replay is written). */
  positions: Map<string, StreamPosition>;
}

/** Most events one replay may send; past it nothing is replayed and the client is told to reload. */
export const MAX_REPLAY_EVENTS = 10_000;

export async function collectReplay(broker: Pick<Broker, 'history'>, plans: readonly ReplayPlan[]): Promise<Replay> {
  const replay: Replay = { frames: [], ids: new Set(), recovered: true, positions: new Map() };
  for (const plan of plans) {
    if (replay.frames.length > MAX_REPLAY_EVENTS) {
      // Too much to replay through one socket: no partial replay, the client reloads instead.
      return { frames: [], ids: new Set(), recovered: false, positions: replay.positions };
    }
    const page = await broker.history(plan.stream, plan.since ? { since: plan.since.offset } : {});
    replay.positions.set(plan.stream, page.position);
    if (plan.since && (page.position.epoch !== plan.since.epoch || !page.complete)) {
      replay.recovered = false;
      continue;
    }
    if (!plan.since && plan.notBefore !== undefined) {
      // History must reach back to notBefore: the oldest kept event is the stream's first, or older than notBefore.
      const oldest = page.events[0];
      if (oldest && oldest.offset > 1 && Date.parse(oldest.timestamp) > plan.notBefore) {
        replay.recovered = false;
        continue;
      }
    }
    for (const event of page.events) {
      if (plan.notBefore !== undefined && Date.parse(event.timestamp) < plan.notBefore) continue;
      if (!plan.wants(event) || replay.ids.has(event.event_id)) continue;
      replay.frames.push({ frame: Buffer.from(JSON.stringify(event)), stream: plan.stream, event });
      replay.ids.add(event.event_id);
    }
  }
  return replay;
}
