//! The settings `init` gives an instance: configuration, kept for the
//! instance's life (per-call state lives in `call::Call`).

use std::cell::RefCell;

use linear_oauth_core::{encoded_len, MAX_ID_ENCODED};

use crate::exports::linear::oauth::resolver::Settings;
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
