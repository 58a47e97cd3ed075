// Numbers for the Node addon: cold start, the cached fast path next to a
// pure-JS cached resolver doing the same work, and the paths that reach the
// component, the store and the local test server.
//
//   node bench.mjs            (after `npm run build` and `cargo build -p linear-oauth-testharness`)
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { Bench } from 'tinybench';

import { startServer, tmpStore, cleanupStores, seed, options, pkgDir } from './tests/helpers.mjs';

const require = createRequire(import.meta.url);
const quick = process.argv.includes('--quick');

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmtMs = (x) => `${x.toFixed(2)} ms`;
const signedMs = (x) => `${x >= 0 ? '+' : ''}${fmtMs(x)}`;
const fmtUs = (x) => `${x.toFixed(2)} µs`;
const row = (name, value, note = '') => console.log(`  ${name.padEnd(52)} ${value.padStart(12)}  ${note}`);

// ---------------------------------------------------------- cold start
function processMs(args) {
  const started = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { cwd: pkgDir, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const runs = quick ? 5 : 21;
const bare = [];
const loaded = [];
const requireOnly = [];
const withAddon = "const lo = require('./index.js'); new lo.Resolver({ store: 'memory:' });";
for (let i = 0; i < runs; i++) {
  bare.push(processMs(['-e', '0']));
  requireOnly.push(processMs(['-e', "require('./index.js')"]));
  loaded.push(processMs(['-e', withAddon]));
}
// The same cost measured inside one process (no exec/exit noise).
const inProcess = [];
for (let i = 0; i < runs; i++) {
  const r = spawnSync(
    process.execPath,
    ['-e', `const t0 = performance.now(); ${withAddon} process.stdout.write(String(performance.now() - t0));`],
    { cwd: pkgDir, encoding: 'utf8' },
  );
  inProcess.push(Number(r.stdout));
}
const lo = require('./index.js');
const info = lo.loadInfo();
console.log(`linear-oauth Node addon (${process.version}, ${runs} processes each, medians)`);
console.log('cold start');
row('node -e 0', fmtMs(median(bare)));
// Runs are interleaved; the median of paired differences resists machine noise.
const paired = (xs) => median(xs.map((x, i) => x - bare[i]));
row("require('linear-oauth')", fmtMs(median(requireOnly)), `${signedMs(paired(requireOnly))} over bare node`);
row("require + new Resolver({ store: 'memory:' })", fmtMs(median(loaded)), `${signedMs(paired(loaded))} over bare node (old TS resolver: +74 ms import)`);
row('require + new Resolver, timed inside the process', fmtMs(median(inProcess)));
row('component load (precompiled, in process)', fmtMs(info.loadTimeMs), `compiledFallback=${info.compiledFallback}`);
row('addon size', `${(fs.statSync(path.join(pkgDir, 'linear-oauth.node')).size / 1e6).toFixed(1)} MB`);

// ---------------------------------------------------------- hot path
const server = await startServer();
try {
  const dir = tmpStore();
  const s = await seed(server, dir, 'bench', 86000);
  const r = new lo.Resolver(options(server, dir, { logLevel: 'warn' }));
  const t = await r.resolve(s.workspaceId);
  await r.resolveSecret(s.secretId);

  // The same work in plain JS: a Map lookup, a clock check, a Promise.
  class JsCachedResolver {
    #entries = new Map();
    remember(id, token, serveUntil) {
      this.#entries.set(id, { token, serveUntil });
    }
    resolve(id) {
      const e = this.#entries.get(id);
      if (e !== undefined && Date.now() < e.serveUntil) return Promise.resolve(e.token);
      return Promise.reject(new Error('miss'));
    }
  }
  const js = new JsCachedResolver();
  js.remember(s.workspaceId, { ...t.toJSON(), accessToken: t.accessToken }, Date.now() + 3600e3);

  const BATCH = 1000; // awaits per benchmark iteration, so the harness's own cost vanishes
  const bench = new Bench({ time: quick ? 300 : 1500, warmup: true, warmupTime: quick ? 100 : 300 });
  bench
    .add('linear-oauth: await r.resolve(id), cached', async () => {
      for (let i = 0; i < BATCH; i++) await r.resolve(s.workspaceId);
    })
    .add('linear-oauth: await r.resolveSecret(id), cached', async () => {
      for (let i = 0; i < BATCH; i++) await r.resolveSecret(s.secretId);
    })
    .add('compat: await resolveLinearOauthToken(id), cached', async () => {
      for (let i = 0; i < BATCH; i++) await lo.resolveLinearOauthToken(s.workspaceId, undefined, { resolver: r });
    })
    .add('pure JS: Map + clock + Promise, awaited', async () => {
      for (let i = 0; i < BATCH; i++) await js.resolve(s.workspaceId);
    })
    .add('linear-oauth: r.resolve(id) x1000, Promise.all', async () => {
      const ps = new Array(BATCH);
      for (let i = 0; i < BATCH; i++) ps[i] = r.resolve(s.workspaceId);
      await Promise.all(ps);
    });
  await bench.run();
  console.log('cached resolve, ns per call (same run)');
  for (const task of bench.tasks) {
    const lat = task.result.latency;
    row(task.name, `${((lat.p50 * 1e6) / BATCH).toFixed(0)} ns`, `mean ${((lat.mean * 1e6) / BATCH).toFixed(0)} ns, ${task.result.latency.samplesCount} samples`);
  }
  const p50 = (name) => bench.tasks.find((t) => t.name.startsWith(name)).result.latency.p50;
  const ratio = p50('compat:') / p50('linear-oauth: await r.resolve(id)');
  row('compat helper / r.resolve', `${ratio.toFixed(2)}x`, `[target <= 1.5x: ${ratio <= 1.5 ? 'ok' : 'OVER TARGET'}]`);

  // ------------------------------------------------------ webhooks
  // One verification of a signed 4 KiB delivery, signing secret cached.
  const wdir = tmpStore();
  const ws = await seed(server, wdir, 'hooks', 86400, { fields: { webhook_signing_secret: 'whsec-bench' } });
  const d = await server.webhook({ secret: 'whsec-bench', organization_id: ws.workspaceId, size: 4096 });
  const wr = new lo.Resolver(options(server, wdir, { webhookWindowSeconds: 3600 }));
  const body = Buffer.from(d.body);
  await wr.verifyWebhook(body, d.signature);
  const hooks = new Bench({ time: quick ? 300 : 1500, warmup: true, warmupTime: quick ? 100 : 300 });
  hooks.add(`await r.verifyWebhook(${body.length} B Buffer), cached secret`, async () => {
    for (let i = 0; i < 100; i++) await wr.verifyWebhook(body, d.signature);
  });
  await hooks.run();
  console.log('webhook verification, per call');
  for (const task of hooks.tasks) {
    const us = (task.result.latency.p50 * 1000) / 100;
    row(task.name, `${us.toFixed(2)} us`, `[target < 10 us: ${us < 10 ? 'ok' : 'OVER TARGET'}]`);
  }

  // ------------------------------------------------------ slow paths
  const slow = new Bench({ time: quick ? 300 : 2000, iterations: quick ? 10 : 50, warmup: true, warmupIterations: 3 });
  slow
    .add('resolve after invalidate: component + file store', async () => {
      r.invalidate(s.workspaceId);
      await r.resolve(s.workspaceId);
    })
    .add('forceRefresh: refresh POST + write-back + lease', async () => {
      await r.forceRefresh(s.secretId);
    });
  await slow.run();
  console.log('through the component (libuv worker thread)');
  for (const task of slow.tasks) {
    const lat = task.result.latency;
    row(task.name, fmtUs(lat.p50 * 1000), `mean ${fmtUs(lat.mean * 1000)}, ${lat.samplesCount} samples`);
  }
  const c = await server.counters();
  console.log(`  (test server saw ${c.token_refresh_ok} successful refreshes)`);
} finally {
  await server.stop();
  cleanupStores();
}
