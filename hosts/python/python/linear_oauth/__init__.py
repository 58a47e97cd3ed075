"""Valid Linear OAuth access tokens for Python.

A thin layer over the ``linear-oauth-host`` Rust library (which embeds the
protocol as a WebAssembly component): resolving, refreshing, rotating and
writing back tokens all happen there. This package only translates::

    import linear_oauth as lo

    resolver = lo.Resolver.from_env()          # share one per process
    token = resolver.resolve_secret(secret_id)  # or resolver.resolve(workspace_id)
    headers = {"Authorization": f"Bearer {token.access_token}"}

Errors are subclasses of :class:`LinearOAuthError`; log events go to the
standard :mod:`logging` logger ``linear_oauth`` with structured fields in
``extra``. Neither ever contains a secret.
"""

from linear_oauth._native import (
    AuthorizationError,
    Installed,
    InternalError,
    InvalidInput,
    InvalidStoredToken,
    LinearOAuthError,
    LoadInfo,
    NotRegistered,
    ReauthorizationRequired,
    ResolvedToken,
    Resolver,
    Revocation,
    Revoked,
    SecretMissing,
    StoreError,
    TokenEndpointError,
    TransportError,
    WebhookEvent,
    WebhookMalformedError,
    WebhookSignatureError,
    WebhookStaleError,
    __version__,
    load_info,
)

# Not `typing.TYPE_CHECKING`: importing `typing` would cost more than the extension.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from linear_oauth import compat


def __getattr__(name: str) -> object:
    # `lo.compat` imports on first use, so that `import linear_oauth` stays cheap
    # (compat needs `logging`, which costs more than the extension itself).
    if name == "compat":
        import importlib

        return importlib.import_module("linear_oauth.compat")
    raise AttributeError(f"module 'linear_oauth' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | {"compat"})


__all__ = [
    "AuthorizationError",
    "Installed",
    "InternalError",
    "InvalidInput",
    "InvalidStoredToken",
    "LinearOAuthError",
    "LoadInfo",
    "NotRegistered",
    "ReauthorizationRequired",
    "ResolvedToken",
    "Resolver",
    "Revocation",
    "Revoked",
    "SecretMissing",
    "StoreError",
    "TokenEndpointError",
    "TransportError",
    "WebhookEvent",
    "WebhookMalformedError",
    "WebhookSignatureError",
    "WebhookStaleError",
    "__version__",
    "compat",
    "load_info",
]
