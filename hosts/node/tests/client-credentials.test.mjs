// Client-credentials workspaces (issue 10, item 5) through the Node API: the
// install's arguments and result, and the disabled-grant error's fields. How
// such tokens are renewed is the host's behaviour (crates/host/tests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';

import lo from '../index.js';
import { useServer, tmpStore, options } from './helpers.mjs';

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
  const stored = await server.stored(dir, installed.secretId);
  assert.equal(stored.grant_type, 'client_credentials');
  assert.equal(stored.refresh_token, undefined);
  const before = (await server.counters()).token_requests;
  const t = await r.resolve(installed.workspaceId);
  assert.equal(t.accessToken, stored.access_token);
  assert.equal((await server.counters()).token_requests, before, 'a fresh token needs no POST');
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
