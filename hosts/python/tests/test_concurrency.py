"""One Resolver shared by threads, several resolvers and several processes on one store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import linear_oauth as lo
from conftest import FileStore, TestServer, seed


def test_32_threads_on_one_expiring_token_cause_one_refresh(
    server: TestServer, store: FileStore, make_resolver: Any
) -> None:
    s = seed(server, store, "acme", 10)
    server.faults(latency_ms=100)
    r: lo.Resolver = make_resolver()
    barrier = threading.Barrier(32)

    def work(_: int) -> str:
        barrier.wait()
        return r.resolve(s.workspace_id).access_token

    with ThreadPoolExecutor(max_workers=32) as pool:
        tokens = list(pool.map(work, range(32)))
    assert server.counters()["token_requests"] == 1
    assert len(set(tokens)) == 1 and tokens[0] != s.access
    assert store.secret(s.secret_id)["access_token"] == tokens[0]


def test_the_gil_is_released_while_a_refresh_waits(
    server: TestServer, store: FileStore, make_resolver: Any
) -> None:
    s = seed(server, store, "acme", 10)
    server.faults(latency_ms=600)
    r = make_resolver()
    th = threading.Thread(target=r.resolve, args=(s.workspace_id,))
    ticks = 0
    th.start()
    deadline = time.monotonic() + 0.4
    while time.monotonic() < deadline:  # pure Python work while the refresh is in flight
        ticks += 1
    assert th.is_alive(), "the refresh should still be in flight"
    th.join()
    assert ticks > 10_000, f"main thread starved: {ticks} iterations in 0.4 s"


def test_a_slow_refresh_does_not_block_other_workspaces(
    server: TestServer, store: FileStore, make_resolver: Any
) -> None:
    slow = seed(server, store, "slow", 10)
    fast = seed(server, store, "fast", 3600)
    r = make_resolver()
    r.resolve(fast.workspace_id)
    server.faults(latency_ms=1500)
    refresher = threading.Thread(target=r.resolve, args=(slow.workspace_id,))
    refresher.start()
    time.sleep(0.2)  # the refresh is in flight
    started = time.monotonic()
    r.resolve(fast.workspace_id)  # fast path
    r.invalidate(fast.workspace_id)
    r.resolve(fast.workspace_id)  # through the component and the store
    took = time.monotonic() - started
    assert refresher.is_alive(), "the slow refresh should still be running"
    assert took < 1.0, f"another workspace waited {took:.2f} s"
    refresher.join()


def test_resolvers_sharing_a_store_refresh_once(server: TestServer, store: FileStore, make_resolver: Any) -> None:
    s = seed(server, store, "acme", 10)
    server.faults(latency_ms=200)
    resolvers: list[lo.Resolver] = [make_resolver() for _ in range(4)]
    barrier = threading.Barrier(16)

    def work(i: int) -> str:
        barrier.wait()
        return resolvers[i % 4].resolve(s.workspace_id).access_token

    with ThreadPoolExecutor(max_workers=16) as pool:
        tokens = list(pool.map(work, range(16)))
    assert server.counters()["token_requests"] == 1
    assert len(set(tokens)) == 1
    assert server.refresh_token_live(store.secret(s.secret_id)["refresh_token"])


CHILD = """
import json, sys, time
import linear_oauth as lo
store, api, workspace, start = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
r = lo.Resolver(store=store, api_base=api, http_timeout_s=5, lease_wait_s=15)
time.sleep(max(0.0, start - time.time()))
print(json.dumps(r.resolve(workspace).access_token))
"""


def test_processes_sharing_a_store_refresh_once(server: TestServer, store: FileStore) -> None:
    s = seed(server, store, "acme", 10)
    server.faults(latency_ms=300)
    start = time.time() + 2.0  # after every child has imported and constructed
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAR_OAUTH_")}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, store.uri, server.base_url, s.workspace_id, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(4)
    ]
    tokens = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err.decode()
        tokens.append(json.loads(out))
    assert server.counters()["token_requests"] == 1
    assert len(set(tokens)) == 1 and tokens[0] != s.access
    assert store.secret(s.secret_id)["access_token"] == tokens[0]


def test_cached_resolves_from_many_threads_agree(server: TestServer, store: FileStore, make_resolver: Any) -> None:
    workspaces = [seed(server, store, f"ws{i:02d}", 3600) for i in range(8)]
    r = make_resolver()

    def work(i: int) -> tuple[str, str]:
        s = workspaces[i % len(workspaces)]
        return s.access, r.resolve(s.workspace_id).access_token

    with ThreadPoolExecutor(max_workers=16) as pool:
        for want, got in pool.map(work, range(2000)):
            assert want == got
    assert server.counters()["token_requests"] == 0
    assert all(isinstance(r.cached(s.workspace_id), lo.ResolvedToken) for s in workspaces)
