// `escai-realtime tail`: subscribe and print events, one line each (or JSON
// lines), through the SDK: it reconnects, resumes and says when it could not
// recover. Ctrl-C exits 0.
import type { Command } from 'commander';
import { closeAllowsReconnect } from '../../protocol/codes.js';
import { EVENT_TYPES, SUBSCRIPTION_TYPES, type SubscriptionType } from '../../protocol/constants.js';
import { addClientOptions, resolveTarget, type ClientFlags } from '../client-options.js';
import { CliError, ExitCodes } from '../exit-codes.js';
import { eventLine, palette } from '../format.js';
import { callApi } from '../http.js';

interface TailFlags extends ClientFlags {
  agent?: string[];
  type?: string[];
  filter?: string;
  since?: string;
  latest?: boolean;
  json?: boolean;
  color?: boolean;
}

const AGENT_TYPES: SubscriptionType[] = ['epistemic_updates', 'pattern_alerts', 'prediction_updates', 'agent_status'];

/** Subscription types from --type, which accepts either name (`epistemic_updates` or `epistemic_update`). */
function subscriptionTypes(names: string[] | undefined, perAgent: boolean): SubscriptionType[] {
  if (!names || names.length === 0) return perAgent ? AGENT_TYPES : [...AGENT_TYPES, 'system_alerts'];
  return names.map((name) => {
    if (Object.hasOwn(SUBSCRIPTION_TYPES, name)) return name as SubscriptionType;
    const byEvent = (Object.entries(SUBSCRIPTION_TYPES) as Array<[SubscriptionType, string]>).find(([, event]) => event === name);
    if (byEvent) return byEvent[0];
    throw new CliError(
      `--type ${name}: one of ${Object.keys(SUBSCRIPTION_TYPES).join(', ')} (or the event type names ${EVENT_TYPES.join(', ')})`,
      ExitCodes.USAGE,
    );
  });
}

export function registerTail(program: Command): void {
  addClientOptions(
    program
      .command('tail')
      .description('subscribe and print events as they happen (reconnects and resumes; Ctrl-C to stop)')
      .option('--agent <id...>', 'only these agents (default: every agent you may see)')
      .option('--type <type...>', 'subscription or event types (default: the four agent types, plus system alerts without --agent)')
      .option('--filter <json>', 'server-side filter, e.g. \'{"confidence_level":{"max":0.3}}\'')
      .option('--since <offset>', "with --agent: start after this offset of each agent's stream (replayed from history)")
      .option(
        '--latest',
        "with --agent: first print each subscription's latest event (marked [latest]: the newest of each kind, so not in offset order among themselves)",
      )
      .option('--json', 'one JSON object per line instead of the pretty line')
      .option('--no-color', 'no colours (also when NO_COLOR is set or output is not a terminal)'),
  )
    .addHelpText(
      'after',
      `
Examples:
  escai-realtime tail                                   every event of every agent you may see
  escai-realtime tail --agent support-bot --latest      one agent, starting with its current state
  escai-realtime tail --type pattern_alerts --filter '{"severity":{"in":["high","critical"]}}'
  escai-realtime tail --agent a1 --since 120 --json     replay after offset 120, then live, as JSON lines`,
    )
    .action(async (flags: TailFlags) => tail(flags));
}

async function tail(flags: TailFlags): Promise<void> {
  const agents = flags.agent ?? [];
  const types = subscriptionTypes(flags.type, agents.length > 0);
  let filters: Record<string, unknown> | undefined;
  if (flags.filter !== undefined) {
    try {
      filters = JSON.parse(flags.filter) as Record<string, unknown>;
    } catch {
      throw new CliError('--filter: not valid JSON', ExitCodes.USAGE);
    }
  }
  if ((flags.since !== undefined || flags.latest) && agents.length === 0)
    throw new CliError('--since and --latest need --agent (one stream per agent)', ExitCodes.USAGE);
  const sinceOffset = flags.since === undefined ? undefined : Number(flags.since);
  if (sinceOffset !== undefined && !(Number.isInteger(sinceOffset) && sinceOffset >= 0))
    throw new CliError('--since: a non-negative integer offset', ExitCodes.USAGE);
  const target = await resolveTarget(flags, { roles: ['researcher'] });
  const colors = palette(flags.color !== false && !flags.json && process.stdout.isTTY === true && !process.env['NO_COLOR']);
  const say = (text: string) => process.stderr.write(`${colors.dim(text)}\n`);

  // An offset means something only within its stream's epoch: take each agent's current one.
  const epochs = new Map<string, string>();
  if (sinceOffset !== undefined) {
    for (const agent of agents) {
      const page = await callApi<{ epoch: string }>(target, 'GET', `/api/v1/agents/${encodeURIComponent(agent)}/events?order=desc&limit=1`);
      epochs.set(agent, page.epoch);
    }
  }

  const [{ WebSocket }, { EscaiClient }] = await Promise.all([import('ws'), import('../../client/client.js')]);
  const client = new EscaiClient({ url: target.url, token: target.token!, WebSocket, sessionId: `cli-tail-${process.pid}-${Date.now().toString(36)}` });
  client.on('event', (event) => process.stdout.write(`${flags.json ? JSON.stringify(event) : eventLine(event, colors)}\n`));
  client.on('connected', ({ resumed }) => say(`connected${resumed ? ' (session resumed)' : ''} to ${target.url}`));
  client.on('recovery_failed', ({ subscription, reason }) =>
    say(`! ${subscription.type}${subscription.agentId ? `/${subscription.agentId}` : ''}: events may be missing (${reason})`),
  );
  client.on('subscription_revoked', ({ subscription, reason }) =>
    say(`! ${subscription.type}${subscription.agentId ? `/${subscription.agentId}` : ''} revoked: ${reason}`),
  );
  const stopped = new Promise<number>((resolve) => {
    client.on('disconnected', ({ code, reason, willReconnect }) => {
      if (willReconnect) say(`disconnected (${code}${reason ? ` ${reason}` : ''}); reconnecting…`);
      else {
        say(`stopped: ${reason}`);
        resolve(closeAllowsReconnect(code) ? ExitCodes.UNAVAILABLE : ExitCodes.NO_PERMISSION);
      }
    });
    const interrupt = () => {
      client.close();
      resolve(ExitCodes.OK);
    };
    process.once('SIGINT', interrupt);
    process.once('SIGTERM', interrupt);
  });
  client.connect();
  const subscribing: Array<Promise<unknown>> = [];
  for (const type of types) {
    const perAgent = type === 'system_alerts' ? [undefined] : agents.length > 0 ? agents : [undefined];
    for (const agentId of perAgent) {
      const epoch = agentId === undefined ? undefined : epochs.get(agentId);
      subscribing.push(
        client
          .subscribe(type, {
            ...(agentId === undefined ? {} : { agentId }),
            ...(filters ? { filters } : {}),
            ...(flags.latest && agentId !== undefined ? { latest: true } : {}),
            ...(sinceOffset !== undefined && epoch !== undefined ? { since: { offset: sinceOffset, epoch } } : {}),
          })
          .catch((err: Error & { code?: string }) => {
            say(`! ${type}${agentId ? `/${agentId}` : ''}: ${err.code ?? ''} ${err.message}`);
          }),
      );
    }
  }
  await Promise.all(subscribing);
  process.exitCode = await stopped;
}
