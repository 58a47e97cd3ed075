//! Rate limits and outages of the token endpoint: a transient failure is
//! remembered for the callers that follow, and the unexpired stored token is
//! served through it.

use linear_oauth_core::StoredToken;
use serde::{Deserialize, Serialize};

use crate::cache::invalidate_secret;
use crate::call::Call;
use crate::exports::linear::oauth::resolver::ResolvedToken;
use crate::keys::failure_key;
use crate::linear::oauth::log::Level;
use crate::linear::oauth::metrics::Event;
use crate::linear::oauth::types::{EndpointError, Error};
use crate::settings::ms_i64;
use crate::token::{never_ahead, resolved};

/// A short, secret-free description of an error for a log field.
pub(crate) fn describe_error(e: &Error) -> String {
    match e {
        Error::TokenEndpoint(t) => {
            format!("HTTP {}{}", t.status, t.code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())
        }
        Error::Transport(m) => m.clone(),
        other => format!("{other:?}"),
    }
}

/// A transient failure as the host's cache keeps it for the callers that
/// follow (never anything secret: endpoint errors are already redacted).
#[derive(Debug, Serialize, Deserialize)]
enum Remembered {
    Transport(String),
    Endpoint {
        status: u16,
        code: Option<String>,
        description: Option<String>,
        retry_after_ms: Option<u64>,
        /// When Linear answered: `Retry-After` counts down from it.
        at_ms: i64,
    },
}

/// Shares a transient failure with the callers that follow for
/// `failure-memory-ms` (or as long as Linear's `Retry-After`, if longer).
pub(crate) fn remember_failure(cx: &Call<'_>, secret_id: &str, e: &Error) {
    let memory_ms = cx.s.failure_memory_ms;
    if memory_ms == 0 {
        return;
    }
    let (ttl, remembered) = match e {
        Error::TokenEndpoint(t) => (
            memory_ms.max(t.retry_after_ms.unwrap_or(0)),
            Remembered::Endpoint {
                status: t.status,
                code: t.code.clone(),
                description: t.description.clone(),
                retry_after_ms: t.retry_after_ms,
                at_ms: cx.now(),
            },
        ),
        Error::Transport(m) => (memory_ms, Remembered::Transport(m.clone())),
        _ => return,
    };
    if let Ok(json) = serde_json::to_string(&remembered) {
        cx.io.cache_set(&failure_key(secret_id), &json, ttl);
    }
}

/// The remembered failure, if one is fresh: the unexpired token (unless
/// forced), or the error again, with `Retry-After` counted down.
pub(crate) fn remembered_failure(
    cx: &Call<'_>,
    secret_id: &str,
    tok: &StoredToken,
) -> Option<Result<ResolvedToken, Error>> {
    let e = match serde_json::from_str(&cx.io.cache_get(&failure_key(secret_id))?).ok()? {
        Remembered::Transport(m) => Error::Transport(m),
        Remembered::Endpoint { status, code, description, retry_after_ms, at_ms } => {
            let elapsed = u64::try_from(cx.now().saturating_sub(at_ms)).unwrap_or(0);
            Error::TokenEndpoint(EndpointError {
                status,
                code,
                description,
                retry_after_ms: retry_after_ms.map(|r| r.saturating_sub(elapsed)),
            })
        }
    };
    Some(serve_through_outage(cx, secret_id, tok, e))
}

/// After a transient failure: the stored token while it has not actually
/// expired (an outage shorter than its life stays invisible), else the error.
/// A forced refresh or a 401 report gets the error: the token is unwanted.
pub(crate) fn serve_through_outage(
    cx: &Call<'_>,
    secret_id: &str,
    tok: &StoredToken,
    e: Error,
) -> Result<ResolvedToken, Error> {
    let now = cx.now();
    let expires = linear_oauth_core::parse_instant(&tok.expires_at).unwrap_or(i64::MIN);
    // A second of margin: the caller still has to send it.
    if cx.force || expires <= now.saturating_add(1000) {
        invalidate_secret(cx.io, secret_id, &tok.workspace_id);
        cx.count(Event::RefreshFailed, &tok.workspace_id);
        return Err(e);
    }
    cx.count(Event::ServedStale, &tok.workspace_id);
    cx.log(
        Level::Warn,
        "token refresh failed for a transient reason; serving the unexpired stored token",
        &[
            ("workspace_id", &tok.workspace_id),
            ("secret_id", secret_id),
            ("expires_at", &tok.expires_at),
            ("error", &describe_error(&e)),
        ],
    );
    // Served from the host's memory only until the failure memory lapses.
    let until = now.saturating_add(ms_i64(cx.s.failure_memory_ms.max(1))).min(expires - 1000);
    Ok(never_ahead(resolved(cx, secret_id, tok, until)))
}
