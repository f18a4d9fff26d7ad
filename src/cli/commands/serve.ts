// `escai-realtime serve`: run a node. Settings from a file, the environment
// and flags; dev mode (no secret, not production) keeps a generated secret in
// .escai-dev-secret, runs the demo agents unless told not to, and prints the
// console link (the token travels in the URL fragment, which never reaches a
// server log).
import { isAbsolute, relative, sep } from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../../config/config.js';
import type { Logger } from '../../log.js';
import { DEV_SECRET_FILE, loadOrCreateDevSecret } from '../devmode.js';
import { CliError, ExitCodes } from '../exit-codes.js';

interface ServeFlags {
  host?: string;
  port?: number;
  maxConnections?: number;
  config?: string;
  redis?: string;
  /** --demo (true), --no-demo (false), neither (undefined: the mode decides). */
  demo?: boolean;
  demoSeed: number;
  demoTick: number;
}

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new CliError(`not an integer: ${value}`, ExitCodes.USAGE);
  return n;
}

/** Settings from every source; dev-mode secret when none is configured outside production. */
async function loadConfig(flags: ServeFlags): Promise<{ config: Config; devSecret: boolean }> {
  const { ConfigError, configFromEnv, configFromFile, resolveConfig } = await import('../../config/config.js');
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

/** Whether the demo runs: --demo / --no-demo, else ESCAI_DEMO, else in dev mode only. */
function demoWanted(flags: ServeFlags, devMode: boolean): boolean {
  if (flags.demo !== undefined) return flags.demo;
  const env = process.env['ESCAI_DEMO'];
  if (env !== undefined && env !== '') return !['0', 'false', 'no', 'off'].includes(env.trim().toLowerCase());
  return devMode;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run a server node (npm start runs this)')
    .option('--host <host>', 'interface to listen on (ESCAI_HOST, default 127.0.0.1)')
    .option('--port <port>', 'port (ESCAI_PORT, default 8000)', integer)
    .option('--max-connections <n>', 'maximum WebSocket connections (ESCAI_MAX_CONNECTIONS, default 10000)', integer)
    .option('--config <file>', 'JSON file with settings (same names as the configuration table)')
    .option('--redis <url>', 'run on the Redis engine (ESCAI_REDIS_URL), e.g. redis://127.0.0.1:6379')
    .option('--demo', 'run the demo agents in-process (default in dev mode; ESCAI_DEMO=1)')
    .option('--no-demo', 'do not run the demo agents (ESCAI_DEMO=0)')
    .option('--demo-seed <n>', 'random seed of the demo agents', integer, 1)
    .option('--demo-tick <ms>', "milliseconds between the demo agents' steps", integer, 1000)
    .action(async (flags: ServeFlags) => serve(flags));
}

async function serve(flags: ServeFlags): Promise<void> {
  // The server's modules load only for this command: the others start without them.
  const [{ ConfigError }, { createEscaiServer }, { runDemo }, { signToken }] = await Promise.all([
    import('../../config/config.js'),
    import('../../server/server.js'),
    import('../../demo/agents.js'),
    import('../../auth/jwt.js'),
  ]);
  let loaded: { config: Config; devSecret: boolean };
  try {
    loaded = await loadConfig(flags);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`escai-realtime: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const { config, devSecret } = loaded;
  const server = createEscaiServer({ config, logger: await loggerFor(config, devSecret) });
  let stopping = false;
  let demo: { stop(): void } | undefined;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    demo?.stop();
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
  if (demoWanted(flags, devSecret)) {
    if (flags.demoTick < 50) throw new CliError('--demo-tick: at least 50 ms', ExitCodes.USAGE);
    demo = runDemo((events) => server.publish(events), {
      seed: flags.demoSeed,
      tickMs: flags.demoTick,
      onError: (err) => server.log.warn({ err }, 'demo publish failed'),
    });
    server.log.info({ seed: flags.demoSeed }, 'demo agents running');
  }
  if (devSecret) {
    const token = await signToken(config.jwtSecret!, { sub: 'dev-admin', roles: ['admin'], expiresInSec: 7 * 86_400 });
    server.log.info({ secretFile: DEV_SECRET_FILE, console: `${server.url}/` }, 'dev mode: the console link with its admin token is on stderr');
    process.stderr.write(
      devBanner({
        url: server.url,
        otlpUrl: server.otlpUrl,
        token,
        demo: demo ? `running (seed ${flags.demoSeed}; --no-demo to stop them)` : 'off',
        self: selfCommand(),
        color: process.stderr.isTTY === true && !('NO_COLOR' in process.env),
      }),
    );
  }
}

/**
 * JSON lines (pino's own format) unless a person reads them: `logFormat`
 * pretty, or auto in dev mode with a terminal on stdout. Production output
 * stays JSON: there is no dev mode under NODE_ENV=production.
 */
async function loggerFor(config: Config, devMode: boolean): Promise<Logger | undefined> {
  if (logFormatFor(config.logFormat, devMode, process.stdout.isTTY === true) === 'json') return undefined;
  const { createPrettyLogger } = await import('../../log.js');
  return createPrettyLogger(config.logLevel);
}

/** The format `auto` resolves to: pretty only for a dev server writing to a terminal. */
export function logFormatFor(setting: Config['logFormat'], devMode: boolean, stdoutIsTerminal: boolean): 'json' | 'pretty' {
  if (setting !== 'auto') return setting;
  return devMode && stdoutIsTerminal ? 'pretty' : 'json';
}

interface BannerFacts {
  url: string;
  otlpUrl: string | undefined;
  token: string;
  demo: string;
  self: string;
  color: boolean;
}

/**
 * The dev-mode banner, printed once, on stderr: it is for the person who
 * started the server, while stdout carries the log records (JSON for a
 * pipe, pretty lines for a terminal). The token appears once, inside the
 * console link, whose fragment never reaches a server log.
 */
export function devBanner(f: BannerFacts): string {
  const bold = (s: string) => (f.color ? `\x1b[1m${s}\x1b[22m` : s);
  const dim = (s: string) => (f.color ? `\x1b[2m${s}\x1b[22m` : s);
  const ws = f.url.replace(/^http/, 'ws');
  const rows: Array<[string, string, string?]> = [
    ['console:', `${f.url}/#token=${encodeURIComponent(f.token)}`, 'open it: it signs you in as admin for 7 days'],
    ['watch:', `${f.self} tail`, 'in another terminal, here; the CLI signs its own dev token'],
    ['a token:', `${f.self} token --sub me --role developer`, 'for your own publisher or client'],
    ['WebSocket:', `${ws}/ws/monitor/{session_id}?token=<JWT>`],
    ['publish:', `POST ${f.url}/api/v1/events`, 'docs/PUBLISHING.md'],
    ['OTLP:', `OTEL_EXPORTER_OTLP_ENDPOINT=${f.otlpUrl ?? f.url}`, 'traces of your own agents; docs/INGEST.md'],
    ['health:', `${f.url}/ws/health`],
    ['demo agents:', f.demo],
  ];
  const width = Math.max(...rows.map(([label]) => label.length)) + 1;
  const lines = rows.map(([label, value, note]) => `  ${label.padEnd(width)}${bold(value)}${note ? `\n  ${' '.repeat(width)}${dim(note)}` : ''}`);
  return ['', `${bold('ESCAI Realtime')} is running in DEV MODE (no ESCAI_JWT_SECRET; the secret is kept in ${DEV_SECRET_FILE}).`, '', ...lines, '', ''].join(
    '\n',
  );
}

/**
 * How to run this CLI again from `cwd`: the script itself when it lies under
 * that directory (a checkout: `node dist/cli/main.js`, never npx, which
 * would rebuild the package in its cache), else the installed command.
 */
export function selfCommand(script = process.argv[1] ?? '', cwd = process.cwd()): string {
  const path = script ? relative(cwd, script) : '';
  if (!path || path.startsWith('..') || isAbsolute(path) || path.split(sep).includes('node_modules')) return 'npx escai-realtime';
  return path.endsWith('.ts') ? `node --import tsx ${path}` : `node ${path}`;
}
