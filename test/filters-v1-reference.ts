// The filter compiler as it was before issue 12, kept verbatim (imports aside) as the
// reference the property tests compare the new compiler with: every filter valid then
// must answer exactly as then, on every event.
// Subscription filters, compiled once at subscribe into a predicate over a
// delivered event.
//
// A filter is an object; every key must match (AND). A key is an envelope field
// (agent_id, severity, alert_type, status, message, notification_type) or a
// dotted path into `data` (`knowledge_state.confidence`, `belief_states.0.confidence`).
// A value is either a plain string/number/boolean (equality) or an object of
// operators: min, max, equals, contains, in, not_in, exists. A missing or null
// field never matches, except `exists: false`, which asks exactly for that.
import type { DeliveredEvent } from '../src/protocol/events.js';
import { EscaiError } from '../src/protocol/codes.js';

export type EventPredicate = (event: DeliveredEvent) => boolean;

const ENVELOPE_KEYS = new Set(['agent_id', 'severity', 'alert_type', 'status', 'message', 'notification_type']);
const OPERATORS = new Set(['min', 'max', 'equals', 'contains', 'in', 'not_in', 'exists']);
const SEGMENT = /^[A-Za-z0-9_-]{1,128}$/;
const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'prototype', 'constructor']);

export const FILTER_LIMITS = { keys: 32, depth: 8, listItems: 256, textLength: 1024 } as const;

type Primitive = string | number | boolean;

const matchAll: EventPredicate = () => true;

function refuse(key: string, why: string): never {
  throw new EscaiError('VALIDATION_ERROR', `filters.${key}: ${why}`);
}

function isPrimitive(v: unknown): v is Primitive {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean';
}

function checkPrimitive(key: string, op: string, v: unknown): Primitive {
  if (!isPrimitive(v)) refuse(key, `${op} needs a string, finite number or boolean`);
  if (typeof v === 'string' && v.length > FILTER_LIMITS.textLength) refuse(key, `${op} value is too long`);
  return v;
}

/** Reads a field: envelope first for the envelope keys, else a path into `data`. Undefined when absent. */
function reader(key: string): (event: DeliveredEvent) => unknown {
  const path = key.split('.');
  if (path.length > FILTER_LIMITS.depth) refuse(key, `path is deeper than ${FILTER_LIMITS.depth}`);
  for (const seg of path) {
    if (!SEGMENT.test(seg) || FORBIDDEN_SEGMENTS.has(seg)) refuse(key, 'path segments may hold only letters, digits, _ and -');
  }
  const fromData = (event: DeliveredEvent): unknown => {
    let cur: unknown = event.data;
    for (const seg of path) {
      if (cur === null || typeof cur !== 'object') return undefined;
      cur = Object.hasOwn(cur, seg) ? (cur as Record<string, unknown>)[seg] : undefined;
    }
    return cur;
  };
  if (path.length === 1 && ENVELOPE_KEYS.has(key)) {
    return (event) => {
      const v = (event as unknown as Record<string, unknown>)[key];
      return v === undefined ? fromData(event) : v;
    };
  }
  return fromData;
}

function asText(v: unknown): string {
  return typeof v === 'string' ? v : String(v);
}

/** Substring of a primitive's text, or of some primitive element of a list; objects never match (no per-event serialization). */
function contains(v: unknown, needle: string): boolean {
  if (Array.isArray(v)) return v.some((item) => isPrimitive(item) && asText(item).includes(needle));
  return isPrimitive(v) && asText(v).includes(needle);
}

function compileOperator(key: string, op: string, arg: unknown): (v: unknown) => boolean {
  switch (op) {
    case 'min': {
      if (typeof arg !== 'number' || !Number.isFinite(arg)) refuse(key, 'min needs a finite number');
      return (v) => typeof v === 'number' && v >= arg;
    }
    case 'max': {
      if (typeof arg !== 'number' || !Number.isFinite(arg)) refuse(key, 'max needs a finite number');
      return (v) => typeof v === 'number' && v <= arg;
    }
    case 'equals': {
      const want = checkPrimitive(key, op, arg);
      return (v) => v === want;
    }
    case 'contains': {
      const needle = asText(checkPrimitive(key, op, arg));
      return (v) => contains(v, needle);
    }
    case 'in':
    case 'not_in': {
      if (!Array.isArray(arg) || arg.length === 0 || arg.length > FILTER_LIMITS.listItems) {
        refuse(key, `${op} needs a list of 1 to ${FILTER_LIMITS.listItems} values`);
      }
      const set = new Set(arg.map((item) => checkPrimitive(key, op, item)));
      return op === 'in' ? (v) => set.has(v as Primitive) : (v) => isPrimitive(v) && !set.has(v);
    }
    default:
      return refuse(key, `unknown operator "${op}" (use ${[...OPERATORS].join(', ')})`);
  }
}

function compileKey(key: string, spec: unknown): EventPredicate {
  const read = reader(key);
  if (isPrimitive(spec)) {
    checkPrimitive(key, 'value', spec);
    return (event) => read(event) === spec;
  }
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    refuse(key, 'must be a string, number, boolean or an object of operators (for lists use "in")');
  }
  const entries = Object.entries(spec);
  if (entries.length === 0) refuse(key, 'operator object is empty');
  let exists: boolean | undefined;
  const checks: Array<(v: unknown) => boolean> = [];
  for (const [op, arg] of entries) {
    if (op === 'exists') {
      if (typeof arg !== 'boolean') refuse(key, 'exists needs true or false');
      exists = arg;
    } else checks.push(compileOperator(key, op, arg));
  }
  if (exists === false) {
    if (checks.length > 0) refuse(key, 'exists: false cannot be combined with other operators');
    return (event) => {
      const v = read(event);
      return v === undefined || v === null;
    };
  }
  return (event) => {
    const v = read(event);
    if (v === undefined || v === null) return false;
    for (const check of checks) if (!check(v)) return false;
    return true;
  };
}

/** Compiles a filter object; throws VALIDATION_ERROR naming the bad key. Null/empty → match everything. */
export function compileFilter(filters: Record<string, unknown> | null | undefined): EventPredicate {
  if (!filters) return matchAll;
  const keys = Object.keys(filters);
  if (keys.length === 0) return matchAll;
  if (keys.length > FILTER_LIMITS.keys) throw new EscaiError('VALIDATION_ERROR', `filters: at most ${FILTER_LIMITS.keys} keys`);
  const predicates = keys.map((key) => compileKey(key, filters[key]));
  if (predicates.length === 1) return predicates[0]!;
  return (event) => {
    for (const p of predicates) if (!p(event)) return false;
    return true;
  };
}
