// Subscription filters, compiled once at subscribe into a predicate over a
// delivered event, plus the subscription's conditions on change (judged by
// ./change-state.ts) and its flow control (./conflation.ts).
//
// Grammar (docs/PROTOCOL.md, Filters, is the reference):
//
//   filter    := { entry, ... }                 every entry must hold (AND); {} holds for every event
//   entry     := path : condition
//              | "$and" : [filter, ...]          every filter holds
//              | "$or"  : [filter, ...]          at least one holds
//              | "$not" : filter                 the filter does not hold
//              | "$max_rate" : number            top level only: flow control, not a condition
//   condition := string | number | boolean       equality
//              | { operator : argument, ... }   every operator holds
//   operator  := min | max | equals | contains | in | not_in | exists | prefix | suffix
//              | any : filter | all : filter     over the first 64 elements of a list (paths relative to the element)
//              | changed_by | crosses            top level only: judged per agent against what came before
//
// A key is an envelope field (agent_id, severity, alert_type, status, message,
// notification_type) or a dotted path into `data` (`knowledge_state.confidence`,
// `belief_states.0.confidence`); inside `any`/`all` a path into the element.
// Reserved keys start with `$`, which no path segment may hold, so no filter
// valid before them changes meaning. A missing or null field never matches,
// except `exists: false`, which asks exactly for that. Compiled predicates never
// throw: every read checks what it reads.
import type { DeliveredEvent } from '../protocol/events.js';
import { EscaiError } from '../protocol/codes.js';
import type { ChangeDirection } from '../protocol/constants.js';

export type EventPredicate = (event: DeliveredEvent) => boolean;

const ENVELOPE_KEYS = new Set(['agent_id', 'severity', 'alert_type', 'status', 'message', 'notification_type']);
const OPERATORS = new Set(['min', 'max', 'equals', 'contains', 'in', 'not_in', 'exists', 'prefix', 'suffix', 'any', 'all', 'changed_by', 'crosses']);
const CHANGE_OPERATORS = new Set(['changed_by', 'crosses']);
const COMBINATORS = new Set(['$and', '$or', '$not', '$max_rate']);
const SEGMENT = /^[A-Za-z0-9_-]{1,128}$/;
const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'prototype', 'constructor']);

/**
 * Limits on one filter. `keys` per object, `depth` of a path, `listItems` of
 * `in`/`not_in`, `textLength` of a string argument, `nesting` of filters
 * inside filters (`$and`, `$or`, `$not`, `any`, `all`), `nodes` in all (every
 * key, operator and nested filter), `changes` conditions on change, `maxRate`
 * the highest `$max_rate`. Bytes are limited at subscribe (FILTER_BUDGET).
 *
 * Work per event: `scanItems` is the most elements of one list that one
 * `any`, `all` or `contains` looks at (the rest are not scanned: the list is
 * judged as if cut there), `scanText` the most characters one `contains`
 * searches; `cost` the most a filter's worst case may cost, where each node
 * costs 1, `contains` one more per 32 characters it may search
 * (CONTAINS_COST), and `any`/`all` each of the `scanItems` elements they may
 * look at times their inner filter's cost (at least 1), so nested
 * quantifiers multiply. A unit is one node judged on one target (10–30 ns;
 * docs/BENCHMARKS.md, Filter cost bound). The connection's sum: FILTER_BUDGET.
 */
export const FILTER_LIMITS = {
  keys: 32,
  depth: 8,
  listItems: 256,
  textLength: 1024,
  nesting: 6,
  nodes: 256,
  changes: 8,
  maxRate: 1000,
  scanItems: 64,
  scanText: 1024,
  cost: 2304,
} as const;

/** The characters one cost unit of `contains` stands for (measured: then a unit of text search costs about what a unit of nodes does). */
const CHARS_PER_UNIT = 32;
/** What a list element counts against a `contains`' characters, at least: an element visit costs about that much search. */
const ELEMENT_CHARS = 64;

