//! The resolver's exports: registry -> status -> stored token -> refresh when
//! expiring. Every decision lives in the component; hosts only store things.
//! The stages: `rows` and `token` read, `refresh` renews (with `lease`,
//! `request`, `outage` and `write_back`), `cache` remembers.

use linear_oauth_core::{Freshness, RegistryStatus};

use crate::cache::{cached_token, invalidate, invalidate_secret, known_row, KnownRow};
use crate::call::{Call, RowCheck};
use crate::exports::linear::oauth::resolver::{ResolvedToken, Settings};
use crate::keys::{check_id, token_key, unsaved_key};
use crate::linear::oauth::log::Level;
use crate::linear::oauth::registry::Row;
use crate::linear::oauth::types::{Error, Target};
use crate::refresh::refresh_single_flight;
use crate::rows::active_row;
use crate::token::{check_usable, fresh, read_secret, resolved};
use crate::write_back::retry_unsaved;

/// Registry row, status, stored token, refresh if expiring. A warm process
/// whose cached row lapsed (rows are cached for `cache-ttl`, refreshes come
/// hours apart), or a new CLI process whose host kept the hint, starts from
/// the row it remembers instead of reading it: a
/// refresh checks the row in the same request that takes the lease
/// (`take-lease-if-unchanged`), and every other outcome reads it before the
/// caller gets anything, so no answer rests on a row older than the cache
/// ttl. The row's status decides first: a revoked workspace's error is
/// `revoked`, whatever reading or refreshing its secret ended in.
pub fn resolve(cx: &mut Call<'_>, workspace_id: &str) -> Result<ResolvedToken, Error> {
    check_id("workspace id", workspace_id)?;
    let remembered = match known_row(cx, workspace_id) {
        // Only a corrupt hint names another workspace (`known_row` drops
        // it) or a status other than active (only active rows are
        // remembered): no hint then.
        KnownRow::Hint(row) if RegistryStatus::parse(&row.status) == RegistryStatus::Active => Some(row),
        KnownRow::Cached(_) | KnownRow::Hint(_) | KnownRow::Unknown => None,
    };
    let of_row = |cx: &mut Call<'_>, row: &Row| resolve_secret_with(cx, &row.secret_id, Some(workspace_id));
    let Some(row) = remembered else {
        let row = active_row(cx, workspace_id)?;
        return of_row(cx, &row);
    };
    cx.row_check = Some(RowCheck::Unverified(row.clone()));
    let result = of_row(cx, &row);
    match cx.row_check.take() {
        Some(RowCheck::Verified) => result,
        Some(RowCheck::Moved(current)) => of_row(cx, &current),
        Some(RowCheck::Unverified(_)) | None => {
            // Read now, unless another call of this process just did (or
            // confirmed it taking the lease) and cached it.
            let current = active_row(cx, workspace_id)?;
            if current.secret_id == row.secret_id {
                result
            } else {
                of_row(cx, &current)
            }
        }
    }
}

/// An operator's refresh: a workspace must be registered and active.
pub fn force_refresh(cx: &mut Call<'_>, target: &Target) -> Result<ResolvedToken, Error> {
    cx.force = true;
    match target {
        Target::Workspace(workspace_id) => {
            check_id("workspace id", workspace_id)?;
            let row = active_row(cx, workspace_id)?;
            resolve_secret_with(cx, &row.secret_id, Some(workspace_id))
        }
        Target::Secret(secret_id) => resolve_secret_with(cx, secret_id, None),
    }
}

