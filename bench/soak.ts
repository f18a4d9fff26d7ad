// Soak: two nodes on Redis for a long time under everything at once:
// connection churn (with session resume), steady traffic, slow consumers that
// never read, and the nodes' Redis connections killed now and then. Samples
// each node's RSS, heap, connections and event-loop delay (from its own
// /metrics) and checks what clients received (gaps, duplicates, recovery
// reports). Not part of CI: run it, read the table, record the figures.
//
// Usage: npm run build && node --import tsx bench/soak.ts [minutes=30] [--quick]
//   --quick: one minute, smaller load (a smoke run of the script itself).
import { randomUUID } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { startServerProcess, token, type ServerProcess } from './lib.js';

const quick = process.argv.includes('--quick');
const minutes = quick ? 1 : Number(process.argv.slice(2).find((a) => /^\d+(\.\d+)?$/.test(a)) ?? 30);
const REDIS_URL = process.env['ESCAI_SOAK_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const AGENTS = quick ? 10 : 50;
const SUBSCRIBERS = quick ? 40 : 300;
const EVENTS_PER_SECOND = quick ? 50 : 300;
const CHURN_PER_SECOND = quick ? 2 : 10;
const SLOW_CONSUMERS = 3;
const KILL_EVERY_MS = quick ? 20_000 : 60_000;
const SAMPLE_EVERY_MS = quick ? 5_000 : 30_000;

interface Sub {
  ws: WebSocket;
  session: string;
  agent: string;
  /** Last offset seen and its epoch: gaps and duplicates are counted against it. */
  last?: { offset: number; epoch: string };
  closed: boolean;
}

const stats = { received: 0, duplicates: 0, gaps: 0, recoveryFailed: 0, resumed: 0, fresh: 0, published: 0, publishErrors: 0, redisKills: 0 };

function metric(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

async function sample(nodes: ServerProcess[], started: number): Promise<string[]> {
  const rows: string[] = [];
  for (const [i, node] of nodes.entries()) {
    const text = await (await fetch(`${node.url}/metrics`)).text();
    const mib = (v: number | undefined) => (v === undefined ? '–' : (v / 2 ** 20).toFixed(1));
    rows.push(
      [
        ((Date.now() - started) / 60_000).toFixed(1).padStart(5),
        `node ${i}`,
        `rss ${mib(metric(text, 'process_resident_memory_bytes'))} MiB`,
        `heap ${mib(metric(text, 'nodejs_heap_size_used_bytes'))} MiB`,
        `conns ${metric(text, 'escai_connections')}`,
        `slow closes ${metric(text, 'escai_slow_consumer_closes_total')}`,
        `loop p99 ${((metric(text, 'nodejs_eventloop_lag_p99_seconds') ?? 0) * 1000).toFixed(1)} ms`,
      ].join('  '),
    );
  }
  return rows;
}

async function main(): Promise<void> {
  const prefix = `escai-soak-${Date.now().toString(36)}`;
  // Default heartbeat (30 s + 10 s): a client that stops reading fills its send buffer (1 MiB) long before
  // the heartbeat would give up on it, so slow consumers are cut off as slow consumers (4008).
  const env = {
    ESCAI_REDIS_URL: REDIS_URL,
    ESCAI_REDIS_PREFIX: prefix,
    ESCAI_HANDSHAKE_RATE: '10000',
    ESCAI_MAX_CONNECTIONS_PER_IP: '100000',
    ESCAI_REST_RATE_LIMIT: '1000000',
  };
  const nodes = [await startServerProcess(env), await startServerProcess(env)];
  const admin = new Redis(REDIS_URL);
  const watcher = await token('soak-watcher', ['researcher']);
  const producer = await token('soak-producer', ['developer']);
  const subs = new Set<Sub>();
  const started = Date.now();
  const deadline = started + minutes * 60_000;
  console.log(
    `soak: ${minutes} min, 2 nodes on ${REDIS_URL} (prefix ${prefix}), ${AGENTS} agents, ${SUBSCRIBERS} subscribers, ${EVENTS_PER_SECOND} events/s, churn ${CHURN_PER_SECOND}/s, ${SLOW_CONSUMERS} slow consumers, a Redis connection killed every ${KILL_EVERY_MS / 1000} s`,
  );

  const open = (session = `soak-${randomUUID()}`, agent = `agent-${Math.floor(Math.random() * AGENTS)}`): void => {
    const node = nodes[Math.floor(Math.random() * nodes.length)]!;
    const ws = new WebSocket(`${node.url.replace('http', 'ws')}/ws/monitor/${session}?token=${watcher}`);
    const sub: Sub = { ws, session, agent, closed: false };
    subs.add(sub);
    ws.on('error', () => {});
    ws.on('close', () => {
      sub.closed = true;
      subs.delete(sub);
    });
    ws.on('message', (raw) => {
      const msg = JSON.parse(raw.toString()) as { type: string; offset?: number; epoch?: string; resumed?: boolean };
      if (msg.type === 'connection_established') {
        if (msg.resumed) stats.resumed++;
        else {
          stats.fresh++;
          ws.send(JSON.stringify({ type: 'subscribe', data: { type: 'epistemic_updates', agent_id: agent } }));
        }
      } else if (msg.type === 'epistemic_update') {
        stats.received++;
        const last = sub.last;
        if (last && last.epoch === msg.epoch) {
          if (msg.offset! <= last.offset) stats.duplicates++;
          else if (msg.offset! > last.offset + 1) stats.gaps++;
        }
        sub.last = { offset: msg.offset!, epoch: msg.epoch! };
      } else if (msg.type === 'recovery_failed') stats.recoveryFailed++;
      else if (msg.type === 'ping') ws.send('{"type":"pong"}');
    });
  };
  for (let i = 0; i < SUBSCRIBERS; i++) open();

  // Slow consumers: a handshake, an all-agents subscription, then never a byte read; the node cuts them off
  // (4008) once their unsent bytes pass the cap. A paused socket never sees its close, so they are replaced
  // on a timer; the cut-offs are counted by the nodes (escai_slow_consumer_closes_total).
  let slow: Socket[] = [];
  const openSlow = (i: number): Socket => {
    const node = nodes[i % nodes.length]!;
    const socket = tcpConnect(Number(new URL(node.url).port), '127.0.0.1', () => {
      socket.write(
        [
          `GET /ws/monitor/slow-${randomUUID()}?token=${watcher} HTTP/1.1`,
          'Host: x',
          'Upgrade: websocket',
          'Connection: Upgrade',
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
          'Sec-WebSocket-Version: 13',
          '',
          '',
        ].join('\r\n'),
      );
      const payload = Buffer.from(JSON.stringify({ type: 'subscribe', data: { type: 'epistemic_updates' } }));
      const mask = Buffer.from([1, 2, 3, 4]);
      const masked = Buffer.from(payload.map((b, k) => b ^ mask[k % 4]!));
      setTimeout(() => socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked])), 200);
      socket.pause();
    });
    socket.on('error', () => {});
    return socket;
  };
  const renewSlow = (): void => {
    for (const socket of slow) socket.destroy();
    slow = Array.from({ length: SLOW_CONSUMERS }, (_, i) => openSlow(i));
  };
  renewSlow();
  // Long enough to fill the kernel's socket buffers (several MiB on loopback) and then the 1 MiB cap at the full rate.
  const slowTimer = setInterval(renewSlow, quick ? 60_000 : 150_000);

  // Traffic: batches every 100 ms, alternating nodes.
  let seq = 0;
  const traffic = setInterval(() => {
    const node = nodes[seq % nodes.length]!;
    const batch = Array.from({ length: Math.max(1, Math.round(EVENTS_PER_SECOND / 10)) }, () => {
      seq++;
      return { type: 'epistemic_update', agent_id: `agent-${seq % AGENTS}`, data: { confidence_level: (seq % 100) / 100, seq, pad: 'x'.repeat(300) } };
    });
    fetch(`${node.url}/api/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${producer}`, 'content-type': 'application/json' },
      body: JSON.stringify(batch),
    }).then(
      (res) => {
        if (res.status === 202) stats.published += batch.length;
        else stats.publishErrors++;
        return res.arrayBuffer();
      },
      () => stats.publishErrors++,
    );
  }, 100);

  // Churn: close some (half of them come back with the same session id: resume), open others.
  const churn = setInterval(() => {
    const list = [...subs];
    for (let i = 0; i < CHURN_PER_SECOND && list.length > 0; i++) {
      const victim = list.splice(Math.floor(Math.random() * list.length), 1)[0]!;
      const { session, agent } = victim;
      if (Math.random() < 0.5) victim.ws.terminate();
      else victim.ws.close();
      if (Math.random() < 0.5) setTimeout(() => open(session, agent), 200);
      else open();
    }
  }, 1000);

  // Redis trouble: one node's subscriber or commands connection killed now and then.
  const kills = setInterval(() => {
    void (async () => {
      const list = (await admin.call('CLIENT', 'LIST')) as string;
      const ours = list.split('\n').filter((l) => / name=escai:.*:(sub|cmd) /.test(l));
      const victim = ours[Math.floor(Math.random() * ours.length)];
      const id = victim && /\bid=(\d+)/.exec(victim)?.[1];
      if (id) {
        await admin.call('CLIENT', 'KILL', 'ID', id);
        stats.redisKills++;
      }
    })().catch(() => {});
  }, KILL_EVERY_MS);

  const samples: string[] = [];
  while (Date.now() < deadline) {
    await sleep(Math.min(SAMPLE_EVERY_MS, deadline - Date.now()));
    const rows = await sample(nodes, started);
    samples.push(...rows);
    console.log(rows.join('\n'));
    console.log(`      clients ${subs.size} open; ${JSON.stringify(stats)}`);
  }
  clearInterval(traffic);
  clearInterval(churn);
  clearInterval(kills);
  clearInterval(slowTimer);
  for (const sub of subs) sub.ws.terminate();
  for (const socket of slow) socket.destroy();
  await sleep(500);
  const end = await sample(nodes, started);
  console.log(`\nend of soak (${minutes} min):\n${end.join('\n')}\n${JSON.stringify(stats)}`);
  for (const node of nodes) await node.stop();
  // Leave nothing behind in Redis.
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await admin.del(...keys);
  } while (cursor !== '0');
  admin.disconnect();
}

await main();
