"""Drop-in replacement for the agent runtime's old token helper.

``resolve_linear_api_token`` keeps the old contract (secret id from the task's
channel metadata or the environment, the token also exported as
``LINEAR_API_TOKEN``, an empty string after logging on failure) with the new
behaviour underneath: an expiring token is refreshed, the rotated refresh token
is written back, and an expired token is never handed out. An existing
``LINEAR_API_TOKEN`` is never trusted as a shortcut.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping

from linear_oauth._native import LinearOAuthError, Resolver

__all__ = ["resolve_linear_api_token", "SECRET_METADATA_KEY", "SECRET_ENV", "TOKEN_ENV"]

SECRET_METADATA_KEY = "linear_oauth_secret_arn"
"""Key of the secret id in a task's channel metadata."""
SECRET_ENV = "LINEAR_OAUTH_SECRET_ARN"
"""Environment variable consulted when the metadata has no secret id."""
TOKEN_ENV = "LINEAR_API_TOKEN"
"""Environment variable the resolved access token is exported to."""

_logger = logging.getLogger("linear_oauth")
_lock = threading.Lock()
_resolver: Resolver | None = None
_exported: str | None = None
"""The token this module last put in ``LINEAR_API_TOKEN``."""


def _shared_resolver() -> Resolver:
    """The process-wide resolver, created from the environment on first use."""
    global _resolver
    resolver = _resolver
    if resolver is None:
        with _lock:
            resolver = _resolver
            if resolver is None:
                resolver = Resolver.from_env()
                _resolver = resolver
    return resolver


def resolve_linear_api_token(channel_metadata: Mapping[str, object] | None = None) -> str:
    """A valid Linear access token for this task, or ``""`` after logging why not.

    The secret id comes from ``channel_metadata["linear_oauth_secret_arn"]``,
    else from ``$LINEAR_OAUTH_SECRET_ARN``. On success the token is also put in
    ``os.environ["LINEAR_API_TOKEN"]`` when it differs from the one this helper
    last put there (a refresh, another workspace); on failure that variable is
    left as it was. Code that changes the variable itself owns it until then.
    """
    # The metadata lookup and the resolver check are inlined: on a cached
    # token each function call here is a measurable share of the cost.
    value = channel_metadata.get(SECRET_METADATA_KEY) if channel_metadata is not None else None
    secret_id = value.strip() if isinstance(value, str) else ""
    if not secret_id:
        secret_id = os.environ.get(SECRET_ENV, "").strip()
    if not secret_id:
        _logger.error(
            "no Linear OAuth secret id: neither channel metadata %r nor $%s is set",
            SECRET_METADATA_KEY,
            SECRET_ENV,
        )
        return ""
    try:
        access_token = (_resolver or _shared_resolver()).resolve_secret(secret_id).access_token
    except LinearOAuthError as e:
        _logger.error(
            "could not resolve a Linear access token: %s",
            e,
            extra={"secret_id": secret_id, "error_code": e.code},
        )
        return ""
    # Export only a change: assigning to os.environ (or even reading it, which
    # encodes and decodes) costs more than the cached resolve itself.
    if access_token != _exported:
        _export(access_token)
    return access_token


def _export(access_token: str) -> None:
    global _exported
    with _lock:  # the variable and `_exported` change together
        os.environ[TOKEN_ENV] = access_token
        _exported = access_token
