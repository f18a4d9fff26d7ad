// Configuration: defaults, sources and their precedence, validation messages
// that name the setting and its variable, the role table, the frozen result.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULT_ROLES } from '../src/auth/permissions.js';
import { ConfigError, configFromEnv, configFromFile, ENV_NAMES, resolveConfig } from '../src/config/config.js';

const SECRET = 'config-test-secret-0123456789abcdefghijklmnop';

/** A JSON config file in a fresh temp dir, removed when the test ends. */
function configFile(t: { after(fn: () => void): void }, content: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'escai-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'escai.json');
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

/** Runs `fn`, expects a ConfigError, returns its message. */
function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

test('defaults match the spec', { timeout: 60_000 }, () => {
  const c = resolveConfig({});
  assert.equal(c.port, 8000);
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.maxConnections, 10_000);
  assert.equal(c.heartbeatInterval, 30);
  assert.equal(c.heartbeatTimeout, 10);
  assert.equal(c.maxMessageBytes, 65_536);
  assert.equal(c.jwtSecret, undefined);
  assert.deepEqual(c.allowedOrigins, []);
});

test('configFromEnv reads ESCAI_* variables and ignores unset and empty ones', { timeout: 60_000 }, () => {
  const env = configFromEnv({
    ESCAI_PORT: '9001',
    ESCAI_HOST: '0.0.0.0',
    ESCAI_MAX_CONNECTIONS: '42',
    ESCAI_HEARTBEAT_INTERVAL: '0.5',
    ESCAI_HEARTBEAT_TIMEOUT: '2',
    ESCAI_MAX_MESSAGE_BYTES: '2048',
    ESCAI_JWT_SECRET: SECRET,
    ESCAI_ALLOWED_ORIGINS: 'https://a.example, https://b.example',
    ESCAI_LOG_LEVEL: '',
    PATH: '/usr/bin',
    PORT: '1234',
  });
  assert.equal(env['logLevel'], undefined, 'empty variable is ignored');
  assert.equal(Object.hasOwn(env, 'PATH'), false);
  const c = resolveConfig(env);
  assert.equal(c.port, 9001);
  assert.equal(c.host, '0.0.0.0');
  assert.equal(c.maxConnections, 42);
  assert.equal(c.heartbeatInterval, 0.5);
  assert.equal(c.heartbeatTimeout, 2);
  assert.equal(c.maxMessageBytes, 2048);
  assert.equal(c.jwtSecret, SECRET);
  assert.deepEqual(c.allowedOrigins, ['https://a.example', 'https://b.example']);
  assert.equal(c.logLevel, 'info', 'empty ESCAI_LOG_LEVEL leaves the default');
});

test('every setting has an ESCAI_ environment variable', { timeout: 60_000 }, () => {
  for (const [setting, name] of Object.entries(ENV_NAMES)) assert.match(name, /^ESCAI_[A-Z_]+$/, setting);
  assert.equal(ENV_NAMES.heartbeatInterval, 'ESCAI_HEARTBEAT_INTERVAL');
  assert.equal(ENV_NAMES.jwtSecret, 'ESCAI_JWT_SECRET');
  assert.equal(ENV_NAMES.maxConnections, 'ESCAI_MAX_CONNECTIONS');
});

test('later sources win: defaults < file < env < flags', { timeout: 60_000 }, (t) => {
  const path = configFile(t, { port: 1111, host: '10.0.0.1', maxConnections: 11, heartbeatInterval: 11 });
  const fromFile = configFromFile(path);
  const fromEnv = configFromEnv({ ESCAI_PORT: '2222', ESCAI_MAX_CONNECTIONS: '22' });
  const fromFlags = { port: 3333, host: undefined, maxConnections: undefined };
  const c = resolveConfig(fromFile, fromEnv, fromFlags);
  assert.equal(c.port, 3333, 'flag beats env and file');
  assert.equal(c.maxConnections, 22, 'env beats file; an undefined flag does not erase it');
  assert.equal(c.host, '10.0.0.1', 'file beats default; an undefined flag does not erase it');
  assert.equal(c.heartbeatInterval, 11, 'file beats default');
  assert.equal(c.heartbeatTimeout, 10, 'untouched setting keeps its default');
});

