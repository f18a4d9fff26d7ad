// The REST calls of the client commands: one function, catalogue errors
// turned into CliErrors with their exit code, an unreachable server into 69.
import { CliError, ExitCodes, exitCodeFor } from './exit-codes.js';

export interface Target {
  /** Server base URL (http:// or ws://). */
  url: string;
  token: string | undefined;
}

/** The server's HTTP base URL for `url` given as http(s):// or ws(s)://. */
export function httpBase(url: string): string {
  return url.replace(/^ws/, 'http').replace(/\/+$/, '');
}

export async function callApi<T>(target: Target, method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (target.token) headers['authorization'] = `Bearer ${target.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(`${httpBase(target.url)}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new CliError(`cannot reach ${httpBase(target.url)}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, ExitCodes.UNAVAILABLE);
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    throw new CliError(`${method} ${path}: HTTP ${res.status}, not JSON: ${text.slice(0, 200)}`, res.ok ? ExitCodes.SOFTWARE : exitCodeFor('', res.status));
  }
  if (!res.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    const code = error?.code ?? `HTTP_${res.status}`;
    throw new CliError(`${code}: ${error?.message ?? res.statusText}`, exitCodeFor(code, res.status));
  }
  return parsed as T;
}
