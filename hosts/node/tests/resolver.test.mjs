// Resolving through the Node API: the token object, the JS layer's cache of
// settled tokens and in-flight calls, arguments and options. The behaviour
// matrix (refresh rules, recovery, coordination) lives in crates/host/tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';

import lo from '../index.js';
import { useServer, tmpStore, seed, putSecret, options, sleep } from './helpers.mjs';

let server;
useServer((s) => (server = s));

async function rejectsWith(promise, code, check = () => {}) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof lo.LinearOAuthError, `not a LinearOAuthError: ${e && e.stack}`);
    assert.ok(e instanceof Error);
    assert.equal(e.name, 'LinearOAuthError');
    assert.equal(e.code, code, e.message);
    check(e);
    return true;
  });
}

test('happy path: registry row, stored token, cache', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  const r = new lo.Resolver(options(server, dir));
  const t = await r.resolve(s.workspaceId);
  assert.ok(t instanceof lo.LinearOAuthToken);
  assert.equal(t.accessToken, s.access);
  assert.equal(t.scope, 'read write');
  assert.equal(t.workspaceSlug, 'acme');
  assert.equal(t.secretId, s.secretId);
  assert.equal(t.workspaceId, s.workspaceId);
  assert.ok(Math.abs(Date.parse(t.expiresAt) - (Date.now() + 3600e3)) < 10e3, t.expiresAt);

  // Served from memory: a changed store is not read again within the TTL...
  await seed(server, dir, 'acme', 3600, { fields: { access_token: 'other' } });
  const again = await r.resolve(s.workspaceId);
  assert.equal(again, t, 'the same token object is handed out again');
  // The secret id is another key, and no copy of a fresh stored token (its
  // refresh token and client secret) is kept: that path reads the store.
  assert.equal((await r.resolveSecret(s.secretId)).accessToken, 'other');
  // ...until invalidated.
  r.invalidate(s.workspaceId);
  assert.equal((await r.resolve(s.workspaceId)).accessToken, 'other');
  assert.equal((await server.counters()).token_requests, 0);
});

test('invalidate(workspace) also forgets tokens resolved by secret id', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  const r = new lo.Resolver(options(server, dir));
  assert.equal((await r.resolveSecret(s.secretId)).accessToken, s.access);
  assert.equal((await r.resolveSecret(s.secretId)).accessToken, s.access);
  await seed(server, dir, 'acme', 3600, { fields: { access_token: 'rotated-elsewhere' } });
  r.invalidate(s.workspaceId);
  assert.equal((await r.resolveSecret(s.secretId)).accessToken, 'rotated-elsewhere');
});

test('a cached token comes back as an already-resolved promise', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  const r = new lo.Resolver(options(server, dir));
  const first = r.resolve(s.workspaceId);
  // A cold resolve goes to a worker thread: not settled within a microtask.
  assert.equal(await Promise.race([first, Promise.resolve('pending')]), 'pending');
  const t = await first;
  const hot = r.resolve(s.workspaceId);
  assert.ok(hot instanceof Promise);
  assert.equal(await Promise.race([hot, Promise.resolve('pending')]), t);
  const hotSecret = r.resolveSecret(s.secretId);
  await hotSecret; // the first secret-path resolve may go through the component
  assert.equal(await Promise.race([r.resolveSecret(s.secretId), Promise.resolve('pending')]).then((x) => x.accessToken), s.access);
});

test('ids that are not non-empty strings are INVALID_INPUT', async () => {
  const r = new lo.Resolver(options(server, tmpStore()));
  await rejectsWith(r.resolve(''), 'INVALID_INPUT');
  await rejectsWith(r.resolve(42), 'INVALID_INPUT');
  await rejectsWith(r.resolveSecret(undefined), 'INVALID_INPUT');
  await rejectsWith(r.forceRefresh(null), 'INVALID_INPUT');
  assert.throws(() => r.invalidate({}), (e) => e instanceof lo.LinearOAuthError && e.code === 'INVALID_INPUT');
  await rejectsWith(r.resolve('org-nope'), 'NOT_REGISTERED');
});

test('the refresh threshold and cache TTL are configurable', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  // An hour left, but a two-hour threshold: expiring.
  const eager = new lo.Resolver(options(server, dir, { refreshThresholdSeconds: 7200 }));
  const t = await eager.resolve(s.workspaceId);
  assert.notEqual(t.accessToken, s.access);
  assert.equal((await server.counters()).token_refresh, 1);

  const s2 = await seed(server, dir, 'beta', 3600);
  const uncached = new lo.Resolver(options(server, dir, { cacheTtlSeconds: 0 }));
  assert.equal((await uncached.resolve(s2.workspaceId)).accessToken, s2.access);
  await seed(server, dir, 'beta', 3600, { fields: { access_token: 'changed' } });
  assert.equal((await uncached.resolve(s2.workspaceId)).accessToken, 'changed', 'TTL 0 re-reads every time');

  const s3 = await seed(server, dir, 'gamma', 3600);
  const short = new lo.Resolver(options(server, dir, { cacheTtlSeconds: 0.5 }));
  const first = await short.resolve(s3.workspaceId);
  assert.equal(await short.resolve(s3.workspaceId), first);
  await seed(server, dir, 'gamma', 3600, { fields: { access_token: 'later' } });
  assert.equal((await short.resolve(s3.workspaceId)).accessToken, s3.access, 'still cached');
  await sleep(600);
  assert.equal((await short.resolve(s3.workspaceId)).accessToken, 'later', 'the TTL ran out');
});

