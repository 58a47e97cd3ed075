//! The JS token objects handed out so far, so a cached resolve returns the
//! same object instead of building a new one.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use linear_oauth_host::{ResolvedToken, Resolver as HostResolver, Target};
use napi::bindgen_prelude::*;

use crate::Hooks;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Workspace,
    Secret,
}

impl Kind {
    fn target(self, id: &str) -> Target<'_> {
        match self {
            Kind::Workspace => Target::Workspace(id),
            Kind::Secret => Target::Secret(id),
        }
    }
}

/// A JS token object and the host token it was made from.
struct JsToken {
    token: Arc<ResolvedToken>,
    object: ObjectRef<false>,
}

/// The JS objects handed out so far, so a cached resolve returns the same
/// object instead of building a new one. Touched only on the JS thread; the
/// mutex is there because async tasks carry it across threads.
#[derive(Default)]
pub struct JsTokens {
    workspaces: HashMap<String, JsToken>,
    secrets: HashMap<String, JsToken>,
    /// Set when the resolver is finalized: later results are not kept.
    pub(crate) closed: bool,
    /// The host cache's generation when these entries were last checked.
    generation: u64,
}

impl fmt::Debug for JsTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsTokens")
            .field("workspaces", &self.workspaces.len())
            .field("secrets", &self.secrets.len())
            .field("closed", &self.closed)
            .finish()
    }
}

impl JsTokens {
    fn map(&mut self, kind: Kind) -> &mut HashMap<String, JsToken> {
        match kind {
            Kind::Workspace => &mut self.workspaces,
            Kind::Secret => &mut self.secrets,
        }
    }

    /// After the host dropped tokens (its generation moved): drops (and
    /// unrefs) the objects of tokens the host no longer caches. Which tokens
    /// a call drops is the host's rule alone; this only follows it.
    pub(crate) fn sync(&mut self, env: &Env, host: &HostResolver) -> Result<()> {
        let generation = host.generation();
        if generation == self.generation {
            return Ok(());
        }
        self.generation = generation;
        self.drop_where(env, |kind, id, t| !host.holds(kind.target(id), t))
    }

    /// Drops (and unrefs) every entry `pred` selects.
    pub(crate) fn drop_where(
        &mut self,
        env: &Env,
        pred: impl Fn(Kind, &str, &Arc<ResolvedToken>) -> bool,
    ) -> Result<()> {
        for kind in [Kind::Workspace, Kind::Secret] {
            let map = self.map(kind);
            let gone: Vec<String> =
                map.iter().filter(|(k, v)| pred(kind, k, &v.token)).map(|(k, _)| k.clone()).collect();
            for k in gone {
                if let Some(e) = map.remove(&k) {
                    e.object.unref(env)?;
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn lock(tokens: &Mutex<JsTokens>) -> MutexGuard<'_, JsTokens> {
    tokens.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The JS object for `token`: the one made before if it is for this very
/// host token, else a new one from the wrapper's factory.
pub(crate) fn token_object<'e>(
    env: &'e Env,
    hooks: &Hooks,
    tokens: &Mutex<JsTokens>,
    kind: Kind,
    id: &str,
    token: Arc<ResolvedToken>,
) -> Result<Object<'e>> {
    if let Some(e) = lock(tokens).map(kind).get(id) {
        if Arc::ptr_eq(&e.token, &token) {
            return e.object.get_value(env);
        }
    }
    // No lock held while JS runs.
    let t = &*token;
    let args = FnArgs::from((
        t.access_token.secret().to_owned(),
        t.scope.clone(),
        t.workspace_slug.clone(),
        t.secret_id.clone(),
        t.expires_at.clone(),
        t.workspace_id.clone(),
        // Unix ms: exact in an f64 for the next 285,000 years.
        t.serve_until_ms as f64,
        // u64::MAX (never) becomes 1.8e19: still "never" for Date.now().
        t.refresh_ahead_at_ms as f64,
    ));
    let object = hooks.make_token.borrow_back(env)?.call(args)?;
    let value = object.get_value(env)?;
    let mut guard = lock(tokens);
    if guard.closed {
        object.unref(env)?;
    } else if let Some(old) = guard.map(kind).insert(id.to_owned(), JsToken { token, object }) {
        old.object.unref(env)?;
    }
    Ok(value)
}
