// Conditions on change (`changed_by`, `crosses`): what one subscription
// remembers per agent to judge an event against the ones before it. Bounded
// (at most CHANGE_STATE_LIMITS.agents agents per subscription, the one tracked
// longest forgotten first), saved with the session (the most recently tracked
// CHANGE_STATE_LIMITS.savedAgents) and restored on resume.
//
// Per agent and per condition, one number:
// - `changed_by`: the field's value in the last event this subscription
//   delivered for that agent (the baseline); an event passes when the field is
//   a number that moved at least δ from it (the first event passes: it sets it);
// - `crosses`: the field's value in the last event of that agent the
//   subscription judged (delivered or not); an event passes when the field
//   went from one side of the threshold to the other (below: < t; at or above: ≥ t).
import type { DeliveredEvent } from '../protocol/events.js';
import type { ChangeCondition } from './compile.js';

/** [agent_id, offset, epoch, one value per condition on change (null: none yet)], per agent: what a session saves. */
export type SavedChangeState = Array<[string, number, string, Array<number | null>]>;

export const CHANGE_STATE_LIMITS = { agents: 1000, savedAgents: 32 } as const;

/** Decimal steps (0.5 - 0.3) are not exact in binary: a move this close to δ counts as δ. */
const EPSILON = 1e-9;

interface AgentState {
  offset: number;
  epoch: string;
  /** Set on resume: events at or before it were judged before the session was parked. */
  restored: { offset: number; epoch: string } | undefined;
  readonly values: Array<number | null>;
}

function crossed(prev: number, v: number, t: number, dir: ChangeCondition['direction']): boolean {
  const up = prev < t && v >= t;
  const down = prev >= t && v < t;
  return dir === 'up' ? up : dir === 'down' ? down : up || down;
}

function moved(base: number, v: number, by: number, dir: ChangeCondition['direction']): boolean {
  const d = v - base;
  const need = by - EPSILON;
  return dir === 'up' ? d >= need : dir === 'down' ? -d >= need : Math.abs(d) >= need;
}

export class ChangeTracker {
  readonly #conditions: readonly ChangeCondition[];
  readonly #agents = new Map<string, AgentState>();
  /** The values read for the event being judged (reused: judging allocates nothing for a known agent). */
  readonly #read: unknown[];
  /** Whether some condition is `crosses` (it must see refused events too). */
  readonly #seesAll: boolean;

  constructor(conditions: readonly ChangeCondition[]) {
    this.#conditions = conditions;
    this.#read = new Array<unknown>(conditions.length);
    this.#seesAll = conditions.some((c) => c.kind === 'crosses');
  }

  /** Agents tracked now. */
  get size(): number {
    return this.#agents.size;
  }

  /**
   * Judges `event` (`matched`: whether the stateless part of the filter holds)
   * and moves the state: true when the subscription delivers it. Never throws.
   */
  judge(event: DeliveredEvent, matched: boolean): boolean {
    // `changed_by` alone moves only on delivery: a refused event changes nothing.
    if (!matched && !this.#seesAll) return false;
    const key = event.agent_id ?? '';
    let state = this.#agents.get(key);
    const restored = state?.restored;
    if (restored !== undefined && event.epoch === restored.epoch && event.offset <= restored.offset) return false;
    const conditions = this.#conditions;
    const read = this.#read;
    let pass = matched;
    let seen = false;
    for (let i = 0; i < conditions.length; i++) {
      const c = conditions[i]!;
      const v = c.read(event);
      read[i] = v;
      const isNumber = typeof v === 'number' && Number.isFinite(v);
      const prev = state === undefined ? null : state.values[i]!;
      if (c.kind === 'crosses') {
        if (isNumber) seen = true;
        if (!(isNumber && prev !== null && crossed(prev, v, c.amount, c.direction))) pass = false;
      } else if (!isNumber || (prev !== null && !moved(prev, v, c.amount, c.direction))) pass = false;
    }
    if (state === undefined) {
      if (!pass && !seen) return false;
      state = this.#track(key, event);
    }
    state.offset = event.offset;
    state.epoch = event.epoch;
    for (let i = 0; i < conditions.length; i++) {
      const v = read[i];
      read[i] = undefined;
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      if (conditions[i]!.kind === 'crosses' || pass) state.values[i] = v;
    }
    return pass;
  }

  /**
   * Makes `event` (delivered as the current state, `latest`) what the next
   * event of its agent is judged against, unless that agent already has a
   * state: a live event judged meanwhile is newer and stays.
   */
  seed(event: DeliveredEvent): void {
    if (!this.#agents.has(event.agent_id ?? '')) this.judge(event, true);
  }

  #track(key: string, event: DeliveredEvent): AgentState {
    if (this.#agents.size >= CHANGE_STATE_LIMITS.agents) this.#agents.delete(this.#agents.keys().next().value!);
    const state: AgentState = {
      offset: event.offset,
      epoch: event.epoch,
      restored: undefined,
      values: new Array<number | null>(this.#conditions.length).fill(null),
    };
    this.#agents.set(key, state);
    return state;
  }

  /** What the session keeps: the most recently tracked agents, bounded. */
  save(): SavedChangeState {
    const all = [...this.#agents];
    const kept = all.length > CHANGE_STATE_LIMITS.savedAgents ? all.slice(-CHANGE_STATE_LIMITS.savedAgents) : all;
    return kept.map(([agent, s]) => [agent, s.offset, s.epoch, [...s.values]]);
  }

  /** Restores a saved state (as a store gave it back: entries of the wrong shape are skipped). */
  restore(saved: unknown): void {
    if (!Array.isArray(saved)) return;
    const n = this.#conditions.length;
    for (const entry of saved.slice(-CHANGE_STATE_LIMITS.savedAgents)) {
      if (!Array.isArray(entry) || entry.length !== 4) continue;
      const [agent, offset, epoch, values] = entry as unknown[];
      if (typeof agent !== 'string' || typeof offset !== 'number' || !Number.isFinite(offset) || typeof epoch !== 'string') continue;
      if (!Array.isArray(values) || values.length !== n || !values.every((v) => v === null || (typeof v === 'number' && Number.isFinite(v)))) continue;
      this.#agents.delete(agent);
      this.#agents.set(agent, { offset, epoch, restored: { offset, epoch }, values: [...(values as Array<number | null>)] });
    }
  }
}
