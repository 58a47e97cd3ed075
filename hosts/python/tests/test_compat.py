"""`linear_oauth.compat.resolve_linear_api_token`: the old agent helper's contract,
with the new behaviour underneath."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Iterator

import pytest

import linear_oauth as lo
from linear_oauth import compat
from conftest import Store, TestServer


@pytest.fixture
def env(server: TestServer, store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The agent's environment, and a fresh module-level resolver."""
    for k in list(os.environ):
        if k.startswith("LINEAR_OAUTH_") or k == "LINEAR_API_TOKEN":
            monkeypatch.delenv(k)
    monkeypatch.setenv("LINEAR_OAUTH_STORE", store.uri)
    monkeypatch.setenv("LINEAR_OAUTH_API_BASE", server.base_url)
    monkeypatch.setattr(compat, "_resolver", None)
    monkeypatch.setattr(compat, "_exported", None)
    yield
    monkeypatch.setattr(compat, "_resolver", None)


def test_secret_id_from_channel_metadata(env: None, server: TestServer, store: Store) -> None:
    s = store.seed("acme", 3600)
    token = compat.resolve_linear_api_token({"linear_oauth_secret_arn": s.secret_id, "other": 1})
    assert token == s.access
    assert os.environ["LINEAR_API_TOKEN"] == s.access


def test_secret_id_from_the_environment(env: None, server: TestServer, store: Store, monkeypatch: Any) -> None:
    s = store.seed("acme", 3600)
    monkeypatch.setenv("LINEAR_OAUTH_SECRET_ARN", s.secret_id)
    assert compat.resolve_linear_api_token() == s.access
    assert compat.resolve_linear_api_token({}) == s.access
    assert compat.resolve_linear_api_token({"linear_oauth_secret_arn": ""}) == s.access
    assert lo.compat is compat


def test_metadata_wins_over_the_environment(env: None, server: TestServer, store: Store, monkeypatch: Any) -> None:
    a = store.seed("aaaa", 3600)
    b = store.seed("bbbb", 3600)
    monkeypatch.setenv("LINEAR_OAUTH_SECRET_ARN", a.secret_id)
    assert compat.resolve_linear_api_token({"linear_oauth_secret_arn": b.secret_id}) == b.access


def test_expired_token_is_refreshed_and_the_rotation_written_back(
    env: None, server: TestServer, store: Store, monkeypatch: Any
) -> None:
    s = store.seed("acme", -3600)  # expired an hour ago
    monkeypatch.setenv("LINEAR_API_TOKEN", s.access)  # the old helper's shortcut must not apply
    token = compat.resolve_linear_api_token({"linear_oauth_secret_arn": s.secret_id})
    assert token and token != s.access
    assert os.environ["LINEAR_API_TOKEN"] == token
    stored = store.secret(s.secret_id)
    assert stored["access_token"] == token
    assert stored["refresh_token"] != s.refresh and server.refresh_token_live(stored["refresh_token"])


def test_failures_return_empty_after_logging(
    env: None, server: TestServer, store: Store, monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="linear_oauth")
    monkeypatch.setenv("LINEAR_API_TOKEN", "left-alone")
    # No secret id anywhere.
    assert compat.resolve_linear_api_token(None) == ""
    assert compat.resolve_linear_api_token({"linear_oauth_secret_arn": None}) == ""
    assert "no Linear OAuth secret id" in caplog.text
    caplog.clear()
    # A missing secret.
    assert compat.resolve_linear_api_token({"linear_oauth_secret_arn": "absent"}) == ""
    (rec,) = [r for r in caplog.records if r.getMessage().startswith("could not resolve")]
    assert rec.levelno == logging.ERROR
    assert getattr(rec, "secret_id") == "absent" and getattr(rec, "error_code") == "SECRET_MISSING"
    # A spent refresh token on an expired token: never handed out as valid.
    s = store.seed("acme", -60)
    server.spend(s.refresh)
    assert compat.resolve_linear_api_token({"linear_oauth_secret_arn": s.secret_id}) == ""
    assert "REAUTHORIZATION_REQUIRED" in [getattr(r, "error_code", None) for r in caplog.records]
    # An invalid stored token.
    store.put_secret("half", '{"access_token":"x"}')
    assert compat.resolve_linear_api_token({"linear_oauth_secret_arn": "half"}) == ""
    assert os.environ["LINEAR_API_TOKEN"] == "left-alone"


