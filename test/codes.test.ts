// The catalogue and docs/PROTOCOL.md agree, both ways: every error code and
// close code is documented (with its HTTP status / reconnect advice), and the
// doc's tables name nothing the catalogue lacks.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CloseCodes, ErrorCodes } from '../src/protocol/codes.js';

const doc = readFileSync(new URL('../docs/PROTOCOL.md', import.meta.url), 'utf8');

/** The rows of the table under `## heading`. */
function tableRows(heading: string): string[][] {
  const start = doc.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `docs/PROTOCOL.md has a "## ${heading}" section`);
  const end = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, end < 0 ? undefined : end);
  return section
    .split('\n')
    .filter((line) => line.startsWith('|') && !/^\|[-| ]+\|$/.test(line))
    .slice(1) // header
    .map((line) =>
      line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim()),
    );
}

test('the error table of docs/PROTOCOL.md lists exactly the catalogue, each with its HTTP status', { timeout: 60_000 }, () => {
  const rows = tableRows('Error codes');
  const documented = new Map(rows.map(([code, status]) => [code!.replace(/`/g, ''), Number(status)]));
  for (const [code, { status }] of Object.entries(ErrorCodes)) {
    assert.equal(documented.get(code), status, `${code} (${status}) is documented with its status`);
  }
  for (const code of documented.keys()) assert.ok(Object.hasOwn(ErrorCodes, code), `documented ${code} is in the catalogue`);
});

test('the close-code table of docs/PROTOCOL.md lists exactly the catalogue, with the same reconnect advice', { timeout: 60_000 }, () => {
  const rows = tableRows('Close codes');
  const documented = new Map(rows.map(([code, , reconnect]) => [Number(code), reconnect!.toLowerCase().startsWith('yes')]));
  for (const [name, { code, reconnect }] of Object.entries(CloseCodes)) {
    assert.equal(documented.get(code), reconnect, `close code ${code} (${name}) is documented with reconnect ${reconnect ? 'yes' : 'no'}`);
  }
  const known = new Set<number>(Object.values(CloseCodes).map((c) => c.code));
  for (const code of documented.keys()) assert.ok(known.has(code), `documented close code ${code} is in the catalogue`);
});
