#!/usr/bin/env node
// The escai-realtime command: `serve` runs a node, `token` signs a token.
import { Command, InvalidArgumentError } from 'commander';
import { signToken } from '../auth/jwt.js';
import { ConfigError, configFromEnv, configFromFile, resolveConfig, type Config } from '../config/config.js';
import { createEscaiServer } from '../server/server.js';
import { loadOrCreateDevSecret } from './devmode.js';

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('must be an integer');
  return n;
}

interface ServeFlags {
  host?: string;
  port?: number;
  maxConnections?: number;
  config?: string;
  redis?: string;
}

/** Settings from every source; dev-mode secret when none is configured outside production. */
function loadConfig(flags: ServeFlags): { config: Config; devSecret: boolean } {
  const fromFile = flags.config ? configFromFile(flags.config) : {};
  const fromEnv = configFromEnv(process.env);
  const fromFlags = { host: flags.host, port: flags.port, maxConnections: flags.maxConnections, redisUrl: flags.redis };
  let config = resolveConfig(fromFile, fromEnv, fromFlags);
  if (config.jwtSecret || config.jwtJwksUrl) return { config, devSecret: false };
  if (process.env['NODE_ENV'] === 'production') {
    throw new ConfigError('Invalid setting jwtSecret (ESCAI_JWT_SECRET): required when NODE_ENV=production');
  }
  const { secret } = loadOrCreateDevSecret();
  config = resolveConfig(fromFile, fromEnv, fromFlags, { jwtSecret: secret });
  return { config, devSecret: true };
}

async function serve(flags: ServeFlags): Promise<void> {
  let loaded: { config: Config; devSecret: boolean };
  try {
    loaded = loadConfig(flags);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`escai-realtime: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const { config, devSecret } = loaded;
  const server = createEscaiServer({ config });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    server.log.info({ signal }, 'shutting down');
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        server.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await server.listen();
  if (devSecret) {
    const token = await signToken(config.jwtSecret!, { sub: 'dev-admin', roles: ['admin'], expiresInSec: 7 * 86_400 });
    const ws = server.url.replace(/^http/, 'ws');
    process.stdout.write(
      [
        '',
        'ESCAI Realtime is running in DEV MODE (no ESCAI_JWT_SECRET; secret kept in .escai-dev-secret).',
        `  endpoint:    ${ws}/ws/monitor/{session_id}?token=<JWT>`,
        `  health:      ${server.url}/ws/health`,
        `  admin token (7 days): ${token}`,
        `  try:         ${ws}/ws/monitor/demo?token=${token}`,
        '',
      ].join('\n') + '\n',
    );
  }
}

const program = new Command('escai-realtime').description('Real-time monitoring server for autonomous AI agents (ESCAI protocol)');

program
  .command('serve', { isDefault: true })
  .description('run a server node')
  .option('--host <host>', 'interface to listen on (ESCAI_HOST, default 127.0.0.1)')
  .option('--port <port>', 'port (ESCAI_PORT, default 8000)', integer)
  .option('--max-connections <n>', 'maximum WebSocket connections (ESCAI_MAX_CONNECTIONS, default 10000)', integer)
  .option('--config <file>', 'JSON file with settings (same names as the configuration table)')
  .option('--redis <url>', 'run on the Redis engine (ESCAI_REDIS_URL), e.g. redis://127.0.0.1:6379')
  .action(serve);

program
  .command('token')
  .description('sign an HS256 token with ESCAI_JWT_SECRET (or the dev secret)')
  .requiredOption('--sub <user>', 'user id')
  .option('--role <role...>', 'roles', [])
  .option('--permission <perm...>', 'extra permissions', [])
  .option('--expires-in <seconds>', 'lifetime in seconds', integer, 3600)
  .action(async (opts: { sub: string; role: string[]; permission: string[]; expiresIn: number }) => {
    const secret = process.env['ESCAI_JWT_SECRET'] ?? loadOrCreateDevSecret().secret;
    const token = await signToken(secret, { sub: opts.sub, roles: opts.role, permissions: opts.permission, expiresInSec: opts.expiresIn });
    process.stdout.write(`${token}\n`);
  });

program.parseAsync().catch((err: unknown) => {
  process.stderr.write(`escai-realtime: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
