// The subscription filter grammar as types, and a small builder for it: what
// a filter may say is checked by the compiler, and the builder writes the
// JSON the server reads (docs/PROTOCOL.md, Filters). The server still
// validates every filter it is sent; the types only catch mistakes early.
import type { ChangeDirection } from '../protocol/constants.js';

/** Which way a change counts: `up`, `down`, or `either` (the default); the server's type too. */
export type { ChangeDirection };

/** A plain value: equality when given alone. */
export type FilterValue = string | number | boolean;

/** Operators on one field; every one given must hold. */
export type FieldOperators = {
  min?: number;
  max?: number;
  equals?: FilterValue;
  contains?: FilterValue;
  prefix?: string;
  suffix?: string;
  in?: FilterValue[];
  not_in?: FilterValue[];
  exists?: boolean;
  /** Some element of the list matches (paths relative to the element). */
  any?: Filter;
  /** Every element of the list matches (true for an empty list). */
  all?: Filter;
};

/** Conditions on change, judged per agent: only at the top level of a subscription's filter. */
export type ChangeOperators = {
  changed_by?: number | { by: number; direction?: ChangeDirection };
  crosses?: number | { value: number; direction?: ChangeDirection };
};

export type FieldCondition = FilterValue | FieldOperators;

type Combinators = { $and?: Filter[]; $or?: Filter[]; $not?: Filter };

/** A filter inside `$and`, `$or`, `$not`, `any` or `all`: paths to conditions, and combinators. */
export type Filter = Combinators & { [path: string]: FieldCondition | Filter | Filter[] | undefined };

/** A subscription's filter: a Filter, plus conditions on change and `$max_rate` (events per second per agent). */
export type SubscriptionFilter = Combinators & { $max_rate?: number } & {
  [path: string]: FilterValue | (FieldOperators & ChangeOperators) | Filter | Filter[] | undefined;
};

type Buildable = Filter | FilterBuilder;

function built(f: Buildable): Filter {
  return f instanceof FilterBuilder ? (f.build() as Filter) : f;
}

/**
 * Builds a filter one condition at a time; `build()` gives the JSON object to
 * pass as `filters`. Conditions on the same path merge into one operator object.
 *
 * @example
 *   // Any belief at or below 0.3, from a planner or a critic, when confidence fell by 0.2; at most 2 a second per agent.
 *   const filters = filter()
 *     .any('belief_states', filter().where('confidence', { max: 0.3 }))
 *     .or(where('role', 'planner'), where('role', 'critic'))
 *     .changedBy('confidence_level', 0.2, 'down')
 *     .maxRate(2)
 *     .build();
 *   await client.subscribe('epistemic_updates', { filters });
 */
export class FilterBuilder {
  readonly #filter: Record<string, unknown> = {};
  readonly #and: Filter[] = [];

  /** A condition on a path (a plain value is equality). */
  where(path: string, condition: FilterValue | (FieldOperators & ChangeOperators)): this {
    const had = this.#filter[path];
    const isOps = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object';
    if (had !== undefined && isOps(had) && isOps(condition)) this.#filter[path] = { ...had, ...condition };
    else if (had !== undefined) this.#and.push({ [path]: condition } as Filter);
    else this.#filter[path] = condition;
    return this;
  }

  /** Some element of the list at `path` matches `inner`. */
  any(path: string, inner: Buildable): this {
    return this.where(path, { any: built(inner) });
  }

  /** Every element of the list at `path` matches `inner`. */
  all(path: string, inner: Buildable): this {
    return this.where(path, { all: built(inner) });
  }

  /** At least one of the filters holds (each call adds one more condition, ANDed with the rest). */
  or(...filters: Buildable[]): this {
    this.#and.push({ $or: filters.map(built) });
    return this;
  }

  /** The filter does not hold. */
  not(inner: Buildable): this {
    this.#and.push({ $not: built(inner) });
    return this;
  }

  /** Delivered when the number at `path` moved at least `by` since the last event delivered for that agent. */
  changedBy(path: string, by: number, direction: ChangeDirection = 'either'): this {
    return this.where(path, { changed_by: direction === 'either' ? by : { by, direction } });
  }

  /** Delivered when the number at `path` went from one side of `value` to the other since the agent's previous event. */
  crosses(path: string, value: number, direction: ChangeDirection = 'either'): this {
    return this.where(path, { crosses: direction === 'either' ? value : { value, direction } });
  }

  /** At most `perSecond` events per second per agent; over it the latest wins (conflation). */
  maxRate(perSecond: number): this {
    this.#filter['$max_rate'] = perSecond;
    return this;
  }

  /** The filter as JSON-ready data. */
  build(): SubscriptionFilter {
    const out: Record<string, unknown> = { ...this.#filter };
    if (this.#and.length === 1 && !('$or' in out) && '$or' in this.#and[0]!) Object.assign(out, this.#and[0]);
    else if (this.#and.length === 1 && !('$not' in out) && '$not' in this.#and[0]!) Object.assign(out, this.#and[0]);
    else if (this.#and.length > 0) out['$and'] = [...this.#and];
    return out as SubscriptionFilter;
  }
}

/** A new, empty builder. */
export function filter(): FilterBuilder {
  return new FilterBuilder();
}

/** One condition on one path, as a nested filter. */
export function where(path: string, condition: FieldCondition): Filter {
  return { [path]: condition } as Filter;
}

/** Every filter holds. */
export function and(...filters: Buildable[]): Filter {
  return { $and: filters.map(built) };
}

/** At least one filter holds. */
export function or(...filters: Buildable[]): Filter {
  return { $or: filters.map(built) };
}

/** The filter does not hold. */
export function not(inner: Buildable): Filter {
  return { $not: built(inner) };
}

/**
 * Under `$max_rate`, an event delivered when its agent's window closed, having
 * replaced others, carries `conflated`: how many (its offset is its own).
 *
 * @example
 *   client.on('event', (e: Conflated<DeliveredEvent>) => { if (e.conflated) console.log(`${e.conflated} updates skipped`); });
 */
export type Conflated<E> = E & { conflated?: number };
