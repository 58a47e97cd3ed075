"""Client-credentials workspaces (issue 10, item 5) through Python: the
install's arguments and result, and the disabled-grant error's fields. How
such tokens are renewed is the host's behaviour (crates/host/tests)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import linear_oauth as lo

from conftest import Store, TestServer

APP_ID = "py-cc-app"
APP_SECRET = "py-cc-secret-canary-51"


def app(server: TestServer, enabled: bool = True) -> None:
    """A Linear app that allows (or not) the client_credentials grant."""
    server.admin(
        "POST",
        "clients",
        {"client_id": APP_ID, "client_secret": APP_SECRET, "redirect_uris": [], "client_credentials": enabled},
    )


def test_install_then_resolve_without_a_post(server: TestServer, store: Store, make_resolver: Any) -> None:
    app(server)
    r = make_resolver()
    installed = r.install_client_credentials(APP_ID, APP_SECRET, ["read", "write"], installed_by="py-user")
    assert isinstance(installed, lo.Installed)
    assert (installed.workspace_slug, installed.scope, installed.replaced) == ("testws", "read write", False)
    assert APP_SECRET not in repr(installed)
    stored = store.secret(installed.secret_id)
    assert stored["grant_type"] == "client_credentials"
    assert stored["installed_by_platform_user_id"] == "py-user"
    before = server.counters()["token_requests"]
    assert r.resolve(installed.workspace_id).access_token == stored["access_token"]
    assert server.counters()["token_requests"] == before
    with pytest.raises(TypeError):
        r.install_client_credentials(APP_ID, APP_SECRET, ["read"])  # type: ignore[call-arg]  # installed_by is required


def test_install_client_credentials_async_is_the_same_install(
    server: TestServer, store: Store, make_resolver: Any
) -> None:
    app(server)
    r = make_resolver()

    async def main() -> lo.Installed:
        return await r.install_client_credentials_async(APP_ID, APP_SECRET, ["read"], installed_by="py-async")

    installed = asyncio.run(main())
    assert isinstance(installed, lo.Installed) and installed.scope == "read"
    assert store.secret(installed.secret_id)["installed_by_platform_user_id"] == "py-async"
    assert installed.expires_at_datetime.isoformat(timespec="milliseconds").replace("+00:00", "Z") == installed.expires_at


def test_a_disabled_grant_names_the_linear_setting(server: TestServer, store: Store, make_resolver: Any) -> None:
    app(server, enabled=False)
    r = make_resolver()
    with pytest.raises(lo.TokenEndpointError) as info:
        r.install_client_credentials(APP_ID, APP_SECRET, ["read"], installed_by="u")
    e = info.value
    assert e.status == 400 and e.error == "Error"
    assert e.description is not None and "Client credentials" in e.description and "settings" in e.description
    assert APP_SECRET not in f"{e} {e!r} {e.description}"
    assert store.rows() == []