/**
 * What a `contains` adds to the cost: one unit per 32 characters it may
 * search, so that a text search in each element of a list (`any` over a
 * `contains`) still fits in one filter.
 */
export const CONTAINS_COST = FILTER_LIMITS.scanText / CHARS_PER_UNIT;
/** The most elements of a list one `contains` visits (each counts at least ELEMENT_CHARS characters). */
export const CONTAINS_ELEMENTS = FILTER_LIMITS.scanText / ELEMENT_CHARS;

type Primitive = string | number | boolean;
/** A predicate over what a filter looks at: the event at the top level, a list element inside `any`/`all`. */
type Predicate = (target: unknown) => boolean;

/** A condition on change: judged per agent against the subscription's previous events (see ./change-state.ts). */
export interface ChangeCondition {
  readonly key: string;
  readonly kind: 'changed_by' | 'crosses';
  /** changed_by: the least move; crosses: the threshold. */
  readonly amount: number;
  readonly direction: ChangeDirection;
  readonly read: (event: DeliveredEvent) => unknown;
}

/** What a subscription's filter compiles to. */
export interface CompiledFilter {
  /** The stateless part: every condition but the ones on change. */
  readonly match: EventPredicate;
  /** Conditions on change (top level only), in the order written; empty when none. */
  readonly changes: readonly ChangeCondition[];
  /** `$max_rate`: events per second per agent, above which the server conflates. */
  readonly maxRate: number | undefined;
  /** The filter's size as JSON, bytes (what the filter budgets count); 0 for no filter. */
  readonly bytes: number;
  /** Its worst-case evaluation cost per event (FILTER_LIMITS, `cost`); 0 for no filter. */
  readonly cost: number;
}

const matchAll: Predicate = () => true;

/** Compile-time context: where we are (for error names and limits) and what the filter has used so far. */
interface Ctx {
  nodes: number;
  /**
   * The worst-case evaluation cost so far (FILTER_LIMITS, `cost`): what the
   * limit counts, and the weight by which the entries of an AND run cheapest first.
   */
  cost: number;
  /** The deepest nesting reached so far (a shared condition must still fit where it is used). */
  deepest: number;
  changes: ChangeCondition[];
  maxRate: number | undefined;
}

function refuseAt(at: string, why: string): never {
  throw new EscaiError('VALIDATION_ERROR', `${at}: ${why}`);
}

function isPrimitive(v: unknown): v is Primitive {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean';
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function checkPrimitive(at: string, op: string, v: unknown): Primitive {
  if (!isPrimitive(v)) refuseAt(at, `${op} needs a string, finite number or boolean`);
  if (typeof v === 'string' && v.length > FILTER_LIMITS.textLength) refuseAt(at, `${op} value is too long`);
  return v;
}

function count(ctx: Ctx, n = 1): void {
  ctx.nodes += n;
  ctx.cost += n;
  if (ctx.nodes > FILTER_LIMITS.nodes) throw new EscaiError('VALIDATION_ERROR', `filters: more than ${FILTER_LIMITS.nodes} nodes (limit nodes)`);
}

function splitPath(at: string, key: string): string[] {
  const path = key.split('.');
  if (path.length > FILTER_LIMITS.depth) refuseAt(at, `path is deeper than ${FILTER_LIMITS.depth}`);
  for (const seg of path) {
    if (!SEGMENT.test(seg) || FORBIDDEN_SEGMENTS.has(seg)) refuseAt(at, 'path segments may hold only letters, digits, _ and -');
  }
  return path;
}

/**
 * Follows a path from `cur`; undefined when any step is absent. Own properties
 * only, in effect: events are JSON data, whose objects inherit nothing but
 * functions (and `__proto__`, `constructor`, `prototype`, refused as segments),
 * so a function read is an inherited one and counts as absent. (Cheaper on the
 * hot path than Object.hasOwn at every step.)
 */
function follow(cur: unknown, path: readonly string[]): unknown {
  for (let i = 0; i < path.length; i++) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[path[i]!];
  }
  return typeof cur === 'function' ? undefined : cur;
}

