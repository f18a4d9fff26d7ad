// Runnable SDK example: watch agent_1's epistemic updates and publish a few.
// Start the server first (`npm start`), then:
//   ESCAI_TOKEN=<admin token printed by the server> node --import tsx examples/watch.ts
import WebSocket from 'ws';
import { EscaiClient } from '../src/client/index.js';

const token = process.env['ESCAI_TOKEN'];
if (!token) throw new Error('set ESCAI_TOKEN to a token with websocket:subscribe and events:publish (the dev admin token works)');

const client = new EscaiClient({
  url: process.env['ESCAI_URL'] ?? 'ws://127.0.0.1:8000',
  getToken: () => token, // called before every (re)connect and on token_expiring
  WebSocket,
});

client.on('state', ({ oldState, newState }) => console.log(`state: ${oldState} → ${newState}`));
client.on('disconnected', ({ code, reason, willReconnect }) => console.log(`disconnected ${code} ${reason} (reconnect: ${willReconnect})`));
client.on('recovery_failed', ({ subscription, reason }) => console.log(`missed events on ${subscription.type}/${subscription.agentId}: ${reason}; reload`));
client.on('epistemic_update', (event) => console.log(`#${event.offset} ${event.agent_id} confidence=${String(event.data?.['confidence_level'])}`));

client.connect();
await client.subscribe('epistemic_updates', { agentId: 'agent_1', filters: { confidence_level: { min: 0.5 } } });
for (const confidence of [0.2, 0.6, 0.9]) {
  await client.publish({ type: 'epistemic_update', agent_id: 'agent_1', data: { confidence_level: confidence, uncertainty_score: 1 - confidence } });
}
setTimeout(() => client.close(), 500);
