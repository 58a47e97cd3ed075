//! The stored token: reading it, whether it may be used, and the result a
//! host gets for it.

use linear_oauth_core::{freshness, parse_instant, Freshness, Serve, StoredToken};

use crate::cache::invalidate_secret;
use crate::call::Call;
use crate::exports::linear::oauth::resolver::ResolvedToken;
use crate::health::reauthorization_error;
use crate::linear::oauth::log::Level;
use crate::linear::oauth::types::Error;

/// Reads the stored token, bypassing every cache.
pub(crate) fn read_secret(cx: &Call<'_>, secret_id: &str) -> Result<(StoredToken, String), Error> {
    let v = cx
        .io
        .secret_get(secret_id)
        .map_err(|e| Error::Store(format!("secret read failed: {e}")))?
        .ok_or_else(|| Error::SecretMissing(format!("secret {secret_id} does not exist")))?;
    let tok = StoredToken::parse(&v.value).map_err(|e| {
        cx.log(
            Level::Error,
            "stored token is invalid",
            &[("secret_id", secret_id), ("fields", &e.problems().join(","))],
        );
        Error::InvalidStoredToken(e.problems())
    })?;
    Ok((tok, v.version))
}

/// Whether `a` was written after `b` (refreshed, merged or installed later).
pub(crate) fn updated_after(a: &StoredToken, b: &StoredToken) -> bool {
    parse_instant(&a.updated_at) > parse_instant(&b.updated_at)
}

/// Whether a stored token may be served or refreshed at all: not when its
/// workspace was revoked (the mark `revoke` leaves on a kept secret, honoured
/// on every path, by secret id too), and not when the registry row of
/// `workspace` led to a token of another workspace (a url key that changed
/// hands): fail closed rather than hand one workspace's token to another.
pub(crate) fn check_usable(
    cx: &Call<'_>,
    secret_id: &str,
    tok: &StoredToken,
    workspace: Option<&str>,
) -> Result<(), Error> {
    if let Some(at) = tok.revoked_at() {
        return Err(Error::Revoked(format!(
            "secret {secret_id} (workspace {}) was revoked at {at}; run the install again to use it",
            tok.workspace_id
        )));
    }
    if let Some((at, code)) = tok.reauthorization_required() {
        return Err(reauthorization_error(&tok.workspace_id, code, at));
    }
    match workspace {
        Some(w) if w != tok.workspace_id => {
            cx.log(
                Level::Error,
                "the registry row of a workspace names a secret that holds another workspace's token; refusing it",
                &[("workspace_id", w), ("secret_id", secret_id), ("stored_workspace_id", &tok.workspace_id)],
            );
            Err(Error::InvalidStoredToken(vec![format!(
                "workspace_id (the secret holds workspace {}, but workspace {w}'s registry row names it)",
                tok.workspace_id
            )]))
        }
        _ => Ok(()),
    }
}

/// A revoke marked the secret after `seen` was read, or another process
/// recorded its credential dead: whatever was under way stops, before any
/// token request. (A `seen` already marked is revoke's own probe.)
pub(crate) fn revoked_meanwhile(
    cx: &Call<'_>,
    secret_id: &str,
    seen: &StoredToken,
    current: &StoredToken,
) -> Result<(), Error> {
    let marked = |t: &StoredToken| t.revoked_at().is_some() || t.reauthorization_required().is_some();
    if !marked(seen) && marked(current) {
        invalidate_secret(cx.io, secret_id, &current.workspace_id);
        return check_usable(cx, secret_id, current, None);
    }
    Ok(())
}

pub(crate) fn resolved(cx: &Call<'_>, secret_id: &str, tok: &StoredToken, refresh_due_ms: i64) -> ResolvedToken {
    let s = &cx.s;
    ResolvedToken {
        access_token: tok.access_token.secret().to_owned(),
        scope: tok.scope.clone(),
        workspace_slug: tok.workspace_slug.clone(),
        workspace_id: tok.workspace_id.clone(),
        secret_id: secret_id.to_owned(),
        expires_at: tok.expires_at.clone(),
        serve_until_ms: linear_oauth_core::serve_until(cx.now(), s.cache_ttl_ms, refresh_due_ms),
        refresh_ahead_at_ms: linear_oauth_core::refresh_ahead_at(
            refresh_due_ms,
            parse_instant(&tok.updated_at),
            s.refresh_ahead_ms,
            cx.now(),
        )
        .map_or(u64::MAX, |at| u64::try_from(at).unwrap_or(0)),
    }
}

/// A result the host must not refresh ahead on its own.
pub(crate) fn never_ahead(r: ResolvedToken) -> ResolvedToken {
    ResolvedToken { refresh_ahead_at_ms: u64::MAX, ..r }
}

/// Whether `tok` needs a refresh now, by this call's threshold.
pub(crate) fn fresh(cx: &Call<'_>, tok: &StoredToken) -> Freshness {
    freshness(&tok.expires_at, cx.now(), cx.s.refresh_threshold_ms)
}

/// When `tok` is fresh now: until when it needs no refresh.
pub(crate) fn fresh_until(cx: &Call<'_>, tok: &StoredToken) -> Option<i64> {
    match fresh(cx, tok) {
        Freshness::Fresh { refresh_due_ms } => Some(refresh_due_ms),
        _ => None,
    }
}

/// A usable result for `tok`, if it is fresh now.
pub(crate) fn if_fresh(cx: &Call<'_>, secret_id: &str, tok: &StoredToken) -> Option<ResolvedToken> {
    fresh_until(cx, tok).map(|due| resolved(cx, secret_id, tok, due))
}

/// What a would-be refresher may serve instead of refreshing (see core's
/// `usable_without_refresh`).
pub(crate) fn usable_without_refresh(
    cx: &Call<'_>,
    secret_id: &str,
    current: &StoredToken,
    seen: &StoredToken,
) -> Option<ResolvedToken> {
    let d = linear_oauth_core::usable_without_refresh(current, seen, cx.force, cx.now(), cx.s.refresh_threshold_ms)?;
    Some(match d {
        Serve::Fresh { refresh_due_ms } => resolved(cx, secret_id, current, refresh_due_ms),
        // Due now: the host serves it to this caller only, never from its fast
        // path, and does not refresh it ahead either (that is the next caller's).
        Serve::DueButValid => never_ahead(resolved(cx, secret_id, current, cx.now())),
    })
}
