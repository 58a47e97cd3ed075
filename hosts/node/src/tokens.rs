//! Tokens as `index.js` builds its `LinearOAuthToken`s from them. Nothing is
//! kept here (a reference per object from here cost ~200 bytes, times a
//! fleet's workspaces): the wrapper keeps its recent objects itself, and
//! tells from a token's serial whether one still shows the host's token.

use linear_oauth_host::ResolvedToken;
use napi::bindgen_prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Workspace,
    Secret,
}

/// `[accessToken, scope, workspaceSlug, secretId, expiresAt, workspaceId,
/// untilMs, serial]`: what the wrapper makes a token object of. `untilMs`
/// is the sooner of the serve window's end and refresh-ahead (the wrapper
/// serves the object itself until then); Unix ms and serials are exact in
/// an f64, and `u64::MAX` (never) becomes 1.8e19, still "never".
pub(crate) fn token_fields<'e>(env: &'e Env, t: &ResolvedToken) -> Result<Array<'e>> {
    let mut a = env.create_array(8)?;
    let texts =
        [t.access_token().secret(), t.scope(), t.workspace_slug(), t.secret_id(), t.expires_at(), t.workspace_id()];
    for (i, text) in (0..).zip(texts) {
        a.set(i, text)?;
    }
    a.set(6, t.serve_until_ms.min(t.refresh_ahead_at_ms) as f64)?;
    a.set(7, t.serial() as f64)?;
    Ok(a)
}
