// The token lifecycle through Node: 401 reports, Retry-After on errors,
// serving through an outage, and refresh-ahead off the JS thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import lo from '../index.js';
import { useServer, tmpStore, seed, options, readSecret, sleep } from './helpers.mjs';

let server;
useServer((s) => (server = s));

async function until(cond, ms = 10_000) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

test('reportUnauthorized refreshes once for concurrent reporters, never for a stale token', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  const r = new lo.Resolver(options(server, dir));
  assert.equal((await r.resolve(s.workspaceId)).accessToken, s.access);
  const got = await Promise.all(Array.from({ length: 16 }, () => r.reportUnauthorized(s.workspaceId, s.access)));
  const fresh = got[0].accessToken;
  assert.notEqual(fresh, s.access);
  assert.ok(got.every((t) => t.accessToken === fresh));
  assert.equal((await server.counters()).token_requests, 1);
  assert.equal(readSecret(dir, s.secretId).access_token, fresh);
  // The JS-side cache serves the new token, and a late report sends nothing.
  assert.equal((await r.resolve(s.workspaceId)).accessToken, fresh);
  assert.equal((await r.reportUnauthorized(s.workspaceId, s.access)).accessToken, fresh);
  assert.equal((await server.counters()).token_requests, 1);
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

test('an outage serves the unexpired token and shares one failure', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 30);
  const r = new lo.Resolver(options(server, dir));
  await server.faults({ fail_next: { count: 1000, status: 503 } });
  const got = await Promise.all(Array.from({ length: 32 }, () => r.resolve(s.workspaceId)));
  assert.ok(got.every((t) => t.accessToken === s.access));
  assert.equal((await server.counters()).token_requests, 3);
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
  await until(() => readSecret(dir, s.secretId).access_token !== s.access);
  const fresh = readSecret(dir, s.secretId).access_token;
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
