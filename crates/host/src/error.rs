//! The host API's one error type; it mirrors the WIT `error` variant.
//!
//! Each kind is declared once, in [`error_types!`] below: its variant (with
//! the message), its row of [`ERROR_KINDS`] (code, exit code, Python class,
//! help texts) and the attributes bindings put on their error objects
//! ([`Error::attrs`]). The CLI, Python and Node are made from those three.

use std::time::Duration;

use crate::bindings::types;

pub type Result<T, E = Error> = std::result::Result<T, E>;

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
    /// What happened, and the attributes it carries (Python docstrings).
    pub doc: &'static str,
    /// What to do about it (the CLI's hint where it knows nothing more specific).
    pub hint: &'static str,
    /// The names [`Error::attrs`] gives for this kind, in its order.
    pub attrs: &'static [&'static str],
}

/// One attribute value of an error, in the few shapes every binding has.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    None,
    Int(i64),
    /// Seconds.
    Float(f64),
    Str(String),
    List(Vec<String>),
}

impl From<&u16> for Attr {
    fn from(n: &u16) -> Self {
        Self::Int(i64::from(*n))
    }
}

impl From<&Option<String>> for Attr {
    fn from(s: &Option<String>) -> Self {
        s.clone().map_or(Self::None, Self::Str)
    }
}

impl From<&Option<Duration>> for Attr {
    fn from(d: &Option<Duration>) -> Self {
        d.map_or(Self::None, |d| Self::Float(d.as_secs_f64()))
    }
}

impl From<&Vec<String>> for Attr {
    fn from(list: &Vec<String>) -> Self {
        Self::List(list.clone())
    }
}

