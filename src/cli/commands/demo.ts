// `escai-realtime demo`: the demo agents as a remote producer, publishing over
// HTTP to any node (so a cluster can be demoed). `serve --demo` runs the same
// agents in-process.
import type { Command } from 'commander';
import { addClientOptions, resolveTarget, type ClientFlags } from '../client-options.js';
import { CliError, ExitCodes } from '../exit-codes.js';
import { callApi } from '../http.js';

interface DemoFlags extends ClientFlags {
  seed: string;
  agents: string;
  tick: string;
}

export function registerDemo(program: Command): void {
  addClientOptions(
    program
      .command('demo')
      .description('run the simulated agents against a server (a producer over HTTP; Ctrl-C to stop)')
      .option('--seed <n>', 'random seed: the same seed tells the same story', '1')
      .option('--agents <n>', 'how many agents', '6')
      .option('--tick <ms>', 'milliseconds between steps', '1000'),
  ).action(async (flags: DemoFlags) => {
    const seed = Number(flags.seed);
    const agents = Number(flags.agents);
    const tickMs = Number(flags.tick);
    if (!Number.isInteger(seed) || !Number.isInteger(agents) || agents < 1 || agents > 1000 || !(tickMs >= 50)) {
      throw new CliError('--seed: an integer; --agents: 1-1000; --tick: at least 50 ms', ExitCodes.USAGE);
    }
    const target = await resolveTarget(flags, { roles: ['developer'] });
    let failures = 0;
    const { runDemo } = await import('../../demo/agents.js');
    const runner = runDemo((events) => callApi(target, 'POST', '/api/v1/events', events), {
      seed,
      agents,
      tickMs,
      onError: (err) => {
        failures++;
        process.stderr.write(`escai-realtime demo: ${(err as Error).message}\n`);
        if (err instanceof CliError && err.exitCode === ExitCodes.NO_PERMISSION) {
          runner.stop();
          process.exitCode = err.exitCode;
        }
      },
    });
    // Ctrl-C is handled before the line that invites it is printed: a signal that came in between would kill the process.
    const stopped = new Promise<void>((resolve) => {
      // Everything that keeps the process alive goes here: the runner's timer and this watch.
      const stop = () => {
        clearInterval(watch);
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        runner.stop();
        resolve();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // A token the server refuses ends the demo (see onError).
      const watch = setInterval(() => {
        if (process.exitCode !== undefined && process.exitCode !== 0) stop();
      }, 200);
    });
    process.stderr.write(`demo: ${agents} agents (seed ${seed}) publishing to ${target.url} every ${tickMs} ms; Ctrl-C to stop\n`);
    await stopped;
    const ticks = `${runner.ticks} tick${runner.ticks === 1 ? '' : 's'}`;
    process.stderr.write(`demo stopped after ${ticks}${failures ? ` (${failures} failed publish${failures === 1 ? '' : 'es'})` : ''}\n`);
  });
}