/**
 * Reads a field. At the top level (`inEvent`): envelope first for the envelope
 * keys, else a path into `data`. Inside `any`/`all`: a path into the element.
 */
function reader(at: string, key: string, inEvent: boolean): (target: unknown) => unknown {
  const path = splitPath(at, key);
  if (!inEvent) return (target) => follow(target, path);
  const fromData = (event: unknown): unknown => follow((event as DeliveredEvent).data, path);
  if (path.length === 1 && ENVELOPE_KEYS.has(key)) {
    return (event) => {
      const v = (event as Record<string, unknown>)[key];
      return v === undefined ? fromData(event) : v;
    };
  }
  return fromData;
}

function asText(v: unknown): string {
  return typeof v === 'string' ? v : String(v);
}

/** How many elements of `list` a scan looks at: the first FILTER_LIMITS.scanItems, so that a filter's cost bounds its work. */
function scanned(list: readonly unknown[]): number {
  return Math.min(list.length, FILTER_LIMITS.scanItems);
}

/**
 * Substring of a primitive's text, or of some primitive element of a list;
 * objects never match (no per-event serialization). At most
 * FILTER_LIMITS.scanText characters are searched in all (a string's first
 * ones; in a list, element after element until that many, each element
 * counting at least ELEMENT_CHARS, so at most CONTAINS_ELEMENTS are
 * visited): what CONTAINS_COST charges, whatever the list holds.
 */
function contains(v: unknown, needle: string): boolean {
  if (!Array.isArray(v)) return isPrimitive(v) && within(asText(v), needle, FILTER_LIMITS.scanText);
  let left: number = FILTER_LIMITS.scanText;
  for (let i = 0, n = scanned(v); i < n && left > 0; i++) {
    const item: unknown = v[i];
    if (!isPrimitive(item)) {
      left -= ELEMENT_CHARS;
      continue;
    }
    const text = asText(item);
    if (within(text, needle, left)) return true;
    left -= Math.max(text.length, ELEMENT_CHARS);
  }
  return false;
}

/** `needle` in the first `chars` characters of `text` (a slice is O(1) in V8: no copy). */
function within(text: string, needle: string, chars: number): boolean {
  return (text.length <= chars ? text : text.slice(0, chars)).includes(needle);
}

function direction(at: string, op: string, v: unknown): ChangeDirection {
  if (v === undefined) return 'either';
  if (v !== 'up' && v !== 'down' && v !== 'either') refuseAt(at, `${op}.direction must be "up", "down" or "either"`);
  return v;
}

/** `changed_by: δ` or `{"by": δ, "direction"?: ...}`; `crosses: t` or `{"value": t, "direction"?: ...}`. */
function changeCondition(at: string, key: string, op: 'changed_by' | 'crosses', arg: unknown, read: (t: unknown) => unknown): ChangeCondition {
  const field = op === 'changed_by' ? 'by' : 'value';
  let amount: unknown = arg;
  let dir: ChangeDirection = 'either';
  if (arg !== null && typeof arg === 'object' && !Array.isArray(arg)) {
    for (const k of Object.keys(arg)) if (k !== field && k !== 'direction') refuseAt(at, `${op} takes only "${field}" and "direction"`);
    amount = (arg as Record<string, unknown>)[field];
    dir = direction(at, op, (arg as Record<string, unknown>)['direction']);
  }
  if (!isFiniteNumber(amount)) refuseAt(at, `${op} needs a finite number (or {"${field}": number, "direction": "up" | "down" | "either"})`);
  if (op === 'changed_by' && !(amount > 0)) refuseAt(at, 'changed_by needs a number above 0');
  return { key, kind: op, amount, direction: dir, read: read as (event: DeliveredEvent) => unknown };
}