/// Declares [`Error`], [`ERROR_KINDS`] (in variant order), `kind()`,
/// `attrs()` and `each_kind()` from one entry per kind: the variant with its
/// fields (a tuple variant names its one field for `attrs`), then its row
/// and its attributes as `"name" = field`.
macro_rules! error_types {
    ($(
        $(#[$meta:meta])*
        $variant:ident $(($bind:ident: $ty:ty))? $({ $($(#[$fmeta:meta])* $field:ident: $fty:ty),* $(,)? })? => {
            message: ($fmt:literal $(, $arg:expr)* $(,)?),
            code: $code:literal,
            exit_code: $exit:literal,
            python_class: $py:literal,
            label: $label:literal,
            doc: $doc:expr,
            hint: $hint:literal,
            attrs: [$($aname:literal = $aval:ident),* $(,)?] $(,)?
        }
    ),* $(,)?) => {
        /// Every failure a caller can see. Messages never contain secrets.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Error {
            $($(#[$meta])* $variant $(($ty))? $({ $($(#[$fmeta])* $field: $fty),* })?,)*
        }

        impl std::fmt::Display for Error {
            #[allow(unused_variables)]
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $(Self::$variant $(($bind))? $({ $($field),* })? => write!(f, $fmt $(, $arg)*),)*
                }
            }
        }

        impl std::error::Error for Error {}

        /// In the order of [`Error`]'s variants.
        pub const ERROR_KINDS: [ErrorKind; [$($code),*].len()] = [$(
            ErrorKind {
                code: $code,
                exit_code: $exit,
                python_class: $py,
                label: $label,
                doc: $doc,
                hint: $hint,
                attrs: &[$($aname),*],
            },
        )*];

        /// A variant's index in [`ERROR_KINDS`].
        #[repr(usize)]
        enum Row {
            $($variant,)*
        }

        impl Error {
            /// This error's row of [`ERROR_KINDS`].
            pub fn kind(&self) -> &'static ErrorKind {
                &ERROR_KINDS[match self {
                    $(Self::$variant { .. } => Row::$variant as usize,)*
                }]
            }

            /// What bindings put on their error object besides the code and
            /// the message: `(name, value)` in [`ErrorKind::attrs`] order.
            #[allow(unused_variables)]
            pub fn attrs(&self) -> Vec<(&'static str, Attr)> {
                match self {
                    $(Self::$variant $(($bind))? $({ $($field),* })? => vec![$(($aname, Attr::from($aval))),*],)*
                }
            }

            /// One error of each kind with empty fields, in [`ERROR_KINDS`]
            /// order; their `attrs` are the class-level defaults of Python's
            /// exceptions.
            pub fn each_kind() -> [Self; ERROR_KINDS.len()] {
                [$(Self::$variant $((<$ty>::default()))? $({ $($field: <$fty>::default()),* })?,)*]
            }
        }
    };
}

error_types! {
    NotRegistered(message: String) => {
        message: ("not registered: {message}"),
        code: "NOT_REGISTERED",
        exit_code: 3,
        python_class: "NotRegistered",
        label: "workspace not registered",
        doc: "The workspace id has no registry row.",
        hint: "install it with `linear-oauth setup`, or find the id with `linear-oauth list`",
        attrs: [],
    },
    Revoked(message: String) => {
        message: ("revoked: {message}"),
        code: "REVOKED",
        exit_code: 4,
        python_class: "Revoked",
        label: "workspace revoked",
        doc: "The registry row is not active (revoked, missing or unknown status).",
        hint: "the workspace is revoked; run `linear-oauth setup` to install it again",
        attrs: [],
    },
    SecretMissing(message: String) => {
        message: ("secret missing: {message}"),
        code: "SECRET_MISSING",
        exit_code: 5,
        python_class: "SecretMissing",
        label: "secret missing",
        doc: "The stored token (secret) does not exist.",
        hint: "the registry points at a secret that does not exist; run `linear-oauth setup` again",
        attrs: [],
    },
    InvalidStoredToken(fields: Vec<String>) => {
        message: ("stored token is invalid: {}", describe_invalid(fields)),
        code: "INVALID_STORED_TOKEN",
        exit_code: 6,
        python_class: "InvalidStoredToken",
        label: "stored token invalid",
        doc: "The stored token failed validation; every missing, empty or non-string field is named. \
              `invalid_fields` names them (`missing_fields` is its old name).",
        hint: "repair the stored secret (see `linear-oauth inspect`) or run `linear-oauth setup` again",
        // The old name, kept for callers written against 0.1 betas.
        attrs: ["invalid_fields" = fields, "missing_fields" = fields],
    },
    ReauthorizationRequired(message: String) => {
        message: ("reauthorization required: {message}"),
        code: "REAUTHORIZATION_REQUIRED",
        exit_code: 7,
        python_class: "ReauthorizationRequired",
        label: "reauthorization required",
        doc: "The refresh token is spent or revoked: the workspace must be installed again.",
        hint: "run `linear-oauth setup` again to authorize the workspace",
        attrs: [],
    },
    TokenEndpoint {
        status: u16,
        code: Option<String>,
        description: Option<String>,
        /// Linear's `Retry-After` (429, 503), counted from its answer.
        retry_after: Option<Duration>,
    } => {
        message: (
            "Linear answered HTTP {status}{}{}{}",
            fmt_code(code),
            fmt_desc(description),
            fmt_retry(retry_after),
        ),
        code: "TOKEN_ENDPOINT",
        exit_code: 8,
        python_class: "TokenEndpointError",
        label: "Linear token endpoint error",
        doc: "Linear's token endpoint refused the request, with its HTTP status, OAuth error code, \
              description and Retry-After. `status` (HTTP), `error` (OAuth error code or None), `description` \
              (or None), `retry_after` (seconds Linear asked to wait with Retry-After, or None).",
        hint: "Linear refused the request; retry, or run with --verbose",
        attrs: ["status" = status, "error" = code, "description" = description, "retry_after" = retry_after],
    },
    Transport(message: String) => {
        message: ("transport: {message}"),
        code: "TRANSPORT",
        exit_code: 9,
        python_class: "TransportError",
        label: "transport (network, timeout, bad answer)",
        doc: "The token endpoint could not be reached or answered unreadably (timeout, connection error, \
              malformed or oversized body).",
        hint: "check that the API base is reachable and retry",
        attrs: [],
    },
    Store(message: String) => {
        message: ("store: {message}"),
        code: "STORE",
        exit_code: 10,
        python_class: "StoreError",
        label: "store (files, permissions)",
        doc: "The secret store or registry failed.",
        hint: "check the --store location and its permissions",
        attrs: [],
    },
    InvalidInput(message: String) => {
        message: ("invalid input: {message}"),
        code: "INVALID_INPUT",
        exit_code: 11,
        python_class: "InvalidInput",
        label: "invalid input",
        doc: "An argument or option was rejected (empty id, bad URL, unknown store, negative duration).",
        hint: "see `linear-oauth --help`",
        attrs: [],
    },
    Authorization { status: u16, code: Option<String>, description: Option<String> } => {
        message: ("authorization failed{}{}", fmt_code(code), fmt_desc(description)),
        code: "AUTHORIZATION",
        exit_code: 12,
        python_class: "AuthorizationError",
        label: "authorization denied or state mismatch",
        doc: "An authorization step of an install failed (denied in the browser, or a callback that is not ours). \
              `status`, `error`, `description` as for TokenEndpointError.",
        hint: "the callback did not belong to this install; run setup again",
        attrs: ["status" = status, "error" = code, "description" = description],
    },
    WebhookSignature(message: String) => {
        message: ("webhook signature: {message}"),
        code: "WEBHOOK_SIGNATURE",
        exit_code: 17,
        python_class: "WebhookSignatureError",
        label: "webhook signature invalid",
        doc: "A webhook delivery's Linear-Signature is missing, not an HMAC-SHA256 in hex, or does not match the \
              body under the workspace's (or the stack-wide) signing secret. Answer 401.",
        hint: "check the signing secret (`linear-oauth webhook set-secret`) and pass the body exactly as received",
        attrs: [],
    },
    WebhookStale(message: String) => {
        message: ("webhook too old: {message}"),
        code: "WEBHOOK_STALE",
        exit_code: 18,
        python_class: "WebhookStaleError",
        label: "webhook timestamp outside the window",
        doc: "A correctly signed webhook whose webhookTimestamp is outside the replay window \
              (webhook_window, 60 s by default): a replay, or a clock that is off. Answer 401.",
        hint: "check this machine's clock; a replayed delivery is refused by design",
        attrs: [],
    },
    WebhookMalformed(message: String) => {
        message: ("webhook malformed: {message}"),
        code: "WEBHOOK_MALFORMED",
        exit_code: 19,
        python_class: "WebhookMalformedError",
        label: "webhook body malformed",
        doc: "A webhook body that is over 1 MiB, not a JSON object, or without webhookTimestamp or type. Answer 400.",
        hint: "pass the request body exactly as received",
        attrs: [],
    },
    /// The component trapped, ran past its deadline or could not be loaded.
    Internal(message: String) => {
        message: ("internal: {message}"),
        code: "INTERNAL",
        exit_code: 1,
        python_class: "InternalError",
        label: "internal error",
        doc: "The embedded component trapped, ran past its deadline or could not be loaded.",
        hint: "this is a bug; run with --verbose and report it",
        attrs: [],
    },
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
fn fmt_retry(r: &Option<Duration>) -> String {
    r.map(|r| format!(" (retry after {} s)", r.as_secs_f64())).unwrap_or_default()
}
fn fmt_desc(d: &Option<String>) -> String {
    d.as_ref().map(|d| format!(": {d}")).unwrap_or_default()
}

impl Error {
    /// A stable machine-readable name (the Node `code`, the CLI's error kind).
    pub fn code(&self) -> &'static str {
        self.kind().code
    }

    /// When Linear said to come back (`Retry-After` of a 429 or 503).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::TokenEndpoint { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }
}

/// Runs `f`, turning a panic into `Internal` (`what` says whose): the Python
/// and Node layers call the host through here, since a panic unwinding into
/// their runtime would abort the process or escape `except Exception`.
pub fn no_panic<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| Err(Error::Internal(what.to_owned())))
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
                retry_after: e.retry_after_ms.map(Duration::from_millis),
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
        for (i, e) in Error::each_kind().iter().enumerate() {
            assert_eq!(e.kind(), &ERROR_KINDS[i], "{e:?}");
            let names: Vec<&str> = e.attrs().iter().map(|(n, _)| *n).collect();
            assert_eq!(names, e.kind().attrs, "{e:?}");
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

    #[test]
    fn attributes_carry_the_fields_bindings_show() {
        let e = Error::TokenEndpoint {
            status: 429,
            code: Some("rate_limited".into()),
            description: None,
            retry_after: Some(Duration::from_millis(1500)),
        };
        assert_eq!(
            e.attrs(),
            [
                ("status", Attr::Int(429)),
                ("error", Attr::Str("rate_limited".into())),
                ("description", Attr::None),
                ("retry_after", Attr::Float(1.5)),
            ]
        );
        let fields = vec!["scope".to_owned()];
        let e = Error::InvalidStoredToken(fields.clone());
        assert_eq!(e.attrs(), [("invalid_fields", Attr::List(fields.clone())), ("missing_fields", Attr::List(fields))]);
        assert_eq!(Error::Store("x".into()).attrs(), []);
        assert_eq!(e.to_string(), "stored token is invalid: missing, empty or non-string fields: scope");
    }

    #[test]
    fn a_panic_is_internal() {
        let r: Result<()> = no_panic("it panicked", || panic!("boom"));
        assert_eq!(r, Err(Error::Internal("it panicked".into())));
    }
}
