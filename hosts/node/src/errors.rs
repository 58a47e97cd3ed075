//! Host errors as `LinearOAuthError`s, and the panic guard every entry point
//! that reaches the host goes through.

use linear_oauth_host::{camel_case, Attr, Error as HostError};
use napi::bindgen_prelude::*;

use crate::{Hooks, HostResult};

/// The one mapping of host errors to JS: a `LinearOAuthError` with the host's
/// stable `code`, its message, and its attributes (`Error::attrs`) as
/// properties, camelCased (`retry_after` is `retryAfter`).
pub(crate) fn js_error(env: &Env, hooks: &Hooks, e: &HostError) -> Error {
    let attrs: serde_json::Map<String, serde_json::Value> =
        e.attrs().into_iter().map(|(name, value)| (camel_case(name), json(value))).collect();
    let args = FnArgs::from((e.code().to_owned(), e.to_string(), serde_json::Value::Object(attrs).to_string()));
    match hooks.make_error.borrow_back(env).and_then(|f| f.call(args)) {
        Ok(value) => Error::from(value),
        Err(failed) => failed,
    }
}

fn json(value: Attr) -> serde_json::Value {
    match value {
        Attr::None => serde_json::Value::Null,
        Attr::Int(n) => n.into(),
        Attr::Float(x) => x.into(),
        Attr::Str(s) => s.into(),
        Attr::List(items) => items.into(),
    }
}

/// A panic in the host becomes `INTERNAL`, never an abort of the Node process
/// (a panic unwinding out of a napi callback aborts it).
pub(crate) fn no_panic<R>(f: impl FnOnce() -> HostResult<R>) -> HostResult<R> {
    linear_oauth_host::no_panic("the resolver panicked", f)
}
