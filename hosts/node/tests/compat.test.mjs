// The old module's helpers: resolveLinearOauthToken / invalidateLinearOauthCache.
// Each case runs in its own process: the helpers use a module-level resolver
// built from the environment on first use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';

import lo from '../index.js';
import { useServer, tmpStore, seed, putSecret, options, runNode, captureLogger, settleLogs } from './helpers.mjs';

let server;
useServer((s) => (server = s));

function env(dir) {
  return {
    LINEAR_OAUTH_STORE: `file:${dir}`,
    LINEAR_OAUTH_API_BASE: server.base,
    LINEAR_OAUTH_AUTHORIZE_URL: server.authorizeUrl,
  };
}

test('resolveLinearOauthToken returns the old shape from the module-level resolver', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  const script = `
    import { resolveLinearOauthToken, invalidateLinearOauthCache, LinearOauthTokenResult } from './index.mjs';
    const a = await resolveLinearOauthToken(${JSON.stringify(s.workspaceId)}, 'linear-workspaces');
    const out = { isResult: a instanceof LinearOauthTokenResult, accessOk: a.accessToken === ${JSON.stringify(s.access)},
      json: JSON.parse(JSON.stringify(a)), keys: Object.keys(a) };
    // Cached until invalidated.
    const seeded = await fetch(process.env.SEED_URL, { method: 'POST', body: process.env.SEED_BODY });
    if (!seeded.ok) throw new Error(await seeded.text());
    out.cached = (await resolveLinearOauthToken(${JSON.stringify(s.workspaceId)}, 'linear-workspaces')).accessToken === ${JSON.stringify(s.access)};
    invalidateLinearOauthCache(${JSON.stringify(s.workspaceId)});
    out.after = (await resolveLinearOauthToken(${JSON.stringify(s.workspaceId)}, 'linear-workspaces')).accessToken;
    process.stdout.write(JSON.stringify(out));
  `;
  const run = await runNode(script, {
    ...env(dir),
    SEED_URL: `${server.base}/_admin/seed`,
    SEED_BODY: JSON.stringify({ store: `file:${dir}`, slug: 'acme', fields: { access_token: 'replaced' } }),
  });
  assert.equal(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout);
  assert.equal(out.isResult, true);
  assert.equal(out.accessOk, true);
  assert.deepEqual(out.json, { scope: 'read write', workspaceSlug: 'acme', oauthSecretArn: s.secretId });
  assert.deepEqual(out.keys, ['scope', 'workspaceSlug', 'oauthSecretArn']);
  assert.equal(out.cached, true);
  assert.equal(out.after, 'replaced');
});

test('resolveLinearOauthToken logs and returns null on any failure', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', -5); // expired: a 503 cannot be served around
  await server.faults({ fail_next: { count: 3, status: 503 } });
  const script = `
    import { resolveLinearOauthToken } from './index.mjs';
    const results = [
      await resolveLinearOauthToken('org-missing', 'linear-workspaces'),
      await resolveLinearOauthToken(${JSON.stringify(s.workspaceId)}, 'linear-workspaces'),
      await resolveLinearOauthToken(undefined, 'linear-workspaces'),
    ];
    process.stdout.write(JSON.stringify(results));
  `;
  const run = await runNode(script, env(dir));
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), [null, null, null]);
  const records = run.stderr.trim().split('\n').map((l) => JSON.parse(l)).filter((r) => /resolveLinearOauthToken/.test(r.message));
  assert.deepEqual(records.map((r) => r.code), ['NOT_REGISTERED', 'TOKEN_ENDPOINT', 'INVALID_INPUT'], run.stderr);
  assert.equal(records[0].level, 'warn');
  assert.equal(records[1].level, 'error');
  assert.equal(records[0].workspace_id, 'org-missing');
});

test('resolveLinearOauthToken with a broken environment logs and returns null', async () => {
  const run = await runNode(
    `import { resolveLinearOauthToken } from './index.mjs';
     process.stdout.write(JSON.stringify(await resolveLinearOauthToken('org-x', 't')));`,
    { LINEAR_OAUTH_STORE: 'nonsense:' },
  );
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, 'null');
  const rec = JSON.parse(run.stderr.trim().split('\n').at(-1));
  assert.equal(rec.code, 'INVALID_INPUT');
  assert.equal(rec.level, 'error');
});

test('resolveLinearOauthToken uses options.resolver when given, logging through its logger', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  const log = captureLogger();
  const r = new lo.Resolver(options(server, dir, { logger: log }));
  const got = await lo.resolveLinearOauthToken(s.workspaceId, 'ignored', { resolver: r });
  assert.equal(got.accessToken, s.access);
  assert.equal(got.oauthSecretArn, s.secretId);
  assert.ok(!inspect(got, { showHidden: true, getters: true }).includes(s.access));
  assert.match(inspect(got), /accessToken: '\[redacted\]'/);
  assert.equal(await lo.resolveLinearOauthToken('org-nope', 'ignored', { resolver: r }), null);
  await settleLogs();
  assert.ok(log.records.some((x) => x.code === 'NOT_REGISTERED' && x.level === 'warn'), log.text());
  assert.equal(await lo.resolveLinearOauthToken(s.workspaceId, 't', { resolver: {} }), null, 'a bad resolver option is a logged failure');
  await putSecret(server, dir, s.secretId, '{}');
  lo.invalidateLinearOauthCache(s.workspaceId); // the module-level resolver: not created, a no-op
  assert.equal((await lo.resolveLinearOauthToken(s.workspaceId, 't', { resolver: r })).accessToken, s.access, 'r still caches');
});

test('resolveLinearOauthToken answers a cached token with one frozen result, and a new token with a new one', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  const r = new lo.Resolver(options(server, dir));
  const first = await lo.resolveLinearOauthToken(s.workspaceId, 't', { resolver: r });
  const again = await lo.resolveLinearOauthToken(s.workspaceId, 't', { resolver: r });
  assert.equal(again, first, 'the fast path reuses the result made for this token');
  assert.ok(Object.isFrozen(first));
  const rotated = await r.forceRefresh(s.secretId);
  const after = await lo.resolveLinearOauthToken(s.workspaceId, 't', { resolver: r });
  assert.notEqual(after, first);
  assert.equal(after.accessToken, rotated.accessToken);
  assert.equal(first.accessToken, s.access, 'a result keeps the token it was made for');
});
