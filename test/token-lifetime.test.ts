// Token lifetime on long connections: token_expiring before exp, refresh with a
// new token of the same sub, close 4001 without one (exp + grace), close 4003
// for another sub, TOKEN_INVALID for a bad refresh, and permissions re-read
// from the refreshed token. Short-lived tokens (3 s), warning 2 s, grace 0.5 s.
// The tests run concurrently (each has its own server) to keep the wall time short.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { signToken } from '../src/auth/jwt.js';
import { epistemicEvent, eventsOf, sortedByType, startServer, tokenExp, type TestClient } from './helpers.js';

const OVERRIDES = { tokenExpiryWarning: 2, tokenExpiryGrace: 0.5, clockTolerance: 0 };
const LIFETIME = 3;
const GRACE_MS = 500;

/**
 * Drains `c` (see TestClient.drain); token_expiring frames are returned and also
 * stay queued for a later `next` (they may arrive at any moment).
 */
const drain = (c: TestClient) => c.drain({ requeue: (m) => m.type === 'token_expiring' });

/** Resolves to the close event, or to null if the socket is still open after `ms`. */
async function closedWithin(c: TestClient, ms: number): Promise<{ code: number; reason: string } | null> {
  return Promise.race([c.closeEvent, sleep(ms).then(() => null)]);
}

async function untilPast(epochMs: number): Promise<void> {
  const wait = epochMs - Date.now();
  if (wait > 0) await sleep(wait);
}

