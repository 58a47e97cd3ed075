"""The 401 round trip in one line: ``LinearAuth`` (httpx, sync and async) and
``LinearRequestsAuth`` (requests) against the test server's GraphQL endpoint,
which answers 401 to a token killed at "Linear" (``/_admin/kill-access-token``)
or, with ``graphql_unauthorized_next``, to any token."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import requests

import linear_oauth as lo
from conftest import Seeded, Store, TestServer
from linear_oauth.httpx import LinearAuth
from linear_oauth.requests import LinearRequestsAuth

QUERY = {"query": "{ viewer { id } }"}


def kill(server: TestServer, token: str) -> None:
    assert server.admin("POST", "kill-access-token", {"token": token}) == {"killed": True}


def no_proxy_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback only, whatever proxies the environment names
    return session


def via_httpx(server: TestServer, auth: Any) -> tuple[int, int]:
    with httpx.Client(auth=auth, trust_env=False) as client:
        resp = client.post(f"{server.base_url}/graphql", json=QUERY)
        return resp.status_code, len(resp.history)


def via_httpx_async(server: TestServer, auth: Any) -> tuple[int, int]:
    async def main() -> tuple[int, int]:
        async with httpx.AsyncClient(auth=auth, trust_env=False) as client:
            resp = await client.post(f"{server.base_url}/graphql", json=QUERY)
            return resp.status_code, len(resp.history)

    return asyncio.run(main())


def via_requests(server: TestServer, auth: Any) -> tuple[int, int]:
    with no_proxy_session() as session:
        resp = session.post(f"{server.base_url}/graphql", json=QUERY, auth=auth, timeout=10)
        return resp.status_code, len(resp.history)


CLIENTS: dict[str, tuple[Callable[..., Any], Callable[[TestServer, Any], tuple[int, int]]]] = {
    "httpx": (LinearAuth, via_httpx),
    "httpx-async": (LinearAuth, via_httpx_async),
    "requests": (LinearRequestsAuth, via_requests),
}


def make_auth(kind: str, r: lo.Resolver, s: Seeded, by: str) -> Any:
    cls = CLIENTS[kind][0]
    return cls(r, s.workspace_id) if by == "workspace" else cls(r, secret_id=s.secret_id)


@pytest.mark.parametrize("by", ["workspace", "secret"])
@pytest.mark.parametrize("kind", list(CLIENTS))
def test_a_killed_token_succeeds_after_exactly_one_refresh(
    server: TestServer, store: Store, make_resolver: Any, kind: str, by: str
) -> None:
    s = store.seed("acme", 3600)  # fresh: only the 401 makes it refresh
    r = make_resolver()
    auth = make_auth(kind, r, s, by)
    send = CLIENTS[kind][1]
    assert send(server, auth) == (200, 0)
    assert server.counters()["token_refresh"] == 0
    kill(server, s.access)
    before = server.counters()
    assert send(server, auth) == (200, 1), "one 401, then the retry"
    after = server.counters()
    assert after["token_refresh"] - before["token_refresh"] == 1
    assert after["graphql"] - before["graphql"] == 2
    stored = store.secret(s.secret_id)["access_token"]
    assert stored != s.access and r.resolve(s.workspace_id).access_token == stored
    # The new token is cached: the next request is one GraphQL call, no refresh.
    assert send(server, auth) == (200, 0)
    assert server.counters()["token_refresh"] == after["token_refresh"]


@pytest.mark.parametrize("kind", list(CLIENTS))
def test_a_second_401_is_returned_not_retried_again(
    server: TestServer, store: Store, make_resolver: Any, kind: str
) -> None:
    s = store.seed("acme", 3600)
    r = make_resolver()
    auth = make_auth(kind, r, s, "workspace")
    server.faults(graphql_unauthorized_next=5)
    before = server.counters()
    assert CLIENTS[kind][1](server, auth) == (401, 1)
    after = server.counters()
    assert after["graphql"] - before["graphql"] == 2, "exactly one retry"
    assert after["token_refresh"] - before["token_refresh"] == 1


def test_a_stale_report_serves_the_newer_token_without_a_refresh(
    server: TestServer, store: Store, make_resolver: Any
) -> None:
    """Two processes: one refreshed after a 401; the other's 401 on the old
    token gets the stored newer one, with no token request."""
    s = store.seed("acme", 3600)
    first, second = make_resolver(), make_resolver()
    assert via_httpx(server, LinearAuth(second, secret_id=s.secret_id)) == (200, 0)  # caches the old token
    kill(server, s.access)
    assert via_httpx(server, LinearAuth(first, s.workspace_id)) == (200, 1)
    before = server.counters()["token_refresh"]
    assert via_requests(server, LinearRequestsAuth(second, secret_id=s.secret_id)) == (200, 1)
    assert server.counters()["token_refresh"] == before


def test_a_streamed_requests_body_is_not_sent_twice(server: TestServer, store: Store, make_resolver: Any) -> None:
    s = store.seed("acme", 3600)
    r = make_resolver()
    kill(server, s.access)
    before = server.counters()
    body = (chunk for chunk in [b'{"query": ', b'"{ viewer { id } }"}'])
    with no_proxy_session() as session:
        resp = session.post(f"{server.base_url}/graphql", data=body, auth=LinearRequestsAuth(r, s.workspace_id))
    assert resp.status_code == 401
    assert server.counters()["graphql"] - before["graphql"] == 1


def test_auth_objects_show_ids_never_tokens(store: Store, make_resolver: Any) -> None:
    s = store.seed("acme", 3600)
    r = make_resolver()
    token = r.resolve(s.workspace_id).access_token
    for auth in [
        LinearAuth(r, s.workspace_id),
        LinearAuth(r, secret_id=s.secret_id),
        LinearRequestsAuth(r, s.workspace_id),
        LinearRequestsAuth(r, secret_id=s.secret_id),
    ]:
        for text in (repr(auth), str(auth), repr(vars(auth) if hasattr(auth, "__dict__") else ())):
            assert token not in text and s.refresh not in text, text
    assert repr(LinearAuth(r, s.workspace_id)) == f"LinearAuth({r!r}, workspace_id={s.workspace_id!r})"
    assert repr(LinearRequestsAuth(r, secret_id=s.secret_id)) == (
        f"LinearRequestsAuth({r!r}, secret_id={s.secret_id!r})"
    )


@pytest.mark.parametrize("cls", [LinearAuth, LinearRequestsAuth])
def test_exactly_one_of_workspace_id_and_secret_id(make_resolver: Any, cls: Any) -> None:
    r = make_resolver()
    with pytest.raises(TypeError, match="exactly one"):
        cls(r)
    with pytest.raises(TypeError, match="exactly one"):
        cls(r, "org-1", secret_id="s")


def test_exported_from_the_package_lazily() -> None:
    assert lo.LinearAuth is LinearAuth
    assert lo.LinearRequestsAuth is LinearRequestsAuth
    assert {"LinearAuth", "LinearRequestsAuth"} <= set(dir(lo))
    assert "LinearAuth" not in lo.__all__  # `import *` needs neither httpx nor requests


def test_import_needs_neither_httpx_nor_requests() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('httpx', 'requests'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import linear_oauth as lo\n"
        "lo.Resolver\n"
        "try:\n"
        "    lo.LinearAuth\n"
        "except ImportError:\n"
        "    print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_expires_at_datetime_is_the_same_instant_in_utc(store: Store, make_resolver: Any) -> None:
    s = store.seed("acme", 3600)
    t = make_resolver().resolve(s.workspace_id)
    dt = t.expires_at_datetime
    assert dt.tzinfo is not None and dt.utcoffset() == datetime.timedelta(0)
    assert dt == datetime.datetime.fromisoformat(t.expires_at)
    assert dt.isoformat(timespec="milliseconds").replace("+00:00", "Z") == t.expires_at
    remaining = dt - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(minutes=50) < remaining <= datetime.timedelta(hours=1)


def test_report_unauthorized_by_secret_id_and_the_async_twins(
    server: TestServer, store: Store, make_resolver: Any
) -> None:
    s = store.seed("acme", 3600)
    r = make_resolver()
    t = r.report_unauthorized_secret(s.secret_id, s.access)
    assert t.access_token != s.access and server.counters()["token_refresh"] == 1
    # A report about the old token again: the stored one, no refresh.
    assert r.report_unauthorized_secret(s.secret_id, s.access).access_token == t.access_token

    async def main() -> None:
        again = await r.report_unauthorized_secret_async(s.secret_id, s.access)
        assert again.access_token == t.access_token
        newer = await r.report_unauthorized_async(s.workspace_id, t.access_token)
        assert newer.access_token != t.access_token
        forced = await r.force_refresh_async(s.secret_id)
        assert forced.access_token != newer.access_token
        assert await r.invalidate_async(s.workspace_id) is None
        assert r.cached(s.workspace_id) is None
        await r.set_webhook_secret_async("whsec-test", workspace_id=s.workspace_id)
        with pytest.raises(lo.InvalidInput):
            await r.set_webhook_secret_async("x", workspace_id="a", secret_id="b")
        revocation = await r.revoke_async(s.workspace_id)
        assert revocation.outcome == "revoked" and revocation.confirmed
        with pytest.raises(lo.Revoked):
            await r.report_unauthorized_async(s.workspace_id, forced.access_token)

    asyncio.run(main())
    assert server.counters()["token_refresh"] == 3


def test_every_call_that_may_block_has_an_async_twin() -> None:
    # No store or network I/O: a snapshot of counters, and one EMF line on stdout.
    no_io = {"cached", "cached_secret", "from_env", "store", "api_base", "metrics", "flush_metrics"}
    public = [n for n in dir(lo.Resolver) if not n.startswith("_") and not n.endswith("_async") and n not in no_io]
    assert "report_unauthorized_secret" in public
    missing = [n for n in public if not hasattr(lo.Resolver, f"{n}_async")]
    assert missing == []


def test_the_async_flow_refreshes_without_blocking_the_loop(
    server: TestServer, store: Store, make_resolver: Any
) -> None:
    s = store.seed("acme", 3600)
    r = make_resolver()
    kill(server, s.access)
    server.faults(latency_ms=400)  # the refresh POST takes 400 ms

    async def main() -> tuple[int, int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        async with httpx.AsyncClient(auth=LinearAuth(r, s.workspace_id), trust_env=False) as client:
            resp = await client.post(f"{server.base_url}/graphql", json=QUERY)
        done.set()
        await task
        return resp.status_code, ticks

    status, ticks = asyncio.run(main())
    assert status == 200
    assert server.counters()["token_refresh"] == 1
    assert ticks >= 10, f"the loop ran only {ticks} times during a 400 ms refresh"
