//! One line per failure saying what went wrong and what to do, and a distinct
//! exit code per kind. Messages come from the host API, which never carries
//! secrets.

use std::time::Duration;

use linear_oauth_host::Error;

pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success                     8  Linear token endpoint error
  1  internal error              9  transport (network, timeout, bad answer)
  2  usage                      10  store (files, permissions)
  3  workspace not registered   11  invalid input
  4  workspace revoked          12  authorization denied or state mismatch
  5  secret missing             13  timed out waiting for the browser
  6  stored token invalid       14  smoke test failed
  7  reauthorization required   15  revoke not confirmed by Linear
                                16  doctor found problems
A client_credentials grant the Linear app does not allow is 8 (the token
endpoint's answer), with the app setting to enable in the message.";

#[derive(Debug)]
pub enum CliError {
    Lib(Error),
    /// No callback arrived in time.
    Timeout(Duration),
    Io(String),
    Smoke(String),
    /// `doctor` found this many problems (already printed).
    Doctor(usize),
    /// The row is revoked but Linear did not confirm the grant ended:
    /// `not-confirmed` or `failed`, and what happened.
    RevokeNotConfirmed {
        outcome: &'static str,
        detail: String,
    },
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        Self::Lib(e)
    }
}

/// The Linear setting a disabled client_credentials grant needs (the
/// component says so in the description; exit code 8, token endpoint).
const CLIENT_CREDENTIALS_HINT: &str = "enable \"Client credentials\" in the Linear app's settings (Settings > API > OAuth applications > the app), then run `linear-oauth setup --client-credentials` again";

const REDIRECT_HINT: &str = "make sure --redirect-uri byte-matches the Linear app's callback URL, scopes are space-separated, and the app allows actor=app (or try --no-actor-app)";

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Lib(e) => match e {
                Error::NotRegistered(_) => 3,
                Error::Revoked(_) => 4,
                Error::SecretMissing(_) => 5,
                Error::InvalidStoredToken(_) => 6,
                Error::ReauthorizationRequired(_) => 7,
                Error::TokenEndpoint { .. } => 8,
                Error::Transport(_) => 9,
                Error::Store(_) => 10,
                Error::InvalidInput(_) => 11,
                Error::Authorization { .. } => 12,
                Error::Internal(_) => 1,
            },
            Self::Timeout(_) => 13,
            Self::Io(_) => 10,
            Self::Smoke(_) => 14,
            Self::Doctor(_) => 16,
            Self::RevokeNotConfirmed { .. } => 15,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Lib(e) => e.code(),
            Self::Timeout(_) => "TIMEOUT",
            Self::Io(_) => "IO",
            Self::Smoke(_) => "SMOKE",
            Self::Doctor(_) => "DOCTOR",
            Self::RevokeNotConfirmed { .. } => "REVOKE_NOT_CONFIRMED",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::Lib(e) => e.to_string(),
            Self::Timeout(d) => format!("no authorization callback arrived within {} s", d.as_secs_f64()),
            Self::Io(m) | Self::Smoke(m) => m.clone(),
            Self::Doctor(n) => format!("doctor found {n} problem(s); see the fixes above"),
            Self::RevokeNotConfirmed { outcome, detail } => {
                format!("the workspace is marked revoked here, but Linear did not confirm the grant ended ({outcome}: {detail})")
            }
        }
    }

    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            Self::Lib(e) => match e {
                Error::NotRegistered(_) => {
                    "install it with `linear-oauth setup`, or find the id with `linear-oauth list`"
                }
                Error::Revoked(_) => "the workspace is revoked; run `linear-oauth setup` to install it again",
                Error::SecretMissing(_) => {
                    "the registry points at a secret that does not exist; run `linear-oauth setup` again"
                }
                Error::InvalidStoredToken(_) => {
                    "repair the stored secret (see `linear-oauth inspect`) or run `linear-oauth setup` again"
                }
                Error::ReauthorizationRequired(_) => "run `linear-oauth setup` again to authorize the workspace",
                Error::TokenEndpoint { code, description, .. } => {
                    if description.as_deref().unwrap_or_default().contains("client credentials grant") {
                        CLIENT_CREDENTIALS_HINT
                    } else if description.as_deref().unwrap_or_default().contains("redirect_uri") {
                        REDIRECT_HINT
                    } else if code.as_deref() == Some("invalid_client") {
                        "check the client id and client secret of the Linear app"
                    } else {
                        "Linear refused the request; retry, or run with --verbose"
                    }
                }
                Error::Transport(_) => "check that the API base is reachable and retry",
                Error::Store(_) => "check the --store location and its permissions",
                Error::InvalidInput(_) => "see `linear-oauth --help`",
                Error::Authorization { code, .. } if code.as_deref() == Some("access_denied") => {
                    "the install was declined in the browser; run setup again and approve it"
                }
                Error::Authorization { .. } => "the callback did not belong to this install; run setup again",
                Error::Internal(_) => "this is a bug; run with --verbose and report it",
            },
            Self::Timeout(_) => {
                return Some(format!(
                    "if the browser shows \"Invalid redirect_uri\", {REDIRECT_HINT}; or raise --timeout"
                ));
            }
            Self::Io(_) => "check the terminal, files and ports involved",
            Self::Smoke(_) => "run with --verbose to see the component's log",
            Self::Doctor(_) => return None,
            Self::RevokeNotConfirmed { outcome, .. } => {
                let retry =
                    if *outcome == "failed" { "retry `linear-oauth revoke` when Linear is reachable, or " } else { "" };
                return Some(format!(
                    "{retry}remove the app's authorization in Linear's workspace settings (installed applications) to be sure its tokens stop working"
                ));
            }
        };
        Some(hint.to_owned())
    }

    /// One line on stderr (a JSON object with --json).
    pub fn report(&self, json: bool) {
        if json {
            let retry_after = match self {
                Self::Lib(e) => e.retry_after().map(|d| d.as_secs_f64()),
                _ => None,
            };
            let v = serde_json::json!({ "error": { "kind": self.kind(), "message": self.message(), "hint": self.hint(),
                "exit_code": self.exit_code(), "retry_after": retry_after } });
            eprintln!("{v}");
        } else {
            match self.hint() {
                Some(h) => eprintln!("linear-oauth: error: {} (hint: {h})", self.message()),
                None => eprintln!("linear-oauth: error: {}", self.message()),
            }
        }
    }
}
