// The options every client command shares: where the server is (--url /
// ESCAI_URL) and who is asking (--token / ESCAI_TOKEN). Run next to a dev
// server without a token, a command signs a short-lived dev token with the
// dev secret that server created (and says so); it never creates one.
import type { Command } from 'commander';
import { DEV_SECRET_FILE, readDevSecret } from './devmode.js';
import { CliError, ExitCodes } from './exit-codes.js';
import type { Target } from './http.js';

export interface ClientFlags {
  url?: string;
  token?: string;
}

export function addClientOptions(command: Command): Command {
  return command
    .option('--url <url>', 'server URL (ESCAI_URL, default http://127.0.0.1:8000)')
    .option('--token <jwt>', 'token (ESCAI_TOKEN; next to a dev server, a dev token is signed for you)');
}

/** The target of a client command: flags, then the environment, then a dev token. */
export async function resolveTarget(flags: ClientFlags, needs: { roles: string[] } = { roles: ['admin'] }): Promise<Target> {
  const url = flags.url ?? process.env['ESCAI_URL'] ?? 'http://127.0.0.1:8000';
  const token = flags.token ?? process.env['ESCAI_TOKEN'];
  if (token) return { url, token };
  const secret = process.env['ESCAI_JWT_SECRET'] ?? readDevSecret();
  if (!secret) {
    throw new CliError('no token: pass --token or set ESCAI_TOKEN (mint one with `escai-realtime token` where the server runs)', ExitCodes.NO_PERMISSION);
  }
  process.stderr.write(
    `escai-realtime: no --token; using a 1-hour dev token (${needs.roles.join(', ')}) signed with ${process.env['ESCAI_JWT_SECRET'] ? 'ESCAI_JWT_SECRET' : DEV_SECRET_FILE}\n`,
  );
  const { signToken } = await import('../auth/jwt.js');
  return { url, token: await signToken(secret, { sub: 'cli', roles: needs.roles, expiresInSec: 3600 }) };
}
