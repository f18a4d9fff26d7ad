// Publishing, the one entry point shared by the HTTP API, the socket and the
// in-process API: validation of a single event or a batch (all-or-nothing:
// schema, nesting, size, serialization, all before any offset is given), the
// delivered envelope of each type, one atomic append through the engine, and
// the agent directory's record. A publish answers once the engine has the
// events; it waits for this node's own deliveries only when the caller asks
// for the recipient count (in memory they happen inside the append anyway;
// on Redis they come back through pub/sub, which a producer need not wait for).
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AgentDirectory } from '../../engine/agents.js';
import type { Broker, DeliveredEvent, PublishReceipt, UnsequencedEvent } from '../../engine/broker.js';
import { EscaiError } from '../../protocol/codes.js';
import { PublishEventSchema, streamOf, type PublishEvent } from '../../protocol/events.js';
import { describeZodError } from '../../protocol/messages.js';
import { isoNow, type PublishedRef } from '../../protocol/server-messages.js';
import type { NodeCounters } from '../node/counters.js';
import { catalogued } from '../node/errors.js';
import type { DeliveryWait, FanOut } from './fanout.js';
import type { Metrics } from '../http/metrics.js';

export interface PublishResult {
  event_id: string;
  stream: string;
  offset: number;
  epoch: string;
  /** Connections of this node the event was handed to (counted only when the publish asked for it; else 0). */
  recipients: number;
  duplicate: boolean;
}

/** Limits every event must meet before it is given an offset. */
export interface EventLimits {
  /** Most events in one batch. */
  maxBatch: number;
  /** Largest event, as the JSON sent to subscribers (bytes). */
  maxEventBytes: number;
}

/** Deepest nesting of objects and arrays inside an event (the envelope counts as one level). */
export const MAX_EVENT_DEPTH = 32;

/** An event ready to append: validated, enveloped, serialized and measured. */
export interface PreparedEvent {
  event: PublishEvent;
  stream: string;
  envelope: UnsequencedEvent;
  /** The envelope as JSON (offset and epoch are added by the engine). */
  json: string;
}

/**
 * Walks raw input iteratively (no recursion a deep document could overflow):
 * refuses nesting deeper than MAX_EVENT_DEPTH, `__proto__` keys (which a JSON
 * parser keeps as data but an object copy would silently drop), and numbers
 * JSON cannot carry.
 */
function checkShape(input: unknown, where: string): void {
  const stack: Array<[unknown, number, string]> = [[input, 1, where]];
  while (stack.length > 0) {
    const [value, depth, path] = stack.pop()!;
    // JSON cannot carry NaN or Infinity; an in-process caller could, and they would turn into null on the way out.
    if (typeof value === 'number' && !Number.isFinite(value)) throw new EscaiError('VALIDATION_ERROR', `${path}: not a finite number`);
    if (value === null || typeof value !== 'object') continue;
    if (depth > MAX_EVENT_DEPTH) throw new EscaiError('VALIDATION_ERROR', `${path}: nested deeper than ${MAX_EVENT_DEPTH} levels (the limit)`);
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) stack.push([value[i], depth + 1, `${path}.${i}`]);
      continue;
    }
    for (const key of Object.keys(value)) {
      if (key === '__proto__') throw new EscaiError('VALIDATION_ERROR', `${path}.__proto__: reserved key`);
      stack.push([(value as Record<string, unknown>)[key], depth + 1, `${path}.${key}`]);
    }
  }
}

/**
 * Validates one event or an array of them, and prepares each: schema,
 * nesting, envelope, serialization and size, all before anything is
 * appended, so nothing can fail between two events of a batch but the
 * engine itself. Throws VALIDATION_ERROR naming the first bad field or limit
 * (`events[2].data.confidence_level: ...`); nothing of a batch with a bad
 * event is returned.
 */
export function prepareEvents(input: unknown, limits: EventLimits): PreparedEvent[] {
  const batch = Array.isArray(input);
  const items: unknown[] = batch ? input : [input];
  if (items.length === 0) throw new EscaiError('VALIDATION_ERROR', 'events: the batch is empty');
  if (items.length > limits.maxBatch) throw new EscaiError('VALIDATION_ERROR', `events: at most ${limits.maxBatch} events per batch`);
  const prepared: PreparedEvent[] = [];
  for (let i = 0; i < items.length; i++) {
    const where = batch ? `events[${i}]` : 'event';
    checkShape(items[i], where);
    const result = PublishEventSchema.safeParse(items[i]);
    if (!result.success) throw new EscaiError('VALIDATION_ERROR', describeZodError(result.error, batch ? `events[${i}]` : undefined));
    const envelope = envelopeOf(result.data);
    const json = JSON.stringify(envelope);
    // Offset and epoch add under 60 bytes; the limit is on what subscribers receive.
    const bytes = Buffer.byteLength(json) + 60;
    if (bytes > limits.maxEventBytes) {
      throw new EscaiError('VALIDATION_ERROR', `${where}: ${bytes} bytes as JSON, over the limit of ${limits.maxEventBytes} (ESCAI_MAX_EVENT_BYTES)`);
    }
    prepared.push({ event: result.data, stream: streamOf(result.data), envelope, json });
  }
  return prepared;
}

/**
 * Prepares an event this server made itself (the telemetry mapping): its
 * shape is the mapping's by construction (a property test holds it to the
 * schema), so only the envelope, the serialization and the size limit are
 * done here. Undefined when it is over the size limit.
 */