function compileOperator(at: string, op: string, arg: unknown, ctx: Ctx, nesting: number): (v: unknown) => boolean {
  switch (op) {
    case 'min': {
      if (!isFiniteNumber(arg)) refuseAt(at, 'min needs a finite number');
      return (v) => typeof v === 'number' && v >= arg;
    }
    case 'max': {
      if (!isFiniteNumber(arg)) refuseAt(at, 'max needs a finite number');
      return (v) => typeof v === 'number' && v <= arg;
    }
    case 'equals': {
      const want = checkPrimitive(at, op, arg);
      return (v) => v === want;
    }
    case 'contains': {
      const needle = asText(checkPrimitive(at, op, arg));
      ctx.cost += CONTAINS_COST; // the characters it may search
      return (v) => contains(v, needle);
    }
    case 'prefix':
    case 'suffix': {
      if (typeof arg !== 'string') refuseAt(at, `${op} needs a string`);
      const text = checkPrimitive(at, op, arg) as string;
      return op === 'prefix' ? (v) => typeof v === 'string' && v.startsWith(text) : (v) => typeof v === 'string' && v.endsWith(text);
    }
    case 'in':
    case 'not_in': {
      if (!Array.isArray(arg) || arg.length === 0 || arg.length > FILTER_LIMITS.listItems) {
        refuseAt(at, `${op} needs a list of 1 to ${FILTER_LIMITS.listItems} values`);
      }
      const set = new Set(arg.map((item) => checkPrimitive(at, op, item)));
      return op === 'in' ? (v) => set.has(v as Primitive) : (v) => isPrimitive(v) && !set.has(v);
    }
    case 'any':
    case 'all': {
      const before = ctx.cost;
      const inner = compileObject(`${at}.${op}`, arg, ctx, nesting + 1, false);
      // The inner filter runs once per element scanned (at least 1 each, even when it asks nothing): nested quantifiers multiply.
      ctx.cost = before + FILTER_LIMITS.scanItems * Math.max(1, ctx.cost - before);
      // Over the first scanItems elements only (the rest are not looked at): `any` of an empty
      // list is false, `all` of it true; a value that is not a list matches neither.
      return op === 'any'
        ? (v) => {
            if (!Array.isArray(v)) return false;
            for (let i = 0, n = scanned(v); i < n; i++) if (inner(v[i])) return true;
            return false;
          }
        : (v) => {
            if (!Array.isArray(v)) return false;
            for (let i = 0, n = scanned(v); i < n; i++) if (!inner(v[i])) return false;
            return true;
          };
    }
    default:
      return refuseAt(at, `unknown operator "${op}" (use ${[...OPERATORS].join(', ')})`);
  }
}

function compileKey(at: string, key: string, spec: unknown, ctx: Ctx, nesting: number, inEvent: boolean, top: boolean): Predicate {
  const read = reader(at, key, inEvent);
  count(ctx);
  if (isPrimitive(spec)) {
    checkPrimitive(at, 'value', spec);
    return (target) => read(target) === spec;
  }
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    refuseAt(at, 'must be a string, number, boolean or an object of operators (for lists use "in")');
  }
  const entries = Object.entries(spec);
  if (entries.length === 0) refuseAt(at, 'operator object is empty');
  if (entries.length > FILTER_LIMITS.keys) refuseAt(at, `at most ${FILTER_LIMITS.keys} operators`);
  let exists: boolean | undefined;
  let changes = 0;
  const checks: Array<(v: unknown) => boolean> = [];
  for (const [op, arg] of entries) {
    count(ctx);
    if (op === 'exists') {
      if (typeof arg !== 'boolean') refuseAt(at, 'exists needs true or false');
      exists = arg;
    } else if (CHANGE_OPERATORS.has(op)) {
      if (!top) refuseAt(at, `${op} is allowed only at the top level of a filter (not under $and, $or, $not, any or all)`);
      if (ctx.changes.length >= FILTER_LIMITS.changes) refuseAt(at, `at most ${FILTER_LIMITS.changes} conditions on change (limit changes)`);
      ctx.changes.push(changeCondition(at, key, op as 'changed_by' | 'crosses', arg, read));
      changes++;
    } else checks.push(compileOperator(at, op, arg, ctx, nesting));
  }
  if (exists === false) {
    if (checks.length > 0 || changes > 0) refuseAt(at, 'exists: false cannot be combined with other operators');
    return (target) => {
      const v = read(target);
      return v === undefined || v === null;
    };
  }
  // Only conditions on change: the stateless part asks nothing (they judge presence themselves).
  if (checks.length === 0 && exists === undefined) return matchAll;
  return (target) => {
    const v = read(target);
    if (v === undefined || v === null) return false;
    for (const check of checks) if (!check(v)) return false;
    return true;
  };
}

