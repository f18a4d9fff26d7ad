// The suite's own rules, checked: every test declares its own timeout (a
// file-wide limit, which a loaded machine can exceed, would kill a file's
// process before its cleanup hooks run and leave its servers behind).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';

test('every test in test/ declares a timeout', { timeout: 10_000 }, () => {
  const dir = new URL('.', import.meta.url);
  const missing: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.test.ts'))) {
    const lines = readFileSync(new URL(file, dir), 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (/^\s*test\(/.test(line) && !/timeout|OPTS/.test(line)) missing.push(`${file}:${i + 1}`);
    });
  }
  assert.deepEqual(missing, []);
});
