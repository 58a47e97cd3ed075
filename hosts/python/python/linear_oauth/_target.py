"""What the HTTP auth helpers resolve: a workspace id or a secret id, exactly one."""

from __future__ import annotations

from collections.abc import Awaitable

from linear_oauth._native import ResolvedToken, Resolver


class Target:
    """One workspace id or one secret id, and the resolver calls for it.

    The helpers hold no token: each request resolves one (a cached token is
    a dictionary lookup), so nothing secret lives on the auth object.
    """

    __slots__ = ("resolver", "workspace_id", "secret_id")

    def __init__(self, resolver: Resolver, workspace_id: str | None, secret_id: str | None) -> None:
        if (workspace_id is None) == (secret_id is None):
            raise TypeError("pass a workspace_id or secret_id=..., exactly one")
        self.resolver = resolver
        self.workspace_id = workspace_id
        self.secret_id = secret_id

    def resolve(self) -> ResolvedToken:
        if self.secret_id is not None:
            return self.resolver.resolve_secret(self.secret_id)
        assert self.workspace_id is not None
        return self.resolver.resolve(self.workspace_id)

    def resolve_async(self) -> Awaitable[ResolvedToken]:
        if self.secret_id is not None:
            return self.resolver.resolve_secret_async(self.secret_id)
        assert self.workspace_id is not None
        return self.resolver.resolve_async(self.workspace_id)

    def report(self, rejected: str) -> ResolvedToken:
        """Linear answered 401 to `rejected`: the token to retry with."""
        if self.secret_id is not None:
            return self.resolver.report_unauthorized_secret(self.secret_id, rejected)
        assert self.workspace_id is not None
        return self.resolver.report_unauthorized(self.workspace_id, rejected)

    def report_async(self, rejected: str) -> Awaitable[ResolvedToken]:
        if self.secret_id is not None:
            return self.resolver.report_unauthorized_secret_async(self.secret_id, rejected)
        assert self.workspace_id is not None
        return self.resolver.report_unauthorized_async(self.workspace_id, rejected)

    def describe(self, cls: str) -> str:
        """`cls(resolver, workspace_id='...')`: ids and the resolver, never a token."""
        arg = f"workspace_id={self.workspace_id!r}" if self.secret_id is None else f"secret_id={self.secret_id!r}"
        return f"{cls}({self.resolver!r}, {arg})"


def bearer(token: str) -> str:
    return f"Bearer {token}"


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer ...` header, if it is one."""
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
