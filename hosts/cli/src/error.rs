//! One line per failure saying what went wrong and what to do, and a distinct
//! exit code per kind. Messages come from the host API, which never carries
//! secrets.

use std::time::Duration;

use linear_oauth_host::{Error, ERROR_KINDS};

/// The exit codes the CLI adds to the host's error kinds.
const CLI_EXIT_CODES: [(u8, &str); 8] = [
    (0, "success"),
    (2, "usage"),
    (13, "timed out waiting for the browser"),
    (14, "smoke test failed"),
    (15, "revoke not confirmed by Linear"),
    (16, "doctor found problems"),
    (20, "some items failed (import, export, sweep, rotate-client-secret)"),
    (21, "local I/O (a busy port, stdin, stdout)"),
];

/// `--help`'s list of exit codes: the host's error kinds and the CLI's own,
/// in two columns.
pub fn exit_codes_help() -> String {
    let mut rows: Vec<(u8, &str)> = ERROR_KINDS.iter().map(|k| (k.exit_code, k.label)).collect();
    rows.extend(CLI_EXIT_CODES);
    rows.sort();
    let half = rows.len().div_ceil(2);
    let mut out = String::from("Exit codes:");
    for i in 0..half {
        let left = format!("{:>3}  {}", rows[i].0, rows[i].1);
        out.push_str(&format!("\n{left:<45}"));
        if let Some((code, label)) = rows.get(i + half) {
            out.push_str(&format!("{code:>3}  {label}"));
        }
        out.truncate(out.trim_end().len());
    }
    out.push_str(
        "\nA client_credentials grant the Linear app does not allow is 8 (the token\n\
         endpoint's answer), with the app setting to enable in the message.",
    );
    out
}

#[derive(Debug)]
pub enum CliError {
    Lib(Error),
    /// No callback arrived in time.
    Timeout(Duration),
    /// Local I/O that is not the store's: a port, stdin, stdout (exit 21;
    /// the store's own failures are the host's `store`, 10).
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
    /// A fleet operation (import, export, sweep, rotation) finished with
    /// failures, each already reported.
    Incomplete(String),
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
            Self::Lib(e) => e.kind().exit_code,
            Self::Timeout(_) => 13,
            Self::Io(_) => 21,
            Self::Smoke(_) => 14,
            Self::Doctor(_) => 16,
            Self::RevokeNotConfirmed { .. } => 15,
            Self::Incomplete(_) => 20,
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
            Self::Incomplete(_) => "INCOMPLETE",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::Lib(e) => e.to_string(),
            Self::Timeout(d) => format!("no authorization callback arrived within {} s", d.as_secs_f64()),
            Self::Io(m) | Self::Smoke(m) | Self::Incomplete(m) => m.clone(),
            Self::Doctor(n) => format!("doctor found {n} problem(s); see the fixes above"),
            Self::RevokeNotConfirmed { outcome, detail } => {
                format!("the workspace is marked revoked here, but Linear did not confirm the grant ended ({outcome}: {detail})")
            }
        }
    }

    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            // The table's hint, unless the error says something more specific.
            Self::Lib(e) => match e {
                Error::TokenEndpoint { description, .. }
                    if description.as_deref().unwrap_or_default().contains("client credentials grant") =>
                {
                    CLIENT_CREDENTIALS_HINT
                }
                Error::TokenEndpoint { description, .. }
                    if description.as_deref().unwrap_or_default().contains("redirect_uri") =>
                {
                    REDIRECT_HINT
                }
                Error::TokenEndpoint { code, .. } if code.as_deref() == Some("invalid_client") => {
                    "check the client id and client secret of the Linear app"
                }
                Error::Authorization { code, .. } if code.as_deref() == Some("access_denied") => {
                    "the install was declined in the browser; run setup again and approve it"
                }
                e => e.kind().hint,
            },
            Self::Timeout(_) => {
                return Some(format!(
                    "if the browser shows \"Invalid redirect_uri\", {REDIRECT_HINT}; or raise --timeout"
                ));
            }
            Self::Io(_) => "check the terminal, files and ports involved",
            Self::Smoke(_) => "run with --verbose to see the component's log",
            Self::Doctor(_) => return None,
            Self::Incomplete(_) => "the failures are listed above; a re-run skips the workspaces already done",
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
