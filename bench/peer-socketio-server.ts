// Peer for bench/fanout.ts: a Socket.IO 4 server doing the same job (room per
// agent, producer emits, server broadcasts to the room). Run as its own
// process by bench/fanout.ts; prints its port on stdout.
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const http = createServer();
const io = new Server(http, { transports: ['websocket'], serveClient: false });
io.on('connection', (socket) => {
  socket.on('subscribe', (agentId: string) => void socket.join(`agent:${agentId}`));
  socket.on('publish', (event: { agent_id: string; data: unknown }, ack?: () => void) => {
    io.to(`agent:${event.agent_id}`).emit('epistemic_update', event);
    ack?.();
  });
});
http.listen(0, '127.0.0.1', () => {
  const address = http.address();
  console.log(JSON.stringify({ msg: 'listening', port: typeof address === 'object' && address ? address.port : 0 }));
});
process.on('SIGTERM', () => {
  io.close();
  process.exit(0);
});