test('a config file with an unknown key is refused, naming the key', { timeout: 60_000 }, (t) => {
  const path = configFile(t, { port: 1, heartbeatIntervall: 5 });
  const msg = configError(() => configFromFile(path));
  assert.match(msg, /heartbeatIntervall/);
});

test('a config file that is not a JSON object is refused', { timeout: 60_000 }, (t) => {
  assert.match(
    configError(() => configFromFile(configFile(t, '[1,2]'))),
    /JSON object/,
  );
  assert.match(
    configError(() => configFromFile(configFile(t, '{not json'))),
    /escai\.json/,
  );
  assert.match(
    configError(() => configFromFile(join(tmpdir(), 'no-such-escai-config.json'))),
    /no-such-escai-config\.json/,
  );
});

test('bad values name the setting and its environment variable', { timeout: 60_000 }, () => {
  const cases: Array<[Record<string, string>, string, string]> = [
    [{ ESCAI_HEARTBEAT_INTERVAL: 'abc' }, 'heartbeatInterval', 'ESCAI_HEARTBEAT_INTERVAL'],
    [{ ESCAI_HEARTBEAT_INTERVAL: '0' }, 'heartbeatInterval', 'ESCAI_HEARTBEAT_INTERVAL'],
    [{ ESCAI_HEARTBEAT_TIMEOUT: '-1' }, 'heartbeatTimeout', 'ESCAI_HEARTBEAT_TIMEOUT'],
    [{ ESCAI_PORT: '70000' }, 'port', 'ESCAI_PORT'],
    [{ ESCAI_PORT: '80.5' }, 'port', 'ESCAI_PORT'],
    [{ ESCAI_MAX_CONNECTIONS: '0' }, 'maxConnections', 'ESCAI_MAX_CONNECTIONS'],
    [{ ESCAI_MAX_CONNECTIONS: 'lots' }, 'maxConnections', 'ESCAI_MAX_CONNECTIONS'],
    [{ ESCAI_MAX_MESSAGE_BYTES: '-5' }, 'maxMessageBytes', 'ESCAI_MAX_MESSAGE_BYTES'],
    [{ ESCAI_JWT_SECRET: 'too-short' }, 'jwtSecret', 'ESCAI_JWT_SECRET'],
    [{ ESCAI_LOG_LEVEL: 'loud' }, 'logLevel', 'ESCAI_LOG_LEVEL'],
  ];
  for (const [env, setting, variable] of cases) {
    const msg = configError(() => resolveConfig(configFromEnv(env)));
    assert.ok(msg.includes(setting), `${JSON.stringify(env)}: "${msg}" should name ${setting}`);
    assert.ok(msg.includes(variable), `${JSON.stringify(env)}: "${msg}" should name ${variable}`);
  }
});

test('a boolean setting with a value that is not a boolean is refused', { timeout: 60_000 }, () => {
  assert.equal(resolveConfig(configFromEnv({ ESCAI_COMPRESSION: 'true' })).compression, true);
  assert.equal(resolveConfig(configFromEnv({ ESCAI_COMPRESSION: '0' })).compression, false);
  // "Everything validated at start": a typo must not silently become false.
  const msg = configError(() => resolveConfig(configFromEnv({ ESCAI_COMPRESSION: 'ture' })));
  assert.match(msg, /compression/);
  assert.match(msg, /ESCAI_COMPRESSION/);
});

