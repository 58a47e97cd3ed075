"""Issue 20 item 1 in the Python host: in an invocation environment (AWS
Lambda) a resolve inside the refresh-ahead window refreshes before it returns,
so nothing that rotates a credential runs after the call."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import linear_oauth as lo
from conftest import Store, TestServer, wait_until


def test_an_invocation_refreshes_inside_the_call(
    server: TestServer,
    store: Store,
    make_resolver: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="linear_oauth")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "agent-task")
    s = store.seed("acme", 300)  # inside refresh-ahead (600 s) + threshold (60 s)
    r = make_resolver()
    ready = [rec for rec in caplog.records if rec.getMessage() == "linear-oauth resolver ready"]
    assert len(ready) == 1, "logged once, at construction"
    assert getattr(ready[0], "lifetime") == "invocation"
    assert getattr(ready[0], "detected_from") == "AWS_LAMBDA_FUNCTION_NAME"
    t = r.resolve(s.workspace_id)
    assert t.access_token != s.access, "refreshed inline, not in a background thread"
    assert store.secret(s.secret_id)["access_token"] == t.access_token, "written before the call returned"
    assert server.counters()["token_refresh_ok"] == 1


def test_a_long_lived_resolver_still_answers_at_once(
    server: TestServer, store: Store, make_resolver: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="linear_oauth")
    s = store.seed("acme", 300)
    r = make_resolver(lifetime="long-lived")
    assert r.resolve(s.workspace_id).access_token == s.access
    # ... and refreshes in the background (waited for, so its log line
    # cannot land in a later test).
    wait_until(lambda: any(r.getMessage() == "refreshed Linear access token" for r in caplog.records))
    assert store.secret(s.secret_id)["access_token"] != s.access


def test_misconfigured_stores_and_lifetimes_are_invalid_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(lo.InvalidInput, match="lifetime"):
        lo.Resolver(store=f"file:{tmp_path}", lifetime="forever")
    with pytest.raises(lo.InvalidInput, match="LINEAR_OAUTH_REGISTRY_TABLE"):
        lo.Resolver(store=f"file:{tmp_path}", registry_table="registry")
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
    with pytest.raises(lo.InvalidInput, match="LINEAR_OAUTH_STORE"):
        lo.Resolver()
    lo.Resolver(store=f"file:{tmp_path}")  # an explicit store is fine there
