// Optional test dependencies (Redis, Python, a browser): tests skip loudly
// where one is missing, and fail where the environment says it is required
// (CI sets ESCAI_TEST_REQUIRE=redis,python,browser).
import type { TestContext } from 'node:test';

const required = new Set((process.env['ESCAI_TEST_REQUIRE'] ?? '').split(',').map((s) => s.trim()).filter(Boolean));

/** True when the test may run; otherwise skips it (or throws when the dependency is required). */
export function need(t: TestContext, what: 'redis' | 'python' | 'browser', available: boolean, why: string): boolean {
  if (available) return true;
  if (required.has(what)) throw new Error(`${what} is required here (ESCAI_TEST_REQUIRE) but unavailable: ${why}`);
  const message = `SKIPPED: ${what} unavailable (${why})`;
  process.stderr.write(`\n*** ${message} ***\n`);
  t.skip(message);
  return false;
}
