// Turning producer input into events: validation of a single event or a batch
// (all-or-nothing), and the delivered envelope of each type.
import { randomUUID } from 'node:crypto';
import { EscaiError } from '../protocol/codes.js';
import { PublishEventSchema, type PublishEvent } from '../protocol/events.js';
import { describeZodError, isoNow } from '../protocol/messages.js';
import type { UnsequencedEvent } from '../engine/broker.js';

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
