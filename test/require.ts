// Optional test dependencies (Redis, Python, a browser): tests skip loudly
// where one is missing, and fail where the environment says it is required
// (CI sets ESCAI_TEST_REQUIRE=redis,python,browser).
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

const required = new Set(
  (process.env['ESCAI_TEST_REQUIRE'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);

/** True when the test may run; otherwise skips it (or throws when the dependency is required). */
export function need(t: TestContext, what: 'redis' | 'python' | 'browser', available: boolean, why: string): boolean {
  if (available) return true;
  if (required.has(what)) throw new Error(`${what} is required here (ESCAI_TEST_REQUIRE) but unavailable: ${why}`);
  const message = `SKIPPED: ${what} unavailable (${why})`;
  process.stderr.write(`\n*** ${message} ***\n`);
  t.skip(message);
  return false;
}

/** The Python the interop clients run on (Debian's python3-websockets and python3-jwt). */
export const PYTHON = '/usr/bin/python3';

/** Whether PYTHON can import `modules` (by default what the interop clients need); if not, why. */
export function pythonReady(modules = 'websockets, jwt'): { ok: boolean; why: string } {
  const probe = spawnSync(PYTHON, ['-c', `import ${modules}`], { encoding: 'utf8' });
  return { ok: probe.status === 0, why: probe.error?.message ?? probe.stderr.trim().split('\n').pop() ?? 'unknown' };
}
