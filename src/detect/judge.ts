// The judge: runs the behaviour detectors and the run-status machine
// (./watch.ts) over every agent's activity stream, and publishes what they
// find as pattern_alert and agent_status_change events. One node judges the
// whole cluster at a time: the one holding the `detectors` lease (on the
// in-memory engine, the only node). It follows every activity stream, so it
// sees each agent's steps in stream order whichever node ingested them: no
// alert is raised twice by two nodes, and none is missed because an agent's
// spans went to different nodes.
//
// A node that takes the lease over replays the history window of every
// active activity stream first: its detectors then hold what the previous
// judge's held. Findings carry keys made of what caused them (the engine's
// idempotency keys), so what the previous judge had already published is
// dropped, and what it had not (it died first) is published now.
import type { Logger } from 'pino';
import type { Broker, DeliveredEvent } from '../engine/broker.js';
import type { Presence } from '../engine/presence.js';
import { activityStream, ALL_ACTIVITY_STREAMS, wildcardPrefix } from '../protocol/constants.js';
import type { PublishEventInput } from '../protocol/events.js';
import { PATTERN_TYPES, Watches, type Finding } from './watch.js';
import type { DetectorThresholds } from './thresholds.js';

/** The lease one node of a cluster judges under. */
export const JUDGE_LEASE = 'detectors';

/** Findings that could not be published yet (the engine was away), kept for the next tick at most. */
const MAX_UNSENT = 10_000;
/** Live events queued while a takeover replays history, at most. */
const MAX_QUEUED = 100_000;

export interface JudgeDeps {
  broker: Pick<Broker, 'follow' | 'unfollow' | 'history' | 'streamsActiveSince'>;
  presence: Pick<Presence, 'holdLease' | 'releaseLease'>;
  /** Publishes findings (validated like any producer's events; idempotency keys honoured). */
  publish(events: PublishEventInput[]): Promise<unknown>;
  thresholds: DetectorThresholds;
  /** How long the lease lasts without renewal (renewed every third of it). */
  leaseTtlMs: number;
  /** How often idle agents and stalled steps are looked for. */
  tickMs?: number;
  /** Told of each finding published (metrics). */
  onFinding?(finding: Finding): void;
  log: Logger;
}

type JudgeState = 'following' | 'replaying' | 'judging';

