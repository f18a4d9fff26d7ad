// The behaviour detectors' thresholds: one schema with every default, read
// from the `detectors` setting (ESCAI_DETECTORS, JSON, merged over these).
// docs/INGEST.md lists them with what each one means.
import { z } from 'zod';

const count = z.number().int().min(1).max(100_000);
const seconds = z.number().positive().max(86_400);

export const DetectorThresholdsSchema = z
  .object({
    /** The same tool with the same arguments this many times within `window` seconds. */
    toolLoop: z
      .object({
        count: count.default(5),
        window: seconds.default(60),
        /** When the telemetry carries no arguments, calls of one tool compare by name, and this many are needed. */
        countWithoutArguments: count.default(10),
      })
      .strict()
      .prefault({}),
    /** This many failed steps (any kind) within `window` seconds. */
    errorBurst: z
      .object({ count: count.default(5), window: seconds.default(60) })
      .strict()
      .prefault({}),
    /** This many calls in a row to one model or tool, each following a failed one, each within `window` seconds of the last. */
    retryStorm: z
      .object({ count: count.default(4), window: seconds.default(60) })
      .strict()
      .prefault({}),
    /** Model tokens per minute over `perMinute`, or over `factor` × the agent's own per-minute baseline (once it has `baselineMinutes` of history, and at least `minimum` per minute). */
    tokenBurn: z
      .object({
        perMinute: count.max(1e12).default(200_000),
        factor: z.number().min(1.5).max(1000).default(5),
        baselineMinutes: count.max(1440).default(5),
        minimum: count.max(1e12).default(5_000),
      })
      .strict()
      .prefault({}),
    /** A step known to be running with no end and no new child for `after` seconds. */
    stalledStep: z
      .object({ after: seconds.default(120) })
      .strict()
      .prefault({}),
    /** An agent `running` with no activity for this many seconds becomes `idle`. */
    idleAfter: seconds.default(60),
    /** After an alert, the same detector stays quiet for the same agent and subject this many seconds (of span time). */
    cooldown: seconds.default(300),
    /** Agents judged at once (the least recently active is forgotten past it). */
    maxAgents: count.max(1_000_000).default(10_000),
    /** Steps known to be running, per agent, that are watched for a stall. */
    maxRunning: count.max(100_000).default(256),
  })
  .strict();

export type DetectorThresholds = z.infer<typeof DetectorThresholdsSchema>;
export type DetectorThresholdsInput = z.input<typeof DetectorThresholdsSchema>;

export const DEFAULT_THRESHOLDS: DetectorThresholds = DetectorThresholdsSchema.parse({});