test('token endpoint errors carry status, error and description', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', -5); // expired: a 503 cannot be served around
  const r = new lo.Resolver(options(server, dir));
  await server.faults({ fail_next: { count: 3, status: 503 } });
  await rejectsWith(r.resolve(s.workspaceId), 'TOKEN_ENDPOINT', (e) => {
    assert.equal(e.status, 503);
    assert.equal(e.error, 'server_error');
    assert.equal(e.description, null);
  });
  const s2 = await seed(server, dir, 'beta', 10);
  await server.faults({ fail_next: { count: 1, status: 400, body: '{"error":"invalid_request","error_description":"Bad things"}' } });
  await rejectsWith(r.resolve(s2.workspaceId), 'TOKEN_ENDPOINT', (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.error, 'invalid_request');
    assert.equal(e.description, 'Bad things');
  });
});

test('an invalid stored token carries invalidFields, also as missingFields', async () => {
  const dir = tmpStore();
  await putSecret(server, dir, 'half', '{"access_token":"x","scope":""}');
  const r = new lo.Resolver(options(server, dir));
  await rejectsWith(r.resolveSecret('half'), 'INVALID_STORED_TOKEN', (e) => {
    assert.equal(e.invalidFields.length, 10);
    assert.ok(e.invalidFields.includes('scope') && !e.invalidFields.includes('access_token'), String(e.invalidFields));
    assert.deepEqual(e.missingFields, e.invalidFields, 'the old name still works');
    for (const f of e.invalidFields) assert.ok(e.message.includes(f), e.message);
  });
});

test('forceRefresh refreshes a fresh token and resolve then serves the new one', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  const r = new lo.Resolver(options(server, dir));
  const old = await r.resolve(s.workspaceId);
  assert.equal(await r.resolve(s.workspaceId), old);
  assert.equal(await r.resolve(s.workspaceId), old, 'served from memory');
  const t = await r.forceRefresh(s.secretId);
  assert.notEqual(t.accessToken, s.access);
  assert.equal((await server.stored(dir, s.secretId)).access_token, t.accessToken);
  assert.equal((await r.resolve(s.workspaceId)).accessToken, t.accessToken, 'the workspace entry was forgotten');
  assert.notEqual(old.accessToken, t.accessToken);
  assert.equal((await server.counters()).token_refresh, 1);
});

test('bad options and configuration are typed errors', () => {
  const bad = [
    { store: 'ftp://x' },
    { store: 'file:' },
    { apiBase: 'http://api.linear.app' },
    { apiBase: 'file:///etc/passwd' },
    { cacheTtlSeconds: -1 },
    { cacheTtlSeconds: '60' },
    { refreshThresholdSeconds: Number.NaN },
    { httpTimeoutSeconds: 0 },
    { httpTimeoutSeconds: 1e300 },
    { leaseWaitSeconds: 0 },
    { callDeadlineSeconds: Infinity },
    { logLevel: 'loud' },
    { logger: 'console' },
    { cacheTTLSeconds: 60 },
  ];
  for (const o of bad) {
    assert.throws(
      () => new lo.Resolver({ store: 'memory:', ...o }),
      (e) => e instanceof lo.LinearOAuthError && e.code === 'INVALID_INPUT',
      JSON.stringify(o),
    );
  }
  assert.throws(() => new lo.Resolver('file:/x'), (e) => e.code === 'INVALID_INPUT');
  const notADir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lo-node-')), 'file');
  fs.writeFileSync(notADir, 'x');
  assert.throws(() => new lo.Resolver({ store: `file:${notADir}` }), (e) => e.code === 'STORE' && /not a directory/.test(e.message));
  fs.rmSync(path.dirname(notADir), { recursive: true });
  assert.ok(new lo.Resolver({ store: 'memory:' }) instanceof lo.Resolver);
  assert.ok(new lo.Resolver() instanceof lo.Resolver, 'defaults work');
  // An out-of-range environment is an error, not an aborted process.
  const saved = process.env.LINEAR_OAUTH_HTTP_TIMEOUT_S;
  process.env.LINEAR_OAUTH_HTTP_TIMEOUT_S = '1e20';
  try {
    assert.throws(
      () => lo.Resolver.fromEnv({ store: 'memory:' }),
      (e) => e.code === 'INVALID_INPUT' && e.message.includes('LINEAR_OAUTH_HTTP_TIMEOUT_S'),
    );
  } finally {
    if (saved === undefined) delete process.env.LINEAR_OAUTH_HTTP_TIMEOUT_S;
    else process.env.LINEAR_OAUTH_HTTP_TIMEOUT_S = saved;
  }
});

