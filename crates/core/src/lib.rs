//! Linear's OAuth protocol and the stored-token schema, as pure functions.
//!
//! No I/O and no clock or randomness of its own: callers pass `now` (Unix
//! milliseconds) and random bytes in, so everything here is tested natively and
//! behaves the same inside the WASI component.

mod authorize;
mod budget;
mod callback;
mod expiry;
mod ids;
mod naming;
mod pkce;
mod recovery;
mod redact;
mod registry;
mod retry;
mod revoke;
mod secret;
mod stored;
mod timefmt;
mod token;
mod webhook;

pub use authorize::{normalize_scopes, AuthorizeRequest, DEFAULT_SCOPES};
pub use budget::{
    check_budgets, request_needs_ms, request_slack_ms, wait_deadline, worst_request_ms, write_retry_fits,
    BudgetConflict, AFTER_WRITE_MS, REQUEST_PHASES, WRITE_BACK_RESERVE_MS,
};
pub use callback::{parse_callback, CallbackError};
pub use expiry::{freshness, refresh_ahead_at, serve_until, Freshness};
pub use ids::{check_id, encoded_len, escape_id, IdError, MAX_ID_ENCODED};
pub use naming::{secret_name, validate_slug, DEFAULT_SECRET_PREFIX};
pub use pkce::{fingerprint, pkce_challenge, PkcePair, State};
pub use recovery::{
    after_invalid_grant, merge_after_conflict, renewed_since, rotated_usable, usable_without_refresh, Recovery, Serve,
};
pub use redact::{redact, MIN_REDACTED_LEN, REDACTED};
pub use registry::{RegistryStatus, REAUTHORIZATION_REQUIRED};
pub use retry::{is_transient, parse_retry_after, retry_delay, Attempt, BACKOFF_BASE_MS, MAX_ATTEMPTS};
pub use revoke::{
    access_token_unexpired, expired_after_revoke, revoke_refresh_form, ProbeResult, RevokeCredential, RevokeOutcome,
    RevokePlan, RevokeStep, REVOKE_CONTENT_TYPE,
};
pub use secret::{AccessToken, AuthCode, ClientSecret, PkceVerifier, RefreshToken, SigningSecret};
pub use stored::{
    inspect_fields, is_non_secret_field, Grant, InstallRecord, SchemaError, StoredToken, APP_USER_ID_FIELD,
    CLIENT_CREDENTIALS, FIELDS, GRANT_TYPE_FIELD, NON_SECRET_FIELDS, NOT_A_JSON_OBJECT, NOT_VALID_JSON,
    REAUTHORIZATION_AT_FIELD, REAUTHORIZATION_ERROR_FIELD, REVOKED_AT_FIELD,
};
pub use timefmt::{format_instant, parse_instant, MAX_INSTANT_MS, MIN_INSTANT_MS};
pub use token::{
    client_credentials_disabled, client_credentials_form, code_exchange_form, is_b64token, parse_identity,
    parse_token_response, refresh_form, EndpointFailure, Identity, TokenResponse, IDENTITY_QUERY, MAX_EXPIRES_IN_S,
    MAX_TOKEN_LEN,
};
pub use webhook::{
    check_size, claimed_organization, verify as verify_webhook, Signature, WebhookError, WebhookEvent, WebhookFailure,
    DEFAULT_WEBHOOK_WINDOW_MS, MAX_WEBHOOK_BODY, SIGNING_SECRET_FIELD,
};
