// `escai-realtime publish`: one event from arguments or a JSON argument, many
// from stdin or an NDJSON file, in batches (all-or-nothing each, as the API
// is), with a progress bar for files and an optional rate limit.
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';
import type { PublishedRef } from '../../protocol/server-messages.js';
import { addClientOptions, resolveTarget, type ClientFlags } from '../client-options.js';
import { CliError, ExitCodes } from '../exit-codes.js';
import { callApi, type Target } from '../http.js';

interface PublishFlags extends ClientFlags {
  type?: string;
  agent?: string;
  data?: string;
  status?: string;
  severity?: string;
  alertType?: string;
  message?: string;
  user?: string;
  notificationType?: string;
  file?: string;
  batch: number;
  rate?: number;
  quiet?: boolean;
}

interface Answer {
  accepted: number;
  events: PublishedRef[];
}

function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new CliError(`${name}: a positive integer`, ExitCodes.USAGE);
    return n;
  };
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`${what}: not valid JSON`, ExitCodes.USAGE);
  }
}

/** The one event the flags describe. */
function eventFromFlags(flags: PublishFlags): Record<string, unknown> {
  const type = flags.type!;
  const event: Record<string, unknown> = { type };
  if (flags.agent) event['agent_id'] = flags.agent;
  if (flags.data !== undefined) event['data'] = parseJson(flags.data, '--data');
  if (flags.status) event['status'] = flags.status;
  if (flags.severity) event['severity'] = flags.severity;
  if (flags.alertType) event['alert_type'] = flags.alertType;
  if (flags.message !== undefined) event['message'] = flags.message;
  if (flags.user) event['user_id'] = flags.user;
  if (flags.notificationType) event['notification_type'] = flags.notificationType;
  if ((type === 'epistemic_update' || type === 'prediction_update' || type === 'pattern_alert') && event['data'] === undefined) event['data'] = {};
  return event;
}

export function registerPublish(program: Command): void {
  addClientOptions(
    program
      .command('publish')
      .description('publish events: one from flags or a JSON argument, many from a file or stdin (NDJSON)')
      .argument('[event]', 'one event as JSON, or - to read NDJSON from stdin')
      .option('--type <type>', 'event type (epistemic_update, pattern_alert, prediction_update, agent_status_change, system_alert, user_notification)')
      .option('--agent <id>', 'agent_id')
      .option('--data <json>', "the event's data, as JSON")
      .option('--status <status>', 'agent_status_change: the status')
      .option('--severity <level>', 'pattern_alert / system_alert severity')
      .option('--alert-type <type>', 'pattern_alert / system_alert alert_type')
      .option('--message <text>', 'system_alert / user_notification message')
      .option('--user <id>', 'user_notification: user_id')
      .option('--notification-type <type>', 'user_notification: notification_type')
      .option('--file <path>', 'NDJSON file: one event per line')
      .option('--batch <n>', 'events per request', positiveInt('--batch'), 100)
      .option('--rate <n>', 'at most n events per second', positiveInt('--rate'))
      .option('--quiet', 'print nothing but errors'),
  )
    .addHelpText(
      'after',
      `
Examples:
  escai-realtime publish --type agent_status_change --agent a1 --status running
  escai-realtime publish --type epistemic_update --agent a1 --data '{"confidence_level":0.9,"uncertainty_score":0.1}'
  escai-realtime publish '{"type":"system_alert","alert_type":"maintenance","message":"at noon"}'
  escai-realtime publish --file events.ndjson --rate 200
  some-producer | escai-realtime publish -`,
    )
    .action(async (arg: string | undefined, flags: PublishFlags) => publish(arg, flags));
}

async function publish(arg: string | undefined, flags: PublishFlags): Promise<void> {
  const sources = [arg !== undefined && arg !== '-', arg === '-', flags.file !== undefined, flags.type !== undefined].filter(Boolean).length;
  if (sources !== 1) throw new CliError('give exactly one of: a JSON argument, - (stdin), --file, or --type with its fields', ExitCodes.USAGE);
  const target = await resolveTarget(flags, { roles: ['developer'] });
  if (arg !== undefined && arg !== '-') return printOne(await callApi<Answer>(target, 'POST', '/api/v1/events', parseJson(arg, 'event')), flags);
  if (flags.type !== undefined) return printOne(await callApi<Answer>(target, 'POST', '/api/v1/events', eventFromFlags(flags)), flags);
  if (flags.file !== undefined && !existsSync(flags.file)) throw new CliError(`--file ${flags.file}: no such file`, ExitCodes.NO_INPUT);
  await publishLines(target, flags);
}

function printOne(answer: Answer, flags: PublishFlags): void {
  if (!flags.quiet) process.stdout.write(`${JSON.stringify(answer.events[0])}\n`);
}

/** NDJSON from a file or stdin, in batches; a bad line stops with its line number. */
async function publishLines(target: Target, flags: PublishFlags): Promise<void> {
  const input = flags.file ? createReadStream(flags.file) : process.stdin;
  const size = flags.file ? statSync(flags.file).size : 0;
  const bar =
    flags.file && !flags.quiet && process.stderr.isTTY
      ? new SingleBar({ format: ' {bar} {percentage}% | {value}/{total} bytes | {events} events', stream: process.stderr }, Presets.shades_classic)
      : undefined;
  bar?.start(size, 0, { events: 0 });
  const batchSize = flags.rate ? Math.min(flags.batch, flags.rate) : flags.batch;
  let batch: unknown[] = [];
  let sent = 0;
  let bytes = 0;
  let lineNo = 0;
  const started = performance.now();
  const flush = async () => {
    if (batch.length === 0) return;
    const firstLine = lineNo - batch.length + 1;
    try {
      const answer = await callApi<Answer>(target, 'POST', '/api/v1/events', batch);
      sent += answer.accepted;
    } catch (err) {
      bar?.stop();
      if (err instanceof CliError) throw new CliError(`lines ${firstLine}-${lineNo}: ${err.message} (${sent} events published before)`, err.exitCode);
      throw err;
    }
    batch = [];
    bar?.update(bytes, { events: sent });
    // Rate limit: never ahead of `rate` events per second since the start.
    if (flags.rate) {
      const due = (sent / flags.rate) * 1000 - (performance.now() - started);
      if (due > 0) await sleep(due);
    }
  };
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    lineNo++;
    bytes += Buffer.byteLength(line) + 1;
    if (line.trim() === '') continue;
    batch.push(parseJson(line, `line ${lineNo}`));
    if (batch.length >= batchSize) await flush();
  }
  await flush();
  bar?.update(size, { events: sent });
  bar?.stop();
  if (!flags.quiet) process.stderr.write(`published ${sent} event${sent === 1 ? '' : 's'} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
}
