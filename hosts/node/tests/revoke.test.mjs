// `revoke` through the Node API: the translation of the host's revoke (the
// behaviour matrix lives in crates/host/tests): outcome, purge rules, redaction.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';

import lo from '../index.js';
import { useServer, tmpStore, seed, options } from './helpers.mjs';

let server;
useServer((s) => (server = s));

test('revoke ends the grant at Linear and reports how', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  const r = new lo.Resolver(options(server, dir));
  await r.resolve(s.workspaceId); // cached before, forgotten after
  const rev = await r.revoke(s.workspaceId);
  assert.deepEqual(
    { outcome: rev.outcome, confirmed: rev.confirmed, linearStatus: rev.linearStatus, purged: rev.purged, secretId: rev.secretId },
    { outcome: 'revoked', confirmed: true, linearStatus: 200, purged: false, secretId: s.secretId },
  );
  assert.equal(await server.refreshLive(s.refresh), false);
  await assert.rejects(r.resolve(s.workspaceId), (e) => e.code === 'REVOKED');
  const shown = inspect(rev) + JSON.stringify(rev);
  assert.ok(!shown.includes(s.access) && !shown.includes(s.refresh));
});

test('an unconfirmed revoke keeps the secret unless forced', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  await server.faults({ revoke_fail_next: { count: 10, status: 503 }, fail_next: { count: 10, status: 503 } });
  const r = new lo.Resolver(options(server, dir));
  let rev = await r.revoke(s.workspaceId, { purge: true });
  assert.equal(rev.outcome, 'failed');
  assert.equal(rev.confirmed, false);
  assert.ok(rev.detail);
  assert.equal(rev.purged, false);
  assert.notEqual(await server.stored(dir, s.secretId), null);
  // The kept secret is marked: the secret-id path is revoked too, with no token request.
  const before = (await server.counters()).token_requests;
  await assert.rejects(new lo.Resolver(options(server, dir)).resolveSecret(s.secretId), (e) => e.code === 'REVOKED');
  assert.equal((await server.counters()).token_requests, before);
  rev = await r.revoke(s.workspaceId, { purge: true, force: true });
  assert.equal(rev.purged, true);
  assert.equal(await server.stored(dir, s.secretId), null);
  await assert.rejects(r.revoke(s.workspaceId, 'purge'), (e) => e.code === 'INVALID_INPUT');
});

test('a revoke drops only its workspace: another workspace keeps its token object and serves no I/O', async () => {
  const dir = tmpStore();
  const a = await seed(server, dir, 'acme', 3600);
  const b = await seed(server, dir, 'beta', 3600);
  const r = new lo.Resolver(options(server, dir));
  const ta = await r.resolve(a.workspaceId);
  const tb = await r.resolve(b.workspaceId);
  await r.resolveSecret(a.secretId);
  // Changed behind the resolver's back: read again only if the cache dropped it.
  await seed(server, dir, 'beta', 3600, { fields: { access_token: 'beta-rotated-elsewhere' } });
  await r.revoke(a.workspaceId);
  // The host's rule dropped acme's entries (by workspace and by secret)...
  await assert.rejects(r.resolve(a.workspaceId), (e) => e.code === 'REVOKED');
  await assert.rejects(r.resolveSecret(a.secretId), (e) => e.code === 'REVOKED');
  // ...and kept beta's: the very same object, from memory.
  assert.equal(await r.resolve(b.workspaceId), tb);
  assert.equal(tb.accessToken, b.access);
  assert.notEqual(ta, tb);
});
