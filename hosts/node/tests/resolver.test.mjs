// SPEC.md's resolve behaviour through the Node API, against the test server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import lo from '../index.js';
import {
  useServer,
  tmpStore,
  seed,
  options,
  captureLogger,
  writeSecret,
  writeRow,
  readSecret,
  secretFile,
  tokenJson,
  isoIn,
  sleep,
  settleLogs,
} from './helpers.mjs';

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
  writeSecret(dir, s.secretId, tokenJson({ access: 'other', refresh: 'r', expiresAt: isoIn(3600), workspaceId: s.workspaceId, slug: 'acme' }));
  const again = await r.resolve(s.workspaceId);
  assert.equal(again, t, 'the same token object is handed out again');
  assert.equal((await r.resolveSecret(s.secretId)).accessToken, s.access, 'the secret path shares the cache');
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
  writeSecret(dir, s.secretId, tokenJson({ access: 'rotated-elsewhere', refresh: 'r', expiresAt: isoIn(3600), workspaceId: s.workspaceId, slug: 'acme' }));
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

test('resolveSecret works without a registry row', async () => {
  const dir = tmpStore();
  const issued = await server.issue({ scope: 'read' });
  writeSecret(dir, 'arn:aws:secretsmanager:us-east-1:1:secret:x/y', tokenJson({ access: issued.access_token, refresh: issued.refresh_token, expiresAt: isoIn(3600), workspaceId: 'org-x', slug: 'xslug' }));
  const r = new lo.Resolver(options(server, dir));
  const t = await r.resolveSecret('arn:aws:secretsmanager:us-east-1:1:secret:x/y');
  assert.equal(t.accessToken, issued.access_token);
  assert.equal(t.workspaceId, 'org-x');
  assert.equal(t.workspaceSlug, 'xslug');
});

test('not registered, revoked, unknown status, secret missing, invalid input', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  const log = captureLogger();
  const r = new lo.Resolver(options(server, dir, { logger: log }));
  await rejectsWith(r.resolve('org-nope'), 'NOT_REGISTERED');
  for (const status of ['revoked', '', 'paused', undefined]) {
    const row = { workspace_slug: 'acme', oauth_secret_arn: s.secretId };
    if (status !== undefined) row.status = status;
    writeRow(dir, s.workspaceId, row);
    r.invalidate(s.workspaceId);
    await rejectsWith(r.resolve(s.workspaceId), 'REVOKED');
  }
  await settleLogs();
  assert.ok(log.records.some((x) => x.level === 'warn' && x.message.includes('status') && JSON.stringify(x).includes('paused')), log.text());
  writeRow(dir, 'org-gone', { workspace_slug: 'gone', oauth_secret_arn: 'no-such-secret', status: 'active' });
  await rejectsWith(r.resolve('org-gone'), 'SECRET_MISSING');
  await rejectsWith(r.resolve(''), 'INVALID_INPUT');
  await rejectsWith(r.resolve(42), 'INVALID_INPUT');
  await rejectsWith(r.resolveSecret(undefined), 'INVALID_INPUT');
  await rejectsWith(r.forceRefresh(null), 'INVALID_INPUT');
  assert.throws(() => r.invalidate({}), (e) => e instanceof lo.LinearOAuthError && e.code === 'INVALID_INPUT');
});

test('an expiring token is refreshed and written back', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 30); // inside the 60 s threshold
  const log = captureLogger();
  const r = new lo.Resolver(options(server, dir, { logger: log }));
  const t = await r.resolve(s.workspaceId);
  assert.notEqual(t.accessToken, s.access);
  const stored = readSecret(dir, s.secretId);
  assert.equal(stored.access_token, t.accessToken);
  assert.notEqual(stored.refresh_token, s.refresh, 'rotated refresh token stored');
  assert.equal(await server.refreshLive(stored.refresh_token), true);
  assert.equal(await server.refreshLive(s.refresh), false);
  assert.equal(stored.installed_at, '2026-01-01T00:00:00.000Z', 'installed_at preserved');
  assert.notEqual(stored.updated_at, '2026-01-01T00:00:00.000Z', 'updated_at set');
  assert.deepEqual(stored.team_hint, { kept: true }, 'unknown fields kept');
  assert.equal(stored.expires_at, t.expiresAt);
  assert.equal(stored.scope, 'read write');
  assert.equal(stored.client_secret, 'test-client-secret');
  assert.ok(Date.parse(t.expiresAt) > Date.now() + 86000e3);
  // The new token is fresh: no second refresh.
  r.invalidate(s.workspaceId);
  assert.equal((await r.resolve(s.workspaceId)).accessToken, t.accessToken);
  assert.equal((await server.counters()).token_refresh, 1);
  await settleLogs();
  const info = log.records.find((x) => x.level === 'info' && /refreshed/.test(x.message));
  assert.ok(info, log.text());
  assert.equal(info.workspace_id, s.workspaceId);
  assert.ok(log.text().includes('acme'));
  assert.ok(log.text().includes(t.expiresAt), 'logs the new expiry');
});

