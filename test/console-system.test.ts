// The console's System view in a real browser (Debian's Chromium via
// playwright-core) against the real CLI in dev mode: at 1400 px the Nodes
// table stays inside its card (and at phone width it scrolls inside it, the
// page does not), the chart legends show the latest values without a hover,
// after a visit to another view the charts come back with their samples in
// the very first render, and the very first open draws the minutes before it
// from the server's history. Screenshots go to test/output/ (git-ignored).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { devServer, launchBrowser, needBrowser } from './browser-support.js';
import { REPO_ROOT } from './cli-process.js';
import { api, eventually } from './helpers.js';

const OUTPUT = join(REPO_ROOT, 'test', 'output');
const BUNDLE = join(REPO_ROOT, 'dist', 'dashboard', 'app.js');

// The page's DOM, typed just enough for the functions evaluated in it (the test's tsconfig has no DOM lib).
interface Box {
  left: number;
  right: number;
  width: number;
}
interface El {
  scrollWidth: number;
  clientWidth: number;
  textContent: string | null;
  dataset: Record<string, string | undefined>;
  getBoundingClientRect(): Box;
  closest(selector: string): El | null;
  querySelector(selector: string): El | null;
  querySelectorAll(selector: string): ArrayLike<El>;
}
interface Win {
  innerWidth: number;
  document: El & { documentElement: El; body: El };
  MutationObserver: new (cb: () => void) => { observe(target: El, options: { childList: boolean; subtree: boolean }): void; disconnect(): void };
  __systemFirstRender?: SystemRender;
}

/** What the System view shows: its sample count, each chart's points, each chart's legend values. */
interface SystemRender {
  samples: number;
  points: number[];
  legends: string[][];
}

/** The Nodes card's geometry: overflow of the card itself, of the table's scroller, and of the page. */
interface NodesLayout {
  viewport: number;
  pageOverflow: number;
  cardLeft: number;
  cardRight: number;
  cardOverflow: number;
  scrollerRight: number;
  scrollerOverflow: number;
  tableWidth: number;
  rows: number;
}

async function nodesLayout(page: Page): Promise<NodesLayout> {
  return page.evaluate(() => {
    const w = globalThis as unknown as Win;
    const card = w.document.querySelector('[data-testid="system-nodes"]')!;
    const table = card.querySelector('table')!;
    const scroller = table.closest('.table-wrap') ?? table;
    const c = card.getBoundingClientRect();
    return {
      viewport: w.innerWidth,
      pageOverflow: w.document.documentElement.scrollWidth - w.innerWidth,
      cardLeft: c.left,
      cardRight: c.right,
      cardOverflow: card.scrollWidth - card.clientWidth,
      scrollerRight: scroller.getBoundingClientRect().right,
      scrollerOverflow: scroller.scrollWidth - scroller.clientWidth,
      tableWidth: table.getBoundingClientRect().width,
      rows: table.querySelectorAll('tbody tr').length,
    };
  });
}

/** Reads the System view as it is now (in the page, so nothing changes between the figures). */
function readSystem(): SystemRender | null {
  const w = globalThis as unknown as Win;
  const view = w.document.querySelector('[data-testid="system"]');
  if (!view) return null;
  const charts = Array.from(view.querySelectorAll('.chart'));
  return {
    samples: Number(view.dataset['samples']),
    points: charts.map((c) => Number(c.dataset['points'])),
    legends: charts.map((c) => Array.from(c.querySelectorAll('.u-legend .u-value')).map((v) => (v.textContent ?? '').trim())),
  };
}

/** The first chart's legend time, read in the page (self-contained: Playwright sends its source). */
function legendTime(): string {
  return (globalThis as unknown as Win).document.querySelector('[data-testid="system"] .chart .u-legend .u-value')?.textContent ?? '';
}

const NUMBER = /^-?[\d.,\s\u202f]+$/;
const TIME = /\d{1,2}:\d\d:\d\d/;

/** Every legend reads a value: the time first, then a number per series (no `--`). */
function legendsRead(legends: readonly string[][]): boolean {
  return legends.length === 3 && legends.every((values) => values.length >= 2 && TIME.test(values[0]!) && values.slice(1).every((v) => NUMBER.test(v)));
}

