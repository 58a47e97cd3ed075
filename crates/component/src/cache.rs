//! What this process remembers between calls, in the host's cache and hints:
//! tokens, rows, and which secret holds a workspace's token.

use linear_oauth_core::StoredToken;

use crate::call::Call;
use crate::io::Io;
use crate::keys::{known_key, row_from_json, row_key, token_key, workspace_secret_key};
use crate::linear::oauth::registry::Row;

/// A cached stored token under `key` (a token or an unsaved one).
pub(crate) fn cached_token(io: &dyn Io, key: &str) -> Option<StoredToken> {
    io.cache_get(key).and_then(|v| StoredToken::parse(&v).ok())
}

/// The workspace's registry row, if read within `cache-ttl`.
pub(crate) fn cached_row(io: &dyn Io, workspace_id: &str) -> Option<Row> {
    io.cache_get(&row_key(workspace_id)).and_then(|v| row_from_json(&v))
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
    if let Some(row) = cached_row(io, workspace_id) {
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
