"""The token lifecycle through Python: 401 reports, Retry-After on errors,
serving through an outage, and refresh-ahead on a host thread."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import linear_oauth as lo
from conftest import FileStore, TestServer, seed, wait_until


def test_report_unauthorized_refreshes_once_for_concurrent_reporters(
    server: TestServer, store: FileStore, make_resolver: Any
) -> None:
    s = seed(server, store, "acme", 3600)
    r = make_resolver()
    assert r.resolve(s.workspace_id).access_token == s.access
    results: list[str] = []
    barrier = threading.Barrier(16)

    def report() -> None:
        barrier.wait()
        results.append(r.report_unauthorized(s.workspace_id, s.access).access_token)

    threads = [threading.Thread(target=report) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 16 and len(set(results)) == 1 and results[0] != s.access
    assert server.counters()["token_requests"] == 1
    assert store.secret(s.secret_id)["access_token"] == results[0]
    # A late report about the old token: the stored one, no POST.
    assert r.report_unauthorized(s.workspace_id, s.access).access_token == results[0]
    assert server.counters()["token_requests"] == 1


def test_report_unauthorized_says_when_reauthorization_is_needed(
    server: TestServer, store: FileStore, make_resolver: Any
) -> None:
    s = seed(server, store, "acme", 3600)
    server.spend(s.refresh)
    r = make_resolver()
    with pytest.raises(lo.ReauthorizationRequired):
        r.report_unauthorized(s.workspace_id, s.access)
    with pytest.raises(lo.NotRegistered):
        r.report_unauthorized("org-nope", "x")


def test_token_endpoint_errors_carry_retry_after(server: TestServer, store: FileStore, make_resolver: Any) -> None:
    s = seed(server, store, "acme", -5)  # expired: nothing to serve around the failure
    r = make_resolver()
    server.faults(fail_next={"count": 3, "status": 429}, fail_retry_after="120")
    with pytest.raises(lo.TokenEndpointError) as e:
        r.resolve(s.workspace_id)
    assert e.value.status == 429
    assert e.value.retry_after is not None and 100 < e.value.retry_after <= 120
    assert server.counters()["token_requests"] == 1, "Retry-After beyond the call's budget: no retry"
    server.faults(fail_next={"count": 1, "status": 400}, fail_retry_after="")
    s2 = seed(server, store, "beta", -5)
    with pytest.raises(lo.TokenEndpointError) as e2:
        r.resolve(s2.workspace_id)
    assert e2.value.retry_after is None


def test_an_outage_serves_the_unexpired_token(server: TestServer, store: FileStore, make_resolver: Any) -> None:
    s = seed(server, store, "acme", 30)  # due, but valid for 30 s more
    r = make_resolver()
    server.faults(fail_next={"count": 1000, "status": 503})
    assert r.resolve(s.workspace_id).access_token == s.access
    assert r.resolve(s.workspace_id).access_token == s.access
    assert server.counters()["token_requests"] == 3, "three attempts, then the shared failure"
    server.faults(fail_next={"count": 0, "status": 503})
    time.sleep(1.1)  # the failure memory lapses
    assert r.resolve(s.workspace_id).access_token != s.access


def test_refresh_ahead_runs_on_a_host_thread(server: TestServer, store: FileStore, make_resolver: Any) -> None:
    s = seed(server, store, "acme", 300)  # inside the default 600 s refresh-ahead window
    server.faults(latency_ms=300)
    r = make_resolver()
    # The caller gets the valid token at once; the refresh happens behind it,
    # without the GIL (this thread keeps running Python meanwhile).
    assert r.resolve(s.workspace_id).access_token == s.access
    wait_until(lambda: store.secret(s.secret_id)["access_token"] != s.access)
    new = store.secret(s.secret_id)["access_token"]
    wait_until(lambda: r.resolve(s.workspace_id).access_token == new)
    assert server.counters()["token_requests"] == 1
    off = make_resolver(refresh_ahead_s=0)
    s2 = seed(server, store, "beta", 300)
    assert off.resolve(s2.workspace_id).access_token == s2.access
    time.sleep(0.2)
    assert server.counters()["token_requests"] == 1, "refresh_ahead_s=0 turns it off"
    with pytest.raises(lo.InvalidInput):
        make_resolver(failure_memory_s=-1)