/// A caller's Linear API call with `access_token` got 401, by workspace (its
/// row names the secret) or by secret id (no registry, as `resolve-secret`).
/// Never a token request unless the stored token is the rejected one.
pub fn report_unauthorized(cx: &mut Call<'_>, target: &Target, access_token: &str) -> Result<ResolvedToken, Error> {
    let (secret_id, workspace) = match target {
        Target::Workspace(workspace_id) => {
            check_id("workspace id", workspace_id)?;
            invalidate(cx.io, workspace_id);
            (active_row(cx, workspace_id)?.secret_id, Some(workspace_id.as_str()))
        }
        Target::Secret(secret_id) => (secret_id.clone(), None),
    };
    check_id("secret id", &secret_id)?;
    let (current, version) = read_secret(cx, &secret_id)?;
    if workspace.is_none() {
        invalidate_secret(cx.io, &secret_id, &current.workspace_id);
    }
    check_usable(cx, &secret_id, &current, workspace)?;
    let fields = [("workspace_id", current.workspace_id.as_str()), ("secret_id", secret_id.as_str())];
    if current.access_token.secret() != access_token {
        cx.log(Level::Info, "a rejected token is no longer the stored one; serving the stored token", &fields);
        return resolve_secret_with(cx, &secret_id, workspace);
    }
    cx.log(Level::Warn, "Linear rejected the stored access token; refreshing", &fields);
    cx.force = true;
    refresh_single_flight(cx, &secret_id, &current, &version)
}

/// Refresh-ahead's background call: a refresh when the token is inside
/// `refresh-ahead + threshold` of expiry, with every usual rule.
pub fn refresh_ahead(cx: &mut Call<'_>, secret_id: &str) -> Result<ResolvedToken, Error> {
    cx.s = Settings {
        refresh_threshold_ms: cx.s.refresh_threshold_ms.saturating_add(cx.s.refresh_ahead_ms),
        refresh_ahead_ms: 0,
        ..cx.s.clone()
    };
    resolve_secret_with(cx, secret_id, None)
}

/// The token of a secret, with no registry row.
pub fn resolve_secret(cx: &mut Call<'_>, secret_id: &str) -> Result<ResolvedToken, Error> {
    resolve_secret_with(cx, secret_id, None)
}

/// Revoke's probing refresh: a forced refresh that a revoked mark does not
/// stop (revoke marks the secret, and may run again over a marked one).
pub(crate) fn probe_refresh(cx: &mut Call<'_>, secret_id: &str) -> Result<ResolvedToken, Error> {
    check_id("secret id", secret_id)?;
    let (tok, version) = read_secret(cx, secret_id)?;
    cx.force = true;
    refresh_single_flight(cx, secret_id, &tok, &version)
}

/// The token of `secret_id` (reached through `workspace`'s row, if any):
/// cached, else stored, refreshed when due or forced.
fn resolve_secret_with(cx: &mut Call<'_>, secret_id: &str, workspace: Option<&str>) -> Result<ResolvedToken, Error> {
    check_id("secret id", secret_id)?;
    retry_unsaved(cx, secret_id);
    if !cx.force {
        for key in [unsaved_key(secret_id), token_key(secret_id)] {
            if let Some(tok) = cached_token(cx.io, &key) {
                if let Freshness::Fresh { refresh_due_ms } = fresh(cx, &tok) {
                    check_usable(cx, secret_id, &tok, workspace)?;
                    return Ok(resolved(cx, secret_id, &tok, refresh_due_ms));
                }
            }
        }
    }
    let (tok, version) = read_secret(cx, secret_id)?;
    check_usable(cx, secret_id, &tok, workspace)?;
    // A fresh token read is served, not cached: the host serves its access
    // token from then on, and when it is due the refresh reads the secret
    // again anyway (another process may have renewed it). Keeping it would
    // hold a refresh token and client secret in memory for every workspace
    // this process ever served (a fleet's worth). Refreshed tokens are
    // cached, for the callers waiting on the refresh.
    match fresh(cx, &tok) {
        Freshness::Fresh { refresh_due_ms } if !cx.force => Ok(resolved(cx, secret_id, &tok, refresh_due_ms)),
        f => {
            if f == Freshness::Malformed {
                cx.log(
                    Level::Warn,
                    "stored expires_at is malformed; refreshing",
                    &[("workspace_id", &tok.workspace_id), ("secret_id", secret_id)],
                );
            }
            refresh_single_flight(cx, secret_id, &tok, &version)
        }
    }
}
