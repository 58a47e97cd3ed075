"""``httpx`` authentication with Linear tokens from a :class:`~linear_oauth.Resolver`.

Needs ``httpx`` (not a dependency of ``linear_oauth`` itself)::

    from linear_oauth.httpx import LinearAuth

    client = httpx.Client(auth=LinearAuth(resolver, workspace_id))   # or secret_id=...
    client.post("https://api.linear.app/graphql", json={"query": "{ viewer { id } }"})
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator

import httpx

from linear_oauth._native import Resolver
from linear_oauth._target import Target, bearer

__all__ = ["LinearAuth"]


class LinearAuth(httpx.Auth):
    """Adds ``Authorization: Bearer <token>`` for one workspace (or secret id)
    to every request of an ``httpx.Client`` or ``httpx.AsyncClient``.

    On a 401 it reports the rejected token (``report_unauthorized``: a refresh
    only when that token is still the stored one) and re-sends the request
    once with the token it gets back; a second 401 is returned as it is. The
    async flow uses the resolver's ``_async`` calls, so a refresh never blocks
    the event loop. The request body is read before sending, so that the retry
    can send it again. The object holds no token; ``repr()`` shows ids only.
    """

    requires_request_body = True

    def __init__(self, resolver: Resolver, workspace_id: str | None = None, *, secret_id: str | None = None) -> None:
        self._target = Target(resolver, workspace_id, secret_id)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.requires_request_body:
            request.read()
        token = self._target.resolve().access_token
        request.headers["Authorization"] = bearer(token)
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = bearer(self._target.report(token).access_token)
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self.requires_request_body:
            await request.aread()
        token = (await self._target.resolve_async()).access_token
        request.headers["Authorization"] = bearer(token)
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = bearer((await self._target.report_async(token)).access_token)
            yield request

    def __repr__(self) -> str:
        return self._target.describe("LinearAuth")