def test_bad_environment_is_a_logged_failure_and_is_retried(
    env: None, server: TestServer, store: Store, monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    s = store.seed("acme", 3600)
    monkeypatch.setenv("LINEAR_OAUTH_CACHE_TTL_S", "-5")
    assert compat.resolve_linear_api_token({"linear_oauth_secret_arn": s.secret_id}) == ""
    assert "LINEAR_OAUTH_CACHE_TTL_S" in caplog.text
    monkeypatch.delenv("LINEAR_OAUTH_CACHE_TTL_S")
    assert compat.resolve_linear_api_token({"linear_oauth_secret_arn": s.secret_id}) == s.access


def test_one_shared_resolver_even_under_a_thread_burst(
    env: None, server: TestServer, store: Store, monkeypatch: Any
) -> None:
    s = store.seed("acme", 10)
    server.faults(latency_ms=100)
    made: list[lo.Resolver] = []
    real = lo.Resolver.from_env

    class Counting:
        @staticmethod
        def from_env() -> lo.Resolver:
            r = real()
            made.append(r)
            return r

    monkeypatch.setattr(compat, "Resolver", Counting)
    barrier = threading.Barrier(16)
    results: list[str] = []

    def work() -> None:
        barrier.wait()
        results.append(compat.resolve_linear_api_token({"linear_oauth_secret_arn": s.secret_id}))

    threads = [threading.Thread(target=work) for _ in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(made) == 1
    assert len(set(results)) == 1 and results[0] not in ("", s.access)
    assert server.counters()["token_requests"] == 1


def test_cached_token_is_served_within_the_ttl(env: None, server: TestServer, store: Store) -> None:
    s = store.seed("acme", 3600)
    assert compat.resolve_linear_api_token({"linear_oauth_secret_arn": s.secret_id}) == s.access
    store.seed("acme", 3600, fields={"access_token": "reinstalled"})
    # Within the cache TTL the helper serves its cached, still-valid token: no store read per task.
    assert compat.resolve_linear_api_token({"linear_oauth_secret_arn": s.secret_id}) == s.access
    assert server.counters()["token_requests"] == 0


def test_invalidate_forgets_a_token_resolved_by_secret_id(env: None, server: TestServer, store: Store) -> None:
    s = store.seed("acme", 3600)
    assert compat.resolve_linear_api_token({"linear_oauth_secret_arn": s.secret_id}) == s.access
    store.seed("acme", 3600, fields={"access_token": "reinstalled"})
    # The agent path never reads the registry; invalidating the workspace still forgets the token.
    compat._shared_resolver().invalidate(s.workspace_id)
    assert compat.resolve_linear_api_token({"linear_oauth_secret_arn": s.secret_id}) == "reinstalled"


def test_the_token_is_exported_only_when_it_changes(
    env: None, server: TestServer, store: Store, monkeypatch: Any
) -> None:
    s = store.seed("acme", 3600)
    writes: list[str] = []

    class Recording(dict[str, str]):
        def __setitem__(self, key: str, value: str) -> None:
            if key == "LINEAR_API_TOKEN":
                writes.append(value)
            super().__setitem__(key, value)

    monkeypatch.setattr(os, "environ", Recording(os.environ))
    meta = {"linear_oauth_secret_arn": s.secret_id}
    for _ in range(3):
        assert compat.resolve_linear_api_token(meta) == s.access
    assert writes == [s.access], "a cached token is exported once"
    rotated = compat._shared_resolver().force_refresh(s.secret_id).access_token
    assert compat.resolve_linear_api_token(meta) == rotated
    assert writes == [s.access, rotated], "a new token is exported"
    other = store.seed("othr", 3600)
    assert compat.resolve_linear_api_token({"linear_oauth_secret_arn": other.secret_id}) == other.access
    assert compat.resolve_linear_api_token(meta) == rotated
    assert writes == [s.access, rotated, other.access, rotated], "switching workspaces exports each switch"
    assert os.environ["LINEAR_API_TOKEN"] == rotated