function compileList(at: string, op: string, arg: unknown, ctx: Ctx, nesting: number, inEvent: boolean): Array<[Predicate, number]> {
  if (!Array.isArray(arg) || arg.length === 0) refuseAt(at, `${op} needs a non-empty list of filters`);
  if (arg.length > FILTER_LIMITS.keys) refuseAt(at, `${op} holds at most ${FILTER_LIMITS.keys} filters`);
  return arg.map((item, i) => weigh(ctx, () => compileObject(`${at}.${i}`, item, ctx, nesting + 1, inEvent)));
}

/**
 * Conditions on one path shared between filters, by their text: dashboards
 * whose filters differ in one branch still share the rest, each condition
 * evaluated once per event (or list element). Conditions on change are never
 * shared (their reads feed per-subscription state); nor is anything that fails
 * to compile. Bounded like the whole-filter cache.
 */
const keyCache = new Map<string, { predicate: Predicate; nodes: number; cost: number; reach: number }>();

function sharedKey(ctx: Ctx, key: string, spec: unknown, nesting: number, inEvent: boolean, build: () => Predicate): [Predicate, number] {
  const stateful = spec !== null && typeof spec === 'object' && (Object.hasOwn(spec, 'changed_by') || Object.hasOwn(spec, 'crosses'));
  if (stateful) return weigh(ctx, build);
  const text = `${inEvent ? 'e' : 'x'}${key}\u0000${JSON.stringify(spec)}`;
  const hit = keyCache.get(text);
  // Limits count what this filter says, shared or not: its nodes, and its nesting from here (else compile it, to refuse it by name).
  if (hit && nesting + hit.reach <= FILTER_LIMITS.nesting) {
    count(ctx, hit.nodes);
    ctx.cost += hit.cost - hit.nodes;
    return [hit.predicate, hit.cost];
  }
  const [nodes0, cost0, deepest0] = [ctx.nodes, ctx.cost, ctx.deepest];
  ctx.deepest = nesting;
  const built = build();
  const reach = ctx.deepest - nesting;
  ctx.deepest = Math.max(deepest0, ctx.deepest);
  const predicate = built === matchAll ? built : memoized(built);
  if (keyCache.size >= COMPILED_CACHE_LIMIT) keyCache.delete(keyCache.keys().next().value!);
  keyCache.set(text, { predicate, nodes: ctx.nodes - nodes0, cost: ctx.cost - cost0, reach });
  return [predicate, ctx.cost - cost0];
}

/** Compiles with `build` and returns the predicate with the cost its compilation added. */
function weigh(ctx: Ctx, build: () => Predicate): [Predicate, number] {
  const before = ctx.cost;
  const p = build();
  return [p, ctx.cost - before];
}

/**
 * The AND of predicates, cheapest first: they are pure and never throw, so the
 * order changes only how soon a refusal is found.
 */
