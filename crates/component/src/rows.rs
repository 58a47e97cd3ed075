//! The registry row of a workspace: read, cached, remembered as a hint, and
//! checked once per call when a `resolve` starts from a remembered one.

use linear_oauth_core::RegistryStatus;

use crate::cache::{cached_row, forget_known, keep_row};
use crate::call::{Call, RowCheck};
use crate::linear::oauth::log::Level;
use crate::linear::oauth::registry::Row;
use crate::linear::oauth::types::Error;

/// The registry row of an active workspace (cached), or why there is none.
pub(crate) fn active_row(cx: &Call<'_>, workspace_id: &str) -> Result<Row, Error> {
    let row = match cached_row(cx, workspace_id) {
        Some(row) => row,
        None => read_row(cx, workspace_id)?,
    };
    checked_status(cx, workspace_id, row)
}

/// Reads the registry row and keeps it (`keep_row`): cached for
/// `cache-ttl`, and an active one remembered until `invalidate`, for
/// `resolve` of a warm process.
pub(crate) fn read_row(cx: &Call<'_>, workspace_id: &str) -> Result<Row, Error> {
    let io = cx.io;
    let row = io
        .registry_get(workspace_id)
        .map_err(|e| Error::Store(format!("registry read failed: {e}")))?
        .ok_or_else(|| {
            forget_known(io, workspace_id);
            Error::NotRegistered(format!("workspace {workspace_id} is not registered"))
        })?;
    keep_row(cx, &row);
    Ok(row)
}

/// The row if its workspace is active, else why it does not resolve.
pub(crate) fn checked_status(cx: &Call<'_>, workspace_id: &str, row: Row) -> Result<Row, Error> {
    match RegistryStatus::parse(&row.status) {
        RegistryStatus::Active => Ok(row),
        RegistryStatus::ReauthorizationRequired => Err(crate::health::row_error(&row)),
        RegistryStatus::Revoked => {
            Err(Error::Revoked(format!("workspace {workspace_id} is not active (status {:?})", row.status)))
        }
        RegistryStatus::Unknown(status) => {
            cx.log(
                Level::Warn,
                "unknown registry status; treating the workspace as revoked",
                &[("workspace_id", workspace_id), ("status", &status)],
            );
            Err(Error::Revoked(format!("workspace {workspace_id} has unknown status {status:?}")))
        }
    }
}

/// The remembered row of this call's `resolve`, if it has not been checked yet.
pub(crate) fn unverified_row(cx: &Call<'_>) -> Option<Row> {
    match &cx.row_check {
        Some(RowCheck::Unverified(row)) => Some(row.clone()),
        _ => None,
    }
}

/// Reads the remembered row before a refresh whose lease take could not
/// check it: a revoked or removed workspace ends here, before any token
/// request; a row naming another secret ends this attempt (`resolve` starts
/// over with that secret).
pub(crate) fn verify_row(cx: &mut Call<'_>, row: &Row) -> Result<(), Error> {
    let current = read_row(cx, &row.workspace_id).and_then(|r| checked_status(cx, &row.workspace_id, r));
    let (state, result) = match current {
        Ok(current) if current.secret_id != row.secret_id => (
            RowCheck::Moved(current),
            Err(Error::Store(format!("workspace {} now names another secret", row.workspace_id))),
        ),
        Ok(_) => (RowCheck::Verified, Ok(())),
        Err(e) => (RowCheck::Verified, Err(e)),
    };
    cx.row_check = Some(state);
    result
}

/// The lease take confirmed the remembered row: it counts as read now.
pub(crate) fn row_confirmed(cx: &mut Call<'_>, row: &Row) {
    keep_row(cx, row);
    cx.row_check = Some(RowCheck::Verified);
}
