"""Valid Linear OAuth access tokens for Python.

A thin layer over the ``linear-oauth-host`` Rust library (which embeds the
protocol as a WebAssembly component): resolving, refreshing, rotating and
writing back tokens all happen there. This package only translates::

    import linear_oauth as lo

    resolver = lo.Resolver.from_env()          # share one per process
    token = resolver.resolve_secret(secret_id)  # or resolver.resolve(workspace_id)
    headers = {"Authorization": f"Bearer {token.access_token}"}

To call Linear's API with the token and its 401 rule (report the rejected
token, retry once) in one line, ``LinearAuth`` (``httpx``, sync and async) or
``LinearRequestsAuth`` (``requests``): ``httpx.Client(auth=lo.LinearAuth(resolver,
workspace_id))``. They import their HTTP library on first use, so neither is a
dependency of this package.

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
    from linear_oauth.httpx import LinearAuth as LinearAuth
    from linear_oauth.requests import LinearRequestsAuth as LinearRequestsAuth

# Imported on first use: `lo.compat` needs `logging`, which costs more than the
# extension itself, and the auth helpers need httpx or requests, which this
# package does not depend on.
_LAZY = {
    "compat": ("linear_oauth.compat", None),
    "LinearAuth": ("linear_oauth.httpx", "LinearAuth"),
    "LinearRequestsAuth": ("linear_oauth.requests", "LinearRequestsAuth"),
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name)
        return module if attr is None else getattr(module, attr)
    raise AttributeError(f"module 'linear_oauth' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


# Not the auth helpers: `from linear_oauth import *` must not need httpx and requests.
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
