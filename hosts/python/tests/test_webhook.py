"""Webhooks from Python: deliveries signed by the test server as Linear signs
them (`POST /_admin/webhook`), verified and handled by the resolver. The rule
matrix lives in crates/core and crates/host/tests; this checks the translation."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import linear_oauth as lo
from conftest import Store, TestServer

CLIENT_ID = "test-client-id"


def delivery(server: TestServer, secret: str, org: str, **spec: Any) -> dict[str, Any]:
    d: dict[str, Any] = server.admin("POST", "webhook", {"secret": secret, "organization_id": org, **spec})
    return d


def test_verify_returns_the_event(server: TestServer, store: Store, make_resolver: Any) -> None:
    s = store.seed("acme", fields={"webhook_signing_secret": "whsec-acme"})
    r = make_resolver()
    d = delivery(server, "whsec-acme", s.workspace_id)
    e = r.verify_webhook(d["body"].encode(), d["signature"], d["delivery_id"])
    assert isinstance(e, lo.WebhookEvent)
    assert (e.type, e.action, e.organization_id, e.matched, e.outcome) == (
        "Issue",
        "create",
        s.workspace_id,
        "workspace",
        None,
    )
    assert e.delivery_id == d["delivery_id"] and e.webhook_id == "webhook-test-1"
    assert json.loads(e.data)["identifier"] == "ACM-1"
    assert abs(e.timestamp_ms - json.loads(d["body"])["webhookTimestamp"]) == 0
    assert "whsec" not in repr(e)
    # The async form answers the same.
    async def verify_async() -> lo.WebhookEvent:
        return await r.verify_webhook_async(d["body"].encode(), d["signature"])

    e2 = asyncio.run(verify_async())
    assert e2.type == "Issue" and e2.delivery_id is None


def test_refusals_are_typed(server: TestServer, store: Store, make_resolver: Any) -> None:
    s = store.seed("acme", fields={"webhook_signing_secret": "whsec-acme"})
    r = make_resolver()
    forged = delivery(server, "whsec-acme", s.workspace_id, bad_signature=True)
    with pytest.raises(lo.WebhookSignatureError) as bad:
        r.verify_webhook(forged["body"].encode(), forged["signature"])
    assert "whsec" not in str(bad.value) and bad.value.code == "WEBHOOK_SIGNATURE"
    stale = delivery(server, "whsec-acme", s.workspace_id, age_ms=120_000)
    with pytest.raises(lo.WebhookStaleError):
        r.verify_webhook(stale["body"].encode(), stale["signature"])
    with pytest.raises(lo.WebhookMalformedError):
        r.verify_webhook(b"[]", "0" * 64)
    with pytest.raises(lo.WebhookSignatureError):
        r.verify_webhook(forged["body"].encode(), "")
    with pytest.raises(TypeError):
        r.verify_webhook(forged["body"], forged["signature"])  # type: ignore[arg-type]
    async def handle_async() -> lo.WebhookEvent:
        return await r.handle_webhook_async(forged["body"].encode(), forged["signature"])

    with pytest.raises(lo.WebhookSignatureError):
        asyncio.run(handle_async())


def test_stack_secret_and_rotation(server: TestServer, store: Store, make_resolver: Any) -> None:
    s = store.seed("acme")
    r = make_resolver(webhook_secret_id="webhook-stack")
    r.set_webhook_secret("whsec-stack")
    d = delivery(server, "whsec-stack", s.workspace_id)
    assert r.verify_webhook(d["body"].encode(), d["signature"]).matched == "stack"
    r.set_webhook_secret("whsec-own", workspace_id=s.workspace_id)
    assert store.secret(s.secret_id)["webhook_signing_secret"] == "whsec-own"
    d = delivery(server, "whsec-own", s.workspace_id)
    assert r.verify_webhook(d["body"].encode(), d["signature"]).matched == "workspace"
    # The workspace has its own now: the stack-wide secret no longer verifies it.
    d = delivery(server, "whsec-stack", s.workspace_id)
    with pytest.raises(lo.WebhookSignatureError):
        r.verify_webhook(d["body"].encode(), d["signature"])
    with pytest.raises(lo.InvalidInput):
        r.set_webhook_secret("x", workspace_id=s.workspace_id, secret_id=s.secret_id)


def test_handle_app_revoked(server: TestServer, store: Store, make_resolver: Any) -> None:
    s = store.seed("acme", fields={"webhook_signing_secret": "whsec"})
    r = make_resolver()
    r.resolve(s.workspace_id)
    d = delivery(server, "whsec", s.workspace_id, event="app-revoked", oauth_client_id=CLIENT_ID)
    e = r.handle_webhook(d["body"].encode(), d["signature"], d["delivery_id"])
    assert (e.type, e.action, e.outcome, e.oauth_client_id) == ("OAuthApp", "revoked", "revoked", CLIENT_ID)
    with pytest.raises(lo.Revoked):
        r.resolve(s.workspace_id)
    assert [row["status"] for row in store.rows()] == ["revoked"]
    # Linear's retry of the same delivery changes nothing.
    assert r.handle_webhook(d["body"].encode(), d["signature"]).outcome == "already-revoked"
    assert server.counters()["token_requests"] == 0