export class Judge {
  readonly #deps: JudgeDeps;
  readonly #watches: Watches;
  /** Null: not judging (another node holds the lease). */
  #state: JudgeState | null = null;
  #queued: DeliveredEvent[] = [];
  #pending: DeliveredEvent[] = [];
  #unsent: PublishEventInput[] = [];
  #flushScheduled = false;
  #leaseTimer: NodeJS.Timeout | undefined;
  #tickTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(deps: JudgeDeps) {
    this.#deps = deps;
    this.#watches = new Watches(deps.thresholds);
  }

  /** Whether this node judges now. */
  get judging(): boolean {
    return this.#state === 'judging';
  }

  get agents(): number {
    return this.#watches.size;
  }

  /** Forgets an agent removed from the directory, when this node judges it (else the judging node forgets it at its next takeover or never sees it again). */
  forget(agentId: string): boolean {
    return this.#watches.forget(agentId);
  }

  /** Starts contending for the lease, and ticking. */
  start(): void {
    const renew = () => void this.#renew();
    renew();
    this.#leaseTimer = setInterval(renew, Math.max(100, this.#deps.leaseTtlMs / 3));
    this.#leaseTimer.unref();
    this.#tickTimer = setInterval(() => this.#tick(), this.#deps.tickMs ?? 1000);
    this.#tickTimer.unref();
  }

  /** Every delivered event of this node: activity events feed the detectors while this node judges. */
  observe(event: DeliveredEvent): void {
    if (event.type !== 'agent_activity' || this.#state === null) return;
    if (this.#state !== 'judging') {
      if (this.#queued.length < MAX_QUEUED) this.#queued.push(event);
      return;
    }
    // Judged after the turn that delivered it: never inside the engine's delivery (the in-memory engine delivers inside publish).
    this.#pending.push(event);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#leaseTimer);
    clearInterval(this.#tickTimer);
    if (this.#state !== null) {
      this.#stopJudging();
      await this.#deps.presence.releaseLease(JUDGE_LEASE);
    }
  }

  async #renew(): Promise<void> {
    if (this.#closed) return;
    let held: boolean;
    try {
      held = await this.#deps.presence.holdLease(JUDGE_LEASE, this.#deps.leaseTtlMs);
    } catch {
      held = false; // the engine is away: whoever holds the lease when it is back judges
    }
    if (this.#closed) return;
    if (held && this.#state === null) await this.#takeOver();
    else if (!held && this.#state !== null) {
      this.#deps.log.info('detectors: lease lost; another node judges');
      this.#stopJudging();
    }
  }

  /** Follows every activity stream, then replays their history window, then judges live. */
  async #takeOver(): Promise<void> {
    const { broker, log } = this.#deps;
    this.#state = 'following';
    await broker.follow(ALL_ACTIVITY_STREAMS);
    if (this.#state !== 'following') return;
    this.#state = 'replaying';
    const out: Finding[] = [];
    const last = new Map<string, DeliveredEvent>();
    let replayed = 0;
    try {
      const streams = await broker.streamsActiveSince(wildcardPrefix(ALL_ACTIVITY_STREAMS), Date.now() - this.#replayWindowMs());
      for (const stream of streams.slice(-this.#deps.thresholds.maxAgents)) {
        const page = await broker.history(stream, {});
        for (const event of page.events) {
          this.#watches.observe(event, out);
          last.set(stream, event);
          replayed++;
        }
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'detectors: history replay failed; judging from live events only');
    }
    if (this.#state !== 'replaying') return;
    // Live events that arrived meanwhile, without the ones the replay already fed.
    for (const event of this.#queued) {
      const seen = last.get(activityStream(event.agent_id ?? ''));
      if (seen && seen.epoch === event.epoch && event.offset <= seen.offset) continue;
      this.#watches.observe(event, out);
    }
    this.#queued = [];
    this.#state = 'judging';
    log.info({ replayed, agents: this.#watches.size }, 'detectors: judging on this node');
    this.#send(out);
  }

  #replayWindowMs(): number {
    const th = this.#deps.thresholds;
    return (
      1000 *
      Math.max(th.toolLoop.window, th.errorBurst.window, th.retryStorm.window, 60 * (th.tokenBurn.baselineMinutes + 1), th.stalledStep.after, th.idleAfter)
    );
  }

  #stopJudging(): void {
    if (this.#state === null) return;
    this.#state = null;
    this.#queued = [];
    this.#pending = [];
    this.#watches.clear();
    this.#deps.broker.unfollow(ALL_ACTIVITY_STREAMS);
  }

  #flush(): void {
    this.#flushScheduled = false;
    const events = this.#pending;
    this.#pending = [];
    const out: Finding[] = [];
    for (const event of events) this.#watches.observe(event, out);
    this.#send(out);
  }

  #tick(): void {
    if (this.#state !== 'judging') return;
    const out = this.#watches.tick(Date.now());
    this.#send(out);
  }

  #send(findings: readonly Finding[]): void {
    const events = [...this.#unsent.splice(0), ...findings.map(eventOf)];
    if (events.length === 0) return;
    for (const f of findings) this.#deps.onFinding?.(f);
    this.#deps.publish(events).catch((err: unknown) => {
      // The engine is away: published on a later tick (the keys make a repeat harmless).
      this.#deps.log.warn({ err: (err as Error).message, findings: events.length }, 'detectors: findings not published yet');
      this.#unsent = [...events, ...this.#unsent].slice(0, MAX_UNSENT);
    });
  }
}

/** A finding as the event it publishes. */
function eventOf(f: Finding): PublishEventInput {
  if (f.type === 'status') {
    return { type: 'agent_status_change', agent_id: f.agentId, status: f.status, metadata: f.metadata, idempotency_key: f.key };
  }
  return {
    type: 'pattern_alert',
    agent_id: f.agentId,
    alert_type: 'pattern_detected',
    severity: f.severity,
    idempotency_key: f.key,
    data: {
      pattern_id: f.key,
      pattern_name: f.detector,
      pattern_type: PATTERN_TYPES[f.detector],
      description: f.description,
      frequency: typeof f.evidence['count'] === 'number' ? f.evidence['count'] : typeof f.evidence['attempts'] === 'number' ? f.evidence['attempts'] : 1,
      failure_modes: f.detector === 'error_burst' || f.detector === 'retry_storm' ? ['repeated failures'] : [],
      evidence: f.evidence,
    },
  };
}
