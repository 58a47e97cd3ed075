"""`Resolver.metrics()` after real resolves and a refresh (the counting rules
are tested in crates/host/tests/resolver/metrics.rs), its TypedDict, and the
EMF lines on stdout."""

from __future__ import annotations

import json
from typing import Any

import pytest

import linear_oauth as lo
from conftest import Store, TestServer
from linear_oauth.metrics import Metrics


def test_every_metric_of_the_host_table_is_typed() -> None:
    from linear_oauth import _native

    table = _native._metrics_table()  # type: ignore[attr-defined]
    assert [name for name, *_ in table] == list(Metrics.__annotations__)
    for name, kind, unit, help in table:
        assert kind in ("counter", "timing") and unit in ("Count", "Milliseconds") and help, name


def test_metrics_count_resolves_and_a_refresh(server: TestServer, store: Store, make_resolver: Any) -> None:
    fresh = store.seed("acme", 3600)
    due = store.seed("beta", 10)
    r = make_resolver()
    before = r.metrics()
    assert before["resolves_cached"] == 0 and before["refresh_latency_ms"]["count"] == 0
    for _ in range(3):
        r.resolve(fresh.workspace_id)
    r.resolve(due.workspace_id)
    m: Metrics = r.metrics()
    assert (m["resolves_uncached"], m["resolves_cached"]) == (2, 2)
    assert m["refreshes_ok"] == 1
    assert server.counters()["token_refresh_ok"] == 1
    t = m["refresh_latency_ms"]
    assert t["count"] == 1 and t["min_ms"] == t["max_ms"] == t["sum_ms"]
    assert sum(b["count"] for b in t["buckets"]) == 1 and t["buckets"][-1]["le_ms"] is None
    counted = ("resolves_cached", "resolves_uncached", "refreshes_ok")
    others = {k: v for k, v in m.items() if isinstance(v, int) and k not in counted}
    assert set(others.values()) == {0}, others


def test_emf_lines_go_to_stdout_without_secrets(
    server: TestServer, store: Store, make_resolver: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    s = store.seed("acme", 10)
    r = make_resolver(metrics_emf=True, metrics_namespace="PyTest")
    t = r.resolve(s.workspace_id)
    r.resolve(s.workspace_id)
    r.flush_metrics()
    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")]
    assert len(lines) == 2, lines
    assert lines[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "PyTest"
    assert lines[0]["refreshes_ok"] == 1
    assert (lines[1]["resolves_cached"], lines[1]["resolves_uncached"]) == (1, 1)
    text = json.dumps(lines)
    for secret in (s.access, s.refresh, t.access_token, store.secret(s.secret_id)["refresh_token"], s.workspace_id):
        assert secret not in text
    with pytest.raises(TypeError, match="metrics_emf"):
        lo.Resolver(store="memory:", metrics_emf="yes")