function and(weighted: ReadonlyArray<readonly [Predicate, number]>): Predicate {
  const predicates = [...weighted].sort((a, b) => a[1] - b[1]).map(([p]) => p);
  if (predicates.length === 0) return matchAll;
  if (predicates.length === 1) return predicates[0]!;
  return (target) => {
    for (const p of predicates) if (!p(target)) return false;
    return true;
  };
}

/**
 * One filter object: every entry must hold. `top`: the subscription's own
 * filter object (conditions on change and `$max_rate` live only there).
 * `inEvent`: paths read the event (false inside `any`/`all`: the element).
 */
function compileObject(at: string, filter: unknown, ctx: Ctx, nesting: number, inEvent: boolean, top = false): Predicate {
  if (nesting > FILTER_LIMITS.nesting) refuseAt(at, `filters nested deeper than ${FILTER_LIMITS.nesting} (limit nesting)`);
  if (nesting > ctx.deepest) ctx.deepest = nesting;
  if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) refuseAt(at, 'must be an object (a filter)');
  const keys = Object.keys(filter);
  if (keys.length > FILTER_LIMITS.keys) refuseAt(at, `at most ${FILTER_LIMITS.keys} keys`);
  const predicates: Array<[Predicate, number]> = [];
  for (const key of keys) {
    const spec = (filter as Record<string, unknown>)[key];
    const where = `${at}.${key}`;
    if (!key.startsWith('$')) {
      const weighed = sharedKey(ctx, key, spec, nesting, inEvent, () => compileKey(where, key, spec, ctx, nesting, inEvent, top));
      if (weighed[0] !== matchAll) predicates.push(weighed);
      continue;
    }
    if (!COMBINATORS.has(key)) refuseAt(where, `unknown reserved key (use ${[...COMBINATORS].join(', ')})`);
    count(ctx);
    if (key === '$max_rate') {
      if (!top) refuseAt(where, '$max_rate is allowed only at the top level of a filter');
      if (!isFiniteNumber(spec) || spec <= 0 || spec > FILTER_LIMITS.maxRate)
        refuseAt(where, `$max_rate needs a number of events per second above 0, at most ${FILTER_LIMITS.maxRate}`);
      ctx.maxRate = spec;
    } else if (key === '$not') {
      const [inner, cost] = weigh(ctx, () => compileObject(where, spec, ctx, nesting + 1, inEvent));
      predicates.push([(target) => !inner(target), cost]);
    } else if (key === '$and') {
      const list = compileList(where, key, spec, ctx, nesting, inEvent);
      predicates.push([and(list), list.reduce((n, [, c]) => n + c, 0)]);
    } else {
      const list = compileList(where, key, spec, ctx, nesting, inEvent);
      const any = list.map(([p]) => p);
      predicates.push([
        (target) => {
          for (const p of any) if (p(target)) return true;
          return false;
        },
        list.reduce((n, [, c]) => n + c, 0),
      ]);
    }
  }
  return and(predicates);
}

/** No target yet: equal to nothing a filter is given. */
const UNSEEN = Symbol('unseen');

/** What an empty filter compiles to. */
const EMPTY: CompiledFilter = { match: matchAll, changes: [], maxRate: undefined, bytes: 0, cost: 0 };

/**
 * Compiled filters by their JSON text, shared by every subscription that sends
 * the same filter (a hundred dashboards, one compilation). Bounded: past
 * COMPILED_CACHE_LIMIT the oldest entry goes (its subscriptions keep theirs).
 * Each shared predicate holds the last event (or list element) it answered
 * for, so the caches keep at most 2 × COMPILED_CACHE_LIMIT of those alive.
 */
const compiledCache = new Map<string, CompiledFilter>();
const COMPILED_CACHE_LIMIT = 256;

/**
 * Evaluated once per event for all the subscriptions sharing it: events are
 * immutable once delivered and the predicate pure, so the answer for the last
 * event seen is the answer. Allocation-free; a replay's copies simply miss.
 */
