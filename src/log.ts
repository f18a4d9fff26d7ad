// The logger: pino, with every place a token or secret could appear redacted.
import { pino, type Logger, type DestinationStream } from 'pino';

export const REDACT_PATHS = [
  'token',
  '*.token',
  'jwtSecret',
  '*.jwtSecret',
  'jwtPreviousSecret',
  '*.jwtPreviousSecret',
  'metricsToken',
  '*.metricsToken',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'req.headers.authorization',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, redact: { paths: REDACT_PATHS, censor: '[REDACTED]' }, base: { service: 'escai-realtime' } };
  return destination ? pino(options, destination) : pino(options);
}

export type { Logger };
