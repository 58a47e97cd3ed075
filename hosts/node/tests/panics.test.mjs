// A panic inside the host reaches JavaScript as LinearOAuthError INTERNAL: a
// rejection from resolve, a throw from the constructor and invalidate, never
// an abort of the process (a panic unwinding out of a napi call aborts it).
//
// The panic is forced with the host's test hook: in debug builds only (this
// suite runs on `npm run build:debug`; release builds compile it out), the
// environment variable LINEAR_OAUTH_TEST_PANIC_ID=ENTRY:ID makes that host
// entry point panic when called with that id.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';

import lo from '../index.js';
import { useServer, tmpStore, seed, options } from './helpers.mjs';

let server;
useServer((s) => (server = s));

const HOOK = 'LINEAR_OAUTH_TEST_PANIC_ID';
afterEach(() => {
  delete process.env[HOOK];
});

function internal(e) {
  assert.ok(e instanceof lo.LinearOAuthError, `not a LinearOAuthError: ${e && e.stack}`);
  assert.equal(e.code, 'INTERNAL', e.message);
  return true;
}

test('a panic while constructing throws INTERNAL', () => {
  const dir = tmpStore();
  process.env[HOOK] = `new:file:${dir}`;
  assert.throws(() => new lo.Resolver(options(server, dir)), internal);
  delete process.env[HOOK];
  assert.ok(new lo.Resolver(options(server, dir)), 'the same options open without the hook');
});

test('a panic in the fast path rejects resolve, and invalidate throws INTERNAL', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  const r = new lo.Resolver(options(server, dir));
  process.env[HOOK] = `cached:${s.workspaceId}`;
  const pending = r.resolve(s.workspaceId);
  assert.ok(pending instanceof Promise, 'a rejection, not a throw');
  await assert.rejects(pending, internal);
  process.env[HOOK] = `cached_secret:${s.secretId}`;
  await assert.rejects(r.resolveSecret(s.secretId), internal);
  process.env[HOOK] = `invalidate:${s.workspaceId}`;
  assert.throws(() => r.invalidate(s.workspaceId), internal);
  process.env[HOOK] = `resolve:${s.workspaceId}`;
  await assert.rejects(r.resolve(s.workspaceId), internal);
  delete process.env[HOOK];
  assert.equal((await r.resolve(s.workspaceId)).accessToken, s.access, 'the resolver still works');
});
