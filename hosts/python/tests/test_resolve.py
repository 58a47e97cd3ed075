"""SPEC.md's resolving behaviour, end to end through the extension against the
Linear-compatible test server and a real file store."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from typing import Any

import pytest

import linear_oauth as lo
from conftest import FileStore, TestServer, file_name, iso_in, seed, token_json

INVALID_GRANT = '{"error":"invalid_grant","error_description":"Token has been expired or revoked."}'


def test_fresh_token_is_served_and_cached(server: TestServer, store: FileStore, make_resolver: Any) -> None:
    s = seed(server, store, "acme", 3600)
    r = make_resolver()
    t = r.resolve(s.workspace_id)
    assert isinstance(t, lo.ResolvedToken)
    assert (t.access_token, t.scope, t.workspace_slug, t.secret_id, t.workspace_id) == (
        s.access,
        "read write",
        "acme",
        s.secret_id,
        s.workspace_id,
    )
    assert t.expires_at == store.secret(s.secret_id)["expires_at"]
    assert r.cached(s.workspace_id) is not None
    # Served from memory: a changed store is not read again within the TTL...
    store.put_secret(s.secret_id, token_json("other", "r", iso_in(3600), s.workspace_id, "acme"))
    assert r.resolve(s.workspace_id).access_token == s.access
    assert r.resolve_secret(s.secret_id).access_token == s.access
    # ...until the workspace is invalidated.
    r.invalidate(s.workspace_id)
    assert r.cached(s.workspace_id) is None
    assert r.resolve(s.workspace_id).access_token == "other"
    assert server.counters()["token_requests"] == 0


def test_resolve_secret_needs_no_registry(server: TestServer, store: FileStore, make_resolver: Any) -> None:
    issued = server.issue()
    store.put_secret("agent-secret", token_json(issued["access_token"], issued["refresh_token"], iso_in(3600), "org-x", "xslug"))
    r = make_resolver()
    assert r.cached_secret("agent-secret") is None
    t = r.resolve_secret("agent-secret")
    assert (t.access_token, t.workspace_slug, t.secret_id) == (issued["access_token"], "xslug", "agent-secret")
    assert r.cached_secret("agent-secret") is not None
    with pytest.raises(lo.NotRegistered):
        r.resolve("org-x")


def test_registry_status_and_missing_pieces(
    server: TestServer, store: FileStore, make_resolver: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="linear_oauth")
    s = seed(server, store, "acme", 3600)
    r = make_resolver()
    with pytest.raises(lo.NotRegistered, match="org-nope"):
        r.resolve("org-nope")
    for status in ["revoked", "", "paused", None]:
        store.put_row(s.workspace_id, "acme", s.secret_id, status=status)
        r.invalidate(s.workspace_id)
        with pytest.raises(lo.Revoked):
            r.resolve(s.workspace_id)
    # An unknown status is logged as a warning with the status as a field.
    unknown = [rec for rec in caplog.records if "unknown registry status" in rec.getMessage()]
    assert unknown and unknown[0].levelno == logging.WARNING
    assert getattr(unknown[0], "status") == "paused"
    assert getattr(unknown[0], "workspace_id") == s.workspace_id
    store.put_row("org-gone", "gone", "no-such-secret")
    with pytest.raises(lo.SecretMissing):
        r.resolve("org-gone")
    with pytest.raises(lo.SecretMissing):
        r.resolve_secret("no-such-secret")
    for bad in ["", "   ", "a\nb"]:
        with pytest.raises(lo.InvalidInput):
            r.resolve(bad)
        with pytest.raises(ValueError):
            r.resolve_secret(bad)
    assert server.counters()["token_requests"] == 0


def test_expiring_token_is_refreshed_and_written_back(
    server: TestServer, store: FileStore, make_resolver: Any
) -> None:
    s = seed(server, store, "acme", 30)  # inside the default 60 s threshold
    before = store.secret(s.secret_id)
    r = make_resolver()
    t = r.resolve(s.workspace_id)
    assert t.access_token != s.access
    stored = store.secret(s.secret_id)
    assert stored["access_token"] == t.access_token
    assert stored["refresh_token"] != s.refresh, "rotated refresh token written back"
    assert server.refresh_token_live(stored["refresh_token"])
    assert not server.refresh_token_live(s.refresh)
    assert stored["expires_at"] == t.expires_at
    assert stored["expires_at"] > before["expires_at"]
    assert stored["installed_at"] == before["installed_at"]
    assert stored["updated_at"] != before["updated_at"]
    assert stored["team_hint"] == {"kept": True}, "unknown fields survive a rewrite"
    assert stored["scope"] == t.scope == "read write"
    # The new token is fresh: no second refresh, even after invalidation.
    r.invalidate(s.workspace_id)
    assert r.resolve(s.workspace_id).access_token == t.access_token
    c = server.counters()
    assert (c["token_refresh"], c["token_refresh_ok"]) == (1, 1)


def test_refresh_without_rotation_keeps_the_old_refresh_token(
    server: TestServer, store: FileStore, make_resolver: Any
) -> None:
    s = seed(server, store, "acme", 10)
    server.faults(omit_refresh_token=True)
    t = make_resolver().resolve_secret(s.secret_id)
    stored = store.secret(s.secret_id)
    assert stored["access_token"] == t.access_token != s.access
    assert stored["refresh_token"] == s.refresh


def test_refresh_threshold_is_configurable(server: TestServer, store: FileStore, make_resolver: Any) -> None:
    s = seed(server, store, "acme", 300)
    assert make_resolver().resolve(s.workspace_id).access_token == s.access
    assert server.counters()["token_requests"] == 0
    t = make_resolver(refresh_threshold_s=600).resolve(s.workspace_id)
    assert t.access_token != s.access
    assert server.counters()["token_refresh_ok"] == 1


def test_cache_ttl_is_configurable(server: TestServer, store: FileStore, make_resolver: Any) -> None:
    s = seed(server, store, "acme", 3600)
    r = make_resolver(cache_ttl_s=0)
    assert r.resolve(s.workspace_id).access_token == s.access
    store.put_secret(s.secret_id, token_json("rewritten", "r", iso_in(3600), s.workspace_id, "acme"))
    assert r.resolve(s.workspace_id).access_token == "rewritten"


def test_a_cached_token_is_not_served_once_it_is_expiring(
    server: TestServer, store: FileStore, make_resolver: Any
) -> None:
    s = seed(server, store, "acme", 61.5)  # fresh for another 1.5 s under a 60 s threshold
    r = make_resolver(refresh_ahead_s=0)
    assert r.resolve(s.workspace_id).access_token == s.access
    time.sleep(1.8)
    assert r.cached(s.workspace_id) is None
    t = r.resolve(s.workspace_id)
    assert t.access_token != s.access
    assert server.counters()["token_refresh_ok"] == 1


def test_malformed_expiry_counts_as_expiring(
    server: TestServer, store: FileStore, make_resolver: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="linear_oauth")
    s = seed(server, store, "acme", 3600)
    store.put_secret(s.secret_id, token_json(s.access, s.refresh, "next tuesday", s.workspace_id, "acme"))
    t = make_resolver().resolve(s.workspace_id)
    assert t.access_token != s.access
    warnings = [rec for rec in caplog.records if rec.levelno == logging.WARNING and "malformed" in rec.getMessage()]
    assert warnings and getattr(warnings[0], "secret_id") == s.secret_id


def test_token_endpoint_error_is_typed_and_the_next_call_rereads(
    server: TestServer, store: FileStore, make_resolver: Any
) -> None:
    s = seed(server, store, "acme", -5)  # expired: a 503 cannot be served around
    before = store.raw_secret(s.secret_id)
    r = make_resolver()
    server.faults(fail_next={"count": 3, "status": 503})
    with pytest.raises(lo.TokenEndpointError) as info:
        r.resolve(s.workspace_id)
    assert (info.value.status, info.value.error) == (503, "server_error")
    assert store.raw_secret(s.secret_id) == before, "store untouched"
    # An operator fixes the secret: the next call sees it instead of a stale cache.
    store.put_secret(s.secret_id, token_json("fixed", s.refresh, iso_in(3600), s.workspace_id, "acme"))
    assert r.resolve(s.workspace_id).access_token == "fixed"


def test_oauth_error_fields_reach_python(server: TestServer, store: FileStore, make_resolver: Any) -> None:
    s = seed(server, store, "acme", 10)
    body = '{"error":"invalid_client","error_description":"Client authentication failed"}'
    server.faults(fail_next={"count": 1, "status": 401, "body": body})
    with pytest.raises(lo.TokenEndpointError) as info:
        make_resolver().resolve_secret(s.secret_id)
    e = info.value
    assert (e.status, e.error, e.description) == (401, "invalid_client", "Client authentication failed")
    assert e.code == "TOKEN_ENDPOINT"


@pytest.mark.parametrize(
    "fault", [{"malformed_next": 1}, {"oversize_next": 1}, {"drop_next": 1}], ids=["malformed", "oversize", "dropped"]
)
def test_unreadable_answers_are_transport_errors(
    fault: dict[str, int], server: TestServer, store: FileStore, make_resolver: Any
) -> None:
    s = seed(server, store, "acme", -5)
    r = make_resolver(failure_memory_s=0)  # so the retry below asks again
    server.faults(**fault)
    with pytest.raises(lo.TransportError):
        r.resolve(s.workspace_id)
    assert store.secret(s.secret_id)["refresh_token"] == s.refresh
    # The knob is spent and the token was never rotated: a retry works.
    assert r.resolve(s.workspace_id).access_token != s.access


def test_timeout_is_a_transport_error(server: TestServer, store: FileStore, make_resolver: Any) -> None:
    s = seed(server, store, "acme", -5)
    server.faults(latency_ms=2000)
    started = time.monotonic()
    with pytest.raises(lo.TransportError):
        make_resolver(http_timeout_s=0.3).resolve(s.workspace_id)
    assert time.monotonic() - started < 1.9
    assert store.secret(s.secret_id)["refresh_token"] == s.refresh


def test_spent_refresh_token_requires_reauthorization_and_keeps_the_secret(
    server: TestServer, store: FileStore, make_resolver: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="linear_oauth")
    s = seed(server, store, "acme", 10)
    assert server.spend(s.refresh) == 200  # rotated by someone who never stored the result
    before = store.raw_secret(s.secret_id)
    r = make_resolver()
    for _ in range(2):  # and it stays an error: nothing bogus is cached
        with pytest.raises(lo.ReauthorizationRequired):
            r.resolve(s.workspace_id)
    assert store.raw_secret(s.secret_id) == before, "never deleted or blanked"
    c = server.counters()
    assert c["invalid_grant"] == 2 and c["token_refresh_ok"] == 1  # only the spend itself
    assert any(rec.levelno == logging.ERROR and "installed again" in rec.getMessage() for rec in caplog.records)


def _rotate_during_latency(store: FileStore, s: Any, value: str, delay: float) -> threading.Thread:
    def rotate() -> None:
        time.sleep(delay)
        store.put_secret(s.secret_id, value)

    th = threading.Thread(target=rotate)
    th.start()
    return th


def test_invalid_grant_after_a_concurrent_rotation_adopts_the_stored_token(
    server: TestServer, store: FileStore, make_resolver: Any
) -> None:
    s = seed(server, store, "acme", 10)
    other = server.issue()
    # Our refresh is answered invalid_grant while "another refresher" stores a fresh pair.
    server.faults(latency_ms=800, fail_next={"count": 1, "status": 400, "body": INVALID_GRANT})
    th = _rotate_during_latency(
        store, s, token_json(other["access_token"], other["refresh_token"], iso_in(3600), s.workspace_id, "acme"), 0.3
    )
    t = make_resolver().resolve(s.workspace_id)
    th.join()
    assert t.access_token == other["access_token"]
    assert server.counters()["token_requests"] == 1, "one re-read, no second refresh"


def test_invalid_grant_then_rotated_but_expiring_refreshes_once_more(
    server: TestServer, store: FileStore, make_resolver: Any
) -> None:
    s = seed(server, store, "acme", 10)
    other = server.issue()
    server.faults(latency_ms=800, fail_next={"count": 1, "status": 400, "body": INVALID_GRANT})
    th = _rotate_during_latency(
        store, s, token_json(other["access_token"], other["refresh_token"], iso_in(5), s.workspace_id, "acme"), 0.3
    )
    t = make_resolver().resolve(s.workspace_id)
    th.join()
    assert t.access_token not in (s.access, other["access_token"])
    assert server.counters()["token_requests"] == 2
    stored = store.secret(s.secret_id)
    assert stored["access_token"] == t.access_token
    assert server.refresh_token_live(stored["refresh_token"])


def test_a_refresh_by_another_resolver_is_adopted_without_refreshing_again(
    server: TestServer, store: FileStore, make_resolver: Any
) -> None:
    s = seed(server, store, "acme", 61.5)
    a = make_resolver()
    assert a.resolve(s.workspace_id).access_token == s.access  # cached in a
    b = make_resolver(refresh_threshold_s=600)  # "another process" that refreshes now
    t_b = b.resolve(s.workspace_id)
    assert t_b.access_token != s.access
    time.sleep(1.8)  # a's copy is now expiring
    assert a.resolve(s.workspace_id).access_token == t_b.access_token
    assert server.counters()["token_requests"] == 1


def test_a_store_that_cannot_write_is_not_refreshed(
    server: TestServer, store: FileStore, make_resolver: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Never spend what cannot be saved: the store must be able to take the
    # rotated token before the refresh token is used. (Keeping a refreshed
    # token in memory when the write fails afterwards is tested in the host.)
    caplog.set_level(logging.INFO, logger="linear_oauth")
    s = seed(server, store, "acme", 10)
    r = make_resolver()
    # Make every write of this secret fail: its lock file's place is taken by a directory.
    blocker = store.root / "locks" / f"{file_name('secret-' + s.secret_id)}.lock"
    blocker.mkdir(parents=True)
    with pytest.raises(lo.StoreError, match="not refreshing"):
        r.resolve(s.workspace_id)
    assert server.counters()["token_refresh"] == 0, "the refresh token was not spent"
    assert server.refresh_token_live(s.refresh)
    assert store.secret(s.secret_id)["refresh_token"] == s.refresh, "store unchanged, not blanked"
    assert any("not refreshing" in rec.getMessage() and rec.levelno == logging.ERROR for rec in caplog.records)
    # Once the store takes writes again, the next call refreshes and saves.
    shutil.rmtree(blocker)
    t = r.resolve(s.workspace_id)
    assert t.access_token != s.access
    stored = store.secret(s.secret_id)
    assert stored["access_token"] == t.access_token
    assert server.refresh_token_live(stored["refresh_token"])


def test_grace_replay_recovers_a_pair_lost_to_a_timeout(
    server: TestServer, store: FileStore, make_resolver: Any
) -> None:
    s = seed(server, store, "acme", -5)
    # Linear rotates, then the answer never arrives in time.
    server.faults(grace="same_pair", post_grant_delay_ms=1500)
    r = make_resolver(http_timeout_s=0.4, failure_memory_s=0)
    with pytest.raises(lo.TransportError):
        r.resolve(s.workspace_id)
    assert not server.refresh_token_live(s.refresh), "the server did rotate"
    assert store.secret(s.secret_id)["refresh_token"] == s.refresh
    server.faults(post_grant_delay_ms=0)
    t = r.resolve(s.workspace_id)  # replays the original request inside the grace window
    stored = store.secret(s.secret_id)
    assert stored["access_token"] == t.access_token != s.access
    assert server.refresh_token_live(stored["refresh_token"])


def test_force_refresh_rotates_a_fresh_token(server: TestServer, store: FileStore, make_resolver: Any) -> None:
    s = seed(server, store, "acme", 3600)
    r = make_resolver()
    assert r.resolve_secret(s.secret_id).access_token == s.access
    t = r.force_refresh(s.secret_id)
    assert t.access_token != s.access
    assert r.resolve_secret(s.secret_id).access_token == t.access_token
    assert store.secret(s.secret_id)["access_token"] == t.access_token
    assert server.counters()["token_refresh_ok"] == 1


def test_egress_is_https_only_except_loopback(server: TestServer, store: FileStore) -> None:
    with pytest.raises(lo.InvalidInput):
        lo.Resolver(store=store.uri, api_base="http://api.linear.app")
    with pytest.raises(lo.LinearOAuthError):
        lo.Resolver(store=store.uri, api_base="file:///etc/passwd")
    # https to Linear and plain http on loopback are both accepted.
    lo.Resolver(store=store.uri)
    lo.Resolver(store=store.uri, api_base=server.base_url)


def test_store_uri_and_options_are_validated(tmp_path: Any) -> None:
    with pytest.raises(lo.InvalidInput, match="unknown store"):
        lo.Resolver(store="ftp://nowhere")
    with pytest.raises(lo.InvalidInput):
        lo.Resolver(store="file:")
    for option in ["refresh_threshold_s", "cache_ttl_s", "http_timeout_s", "lease_wait_s"]:
        for bad in [-1.0, float("nan"), float("inf")]:
            with pytest.raises(ValueError, match=option):
                kwargs: dict[str, Any] = {"store": f"file:{tmp_path}", option: bad}
                lo.Resolver(**kwargs)
    with pytest.raises(TypeError):
        lo.Resolver(f"file:{tmp_path}")  # type: ignore[call-arg]  # keyword-only
    r = lo.Resolver(store="memory:")
    assert r.store == "memory:" and r.api_base == "https://api.linear.app"


def test_from_env_reads_the_cli_variables(
    server: TestServer, store: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = seed(server, store, "acme", 10)
    monkeypatch.setenv("LINEAR_OAUTH_STORE", store.uri)
    monkeypatch.setenv("LINEAR_OAUTH_API_BASE", server.base_url)
    monkeypatch.setenv("LINEAR_OAUTH_AUTHORIZE_URL", server.authorize_url)
    r = lo.Resolver.from_env()
    assert (r.store, r.api_base) == (store.uri, server.base_url)
    assert r.resolve(s.workspace_id).access_token != s.access  # refreshed against the test server
    monkeypatch.setenv("LINEAR_OAUTH_REFRESH_THRESHOLD_S", "soon")
    with pytest.raises(lo.InvalidInput, match="LINEAR_OAUTH_REFRESH_THRESHOLD_S"):
        lo.Resolver.from_env()
