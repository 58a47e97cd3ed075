"""``requests`` authentication with Linear tokens from a :class:`~linear_oauth.Resolver`.

Needs ``requests`` (not a dependency of ``linear_oauth`` itself)::

    from linear_oauth.requests import LinearRequestsAuth

    session = requests.Session()
    session.auth = LinearRequestsAuth(resolver, workspace_id)   # or secret_id=...
    session.post("https://api.linear.app/graphql", json={"query": "{ viewer { id } }"})
"""

from __future__ import annotations

from typing import Any

import requests
from requests.auth import AuthBase

from linear_oauth._native import Resolver
from linear_oauth._target import Target, bearer, bearer_token

__all__ = ["LinearRequestsAuth"]


class LinearRequestsAuth(AuthBase):
    """Adds ``Authorization: Bearer <token>`` for one workspace (or secret id)
    to every request it authenticates (``session.auth = ...`` or ``auth=``).

    A response hook handles a 401: it reports the rejected token
    (``report_unauthorized``: a refresh only when that token is still the
    stored one) and re-sends the prepared request once with the token it gets
    back; the first response is in the retry's ``history``. A second 401 is
    returned as it is. A body that is a stream (a file, a generator) cannot be
    sent twice: its 401 is returned without a retry. The object holds no
    token; ``repr()`` shows ids only.
    """

    def __init__(self, resolver: Resolver, workspace_id: str | None = None, *, secret_id: str | None = None) -> None:
        self._target = Target(resolver, workspace_id, secret_id)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = bearer(self._target.resolve().access_token)
        r.hooks["response"].append(self._on_response)  # register_hook, which is untyped
        return r

    def _on_response(self, response: requests.Response, **send: Any) -> requests.Response:
        request = response.request
        rejected = bearer_token(request.headers.get("Authorization"))
        if response.status_code != 401 or rejected is None or not isinstance(request.body, (bytes, str, type(None))):
            return response
        token = self._target.report(rejected).access_token
        response.content  # noqa: B018 - read it, so the connection goes back to the pool
        response.close()
        retry = request.copy()
        retry.headers["Authorization"] = bearer(token)
        # The adapter sends it without hooks: this one cannot run again.
        again: requests.Response = response.connection.send(retry, **send)
        again.history.append(response)
        again.request = retry
        return again

    def __repr__(self) -> str:
        return self._target.describe("LinearRequestsAuth")
