//! What this process remembers between calls, in the host's cache and hints:
//! tokens, rows, and which secret holds a workspace's token.

use linear_oauth_core::{RegistryStatus, StoredToken};

use crate::call::Call;
use crate::io::Io;
use crate::keys::{
    known_from_json, known_key, known_to_json, row_from_json, row_key, row_to_json, token_key, workspace_secret_key,
};
use crate::linear::oauth::registry::Row;

/// A cached stored token under `key` (a token or an unsaved one).
pub(crate) fn cached_token(io: &dyn Io, key: &str) -> Option<StoredToken> {
    io.cache_get(key).and_then(|v| StoredToken::parse(&v).ok())
}

/// The workspace's registry row, if this resolver read it within
/// `cache-ttl`. An active row is not cached apart: its hint (`known:`, kept
/// for later calls anyway) carries this resolver's mark and until when the
/// read counts, so a fleet's worth of workspaces costs one entry each, not
/// two. Another resolver's mark (a hint file shared by processes) or a
/// lapsed one makes it an unchecked hint again. Other rows are cached.
pub(crate) fn cached_row(cx: &Call<'_>, workspace_id: &str) -> Option<Row> {
    match known_row(cx, workspace_id) {
        KnownRow::Cached(row) => Some(row),
        KnownRow::Hint(_) | KnownRow::Unknown => None,
    }
}

/// What this process knows of a workspace's row.
pub(crate) enum KnownRow {
    /// The cached row (see `cached_row`).
    Cached(Row),
    /// The row remembered for it, which nobody has checked lately.
    Hint(Row),
    Unknown,
}

/// The cached row, else the remembered one: one recall serves both (in the
/// CLI it may be a file read).
pub(crate) fn known_row(cx: &Call<'_>, workspace_id: &str) -> KnownRow {
    if let Some(row) = cx.io.cache_get(&row_key(workspace_id)).and_then(|v| row_from_json(&v, workspace_id)) {
        return KnownRow::Cached(row);
    }
    let known = cx.io.recall(&known_key(workspace_id)).and_then(|v| known_from_json(&v, workspace_id));
    match known.filter(|(row, _)| row.workspace_id == workspace_id) {
        Some((row, Some((reader, until_ms)))) if reader == reader_mark(cx) && cx.io.now_ms() < until_ms => {
            KnownRow::Cached(row)
        }
        Some((row, _)) => KnownRow::Hint(row),
        None => KnownRow::Unknown,
    }
}

/// Keeps a row just read, or confirmed by a lease take, as the cached row
/// for `cache-ttl` (see `cached_row`); an active one also stays remembered
/// after that, until `invalidate`.
pub(crate) fn keep_row(cx: &Call<'_>, row: &Row) {
    let (io, workspace_id) = (cx.io, row.workspace_id.as_str());
    if RegistryStatus::parse(&row.status) == RegistryStatus::Active {
        // A cached row of another status would shadow the mark.
        io.cache_remove(&row_key(workspace_id));
        let until_ms = io.now_ms().saturating_add(i64::try_from(cx.s.cache_ttl_ms).unwrap_or(i64::MAX));
        io.remember(&known_key(workspace_id), Some(&known_to_json(row, reader_mark(cx), until_ms)));
    } else {
        io.cache_set(&row_key(workspace_id), &row_to_json(row), cx.s.cache_ttl_ms);
        forget_known(io, workspace_id);
    }
}

/// This resolver's mark on the rows it read: the start of its random lease
/// holder id (another process's is another).
fn reader_mark<'c>(cx: &'c Call<'_>) -> &'c str {
    let id = cx.s.holder_id.as_str();
    id.get(..16).unwrap_or(id)
}

/// Caches a token, and which secret holds the workspace's token.
pub(crate) fn cache_token(cx: &Call<'_>, secret_id: &str, tok: &StoredToken) {
    cx.io.cache_set(&token_key(secret_id), &tok.to_json(), cx.s.cache_ttl_ms);
    cx.io.cache_set(&workspace_secret_key(&tok.workspace_id), secret_id, cx.s.cache_ttl_ms);
}

pub(crate) fn forget_known(io: &dyn Io, workspace_id: &str) {
    io.remember(&known_key(workspace_id), None);
}

/// Forgets everything cached about a workspace (the `invalidate` export).
pub fn invalidate(io: &dyn Io, workspace_id: &str) {
    let row = io.cache_get(&row_key(workspace_id)).or_else(|| io.recall(&known_key(workspace_id)));
    if let Some(row) = row.and_then(|v| row_from_json(&v, workspace_id)) {
        io.cache_remove(&token_key(&row.secret_id));
    }
    // Tokens resolved by secret id alone are found through the stored token's workspace.
    if let Some(secret_id) = io.cache_get(&workspace_secret_key(workspace_id)) {
        io.cache_remove(&token_key(&secret_id));
    }
    io.cache_remove(&row_key(workspace_id));
    forget_known(io, workspace_id);
}

/// Forgets a token that failed, and its workspace's row.
pub(crate) fn invalidate_secret(io: &dyn Io, secret_id: &str, workspace_id: &str) {
    io.cache_remove(&token_key(secret_id));
    io.cache_remove(&row_key(workspace_id));
    forget_known(io, workspace_id);
}