function memoized<T>(match: (target: T) => boolean): (target: T) => boolean {
  let last: unknown = UNSEEN;
  let answer = false;
  return (event) => {
    if (event !== last) {
      answer = match(event);
      last = event;
    }
    return answer;
  };
}

/**
 * Compiles a subscription's filter: the stateless predicate, the conditions
 * on change and the flow control. Throws VALIDATION_ERROR naming the bad key
 * or the limit. Null/empty → match everything. The same filter (same JSON
 * text) compiles once and its predicate runs once per event, whoever shares it;
 * what conditions on change remember lives per subscription (./change-state.ts).
 *
 * @example
 *   const f = compileSubscriptionFilter({ belief_states: { any: { confidence: { max: 0.3 } } }, $max_rate: 2 });
 *   f.match(event); // true when some belief is at or below 0.3
 */
/**
 * The deepest JSON a filter may be: more than FILTER_LIMITS.nesting filters
 * (two levels each: an object and its list) with paths and arguments can
 * reach; anything deeper is refused before it is walked recursively.
 */
const FILTER_JSON_DEPTH = 64;

/** Whether `value` holds objects or arrays nested deeper than `max`, found without recursion (an explicit stack). */
function deeperThan(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}

export function compileSubscriptionFilter(filters: Record<string, unknown> | null | undefined): CompiledFilter {
  if (!filters || Object.keys(filters).length === 0) return EMPTY;
  const keys = Object.keys(filters);
  // The message of old: "filters: at most 32 keys".
  if (keys.length > FILTER_LIMITS.keys) throw new EscaiError('VALIDATION_ERROR', `filters: at most ${FILTER_LIMITS.keys} keys`);
  // Before anything recursive (JSON.stringify, the compiler) walks it: thousands of levels would overflow the stack.
  if (deeperThan(filters, FILTER_JSON_DEPTH)) {
    throw new EscaiError(
      'VALIDATION_ERROR',
      `filters: nested deeper than ${FILTER_JSON_DEPTH} levels of JSON objects and arrays (limit nesting: ${FILTER_LIMITS.nesting} filters)`,
    );
  }
  const text = JSON.stringify(filters);
  const cached = compiledCache.get(text);
  if (cached) return cached;
  const ctx: Ctx = { nodes: 0, cost: 0, deepest: 0, changes: [], maxRate: undefined };
  const match = compileObject('filters', filters, ctx, 0, true, true) as EventPredicate;
  // Checked once the whole filter is weighed, so that the message says what it costs (compiling is bounded by `nodes`).
  if (ctx.cost > FILTER_LIMITS.cost) {
    throw new EscaiError(
      'VALIDATION_ERROR',
      `filters: cost ${ctx.cost}, over the limit of ${FILTER_LIMITS.cost} per subscription (limit cost: each node 1; contains 1 more per ${CHARS_PER_UNIT} characters it may search; any and all × the first ${FILTER_LIMITS.scanItems} list elements they may scan)`,
    );
  }
  const compiled: CompiledFilter = {
    match: match === matchAll ? match : memoized(match),
    changes: ctx.changes,
    maxRate: ctx.maxRate,
    bytes: Buffer.byteLength(text),
    cost: ctx.cost,
  };
  if (compiledCache.size >= COMPILED_CACHE_LIMIT) compiledCache.delete(compiledCache.keys().next().value!);
  compiledCache.set(text, compiled);
  return compiled;
}

/**
 * Compiles a filter into its stateless predicate (conditions on change and
 * `$max_rate` are accepted and left to the subscription); throws
 * VALIDATION_ERROR naming the bad key. Null/empty → match everything.
 */
export function compileFilter(filters: Record<string, unknown> | null | undefined): EventPredicate {
  return compileSubscriptionFilter(filters).match;
}
