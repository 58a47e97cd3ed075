"""Type stubs for the ``linear_oauth._native`` extension (checked by mypy.stubtest in CI)."""

from collections.abc import Awaitable, Sequence
from typing import ClassVar, final

__all__ = [
    "__version__",
    "Resolver",
    "ResolvedToken",
    "LoadInfo",
    "Revocation",
    "Installed",
    "load_info",
    "LinearOAuthError",
    "NotRegistered",
    "Revoked",
    "SecretMissing",
    "InvalidStoredToken",
    "ReauthorizationRequired",
    "TokenEndpointError",
    "TransportError",
    "StoreError",
    "InvalidInput",
    "AuthorizationError",
    "InternalError",
]

__version__: str

@final
class ResolvedToken:
    """A Linear access token that may be used now. ``repr()`` never shows the token."""

    @property
    def access_token(self) -> str: ...
    @property
    def scope(self) -> str: ...
    @property
    def workspace_slug(self) -> str: ...
    @property
    def workspace_id(self) -> str: ...
    @property
    def secret_id(self) -> str: ...
    @property
    def expires_at(self) -> str: ...

@final
class LoadInfo:
    """How the embedded component was loaded in this process."""

    @property
    def compiled_fallback(self) -> bool: ...
    @property
    def load_time_s(self) -> float: ...

@final
class Revocation:
    """What ``Resolver.revoke`` did; the workspace is marked revoked whatever the outcome."""

    @property
    def workspace_id(self) -> str: ...
    @property
    def secret_id(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def confirmed(self) -> bool: ...
    @property
    def detail(self) -> str | None: ...
    @property
    def linear_status(self) -> int | None: ...
    @property
    def purged(self) -> bool: ...

@final
class Installed:
    """What an install wrote (no secrets)."""

    @property
    def workspace_id(self) -> str: ...
    @property
    def workspace_name(self) -> str: ...
    @property
    def workspace_slug(self) -> str: ...
    @property
    def viewer_id(self) -> str: ...
    @property
    def viewer_name(self) -> str: ...
    @property
    def viewer_email(self) -> str: ...
    @property
    def app_user_id(self) -> str | None: ...
    @property
    def secret_id(self) -> str: ...
    @property
    def scope(self) -> str: ...
    @property
    def expires_at(self) -> str: ...
    @property
    def installed_at(self) -> str: ...
    @property
    def replaced(self) -> bool: ...

@final
class Resolver:
    """Resolves Linear access tokens; share one instance across threads."""

    def __new__(
        cls,
        *,
        store: str | None = None,
        registry_table: str | None = None,
        api_base: str | None = None,
        authorize_url: str | None = None,
        refresh_threshold_s: float | None = None,
        cache_ttl_s: float | None = None,
        secret_prefix: str | None = None,
        http_timeout_s: float | None = None,
        lease_ttl_s: float | None = None,
        lease_wait_s: float | None = None,
        call_deadline_s: float | None = None,
        max_memory_bytes: int | None = None,
        cache_max_entries: int | None = None,
        failure_memory_s: float | None = None,
        refresh_ahead_s: float | None = None,
        lifetime: str | None = None,
    ) -> Resolver: ...
    @staticmethod
    def from_env() -> Resolver: ...
    def resolve(self, workspace_id: str) -> ResolvedToken: ...
    def resolve_secret(self, secret_id: str) -> ResolvedToken: ...
    def resolve_async(self, workspace_id: str) -> Awaitable[ResolvedToken]: ...
    def resolve_secret_async(self, secret_id: str) -> Awaitable[ResolvedToken]: ...
    def report_unauthorized(self, workspace_id: str, access_token: str) -> ResolvedToken: ...
    def force_refresh(self, secret_id: str) -> ResolvedToken: ...
    def revoke(self, workspace_id: str, *, purge: bool = False, force: bool = False) -> Revocation: ...
    def install_client_credentials(
        self, client_id: str, client_secret: str, scopes: Sequence[str], *, installed_by: str
    ) -> Installed: ...
    def cached(self, workspace_id: str) -> ResolvedToken | None: ...
    def cached_secret(self, secret_id: str) -> ResolvedToken | None: ...
    def invalidate(self, workspace_id: str) -> None: ...
    @property
    def store(self) -> str: ...
    @property
    def api_base(self) -> str: ...

def load_info() -> LoadInfo: ...
def _emit_log(level: str, message: str, fields: Sequence[tuple[str, str]]) -> None: ...
def _complete_future(future: object, ok: bool, value: object) -> None: ...

class LinearOAuthError(Exception):
    code: ClassVar[str]

class NotRegistered(LinearOAuthError): ...
class Revoked(LinearOAuthError): ...
class SecretMissing(LinearOAuthError): ...

class InvalidStoredToken(LinearOAuthError):
    invalid_fields: tuple[str, ...]
    missing_fields: tuple[str, ...]  # the old name of invalid_fields

class ReauthorizationRequired(LinearOAuthError): ...

class TokenEndpointError(LinearOAuthError):
    status: int
    error: str | None
    description: str | None
    retry_after: float | None

class TransportError(LinearOAuthError): ...
class StoreError(LinearOAuthError): ...
class InvalidInput(LinearOAuthError, ValueError): ...

class AuthorizationError(LinearOAuthError):
    status: int
    error: str | None
    description: str | None

class InternalError(LinearOAuthError): ...
