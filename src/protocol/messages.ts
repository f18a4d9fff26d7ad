// Client → server messages: the ESCAI set (subscribe, unsubscribe, ping, pong,
// get_subscriptions, get_stats) plus `publish`. Every message is
// {"type": ..., "data": {...}}; an optional `id` is echoed on the reply so
// clients that pipeline requests can match answers.
import { z } from 'zod';
import { IdSchema } from './events.js';

// Kept as the raw object (not z.record, which silently drops an own `__proto__`
// key): the filter compiler checks every key itself and refuses bad ones by name.
export const FiltersSchema = z.custom<Record<string, unknown>>((v) => v !== null && typeof v === 'object' && !Array.isArray(v), 'must be an object');

export const SinceSchema = z.object({
  offset: z.number().int().min(0),
  epoch: z.string().min(1).max(128),
});

export const SubscribeDataSchema = z.object({
  // A plain string here; the subscription module names unknown types itself.
  type: z.string().min(1).max(64),
  agent_id: IdSchema.nullable().optional(),
  filters: FiltersSchema.nullable().optional(),
  since: SinceSchema.nullable().optional(),
  /** Single-stream subscriptions: send the stream's latest event this subscription wants right after the confirmation. */
  latest: z.boolean().optional(),
});

export const UnsubscribeDataSchema = z.object({
  subscription_type: z.string().min(1).max(64),
  agent_id: IdSchema.nullable().optional(),
});

const empty = z.unknown().optional();

/** The `data` schema of each client message type. */
export const ClientMessageData = {
  subscribe: SubscribeDataSchema,
  unsubscribe: UnsubscribeDataSchema,
  ping: empty,
  pong: empty,
  get_subscriptions: empty,
  get_stats: empty,
  refresh: z.object({ token: z.string().min(1).max(16_384) }),
  // The first message of a `?auth=message` connection; on an authenticated one, refused (use refresh).
  auth: z.object({ token: z.string().min(1).max(16_384) }),
  // Validated against PublishEventSchema by the publisher, so errors name event fields.
  publish: z.unknown(),
} as const;

export type ClientMessageType = keyof typeof ClientMessageData;
export type SubscribeData = z.infer<typeof SubscribeDataSchema>;
export type UnsubscribeData = z.infer<typeof UnsubscribeDataSchema>;

export const RequestIdSchema = z.union([z.string().max(128), z.number()]);

export function isClientMessageType(type: string): type is ClientMessageType {
  return Object.hasOwn(ClientMessageData, type);
}

/** Turns a zod error into one line naming the first offending field, e.g. `data.confidence_level: Too big`. */
export function describeZodError(error: z.ZodError, prefix?: string): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => {
      const path = [prefix, ...issue.path.map(String)].filter((p) => p !== undefined && p !== '').join('.');
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}
