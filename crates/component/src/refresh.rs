//! Renewing a token: single flight per process, the lease across processes,
//! then one request with invalid_grant recovery and the write-back.

use linear_oauth_core::{after_invalid_grant, request_slack_ms, Recovery, StoredToken, TokenResponse};

use crate::cache::{cache_token, cached_token, invalidate_secret};
use crate::call::Call;
use crate::exports::linear::oauth::resolver::ResolvedToken;
use crate::health::record_dead;
use crate::io::Io;
use crate::keys::{refresh_key, token_key};
use crate::lease::{self, Acquired};
use crate::linear::oauth::log::Level;
use crate::linear::oauth::metrics::Event;
use crate::linear::oauth::types::Error;
use crate::outage::{remember_failure, remembered_failure, serve_through_outage};
use crate::request::{post_refresh, RefreshFailure};
use crate::token::{if_fresh, read_secret, revoked_meanwhile, updated_after, usable_without_refresh};
use crate::write_back::write_back;

/// Releases the in-process lock even on an early return.
struct LockGuard<'a> {
    io: &'a dyn Io,
    key: String,
}
impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.io.unlock(&self.key);
    }
}

/// At most one refresh per secret per process; then at most one per store.
/// `seen` is the token read at `seen_version` that made the caller refresh.
/// The renewal entry point for both grants (`post_refresh` sends a refresh
/// or a new client-credentials fetch); a forced call renews even a fresh
/// token unless somebody else renewed since `seen`.
pub(crate) fn refresh_single_flight(
    cx: &mut Call<'_>,
    secret_id: &str,
    seen: &StoredToken,
    seen_version: &str,
) -> Result<ResolvedToken, Error> {
    let key = refresh_key(secret_id);
    if let Some(r) = remembered_failure(cx, secret_id, seen) {
        return r;
    }
    // One wait for this process's lock and the lease together, ending in
    // time for a refresh of our own to fit the call.
    let wait_until =
        linear_oauth_core::wait_deadline(cx.now(), cx.s.lease_wait_ms, cx.call_end(), cx.s.http_timeout_ms);
    let wait_ms = if cx.no_wait { 0 } else { u64::try_from(wait_until.saturating_sub(cx.now())).unwrap_or(0) };
    if !cx.io.lock(&key, wait_ms) {
        cx.lease_busy = cx.no_wait;
        return Err(Error::Transport(format!("timed out waiting for this process's refresh of {secret_id}")));
    }
    let _guard = LockGuard { io: cx.io, key: key.clone() };
    // Whoever held the lock before us may have refreshed already: its
    // write-back is in this process's cache, no store read needed. (Newer
    // than `seen` only: a slower reader may have cached an older token.)
    if let Some(cached) = cached_token(cx.io, &token_key(secret_id)).filter(|c| updated_after(c, seen)) {
        if let Some(r) = usable_without_refresh(cx, secret_id, &cached, seen) {
            return Ok(r);
        }
    }
    // The caller before us failed for a transient reason a moment ago.
    if let Some(r) = remembered_failure(cx, secret_id, seen) {
        return r;
    }
    let acquired = lease::acquire(cx, &key, secret_id, seen, seen_version, wait_until)?;
    cx.written = None;
    let result = match acquired {
        Acquired::ByOther(r) => return Ok(r),
        Acquired::Ours { token, version, lease_end_ms } => reserve_space(cx, secret_id, &token)
            .and_then(|()| refresh_now(cx, secret_id, *token, &version, lease_end_ms)),
    };
    let written = cx.written.take();
    if let Err(e) = cx.io.release_lease(&key, &cx.s.holder_id, written.as_deref()) {
        cx.log(
            Level::Warn,
            "releasing the refresh lease failed; it will expire",
            &[("secret_id", secret_id), ("error", &e)],
        );
    }
    result
}

/// Never spend what cannot be saved: before the refresh token is used, the
/// store must be able to take its successor (twice today's size, plus slack).
fn reserve_space(cx: &Call<'_>, secret_id: &str, current: &StoredToken) -> Result<(), Error> {
    let bytes = u64::try_from(current.to_json().len()).unwrap_or(u64::MAX).saturating_mul(2).saturating_add(4096);
    cx.io.secret_reserve(secret_id, bytes).map_err(|e| {
        cx.log(
            Level::Error,
            "the store cannot take a rotated token; not refreshing",
            &[("workspace_id", &current.workspace_id), ("secret_id", secret_id), ("error", &e)],
        );
        Error::Store(format!("not refreshing {secret_id}: {e}"))
    })
}

/// Refresh with the lease held, recovering once from invalid_grant.
fn refresh_now(
    cx: &mut Call<'_>,
    secret_id: &str,
    tok: StoredToken,
    version: &str,
    lease_end_ms: i64,
) -> Result<ResolvedToken, Error> {
    let end = lease_end_ms.min(cx.call_end());
    let started = cx.now();
    let result = match post_refresh(cx, &tok, end) {
        Ok(resp) => write_back(cx, secret_id, &tok, &renewed(cx, &tok, &resp), version),
        Err(RefreshFailure::InvalidGrant) => recover(cx, secret_id, &tok, end),
        Err(f) => not_renewed(cx, secret_id, &tok, version, f),
    };
    let took = u64::try_from(cx.now().saturating_sub(started)).unwrap_or(0);
    cx.io.refresh_latency(took, &tok.workspace_id);
    result
}

