// A silently dead peer (no FIN, no pongs) is terminated by the heartbeat. Frames
// written to it after its last pong may never have been read, so its session
// resumes from the positions that pong confirmed: nothing is lost, and what is
// replayed twice carries the same event_id.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { connectionCount, eventsOf, eventually, startServer, type ServerMessage } from './helpers.js';

test('a peer that dies silently resumes from its last confirmed pong: no event lost', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t, { heartbeatInterval: 0.2, heartbeatTimeout: 0.2 });
  const tok = await s.token({ sub: 'user_1', roles: ['researcher'] });
  const url = `${s.wsUrl}/ws/monitor/dead-peer?token=${encodeURIComponent(tok)}`;

  // A client that answers protocol pings by hand while "alive", then goes silent and stops reading.
  const ws = new WebSocket(url, { autoPong: false });
  t.after(() => ws.terminate());
  let alive = true;
  const seen: ServerMessage[] = [];
  let pongs = 0;
  ws.on('ping', (data) => {
    if (alive) {
      ws.pong(data);
      pongs++;
    }
  });
  ws.on('message', (raw) => {
    if (alive) seen.push(JSON.parse(raw.toString()) as ServerMessage);
  });
  await once(ws, 'open');
  await eventually(() => seen.some((m) => m.type === 'connection_established'), 3000, 'hello');
  ws.send(JSON.stringify({ type: 'subscribe', data: { type: 'epistemic_updates', agent_id: 'agent_1' } }));
  await eventually(() => seen.some((m) => m.type === 'subscription_confirmed'), 3000, 'confirmation');

  const publish = (seq: number) => s.server.broadcastEpistemicUpdate('agent_1', { confidence_level: 0.5, seq });
  for (let i = 1; i <= 5; i++) await publish(i);
  await eventually(() => seen.filter((m) => m.type === 'epistemic_update').length === 5, 3000, 'first five events');
  // Let at least one ping/pong confirm the first five.
  const pongsBefore = pongs;
  await eventually(() => pongs > pongsBefore, 3000, 'a confirming pong');

  // The peer "dies": it neither answers nor reads. Events written now are lost to it.
  alive = false;
  for (let i = 6; i <= 10; i++) await publish(i);
  await connectionCount(s.server, 0, 5000, 'the heartbeat to terminate the silent peer');

  const { client: c, hello } = await s.open(tok, { session: 'dead-peer' });
  assert.equal(hello.resumed, true);
  assert.equal(hello.recovered, true);
  await publish(11);
  await c.next('epistemic_update', (m) => m.data?.['seq'] === 11);
  const replayed = c.events('epistemic_update').map((m) => m.data?.['seq'] as number);
  // Everything the dead peer never read (6..10) is replayed, in order; nothing from before the confirmed
  // position: the pong awaited above answered a ping that reached the client after event 5, so (TCP being
  // ordered) the server had written 1..5 before that ping and its pong confirmed them.
  assert.deepEqual(replayed, [6, 7, 8, 9, 10]);
  const seenBefore = new Set(
    eventsOf(seen)
      .filter((m) => m.type === 'epistemic_update')
      .map((m) => m.data?.['seq'] as number),
  );
  for (let i = 1; i <= 10; i++) assert.ok(seenBefore.has(i) || replayed.includes(i), `event ${i} lost`);
});
