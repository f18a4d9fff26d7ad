// Compression: bytes on the wire and server CPU for typical epistemic events,
// with permessage-deflate off, on (no context takeover: the default when
// enabled) and on with context takeover; each with and without batched
// frames. The server runs in its own process; its CPU time is read from
// /proc (Linux). One agent, SUBSCRIBERS subscribers, EVENTS events published
// over HTTP in batches of 100.
//
// Usage: npm run build && node --import tsx bench/compression.ts [subscribers=200] [events=2000]
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import { epistemicBatch, postEvents, sampleEpistemic, startServerProcess, token } from './lib.js';

const SUBSCRIBERS = Number(process.argv[2] ?? 200);
const EVENTS = Number(process.argv[3] ?? 2000);
const AGENT = 'compress_agent';
const TICKS = 100; // USER_HZ on Linux

/** utime + stime of a process, in ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS;
}

interface Row {
  mode: string;
  batch: boolean;
  wireBytes: number;
  payloadBytes: number;
  serverCpuMs: number;
}

async function run(mode: 'off' | 'on' | 'on+takeover', batch: boolean): Promise<Row> {
  const env: Record<string, string> = {};
  if (mode !== 'off') env['ESCAI_COMPRESSION'] = 'on';
  if (mode === 'on+takeover') env['ESCAI_COMPRESSION_CONTEXT_TAKEOVER'] = 'on';
  const server = await startServerProcess(env);
  try {
    const watcher = await token('watcher', ['researcher']);
    const producer = await token('producer', ['developer']);
    const wsUrl = server.url.replace('http', 'ws');
    const clients: WebSocket[] = [];
    let delivered = 0;
    let payloadBytes = 0;
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const ws = new WebSocket(`${wsUrl}/ws/monitor/c${i}?token=${watcher}${batch ? '&batch=1' : ''}`, { perMessageDeflate: true });
      await once(ws, 'message');
      ws.send(JSON.stringify({ type: 'subscribe', data: { type: 'epistemic_updates', agent_id: AGENT } }));
      await once(ws, 'message');
      ws.on('message', (data: Buffer) => {
        payloadBytes += data.length;
        const text = data.toString();
        let at = text.indexOf('"type":"epistemic_update"');
        while (at >= 0) {
          delivered++;
          at = text.indexOf('"type":"epistemic_update"', at + 1);
        }
      });
      clients.push(ws);
    }
    const socketBytes = () => clients.reduce((n, ws) => n + (ws as unknown as { _socket: { bytesRead: number } })._socket.bytesRead, 0);
    const wireBefore = socketBytes();
    const cpuBefore = cpuMs(server.child.pid!);
    for (let sent = 0; sent < EVENTS; sent += 100) {
      await postEvents(server.url, producer, epistemicBatch(AGENT, sent, 100));
      // Paced by the readers (this one process reads for every subscriber): no client falls behind into the slow-consumer cap.
      const until = Date.now() + 30_000;
      while (delivered < (sent + 100) * SUBSCRIBERS && Date.now() < until) await new Promise((r) => setTimeout(r, 2));
    }
    const deadline = Date.now() + 60_000;
    while (delivered < EVENTS * SUBSCRIBERS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (delivered < EVENTS * SUBSCRIBERS) throw new Error(`only ${delivered} of ${EVENTS * SUBSCRIBERS} delivered`);
    const row = { mode, batch, wireBytes: socketBytes() - wireBefore, payloadBytes, serverCpuMs: cpuMs(server.child.pid!) - cpuBefore };
    for (const ws of clients) ws.terminate();
    return row;
  } finally {
    await server.stop();
  }
}

const rows: Row[] = [];
for (const batch of [false, true]) for (const mode of ['off', 'on', 'on+takeover'] as const) rows.push(await run(mode, batch));
const base = new Map(rows.filter((r) => r.mode === 'off').map((r) => [r.batch, r]));
console.log(`${SUBSCRIBERS} subscribers × ${EVENTS} events (${JSON.stringify(sampleEpistemic(AGENT, 1)).length} B of data each)`);
console.log('| compression | batched | bytes on the wire | per delivery | vs off | server CPU | vs off |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) {
  const b = base.get(r.batch)!;
  console.log(
    `| ${r.mode} | ${r.batch ? 'yes' : 'no'} | ${(r.wireBytes / 2 ** 20).toFixed(1)} MiB | ${(r.wireBytes / (EVENTS * SUBSCRIBERS)).toFixed(0)} B | ${((100 * r.wireBytes) / b.wireBytes).toFixed(0)} % | ${r.serverCpuMs.toFixed(0)} ms | ${(r.serverCpuMs / b.serverCpuMs).toFixed(2)}× |`,
  );
}
process.exit(0);
