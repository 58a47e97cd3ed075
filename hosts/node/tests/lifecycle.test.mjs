// The token lifecycle through Node: what the JS layer's cache does after a
// 401 report and a background refresh, and retryAfter on errors. (The
// lifecycle itself is the host's: crates/host/tests/lifecycle.rs.)
import { test } from 'node:test';
import assert from 'node:assert/strict';

import lo from '../index.js';
import { useServer, tmpStore, seed, options, sleep } from './helpers.mjs';

let server;
useServer((s) => (server = s));

async function until(cond, ms = 10_000) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

test('reportUnauthorized: the JS cache then serves the new token; bad arguments are typed', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  const r = new lo.Resolver(options(server, dir));
  assert.equal((await r.resolve(s.workspaceId)).accessToken, s.access);
  const fresh = (await r.reportUnauthorized(s.workspaceId, s.access)).accessToken;
  assert.notEqual(fresh, s.access);
  assert.equal((await r.resolve(s.workspaceId)).accessToken, fresh, 'the settled old token was forgotten');
  await assert.rejects(r.reportUnauthorized(s.workspaceId, 42), (e) => e.code === 'INVALID_INPUT');
  await assert.rejects(r.reportUnauthorized('org-nope', 'x'), (e) => e.code === 'NOT_REGISTERED');
});

test('token endpoint errors carry retryAfter', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', -5); // expired: nothing to serve around it
  const r = new lo.Resolver(options(server, dir));
  await server.faults({ fail_next: { count: 3, status: 429 }, fail_retry_after: '120' });
  await assert.rejects(r.resolve(s.workspaceId), (e) => {
    assert.equal(e.code, 'TOKEN_ENDPOINT');
    assert.equal(e.status, 429);
    assert.ok(e.retryAfter > 100 && e.retryAfter <= 120, String(e.retryAfter));
    return true;
  });
  assert.equal((await server.counters()).token_requests, 1);
});

test('refresh-ahead refreshes in the background while callers keep the valid token', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 300); // inside the default 600 s window
  await server.faults({ latency_ms: 300 });
  const r = new lo.Resolver(options(server, dir));
  const started = Date.now();
  assert.equal((await r.resolve(s.workspaceId)).accessToken, s.access);
  // The JS thread is free meanwhile: timers keep firing during the refresh.
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  await until(async () => (await server.stored(dir, s.secretId)).access_token !== s.access);
  const fresh = (await server.stored(dir, s.secretId)).access_token;
  await until(async () => (await r.resolve(s.workspaceId)).accessToken === fresh);
  clearInterval(timer);
  assert.ok(ticks > 5, `the event loop ran during the refresh (${ticks} ticks in ${Date.now() - started} ms)`);
  assert.equal((await server.counters()).token_requests, 1);
  const off = new lo.Resolver(options(server, dir, { refreshAheadSeconds: 0 }));
  const s2 = await seed(server, dir, 'beta', 300);
  assert.equal((await off.resolve(s2.workspaceId)).accessToken, s2.access);
  await sleep(200);
  assert.equal((await server.counters()).token_requests, 1);
  assert.throws(() => new lo.Resolver(options(server, dir, { failureMemorySeconds: -1 })), (e) => e.code === 'INVALID_INPUT');
});