test('a missing refresh_token in the response keeps the old one', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 10);
  await server.faults({ omit_refresh_token: true });
  const r = new lo.Resolver(options(server, dir));
  const t = await r.resolve(s.workspaceId);
  assert.notEqual(t.accessToken, s.access);
  assert.equal(readSecret(dir, s.secretId).refresh_token, s.refresh);
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
  writeSecret(dir, s2.secretId, tokenJson({ access: 'changed', refresh: 'r', expiresAt: isoIn(3600), workspaceId: s2.workspaceId, slug: 'beta' }));
  assert.equal((await uncached.resolve(s2.workspaceId)).accessToken, 'changed', 'TTL 0 re-reads every time');

  const s3 = await seed(server, dir, 'gamma', 3600);
  const short = new lo.Resolver(options(server, dir, { cacheTtlSeconds: 0.5 }));
  const first = await short.resolve(s3.workspaceId);
  assert.equal(await short.resolve(s3.workspaceId), first);
  writeSecret(dir, s3.secretId, tokenJson({ access: 'later', refresh: 'r', expiresAt: isoIn(3600), workspaceId: s3.workspaceId, slug: 'gamma' }));
  assert.equal((await short.resolve(s3.workspaceId)).accessToken, s3.access, 'still cached');
  await sleep(600);
  assert.equal((await short.resolve(s3.workspaceId)).accessToken, 'later', 'the TTL ran out');
});

test('a malformed expires_at counts as expiring and is logged as a warning', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  writeSecret(dir, s.secretId, tokenJson({ access: s.access, refresh: s.refresh, expiresAt: 'next tuesday', workspaceId: s.workspaceId, slug: 'acme' }));
  const log = captureLogger();
  const r = new lo.Resolver(options(server, dir, { logger: log }));
  assert.notEqual((await r.resolve(s.workspaceId)).accessToken, s.access);
  await settleLogs();
  assert.ok(log.records.some((x) => x.level === 'warn' && /malformed/.test(JSON.stringify(x))), log.text());
});

test('token endpoint errors are typed, leave the store alone, and the next call re-reads', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', -5); // expired: a 503 cannot be served around
  const r = new lo.Resolver(options(server, dir));
  const before = fs.readFileSync(secretFile(dir, s.secretId), 'utf8');
  await server.faults({ fail_next: { count: 3, status: 503 } });
  await rejectsWith(r.resolve(s.workspaceId), 'TOKEN_ENDPOINT', (e) => {
    assert.equal(e.status, 503);
    assert.equal(e.error, 'server_error');
    assert.equal(e.description, null);
  });
  assert.equal(fs.readFileSync(secretFile(dir, s.secretId), 'utf8'), before, 'store untouched');
  // An operator fixes the secret; the next call sees it, not a stale cached token.
  writeSecret(dir, s.secretId, tokenJson({ access: 'fixed', refresh: s.refresh, expiresAt: isoIn(3600), workspaceId: s.workspaceId, slug: 'acme' }));
  assert.equal((await r.resolve(s.workspaceId)).accessToken, 'fixed');

  const s2 = await seed(server, dir, 'beta', 10);
  await server.faults({ fail_next: { count: 1, status: 400, body: '{"error":"invalid_request","error_description":"Bad things"}' } });
  await rejectsWith(r.resolve(s2.workspaceId), 'TOKEN_ENDPOINT', (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.error, 'invalid_request');
    assert.equal(e.description, 'Bad things');
  });
});

test('transport failures: malformed, oversize, dropped responses', async () => {
  const dir = tmpStore();
  // No failure memory, so the retry below asks again.
  const r = new lo.Resolver(options(server, dir, { failureMemorySeconds: 0 }));
  for (const [i, fault] of [{ malformed_next: 1 }, { oversize_next: 1 }, { drop_next: 1 }].entries()) {
    const s = await seed(server, dir, `beta${i}`, -5);
    await server.faults(fault);
    await rejectsWith(r.resolve(s.workspaceId), 'TRANSPORT');
    // The knob is spent and the token was never rotated: a retry works.
    assert.notEqual((await r.resolve(s.workspaceId)).accessToken, s.access, JSON.stringify(fault));
  }
});

