"""Fixtures: the test harness (a subprocess: the Linear-compatible test server
plus routes that seed and read stores through the host's own backends), file
stores seeded through it, and resolvers pointed at both.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

import linear_oauth as lo

REPO = Path(__file__).resolve().parents[3]
CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-secret"

# Loopback only: never route test traffic through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def harness_binary() -> Path:
    configured = os.environ.get("LINEAR_OAUTH_TESTHARNESS")
    path = Path(configured) if configured else REPO / "target" / "debug" / "linear-oauth-testharness"
    if not path.is_file():
        pytest.fail(
            f"test harness binary not found at {path}; build it with "
            "`cargo build -p linear-oauth-testharness` or set LINEAR_OAUTH_TESTHARNESS",
            pytrace=False,
        )
    return path


class TestServer:
    """Client of a running `linear-oauth-testharness`: the Linear-compatible
    test server's admin API and raw token endpoint, and the store routes."""

    __test__ = False  # not a test class

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/oauth/authorize"

    def request(
        self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        req = urllib.request.Request(f"{self.base_url}{path}", data=body, method=method)
        if body is not None:
            req.add_header("Content-Type", content_type)
        try:
            with _OPENER.open(req, timeout=10) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def admin(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        status, data = self.request(method, f"/_admin/{path}", body)
        assert status == 200, f"admin {path}: {status} {data}"
        return data

    def counters(self) -> dict[str, Any]:
        data: dict[str, Any] = self.admin("GET", "counters")
        return data

    def faults(self, **patch: Any) -> None:
        self.admin("POST", "faults", patch)

    def reset(self) -> None:
        self.admin("POST", "reset", {})

    def issue(self, scope: str = "read write", expires_in: int = 86_399) -> dict[str, Any]:
        data: dict[str, Any] = self.admin(
            "POST", "issue", {"client_id": CLIENT_ID, "scope": scope, "expires_in": expires_in}
        )
        return data

    def refresh_token_live(self, token: str) -> bool:
        q = urllib.parse.urlencode({"token": token})
        return bool(self.admin("GET", f"refresh-token-status?{q}")["live"])

    def spend(self, refresh_token: str) -> int:
        """Uses a refresh token directly, as a competing refresher would."""
        form = urllib.parse.urlencode(
            {
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            }
        ).encode()
        status, _ = self.request("POST", "/oauth/token", form, "application/x-www-form-urlencoded")
        return status


@pytest.fixture(scope="session")
def _server_process() -> Iterator[TestServer]:
    proc = subprocess.Popen(
        [str(harness_binary())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        line = proc.stdout.readline().decode() if ready else ""
        prefix = "listening on "
        if not line.startswith(prefix):
            pytest.fail(f"test server did not start (first line {line!r})", pytrace=False)
        yield TestServer(line[len(prefix) :].strip())
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def server(_server_process: TestServer) -> TestServer:
    """The shared server with zeroed counters and default knobs."""
    _server_process.reset()
    return _server_process


@dataclass
class Seeded:
    workspace_id: str
    secret_id: str
    access: str
    refresh: str


class Store:
    """A `file:` store, seeded and read through the harness's admin routes,
    which use the host's own stores: no test here knows the store's layout."""

    def __init__(self, server: TestServer, root: Path) -> None:
        self.server = server
        self.uri = f"file:{root}"

    def seed(self, slug: str, expires_in_s: float = 3600, **request: Any) -> Seeded:
        """A registered workspace whose stored token holds a live pair minted
        at the server, expiring in `expires_in_s`; `request` adds to the seed
        request (`fields`, `status`, `grant_type`, `client_id`, ...)."""
        got = self.server.admin(
            "POST", "seed", {"store": self.uri, "slug": slug, "expires_in_s": expires_in_s, **request}
        )
        return Seeded(got["workspace_id"], got["secret_id"], got["access_token"], got["refresh_token"])

    def put_secret(self, secret_id: str, value: str) -> None:
        """Stores `value` exactly, under `secret_id`, with no registry row."""
        self.server.admin("POST", "seed", {"store": self.uri, "secret_id": secret_id, "value": value})

    def raw_secret(self, secret_id: str) -> str | None:
        q = urllib.parse.urlencode({"store": self.uri, "secret_id": secret_id})
        value: str | None = self.server.admin("GET", f"stored?{q}")["value"]
        return value

    def secret(self, secret_id: str) -> dict[str, Any]:
        raw = self.raw_secret(secret_id)
        assert raw is not None, f"no secret {secret_id}"
        data: dict[str, Any] = json.loads(raw)
        return data

    def rows(self) -> list[dict[str, str]]:
        q = urllib.parse.urlencode({"store": self.uri})
        rows: list[dict[str, str]] = self.server.admin("GET", f"registry?{q}")["rows"]
        return rows


@pytest.fixture
def store(server: TestServer, tmp_path: Path) -> Store:
    return Store(server, tmp_path / "store")


@pytest.fixture
def make_resolver(server: TestServer, store: Store) -> Any:
    """Resolvers against the test server and the test's store; keywords override."""

    def make(**options: Any) -> lo.Resolver:
        kwargs: dict[str, Any] = {
            "store": store.uri,
            "api_base": server.base_url,
            "authorize_url": server.authorize_url,
            "http_timeout_s": 5,
            "lease_wait_s": 10,
        }
        kwargs.update(options)
        return lo.Resolver(**kwargs)

    return make


def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
