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

/// What every binding says about one kind of [`Error`]. [`ERROR_KINDS`] is
/// the one list the CLI's exit codes, help and hints, Python's exception
/// classes and Node's `ERROR_CODES` are made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorKind {
    /// Stable machine-readable name: Node's and Python's `code`, the CLI's `--json` kind.
    pub code: &'static str,
    /// The CLI exits with it.
    pub exit_code: u8,
    /// The Python exception class.
    pub python_class: &'static str,
    /// A few words, for the CLI's list of exit codes.
    pub label: &'static str,
    /// What happened, in a sentence (Python docstrings).
    pub doc: &'static str,
    /// What to do about it (the CLI's hint where it knows nothing more specific).
    pub hint: &'static str,
}

/// In the order of [`Error`]'s variants.
pub const ERROR_KINDS: [ErrorKind; 11] = [
    ErrorKind {
        code: "NOT_REGISTERED",
        exit_code: 3,
        python_class: "NotRegistered",
        label: "workspace not registered",
        doc: "The workspace id has no registry row.",
        hint: "install it with `linear-oauth setup`, or find the id with `linear-oauth list`",
    },
    ErrorKind {
        code: "REVOKED",
        exit_code: 4,
        python_class: "Revoked",
        label: "workspace revoked",
        doc: "The registry row is not active (revoked, missing or unknown status).",
        hint: "the workspace is revoked; run `linear-oauth setup` to install it again",
    },
    ErrorKind {
        code: "SECRET_MISSING",
        exit_code: 5,
        python_class: "SecretMissing",
        label: "secret missing",
        doc: "The stored token (secret) does not exist.",
        hint: "the registry points at a secret that does not exist; run `linear-oauth setup` again",
    },
    ErrorKind {
        code: "INVALID_STORED_TOKEN",
        exit_code: 6,
        python_class: "InvalidStoredToken",
        label: "stored token invalid",
        doc: "The stored token failed validation; every missing, empty or non-string field is named.",
        hint: "repair the stored secret (see `linear-oauth inspect`) or run `linear-oauth setup` again",
    },
    ErrorKind {
        code: "REAUTHORIZATION_REQUIRED",
        exit_code: 7,
        python_class: "ReauthorizationRequired",
        label: "reauthorization required",
        doc: "The refresh token is spent or revoked: the workspace must be installed again.",
        hint: "run `linear-oauth setup` again to authorize the workspace",
    },
    ErrorKind {
        code: "TOKEN_ENDPOINT",
        exit_code: 8,
        python_class: "TokenEndpointError",
        label: "Linear token endpoint error",
        doc: "Linear's token endpoint refused the request, with its HTTP status, OAuth error code, \
              description and Retry-After.",
        hint: "Linear refused the request; retry, or run with --verbose",
    },
    ErrorKind {
        code: "TRANSPORT",
        exit_code: 9,
        python_class: "TransportError",
        label: "transport (network, timeout, bad answer)",
        doc: "The token endpoint could not be reached or answered unreadably (timeout, connection error, \
              malformed or oversized body).",
        hint: "check that the API base is reachable and retry",
    },
    ErrorKind {
        code: "STORE",
        exit_code: 10,
        python_class: "StoreError",
        label: "store (files, permissions)",
        doc: "The secret store or registry failed.",
        hint: "check the --store location and its permissions",
    },
    ErrorKind {
        code: "INVALID_INPUT",
        exit_code: 11,
        python_class: "InvalidInput",
        label: "invalid input",
        doc: "An argument or option was rejected (empty id, bad URL, unknown store, negative duration).",
        hint: "see `linear-oauth --help`",
    },
    ErrorKind {
        code: "AUTHORIZATION",
        exit_code: 12,
        python_class: "AuthorizationError",
        label: "authorization denied or state mismatch",
        doc: "An authorization step of an install failed (denied in the browser, or a callback that is not ours).",
        hint: "the callback did not belong to this install; run setup again",
    },
    ErrorKind {
        code: "INTERNAL",
        exit_code: 1,
        python_class: "InternalError",
        label: "internal error",
        doc: "The embedded component trapped, ran past its deadline or could not be loaded.",
        hint: "this is a bug; run with --verbose and report it",
    },
];

impl Error {
    /// This error's row of [`ERROR_KINDS`].
    pub fn kind(&self) -> &'static ErrorKind {
        &ERROR_KINDS[match self {
            Self::NotRegistered(_) => 0,
            Self::Revoked(_) => 1,
            Self::SecretMissing(_) => 2,
            Self::InvalidStoredToken(_) => 3,
            Self::ReauthorizationRequired(_) => 4,
            Self::TokenEndpoint { .. } => 5,
            Self::Transport(_) => 6,
            Self::Store(_) => 7,
            Self::InvalidInput(_) => 8,
            Self::Authorization { .. } => 9,
            Self::Internal(_) => 10,
        }]
    }

    /// A stable machine-readable name (the Node `code`, the CLI's error kind).
    pub fn code(&self) -> &'static str {
        self.kind().code
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_own_row_and_the_rows_are_distinct() {
        let d = || None;
        let one_of_each = [
            Error::NotRegistered(String::new()),
            Error::Revoked(String::new()),
            Error::SecretMissing(String::new()),
            Error::InvalidStoredToken(Vec::new()),
            Error::ReauthorizationRequired(String::new()),
            Error::TokenEndpoint { status: 0, code: d(), description: d(), retry_after: None },
            Error::Transport(String::new()),
            Error::Store(String::new()),
            Error::InvalidInput(String::new()),
            Error::Authorization { status: 0, code: d(), description: d() },
            Error::Internal(String::new()),
        ];
        for (i, e) in one_of_each.iter().enumerate() {
            assert_eq!(e.kind(), &ERROR_KINDS[i], "{e:?}");
        }
        for (i, a) in ERROR_KINDS.iter().enumerate() {
            for b in &ERROR_KINDS[i + 1..] {
                assert!(
                    a.code != b.code && a.exit_code != b.exit_code && a.python_class != b.python_class,
                    "{a:?} {b:?}"
                );
            }
            // 0 is success, 2 is clap's usage error.
            assert!(![0, 2].contains(&a.exit_code), "{a:?}");
        }
    }
}
