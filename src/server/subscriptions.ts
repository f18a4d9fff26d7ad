// The subscription index: which subscriptions want an event, found without
// scanning every connection. Per event type, subscriptions are kept by agent
// id, plus one set for subscriptions to all agents.
import type { EventType, SubscriptionType } from '../protocol/events.js';
import { SUBSCRIPTION_TYPES } from '../protocol/events.js';
import type { EventPredicate } from './filters.js';

/** What a subscription delivers to; the Connection implements it. */
export interface Subscriber {
  readonly id: string;
}

export interface Subscription<S extends Subscriber = Subscriber> {
  readonly subscriber: S;
  readonly type: SubscriptionType;
  readonly eventType: EventType;
  /** Null: every agent the subscriber may monitor. */
  readonly agentId: string | null;
  /** The filter as the client sent it (echoed in replies). */
  readonly filters: Record<string, unknown> | null;
  readonly match: EventPredicate;
  /** When the client subscribed (ms since the epoch; kept across session resume). */
  readonly createdAt: number;
  /** Single-stream subscriptions: the stream's position when it started (kept across session resume). */
  start?: { offset: number; epoch: string };
}

/** The key of a subscription within one connection: type + agent. */
export function subscriptionKey(type: string, agentId: string | null | undefined): string {
  return agentId ? `${type}\u0000${agentId}` : type;
}

interface TypeIndex<S extends Subscriber> {
  byAgent: Map<string, Set<Subscription<S>>>;
  all: Set<Subscription<S>>;
}

const EMPTY: ReadonlySet<never> = new Set();

export class SubscriptionIndex<S extends Subscriber = Subscriber> {
  readonly #byType = new Map<EventType, TypeIndex<S>>();
  #size = 0;

  constructor() {
    for (const eventType of Object.values(SUBSCRIPTION_TYPES)) this.#byType.set(eventType, { byAgent: new Map(), all: new Set() });
  }

  get size(): number {
    return this.#size;
  }

  /** Distinct agents with at least one agent-specific subscription. */
  get agentCount(): number {
    const agents = new Set<string>();
    for (const index of this.#byType.values()) for (const agent of index.byAgent.keys()) agents.add(agent);
    return agents.size;
  }

  add(sub: Subscription<S>): void {
    const index = this.#byType.get(sub.eventType)!;
    if (sub.agentId === null) index.all.add(sub);
    else {
      let set = index.byAgent.get(sub.agentId);
      if (!set) index.byAgent.set(sub.agentId, (set = new Set()));
      set.add(sub);
    }
    this.#size++;
  }

  remove(sub: Subscription<S>): void {
    const index = this.#byType.get(sub.eventType)!;
    let removed: boolean;
    if (sub.agentId === null) removed = index.all.delete(sub);
    else {
      const set = index.byAgent.get(sub.agentId);
      removed = set?.delete(sub) ?? false;
      if (set && set.size === 0) index.byAgent.delete(sub.agentId);
    }
    if (removed) this.#size--;
  }

  /** Subscriptions to this agent's events of this type. */
  forAgent(eventType: EventType, agentId: string): ReadonlySet<Subscription<S>> {
    return this.#byType.get(eventType)?.byAgent.get(agentId) ?? EMPTY;
  }

  /** Subscriptions to this type from every agent. */
  forAllAgents(eventType: EventType): ReadonlySet<Subscription<S>> {
    return this.#byType.get(eventType)?.all ?? EMPTY;
  }
}
