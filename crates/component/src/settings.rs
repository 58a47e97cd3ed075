//! The settings `init` gives an instance, and the one per-call context every
//! stage of the resolver takes.

use std::cell::RefCell;

use linear_oauth_core::{encoded_len, MAX_ID_ENCODED};

use crate::exports::linear::oauth::resolver::Settings;
use crate::io::Io;
use crate::linear::oauth::log::Level;
use crate::linear::oauth::registry::Row;
use crate::linear::oauth::types::Error;

thread_local! {
    /// The instance's configuration, set once by `init`: not per-call state.
    static SETTINGS: RefCell<Option<Settings>> = const { RefCell::new(None) };
}

pub fn init(s: Settings) -> Result<(), Error> {
    let base = url::Url::parse(&s.api_base).map_err(|e| Error::InvalidInput(format!("api base URL: {e}")))?;
    if base.cannot_be_a_base() {
        return Err(Error::InvalidInput("api base URL cannot be a base".into()));
    }
    url::Url::parse(&s.authorize_url).map_err(|e| Error::InvalidInput(format!("authorize URL: {e}")))?;
    // Installs name secrets `<prefix><slug>` (slugs up to 50 characters); a
    // prefix that makes such a name too long would install unresolvable ids.
    if encoded_len(&s.secret_prefix) + 50 > MAX_ID_ENCODED {
        return Err(Error::InvalidInput(format!(
            "secret prefix is too long: {} bytes once escaped, at most {} (ids are at most {MAX_ID_ENCODED}, slugs up to 50)",
            encoded_len(&s.secret_prefix),
            MAX_ID_ENCODED - 50
        )));
    }
    SETTINGS.with(|c| *c.borrow_mut() = Some(s));
    Ok(())
}

pub(crate) fn settings() -> Settings {
    SETTINGS.with(|c| c.borrow().clone()).expect("host calls init before anything else")
}

/// `<api-base>/<path>` without doubling slashes.
pub(crate) fn endpoint(s: &Settings, path: &str) -> String {
    format!("{}/{}", s.api_base.trim_end_matches('/'), path)
}

pub(crate) fn ms_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Where a `resolve` from a remembered registry row stands.
#[derive(Debug, Clone)]
pub(crate) enum RowCheck {
    /// Read as active by an earlier call; not checked in this one yet.
    Unverified(Row),
    /// Checked in this call: read, or confirmed by the lease take.
    Verified,
    /// Read in this call, active, and naming another secret: resolve that one.
    Moved(Row),
}

/// One host call's state, handed down every stage by `&mut`, so what a
/// function reads or changes shows in its signature.
pub(crate) struct Call<'a> {
    pub io: &'a dyn Io,
    /// `init`'s settings, or a variant of them for this call (refresh-ahead).
    pub s: Settings,
    /// When the host's call began: retries stay inside its deadline.
    pub started_ms: i64,
    /// Renew even a fresh token (an operator's refresh, a 401 report, revoke's probe).
    pub force: bool,
    /// The registry row a `resolve` works from, and whether this call has
    /// checked it yet (set in `resolve`, read and confirmed by the lease).
    pub row_check: Option<RowCheck>,
    /// The version the current refresh's write-back stored, for the lease
    /// release to hand on.
    pub written: Option<String>,
}

impl<'a> Call<'a> {
    /// A host call that starts now.
    pub fn start(io: &'a dyn Io, s: Settings) -> Self {
        let started_ms = io.now_ms();
        Self { io, s, started_ms, force: false, row_check: None, written: None }
    }

    pub fn now(&self) -> i64 {
        self.io.now_ms()
    }

    pub fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]) {
        self.io.log(level, message, fields);
    }

    /// When the host's current call ends (its deadline traps what runs past it).
    pub fn call_end(&self) -> i64 {
        self.started_ms.saturating_add(ms_i64(self.s.call_deadline_ms))
    }
}