export function prepareTrusted(event: PublishEvent, maxEventBytes: number): PreparedEvent | undefined {
  const envelope = envelopeOf(event);
  const json = JSON.stringify(envelope);
  if (Buffer.byteLength(json) + 60 > maxEventBytes) return undefined;
  return { event, stream: streamOf(event), envelope, json };
}

/** Validates without preparing: the events a batch holds, or VALIDATION_ERROR (tests and tools). */
export function validateEvents(input: unknown, maxBatch: number, maxEventBytes = Number.MAX_SAFE_INTEGER): PublishEvent[] {
  return prepareEvents(input, { maxBatch, maxEventBytes }).map((p) => p.event);
}

/** The ESCAI envelope of an event, with its new id and the server's timestamp. */
export function envelopeOf(event: PublishEvent): UnsequencedEvent {
  const event_id = randomUUID();
  const timestamp = isoNow();
  switch (event.type) {
    case 'epistemic_update':
    case 'prediction_update':
    case 'agent_activity':
      return { type: event.type, event_id, agent_id: event.agent_id, data: event.data, timestamp };
    case 'pattern_alert':
      return { type: event.type, event_id, agent_id: event.agent_id, alert_type: event.alert_type, severity: event.severity, data: event.data, timestamp };
    case 'system_alert':
      return {
        type: event.type,
        event_id,
        alert_type: event.alert_type,
        message: event.message,
        severity: event.severity,
        metadata: event.metadata,
        timestamp,
      };
    case 'agent_status_change':
      return { type: event.type, event_id, agent_id: event.agent_id, status: event.status, metadata: event.metadata, timestamp };
    case 'user_notification':
      return { type: event.type, event_id, notification_type: event.notification_type, message: event.message, data: event.data, timestamp };
  }
}

/** A publish result as the APIs answer it. */
export function publishedRef(r: PublishResult): PublishedRef {
  return r.duplicate ? { event_id: r.event_id, offset: r.offset, epoch: r.epoch, duplicate: true } : { event_id: r.event_id, offset: r.offset, epoch: r.epoch };
}

export interface PublishOptions {
  /**
   * Wait until this node's subscribers have been handed each event and
   * report how many (the in-process broadcast API and the test broadcast
   * answer with it). Producers do not: on Redis it costs the pub/sub trip.
   */
  countRecipients?: boolean;
}

export interface PublisherDeps {
  broker: Pick<Broker, 'publish'>;
  agents: Pick<AgentDirectory, 'record'>;
  fanout: Pick<FanOut, 'interested' | 'expect'>;
  metrics: Metrics;
  counters: NodeCounters;
  limits: EventLimits;
  log: Logger;
}

export class Publisher {
  readonly #deps: PublisherDeps;

  constructor(deps: PublisherDeps) {
    this.#deps = deps;
  }

  /** Validates and prepares (all-or-nothing, at most `maxBatch`) and publishes producer input. */
  publishInput(input: unknown, maxBatch = this.#deps.limits.maxBatch, options: PublishOptions = {}): Promise<PublishResult[]> {
    return this.publish(prepareEvents(input, { ...this.#deps.limits, maxBatch }), options);
  }

  /**
   * Appends prepared events in one engine call (all or nothing); resolves to
   * one result per event once the engine has them and the agent directory
   * has recorded them (and, with `countRecipients`, once this node has
   * delivered them).
   */
  async publish(events: readonly PreparedEvent[], options: PublishOptions = {}): Promise<PublishResult[]> {
    const { broker, fanout, counters, metrics } = this.#deps;
    // Registered before the append: the in-memory engine delivers inside `publish`.
    const waits: Array<DeliveryWait | undefined> = options.countRecipients
      ? events.map((p) => (fanout.interested(p.stream) ? fanout.expect(p.envelope.event_id) : undefined))
      : [];
    let receipts: PublishReceipt[];
    try {
      receipts = await broker.publish(events.map((p) => ({ stream: p.stream, event: p.envelope, json: p.json, idempotencyKey: p.event.idempotency_key })));
    } catch (err) {
      for (const wait of waits) wait?.cancel();
      // In-process callers get catalogue errors too (ENGINE_UNAVAILABLE, not the engine's own).
      throw catalogued(err) ?? err;
    }
    const accepted: DeliveredEvent[] = [];
    const results = receipts.map((receipt, i): PublishResult => {
      const { event, stream, envelope } = events[i]!;
      if (receipt.duplicate) waits[i]?.cancel();
      else {
        counters.publications++;
        metrics.publications.inc({ type: event.type });
        if (envelope.agent_id !== undefined) accepted.push({ ...envelope, offset: receipt.offset, epoch: receipt.epoch });
      }
      return { event_id: receipt.event_id, stream, offset: receipt.offset, epoch: receipt.epoch, recipients: 0, duplicate: receipt.duplicate };
    });
    const [recipients] = await Promise.all([Promise.all(waits.map((wait) => wait?.recipients ?? 0)), this.#record(accepted)]);
    for (const [i, n] of recipients.entries()) results[i]!.recipients = n;
    return results;
  }

  /** The agent directory follows every accepted agent event; a failure there does not undo the publication. */
  async #record(events: readonly DeliveredEvent[]): Promise<void> {
    if (events.length === 0) return;
    try {
      await this.#deps.agents.record(events);
    } catch (err) {
      this.#deps.log.warn({ err, agentId: events[0]!.agent_id, events: events.length }, 'agent directory not updated');
    }
  }
}