test('trustProxy: off, a hop count (true is one hop), or proxy addresses and CIDRs, each checked', { timeout: 60_000 }, () => {
  const trust = (value: string) => resolveConfig(configFromEnv({ ESCAI_TRUST_PROXY: value })).trustProxy;
  assert.equal(trust('false'), false);
  assert.equal(trust('0'), false);
  assert.equal(trust('true'), 1);
  assert.equal(trust('2'), 2);
  assert.deepEqual(trust('10.0.0.0/8, 127.0.0.1,loopback'), ['10.0.0.0/8', '127.0.0.1', 'loopback']);
  assert.deepEqual(resolveConfig({ trustProxy: ['::1'] }).trustProxy, ['::1']);
  assert.equal(resolveConfig({ trustProxy: true } as never).trustProxy, 1);
  // A typo is not read as "off" nor as "trust everything": the bad entry is named.
  for (const bad of ['ture', '10.0.0.0/8,10.0.0.300', '10.0.0.0/33', '172.16/12', '10.1']) {
    const msg = configError(() => trust(bad));
    assert.match(msg, /trustProxy/);
    assert.match(msg, /ESCAI_TRUST_PROXY/);
    assert.match(msg, /invalid/i, msg);
  }
});

test('the JWT secret is measured in bytes: 32 bytes accepted, 31 refused', { timeout: 60_000 }, () => {
  assert.equal(resolveConfig({ jwtSecret: 'x'.repeat(32) }).jwtSecret, 'x'.repeat(32));
  assert.match(
    configError(() => resolveConfig({ jwtSecret: 'x'.repeat(31) })),
    /jwtSecret/,
  );
  // 16 × "é" is 16 characters but 32 bytes of UTF-8: long enough by the spec.
  const multibyte = 'é'.repeat(16);
  assert.equal(Buffer.byteLength(multibyte), 32);
  assert.equal(resolveConfig({ jwtSecret: multibyte }).jwtSecret, multibyte);
});

test('ESCAI_ROLES that is not JSON is refused, naming the variable', { timeout: 60_000 }, () => {
  const msg = configError(() => configFromEnv({ ESCAI_ROLES: '{nope' }));
  assert.match(msg, /roles/);
  assert.match(msg, /ESCAI_ROLES/);
});

test('roles are merged over the default role table', { timeout: 60_000 }, () => {
  const c = resolveConfig(configFromEnv({ ESCAI_ROLES: JSON.stringify({ auditor: ['websocket:connect'], viewer: ['websocket:connect'] }) }));
  assert.deepEqual([...c.roles['auditor']!], ['websocket:connect'], 'a new role is added');
  assert.deepEqual([...c.roles['viewer']!], ['websocket:connect'], 'a configured role replaces the default one');
  for (const role of ['admin', 'researcher', 'developer']) {
    assert.deepEqual([...c.roles[role]!], [...DEFAULT_ROLES[role]!], `default role ${role} kept`);
  }
  // Defaults alone: exactly the four ESCAI roles.
  assert.deepEqual(Object.keys(resolveConfig({}).roles).sort(), ['admin', 'developer', 'researcher', 'viewer']);
  // A malformed role table is refused.
  assert.match(
    configError(() => resolveConfig({ roles: { auditor: 'websocket:connect' } })),
    /roles/,
  );
});

test('the resolved config is frozen, role table included', { timeout: 60_000 }, () => {
  const c = resolveConfig({ roles: { auditor: ['websocket:connect'] } });
  assert.ok(Object.isFrozen(c));
  assert.ok(Object.isFrozen(c.roles));
  assert.throws(() => {
    (c as { port: number }).port = 1;
  }, TypeError);
  assert.throws(() => {
    (c.roles as Record<string, readonly string[]>)['hacker'] = ['*'];
  }, TypeError);
  // The permission lists are shared with DEFAULT_ROLES: mutating one through a
  // config would change every later config in the process.
  for (const [role, perms] of Object.entries(c.roles)) assert.ok(Object.isFrozen(perms), `roles.${role} is frozen`);
  assert.throws(() => (c.roles['admin'] as string[]).push('x'), TypeError);
  assert.deepEqual([...DEFAULT_ROLES['admin']!], ['*']);
});

test("README's configuration table lists every setting with its environment variable", { timeout: 60_000 }, () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  for (const [setting, env] of Object.entries(ENV_NAMES)) {
    assert.match(readme, new RegExp(`^\\| \`${setting}\` \\| \`${env}\``, 'm'), `${setting} (${env}) is in the README table`);
  }
});
