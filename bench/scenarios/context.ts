// What every scenario is given: quick or full, run count, the timing of the
// fan-out windows, and a logger.
import type { Timing } from '../harness/measure.js';

export interface Context {
  quick: boolean;
  runs: number;
  timing: Timing;
  log(line: string): void;
}

export function timingFor(quick: boolean): Timing {
  return quick
    ? { warmSeconds: 0.3, stepSeconds: 0.5, fixedSeconds: 0.8, p99BoundMs: 250, maxSteps: 2, generators: 2 }
    : { warmSeconds: 0.5, stepSeconds: 1.5, fixedSeconds: 3, p99BoundMs: 250, maxSteps: 8, generators: 2 };
}
