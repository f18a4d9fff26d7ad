// Publishing, the one entry point shared by the HTTP API, the socket and the
// in-process API: validation of a single event or a batch (all-or-nothing),
// the delivered envelope of each type, the append through the engine, and
// read-your-writes on this node (a publish answers once this node's own
// subscribers, if it has any for the stream, have been handed the event, and
// the agent directory has recorded it).
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AgentDirectory } from '../engine/agents.js';
import type { Broker, DeliveredEvent, UnsequencedEvent } from '../engine/broker.js';
import { EscaiError } from '../protocol/codes.js';
import { PublishEventSchema, streamOf, type PublishEvent } from '../protocol/events.js';
import { describeZodError } from '../protocol/messages.js';
import { isoNow, type PublishedRef } from '../protocol/server-messages.js';
import type { NodeCounters } from './counters.js';
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

export interface PublisherDeps {
  broker: Pick<Broker, 'publish'>;
  agents: Pick<AgentDirectory, 'record'>;
  fanout: Pick<FanOut, 'interested' | 'expect'>;
  metrics: Metrics;
  counters: NodeCounters;
  maxBatchEvents: number;
  log: Logger;
}

export class Publisher {
  readonly #broker: Pick<Broker, 'publish'>;
  readonly #agents: Pick<AgentDirectory, 'record'>;
  readonly #fanout: Pick<FanOut, 'interested' | 'expect'>;
  readonly #metrics: Metrics;
  readonly #counters: NodeCounters;
  readonly #maxBatch: number;
  readonly #log: Logger;

  constructor(deps: PublisherDeps) {
    this.#broker = deps.broker;
    this.#agents = deps.agents;
    this.#fanout = deps.fanout;
    this.#metrics = deps.metrics;
    this.#counters = deps.counters;
    this.#maxBatch = deps.maxBatchEvents;
    this.#log = deps.log;
  }

  /** Validates (all-or-nothing, at most `maxBatch`) and publishes producer input. */
  publishInput(input: unknown, maxBatch = this.#maxBatch): Promise<PublishResult[]> {
    return this.publish(validateEvents(input, maxBatch));
  }

  /**
   * Publishes validated events in order; resolves to one result per event
   * once this node has delivered them and the agent directory has them.
   */
  async publish(events: readonly PublishEvent[]): Promise<PublishResult[]> {
    const results: PublishResult[] = [];
    const waits: Array<DeliveryWait | undefined> = [];
    const recorded: Array<Promise<void>> = [];
    try {
      for (const event of events) {
        const stream = streamOf(event);
        const sequenced = envelope(event);
        // Registered before the append: the in-memory engine delivers inside `publish`.
        const wait = this.#fanout.interested(stream) ? this.#fanout.expect(sequenced.event_id) : undefined;
        waits.push(wait);
        const receipt = await this.#broker.publish(stream, sequenced, event.idempotency_key);
        if (receipt.duplicate) wait?.cancel();
        else {
          this.#counters.publications++;
          this.#metrics.publications.inc({ type: event.type });
          if (sequenced.agent_id !== undefined) recorded.push(this.#record({ ...sequenced, offset: receipt.offset, epoch: receipt.epoch }));
        }
        results.push({ event_id: receipt.event_id, stream, offset: receipt.offset, epoch: receipt.epoch, recipients: 0, duplicate: receipt.duplicate });
      }
    } catch (err) {
      for (const wait of waits) wait?.cancel();
      await Promise.all(recorded);
      // In-process callers get catalogue errors too (ENGINE_UNAVAILABLE, not the engine's own).
      throw catalogued(err) ?? err;
    }
    const [recipients] = await Promise.all([Promise.all(waits.map((wait) => wait?.recipients ?? 0)), Promise.all(recorded)]);
    recipients.forEach((n, i) => (results[i]!.recipients = n));
    return results;
  }

  /** The agent directory follows every accepted agent event; a failure there does not undo the publication. */
  async #record(event: DeliveredEvent): Promise<void> {
    try {
      await this.#agents.record(event);
    } catch (err) {
      this.#log.warn({ err, agentId: event.agent_id }, 'agent directory not updated');
    }
  }
}
