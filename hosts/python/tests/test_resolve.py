"""Resolving's arguments and options through the extension: what Python passes
reaches the host, and what it must not pass is refused. The behaviour matrix
(refresh rules, caching, recovery, coordination) lives in crates/host/tests."""

from __future__ import annotations

from typing import Any

import pytest

import linear_oauth as lo
from conftest import Store, TestServer


def test_threshold_and_cache_ttl_reach_the_host(server: TestServer, store: Store, make_resolver: Any) -> None:
    s = store.seed("acme", 300)
    assert make_resolver().resolve(s.workspace_id).access_token == s.access
    assert server.counters()["token_requests"] == 0
    t = make_resolver(refresh_threshold_s=600).resolve(s.workspace_id)
    assert t.access_token != s.access
    assert server.counters()["token_refresh_ok"] == 1
    uncached = make_resolver(cache_ttl_s=0)
    assert uncached.resolve(s.workspace_id).access_token == t.access_token
    store.seed("acme", 3600, fields={"access_token": "rewritten"})
    assert uncached.resolve(s.workspace_id).access_token == "rewritten", "TTL 0 reads the store every time"


def test_oauth_error_fields_reach_python(server: TestServer, store: Store, make_resolver: Any) -> None:
    s = store.seed("acme", 10)
    body = '{"error":"invalid_client","error_description":"Client authentication failed"}'
    server.faults(fail_next={"count": 1, "status": 401, "body": body})
    with pytest.raises(lo.TokenEndpointError) as info:
        make_resolver().resolve_secret(s.secret_id)
    e = info.value
    assert (e.status, e.error, e.description) == (401, "invalid_client", "Client authentication failed")
    assert e.code == "TOKEN_ENDPOINT"


def test_store_uri_and_options_are_validated(tmp_path: Any) -> None:
    with pytest.raises(lo.InvalidInput, match="unknown store"):
        lo.Resolver(store="ftp://nowhere")
    with pytest.raises(lo.InvalidInput):
        lo.Resolver(store="file:")
    with pytest.raises(lo.InvalidInput):
        lo.Resolver(store="memory:", api_base="http://api.linear.app")
    for option in ["refresh_threshold_s", "cache_ttl_s", "http_timeout_s", "lease_wait_s"]:
        for bad in [-1.0, float("nan"), float("inf")]:
            with pytest.raises(ValueError, match=option):
                kwargs: dict[str, Any] = {"store": f"file:{tmp_path}", option: bad}
                lo.Resolver(**kwargs)
    with pytest.raises(TypeError):
        lo.Resolver(f"file:{tmp_path}")  # type: ignore[call-arg]  # keyword-only
    r = lo.Resolver(store="memory:")
    assert r.store == "memory:" and r.api_base == "https://api.linear.app"
    for bad_id in ["", "   ", "a\nb"]:
        with pytest.raises(lo.InvalidInput):
            r.resolve(bad_id)
        with pytest.raises(ValueError):
            r.resolve_secret(bad_id)


def test_from_env_reads_the_cli_variables(server: TestServer, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    s = store.seed("acme", 10)
    monkeypatch.setenv("LINEAR_OAUTH_STORE", store.uri)
    monkeypatch.setenv("LINEAR_OAUTH_API_BASE", server.base_url)
    monkeypatch.setenv("LINEAR_OAUTH_AUTHORIZE_URL", server.authorize_url)
    r = lo.Resolver.from_env()
    assert (r.store, r.api_base) == (store.uri, server.base_url)
    assert r.resolve(s.workspace_id).access_token != s.access  # refreshed against the test server
    monkeypatch.setenv("LINEAR_OAUTH_REFRESH_THRESHOLD_S", "soon")
    with pytest.raises(lo.InvalidInput, match="LINEAR_OAUTH_REFRESH_THRESHOLD_S"):
        lo.Resolver.from_env()


def test_cache_max_entries_bounds_the_cache(store: Store, server: TestServer, make_resolver: Any) -> None:
    """Evicted workspaces resolve again through the component, with no token request."""
    seeded = [store.seed(f"ws{i}", 3600) for i in range(40)]
    r = make_resolver(cache_max_entries=8)
    for _ in range(2):
        for s in seeded:
            assert r.resolve(s.workspace_id).access_token == s.access
    assert server.counters()["token_requests"] == 0
