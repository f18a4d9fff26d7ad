// The servers under test, each started as its own process (bench/lib.ts
// registers it, so every exit path of the harness kills it): the raw `ws` floor, the
// Socket.IO 4 peer, one ESCAI node (memory engine) or two on Redis. ESCAI's
// per-address and per-user admission limits are lifted: every client of the
// benchmark comes from 127.0.0.1 and a handful of users.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startProcess, startServerProcess, type ServerProcess } from '../lib.js';
import type { Kind } from './wire.js';

/** What the harness sets beyond startServerProcess's lifted admission limits (bench/lib.ts). */
export const ESCAI_BENCH_ENV: Readonly<Record<string, string>> = {
  ESCAI_DEMO: '0',
  ESCAI_MAX_PENDING_SOCKETS: '50000',
  ESCAI_MAX_SESSIONS_PER_USER: '10000',
  ESCAI_REST_RATE_LIMIT: '1000000',
  ESCAI_REPLAY_BUDGET: '1000000',
  // Idle clients of the benchmark do not answer JSON pings; 300 s is longer than any scenario.
  ESCAI_HEARTBEAT_INTERVAL: '300',
};

export interface Deployment {
  /** Where the producer connects / publishes. */
  pubBase: string;
  /** Where subscribers connect. */
  subBase: string;
  /** The process whose memory is measured (the subscribers' node). */
  subPid: number;
  stop(): Promise<void>;
}

function peer(file: string): Promise<ServerProcess> {
  return startProcess(['--import', 'tsx', fileURLToPath(new URL(`../${file}`, import.meta.url))]);
}

function deployment(pub: ServerProcess, sub: ServerProcess, all: ServerProcess[]): Deployment {
  return {
    pubBase: pub.url,
    subBase: sub.url,
    subPid: sub.child.pid ?? 0,
    async stop() {
      await Promise.all(all.map((s) => s.stop()));
    },
  };
}

/** One server of the given client kind (both ESCAI kinds run the same server). */
export async function startServer(kind: Kind, env: Record<string, string> = {}): Promise<Deployment> {
  const server =
    kind === 'ws'
      ? await peer('peer-ws-floor.ts')
      : kind === 'socketio'
        ? await peer('peer-socketio-server.ts')
        : await startServerProcess({ ...ESCAI_BENCH_ENV, ...env });
  return deployment(server, server, [server]);
}

/** Two ESCAI nodes on Redis (fresh key prefix): producer on A, subscribers on B. */
export async function startRedisPair(redisUrl: string): Promise<Deployment> {
  const env = { ...ESCAI_BENCH_ENV, ESCAI_REDIS_URL: redisUrl, ESCAI_REDIS_PREFIX: `bench-${process.pid}-${Date.now()}` };
  const a = await startServerProcess(env);
  const b = await startServerProcess(env);
  return deployment(a, b, [a, b]);
}

/** Resident set size of a process, bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}
