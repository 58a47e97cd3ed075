// Memory per cached workspace (issue 23): RSS growth of one Node resolver
// after resolving every workspace of a store once, with a cache bound that
// holds them all, over a warmed-up baseline (below). Run by `make bench-fleet`
// (crates/host/examples/fleet_bench.rs seeds the store and writes the
// workspace ids, one per line).
//
//   node bench-rss.mjs STORE_URI IDS_FILE API_BASE
import { readFileSync } from 'node:fs';
import { Resolver } from './index.mjs';

const [uri, idsFile, apiBase] = process.argv.slice(2);
const ids = readFileSync(idsFile, 'utf8').split('\n').filter(Boolean);
const r = new Resolver({
  store: uri,
  apiBase,
  registryTable: process.env.LINEAR_OAUTH_REGISTRY_TABLE,
  cacheMaxEntries: ids.length + 16,
});
// The baseline: a resolver that has run, not one that has cached. One
// workspace resolved uncached 2,000 times (the JIT's code for the slow path,
// the libuv threads' allocator arenas, the instance pool: about 9 MB, the
// same for 1 workspace or 100,000) before any other workspace is cached.
for (let i = 0; i < 2000; i++) {
  r.invalidate(ids.at(-1));
  await r.resolve(ids.at(-1));
}
globalThis.gc?.();
const before = process.memoryUsage().rss;
for (const w of ids.slice(0, -1)) {
  await r.resolve(w);
}
globalThis.gc?.();
const grown = process.memoryUsage().rss - before;
// Used after the measurement: a resolver no longer referenced could be
// collected by the gc() above, and measured without its objects.
if (r.metrics().resolvesUncached < ids.length) throw new Error('not every workspace was resolved');
console.log((grown / Math.max(ids.length - 1, 1)).toFixed(0));
