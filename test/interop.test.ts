// Interop: a Python client written from the protocol page alone (Debian's
// python3-websockets and python3-jwt) against the real server.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { SECRET, startServer } from './helpers.js';
import { need, PYTHON, pythonReady } from './require.js';

const SCRIPT = fileURLToPath(new URL('./interop/escai_client.py', import.meta.url));

test('a plain ESCAI Python client subscribes with a filter, receives only the matching event, and gets pong', { timeout: 60_000 }, async (t) => {
  const py = pythonReady();
  if (!need(t, 'python', py.ok, `${PYTHON} with websockets and jwt: ${py.why}`)) return;
  const s = await startServer(t);
  const { stdout } = await promisify(execFile)(PYTHON, [SCRIPT, s.url, SECRET], { timeout: 20_000 }).catch((err: { stdout?: string; message: string }) => {
    throw new Error(`python client failed: ${err.stdout ?? ''} ${err.message}`);
  });
  const seen: unknown = JSON.parse(stdout.trim().split('\n').pop()!);
  assert.deepEqual(seen, { session_id: 'py_session', user_id: 'py_user', received_confidence: 0.9, pong: true });
});
