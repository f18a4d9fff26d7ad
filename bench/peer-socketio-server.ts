// Peer for bench/fanout.ts and `npm run bench`: a Socket.IO 4 server doing
// the same job (room per agent, producer emits, server broadcasts to the
// room). `subscribe` and `publish` are acknowledged when the client asks for
// an ack (the harness waits for the join before it counts a connect as done).
// Run as its own process; prints its port on stdout.
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const http = createServer();
const io = new Server(http, { transports: ['websocket'], serveClient: false });
io.on('connection', (socket) => {
  socket.on('subscribe', (agentId: string, ack?: () => void) => {
    void socket.join(`agent:${agentId}`);
    ack?.();
  });
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
