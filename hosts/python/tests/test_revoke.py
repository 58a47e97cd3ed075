"""`Resolver.revoke`: the translation of the host's revoke (the behaviour matrix
lives in crates/host/tests): outcome, confirmation, purge rules, redaction."""

from __future__ import annotations

from typing import Any

import pytest

import linear_oauth as lo
from conftest import Store, TestServer


def test_revoke_ends_the_grant_and_reports_it(server: TestServer, store: Store, make_resolver: Any) -> None:
    s = store.seed("acme", 3600)
    r = make_resolver()
    rev = r.revoke(s.workspace_id)
    assert isinstance(rev, lo.Revocation)
    assert (rev.outcome, rev.confirmed, rev.detail, rev.linear_status, rev.purged) == ("revoked", True, None, 200, False)
    assert rev.workspace_id == s.workspace_id and rev.secret_id == s.secret_id
    assert not server.refresh_token_live(s.refresh)
    with pytest.raises(lo.Revoked):
        r.resolve(s.workspace_id)
    for text in [repr(rev), str(rev)]:
        assert s.access not in text and s.refresh not in text


def test_unconfirmed_revoke_keeps_the_secret_unless_forced(server: TestServer, store: Store, make_resolver: Any) -> None:
    s = store.seed("acme", 3600)
    server.faults(revoke_fail_next={"count": 10, "status": 503}, fail_next={"count": 10, "status": 503})
    r = make_resolver()
    rev = r.revoke(s.workspace_id, purge=True)
    assert rev.outcome == "failed" and not rev.confirmed and rev.detail
    assert rev.purged is False
    assert store.raw_secret(s.secret_id) is not None  # kept: the grant may still be live
    # The kept secret is marked: the secret-id path is revoked too, with no token request.
    before = server.counters()["token_requests"]
    with pytest.raises(lo.Revoked):
        make_resolver().resolve_secret(s.secret_id)
    assert server.counters()["token_requests"] == before
    rev = r.revoke(s.workspace_id, purge=True, force=True)
    assert rev.purged is True
    assert store.raw_secret(s.secret_id) is None
    with pytest.raises(TypeError):
        r.revoke(s.workspace_id, True)  # type: ignore[misc]  # purge and force are keyword-only


def test_a_revoke_drops_only_its_workspace(store: Store, make_resolver: Any) -> None:
    """The host's one rule decides what a call drops: acme's token objects go
    (by workspace and by secret id), beta keeps its very object from memory."""
    a, b = store.seed("acme", 3600), store.seed("beta", 3600)
    r = make_resolver()
    r.resolve(a.workspace_id)
    r.resolve_secret(a.secret_id)
    tb = r.resolve(b.workspace_id)
    # Changed behind the resolver's back: read again only if the cache dropped it.
    store.seed("beta", 3600, fields={"access_token": "beta-rotated-elsewhere"})
    r.revoke(a.workspace_id)
    with pytest.raises(lo.Revoked):
        r.resolve(a.workspace_id)
    with pytest.raises(lo.Revoked):
        r.resolve_secret(a.secret_id)
    assert r.resolve(b.workspace_id) is tb
    assert r.cached(b.workspace_id) is tb
    assert tb.access_token == b.access
