// `resolver.metrics()` after real resolves and a refresh (the counting rules
// are tested in crates/host/tests/resolver/metrics.rs), its declared type,
// and EMF lines on stdout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import lo from '../index.js';
import { useServer, tmpStore, seed, options, pkgDir, runNode } from './helpers.mjs';

let server;
useServer((s) => (server = s));

test('metrics() counts cached and uncached resolves and a refresh, and matches its declared type', async () => {
  const dir = tmpStore();
  const fresh = await seed(server, dir, 'acme', 3600);
  const due = await seed(server, dir, 'beta', 10);
  const r = new lo.Resolver(options(server, dir));
  assert.equal(r.metrics().resolvesCached, 0);
  for (let i = 0; i < 3; i++) await r.resolve(fresh.workspaceId);
  await r.resolve(due.workspaceId);
  const m = r.metrics();
  assert.deepEqual([m.resolvesUncached, m.resolvesCached, m.refreshesOk], [2, 2, 1]);
  assert.equal((await server.counters()).token_refresh_ok, 1);
  const t = m.refreshLatencyMs;
  assert.equal(t.count, 1);
  assert.ok(t.minMs === t.maxMs && t.sumMs === t.minMs, JSON.stringify(t));
  assert.equal(t.buckets.reduce((n, b) => n + b.count, 0), 1);
  assert.equal(t.buckets.at(-1).leMs, null);
  const zero = Object.entries(m).filter(([k, v]) => typeof v === 'number' && !['resolvesCached', 'resolvesUncached', 'refreshesOk'].includes(k));
  assert.ok(zero.every(([, v]) => v === 0), JSON.stringify(zero));
  // Hot-map hits are handed over once, not twice.
  assert.equal(r.metrics().resolvesCached, 2);

  const dts = fs.readFileSync(path.join(pkgDir, 'index.d.ts'), 'utf8');
  const declared = /export interface Metrics \{([^]*?)\n\}/.exec(dts)[1];
  assert.deepEqual([...declared.matchAll(/^  (\w+):/gm)].map((x) => x[1]), Object.keys(m));
  assert.throws(() => new lo.Resolver({ store: 'memory:', metricsEmf: 'yes' }), /metricsEmf must be a boolean/);
});

test('metricsEmf writes EMF lines to stdout, without secrets', async () => {
  const dir = tmpStore();
  const s = await seed(server, dir, 'acme', 10);
  const opts = JSON.stringify(options(server, dir, { metricsEmf: true, metricsNamespace: 'NodeTest' }));
  const run = await runNode(`
    import { createRequire } from 'node:module';
    const lo = createRequire(import.meta.url)('./index.js');
    const r = new lo.Resolver(${opts});
    await r.resolve(${JSON.stringify(s.workspaceId)});
    await r.resolve(${JSON.stringify(s.workspaceId)});
    r.flushMetrics();
  `);
  assert.equal(run.code, 0, run.stderr);
  const lines = run.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  assert.equal(lines.length, 2, run.stdout);
  assert.equal(lines[0]._aws.CloudWatchMetrics[0].Namespace, 'NodeTest');
  assert.equal(lines[0].refreshes_ok, 1);
  assert.deepEqual([lines[1].resolves_cached, lines[1].resolves_uncached], [1, 1]);
  for (const secret of [s.access, s.refresh, s.workspaceId]) assert.ok(!run.stdout.includes(secret));
});