test('the System view: the Nodes table stays in its card at 1400 px and phone width, legends show the latest values, the charts keep their samples across views', {
  timeout: 90_000,
}, async (t) => {
  if (!needBrowser(t)) return;
  assert.ok(existsSync(BUNDLE), `the console bundle is built (${BUNDLE}); run npm run build:console`);
  mkdirSync(OUTPUT, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'escai-console-system-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { link } = await devServer(t, dir);

  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(msg.text());
  });

  await page.goto(link);
  await page.waitForSelector('[data-testid="fleet"]', { timeout: 20_000 });
  // In-app navigation, as a person clicks it: the page (and the console's module state) stays.
  await page.click('nav a[href="#/system"]');
  await page.waitForSelector('[data-testid="system-nodes"] tbody tr', { timeout: 10_000 });
  // Rates need two polls (every 2 s); a few give each chart a line.
  await page.waitForFunction(
    () => Number((globalThis as unknown as Win).document.querySelector('[data-testid="system"]')?.dataset['samples']) >= 4,
    undefined,
    { timeout: 20_000 },
  );

  // ---- 1400 px: the Nodes card holds its table, with every column in view (no scroller needed)
  const wide = await nodesLayout(page);
  assert.ok(wide.rows >= 1, 'a row per node');
  assert.ok(wide.cardOverflow <= 0, `nothing spills out of the Nodes card at 1400 px: ${JSON.stringify(wide)}`);
  assert.ok(wide.scrollerRight <= wide.cardRight + 0.5, `the table's box ends inside the card: ${JSON.stringify(wide)}`);
  assert.ok(wide.scrollerOverflow <= 0, `at 1400 px the columns fit without scrolling: ${JSON.stringify(wide)}`);
  assert.ok(wide.cardRight <= wide.viewport && wide.pageOverflow <= 0, `the card lies within the window: ${JSON.stringify(wide)}`);

  // ---- legends: the latest values without hovering (the mouse stays off the charts)
  await page.mouse.move(1, 1);
  await page.waitForFunction(
    () => (globalThis as unknown as Win).document.querySelectorAll('[data-testid="system"] .chart .u-legend').length === 3,
    undefined,
    { timeout: 5000 },
  );
  const shown = (await page.evaluate(readSystem))!;
  assert.ok(legendsRead(shown.legends), `each legend reads the latest values, not --: ${JSON.stringify(shown.legends)}`);
  // The latest value is the last point's: the open-connections legend says how many are open (this page's one at least).
  assert.ok(Number(shown.legends[0]![1]!.replace(/\D/g, '')) >= 1, `open connections in the legend: ${shown.legends[0]![1]}`);
  await page.screenshot({ path: join(OUTPUT, 'console-system-1400.png') });
  // A hover still reads the hovered point (the first one, at the plot's left edge); leaving shows the latest again.
  const latestTime = shown.legends[0]![0]!;
  const plot = (await page.locator('[data-testid="system"] .chart .u-over').first().boundingBox())!;
  await page.mouse.move(plot.x + 1, plot.y + plot.height / 2);
  const timeIsNot = (other: string) =>
    (globalThis as unknown as Win).document.querySelector('[data-testid="system"] .chart .u-legend .u-value')?.textContent !== other;
  await page.waitForFunction(timeIsNot, latestTime, { timeout: 5000 });
  const hovered = await page.evaluate(legendTime);
  assert.match(hovered, TIME, 'the hovered time');
  await page.mouse.move(1, 1);
  await page.waitForFunction(timeIsNot, hovered, { timeout: 5000 });
  assert.ok(legendsRead((await page.evaluate(readSystem))!.legends), 'off the plot again, the legends read the latest values');

  // ---- away and back: the first render of the System view already holds the samples polled before
  await page.click('nav a[href="#/connections"]');
  await page.waitForSelector('[data-testid="connections"]');
  assert.equal(await page.locator('[data-testid="system"]').count(), 0, 'the System view is gone');
  const before = shown.samples;
  await page.evaluate(() => {
    const w = globalThis as unknown as Win;
    delete w.__systemFirstRender;
    // Called right after the render that inserts the view, before its effects (and so its first poll) run.
    const seen = new w.MutationObserver(() => {
      const view = w.document.querySelector('[data-testid="system"]');
      if (!view) return;
      seen.disconnect();
      const charts = Array.from(view.querySelectorAll('.chart'));
      w.__systemFirstRender = { samples: Number(view.dataset['samples']), points: charts.map((c) => Number(c.dataset['points'])), legends: [] };
    });
    seen.observe(w.document.body, { childList: true, subtree: true });
  });
  await page.click('nav a[href="#/system"]');
  await page.waitForFunction(() => (globalThis as unknown as Win).__systemFirstRender !== undefined, undefined, { timeout: 5000 });
  const first = (await page.evaluate(() => (globalThis as unknown as Win).__systemFirstRender))!;
  assert.ok(first.samples >= before, `the view came back with the ${before} samples it had (${first.samples} in its first render)`);
  assert.equal(first.points.length, 3, 'three charts');
  assert.ok(
    first.points.every((n) => n >= before - 1),
    `every chart has its points at once: ${JSON.stringify(first.points)} (levels: one per sample, rates: one per pair of samples)`,
  );
  await page.waitForFunction(
    () => (globalThis as unknown as Win).document.querySelectorAll('[data-testid="system"] .chart .u-legend').length === 3,
    undefined,
    { timeout: 5000 },
  );
  const back = (await page.evaluate(readSystem))!;
  assert.ok(legendsRead(back.legends), `the legends read values at once after coming back: ${JSON.stringify(back.legends)}`);

  // ---- phone width: the table scrolls inside its card; neither the card nor the page spills over
  await page.setViewportSize({ width: 390, height: 844 });
  // The charts follow their boxes on the next frame (a ResizeObserver): wait until each fits before measuring.
  await page.waitForFunction(
    () => {
      const w = globalThis as unknown as Win;
      const charts = Array.from(w.document.querySelectorAll('[data-testid="system"] .chart'));
      return (
        w.innerWidth === 390 &&
        charts.length === 3 &&
        charts.every((c) => (c.querySelector('.uplot')?.getBoundingClientRect().width ?? Infinity) <= c.clientWidth)
      );
    },
    undefined,
    { timeout: 5000 },
  );
  const narrow = await nodesLayout(page);
  assert.ok(narrow.cardOverflow <= 0, `nothing spills out of the Nodes card at phone width: ${JSON.stringify(narrow)}`);
  assert.ok(narrow.cardLeft >= 0 && narrow.cardRight <= narrow.viewport, `the card lies within the window: ${JSON.stringify(narrow)}`);
  assert.ok(narrow.scrollerRight <= narrow.cardRight + 0.5, `the table's scroller ends inside the card: ${JSON.stringify(narrow)}`);
  assert.ok(narrow.pageOverflow <= 0, `no sideways scrolling of the page: ${JSON.stringify(narrow)}`);
  t.diagnostic(`Nodes card at 1400 px: ${JSON.stringify(wide)}; at 390 px: ${JSON.stringify(narrow)}`);
  // The window, not the full page: a full-page capture paints the sticky header mid-page.
  await page.evaluate(() => (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 1e6));
  await page.screenshot({ path: join(OUTPUT, 'console-system-phone.png') });
  await page.locator('[data-testid="system-nodes"]').screenshot({ path: join(OUTPUT, 'console-system-phone-nodes.png') });

  assert.deepEqual(errors, [], 'no page or console errors');
});

