// Scenario "filters": 100 agents × 100 subscribers, each subscriber on one
// agent with a server-side filter; each agent's events alternate confidence
// 0.7 / 0.3, so half match `{"confidence_level":{"min":0.5}}`. ESCAI only
// (the peers have no filters). Add a variant (e.g. a compound filter) with
// one line in VARIANTS.
import type { Plan } from '../harness/measure.js';
import { median, int, ratio, type Check, type Table } from '../harness/results.js';
import type { Kind } from '../harness/wire.js';
import type { Context } from './context.js';
import { HEAD, measurePlan, rowsOf } from './fanout.js';

/** Filter variants: name → [filter, share of the events it matches]. */
export const VARIANTS: ReadonlyArray<{ name: string; filters: Record<string, unknown>; matching: number }> = [
  { name: 'confidence_level min 0.5', filters: { confidence_level: { min: 0.5 } }, matching: 0.5 },
];

export async function filters(ctx: Context): Promise<{ tables: Table[]; checks: Check[] }> {
  const agentsN = ctx.quick ? 10 : 100;
  const perAgent = ctx.quick ? 10 : 100;
  const agents = Array.from({ length: agentsN }, (_, i) => `filter_agent_${i}`);
  const kinds: Kind[] = ['escai', 'escai-batch'];
  const tables: Table[] = [];
  for (const v of VARIANTS) {
    const plan: Plan = {
      subscribers: agentsN * perAgent,
      agents,
      specs: agents.map((agent) => ({ agent, filters: v.filters })),
      perEvent: perAgent * v.matching,
      perAgent,
    };
    const series = await measurePlan(ctx, plan, kinds, `filters (${v.name})`);
    const [u, b] = series;
    tables.push({
      title: `${agentsN} agents × ${perAgent} subscribers, filter ${JSON.stringify(v.filters)} (${Math.round(v.matching * 100)} % of events match)`,
      head: HEAD,
      rows: rowsOf(series),
      notes: [
        'Deliveries count matching events only; the producer cycles through the agents.',
        u && b
          ? `Batched / unbatched capacity: ${ratio(median(b.capacity), median(u.capacity))} (${int(median(b.capacity))} vs ${int(median(u.capacity))}).`
          : '',
      ].filter(Boolean),
    });
  }
  return { tables, checks: [] };
}
