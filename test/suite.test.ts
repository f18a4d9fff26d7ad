// The suite's own rules, checked: every test declares its own timeout (a
// file-wide limit, which a loaded machine can exceed, would kill a file's
// process before its cleanup hooks run and leave its servers behind).
//
// Decided on the syntax tree (the TypeScript compiler API), not on lines: a
// call wrapped over several lines is one call, and a word in a test's name or
// a comment is not an option. A test declares a timeout when its options
// object has a `timeout` property (directly, through a spread, or through a
// `const` of the same file that is such an object), or when it inherits one
// from the suite or test it is written in (node:test gives a subtest its
// parent's timeout when it names none).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import ts from 'typescript';

/** The names node:test exports that declare tests (`suite`/`describe` group them). */
const TEST_FNS = new Set(['test', 'it']);
const SUITE_FNS = new Set(['describe', 'suite']);
const MODIFIERS = new Set(['skip', 'only', 'todo']);

type Kind = 'test' | 'suite';

/**
 * The tests of `source` (a test file's text) that declare no timeout, each as
 * `file:line: why` (empty when every test has one).
 */
export function missingTimeouts(file: string, source: string): string[] {
  return checkTimeouts(file, source).missing;
}

/** `missingTimeouts`, and how many tests (test/it calls and subtests) the file declares. */
export function checkTimeouts(file: string, source: string): { missing: string[]; tests: number } {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  // A one-file program, so identifiers resolve by the language's own scoping.
  const host = ts.createCompilerHost({});
  const original = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version) => (name === file ? sf : original(name, version));
  host.fileExists = (name) => name === file;
  host.readFile = (name) => (name === file ? source : undefined);
  const program = ts.createProgram({ rootNames: [file], options: { noLib: true, noResolve: true, types: [] }, host });
  const checker = program.getTypeChecker();

  // Local names bound to node:test's functions: `import { test as t }`, `import test from`, `import * as nt from`.
  const bound = new Map<string, string>(); // local name → node:test name
  const namespaces = new Set<string>();
  for (const stmt of sf.statements) {
    if (!ts.isImportDeclaration(stmt) || !ts.isStringLiteral(stmt.moduleSpecifier)) continue;
    if (stmt.moduleSpecifier.text !== 'node:test' && stmt.moduleSpecifier.text !== 'test') continue;
    const clause = stmt.importClause;
    if (!clause) continue;
    if (clause.name) bound.set(clause.name.text, 'test');
    const named = clause.namedBindings;
    if (named && ts.isNamespaceImport(named)) namespaces.add(named.name.text);
    if (named && ts.isNamedImports(named)) {
      for (const el of named.elements) {
        if (el.isTypeOnly) continue;
        bound.set(el.name.text, (el.propertyName ?? el.name).text);
      }
    }
  }

  const nodeTestName = (e: ts.Expression): string | undefined => {
    if (ts.isIdentifier(e)) return bound.get(e.text);
    if (ts.isPropertyAccessExpression(e) && ts.isIdentifier(e.expression) && namespaces.has(e.expression.text)) return e.name.text;
    return undefined;
  };

  /** What a call declares: a test, a suite, or neither. */
  const kindOf = (call: ts.CallExpression): Kind | undefined => {
    let callee = call.expression;
    if (ts.isPropertyAccessExpression(callee) && MODIFIERS.has(callee.name.text) && nodeTestName(callee.expression) !== undefined) {
      callee = callee.expression; // test.skip(...), describe.only(...)
    }
    const name = nodeTestName(callee);
    if (name !== undefined) return TEST_FNS.has(name) ? 'test' : SUITE_FNS.has(name) ? 'suite' : undefined;
    // A subtest: `t.test(name, fn)` on a TestContext (a RegExp's `.test(s)` takes one argument and no function).
    if (
      ts.isPropertyAccessExpression(callee) &&
      callee.name.text === 'test' &&
      call.arguments.length >= 2 &&
      isFunction(call.arguments[call.arguments.length - 1]!)
    ) {
      return 'test';
    }
    return undefined;
  };

  /** The options argument: what is neither the leading name nor the trailing function. */
  const optionsOf = (call: ts.CallExpression): ts.Expression | undefined => {
    const args = [...call.arguments];
    if (args.length > 0 && isFunction(args[args.length - 1]!)) args.pop();
    if (args.length >= 2 || (args.length === 1 && isName(args[0]!))) args.shift();
    return args[0];
  };

  /** Whether `e` is certainly an object with a `timeout`; otherwise why not. */
  const timeoutIn = (e: ts.Expression, seen: Set<ts.Node>): true | string => {
    e = unwrap(e);
    if (ts.isObjectLiteralExpression(e)) {
      let why = 'its options have no timeout';
      for (const p of e.properties) {
        if ((ts.isPropertyAssignment(p) || ts.isShorthandPropertyAssignment(p)) && propertyName(p.name) === 'timeout') {
          const value = ts.isPropertyAssignment(p) ? unwrap(p.initializer) : p.name;
          if (ts.isIdentifier(value) && (value.text === 'undefined' || value.text === 'Infinity')) return `its timeout is ${value.text}`;
          return true;
        }
        if (ts.isSpreadAssignment(p)) {
          const spread = timeoutIn(p.expression, seen);
          if (spread === true) return true;
          why = spread;
        }
      }
      return why;
    }
    if (ts.isConditionalExpression(e)) {
      const a = timeoutIn(e.whenTrue, seen);
      if (a !== true) return a;
      return timeoutIn(e.whenFalse, seen);
    }
    if (ts.isIdentifier(e)) {
      const decl = checker.getSymbolAtLocation(e)?.valueDeclaration;
      if (!decl || !ts.isVariableDeclaration(decl) || decl.getSourceFile() !== sf) return `its options ${e.text} are not a const declared in this file`;
      const list = decl.parent;
      if (!ts.isVariableDeclarationList(list) || (list.flags & ts.NodeFlags.Const) === 0) return `its options ${e.text} are not a const`;
      if (!decl.initializer || seen.has(decl)) return `its options ${e.text} have no value here`;
      seen.add(decl);
      const inner = timeoutIn(decl.initializer, seen);
      return inner === true ? true : `${inner} (${e.text})`;
    }
    return `its options (${e.getText(sf).slice(0, 40)}) cannot be read here`;
  };

  const missing: string[] = [];
  let tests = 0;
  /** `inherited`: an enclosing suite or test declares a timeout. */
  const visit = (node: ts.Node, inherited: boolean): void => {
    let inside = inherited;
    if (ts.isCallExpression(node)) {
      const kind = kindOf(node);
      if (kind !== undefined) {
        if (kind === 'test') tests++;
        const options = optionsOf(node);
        const own = options === undefined ? 'it passes no options' : timeoutIn(options, new Set());
        if (own === true) inside = true;
        else if (kind === 'test' && !inherited) {
          const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
          missing.push(`${file}:${line + 1}: ${own}`);
        }
      }
    }
    ts.forEachChild(node, (child) => visit(child, inside));
  };
  visit(sf, false);
  return { missing, tests };
}

