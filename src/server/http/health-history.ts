// The last minutes of /ws/health, kept by each node: a sample every few
// seconds of the counters it would have answered, per node of the cluster,
// so the console's System view opens with the recent past drawn, not empty.
// Pure: the caller samples and says when.
import type { HealthSample, NodeReport } from '../../protocol/server-messages.js';

/** A fixed number of samples, the oldest overwritten first; each node's address as last seen. */
export class HealthHistory {
  readonly #slots: Array<HealthSample | undefined>;
  #next = 0;
  #size = 0;
  readonly #addresses = new Map<string, string>();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity: a positive integer');
    this.#slots = new Array<HealthSample | undefined>(capacity);
  }

  /** Adds the sample taken at `t`; a sample older than the newest kept is ignored (clocks step back). */
  record(t: number, reports: readonly NodeReport[]): void {
    const newest = this.#size === 0 ? undefined : this.#slots[(this.#next - 1 + this.capacity) % this.capacity]!;
    if (newest !== undefined && t <= newest.t) return;
    const nodes: HealthSample['nodes'] = {};
    for (const r of reports) {
      nodes[r.node_id] = { ...r.counters };
      if (r.address) this.#addresses.set(r.node_id, r.address);
    }
    this.#slots[this.#next] = { t, nodes };
    this.#next = (this.#next + 1) % this.capacity;
    this.#size = Math.min(this.#size + 1, this.capacity);
    // Once per turn of the ring, forget the addresses of nodes no kept sample has (nodes come and go).
    if (this.#next === 0) {
      const kept = new Set(this.since(-Infinity).flatMap((sample) => Object.keys(sample.nodes)));
      for (const id of this.#addresses.keys()) if (!kept.has(id)) this.#addresses.delete(id);
    }
  }

  get size(): number {
    return this.#size;
  }

  /** The samples taken at or after `t`, oldest first. */
  since(t: number): HealthSample[] {
    const out: HealthSample[] = [];
    const first = (this.#next - this.#size + this.capacity) % this.capacity;
    for (let i = 0; i < this.#size; i++) {
      const s = this.#slots[(first + i) % this.capacity]!;
      if (s.t >= t) out.push(s);
    }
    return out;
  }

  /** The address of every node that appears in `samples`. */
  addresses(samples: readonly HealthSample[]): Record<string, string> {
    const out: Record<string, string> = {};
    for (const s of samples) for (const id of Object.keys(s.nodes)) out[id] ??= this.#addresses.get(id) ?? '';
    return out;
  }
}
