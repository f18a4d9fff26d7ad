// Dev mode: with no secret configured outside production, a secret is
// generated once and kept in a local, git-ignored file so tokens survive
// restarts. Production without a secret is refused.
//
// Whoever reads the file can mint admin tokens, so it is kept 0600 (owner
// only) every time it is read or written, not only when it is created: a
// file made by hand, copied, or unpacked with a looser mode is tightened,
// and the person running the command is told.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CliError, ExitCodes } from './exit-codes.js';

export const DEV_SECRET_FILE = '.escai-dev-secret';

export interface DevSecret {
  secret: string;
  path: string;
  created: boolean;
}

/** Where the notices go: stderr, as the CLI's other notes (the server's log has not started yet). */
function stderrNote(line: string): void {
  process.stderr.write(`escai-realtime: ${line}\n`);
}

export function loadOrCreateDevSecret(dir = process.cwd(), note: (line: string) => void = stderrNote): DevSecret {
  const path = resolve(dir, DEV_SECRET_FILE);
  if (existsSync(path)) {
    // First, before it is read or rewritten: `mode` below applies only to a new file, and a
    // secret written into an open file would be readable until it was tightened.
    ownerOnly(path, note);
    const secret = readFileSync(path, 'utf8').trim();
    if (Buffer.byteLength(secret) >= 32) return { secret, path, created: false };
  }
  const secret = randomBytes(48).toString('base64url');
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  return { secret, path, created: true };
}

/**
 * The dev secret a client command signs its token with, when the file is
 * there: made 0600 first, like `serve` and `token` do (undefined without it).
 */
export function readDevSecret(dir = process.cwd(), note: (line: string) => void = stderrNote): string | undefined {
  const path = resolve(dir, DEV_SECRET_FILE);
  if (!existsSync(path)) return undefined;
  ownerOnly(path, note);
  return readFileSync(path, 'utf8').trim() || undefined;
}

/**
 * Makes the file 0600 when group or others have any access to it, saying so;
 * refuses (exit 78) when that is not possible (a file of another user). No-op
 * on Windows, whose files have no such modes.
 */
function ownerOnly(path: string, note: (line: string) => void): void {
  if (process.platform === 'win32') return;
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) === 0) return;
  const was = mode.toString(8).padStart(4, '0');
  try {
    chmodSync(path, 0o600);
  } catch (err) {
    throw new CliError(
      `${path} is open to other users (mode ${was}) and could not be made 0600 (${(err as NodeJS.ErrnoException).code ?? String(err)}): ` +
        'anyone who reads it can sign admin tokens. Fix its mode (chmod 600) or delete it, then start again.',
      ExitCodes.CONFIG,
    );
  }
  note(`${path} had mode ${was} (others could read the dev secret); it is now 0600`);
}