function unwrap(e: ts.Expression): ts.Expression {
  while (
    ts.isParenthesizedExpression(e) ||
    ts.isAsExpression(e) ||
    ts.isSatisfiesExpression(e) ||
    ts.isTypeAssertionExpression(e) ||
    ts.isNonNullExpression(e)
  ) {
    e = e.expression;
  }
  return e;
}

function isFunction(e: ts.Expression): boolean {
  const u = unwrap(e);
  return ts.isArrowFunction(u) || ts.isFunctionExpression(u);
}

function isName(e: ts.Expression): boolean {
  const u = unwrap(e);
  return ts.isStringLiteral(u) || ts.isNoSubstitutionTemplateLiteral(u) || ts.isTemplateExpression(u) || ts.isBinaryExpression(u);
}

function propertyName(name: ts.PropertyName): string | undefined {
  return ts.isIdentifier(name) || ts.isStringLiteral(name) || ts.isNoSubstitutionTemplateLiteral(name) ? name.text : undefined;
}

test('every test in test/ declares a timeout', { timeout: 60_000 }, () => {
  const dir = new URL('.', import.meta.url);
  const missing: string[] = [];
  const empty: string[] = [];
  const files = readdirSync(dir).filter((f) => f.endsWith('.test.ts'));
  assert.ok(files.length > 1, 'the test files were found');
  for (const file of files) {
    const found = checkTimeouts(file, readFileSync(new URL(file, dir), 'utf8'));
    missing.push(...found.missing);
    // A file in which the checker sees no test at all would pass unread: each declares some.
    if (found.tests === 0) empty.push(file);
  }
  assert.deepEqual(missing, []);
  assert.deepEqual(empty, [], 'test files in which no test call was recognised');
});

// ---- the checker's own tests: source text fed to it ------------------------

const IMPORT = "import { describe, it, test } from 'node:test';\n";
const check = (body: string) => missingTimeouts('sample.test.ts', IMPORT + body);

