"""Memory per cached workspace (issue 23): RSS growth of one Python resolver
after resolving every workspace of a store once, with a cache bound that
holds them all, over a warmed-up baseline (below). Run by `make bench-fleet`
(crates/host/examples/fleet_bench.rs seeds the store and writes the
workspace ids, one per line).

    python bench_rss.py STORE_URI IDS_FILE API_BASE
"""

import os
import sys

import linear_oauth as lo


WARM_UP = 2000


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def main() -> None:
    uri, ids_file, api_base = sys.argv[1:4]
    with open(ids_file) as f:
        ids = f.read().split()
    r = lo.Resolver(
        store=uri,
        api_base=api_base,
        registry_table=os.environ.get("LINEAR_OAUTH_REGISTRY_TABLE"),
        cache_max_entries=len(ids) + 16,
    )
    # The baseline: a resolver that has run, not one that has cached. One
    # workspace resolved uncached 2,000 times (as bench-rss.mjs does: there
    # it is the JIT's code, the libuv threads' allocator arenas and the
    # instance pool) before any other workspace is cached.
    for _ in range(WARM_UP):
        r.invalidate(ids[-1])
        r.resolve(ids[-1])
    before = rss_kib()
    for w in ids[:-1]:
        r.resolve(w)
    grown = rss_kib() - before
    print(f"{grown * 1024 / max(len(ids) - 1, 1):.0f}")


if __name__ == "__main__":
    main()