test("the System view, opened for the first time, draws the last minutes from the server's history", { timeout: 90_000 }, async (t) => {
  if (!needBrowser(t)) return;
  assert.ok(existsSync(BUNDLE), `the console bundle is built (${BUNDLE}); run npm run build:console`);
  const dir = mkdtempSync(join(tmpdir(), 'escai-console-history-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { port, link } = await devServer(t, dir);
  const base = { url: `http://127.0.0.1:${port}` };
  // The server has sampled itself a few times (every 2 s) before anyone looks.
  let held = 0;
  await eventually(
    async () => (held = (await api<{ samples: unknown[] }>(base, 'GET', '/ws/health/history')).body.samples.length) >= 4,
    30_000,
    'four samples in the history',
  );

  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  await page.goto(link);
  await page.waitForSelector('[data-testid="fleet"]', { timeout: 20_000 });
  const opened = Date.now() / 1000;
  await page.click('nav a[href="#/system"]');
  // Polls alone would hold one sample per 2 s from now on; the history brings the ones taken before.
  await page.waitForFunction((n) => Number((globalThis as unknown as Win).document.querySelector('[data-testid="system"]')?.dataset['samples']) >= n, held, {
    timeout: 10_000,
  });
  const since = Number(await page.getAttribute('[data-testid="system"]', 'data-since'));
  assert.ok(since < opened - 4, `the oldest sample drawn (${since}) predates the view's first open (${opened}) by the history's reach`);
  const points = await page.locator('[data-testid="system"] .chart').evaluateAll((charts) => charts.map((c) => Number((c as unknown as El).dataset['points'])));
  assert.ok(points.length === 3 && points.every((n) => n >= held - 1), `every chart has the history's points: ${JSON.stringify(points)}`);
  assert.deepEqual(errors, [], 'no page errors');
});
