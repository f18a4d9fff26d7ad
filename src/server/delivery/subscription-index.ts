// The subscription index: the only writer of subscription state. It finds
// the subscriptions an event may concern without scanning connections (per
// event type: by agent id, plus one set for all-agents subscriptions), lists
// each connection's own, and tells the engine which streams this node follows
// (the first subscription of a stream follows it, the last one leaves it).
import {
  agentOfStream,
  ALL_ACTIVITY_STREAMS,
  SUBSCRIPTION_TYPES,
  SYSTEM_STREAM,
  subscriptionKey,
  subscriptionStream,
  subscriptionWildcard,
  wildcardOf,
} from '../../protocol/constants.js';
import type { EventType, SubscriptionType } from '../../protocol/constants.js';
import type { SubscriptionView } from '../../protocol/server-messages.js';
import type { ChangeTracker } from '../../filters/change-state.js';
import type { Conflator } from '../../filters/conflation.js';
import type { EventPredicate } from '../../filters/compile.js';

/** What a subscription delivers to (a Connection). */
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
  /** The filter's stateless part. */
  readonly match: EventPredicate;
  /** The filter's size as JSON and its worst-case cost per event (filters.ts, CompiledFilter); 0 for none. */
  readonly filterBytes: number;
  readonly filterCost: number;
  /** The filter's conditions on change (`changed_by`, `crosses`) with their per-agent state; absent when it has none. */
  readonly changes?: ChangeTracker;
  /** `$max_rate`: the conflation windows; absent when the subscription asked for no limit. */
  readonly conflation?: Conflator;
  /** When the client subscribed (ms since the epoch; kept across session resume). */
  readonly createdAt: number;
  /** Single-stream subscriptions: the stream's position when it started (kept across session resume). */
  start?: { offset: number; epoch: string };
}

/** Which streams the node receives: the engine's follow/unfollow. */
export interface Interest {
  follow(stream: string): Promise<void>;
  unfollow(stream: string): void;
}

/** The stream a subscription makes the node follow: its one stream, or every stream of its family. */
function followedStream(sub: Subscription): string {
  return subscriptionStream(sub.type, sub.agentId) ?? subscriptionWildcard(sub.type as Exclude<typeof sub.type, 'system_alerts'>);
}

/** The subscription as replies show it. */
export function describeSubscription(sub: Subscription): SubscriptionView {
  return { type: sub.type, agent_id: sub.agentId, filters: sub.filters };
}

interface TypeIndex<S extends Subscriber> {
  byAgent: Map<string, Set<Subscription<S>>>;
  all: Set<Subscription<S>>;
}

const EMPTY: ReadonlySet<never> = new Set();
const NONE: ReadonlyMap<string, never> = new Map<string, never>();

export class SubscriptionIndex<S extends Subscriber = Subscriber> {
  readonly #byType = new Map<EventType, TypeIndex<S>>();
  readonly #bySubscriber = new Map<S, Map<string, Subscription<S>>>();
  readonly #interest: Interest;
  #size = 0;

  constructor(interest: Interest) {
    this.#interest = interest;
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

  /**
   * Adds a subscription (the subscriber must not hold one of the same type
   * and agent). Resolves once the engine delivers its stream to this node.
   */
  add(sub: Subscription<S>): Promise<void> {
    let own = this.#bySubscriber.get(sub.subscriber);
    if (!own) this.#bySubscriber.set(sub.subscriber, (own = new Map()));
    own.set(subscriptionKey(sub.type, sub.agentId), sub);
    const index = this.#byType.get(sub.eventType)!;
    if (sub.agentId === null) index.all.add(sub);
    else {
      let set = index.byAgent.get(sub.agentId);
      if (!set) index.byAgent.set(sub.agentId, (set = new Set()));
      set.add(sub);
    }
    this.#size++;
    const following = this.#interest.follow(followedStream(sub));
    following.catch(() => {}); // a caller that does not wait must not see an unhandled rejection
    return following;
  }

  /** Removes a subscription; false when it was not there. */
  remove(sub: Subscription<S>): boolean {
    const own = this.#bySubscriber.get(sub.subscriber);
    const key = subscriptionKey(sub.type, sub.agentId);
    if (own?.get(key) !== sub) return false;
    own.delete(key);
    if (own.size === 0) this.#bySubscriber.delete(sub.subscriber);
    const index = this.#byType.get(sub.eventType)!;
    if (sub.agentId === null) index.all.delete(sub);
    else {
      const set = index.byAgent.get(sub.agentId)!;
      set.delete(sub);
      if (set.size === 0) index.byAgent.delete(sub.agentId);
    }
    this.#size--;
    // Its conflation timers go with it (nothing is sent for a subscription that is gone).
    sub.conflation?.dispose();
    this.#interest.unfollow(followedStream(sub));
    return true;
  }

  /** Removes every subscription of a subscriber (it left). */
  removeAll(subscriber: S): void {
    for (const sub of [...this.of(subscriber)]) this.remove(sub);
  }

  /** The subscriber's subscriptions, in the order they were made. */
  of(subscriber: S): Iterable<Subscription<S>> {
    return (this.#bySubscriber.get(subscriber) ?? NONE).values();
  }

  get(subscriber: S, type: string, agentId: string | null | undefined): Subscription<S> | undefined {
    return this.#bySubscriber.get(subscriber)?.get(subscriptionKey(type, agentId));
  }

  countOf(subscriber: S): number {
    return this.#bySubscriber.get(subscriber)?.size ?? 0;
  }

  /** Subscriptions to this agent's events of this type. */
  forAgent(eventType: EventType, agentId: string): ReadonlySet<Subscription<S>> {
    return this.#byType.get(eventType)?.byAgent.get(agentId) ?? EMPTY;
  }

  /** Subscriptions to this type from every agent. */
  forAllAgents(eventType: EventType): ReadonlySet<Subscription<S>> {
    return this.#byType.get(eventType)?.all ?? EMPTY;
  }

  /** Whether any subscription here may want events of `stream` (an agent or activity stream, or `system`). */
  follows(stream: string): boolean {
    if (stream === SYSTEM_STREAM) return this.#byType.get('system_alert')!.all.size > 0;
    const agentId = agentOfStream(stream);
    if (agentId === null) return false;
    const activity = wildcardOf(stream) === ALL_ACTIVITY_STREAMS;
    for (const [eventType, index] of this.#byType) {
      if (eventType === 'system_alert' || (eventType === 'agent_activity') !== activity) continue;
      if (index.all.size > 0 || index.byAgent.has(agentId)) return true;
    }
    return false;
  }
}
