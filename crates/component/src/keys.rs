//! Ids, the keys of the host's per-process cache and hints, and the codec of
//! the registry rows kept there. Pure: no I/O.

use crate::linear::oauth::registry::Row;
use crate::linear::oauth::types::Error;

/// Core's id rule, as the error hosts see.
pub(crate) fn check_id(what: &'static str, id: &str) -> Result<(), Error> {
    linear_oauth_core::check_id(what, id).map_err(|e| Error::InvalidInput(e.to_string()))
}

pub(crate) fn row_key(workspace_id: &str) -> String {
    format!("row:{workspace_id}")
}
/// The last row read as active, kept past `cache-ttl` as a host hint (see
/// `resolve`): in memory in a long-lived host, in a file for the CLI's next
/// process. Ids, slug and status only; never anything secret.
pub(crate) fn known_key(workspace_id: &str) -> String {
    format!("known:{workspace_id}")
}
pub(crate) fn token_key(secret_id: &str) -> String {
    format!("tok:{secret_id}")
}
pub(crate) fn workspace_secret_key(workspace_id: &str) -> String {
    format!("ws:{workspace_id}")
}
/// A refreshed token the store would not take: served from memory and
/// written again on later calls, so a rotated refresh token is never lost.
pub(crate) fn unsaved_key(secret_id: &str) -> String {
    format!("unsaved:{secret_id}")
}
/// A transient refresh failure, shared by the callers that follow it.
pub(crate) fn failure_key(secret_id: &str) -> String {
    format!("fail:{secret_id}")
}
/// This process's single flight and the cross-process lease of a refresh.
pub(crate) fn refresh_key(secret_id: &str) -> String {
    format!("refresh:{secret_id}")
}

/// The `workspace_id` a stored value names, even when other fields are bad.
pub(crate) fn named_workspace(value: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(value).ok()?;
    v.get("workspace_id")?.as_str().filter(|w| !w.is_empty()).map(str::to_owned)
}

fn row_entries(r: &Row) -> Vec<serde_json::Value> {
    let text = |v: &Option<String>| v.as_deref().map_or(serde_json::Value::Null, Into::into);
    let (reason, changed) = (text(&r.status_reason), text(&r.status_changed_at));
    vec![
        r.workspace_id.as_str().into(),
        r.workspace_slug.as_str().into(),
        r.secret_id.as_str().into(),
        r.status.as_str().into(),
        reason,
        changed,
    ]
}

pub(crate) fn row_to_json(r: &Row) -> String {
    serde_json::Value::from(row_entries(r)).to_string()
}

/// A remembered row as `row_to_json` writes it, but with `null` for the
/// workspace id (its key names it: one copy fewer per workspace of a fleet),
/// plus who read it (`reader`) and until when that read counts as the cached
/// row: two more entries, which `row_from_json` ignores. (Versions before the
/// `null` read such a hint as no hint: a lost shortcut, never a wrong row.)
pub(crate) fn known_to_json(r: &Row, reader: &str, until_ms: i64) -> String {
    let mut v = row_entries(r);
    v[0] = serde_json::Value::Null;
    v.extend([reader.into(), until_ms.to_string().into()]);
    serde_json::Value::from(v).to_string()
}

/// A row of `workspace_id`; also reads the four-entry rows of earlier
/// versions (hint files outlive them).
pub(crate) fn row_from_json(s: &str, workspace_id: &str) -> Option<Row> {
    known_from_json(s, workspace_id).map(|(row, _)| row)
}

/// A row of `workspace_id` (the one its first entry names, or when that is
/// `null` the given one) and, if `known_to_json` wrote one, its mark:
/// (reader, until ms).
pub(crate) fn known_from_json(s: &str, workspace_id: &str) -> Option<(Row, Option<(String, i64)>)> {
    let v: Vec<Option<String>> = serde_json::from_str(s).ok()?;
    let mut v = v.into_iter();
    let workspace_id = v.next()?.unwrap_or_else(|| workspace_id.to_owned());
    let mut text = || v.next().flatten();
    let (workspace_slug, secret_id, status) = (text()?, text()?, text()?);
    let (status_reason, status_changed_at) = (text(), text());
    let mark = text().zip(text()).and_then(|(reader, until)| Some((reader, until.parse().ok()?)));
    Some((Row { workspace_id, workspace_slug, secret_id, status, status_reason, status_changed_at }, mark))
}