test('an unreachable token endpoint is a TRANSPORT error', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', -5); // expired: nothing to serve around the outage
  const r = new lo.Resolver(options(server, dir, { apiBase: 'http://127.0.0.1:9', httpTimeoutSeconds: 2 }));
  await rejectsWith(r.resolve(s.workspaceId), 'TRANSPORT');
});

test('a broken store is a STORE error', async () => {
  const dir = tmpStore();
  const r = new lo.Resolver(options(server, dir));
  fs.writeFileSync(path.join(dir, 'registry.json'), '{not json');
  await rejectsWith(r.resolve('org-any'), 'STORE', (e) => assert.match(e.message, /registry/));
});

// Another refresher spends the refresh token while our refresh request is in
// flight (the server holds ours for `latency_ms`; the competitor's goes first).
async function raceAnotherRefresher(dir, s, { storeExpiresIn }) {
  const r = new lo.Resolver(options(server, dir));
  await server.faults({ latency_ms: 800 });
  const pending = r.resolve(s.workspaceId);
  pending.catch(() => {}); // awaited by the caller
  // Wait until our refresh request is being held by the server.
  for (let i = 0; (await server.counters()).token_requests === 0; i++) {
    assert.ok(i < 200, 'the refresh request never arrived');
    await sleep(10);
  }
  await server.faults({ latency_ms: 0 });
  const spent = await server.spend(s.refresh);
  assert.equal(spent.status, 200);
  if (storeExpiresIn !== null) {
    writeSecret(dir, s.secretId, tokenJson({ access: spent.body.access_token, refresh: spent.body.refresh_token, expiresAt: isoIn(storeExpiresIn), workspaceId: s.workspaceId, slug: s.slug }));
  }
  return { pending, other: spent.body };
}

test('invalid_grant after a concurrent rotation adopts the rotated token', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 10);
  const { pending, other } = await raceAnotherRefresher(dir, s, { storeExpiresIn: 3600 });
  const t = await pending;
  assert.equal(t.accessToken, other.access_token);
  const c = await server.counters();
  assert.equal(c.invalid_grant, 1);
  assert.equal(c.token_refresh, 2, 'ours (refused) and the competitor’s; no retry');
});

test('invalid_grant, rotated but expiring: one more refresh with the new token', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 10);
  const { pending, other } = await raceAnotherRefresher(dir, s, { storeExpiresIn: 5 });
  const t = await pending;
  assert.notEqual(t.accessToken, other.access_token);
  const c = await server.counters();
  assert.equal(c.invalid_grant, 1);
  assert.equal(c.token_refresh, 3);
  const stored = readSecret(dir, s.secretId);
  assert.equal(stored.access_token, t.accessToken);
  assert.equal(await server.refreshLive(stored.refresh_token), true);
});

test('invalid_grant with an unchanged token requires reauthorization and keeps the secret', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 10);
  const before = fs.readFileSync(secretFile(dir, s.secretId), 'utf8');
  const { pending } = await raceAnotherRefresher(dir, s, { storeExpiresIn: null });
  await rejectsWith(pending, 'REAUTHORIZATION_REQUIRED');
  assert.equal(fs.readFileSync(secretFile(dir, s.secretId), 'utf8'), before, 'nothing deleted or blanked');
  // It stays an error: no cached bogus state.
  const r = new lo.Resolver(options(server, dir));
  await rejectsWith(r.resolve(s.workspaceId), 'REAUTHORIZATION_REQUIRED');
  assert.equal(fs.readFileSync(secretFile(dir, s.secretId), 'utf8'), before);
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
  assert.equal(readSecret(dir, s.secretId).access_token, t.accessToken);
  assert.equal((await r.resolve(s.workspaceId)).accessToken, t.accessToken, 'the workspace entry was forgotten');
  assert.notEqual(old.accessToken, t.accessToken);
  assert.equal((await server.counters()).token_refresh, 1);
});

test('options and configuration errors are INVALID_INPUT', () => {
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

test('loadInfo: the precompiled component was used (no JIT)', () => {
  const info = lo.loadInfo();
  assert.equal(info.compiledFallback, false);
  assert.equal(typeof info.loadTimeMs, 'number');
  assert.ok(info.loadTimeMs >= 0 && info.loadTimeMs < 1000, String(info.loadTimeMs));
});
