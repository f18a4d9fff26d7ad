#!/usr/bin/env node
// The escai-realtime command: `serve` runs a node; `tail`, `publish`,
// `agents`, `health` and `demo` talk to one; `token` signs a token. Client
// commands exit with codes derived from the error catalogue (exit-codes.ts).
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerDemo } from './commands/demo.js';
import { registerPublish } from './commands/publish.js';
import { registerServe } from './commands/serve.js';
import { registerTail } from './commands/tail.js';
import { registerToken } from './commands/token.js';
import { registerViews } from './commands/views.js';
import { CliError, ExitCodes } from './exit-codes.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command('escai-realtime')
  .description('Real-time monitoring of autonomous AI agents (ESCAI protocol): run a node, watch, publish')
  .version(version, '-V, --version')
  .showHelpAfterError()
  .exitOverride();

registerServe(program);
registerTail(program);
registerPublish(program);
registerViews(program);
registerDemo(program);
registerToken(program);
program.addHelpText(
  'after',
  `
Client commands take --url / ESCAI_URL and --token / ESCAI_TOKEN. Exit codes:
  0 ok, 64 usage, 65 refused data, 66 not found, 69 server unreachable,
  70 server error, 75 try again later, 77 no permission, 78 configuration.`,
);

program.parseAsync().catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // Help and --version exit 0; usage errors were printed by commander.
    process.exit(err.exitCode === 0 ? 0 : ExitCodes.USAGE);
  }
  if (err instanceof CliError) {
    process.stderr.write(`escai-realtime: ${err.message}\n`);
    process.exit(err.exitCode);
  }
  process.stderr.write(`escai-realtime: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(ExitCodes.SOFTWARE);
});
