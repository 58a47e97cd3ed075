// The 401 round trip in one line: `resolver.fetch(workspaceId, url, init)` and
// `fetchBySecretId` against the test server's GraphQL endpoint, which answers
// 401 to a token killed at "Linear" (`/_admin/kill-access-token`) or, with the
// `graphql_unauthorized_next` fault, to any token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';

import lo from '../index.js';
import { useServer, tmpStore, seed, options } from './helpers.mjs';

let server;
useServer((s) => (server = s));

const QUERY = JSON.stringify({ query: '{ viewer { id } }' });
const post = (extra = {}) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: QUERY, ...extra });

// Records what the wrapper hands to the global fetch, then sends it.
async function spying(run) {
  const real = globalThis.fetch;
  const sent = [];
  globalThis.fetch = (input, init) => {
    sent.push(new Headers(init && init.headers));
    return real(input, init);
  };
  try {
    return { result: await run(), sent };
  } finally {
    globalThis.fetch = real;
  }
}

for (const by of ['workspace', 'secret']) {
  test(`fetch by ${by}: a killed token succeeds after exactly one refresh`, async () => {
    const dir = tmpStore();
    const s = await seed(server, dir, 'acme', 3600); // fresh: only the 401 refreshes
    const r = new lo.Resolver(options(server, dir));
    const call = (init) =>
      by === 'workspace' ? r.fetch(s.workspaceId, `${server.base}/graphql`, init) : r.fetchBySecretId(s.secretId, `${server.base}/graphql`, init);
    let res = await call(post());
    assert.equal(res.status, 200);
    assert.equal((await res.json()).data.viewer.id.length > 0, true);
    await server.killAccessToken(s.access);
    const before = await server.counters();
    const { result, sent } = await spying(() => call(post({ headers: { 'content-type': 'application/json', 'x-caller': 'kept' } })));
    assert.equal(result.status, 200, await result.clone().text());
    const after = await server.counters();
    assert.equal(after.token_refresh - before.token_refresh, 1);
    assert.equal(after.graphql - before.graphql, 2);
    assert.equal(sent.length, 2);
    assert.equal(sent[0].get('authorization'), `Bearer ${s.access}`);
    const stored = (await server.stored(dir, s.secretId)).access_token;
    assert.notEqual(stored, s.access);
    assert.equal(sent[1].get('authorization'), `Bearer ${stored}`);
    for (const h of sent) assert.equal(h.get('x-caller'), 'kept');
    // The new token is cached: one GraphQL call, no refresh.
    res = await call(post());
    assert.equal(res.status, 200);
    assert.equal((await server.counters()).token_refresh, after.token_refresh);
  });
}

test('fetch: a second 401 is the response, after exactly one retry', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  const r = new lo.Resolver(options(server, dir));
  await server.faults({ graphql_unauthorized_next: 5 });
  const before = await server.counters();
  const res = await r.fetch(s.workspaceId, `${server.base}/graphql`, post());
  assert.equal(res.status, 401);
  assert.equal((await res.json()).errors[0].extensions.code, 'AUTHENTICATION_ERROR');
  const after = await server.counters();
  assert.equal(after.graphql - before.graphql, 2, 'exactly one retry');
  assert.equal(after.token_refresh - before.token_refresh, 1);
});

test('fetch: a Request input is sent twice with its body; a stream body is not retried', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  const r = new lo.Resolver(options(server, dir));
  await server.killAccessToken(s.access);
  const request = new Request(`${server.base}/graphql`, post());
  let before = await server.counters();
  let res = await r.fetch(s.workspaceId, request);
  assert.equal(res.status, 200);
  assert.equal((await server.counters()).graphql - before.graphql, 2);

  const t = await r.resolve(s.workspaceId);
  await server.killAccessToken(t.accessToken);
  before = await server.counters();
  const stream = new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode(QUERY));
      c.close();
    },
  });
  res = await r.fetch(s.workspaceId, `${server.base}/graphql`, post({ body: stream, duplex: 'half' }));
  assert.equal(res.status, 401);
  const after = await server.counters();
  assert.equal(after.graphql - before.graphql, 1);
  assert.equal(after.token_refresh - before.token_refresh, 0);
});

test('fetch: a stale 401 gets the newer stored token without a refresh; reportUnauthorizedSecret', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  const first = new lo.Resolver(options(server, dir));
  const second = new lo.Resolver(options(server, dir));
  assert.equal((await second.fetchBySecretId(s.secretId, `${server.base}/graphql`, post())).status, 200); // caches the old token
  await server.killAccessToken(s.access);
  assert.equal((await first.fetch(s.workspaceId, `${server.base}/graphql`, post())).status, 200);
  const refreshes = (await server.counters()).token_refresh;
  assert.equal(refreshes, 1);
  assert.equal((await second.fetchBySecretId(s.secretId, `${server.base}/graphql`, post())).status, 200);
  assert.equal((await server.counters()).token_refresh, refreshes);
  const stored = (await server.stored(dir, s.secretId)).access_token;
  const t = await second.reportUnauthorizedSecret(s.secretId, s.access);
  assert.equal(t.accessToken, stored);
  const newer = await second.reportUnauthorizedSecret(s.secretId, stored);
  assert.notEqual(newer.accessToken, stored);
  assert.equal((await server.counters()).token_refresh, refreshes + 1);
  await assert.rejects(second.reportUnauthorizedSecret(42, 'x'), (e) => e.code === 'INVALID_INPUT');
});

test('fetch rejects with the resolver error when there is no token, and tokens stay hidden', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  const r = new lo.Resolver(options(server, dir));
  await assert.rejects(r.fetch('org-nope', `${server.base}/graphql`, post()), (e) => e.code === 'NOT_REGISTERED');
  const t = await r.resolve(s.workspaceId);
  assert.ok(!inspect(r).includes(t.accessToken));
  assert.ok(!inspect(t).includes(t.accessToken));
  assert.ok(!JSON.stringify(t).includes(t.accessToken));
});

test('expiresAtDate is the instant of expiresAt', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  const t = await new lo.Resolver(options(server, dir)).resolve(s.workspaceId);
  const d = t.expiresAtDate;
  assert.ok(d instanceof Date);
  assert.equal(d.toISOString(), t.expiresAt);
  assert.notEqual(t.expiresAtDate, d, 'a new Date each read');
  assert.ok(Math.abs(d.getTime() - (Date.now() + 3600e3)) < 10e3);
  assert.ok(!Object.keys(t).includes('expiresAtDate'));
});
