"""The shared stored-token vectors (tests/vectors/stored_tokens.json), through Python."""

from __future__ import annotations

import json
from typing import Any

import pytest

import linear_oauth as lo
from conftest import VECTORS, FileStore, TestServer

CASES: list[dict[str, Any]] = json.loads((VECTORS / "stored_tokens.json").read_text())["vectors"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_stored_token_vector(case: dict[str, Any], server: TestServer, store: FileStore, make_resolver: Any) -> None:
    secret_id = "arn:aws:secretsmanager:us-east-1:123456789012:secret:vector/" + case["name"]
    store.put_secret(secret_id, case["value"])
    r = make_resolver()
    if case["valid"]:
        t = r.resolve_secret(secret_id)
        assert t.access_token == "lin_oauth_vector_access"
        assert t.secret_id == secret_id
        assert t.workspace_slug == "testws"
    else:
        with pytest.raises(lo.InvalidStoredToken) as info:
            r.resolve_secret(secret_id)
        assert info.value.invalid_fields == tuple(case["bad_fields"])
        assert info.value.code == "INVALID_STORED_TOKEN"
        for field in case["bad_fields"]:
            assert field in str(info.value)
    # A bad secret fails at read time, never at refresh time; a good one is fresh.
    assert server.counters()["token_requests"] == 0


def test_vectors_cover_both_outcomes() -> None:
    assert any(c["valid"] for c in CASES) and any(not c["valid"] for c in CASES)
