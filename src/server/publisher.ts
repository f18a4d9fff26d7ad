// Publishing, the one entry point shared by the HTTP API, the socket and the
// in-process API: validation of a single event or a batch (all-or-nothing),
// the delivered envelope of each type, the append through the engine, and
// read-your-writes on this node (a publish answers once this node's own
// subscribers, if it has any for the stream, have been handed the event).
import { randomUUID } from 'node:crypto';
import type { Broker, UnsequencedEvent } from '../engine/broker.js';
import { EscaiError } from '../protocol/codes.js';
import { PublishEventSchema, streamOf, type PublishEvent } from '../protocol/events.js';
import { describeZodError } from '../protocol/messages.js';
import { isoNow, type PublishedRef } from '../protocol/server-messages.js';
import { catalogued } from './errors.js';
import type { DeliveryWait, FanOut } from './fanout.js';
import type { Metrics } from './metrics.js';

export interface PublishResult {
  event_id: string;
  stream: string;
  offset: number;
  epoch: string;
  /** Connections of this node the event was handed to. */
  recipients: number;
  duplicate: boolean;
}

/**
 * Validates one event or an array of them. Throws VALIDATION_ERROR naming the
 * first bad field (`events[2].data.confidence_level: ...`); nothing of a
 * batch with a bad event is returned.
 */
export function validateEvents(input: unknown, maxBatch: number): PublishEvent[] {
  const batch = Array.isArray(input);
  const items: unknown[] = batch ? input : [input];
  if (items.length === 0) throw new EscaiError('VALIDATION_ERROR', 'events: the batch is empty');
  if (items.length > maxBatch) throw new EscaiError('VALIDATION_ERROR', `events: at most ${maxBatch} events per batch`);
  const events: PublishEvent[] = [];
  for (let i = 0; i < items.length; i++) {
    const result = PublishEventSchema.safeParse(items[i]);
    if (!result.success) throw new EscaiError('VALIDATION_ERROR', describeZodError(result.error, batch ? `events[${i}]` : undefined));
    events.push(result.data);
  }
  return events;
}

/** The ESCAI envelope of an event, with its new id and the server's timestamp. */
export function envelope(event: PublishEvent): UnsequencedEvent {
  const event_id = randomUUID();
  const timestamp = isoNow();
  switch (event.type) {
    case 'epistemic_update':
    case 'prediction_update':
      return { type: event.type, event_id, agent_id: event.agent_id, data: event.data, timestamp };
    case 'pattern_alert':
      return { type: event.type, event_id, agent_id: event.agent_id, alert_type: event.alert_type, severity: event.severity, data: event.data, timestamp };
    case 'system_alert':
      return { type: event.type, event_id, alert_type: event.alert_type, message: event.message, severity: event.severity, metadata: event.metadata, timestamp };
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

export class Publisher {
  readonly #broker: Pick<Broker, 'publish'>;
  readonly #fanout: Pick<FanOut, 'interested' | 'expect'>;
  readonly #metrics: Metrics;
  readonly #maxBatch: number;

  constructor(deps: { broker: Pick<Broker, 'publish'>; fanout: Pick<FanOut, 'interested' | 'expect'>; metrics: Metrics; maxBatchEvents: number }) {
    this.#broker = deps.broker;
    this.#fanout = deps.fanout;
    this.#metrics = deps.metrics;
    this.#maxBatch = deps.maxBatchEvents;
  }

  /** Validates (all-or-nothing, at most `maxBatch`) and publishes producer input. */
  publishInput(input: unknown, maxBatch = this.#maxBatch): Promise<PublishResult[]> {
    return this.publish(validateEvents(input, maxBatch));
  }

  /** Publishes validated events in order; resolves to one result per event once this node has delivered them. */
  async publish(events: readonly PublishEvent[]): Promise<PublishResult[]> {
    const results: PublishResult[] = [];
    const waits: Array<DeliveryWait | undefined> = [];
    try {
      for (const event of events) {
        const stream = streamOf(event);
        const sequenced = envelope(event);
        // Registered before the append: the in-memory engine delivers inside `publish`.
        const wait = this.#fanout.interested(stream) ? this.#fanout.expect(sequenced.event_id) : undefined;
        waits.push(wait);
        const receipt = await this.#broker.publish(stream, sequenced, event.idempotency_key);
        if (receipt.duplicate) wait?.cancel();
        else this.#metrics.publications.inc({ type: event.type });
        results.push({ event_id: receipt.event_id, stream, offset: receipt.offset, epoch: receipt.epoch, recipients: 0, duplicate: receipt.duplicate });
      }
    } catch (err) {
      for (const wait of waits) wait?.cancel();
      // In-process callers get catalogue errors too (ENGINE_UNAVAILABLE, not the engine's own).
      throw catalogued(err) ?? err;
    }
    const recipients = await Promise.all(waits.map((wait) => wait?.recipients ?? 0));
    recipients.forEach((n, i) => (results[i]!.recipients = n));
    return results;
  }
}
