// Peer for `npm run bench`: the raw `ws` floor. The least a WebSocket server
// can do for the same job: `noServer` + the http upgrade (as ESCAI does), a
// first message, a room per agent on subscribe (confirmed), and on a
// producer's publish one serialization (a Buffer) sent to every member of the
// room, then an acknowledgement. No auth, validation, filters or history.
// Run as its own process; prints {"msg":"listening","port":N} on stdout.
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';

interface ClientMessage {
  type: string;
  data?: { agent_id?: string; type?: string };
}

const rooms = new Map<string, Set<WebSocket>>();
const HELLO = Buffer.from('{"type":"connection_established"}');
const CONFIRMED = Buffer.from('{"type":"subscription_confirmed"}');
const ACK = Buffer.from('{"type":"publish_confirmed"}');

const http = createServer((_req, res) => res.writeHead(404).end());
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

http.on('upgrade', (req, socket, head) => {
  if (!req.url?.startsWith('/ws')) return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws));
});

function onConnection(ws: WebSocket): void {
  const joined: string[] = [];
  ws.send(HELLO);
  ws.on('message', (raw: Buffer) => {
    const msg = JSON.parse(raw.toString()) as ClientMessage;
    const agent = msg.data?.agent_id;
    if (!agent) return;
    if (msg.type === 'subscribe') {
      let room = rooms.get(agent);
      if (!room) rooms.set(agent, (room = new Set()));
      room.add(ws);
      joined.push(agent);
      ws.send(CONFIRMED);
    } else if (msg.type === 'publish') {
      const frame = Buffer.from(JSON.stringify(msg.data));
      for (const member of rooms.get(agent) ?? []) member.send(frame);
      ws.send(ACK);
    }
  });
  ws.on('close', () => {
    for (const agent of joined) rooms.get(agent)?.delete(ws);
  });
}

http.listen(0, '127.0.0.1', () => {
  const address = http.address();
  console.log(JSON.stringify({ msg: 'listening', port: typeof address === 'object' && address ? address.port : 0 }));
});
process.on('SIGTERM', () => {
  for (const ws of wss.clients) ws.terminate();
  http.close();
  process.exit(0);
});
