// Packaging: CommonJS and ESM entries, the type declarations, and a cold
// start that loads the precompiled component instead of compiling wasm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

import * as esm from '../index.mjs';
import { pkgDir, runNode } from './helpers.mjs';

const require = createRequire(import.meta.url);
const cjs = require('../index.js');

test('the ESM entry exports the same objects as the CommonJS one', () => {
  const names = Object.keys(cjs).sort();
  assert.deepEqual(names, [
    'ERROR_CODES',
    'LinearOAuthError',
    'LinearOAuthToken',
    'LinearOauthTokenResult',
    'Resolver',
    'invalidateLinearOauthCache',
    'loadInfo',
    'resolveLinearOauthToken',
  ]);
  for (const name of names) assert.equal(esm[name], cjs[name], name);
  assert.equal(esm.default, cjs);
});

test('index.d.ts declares every export and every public Resolver method', () => {
  const dts = fs.readFileSync(path.join(pkgDir, 'index.d.ts'), 'utf8');
  for (const name of Object.keys(cjs)) {
    assert.match(dts, new RegExp(`export declare (class|function|const) ${name}\\b`), name);
  }
  const resolverBlock = /export declare class Resolver \{([\s\S]*?)\n\}/.exec(dts);
  assert.ok(resolverBlock, 'class Resolver is declared');
  // Methods written in index.js are declared in an interface merged into the class.
  const jsOnly = /export interface Resolver \{([\s\S]*?)\n\}/.exec(dts);
  assert.ok(jsOnly, 'the JavaScript methods of Resolver are declared');
  const declared = resolverBlock[1] + jsOnly[1];
  const methods = Object.getOwnPropertyNames(cjs.Resolver.prototype).filter((m) => m !== 'constructor');
  for (const m of [...methods, 'constructor', 'fromEnv']) assert.match(declared, new RegExp(`\\b${m}\\(`), m);
  assert.doesNotMatch(resolverBlock[1], /\bcached\(|makeToken|makeError/, 'internals are not declared');
  for (const code of cjs.ERROR_CODES) assert.match(dts, new RegExp(`'${code}'`), code);
});

test('every option of the host is typed in index.d.ts with its real default, and no other', () => {
  const native = require('../native.js').loadNative();
  const dts = fs.readFileSync(path.join(pkgDir, 'index.d.ts'), 'utf8');
  const options = /export interface ResolverOptions \{([^]*?)\n\}/.exec(dts)[1];
  const table = native.settings();
  assert.ok(table.length >= 14);
  for (const [name, kind, def] of table) {
    const type = { text: 'string', flag: 'boolean' }[kind] ?? 'number';
    const m = new RegExp(`/\\*\\*([^*]*)\\*/\\s*${name}\\?: ${type}\\n`).exec(options);
    assert.ok(m, `${name} is declared as ${type} with a doc comment`);
    if (def !== null) {
      const shown = kind === 'text' ? `\`${def}\`` : def;
      assert.ok(m[1].includes(`default ${shown}`), `${name}: the documented default is the host's ${shown}: ${m[1]}`);
    }
  }
  const declared = [...options.matchAll(/^  (\w+)\?:/gm)].map((m) => m[1]);
  assert.deepEqual(declared.sort(), [...table.map(([n]) => n), 'logLevel', 'logger'].sort());
});

test('error codes are the host’s table, and the ErrorCode type lists exactly those', () => {
  const native = require('../native.js').loadNative();
  assert.deepEqual([...cjs.ERROR_CODES], native.errorCodes());
  assert.ok(Object.isFrozen(cjs.ERROR_CODES) && cjs.ERROR_CODES.includes('REAUTHORIZATION_REQUIRED'));
  const dts = fs.readFileSync(path.join(pkgDir, 'index.d.ts'), 'utf8');
  const union = /export type ErrorCode =([^]*?)\n\n/.exec(dts);
  assert.ok(union, 'ErrorCode is declared');
  const declared = [...union[1].matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]);
  assert.deepEqual(declared, [...cjs.ERROR_CODES], 'index.d.ts ErrorCode matches the host table');
  const e = new cjs.LinearOAuthError('TOKEN_ENDPOINT', 'Linear answered HTTP 500', { status: 500 });
  assert.equal(e.status, 500);
  assert.equal(e.error, null);
  assert.ok(e instanceof Error);
});

test('require + construct loads the precompiled component (no wasm compilation)', async () => {
  const run = await runNode(`
    import { createRequire } from 'node:module';
    const started = performance.now();
    const lo = createRequire(import.meta.url)('./index.js');
    new lo.Resolver({ store: 'memory:' });
    const took = performance.now() - started;
    process.stdout.write(JSON.stringify({ ...lo.loadInfo(), took }));
  `);
  assert.equal(run.code, 0, run.stderr);
  const info = JSON.parse(run.stdout);
  assert.equal(info.compiledFallback, false);
  assert.ok(info.loadTimeMs < 50, `component load took ${info.loadTimeMs} ms`);
  assert.ok(info.took < 1000, `require + construct took ${info.took} ms`);
});

test('package.json points at the built files', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  assert.equal(pkg.name, 'linear-oauth');
  assert.equal(pkg.main, 'index.js');
  assert.equal(pkg.types, 'index.d.ts');
  assert.equal(pkg.exports['.'].import, './index.mjs');
  for (const f of pkg.files) assert.ok(fs.existsSync(path.join(pkgDir, f)), f);
});
