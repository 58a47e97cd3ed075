// One end-to-end pass through the public API: a seeded workspace is resolved
// (with a refresh), served from the cache, reported after a 401,
// force-refreshed, and fails with a typed error once its grant is gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import lo from '../index.js';
import { useServer, tmpStore, seed, options } from './helpers.mjs';

let server;
useServer((s) => (server = s));

test('seed, resolve with a refresh, report a 401, force a refresh, fail typed', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 30); // due: the first resolve refreshes
  const r = new lo.Resolver(options(server, dir));
  const t = await r.resolve(s.workspaceId);
  assert.ok(t instanceof lo.LinearOAuthToken);
  assert.notEqual(t.accessToken, s.access);
  assert.deepEqual(
    [t.scope, t.workspaceSlug, t.secretId, t.workspaceId],
    ['read write', 'acme', s.secretId, s.workspaceId],
  );
  const stored = await server.stored(dir, s.secretId);
  assert.deepEqual([stored.access_token, stored.expires_at], [t.accessToken, t.expiresAt]);
  assert.equal(await r.resolve(s.workspaceId), t, 'served from the cache');
  assert.equal((await r.resolveSecret(s.secretId)).accessToken, t.accessToken);

  // Linear answered 401 with the token: one new token.
  const reported = await r.reportUnauthorized(s.workspaceId, t.accessToken);
  assert.ok(![s.access, t.accessToken].includes(reported.accessToken));
  const forced = await r.forceRefresh(s.secretId);
  assert.notEqual(forced.accessToken, reported.accessToken);
  assert.equal((await r.resolve(s.workspaceId)).accessToken, forced.accessToken);
  assert.equal((await server.counters()).token_refresh_ok, 3);

  await assert.rejects(r.resolve('org-nope'), (e) => e instanceof lo.LinearOAuthError && e.code === 'NOT_REGISTERED');
  const spent = await server.spend((await server.stored(dir, s.secretId)).refresh_token); // elsewhere, never stored
  assert.equal(spent.status, 200);
  await assert.rejects(r.forceRefresh(s.secretId), (e) => {
    assert.ok(e instanceof lo.LinearOAuthError);
    assert.equal(e.code, 'REAUTHORIZATION_REQUIRED');
    assert.ok(!e.message.includes(s.refresh));
    return true;
  });
});