/// `tok` renewed by `resp`, holding the client secret the request used.
fn renewed(cx: &Call<'_>, tok: &StoredToken, resp: &TokenResponse) -> StoredToken {
    let mut new = tok.refreshed(resp, cx.now());
    if let Some(secret) = &cx.client_secret {
        new.client_secret = secret.clone();
    }
    new
}

/// Linear refused the refresh token: core's `after_invalid_grant` decides,
/// from the secret as stored now, whether somebody else rotated it.
fn recover(cx: &mut Call<'_>, secret_id: &str, tok: &StoredToken, end: i64) -> Result<ResolvedToken, Error> {
    let (reread, version) = read_secret(cx, secret_id)?;
    revoked_meanwhile(cx, secret_id, tok, &reread)?;
    match after_invalid_grant(tok.lineage(), &reread, cx.now(), cx.s.refresh_threshold_ms) {
        Recovery::UseStored => {
            cx.log(
                Level::Info,
                "refresh token was rotated by another refresher; using the stored token",
                &[("workspace_id", &tok.workspace_id), ("secret_id", secret_id)],
            );
            cache_token(cx, secret_id, &reread);
            let served = if_fresh(cx, secret_id, &reread)
                .ok_or_else(|| Error::Transport("stored token expired meanwhile".into()));
            cx.count(
                if served.is_ok() { Event::InvalidGrantRecovered } else { Event::RefreshFailed },
                &tok.workspace_id,
            );
            served
        }
        // A second request, under the same lease: only if it fits.
        Recovery::RefreshAgain if request_slack_ms(cx.now(), end, cx.s.http_timeout_ms).is_none() => {
            let e = Error::Transport(format!(
                "the token of {secret_id} was rotated elsewhere and is due again, but too little of the \
                 refresh lease or call is left to refresh it once more; try again"
            ));
            serve_through_outage(cx, secret_id, &reread, e)
        }
        Recovery::RefreshAgain => match post_refresh(cx, &reread, end) {
            Ok(resp) => write_back(cx, secret_id, &reread, &renewed(cx, &reread, &resp), &version)
                .inspect(|_| cx.count(Event::InvalidGrantRecovered, &tok.workspace_id)),
            Err(f) => not_renewed(cx, secret_id, &reread, &version, f),
        },
        Recovery::Reauthorize => Err(reauthorize(cx, secret_id, &reread, &version, "invalid_grant")),
    }
}

/// A renewal of `tok` (read at `version`) that ended without a token and
/// without recovery left: an outage is remembered and served through,
/// anything else is final, and a credential refused for good is recorded.
fn not_renewed(
    cx: &mut Call<'_>,
    secret_id: &str,
    tok: &StoredToken,
    version: &str,
    f: RefreshFailure,
) -> Result<ResolvedToken, Error> {
    match f {
        RefreshFailure::Transient(e) => {
            remember_failure(cx, secret_id, &e);
            serve_through_outage(cx, secret_id, tok, e)
        }
        // Linear refused the stored client secret of a client-credentials token.
        RefreshFailure::Other(e @ Error::ReauthorizationRequired(_)) => {
            invalidate_secret(cx.io, secret_id, &tok.workspace_id);
            cx.count(Event::ReauthorizationRequiredInvalidClient, &tok.workspace_id);
            cx.dead_code = Some("invalid_client");
            cx.written = record_dead(cx, secret_id, tok, version, "invalid_client");
            Err(e)
        }
        RefreshFailure::Other(e) => {
            invalidate_secret(cx.io, secret_id, &tok.workspace_id);
            cx.count(Event::RefreshFailed, &tok.workspace_id);
            cx.log(
                Level::Error,
                "token refresh failed",
                &[("workspace_id", &tok.workspace_id), ("secret_id", secret_id)],
            );
            Err(e)
        }
        RefreshFailure::InvalidGrant => Err(reauthorize(cx, secret_id, tok, version, "invalid_grant")),
    }
}

/// Linear refused `tok` (read at `version`) after the re-read: recorded
/// for every process (see `health`), the version written handed to the
/// lease release.
fn reauthorize(cx: &mut Call<'_>, secret_id: &str, tok: &StoredToken, version: &str, code: &'static str) -> Error {
    let workspace_id = &tok.workspace_id;
    invalidate_secret(cx.io, secret_id, workspace_id);
    if cx.client_secret.is_some() {
        // A verification of a new client secret proves nothing about the
        // stored credential: nothing recorded.
        return Error::ReauthorizationRequired(format!(
            "Linear refused the refresh token of workspace {workspace_id} ({code}) while verifying a client secret"
        ));
    }
    cx.dead_code = Some(code);
    cx.count(
        if code == "invalid_client" {
            Event::ReauthorizationRequiredInvalidClient
        } else {
            Event::ReauthorizationRequiredInvalidGrant
        },
        workspace_id,
    );
    cx.log(
        Level::Error,
        "refresh token is spent or revoked; the workspace must be installed again",
        &[("workspace_id", workspace_id), ("secret_id", secret_id)],
    );
    cx.written = record_dead(cx, secret_id, tok, version, code);
    Error::ReauthorizationRequired(format!(
        "the refresh token for workspace {workspace_id} is expired or revoked ({code}); re-run `linear-oauth setup` \
         for this workspace"
    ))
}
