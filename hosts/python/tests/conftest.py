"""Fixtures: the Linear-compatible test server (a subprocess), file stores
seeded the way the old tooling wrote them, and resolvers pointed at both.

Stored-token JSON appears here only as TEST DATA; the package itself never
declares the schema.
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
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

import linear_oauth as lo

REPO = Path(__file__).resolve().parents[3]
VECTORS = REPO / "tests" / "vectors"
CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-secret"

# Loopback only: never route test traffic through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def testserver_binary() -> Path:
    configured = os.environ.get("LINEAR_OAUTH_TESTSERVER")
    path = Path(configured) if configured else REPO / "target" / "debug" / "linear-oauth-testserver"
    if not path.is_file():
        pytest.fail(
            f"test server binary not found at {path}; build it with "
            "`cargo build -p linear-oauth-testserver` or set LINEAR_OAUTH_TESTSERVER",
            pytrace=False,
        )
    return path


class TestServer:
    """Client of a running `linear-oauth-testserver` (admin API + raw token endpoint)."""

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
        [str(testserver_binary())],
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


def iso_in(seconds: float) -> str:
    """An ISO-8601 UTC instant `seconds` from now (negative = past)."""
    t = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def token_json(access: str, refresh: str, expires_at: str, workspace_id: str, slug: str, **extra: Any) -> str:
    """A stored-token value as the old tooling wrote it (test data)."""
    value = {
        "access_token": access,
        "refresh_token": refresh,
        "expires_at": expires_at,
        "scope": "read write",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "workspace_id": workspace_id,
        "workspace_slug": slug,
        "installed_at": "2026-01-01T00:00:00.000Z",
        "updated_at": "2026-01-01T00:00:00.000Z",
        "installed_by_platform_user_id": "platform-user-1",
        "team_hint": {"kept": True},
    }
    value.update(extra)
    return json.dumps(value)


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def file_name(id_: str) -> str:
    """The file store's escaping: everything but [A-Za-z0-9_-] as %XX of its UTF-8 bytes."""
    return "".join(c if c in _UNRESERVED else "".join(f"%{b:02X}" for b in c.encode()) for c in id_)


class FileStore:
    """Writes the `file:` store layout directly: secrets/<id>.json and registry.json."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "secrets").mkdir(parents=True, exist_ok=True, mode=0o700)
        root.chmod(0o700)

    @property
    def uri(self) -> str:
        return f"file:{self.root}"

    def secret_path(self, secret_id: str) -> Path:
        return self.root / "secrets" / f"{file_name(secret_id)}.json"

    def put_secret(self, secret_id: str, value: str) -> None:
        path = self.secret_path(secret_id)
        path.write_text(value)
        path.chmod(0o600)

    def raw_secret(self, secret_id: str) -> str:
        return self.secret_path(secret_id).read_text()

    def secret(self, secret_id: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.raw_secret(secret_id))
        return data

    def put_row(self, workspace_id: str, slug: str, secret_id: str, status: str | None = "active") -> None:
        path = self.root / "registry.json"
        rows = json.loads(path.read_text()) if path.exists() else {}
        row: dict[str, str] = {"workspace_slug": slug, "oauth_secret_arn": secret_id}
        if status is not None:
            row["status"] = status
        rows[workspace_id] = row
        path.write_text(json.dumps(rows))


@dataclass
class Seeded:
    workspace_id: str
    secret_id: str
    access: str
    refresh: str


def seed(server: TestServer, store: FileStore, slug: str, expires_in_s: float) -> Seeded:
    """A workspace whose live server-side pair is stored, expiring in `expires_in_s`."""
    issued = server.issue()
    workspace_id = f"org-{slug}"
    secret_id = f"bgagent-linear-oauth-{slug}"
    store.put_secret(
        secret_id,
        token_json(issued["access_token"], issued["refresh_token"], iso_in(expires_in_s), workspace_id, slug),
    )
    store.put_row(workspace_id, slug, secret_id)
    return Seeded(workspace_id, secret_id, issued["access_token"], issued["refresh_token"])


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store")


@pytest.fixture
def make_resolver(server: TestServer, store: FileStore) -> Any:
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
