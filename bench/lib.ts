// Benchmark support: a server in its own process (so the load generator never
// shares its event loop), tokens, percentiles with hdr-histogram-js.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as hdr from 'hdr-histogram-js';
import { signToken } from '../src/auth/jwt.js';
import { track } from './harness/rpc.js';

export const SECRET = 'bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts `escai-realtime serve` (the built dist/) on a free port with extra
 * environment. With ESCAI_BENCH_PROFILE=DIR set, the server runs under
 * --cpu-prof and writes its profile to DIR when it exits.
 */
/**
 * A benchmark server's environment: every client of a benchmark comes from
 * 127.0.0.1, so the per-address and per-user caps are lifted; info logs, for
 * startProcess's "listening" line.
 */
export const BENCH_SERVER_ENV: Readonly<Record<string, string>> = {
  ESCAI_JWT_SECRET: SECRET,
  ESCAI_LOG_LEVEL: 'info',
  ESCAI_RATE_LIMIT: '100000',
  ESCAI_RATE_BURST: '100000',
  ESCAI_PUBLISH_RATE: '1000000',
  ESCAI_PUBLISH_BURST: '1000000',
  ESCAI_MAX_CONNECTIONS: '50000',
  ESCAI_MAX_CONNECTIONS_PER_IP: '50000',
  ESCAI_MAX_CONNECTIONS_PER_USER: '0',
  ESCAI_HANDSHAKE_RATE: '1000000',
};

export function startServerProcess(env: Record<string, string> = {}): Promise<ServerProcess> {
  const profile = process.env['ESCAI_BENCH_PROFILE'];
  const nodeArgs = profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [];
  return startProcess([...nodeArgs, CLI, 'serve', '--port', '0'], { ...BENCH_SERVER_ENV, ...env });
}

/** Starts a node process (args after `node`) that prints a JSON {"msg":"listening","port":N} line. */
export async function startProcess(args: string[], env: Record<string, string> = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  track(child); // killed when the script ends, however it ends
  const lines = createInterface({ input: child.stdout! });
  let port: number | undefined;
  for await (const line of lines) {
    try {
      const rec = JSON.parse(line) as { msg?: string; port?: number };
      if (rec.msg === 'listening' && rec.port) {
        port = rec.port;
        break;
      }
    } catch {
      /* not a log line */
    }
  }
  if (!port) throw new Error('server did not start');
  lines.on('line', () => {});
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    async stop() {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

export function token(sub: string, roles: string[]): Promise<string> {
  return signToken(SECRET, { sub, roles, expiresInSec: 3600 });
}

export function histogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}

/** p50/p90/p99/max of a histogram recorded in microseconds, printed in ms. */
export function summary(h: hdr.Histogram): string {
  const ms = (us: number) => (us / 1000).toFixed(2);
  return `n=${h.totalCount} p50=${ms(h.getValueAtPercentile(50))}ms p90=${ms(h.getValueAtPercentile(90))}ms p99=${ms(h.getValueAtPercentile(99))}ms max=${ms(h.maxValue)}ms`;
}

export function sampleEpistemic(agentId: string, i: number): Record<string, unknown> {
  return {
    agent_id: agentId,
    timestamp: new Date().toISOString(),
    belief_states: [{ content: `step ${i}: the tool call succeeded`, belief_type: 'factual', confidence: 0.9, evidence: ['tool_output'] }],
    knowledge_state: { facts: ['api reachable'], confidence: 0.85 },
    goal_states: [{ description: 'finish the report', status: 'active', priority: 5 }],
    confidence_level: 0.5 + (i % 50) / 100,
    uncertainty_score: 0.5 - (i % 50) / 100,
    seq: i,
  };
}

/** `count` sample epistemic updates of `agentId`, numbered from `from`, as POST /api/v1/events takes them. */
export function epistemicBatch(agentId: string, from: number, count: number): Array<Record<string, unknown>> {
  return Array.from({ length: count }, (_, i) => ({ type: 'epistemic_update', agent_id: agentId, data: sampleEpistemic(agentId, from + i) }));
}

/** Publishes events over HTTP (POST /api/v1/events); throws unless answered 202; the accepted events' positions. */
export async function postEvents(base: string, producerToken: string, events: unknown[]): Promise<Array<{ offset: number; epoch: string }>> {
  const res = await fetch(`${base}/api/v1/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${producerToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(events),
  });
  if (res.status !== 202) throw new Error(`publish failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { events: Array<{ offset: number; epoch: string }> }).events;
}
