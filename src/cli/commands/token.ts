// `escai-realtime token`: sign an HS256 token with ESCAI_JWT_SECRET, or with
// the dev secret a dev server keeps here. Without either it refuses, rather
// than create a secret no server uses and mint tokens every server refuses.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { DEV_SECRET_FILE, loadOrCreateDevSecret } from '../devmode.js';
import { CliError, ExitCodes } from '../exit-codes.js';

interface TokenFlags {
  sub: string;
  role: string[];
  permission: string[];
  expiresIn: number;
  createDevSecret?: boolean;
}

export function registerToken(program: Command): void {
  program
    .command('token')
    .description('sign an HS256 token with ESCAI_JWT_SECRET (or the dev secret of a dev server in this directory)')
    .requiredOption('--sub <user>', 'user id')
    .option('--role <role...>', 'roles (admin, researcher, developer, viewer)', [])
    .option('--permission <perm...>', 'extra permissions, e.g. agent:a1:monitor', [])
    .option(
      '--expires-in <seconds>',
      'lifetime in seconds',
      (v) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n <= 0) throw new CliError('--expires-in: a positive integer', ExitCodes.USAGE);
        return n;
      },
      3600,
    )
    .option('--create-dev-secret', 'create .escai-dev-secret here if missing (a dev server started here later will use it)')
    .action(async (flags: TokenFlags) => {
      let secret = process.env['ESCAI_JWT_SECRET'];
      if (!secret) {
        const here = resolve(process.cwd(), DEV_SECRET_FILE);
        if (!existsSync(here) && !flags.createDevSecret) {
          throw new CliError(
            `no ESCAI_JWT_SECRET, and no ${DEV_SECRET_FILE} in ${process.cwd()}: a token signed now would be refused by the server. ` +
              "Run this in the directory where the dev server runs (npm start creates the file), set ESCAI_JWT_SECRET to the server's secret, " +
              'or pass --create-dev-secret before starting a dev server here.',
            ExitCodes.CONFIG,
          );
        }
        const dev = loadOrCreateDevSecret();
        if (dev.created) process.stderr.write(`escai-realtime: created ${dev.path}; start the dev server in this directory to use it\n`);
        secret = dev.secret;
      }
      const { signToken } = await import('../../auth/jwt.js');
      const token = await signToken(secret, { sub: flags.sub, roles: flags.role, permissions: flags.permission, expiresInSec: flags.expiresIn });
      process.stdout.write(`${token}\n`);
    });
}
