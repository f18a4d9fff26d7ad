// Dev mode: with no secret configured outside production, a secret is
// generated once and kept in a local, git-ignored file so tokens survive
// restarts. Production without a secret is refused.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const DEV_SECRET_FILE = '.escai-dev-secret';

export function loadOrCreateDevSecret(dir = process.cwd()): { secret: string; path: string; created: boolean } {
  const path = resolve(dir, DEV_SECRET_FILE);
  if (existsSync(path)) {
    const secret = readFileSync(path, 'utf8').trim();
    if (Buffer.byteLength(secret) >= 32) return { secret, path, created: false };
  }
  const secret = randomBytes(48).toString('base64url');
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  return { secret, path, created: true };
}
