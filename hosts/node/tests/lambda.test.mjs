// Issue 20 item 1: in an AWS Lambda the process is frozen as soon as the
// handler's promise settles and may never thaw. Nothing that rotates or
// writes a credential may outlive the call: a resolve inside the
// refresh-ahead window refreshes inline, so the store holds the live pair
// by the time the promise settles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Resolver } from '../index.mjs';
import { useServer, tmpStore, seed, options, pkgDir, sleep } from './helpers.mjs';

let server;
useServer((s) => (server = s));

/** A Lambda-like child: resolves once, prints `settled`, then idles until killed. */
function lambda(opts, workspaceId) {
  const script = `
    import { Resolver } from './index.mjs';
    const r = new Resolver(${JSON.stringify(opts)});
    const t = await r.resolve(${JSON.stringify(workspaceId)});
    process.stdout.write('settled ' + t.accessToken.length + '\\n');
    setInterval(() => {}, 1000);
  `;
  const env = { ...process.env, AWS_LAMBDA_FUNCTION_NAME: 'webhook-handler' };
  delete env.LINEAR_OAUTH_LIFETIME;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: pkgDir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const settled = new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', (line) =>
      line.startsWith('settled') ? resolve() : reject(new Error(line)),
    );
    child.once('exit', (code) => reject(new Error(`exited ${code} before settling: ${stderr}`)));
  });
  return { child, settled, exited: new Promise((r) => child.once('exit', r)) };
}

test('a Lambda frozen right after its promise settles leaves the live refresh token stored', async () => {
  const dir = tmpStore();
  // 10 minutes from expiry: inside refresh-ahead (600 s) + threshold (60 s).
  const s = await seed(server, dir, 'acme', 600);
  // Linear rotates the pair as soon as it gets the refresh, and answers 3 s later.
  await server.faults({ post_grant_delay_ms: 3000 });
  const { child, settled, exited } = lambda(options(server, dir), s.workspaceId);
  await settled;
  await sleep(200);
  child.kill('SIGSTOP');
  await sleep(4500);
  child.kill('SIGKILL');
  await exited;
  await server.faults({ post_grant_delay_ms: 0 });

  assert.equal((await server.counters()).token_refresh, 1, 'Linear rotated the pair once');
  const stored = await server.stored(dir, s.secretId);
  assert.notEqual(stored.refresh_token, s.refresh, 'the rotated pair was written before the promise settled');
  assert.ok(await server.refreshLive(stored.refresh_token), 'the stored refresh token is the live one');
  // Another process refreshes without reauthorization.
  const other = new Resolver(options(server, dir, { lifetime: 'long-lived' }));
  const t = await other.forceRefresh(s.secretId);
  assert.notEqual(t.accessToken, stored.access_token);
  assert.equal((await server.counters()).token_refresh_ok, 2);
});

test('the lifetime option is checked and an invocation needs an explicit store', async () => {
  assert.throws(() => new Resolver({ lifetime: 'forever' }), (e) => e.code === 'INVALID_INPUT' && /lifetime/.test(e.message));
  // No store chosen in an invocation: refused, naming the option and the fix.
  assert.throws(
    () => new Resolver({ lifetime: 'invocation' }),
    (e) => e.code === 'INVALID_INPUT' && /LINEAR_OAUTH_STORE/.test(e.message),
  );
  assert.throws(
    () => new Resolver({ store: 'memory:', registryTable: 'registry' }),
    (e) => e.code === 'INVALID_INPUT' && /LINEAR_OAUTH_REGISTRY_TABLE/.test(e.message),
  );
});
