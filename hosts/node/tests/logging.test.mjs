// Logs (stderr JSON lines or a user logger) and redaction: no secret ever
// appears in logs, errors, inspect or JSON output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect, format } from 'node:util';

import lo from '../index.js';
import {
  useServer,
  tmpStore,
  seed,
  options,
  captureLogger,
  putSecret,
  runNode,
  settleLogs,
  CLIENT_SECRET,
} from './helpers.mjs';

let server;
useServer((s) => (server = s));

function everyView(value) {
  return [
    inspect(value),
    inspect(value, { showHidden: true, depth: Infinity, getters: true }),
    // Bypassing the redaction: the getter is listed, not called...
    inspect(value, { showHidden: true, depth: Infinity, customInspect: false }),
    inspect(value, { depth: Infinity, getters: true, customInspect: false }),
    // ...(only `customInspect: false` + `showHidden` + `getters` together call it,
    // which is asking for the value as plainly as `t.accessToken` does).
    format('%o %O %j %s', value, value, value, value),
    JSON.stringify(value),
    JSON.stringify({ ...value }),
    String(Object.keys(value)),
    String(Object.getOwnPropertyNames(value)),
  ].join('\n');
}

test('a token never shows its access token in inspect, console or JSON output', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 3600);
  const r = new lo.Resolver(options(server, dir));
  const t = await r.resolve(s.workspaceId);
  assert.equal(t.accessToken, s.access, 'readable when asked for');
  const { accessToken } = t;
  assert.equal(accessToken, s.access, 'destructuring works');
  const shown = everyView(t);
  assert.ok(!shown.includes(s.access), shown);
  assert.match(inspect(t), /accessToken: '\[redacted\]'/);
  assert.match(inspect(t), /workspaceSlug: 'acme'/);
  assert.deepEqual(JSON.parse(JSON.stringify(t)), {
    scope: 'read write',
    workspaceSlug: 'acme',
    secretId: s.secretId,
    expiresAt: t.expiresAt,
    workspaceId: s.workspaceId,
  });
  assert.ok(Object.isFrozen(t));
  // Nor does an object or error that holds the token.
  assert.ok(!inspect({ nested: [t] }, { depth: Infinity }).includes(s.access));
});

test('the default logger writes one JSON object per line on stderr, without secrets', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 10);
  const script = `
    import lo from './index.js';
    const r = new lo.Resolver(${JSON.stringify(options(server, dir))});
    await r.resolve(${JSON.stringify(s.workspaceId)});
    await r.resolve('org-unknown').catch(() => {});
  `;
  const run = await runNode(script);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, '');
  const lines = run.stderr.trim().split('\n');
  const records = lines.map((l) => JSON.parse(l));
  for (const rec of records) {
    assert.deepEqual(Object.keys(rec).slice(0, 2), ['level', 'message']);
    assert.equal(Object.keys(rec).at(-1), 'time');
    assert.match(rec.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(['info', 'warn', 'error'].includes(rec.level), 'info and above by default');
  }
  const refreshed = records.find((x) => /refreshed/.test(x.message));
  assert.ok(refreshed, run.stderr);
  assert.equal(refreshed.level, 'info');
  assert.equal(refreshed.workspace_id, s.workspaceId);
  const stored = await server.stored(dir, s.secretId);
  for (const secret of [s.access, s.refresh, stored.access_token, stored.refresh_token, CLIENT_SECRET]) {
    assert.ok(!run.stderr.includes(secret), 'a secret reached stderr');
  }
});

test('a function logger receives records; an object logger gets method(message, fields)', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 10);
  const fn = captureLogger();
  await new lo.Resolver(options(server, dir, { logger: fn })).resolve(s.workspaceId);
  await settleLogs();
  const rec = fn.records.find((x) => /refreshed/.test(x.message));
  assert.ok(rec, fn.text());
  assert.equal(rec.level, 'info');
  assert.equal(rec.workspace_id, s.workspaceId);
  assert.equal(typeof rec.time, 'string');

  const s2 = await seed(server, dir, 'beta', 10);
  const calls = [];
  const objectLogger = {
    info: (message, fields) => calls.push(['info', message, fields]),
    warn: (message, fields) => calls.push(['warn', message, fields]),
    error: (message, fields) => calls.push(['error', message, fields]),
    debug: (message, fields) => calls.push(['debug', message, fields]),
  };
  await new lo.Resolver(options(server, dir, { logger: objectLogger, logLevel: 'debug' })).resolve(s2.workspaceId);
  await settleLogs();
  const info = calls.find(([level, message]) => level === 'info' && /refreshed/.test(message));
  assert.ok(info, JSON.stringify(calls));
  assert.equal(info[2].workspace_id, s2.workspaceId);
  assert.equal(info[2].level, undefined, 'level and message are not repeated in fields');
});

