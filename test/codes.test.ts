// Every code of the error catalogue and every close code is documented in docs/PROTOCOL.md.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CloseCodes, ErrorCodes } from '../src/protocol/codes.js';

const doc = readFileSync(new URL('../docs/PROTOCOL.md', import.meta.url), 'utf8');

test('every error code is in the error table of docs/PROTOCOL.md with its HTTP status', () => {
  for (const [code, { status }] of Object.entries(ErrorCodes)) {
    assert.match(doc, new RegExp(`\\| \`${code}\` \\| ${status} \\|`), `${code} (${status}) is not documented`);
  }
});

test('every close code is in the close-code table of docs/PROTOCOL.md', () => {
  for (const { code } of Object.values(CloseCodes)) {
    assert.match(doc, new RegExp(`^\\| ${code} \\|`, 'm'), `close code ${code} is not documented`);
  }
});
