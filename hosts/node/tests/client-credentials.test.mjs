// Client-credentials workspaces (issue 10, item 5) through the Node API:
// install without a browser, a new token fetched once at expiry (Linear
// issues no refresh token and keeps one active token per app), and the
// disabled-grant error naming the Linear setting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';

import lo from '../index.js';
import { useServer, tmpStore, options, readSecret, writeSecret, writeRow, isoIn, tokenJson } from './helpers.mjs';

let server;
useServer((s) => (server = s));

const APP_ID = 'node-cc-app';
const APP_SECRET = 'node-cc-secret-canary-9';

async function app(enabled = true) {
  const res = await fetch(`${server.base}/_admin/clients`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: APP_ID, client_secret: APP_SECRET, redirect_uris: [], client_credentials: enabled }),
  });
  assert.equal(res.status, 200);
}

async function accessLive(token) {
  const res = await fetch(`${server.base}/_admin/access-token-status?token=${encodeURIComponent(token)}`);
  return (await res.json()).live;
}

test('installClientCredentials stores a client-credentials token and resolve serves it', async () => {
  await app();
  const dir = tmpStore();
  const r = new lo.Resolver(options(server, dir));
  const installed = await r.installClientCredentials({
    clientId: APP_ID,
    clientSecret: APP_SECRET,
    scopes: ['read', 'write'],
    installedBy: 'node-user',
  });
  assert.equal(installed.workspaceSlug, 'testws');
  assert.equal(installed.scope, 'read write');
  assert.ok(!(inspect(installed) + JSON.stringify(installed)).includes(APP_SECRET));
  const stored = readSecret(dir, installed.secretId);
  assert.equal(stored.grant_type, 'client_credentials');
  assert.equal(stored.refresh_token, undefined);
  const before = (await server.counters()).token_requests;
  const t = await r.resolve(installed.workspaceId);
  assert.equal(t.accessToken, stored.access_token);
  assert.equal((await server.counters()).token_requests, before, 'a fresh token needs no POST');
});

test('an expiring client-credentials token is fetched anew once for many concurrent resolves', async () => {
  await app();
  const dir = tmpStore();
  const issued = await server.issue({ client_id: APP_ID, scope: 'read write', grant_type: 'client_credentials' });
  assert.equal(issued.refresh_token, undefined);
  const value = JSON.parse(
    tokenJson({ access: issued.access_token, refresh: 'x', expiresAt: isoIn(30), workspaceId: 'org-nodecc', slug: 'nodecc' }),
  );
  delete value.refresh_token;
  Object.assign(value, { grant_type: 'client_credentials', client_id: APP_ID, client_secret: APP_SECRET });
  writeSecret(dir, 'bgagent-linear-oauth-nodecc', JSON.stringify(value));
  writeRow(dir, 'org-nodecc', { workspace_slug: 'nodecc', oauth_secret_arn: 'bgagent-linear-oauth-nodecc', status: 'active' });
  const resolvers = [new lo.Resolver(options(server, dir)), new lo.Resolver(options(server, dir))];
  const tokens = await Promise.all(Array.from({ length: 16 }, (_, i) => resolvers[i % 2].resolve('org-nodecc')));
  const c = await server.counters();
  assert.deepEqual([c.token_requests, c.token_client_credentials_ok, c.token_refresh], [1, 1, 0]);
  const fresh = tokens[0].accessToken;
  assert.ok(tokens.every((t) => t.accessToken === fresh));
  assert.notEqual(fresh, issued.access_token);
  assert.equal(await accessLive(fresh), true);
  assert.equal(await accessLive(issued.access_token), false, 'one active token per app');
  const stored = readSecret(dir, 'bgagent-linear-oauth-nodecc');
  assert.equal(stored.access_token, fresh);
  assert.equal(stored.grant_type, 'client_credentials');
  assert.equal(stored.refresh_token, undefined);
  assert.deepEqual(stored.team_hint, { kept: true });
});

test('a disabled grant is a TOKEN_ENDPOINT error naming the Linear setting', async () => {
  await app(false);
  const dir = tmpStore();
  const r = new lo.Resolver(options(server, dir));
  await assert.rejects(
    r.installClientCredentials({ clientId: APP_ID, clientSecret: APP_SECRET, scopes: ['read'], installedBy: 'u' }),
    (e) => {
      assert.equal(e.code, 'TOKEN_ENDPOINT');
      assert.equal(e.status, 400);
      assert.ok(e.description.includes('Client credentials') && e.description.includes('settings'), e.description);
      assert.ok(!(e.message + inspect(e)).includes(APP_SECRET));
      return true;
    },
  );
  await app(true);
});

test('a 401 report fetches one new token and another process finds it without a POST', async () => {
  await app();
  const dir = tmpStore();
  const r = new lo.Resolver(options(server, dir));
  const other = new lo.Resolver(options(server, dir));
  const installed = await r.installClientCredentials({ clientId: APP_ID, clientSecret: APP_SECRET, scopes: ['read'], installedBy: 'u' });
  const old = (await r.resolve(installed.workspaceId)).accessToken;
  assert.equal((await other.resolve(installed.workspaceId)).accessToken, old);
  const before = (await server.counters()).token_requests;
  const fresh = (await r.reportUnauthorized(installed.workspaceId, old)).accessToken;
  assert.notEqual(fresh, old);
  assert.equal(await accessLive(old), false);
  assert.equal((await server.counters()).token_requests, before + 1);
  assert.equal((await other.reportUnauthorized(installed.workspaceId, old)).accessToken, fresh);
  assert.equal((await server.counters()).token_requests, before + 1, 'a report about a replaced token never POSTs');
});

test('a malformed installClientCredentials call rejects with INVALID_INPUT and echoes nothing', async () => {
  const r = new lo.Resolver(options(server, tmpStore()));
  for (const bad of [null, 'x', { clientId: APP_ID, clientSecret: APP_SECRET, scopes: 'read', installedBy: 'u' }, { clientId: APP_ID, clientSecret: 7, scopes: [], installedBy: 'u' }]) {
    await assert.rejects(r.installClientCredentials(bad), (e) => {
      assert.equal(e.code, 'INVALID_INPUT');
      assert.ok(!e.message.includes(APP_SECRET));
      return true;
    });
  }
  assert.equal((await server.counters()).token_requests, 0);
});
