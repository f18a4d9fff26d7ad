// Errors from below the protocol, in the catalogue's terms: the engine reports
// its own unavailability, and the server answers it as ENGINE_UNAVAILABLE.
import { EngineUnavailableError } from '../../engine/engine.js';
import { EscaiError } from '../../protocol/codes.js';

/** The catalogued form of `err`, or undefined for an unexpected error (INTERNAL_ERROR, logged). */
export function catalogued(err: unknown): EscaiError | undefined {
  if (err instanceof EscaiError) return err;
  if (err instanceof EngineUnavailableError) return new EscaiError('ENGINE_UNAVAILABLE', err.message);
  return undefined;
}