test('Resolver.fromEnv reads the CLI environment variables; options override them', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  const saved = { ...process.env };
  try {
    process.env.LINEAR_OAUTH_STORE = `file:${dir}`;
    process.env.LINEAR_OAUTH_API_BASE = server.base;
    process.env.LINEAR_OAUTH_AUTHORIZE_URL = server.authorizeUrl;
    process.env.LINEAR_OAUTH_REFRESH_THRESHOLD_S = '7200';
    process.env.LINEAR_OAUTH_CACHE_TTL_S = '60';
    const r = lo.Resolver.fromEnv();
    const t = await r.resolve(s.workspaceId);
    assert.notEqual(t.accessToken, s.access, 'the 7200 s threshold from the environment applied');
    const other = lo.Resolver.fromEnv({ refreshThresholdSeconds: 60 });
    other.invalidate(s.workspaceId);
    assert.equal((await other.resolve(s.workspaceId)).accessToken, t.accessToken, 'override: fresh, no refresh');
    assert.equal((await server.counters()).token_refresh, 1);
    process.env.LINEAR_OAUTH_CACHE_TTL_S = 'soon';
    assert.throws(() => lo.Resolver.fromEnv(), (e) => e.code === 'INVALID_INPUT' && /LINEAR_OAUTH_CACHE_TTL_S/.test(e.message));
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
});

test('token objects follow the host cache: an evicted token is not served, and only recent objects are kept', async () => {
  const dir = tmpStore();
  const seeded = [];
  for (let i = 0; i < 40; i++) seeded.push(await seed(server, dir, `ev${i}`, 3600));
  const r = new lo.Resolver(options(server, dir, { cacheMaxEntries: 8 }));
  const first = await r.resolve(seeded[0].workspaceId);
  assert.equal(await r.resolve(seeded[0].workspaceId), first, 'served again from memory');
  // Changed behind the resolver's back: seen only once the host dropped it.
  await seed(server, dir, 'ev0', 3600, { fields: { access_token: 'ev0-rotated-elsewhere' } });
  // Eight more tokens, by secret id: the host evicts ev0's to stay under 8
  // entries (this resolver's own map of workspaces is far from the bound).
  for (const s of seeded.slice(1, 9)) await r.resolveSecret(s.secretId);
  const after = await r.resolve(seeded[0].workspaceId);
  assert.notEqual(after, first, 'the evicted token is not served');
  assert.equal(after.accessToken, 'ev0-rotated-elsewhere');
  const made = [];
  for (const s of seeded.slice(1)) made.push(new WeakRef(await r.resolve(s.workspaceId)));
  // Only recent objects are kept (two generations of at most the bound):
  // once collected, the others are gone.
  await sleep(0);
  v8.setFlagsFromString('--expose-gc');
  vm.runInNewContext('gc')();
  const alive = made.filter((w) => w.deref() !== undefined).length;
  assert.ok(alive <= 16, `${alive} of ${made.length} token objects still alive`);
  // A workspace the host still holds keeps its object.
  const last = seeded.at(-1).workspaceId;
  assert.equal(await r.resolve(last), await r.resolve(last));
});

test('loadInfo: the precompiled component was used (no JIT)', () => {
  const info = lo.loadInfo();
  assert.equal(info.compiledFallback, false);
  assert.equal(typeof info.loadTimeMs, 'number');
  assert.ok(info.loadTimeMs >= 0 && info.loadTimeMs < 1000, String(info.loadTimeMs));
});

test('cacheMaxEntries bounds the cache: evicted workspaces resolve again without a token request', async () => {
  const dir = tmpStore();
  const seeded = [];
  for (let i = 0; i < 40; i++) seeded.push(await seed(server, dir, `ws${i}`, 3600));
  const r = new lo.Resolver(options(server, dir, { cacheMaxEntries: 8 }));
  for (let pass = 0; pass < 2; pass++) {
    for (const s of seeded) assert.equal((await r.resolve(s.workspaceId)).accessToken, s.access);
  }
  assert.equal((await server.counters()).token_requests, 0);
  for (const bad of [0, -1, 2.5]) {
    assert.throws(
      () => new lo.Resolver(options(server, dir, { cacheMaxEntries: bad })),
      (e) => e.code === 'INVALID_INPUT' && /cacheMaxEntries/.test(e.message),
    );
  }
  assert.throws(() => new lo.Resolver(options(server, dir, { cacheMaxEntries: '8' })), (e) => e.code === 'INVALID_INPUT');
});
