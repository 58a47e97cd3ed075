//! The `linear-oauth` Node addon: `linear_oauth_host` in napi terms, nothing more.
//!
//! Protocol, schema, caching and refresh decisions all live in the host and its
//! component. This crate only translates: options in, token objects and typed
//! errors out, log events to stderr or a JS logger, and blocking calls onto the
//! libuv pool so the event loop never waits for I/O.
//!
//! `index.js` wraps the class exported here (as `Resolver`) and passes in the
//! JS factory of `LinearOAuthError`s; tokens go to it as arrays of their
//! fields, of which it makes its `LinearOAuthToken` objects. The TypeScript
//! signatures below describe that public wrapper; parameters and methods only
//! the wrapper uses are hidden from the generated `index.d.ts`.
//!
//! The hot path: `index.js` keeps its token objects in maps of its own and
//! serves them without crossing napi until the host's serve window or
//! refresh-ahead instant. Once the host's cache generation moves (it dropped
//! tokens), each object is checked once: `cached(id, serial)` answers `true`
//! when the host still serves that very token, so a cached resolve makes no
//! strings and no object (see the note on `Resolver` there).
//!
//! Modules: `options` (the options object through the host's table),
//! `logging` (sinks), `errors` (host errors as `LinearOAuthError`s, the
//! panic guard), `tokens` (tokens as the wrapper takes them), `tasks` (calls on
//! the libuv pool), `records` (plain result objects), `resolver` (the class).

mod errors;
mod logging;
mod options;
mod records;
mod resolver;
mod tasks;
mod tokens;

use std::fmt;

use linear_oauth_host::{Error as HostError, Resolver as HostResolver};
use napi::bindgen_prelude::*;
use napi_derive::napi;

pub use options::settings;
pub use records::{ClientCredentialsInstall, Installed, LoadInfo, Revocation, RevokeOptions};
pub use resolver::Resolver;

/// `(code, message, attributesJson) => LinearOAuthError`
type ErrorArgs = FnArgs<(String, String, String)>;
type HostResult<T> = std::result::Result<T, HostError>;

/// The wrapper's error factory, kept by reference for the resolver's lifetime.
pub struct Hooks {
    make_error: FunctionRef<ErrorArgs, Unknown<'static>>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hooks")
    }
}

/// The host's error codes, in its table's order (`ERROR_CODES` in index.js).
#[napi(skip_typescript)]
pub fn error_codes() -> Vec<&'static str> {
    linear_oauth_host::ERROR_KINDS.iter().map(|k| k.code).collect()
}

/// Loads the component if no resolver has yet, and reports how.
#[napi]
pub fn load_info() -> Result<LoadInfo> {
    let info = HostResolver::load_info().map_err(|e| Error::new(Status::GenericFailure, e.to_string()))?;
    Ok(LoadInfo { compiled_fallback: info.compiled_fallback, load_time_ms: info.load_time.as_secs_f64() * 1000.0 })
}
