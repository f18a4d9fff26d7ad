import assert from 'node:assert/strict';
import { test } from 'node:test';
import { epistemic, startServer } from './helpers.js';

test('subscribe, receive a filtered event, ping/pong', { timeout: 60_000 }, async (t) => {
  const s = await startServer(t);
  const c = await s.connect({ roles: ['researcher'] });
  const conf = await c.subscribe({ type: 'epistemic_updates', agent_id: 'agent_1', filters: { confidence_level: { min: 0.8 } } });
  assert.equal(conf.type, 'subscription_confirmed');
  assert.equal(conf.data.subscription_type, 'epistemic_updates');
  assert.equal(conf.data.agent_id, 'agent_1');
  assert.deepEqual(conf.data.filters, { confidence_level: { min: 0.8 } });
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.5)), 0);
  assert.equal(await s.server.broadcastEpistemicUpdate('agent_1', epistemic('agent_1', 0.9)), 1);
  const ev = await c.next('epistemic_update');
  assert.equal(ev.data?.['confidence_level'], 0.9);
  assert.equal(ev.offset, 2);
  const pong = await c.request({ type: 'ping' }, 'pong');
  assert.equal(pong.type, 'pong');
});
