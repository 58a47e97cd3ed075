"""Client-credentials workspaces (issue 10, item 5): installed without a
browser, renewed by fetching a new token (no refresh token; Linear keeps one
active token per app), and errors that name the Linear setting."""

from __future__ import annotations

import json
import threading
import urllib.parse
from typing import Any

import pytest

import linear_oauth as lo

from conftest import FileStore, TestServer, iso_in, token_json

APP_ID = "py-cc-app"
APP_SECRET = "py-cc-secret-canary-51"


@pytest.fixture
def app(server: TestServer) -> str:
    """A Linear app that allows the client_credentials grant."""
    server.admin(
        "POST",
        "clients",
        {"client_id": APP_ID, "client_secret": APP_SECRET, "redirect_uris": [], "client_credentials": True},
    )
    return APP_ID


def access_live(server: TestServer, token: str) -> bool:
    q = urllib.parse.urlencode({"token": token})
    return bool(server.admin("GET", f"access-token-status?{q}")["live"])


def test_install_then_resolve_without_a_post(server: TestServer, store: FileStore, make_resolver: Any, app: str) -> None:
    r = make_resolver()
    installed = r.install_client_credentials(APP_ID, APP_SECRET, ["read", "write"], installed_by="py-user")
    assert isinstance(installed, lo.Installed)
    assert (installed.workspace_slug, installed.scope, installed.replaced) == ("testws", "read write", False)
    assert APP_SECRET not in repr(installed)
    stored = store.secret(installed.secret_id)
    assert stored["grant_type"] == "client_credentials"
    assert "refresh_token" not in stored
    assert stored["installed_by_platform_user_id"] == "py-user"
    before = server.counters()["token_requests"]
    token = r.resolve(installed.workspace_id)
    assert token.access_token == stored["access_token"]
    assert server.counters()["token_requests"] == before


def test_an_expiring_token_is_fetched_anew_once_for_many_threads(
    server: TestServer, store: FileStore, make_resolver: Any, app: str
) -> None:
    issued = server.admin(
        "POST", "issue", {"client_id": APP_ID, "scope": "read write", "grant_type": "client_credentials"}
    )
    assert "refresh_token" not in issued
    value = json.loads(token_json(issued["access_token"], "x", iso_in(30), "org-pycc", "pycc"))
    del value["refresh_token"]
    value.update(grant_type="client_credentials", client_id=APP_ID, client_secret=APP_SECRET)
    store.put_secret("bgagent-linear-oauth-pycc", json.dumps(value))
    store.put_row("org-pycc", "pycc", "bgagent-linear-oauth-pycc")
    resolvers = [make_resolver(), make_resolver()]
    results: list[str] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results.append(resolvers[i % 2].resolve("org-pycc").access_token)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    c = server.counters()
    assert (c["token_requests"], c["token_client_credentials_ok"], c["token_refresh"]) == (1, 1, 0), c
    assert len(set(results)) == 1 and results[0] != issued["access_token"]
    assert access_live(server, results[0]) and not access_live(server, issued["access_token"])
    stored = store.secret("bgagent-linear-oauth-pycc")
    assert stored["access_token"] == results[0]
    assert stored["grant_type"] == "client_credentials" and "refresh_token" not in stored
    assert stored["team_hint"] == {"kept": True}


def test_a_disabled_grant_names_the_linear_setting(
    server: TestServer, store: FileStore, make_resolver: Any, app: str
) -> None:
    server.admin(
        "POST",
        "clients",
        {"client_id": APP_ID, "client_secret": APP_SECRET, "redirect_uris": [], "client_credentials": False},
    )
    r = make_resolver()
    with pytest.raises(lo.TokenEndpointError) as info:
        r.install_client_credentials(APP_ID, APP_SECRET, ["read"], installed_by="u")
    e = info.value
    assert e.status == 400 and e.error == "Error"
    assert e.description is not None and "Client credentials" in e.description and "settings" in e.description
    assert APP_SECRET not in f"{e} {e!r} {e.description}"
    assert not (store.root / "registry.json").exists()


def test_a_401_report_fetches_one_new_token_and_another_process_finds_it(
    server: TestServer, store: FileStore, make_resolver: Any, app: str
) -> None:
    r, other = make_resolver(), make_resolver()
    installed = r.install_client_credentials(APP_ID, APP_SECRET, ["read"], installed_by="u")
    old = r.resolve(installed.workspace_id).access_token
    assert other.resolve(installed.workspace_id).access_token == old
    before = server.counters()["token_requests"]
    new = r.report_unauthorized(installed.workspace_id, old).access_token
    assert new != old and not access_live(server, old)
    assert server.counters()["token_requests"] == before + 1
    # The other process still holds the old token, gets 401, reports it: no POST.
    assert other.report_unauthorized(installed.workspace_id, old).access_token == new
    assert server.counters()["token_requests"] == before + 1
