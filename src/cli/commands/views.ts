// `escai-realtime agents` and `escai-realtime health`: the agent list and the
// cluster's health as tables (or JSON).
import type { Command } from 'commander';
import type { AgentPage } from '../../protocol/api.js';
import type { ClusterHealth } from '../../protocol/server-messages.js';
import { addClientOptions, resolveTarget, type ClientFlags } from '../client-options.js';
import { CliError, ExitCodes } from '../exit-codes.js';
import { ago, palette, table } from '../format.js';
import { callApi } from '../http.js';

interface ViewFlags extends ClientFlags {
  json?: boolean;
  color?: boolean;
  limit?: string;
  cursor?: string;
}

const fixed = (v: number | null, digits = 2) => (v === null ? '–' : v.toFixed(digits));

export function registerViews(program: Command): void {
  addClientOptions(
    program
      .command('agents')
      .description('the agents you may see, most recently active first')
      .option('--limit <n>', 'agents per page (1-500)', '100')
      .option('--cursor <cursor>', 'the next page (printed under a full page)')
      .option('--json', 'the API answer as JSON')
      .option('--no-color', 'no colours'),
  ).action(async (flags: ViewFlags) => {
    const limit = Number(flags.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new CliError('--limit: 1 to 500', ExitCodes.USAGE);
    const target = await resolveTarget(flags, { roles: ['researcher'] });
    const page = await callApi<AgentPage>(target, 'GET', `/api/v1/agents?limit=${limit}${flags.cursor ? `&cursor=${encodeURIComponent(flags.cursor)}` : ''}`);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(page)}\n`);
      return;
    }
    const colors = palette(flags.color !== false && process.stdout.isTTY === true && !process.env['NO_COLOR']);
    const rows = page.agents.map((a) => [
      a.agent_id,
      a.status ?? '–',
      fixed(a.confidence_level),
      fixed(a.uncertainty_score),
      a.open_alerts > 0 ? colors.red(String(a.open_alerts)) : '0',
      String(Object.values(a.events).reduce((s, n) => s + n, 0)),
      ago(a.last_event_at),
    ]);
    process.stdout.write(`${table(['AGENT', 'STATUS', 'CONF', 'UNC', 'ALERTS', 'EVENTS', 'LAST SEEN'], rows, colors)}\n`);
    if (page.next_cursor) process.stdout.write(colors.dim(`more: --cursor ${page.next_cursor}\n`));
  });
  const agents = program.commands.find((c) => c.name() === 'agents')!;
  addClientOptions(
    agents
      .command('remove')
      .argument('<agent...>', 'agent ids')
      .description(
        'remove agents from the directory (their Fleet cards); history stays until it ages out, and an agent that publishes again comes back (admin)',
      ),
  ).action(async (ids: string[], flags: ViewFlags) => {
    const target = await resolveTarget(flags, { roles: ['admin'] });
    for (const id of ids) {
      await callApi(target, 'DELETE', `/api/v1/agents/${encodeURIComponent(id)}`);
      process.stdout.write(`removed ${id}\n`);
    }
  });

  addClientOptions(
    program
      .command('health')
      .description("the cluster's health: totals and each node")
      .option('--json', 'the API answer as JSON')
      .option('--no-color', 'no colours'),
  ).action(async (flags: ViewFlags) => {
    const target = { url: flags.url ?? process.env['ESCAI_URL'] ?? 'http://127.0.0.1:8000', token: undefined };
    const health = await callApi<ClusterHealth & { timestamp: string }>(target, 'GET', '/ws/health');
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(health)}\n`);
      return;
    }
    const colors = palette(flags.color !== false && process.stdout.isTTY === true && !process.env['NO_COLOR']);
    const n = (counters: Record<string, number>, key: string) => String(counters[key] ?? 0);
    const rows = health.nodes.map((node) => [
      node.node_id,
      node.address,
      n(node.counters, 'active_connections'),
      n(node.counters, 'total_subscriptions'),
      n(node.counters, 'events_in'),
      n(node.counters, 'events_out'),
      n(node.counters, 'handshake_refusals'),
      n(node.counters, 'slow_consumer_closes'),
      ago(new Date(node.reported_at).toISOString()),
    ]);
    const status =
      health.status === 'healthy' ? colors.green(health.status) : health.status === 'idle' ? colors.dim(health.status) : colors.yellow(health.status);
    process.stdout.write(
      `${status}  engine ${health.engine}  ${health.active_connections}/${health.max_connections} connections  ${health.total_subscriptions} subscriptions  ${health.events_in} events in, ${health.events_out} out\n\n` +
        `${table(['NODE', 'ADDRESS', 'CONNS', 'SUBS', 'IN', 'OUT', 'REFUSED', 'SLOW', 'REPORTED'], rows, colors)}\n`,
    );
  });
}
