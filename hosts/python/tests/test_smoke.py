"""One end-to-end pass through the public API: a seeded workspace is resolved
(with a refresh), served from the cache, reported after a 401, force-refreshed,
and fails with a typed error once its grant is gone."""

from __future__ import annotations

from typing import Any

import pytest

import linear_oauth as lo
from conftest import Store, TestServer


def test_seed_resolve_refresh_report_and_fail(server: TestServer, store: Store, make_resolver: Any) -> None:
    s = store.seed("acme", 30)  # due: the first resolve refreshes
    r = make_resolver()
    t = r.resolve(s.workspace_id)
    assert isinstance(t, lo.ResolvedToken)
    assert t.access_token != s.access
    assert (t.scope, t.workspace_slug, t.secret_id, t.workspace_id) == ("read write", "acme", s.secret_id, s.workspace_id)
    stored = store.secret(s.secret_id)
    assert (stored["access_token"], stored["expires_at"]) == (t.access_token, t.expires_at)
    cached = r.cached(s.workspace_id)
    assert cached is not None and cached.access_token == t.access_token
    assert r.resolve_secret(s.secret_id).access_token == t.access_token
    assert r.cached_secret(s.secret_id) is not None

    # Linear answered 401 with the token: one new token.
    reported = r.report_unauthorized(s.workspace_id, t.access_token)
    assert reported.access_token not in (s.access, t.access_token)
    forced = r.force_refresh(s.secret_id)
    assert forced.access_token != reported.access_token
    assert r.resolve(s.workspace_id).access_token == forced.access_token
    r.invalidate(s.workspace_id)
    assert r.cached(s.workspace_id) is None
    assert server.counters()["token_refresh_ok"] == 3

    with pytest.raises(lo.NotRegistered, match="org-nope"):
        r.resolve("org-nope")
    assert server.spend(store.secret(s.secret_id)["refresh_token"]) == 200  # spent elsewhere, never stored
    with pytest.raises(lo.ReauthorizationRequired) as info:
        r.force_refresh(s.secret_id)
    assert info.value.code == "REAUTHORIZATION_REQUIRED"
