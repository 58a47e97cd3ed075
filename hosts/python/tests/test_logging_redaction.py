"""Log events reach `logging` with structured fields; secrets reach nothing."""

from __future__ import annotations

import logging
import pickle
from typing import Any

import pytest

import linear_oauth as lo
from linear_oauth import _native
from conftest import CLIENT_SECRET, Store, TestServer


def test_refresh_logs_one_info_line_with_fields(
    server: TestServer, store: Store, make_resolver: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="linear_oauth")
    s = store.seed("acme", 10)
    t = make_resolver().resolve(s.workspace_id)
    refreshed = [r for r in caplog.records if r.getMessage() == "refreshed Linear access token"]
    assert len(refreshed) == 1
    rec = refreshed[0]
    assert rec.name == "linear_oauth" and rec.levelno == logging.INFO
    assert getattr(rec, "workspace_id") == s.workspace_id
    assert getattr(rec, "workspace_slug") == "acme"
    assert getattr(rec, "expires_at") == t.expires_at


def test_levels_and_the_logger_threshold(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="linear_oauth")
    _native._emit_log("info", "dropped below the threshold", [])
    _native._emit_log("warn", "kept", [("k", "v")])
    _native._emit_log("error", "also kept", [])
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "kept"),
        (logging.ERROR, "also kept"),
    ]
    caplog.clear()
    caplog.set_level(1, logger="linear_oauth")
    _native._emit_log("trace", "t", [])
    _native._emit_log("debug", "d", [])
    assert [r.levelno for r in caplog.records] == [5, logging.DEBUG]
    with pytest.raises(lo.InvalidInput):
        _native._emit_log("loud", "x", [])


def test_fields_that_clash_with_log_record_attributes_are_prefixed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="linear_oauth")
    fields = [("message", "m"), ("name", "n"), ("msg", "x"), ("asctime", "a"), ("workspace_id", "org-1")]
    _native._emit_log("info", "with clashes", fields)
    (rec,) = caplog.records
    assert rec.name == "linear_oauth" and rec.getMessage() == "with clashes"
    assert getattr(rec, "linear_oauth_message") == "m"
    assert getattr(rec, "linear_oauth_name") == "n"
    assert getattr(rec, "linear_oauth_msg") == "x"
    assert getattr(rec, "linear_oauth_asctime") == "a"
    assert getattr(rec, "workspace_id") == "org-1"


def test_a_percent_in_a_message_is_not_formatted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="linear_oauth")
    _native._emit_log("info", "100% done %s", [])
    assert caplog.records[0].getMessage() == "100% done %s"


def _everything_said(caplog: pytest.LogCaptureFixture) -> str:
    parts = [caplog.text]
    for rec in caplog.records:
        parts.append(rec.getMessage())
        parts.extend(repr(v) for v in vars(rec).values())
    return "\n".join(parts)


def test_no_secret_in_repr_errors_or_logs(
    server: TestServer, store: Store, make_resolver: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(1, logger="linear_oauth")
    r = make_resolver()
    secrets = [CLIENT_SECRET]
    seen: list[str] = [repr(r), str(r)]

    # Success with a refresh.
    s = store.seed("acme", 10)
    secrets += [s.access, s.refresh]
    t = r.resolve(s.workspace_id)
    stored = store.secret(s.secret_id)
    secrets += [t.access_token, stored["refresh_token"]]
    seen += [repr(t), str(t), repr(r.cached(s.workspace_id)), repr(lo.load_info())]
    assert "acme" in repr(t) and "<redacted>" in repr(t)
    with pytest.raises(TypeError):
        pickle.dumps(t)  # a token is never serialized by accident
    with pytest.raises(AttributeError):
        t.access_token = "x"

    def record(e: BaseException) -> None:
        seen.extend([repr(e), str(e), repr(e.args), repr(vars(e))])

    # Every failure path: an endpoint echoing the client secret, unreadable bodies,
    # a spent refresh token, an invalid stored token holding a real access token.
    echo = '{"error":"x","error_description":"' + CLIENT_SECRET + '"}'
    faults: list[dict[str, Any]] = [
        {"fail_next": {"count": 1, "status": 500, "body": echo}},
        {"malformed_next": 1},
        {"oversize_next": 1},
    ]
    for i, fault in enumerate(faults):
        s2 = store.seed(f"beta{i}", -5)
        secrets += [s2.access, s2.refresh]
        server.faults(**fault)
        with pytest.raises(lo.LinearOAuthError) as info:
            r.resolve(s2.workspace_id)
        record(info.value)
    s3 = store.seed("gamma", 10)
    secrets += [s3.access, s3.refresh]
    server.spend(s3.refresh)
    with pytest.raises(lo.ReauthorizationRequired) as reauth:
        r.resolve(s3.workspace_id)
    record(reauth.value)
    store.put_secret("broken", '{"access_token":"' + s3.access + '"}')
    with pytest.raises(lo.InvalidStoredToken) as invalid:
        r.resolve_secret("broken")
    record(invalid.value)

    said = "\n".join(seen) + _everything_said(caplog)
    assert "refreshed Linear access token" in said, "logs were captured"
    assert "token refresh failed" in said
    for secret in secrets:
        assert secret not in said, f"a secret leaked ({secret[:6]}...)"
