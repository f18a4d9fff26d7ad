// How the client commands print: one coloured line per event (the way people
// read a stream), aligned tables, and JSON lines for machines.
import pc from 'picocolors';
import type { DeliveredEvent } from '../protocol/server-messages.js';

type Paint = (text: string) => string;
export type Colors = ReturnType<typeof pc.createColors>;
type ColorName = 'gray' | 'blue' | 'green' | 'yellow' | 'red' | 'magenta';

/** Colours on (a terminal) or off (a pipe, NO_COLOR). */
export function palette(enabled: boolean): Colors {
  return pc.createColors(enabled);
}

const SEVERITY_COLOR: Record<string, ColorName> = {
  debug: 'gray',
  info: 'blue',
  low: 'green',
  medium: 'yellow',
  warning: 'yellow',
  high: 'red',
  error: 'red',
  critical: 'magenta',
};
const RISK_COLOR: Record<string, ColorName> = { low: 'green', medium: 'yellow', high: 'red', critical: 'magenta' };

function num(value: unknown, digits = 2): string {
  return typeof value === 'number' ? value.toFixed(digits) : '–';
}

function paintBy(colors: Colors, table: Record<string, ColorName>, key: string | undefined): Paint {
  const name = key === undefined ? undefined : table[key];
  return name === undefined ? (text) => text : colors[name];
}

/** One line: time, agent, type, offset, then what matters for the type. */
export function eventLine(event: DeliveredEvent, colors: Colors): string {
  const time = colors.dim(event.timestamp.slice(11, 23));
  const who = colors.bold((event.agent_id ?? (event.type === 'system_alert' ? 'system' : 'you')).padEnd(16));
  const at = colors.dim(`#${event.offset}`.padStart(6));
  const data = event.data ?? {};
  let what: string;
  switch (event.type) {
    case 'epistemic_update': {
      const beliefs = Array.isArray(data['belief_states']) ? (data['belief_states'] as Array<{ confidence?: number }>) : [];
      const goals = Array.isArray(data['goal_states']) ? (data['goal_states'] as Array<{ status?: string }>) : [];
      const done = goals.filter((g) => g.status === 'completed').length;
      what = `${colors.cyan('epistemic ')} conf ${colors.bold(num(data['confidence_level']))} unc ${num(data['uncertainty_score'])}  beliefs ${beliefs.length}  goals ${done}/${goals.length}`;
      break;
    }
    case 'pattern_alert': {
      const paint = paintBy(colors, SEVERITY_COLOR, event.severity);
      what = `${colors.yellow('pattern   ')} ${paint(`[${event.severity ?? 'info'}]`)} ${String(data['pattern_name'] ?? event.alert_type ?? '')}`;
      break;
    }
    case 'prediction_update': {
      const risk = typeof data['risk_level'] === 'string' ? data['risk_level'] : undefined;
      what = `${colors.magenta('prediction')} ${String(data['prediction_type'] ?? '')} ${num(data['predicted_value'])} risk ${paintBy(colors, RISK_COLOR, risk)(risk ?? '–')}`;
      break;
    }
    case 'agent_status_change':
      what = `${colors.green('status    ')} ${colors.bold(event.status ?? '')}${event.metadata?.['reason'] ? colors.dim(` (${String(event.metadata['reason'])})`) : ''}`;
      break;
    case 'system_alert':
      what = `${colors.red('system    ')} ${paintBy(colors, SEVERITY_COLOR, event.severity)(`[${event.severity ?? 'info'}]`)} ${event.alert_type ?? ''}: ${event.message ?? ''}`;
      break;
    case 'user_notification':
      what = `${colors.blue('notice    ')} ${event.notification_type ?? ''}: ${event.message ?? ''}`;
      break;
    case 'agent_activity': {
      const state = String(data['state'] ?? '');
      const paint = state === 'error' ? colors.red : state === 'running' ? colors.yellow : colors.green;
      const ms = typeof data['duration_ms'] === 'number' ? ` ${Math.round(data['duration_ms'])} ms` : '';
      const tokens = data['tokens'] as { total?: number; input?: number; output?: number } | undefined;
      const used = tokens ? ` ${tokens.total ?? (tokens.input ?? 0) + (tokens.output ?? 0)} tok` : '';
      what = `${colors.gray('activity  ')} ${paint(state.padEnd(7))} ${String(data['kind'] ?? '')} ${colors.bold(String(data['name'] ?? ''))}${ms}${used}`;
      break;
    }
  }
  // A subscription's `latest` event: the newest of its kind when tail started, not live (so older than lines above it may be).
  return `${time} ${who} ${at} ${what}${event.latest ? colors.dim('  [latest]') : ''}`;
}

/** A plain table: a header row and aligned columns (widths from the content). */
export function table(header: string[], rows: string[][], colors: Colors): string {
  const width = header.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c + ' '.repeat(Math.max(0, width[i]! - visible(c).length)))
      .join('  ')
      .trimEnd();
  return [colors.bold(line(header)), ...rows.map(line)].join('\n');
}

/** Text without ANSI colour codes (for widths). */
function visible(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour codes start with ESC, which is what is removed
  return text.replace(/\x1b\[[0-9;]*m/g, '');
}

/** "3 s ago", "2 min ago", … */
export function ago(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}