describe('token lifetime', { concurrency: true }, () => {
  test('token_expiring before exp; a refresh with the same sub keeps the connection open past exp + grace, events still flow', {
    timeout: 60_000,
  }, async (t) => {
    const s = await startServer(t, OVERRIDES);
    const token = await s.token({ sub: 'alice', roles: ['researcher'], expiresInSec: LIFETIME });
    const exp = tokenExp(token);
    const c = await s.connect(token);
    const sub = await c.subscribe({ type: 'epistemic_updates', agent_id: 'agent_1' });
    assert.equal(sub.type, 'subscription_confirmed');

    const warning = await c.next('token_expiring', LIFETIME * 1000 + 1000);
    const warnedAt = Date.now();
    assert.ok(warnedAt < exp * 1000, `token_expiring arrived before exp (${new Date(warnedAt).toISOString()} < ${new Date(exp * 1000).toISOString()})`);
    assert.equal(Date.parse(warning.data.expires_at), exp * 1000, JSON.stringify(warning));
    assert.equal(warning.data.expires_at, new Date(exp * 1000).toISOString());

    const fresh = await s.token({ sub: 'alice', roles: ['researcher'], expiresInSec: 60 });
    c.send({ type: 'refresh', id: 'r1', data: { token: fresh } });
    const refreshed = await c.next(['token_refreshed', 'error']);
    assert.equal(refreshed.type, 'token_refreshed', JSON.stringify(refreshed));
    assert.equal(refreshed.id, 'r1');
    assert.equal(Date.parse(String(refreshed.data.expires_at)), tokenExp(fresh) * 1000);

    // Past the old exp + grace, with margin: still open.
    await untilPast(exp * 1000 + GRACE_MS + 700);
    assert.equal(c.ws.readyState, WebSocket.OPEN);
    assert.equal(await closedWithin(c, 0), null);
    await s.server.publish(epistemicEvent('agent_1', 1));
    const msgs = await drain(c);
    assert.deepEqual(
      eventsOf(msgs).map((m) => m.data?.['seq']),
      [1],
    );
    // No second warning for the old token, and none yet for the new one.
    assert.equal(msgs.filter((m) => m.type === 'token_expiring').length, 0);
  });

  test('without a refresh the server closes with 4001 after exp + grace', { timeout: 60_000 }, async (t) => {
    const s = await startServer(t, OVERRIDES);
    const token = await s.token({ sub: 'bob', roles: ['researcher'], expiresInSec: LIFETIME });
    const exp = tokenExp(token);
    const c = await s.connect(token);
    await c.next('token_expiring', LIFETIME * 1000 + 1000);
    // Still usable until exp.
    const pong = await c.request({ type: 'ping' }, 'pong');
    assert.equal(pong.type, 'pong');
    const closed = await c.closeEvent;
    const closedAt = Date.now();
    assert.equal(closed.code, 4001, JSON.stringify(closed));
    assert.ok(closedAt >= exp * 1000, 'not closed before exp');
  });

  test('a refresh with another sub closes with 4003', { timeout: 60_000 }, async (t) => {
    const s = await startServer(t, OVERRIDES);
    const token = await s.token({ sub: 'carol', roles: ['researcher'], expiresInSec: LIFETIME });
    const c = await s.connect(token);
    await c.next('token_expiring', LIFETIME * 1000 + 1000);
    const other = await s.token({ sub: 'mallory', roles: ['admin'], expiresInSec: 60 });
    c.send({ type: 'refresh', data: { token: other } });
    const closed = await c.closeEvent;
    assert.equal(closed.code, 4003, JSON.stringify(closed));
    assert.equal(c.events('token_refreshed').length, 0);
  });

  test('a refresh with an invalid token gets TOKEN_INVALID; the connection stays open until exp, then closes 4001', { timeout: 60_000 }, async (t) => {
    const s = await startServer(t, OVERRIDES);
    const token = await s.token({ sub: 'dave', roles: ['researcher'], expiresInSec: LIFETIME });
    const exp = tokenExp(token);
    const c = await s.connect(token);
    await c.subscribe({ type: 'epistemic_updates', agent_id: 'agent_1' });
    const forged = await signToken('another-secret-0123456789-abcdefghijklmnop', { sub: 'dave', roles: ['researcher'], expiresInSec: 60 });
    for (const bad of [forged, 'not.a.jwt']) {
      c.send({ type: 'refresh', id: 'bad', data: { token: bad } });
      const err = await c.next(['error', 'token_refreshed']);
      assert.equal(err.type, 'error', JSON.stringify(err));
      assert.equal(err.code, 'TOKEN_INVALID');
      assert.equal(err.id, 'bad');
    }
    assert.equal(c.ws.readyState, WebSocket.OPEN);
    await s.server.publish(epistemicEvent('agent_1', 1));
    assert.deepEqual(
      eventsOf(await drain(c)).map((m) => m.data?.['seq']),
      [1],
      'still delivering before exp',
    );
    const closed = await c.closeEvent;
    assert.equal(closed.code, 4001, 'the bad refresh did not extend the old token');
    assert.ok(Date.now() >= exp * 1000);
  });

  test('a refresh with fewer permissions revokes the subscription it no longer allows; the others continue', { timeout: 60_000 }, async (t) => {
    const s = await startServer(t, OVERRIDES);
    const claims = { sub: 'erin', roles: ['viewer'] };
    const token = await s.token({ ...claims, permissions: ['agent:agent_1:monitor', 'agent:agent_2:monitor'], expiresInSec: LIFETIME });
    const exp = tokenExp(token);
    const c = await s.connect(token);
    for (const data of [{ type: 'epistemic_updates', agent_id: 'agent_1' }, { type: 'epistemic_updates', agent_id: 'agent_2' }, { type: 'agent_status' }]) {
      const r = await c.subscribe(data);
      assert.equal(r.type, 'subscription_confirmed', JSON.stringify(r));
    }
    await s.server.publish(epistemicEvent('agent_1', 1));
    await s.server.publish(epistemicEvent('agent_2', 1));
    assert.deepEqual(
      eventsOf(await drain(c)).map((m) => m.agent_id),
      ['agent_1', 'agent_2'],
    );

    await c.next('token_expiring', LIFETIME * 1000 + 1000);
    const narrower = await s.token({ ...claims, permissions: ['agent:agent_2:monitor'], expiresInSec: 60 });
    c.send({ type: 'refresh', id: 'r2', data: { token: narrower } });
    const refreshed = await c.next(['token_refreshed', 'error']);
    assert.equal(refreshed.type, 'token_refreshed', JSON.stringify(refreshed));
    const revoked = c.events('subscription_revoked');
    assert.equal(revoked.length, 1, JSON.stringify(c.received));
    assert.equal(revoked[0]!.data.subscription_type, 'epistemic_updates');
    assert.equal(revoked[0]!.data.agent_id, 'agent_1');

    const list = await c.expectReply({ type: 'get_subscriptions' }, 'subscriptions_list');
    const subs = sortedByType(list.data.subscriptions);
    assert.deepEqual(subs, [
      { type: 'agent_status', agent_id: null, filters: null },
      { type: 'epistemic_updates', agent_id: 'agent_2', filters: null },
    ]);

    await s.server.publish(epistemicEvent('agent_1', 2));
    await s.server.publish(epistemicEvent('agent_2', 2));
    await s.server.publish({ type: 'agent_status_change', agent_id: 'agent_1', status: 'running' });
    await s.server.publish({ type: 'agent_status_change', agent_id: 'agent_2', status: 'running' });
    assert.deepEqual(
      eventsOf(await drain(c)).map((m) => [m.type, m.agent_id]),
      [
        ['epistemic_update', 'agent_2'],
        ['agent_status_change', 'agent_2'],
      ],
      'nothing of agent_1 any more, through either subscription',
    );
    // Subscribing to agent_1 again is refused under the new token.
    const again = await c.subscribe({ type: 'epistemic_updates', agent_id: 'agent_1' });
    assert.equal(again.type, 'error');
    assert.equal(again.code, 'AGENT_ACCESS_DENIED');

    // And the refreshed token keeps the connection past the old exp.
    await untilPast(exp * 1000 + GRACE_MS + 700);
    assert.equal(c.ws.readyState, WebSocket.OPEN);
    await s.server.publish(epistemicEvent('agent_2', 3));
    assert.deepEqual(
      eventsOf(await drain(c)).map((m) => m.data?.['seq']),
      [3],
    );
  });
});
