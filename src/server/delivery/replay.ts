// Replays of missed events: for a `subscribe` with `since`, and for a resumed
// session. Reads history through the engine seam and turns the events the
// client wants into frames, all-or-nothing per stream: a stream whose
// position was lost (epoch changed, or the offset left history) replays
// nothing and marks the result unrecovered, so the client knows to reload.
import type { Broker, DeliveredEvent, StreamPosition } from '../../engine/broker.js';
import type { OutFrame } from '../../core/recovery-merge.js';

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
  /** History events read to build it (what a replay budget is charged). */
  eventsRead: number;
}

/** The most one replay may send; past either nothing is replayed and the client is told to reload. */
export const REPLAY_LIMITS = { events: 10_000, bytes: 8 * 1024 * 1024 } as const;

/** Most events one replay may send (REPLAY_LIMITS.events). */
export const MAX_REPLAY_EVENTS = REPLAY_LIMITS.events;

/**
 * Collects what the plans replay, all-or-nothing per stream, and within
 * REPLAY_LIMITS for the whole replay (a single stream's included): past them
 * the result holds no frame at all and `recovered: false`.
 */
export async function collectReplay(broker: Pick<Broker, 'history'>, plans: readonly ReplayPlan[]): Promise<Replay> {
  const replay: Replay = { frames: [], ids: new Set(), recovered: true, positions: new Map(), eventsRead: 0 };
  let bytes = 0;
  const tooMuch = (): Replay => ({ frames: [], ids: new Set(), recovered: false, positions: replay.positions, eventsRead: replay.eventsRead });
  for (const plan of plans) {
    // One more than may be sent, to tell "exactly at the limit" from "over it".
    const limit = REPLAY_LIMITS.events - replay.frames.length + 1;
    let page = await broker.history(plan.stream, plan.since ? { since: plan.since.offset, limit } : { limit });
    if (plan.since && page.position.epoch !== plan.since.epoch && plan.since.offset === 0) {
      // The client saw nothing of the old epoch (a stream nobody had published to, forgotten since):
      // everything of the new one is new to it.
      page = await broker.history(plan.stream, { since: 0, limit });
    } else if (plan.since && (page.position.epoch !== plan.since.epoch || !page.complete)) {
      replay.positions.set(plan.stream, page.position);
      replay.recovered = false;
      continue;
    }
    replay.positions.set(plan.stream, page.position);
    replay.eventsRead += page.events.length;
    if (page.events.length >= limit) return tooMuch();
    if (plan.since && !page.complete) {
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
      const frame = Buffer.from(JSON.stringify(event));
      bytes += frame.length;
      if (bytes > REPLAY_LIMITS.bytes) return tooMuch();
      replay.frames.push({ frame, stream: plan.stream, event });
      replay.ids.add(event.event_id);
    }
  }
  return replay;
}
