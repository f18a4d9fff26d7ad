// Reconnect delays: exponential with full jitter and a cap, so a fleet of
// clients that lost the same server does not come back in lockstep.

/** Delay before reconnect attempt `attempt` (0-based), in ms: uniform in [0, min(max, min·2^attempt)], at least `minMs`/2. */
export function fullJitterBackoff(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.max(minMs / 2, Math.floor(random() * ceiling));
}

export type BackoffFn = (attempt: number, minMs: number, maxMs: number) => number;