test('logLevel filters events; a throwing logger does not break resolving', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 10);
  const quiet = captureLogger();
  await new lo.Resolver(options(server, dir, { logger: quiet, logLevel: 'error' })).resolve(s.workspaceId);
  await settleLogs();
  assert.deepEqual(quiet.records, []);

  const s2 = await seed(server, dir, 'beta', 10);
  const script = `
    import lo from './index.js';
    const r = new lo.Resolver({ ...${JSON.stringify(options(server, dir))}, logger: () => { throw new Error('logger broke'); } });
    const t = await r.resolve(${JSON.stringify(s2.workspaceId)});
    await new Promise((r) => setTimeout(r, 50));
    process.stdout.write(t.workspaceSlug);
  `;
  const run = await runNode(script);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, 'beta');
  assert.match(run.stderr, /the logger threw/);
});

test('no secret in logs, errors or inspect output on any path', async () => {
  const dir = tmpStore();
  const log = captureLogger();
  const r = new lo.Resolver(options(server, dir, { logger: log, logLevel: 'trace' }));
  const secrets = [CLIENT_SECRET];
  let seen = '';

  const s = await seed(server, dir, 'acme', 10);
  secrets.push(s.access, s.refresh);
  const t = await r.resolve(s.workspaceId);
  const stored = await server.stored(dir, s.secretId);
  secrets.push(t.accessToken, stored.refresh_token);
  seen += everyView(t) + inspect(r, { showHidden: true, depth: Infinity });

  const echo = JSON.stringify({ error: 'x', error_description: CLIENT_SECRET });
  const faults = [{ fail_next: { count: 1, status: 500, body: echo } }, { malformed_next: 1 }, { oversize_next: 1 }, { drop_next: 1 }];
  for (const [i, fault] of faults.entries()) {
    const s2 = await seed(server, dir, `beta${i}`, -5); // expired: failures surface
    secrets.push(s2.access, s2.refresh);
    await server.faults(fault);
    const e = await r.resolve(s2.workspaceId).then(
      () => assert.fail('should fail'),
      (err) => err,
    );
    assert.ok(e instanceof lo.LinearOAuthError);
    seen += `${e.stack}\n${inspect(e, { showHidden: true, depth: Infinity })}\n${JSON.stringify(e)}\n`;
  }
  const s3 = await seed(server, dir, 'gamma', 10);
  secrets.push(s3.access, s3.refresh);
  await server.spend(s3.refresh);
  const reauth = await r.resolve(s3.workspaceId).catch((e) => e);
  assert.equal(reauth.code, 'REAUTHORIZATION_REQUIRED');
  seen += `${reauth.stack}\n${inspect(reauth, { showHidden: true })}`;
  await putSecret(server, dir, 'broken', JSON.stringify({ access_token: s3.access, client_secret: CLIENT_SECRET }));
  const broken = await r.resolveSecret('broken').catch((e) => e);
  assert.equal(broken.code, 'INVALID_STORED_TOKEN');
  seen += `${broken.stack}\n${inspect(broken, { showHidden: true })}`;

  const compat = await lo.resolveLinearOauthToken(s.workspaceId, 'table', { resolver: r });
  assert.equal(compat.accessToken, t.accessToken);
  seen += everyView(compat);

  await settleLogs();
  seen += log.text();
  assert.ok(log.records.length > 3, 'logs were captured');
  for (const secret of secrets) {
    const at = seen.indexOf(secret);
    assert.equal(at, -1, `secret leaked: ...${seen.slice(Math.max(0, at - 300), at)}`);
  }
});
