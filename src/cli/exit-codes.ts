// Exit codes of the client commands, derived from the error catalogue
// (sysexits.h numbers, so scripts can tell "fix your input" from "try again"
// from "get another token").
import { ErrorCodes, type ErrorCode } from '../protocol/codes.js';

export const ExitCodes = {
  OK: 0,
  /** Bad command line. */
  USAGE: 64,
  /** The server refused the data (VALIDATION_ERROR, INVALID_JSON, PAYLOAD_TOO_LARGE, …). */
  DATA: 65,
  /** What was asked for does not exist (NOT_FOUND, AGENT_NOT_FOUND, a missing file). */
  NO_INPUT: 66,
  /** The server cannot be reached. */
  UNAVAILABLE: 69,
  /** The server failed (INTERNAL_ERROR). */
  SOFTWARE: 70,
  /** Try again later: the catalogue marks the refusal retryable (ENGINE_UNAVAILABLE, RATE_LIMITED, …). */
  TEMPFAIL: 75,
  /** The token is missing, invalid, expired, or lacks the permission. */
  NO_PERMISSION: 77,
  /** Bad configuration (serve). */
  CONFIG: 78,
} as const;

/** The exit code for a refusal with catalogue code `code` (and HTTP `status`, for codes the catalogue does not know). */
export function exitCodeFor(code: string, status?: number): number {
  const entry = Object.hasOwn(ErrorCodes, code) ? ErrorCodes[code as ErrorCode] : undefined;
  const httpStatus = entry?.status ?? status ?? 500;
  if (entry?.retry) return ExitCodes.TEMPFAIL;
  if (httpStatus === 401 || httpStatus === 403) return ExitCodes.NO_PERMISSION;
  if (httpStatus === 404) return ExitCodes.NO_INPUT;
  if (httpStatus >= 500) return ExitCodes.SOFTWARE;
  return ExitCodes.DATA;
}

/** A failure a command reports with its message and exit code. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}
