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

/**
 * A logger for a person at a terminal: pino-pretty, one line per record
 * (`12:01:02.345 INFO: listening host=… port=…`), colours when the terminal
 * has them. Redaction happens before the line is formatted. pino-pretty is
 * loaded only here, so a JSON logger never pays for it.
 */
export async function createPrettyLogger(level: string, destination: NodeJS.WritableStream | number = 1): Promise<Logger> {
  const { default: pretty } = await import('pino-pretty');
  const stream = pretty({
    destination,
    sync: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,service',
    singleLine: true,
  });
  return createLogger(level, stream);
}

export type { Logger };
