// Inbound decoding, a pure function: one frame's bytes to a validated client
// message (type, data, request id) or the catalogued error to answer
// instead. The connection decodes on arrival, so its rate budgets can tell
// publishing from control messages before anything is queued.
import type { RawData } from 'ws';
import type { ErrorCode } from '../../protocol/codes.js';
import { ClientMessageData, describeZodError, isClientMessageType, RequestIdSchema, type ClientMessageType } from '../../protocol/messages.js';
import type { RequestId } from '../../protocol/server-messages.js';

/** A frame's payload as text (ws hands over a Buffer, fragments, or an ArrayBuffer). */
export function frameText(raw: RawData): string {
  if (Buffer.isBuffer(raw)) return raw.toString('utf8');
  return Buffer.concat(Array.isArray(raw) ? raw : [Buffer.from(raw)]).toString('utf8');
}

/** A decoded client message, or the error frame to answer instead. */
export type Decoded =
  | { ok: true; type: ClientMessageType; data: unknown; id: RequestId | undefined }
  | { ok: false; code: ErrorCode; message: string; id: RequestId | undefined };

/**
 * Parses and validates one message's text: JSON, an object, an `id`, a
 * known `type`, its `data` schema. Never throws: whatever the text, the
 * answer is a message to handle or a catalogued error to send.
 */
export function decodeMessage(text: string): Decoded {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return { ok: false, code: 'INVALID_JSON', message: 'Message is not valid JSON', id: undefined };
  }
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    return { ok: false, code: 'VALIDATION_ERROR', message: 'Message must be a JSON object {"type": ..., "data": ...}', id: undefined };
  }
  const { type, data, id: rawId } = message as { type?: unknown; data?: unknown; id?: unknown };
  const idResult = rawId === undefined ? undefined : RequestIdSchema.safeParse(rawId);
  if (idResult && !idResult.success) return { ok: false, code: 'VALIDATION_ERROR', message: 'id: must be a string (≤128 chars) or a number', id: undefined };
  const id = idResult?.data;
  if (typeof type !== 'string') return { ok: false, code: 'VALIDATION_ERROR', message: 'type: required, must be a string', id };
  if (!isClientMessageType(type)) return { ok: false, code: 'UNKNOWN_MESSAGE_TYPE', message: `Unknown message type: ${type.slice(0, 64)}`, id };
  const parsed = ClientMessageData[type].safeParse(data);
  if (!parsed.success) return { ok: false, code: 'VALIDATION_ERROR', message: describeZodError(parsed.error, 'data'), id };
  return { ok: true, type, data: parsed.data, id };
}
