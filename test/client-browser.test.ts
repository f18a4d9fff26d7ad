// The SDK in a real browser (Debian's Chromium, driven by playwright-core):
// the same code base as in Node, bundled from src/client with esbuild and
// using the browser's own WebSocket. Skips loudly without Chromium; CI
// requires it (ESCAI_TEST_REQUIRE=browser).
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { connectionCount, eventually, startServer } from './helpers.js';
import { launchBrowser, needBrowser } from './browser-support.js';

const PAGE = `<!doctype html><meta charset="utf-8"><title>sdk</title>
<script type="module">
  import { EscaiClient } from '/sdk.js';
  const q = new URLSearchParams(location.search);
  const log = (window.__log = { states: [], seqs: [], failures: [] });
  const client = new EscaiClient({ url: q.get('server'), token: q.get('token'), sessionId: 'browser-1', minReconnectDelay: 20, maxReconnectDelay: 200 });
  client.on('state', ({ newState }) => log.states.push(newState));
  client.on('epistemic_update', (e) => log.seqs.push(e.data.seq));
  client.on('recovery_failed', ({ reason }) => log.failures.push(reason));
  client.connect();
  client.subscribe('epistemic_updates', { agentId: 'agent_1' }).then(() => (log.subscribed = true));
  window.__client = client;
</script>`;

test('the SDK runs in Chromium with the browser WebSocket: subscribes, receives, survives a dropped connection without loss', {
  timeout: 60_000,
}, async (t) => {
  if (!needBrowser(t)) return;
  const bundle = await build({
    entryPoints: [fileURLToPath(new URL('../src/client/index.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
  });
  const sdk = bundle.outputFiles[0]!.text;
  assert.doesNotMatch(sdk, /from ["'](ws|zod|node:)/, 'the browser bundle pulls in no Node or server module');

  const s = await startServer(t);
  const pages = createServer((req, res) => {
    if (req.url?.startsWith('/sdk.js')) res.writeHead(200, { 'content-type': 'text/javascript' }).end(sdk);
    else res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
  });
  pages.listen(0, '127.0.0.1');
  await once(pages, 'listening');
  t.after(() => pages.close());

  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  const token = await s.token({ sub: 'browser_user', roles: ['researcher'] });
  const { port } = pages.address() as AddressInfo;
  await page.goto(`http://127.0.0.1:${port}/?server=${encodeURIComponent(s.wsUrl)}&token=${encodeURIComponent(token)}`);
  const log = () =>
    page.evaluate(() => (globalThis as unknown as { __log: { states: string[]; seqs: number[]; failures: string[]; subscribed?: boolean } }).__log);
  await eventually(async () => (await log()).subscribed === true, 10_000, 'the page to subscribe');

  const publish = (seq: number) => s.server.broadcastEpistemicUpdate('agent_1', { confidence_level: 0.7, seq });
  for (let seq = 1; seq <= 20; seq++) await publish(seq);
  // Drop the browser's connection from the server side mid-stream; keep publishing while it reconnects.
  for (const conn of s.server.connections.values()) conn.terminate();
  for (let seq = 21; seq <= 40; seq++) await publish(seq);
  await eventually(async () => (await log()).seqs.length >= 40, 10_000, 'all 40 events in the page');
  const final = await log();
  assert.deepEqual(
    final.seqs,
    Array.from({ length: 40 }, (_, i) => i + 1),
    'every event once, in order',
  );
  assert.deepEqual(final.failures, []);
  assert.ok(final.states.filter((st) => st === 'connected').length >= 2, `reconnected: ${final.states.join(',')}`);
  assert.deepEqual(errors, []);

  await page.evaluate(() => (globalThis as unknown as { __client: { close(): void } }).__client.close());
  await connectionCount(s.server, 0, 5000, 'close() to close the socket');
  assert.equal((await log()).states.at(-1), 'closed');
});
