//! The host API's one error type; it mirrors the WIT `error` variant.

use crate::bindings::types;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure a caller can see. Messages never contain secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not registered: {0}")]
    NotRegistered(String),
    #[error("revoked: {0}")]
    Revoked(String),
    #[error("secret missing: {0}")]
    SecretMissing(String),
    #[error("stored token is invalid: {}", describe_invalid(.0))]
    InvalidStoredToken(Vec<String>),
    #[error("reauthorization required: {0}")]
    ReauthorizationRequired(String),
    #[error("Linear answered HTTP {status}{}{}{}", fmt_code(.code), fmt_desc(.description), fmt_retry(.retry_after))]
    TokenEndpoint {
        status: u16,
        code: Option<String>,
        description: Option<String>,
        /// Linear's `Retry-After` (429, 503), counted from its answer.
        retry_after: Option<std::time::Duration>,
    },
    #[error("transport: {0}")]
    Transport(String),
    #[error("store: {0}")]
    Store(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("authorization failed{}{}", fmt_code(.code), fmt_desc(.description))]
    Authorization { status: u16, code: Option<String>, description: Option<String> },
    /// The component trapped, ran past its deadline or could not be loaded.
    #[error("internal: {0}")]
    Internal(String),
}

/// The component sends bad field names, or one `<...>` entry when the secret
/// is not a JSON object at all.
fn describe_invalid(fields: &[String]) -> String {
    match fields {
        [only] if only.starts_with('<') => format!("the secret is {only}"),
        _ => format!("missing, empty or non-string fields: {}", fields.join(", ")),
    }
}

fn fmt_code(c: &Option<String>) -> String {
    c.as_ref().map(|c| format!(" {c}")).unwrap_or_default()
}
fn fmt_retry(r: &Option<std::time::Duration>) -> String {
    r.map(|r| format!(" (retry after {} s)", r.as_secs_f64())).unwrap_or_default()
}
fn fmt_desc(d: &Option<String>) -> String {
    d.as_ref().map(|d| format!(": {d}")).unwrap_or_default()
}

impl Error {
    /// A stable machine-readable name (the Node `code`, the CLI's error kind).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotRegistered(_) => "NOT_REGISTERED",
            Self::Revoked(_) => "REVOKED",
            Self::SecretMissing(_) => "SECRET_MISSING",
            Self::InvalidStoredToken(_) => "INVALID_STORED_TOKEN",
            Self::ReauthorizationRequired(_) => "REAUTHORIZATION_REQUIRED",
            Self::TokenEndpoint { .. } => "TOKEN_ENDPOINT",
            Self::Transport(_) => "TRANSPORT",
            Self::Store(_) => "STORE",
            Self::InvalidInput(_) => "INVALID_INPUT",
            Self::Authorization { .. } => "AUTHORIZATION",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// When Linear said to come back (`Retry-After` of a 429 or 503).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::TokenEndpoint { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<types::Error> for Error {
    fn from(e: types::Error) -> Self {
        use types::Error as W;
        match e {
            W::NotRegistered(m) => Self::NotRegistered(m),
            W::Revoked(m) => Self::Revoked(m),
            W::SecretMissing(m) => Self::SecretMissing(m),
            W::InvalidStoredToken(f) => Self::InvalidStoredToken(f),
            W::ReauthorizationRequired(m) => Self::ReauthorizationRequired(m),
            W::TokenEndpoint(e) => Self::TokenEndpoint {
                status: e.status,
                code: e.code,
                description: e.description,
                retry_after: e.retry_after_ms.map(std::time::Duration::from_millis),
            },
            W::Transport(m) => Self::Transport(m),
            W::Store(m) => Self::Store(m),
            W::InvalidInput(m) => Self::InvalidInput(m),
            W::Authorization(e) => Self::Authorization { status: e.status, code: e.code, description: e.description },
        }
    }
}
