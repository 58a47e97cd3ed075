// Calls run off the JS thread: the event loop never waits for I/O, a slow
// refresh occupies no more than its own workspace, and the JS layer shares
// one in-flight call per workspace. (How many refreshes concurrent callers
// cause is the host's behaviour: crates/host/tests and the CLI's race suite.)
import { test } from 'node:test';
import assert from 'node:assert/strict';

import lo from '../index.js';
import { useServer, tmpStore, seed, options, sleep } from './helpers.mjs';

let server;
useServer((s) => (server = s));

test('a slow refresh of one workspace does not delay another', async () => {
  const dir = tmpStore();
  const slow = await seed(server, dir, 'slow', 10);
  const fast = await seed(server, dir, 'fast', 3600);
  const r = new lo.Resolver(options(server, dir));
  await r.resolve(fast.workspaceId);
  await server.faults({ latency_ms: 1500 });
  let slowDone = false;
  const refreshing = r.resolve(slow.workspaceId).then((t) => {
    slowDone = true;
    return t;
  });
  await sleep(200); // the refresh is in flight
  const started = performance.now();
  await r.resolve(fast.workspaceId); // memory
  r.invalidate(fast.workspaceId);
  const t = await r.resolve(fast.workspaceId); // through the component and the store
  const took = performance.now() - started;
  assert.equal(t.accessToken, fast.access);
  assert.equal(slowDone, false, 'the slow refresh should still be running');
  assert.ok(took < 1000, `the other workspace waited ${took} ms`);
  assert.notEqual((await refreshing).accessToken, slow.access);
});

test('the event loop keeps running during a slow refresh', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 10);
  await server.faults({ latency_ms: 1000 });
  const r = new lo.Resolver(options(server, dir));
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 5);
  try {
    const started = performance.now();
    const p = r.resolve(s.workspaceId);
    const returnedAfter = performance.now() - started;
    await p;
    assert.ok(performance.now() - started >= 900, 'the refresh really was slow');
    assert.ok(returnedAfter < 50, `resolve() itself took ${returnedAfter} ms`);
  } finally {
    clearInterval(timer);
  }
  assert.ok(worst < 200, `the event loop stalled for ${worst} ms`);
});

test('invalidate during an in-flight resolve starts a new one for later callers', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 10);
  await server.faults({ latency_ms: 300 }); // keeps the first call (a refresh) in flight
  const r = new lo.Resolver(options(server, dir));
  const a = r.resolve(s.workspaceId);
  const b = r.resolve(s.workspaceId);
  assert.equal(a, b, 'concurrent callers share one in-flight call');
  r.invalidate(s.workspaceId);
  const c = r.resolve(s.workspaceId);
  assert.notEqual(a, c);
  assert.equal((await a).accessToken, (await c).accessToken);
  assert.equal((await server.counters()).token_requests, 1, 'the second call waited for the first refresh');
});
