// Browser test support: Debian's Chromium driven by playwright-core (never a
// downloaded browser), with the flags every browser test uses, and the
// dev-mode CLI server the console tests open it against.
import { existsSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { runCli, type CliProcess } from './cli-process.js';
import { need } from './require.js';

export const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** True when Chromium is installed; otherwise skips the test (or fails it where a browser is required). */
export function needBrowser(t: TestContext): boolean {
  return need(t, 'browser', existsSync(CHROMIUM), `${CHROMIUM} not installed (apt-get install chromium)`);
}

/** Launches Chromium headless; the caller closes it. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
}

/**
 * A dev-mode server (no secret: it creates one in `dir`) with the demo agents
 * stepping five times a second, as `npm start` runs it; `env` adds settings.
 */
export async function devServer(
  t: TestContext,
  dir: string,
  port = 0,
  env: Record<string, string> = {},
): Promise<{ proc: CliProcess; port: number; link: string }> {
  const proc = runCli(
    t,
    ['serve', '--port', String(port), '--demo-seed', '7', '--demo-tick', '200'],
    { ESCAI_LOG_LEVEL: 'info', ESCAI_SHUTDOWN_GRACE: '1', ...env },
    { cwd: dir },
  );
  const bound = await proc.port(20_000);
  const [, link] = (await proc.waitForStderr(/console:\s+(\S+)/, 10_000)) as RegExpMatchArray & [string, string];
  return { proc, port: bound, link };
}