test('checker: a test call wrapped over several lines, with no timeout, is reported', { timeout: 10_000 }, () => {
  const found = check(['test(', "  'wrapped over two lines',", '  async () => {},', ');', ''].join('\n'));
  assert.equal(found.length, 1, JSON.stringify(found));
  assert.match(found[0]!, /^sample\.test\.ts:2: it passes no options/);
  const opts = check(["test('wrapped options',", '  { concurrency: false },', '  async () => {});', ''].join('\n'));
  assert.equal(opts.length, 1, JSON.stringify(opts));
  assert.match(opts[0]!, /:2: its options have no timeout/);
  // The same call with a timeout on its own line passes.
  assert.deepEqual(check(["test('wrapped',", '  { timeout: 5_000 },', '  async () => {},', ');'].join('\n')), []);
});

test('checker: a line that merely mentions OPTS (or timeout) does not declare a timeout', { timeout: 10_000 }, () => {
  const found = check(
    [
      "test('reads OPTS from the environment', async () => {});",
      "test('a timeout handling test', async () => {}); // OPTS",
      "test('no options', async () => { const OPTS = { timeout: 1 }; void OPTS; });",
      '',
    ].join('\n'),
  );
  assert.deepEqual(
    found.map((m) => m.split(':')[1]),
    ['2', '3', '4'],
    JSON.stringify(found),
  );
});

test('checker: options through a const of the file count only if it is an object with a timeout', { timeout: 10_000 }, () => {
  assert.deepEqual(check("const OPTS = { timeout: 45_000, concurrency: false } as const;\ntest('a', OPTS, async () => {});"), []);
  assert.deepEqual(check("const OPTS = { timeout: 1 };\ntest('spread', { ...OPTS, skip: false }, async () => {});"), []);
  assert.deepEqual(check("const BASE = { timeout: 1 };\nconst OPTS = { ...BASE };\ntest('chain', OPTS, async () => {});"), []);
  const noTimeout = check("const OPTS = { concurrency: false };\ntest('a', OPTS, async () => {});");
  assert.equal(noTimeout.length, 1);
  assert.match(noTimeout[0]!, /:3: its options have no timeout \(OPTS\)/);
  const notConst = check("let OPTS = { timeout: 1 };\ntest('a', OPTS, async () => {});");
  assert.match(notConst[0] ?? '', /not a const/);
  const imported = check("import { OPTS } from './elsewhere.js';\ntest('a', OPTS, async () => {});");
  assert.match(imported[0] ?? '', /not a const declared in this file/);
  const undeclared = check("test('a', OPTS, async () => {});");
  assert.equal(undeclared.length, 1);
  const computed = check("test('a', makeOptions(), async () => {});");
  assert.match(computed[0] ?? '', /cannot be read here/);
  // A const of the same name in an inner scope does not stand for the outer one.
  const shadowed = check("const OPTS = { concurrency: false };\nfunction f() { const OPTS = { timeout: 1 }; return OPTS; }\ntest('a', OPTS, async () => {});");
  assert.equal(shadowed.length, 1, JSON.stringify(shadowed));
  assert.match(check("test('a', { timeout: undefined }, async () => {});")[0] ?? '', /timeout is undefined/);
});

test('checker: modifiers, it, aliases, suites and subtests', { timeout: 10_000 }, () => {
  assert.equal(check("test.skip('a', async () => {});\ntest.only('b', async () => {});").length, 2);
  assert.equal(check("describe('s', () => { it('a', async () => {}); });").length, 1);
  // A suite's or a test's timeout is its subtests' (node:test inherits it).
  assert.deepEqual(check("describe('s', { timeout: 1 }, () => { it('a', async () => {}); });"), []);
  assert.deepEqual(check("test('p', { timeout: 1 }, async (t) => { await t.test('sub', async () => {}); });"), []);
  assert.equal(check("describe('s', { concurrency: true }, () => { test('a', async () => {}); test('b', { timeout: 1 }, async () => {}); });").length, 1);
  assert.equal(check("async function helper(t) { await t.test('sub', async () => {}); }").length, 1);
  // Not tests: a RegExp's test, a method of some other object.
  assert.deepEqual(check("const ok = /x/.test('x') && UUID.test('y');\nsomething.it('a', () => {});"), []);
  // node:test under another name.
  const aliased = missingTimeouts(
    'a.test.ts',
    "import { test as check } from 'node:test';\nimport * as nt from 'node:test';\ncheck('a', async () => {});\nnt.it('b', async () => {});",
  );
  assert.deepEqual(
    aliased.map((m) => m.split(':')[1]),
    ['3', '4'],
  );
});
