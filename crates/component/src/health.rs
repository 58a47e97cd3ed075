//! Credential health shared by the fleet: a credential Linear refused for
//! good is recorded once, in the registry row (status
//! `reauthorization_required`, with the time and the OAuth error code) and in
//! the secret (for the paths that never read the registry), so no process and
//! no cold start sends it to Linear again. Only a new install clears it.

use linear_oauth_core::{format_instant, RegistryStatus, StoredToken, REAUTHORIZATION_REQUIRED};

use crate::call::Call;
use crate::linear::oauth::log::Level;
use crate::linear::oauth::registry::Row;
use crate::linear::oauth::secret_store::PutOutcome;
use crate::linear::oauth::types::Error;

/// What an operator does about it.
const FIX: &str = "re-run `linear-oauth setup` for this workspace";

/// The error for a workspace or secret recorded as needing a new install.
pub(crate) fn reauthorization_error(workspace_id: &str, code: &str, at: &str) -> Error {
    Error::ReauthorizationRequired(format!(
        "workspace {workspace_id} must be installed again: Linear refused its stored credential ({code}) at {at}; {FIX}"
    ))
}

/// The error for a row marked `reauthorization_required`.
pub(crate) fn row_error(row: &Row) -> Error {
    let unknown = "(not recorded)";
    reauthorization_error(
        &row.workspace_id,
        row.status_reason.as_deref().unwrap_or(unknown),
        row.status_changed_at.as_deref().unwrap_or(unknown),
    )
}

/// Records that Linear refused `tok` (read at `version`) for good with OAuth
/// error `code`. The secret first, by compare-and-swap from the version the
/// refusal was decided on: if anybody wrote since (a new install, a renewal),
/// nothing is recorded. Then the registry row, if it is the active row of
/// this secret (a revoked or already marked row stays as it is; a secret
/// without a row is marked alone). Not after a lease takeover (see
/// `Call::took_over`). Returns the secret's new version, for the
/// lease release to hand on: a process that read the secret before the mark
/// then reads it again instead of refreshing. Best effort: a store error is
/// logged, and the caller's error stands either way.
pub(crate) fn record_dead(
    cx: &Call<'_>,
    secret_id: &str,
    tok: &StoredToken,
    version: &str,
    code: &str,
) -> Option<String> {
    let ws = tok.workspace_id.as_str();
    if cx.took_over {
        cx.log(
            Level::Warn,
            "not recording the credential as dead: a refresher that died mid-refresh may hold its rotated successor",
            &[("workspace_id", ws), ("secret_id", secret_id), ("error", code)],
        );
        return None;
    }
    let warn = |what: &str, e: &str| {
        cx.log(Level::Warn, what, &[("workspace_id", ws), ("secret_id", secret_id), ("error", e)])
    };
    let row = match cx.io.registry_get(ws) {
        Ok(row) => row.filter(|r| r.secret_id == secret_id),
        Err(e) => {
            warn("could not read the registry row to record a dead credential", &e);
            None
        }
    };
    if let Some(r) = &row {
        if RegistryStatus::parse(&r.status) != RegistryStatus::Active {
            return None;
        }
    }
    let at = format_instant(cx.now());
    let marked = tok.marked_reauthorization_required(&at, code);
    let written = match cx.io.secret_put(secret_id, &marked.to_json(), Some(version)) {
        Ok(PutOutcome::Written(v)) => v,
        Ok(PutOutcome::Conflict) => return None,
        Err(e) => {
            warn("could not mark the secret as needing a new install", &e);
            return None;
        }
    };
    if let Some(r) = row {
        let dead = Row {
            status: REAUTHORIZATION_REQUIRED.into(),
            status_reason: Some(code.to_owned()),
            status_changed_at: Some(at.clone()),
            ..r
        };
        if let Err(e) = cx.io.registry_put(&dead) {
            warn("could not mark the registry row as needing a new install", &e);
        }
    }
    cx.log(
        Level::Error,
        "recorded that the workspace must be installed again; no process will send its credential to Linear",
        &[("workspace_id", ws), ("secret_id", secret_id), ("error", code), ("at", &at)],
    );
    Some(written)
}
