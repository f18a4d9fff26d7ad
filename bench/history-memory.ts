// Issue 3 benchmark: heap cost of history at the defaults (1,000 events per
// stream) for 1,000 agents, with a representative EpistemicState payload.
// Usage: node --expose-gc --import tsx bench/history-memory.ts [agents=1000] [perAgent=1000]
import { MemoryBroker } from '../src/engine/memory/broker.js';
import { envelopeOf } from '../src/server/delivery/publisher.js';
import { sampleEpistemic } from './lib.js';

const AGENTS = Number(process.argv[2] ?? 1000);
const PER_AGENT = Number(process.argv[3] ?? 1000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const broker = new MemoryBroker({ historySize: 1000, historyTtlMs: 3_600_000 });
await broker.start(() => {});
gc();
const before = process.memoryUsage();
let bytes = 0;
for (let a = 0; a < AGENTS; a++) {
  const agentId = `agent_${a}`;
  for (let i = 0; i < PER_AGENT; i++) {
    const data = sampleEpistemic(agentId, i);
    const ev = envelopeOf({ type: 'epistemic_update', agent_id: agentId, data });
    if (a === 0) bytes += JSON.stringify(ev).length;
    await broker.publish([{ stream: `agent:${agentId}`, event: ev }]);
  }
}
gc();
const after = process.memoryUsage();
const total = AGENTS * PER_AGENT;
const heap = after.heapUsed - before.heapUsed;
console.log(
  `history: ${AGENTS} agents × ${PER_AGENT} events = ${total} events; JSON size ≈ ${Math.round(bytes / PER_AGENT)} B/event; ` +
    `heap +${(heap / 2 ** 20).toFixed(0)} MiB (${Math.round(heap / total)} B/event), rss ${(after.rss / 2 ** 20).toFixed(0)} MiB`,
);
broker.close();
