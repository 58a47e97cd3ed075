// Webhooks through the Node API: deliveries signed by the test server as
// Linear signs them, verified and handled by the resolver. The rule matrix
// lives in crates/core and crates/host/tests; this checks the translation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';

import lo from '../index.js';
import { useServer, tmpStore, seed, options, CLIENT_ID } from './helpers.mjs';

let server;
useServer((s) => (server = s));

const sign = (secret, org, extra = {}) => server.webhook({ secret, organization_id: org, ...extra });

test('verifyWebhook returns the event, from a Buffer or a string, cached or not', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600, { fields: { webhook_signing_secret: 'whsec-acme' } });
  const r = new lo.Resolver(options(server, dir));
  const d = await sign('whsec-acme', s.workspaceId);
  const e = await r.verifyWebhook(Buffer.from(d.body), d.signature, d.delivery_id);
  assert.deepEqual(
    { type: e.type, action: e.action, org: e.organizationId, matched: e.matched, delivery: e.deliveryId, outcome: e.outcome },
    { type: 'Issue', action: 'create', org: s.workspaceId, matched: 'workspace', delivery: d.delivery_id, outcome: undefined },
  );
  assert.equal(JSON.parse(e.data).identifier, 'ACM-1');
  assert.equal(e.timestampMs, JSON.parse(d.body).webhookTimestamp);
  // Second time from the cached secret (settled on this thread), as a string and a Uint8Array.
  assert.equal((await r.verifyWebhook(d.body, d.signature)).matched, 'workspace');
  assert.equal((await r.verifyWebhook(new Uint8Array(Buffer.from(d.body)), d.signature)).type, 'Issue');
  assert.ok(!inspect(e).includes('whsec'));
});

test('refusals carry their own codes and never the secret', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600, { fields: { webhook_signing_secret: 'whsec-acme' } });
  const r = new lo.Resolver(options(server, dir));
  const forged = await sign('whsec-acme', s.workspaceId, { bad_signature: true });
  await assert.rejects(r.verifyWebhook(forged.body, forged.signature), (e) => {
    assert.ok(e instanceof lo.LinearOAuthError);
    assert.equal(e.code, 'WEBHOOK_SIGNATURE');
    assert.ok(!e.message.includes('whsec'));
    return true;
  });
  const stale = await sign('whsec-acme', s.workspaceId, { age_ms: 120000 });
  await assert.rejects(r.verifyWebhook(stale.body, stale.signature), (e) => e.code === 'WEBHOOK_STALE');
  await assert.rejects(r.verifyWebhook('[]', '0'.repeat(64)), (e) => e.code === 'WEBHOOK_MALFORMED');
  await assert.rejects(r.verifyWebhook({}, forged.signature), (e) => e.code === 'INVALID_INPUT');
  await assert.rejects(r.verifyWebhook(forged.body, undefined), (e) => e.code === 'INVALID_INPUT');
  assert.ok(lo.ERROR_CODES.includes('WEBHOOK_STALE'));
});

test('handleWebhook marks a removed app revoked, once; setWebhookSecret stores the stack secret', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  const r = new lo.Resolver(options(server, dir, { webhookSecretId: 'webhook-stack' }));
  await r.setWebhookSecret('whsec-stack');
  await r.resolve(s.workspaceId);
  const d = await sign('whsec-stack', s.workspaceId, { event: 'app-revoked', oauth_client_id: CLIENT_ID });
  const e = await r.handleWebhook(d.body, d.signature, d.delivery_id);
  assert.deepEqual([e.type, e.action, e.outcome, e.matched], ['OAuthApp', 'revoked', 'revoked', 'stack']);
  await assert.rejects(r.resolve(s.workspaceId), (err) => err.code === 'REVOKED');
  assert.equal((await r.handleWebhook(d.body, d.signature)).outcome, 'already-revoked');
  assert.equal((await server.counters()).token_requests, 0);
  await r.setWebhookSecret('whsec-own', { secretId: s.secretId });
  assert.equal((await server.stored(dir, s.secretId)).webhook_signing_secret, 'whsec-own');
});
