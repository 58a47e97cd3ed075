//! The host's fast path: resolved tokens by workspace or secret id, each
//! served without I/O until its own serve-until instant, and the one rule for
//! which of them a call that replaced or ended a token makes every cache drop.
//!
//! Bindings that keep objects of their own (Node's token objects and hot
//! maps) do not repeat the rule: they watch [`TokenCache::generation`] and ask
//! [`TokenCache::holds`] whether an object's token is still the one served.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use crate::store::now_ms;
use crate::types::{ResolvedToken, SecretString, Target};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Workspace(String),
    Secret(String),
}

impl From<Target<'_>> for Key {
    fn from(t: Target<'_>) -> Self {
        match t {
            Target::Workspace(w) => Self::Workspace(w.to_owned()),
            Target::Secret(s) => Self::Secret(s.to_owned()),
        }
    }
}

/// What a call that replaced or ended tokens makes the caches drop: every
/// entry keyed by, or holding a token of, the workspace or the secret named.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Scope<'a> {
    pub workspace: Option<&'a str>,
    pub secret: Option<&'a str>,
}

impl Scope<'_> {
    fn covers(&self, key: &Key, t: &ResolvedToken) -> bool {
        let (ws, secret) = (self.workspace, self.secret);
        let keyed = match key {
            Key::Workspace(w) => ws == Some(w.as_str()),
            Key::Secret(s) => secret == Some(s.as_str()),
        };
        keyed || ws == Some(t.workspace_id.as_str()) || secret == Some(t.secret_id.as_str())
    }
}

/// An uncached resolve in flight; later callers of its key wait for it.
#[derive(Debug, Default)]
struct Flight {
    done: Mutex<bool>,
    landed: Condvar,
}

#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    fast: RwLock<HashMap<Key, Arc<ResolvedToken>>>,
    /// Counts [`TokenCache::forget`]s: a binding's copy made before the
    /// current value may name a token this cache no longer serves.
    generation: AtomicU64,
    /// Uncached resolves in flight by key: a caller of a key already in
    /// flight waits outside the pool and then takes the result from the fast
    /// path, so 1,000 callers of one expiring workspace hold one instance
    /// instead of filling the pool's bound with callers waiting on one
    /// refresh (which would stall resolves of other workspaces).
    inflight: Mutex<HashMap<Key, Arc<Flight>>>,
}

/// Ends a flight when its call returns (or panics).
struct Landing<'a> {
    cache: &'a TokenCache,
    key: &'a Key,
    flight: Arc<Flight>,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        self.cache.inflight.lock().unwrap_or_else(|e| e.into_inner()).remove(self.key);
        *self.flight.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.flight.landed.notify_all();
    }
}

impl TokenCache {
    /// The token under `key` if it may still be served.
    pub fn get(&self, key: &Key) -> Option<Arc<ResolvedToken>> {
        let t = self.fast.read().unwrap().get(key).cloned()?;
        (now_ms() < t.serve_until_ms).then_some(t)
    }

    pub fn put(&self, key: Key, t: ResolvedToken) -> Arc<ResolvedToken> {
        let t = Arc::new(t);
        self.fast.write().unwrap().insert(key, t.clone());
        t
    }

    /// Drops every entry `scope` covers; the only way entries go early.
    pub fn forget(&self, scope: Scope<'_>) {
        self.fast.write().unwrap().retain(|k, v| !scope.covers(k, v));
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Drops everything (the resolver's owner is gone).
    pub fn clear(&self) {
        self.fast.write().unwrap().clear();
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether `t` is still the very token cached under `target` (served or
    /// not): a binding's object made from it may be kept.
    pub fn holds(&self, target: Target<'_>, t: &Arc<ResolvedToken>) -> bool {
        self.fast.read().unwrap().get(&Key::from(target)).is_some_and(|v| Arc::ptr_eq(v, t))
    }

    /// The access token cached for `secret_id`, if any (to tell whether a
    /// background refresh changed it).
    pub fn token_of(&self, secret_id: &str) -> SecretString {
        let fast = self.fast.read().unwrap();
        fast.values().find(|v| v.secret_id == secret_id).map(|v| v.access_token.clone()).unwrap_or_default()
    }

    /// A background refresh's result: every entry of the secret gets it.
    pub fn replace_secret(&self, secret_id: &str, t: Arc<ResolvedToken>) {
        let mut fast = self.fast.write().unwrap();
        for v in fast.values_mut().filter(|v| v.secret_id == secret_id) {
            *v = t.clone();
        }
        fast.entry(Key::Secret(secret_id.to_owned())).or_insert(t);
    }

    /// `call` (an uncached resolve of `key`) unless one is in flight: then
    /// its result from the fast path once it lands, or (it failed, or may
    /// not be served) `call` after all. Followers wait holding nothing, and
    /// the call they wait for never waits on a follower, so this cannot
    /// deadlock with the pool's bound.
    pub fn single_flight<E>(
        &self,
        key: Key,
        call: impl FnOnce() -> Result<ResolvedToken, E>,
    ) -> Result<Arc<ResolvedToken>, E> {
        let (flight, leader) = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            match inflight.get(&key) {
                Some(f) => (f.clone(), false),
                None => {
                    let f = Arc::new(Flight::default());
                    inflight.insert(key.clone(), f.clone());
                    (f, true)
                }
            }
        };
        let _landing = if leader {
            Some(Landing { cache: self, key: &key, flight })
        } else {
            let mut done = flight.done.lock().unwrap_or_else(|e| e.into_inner());
            while !*done {
                done = flight.landed.wait(done).unwrap_or_else(|e| e.into_inner());
            }
            drop(done);
            if let Some(t) = self.get(&key) {
                return Ok(t);
            }
            None
        };
        Ok(self.put(key.clone(), call()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(workspace: &str, secret: &str) -> ResolvedToken {
        ResolvedToken {
            access_token: SecretString::from(format!("tok-{secret}")),
            scope: String::new(),
            workspace_slug: "slug".into(),
            workspace_id: workspace.into(),
            secret_id: secret.into(),
            expires_at: String::new(),
            serve_until_ms: u64::MAX,
            refresh_ahead_at_ms: u64::MAX,
        }
    }

    fn keys(c: &TokenCache) -> Vec<Key> {
        let mut k: Vec<Key> = c.fast.read().unwrap().keys().cloned().collect();
        k.sort_by_key(|k| format!("{k:?}"));
        k
    }

    /// A workspace scope drops its own key and every key holding its token
    /// (a secret-id entry of the same workspace), and nothing else.
    #[test]
    fn a_scope_drops_entries_by_key_and_by_token() {
        let c = TokenCache::default();
        c.put(Key::Workspace("w1".into()), token("w1", "s1"));
        c.put(Key::Secret("s1".into()), token("w1", "s1"));
        c.put(Key::Workspace("w2".into()), token("w2", "s2"));
        c.put(Key::Secret("s3".into()), token("w3", "s3"));
        let before = c.generation();
        c.forget(Scope { workspace: Some("w1"), secret: None });
        assert_eq!(keys(&c), [Key::Secret("s3".into()), Key::Workspace("w2".into())]);
        assert_eq!(c.generation(), before + 1);
        c.forget(Scope { workspace: None, secret: Some("s2") });
        assert_eq!(keys(&c), [Key::Secret("s3".into())]);
        // A key naming the scope's workspace goes even when its token is of
        // another workspace (a registry row moved to another secret).
        c.put(Key::Workspace("w4".into()), token("w5", "s5"));
        c.forget(Scope { workspace: Some("w4"), secret: None });
        assert_eq!(keys(&c), [Key::Secret("s3".into())]);
    }

    #[test]
    fn holds_is_about_the_very_token() {
        let c = TokenCache::default();
        let a = c.put(Key::Workspace("w".into()), token("w", "s"));
        assert!(c.holds(Target::Workspace("w"), &a));
        assert!(!c.holds(Target::Secret("w"), &a));
        let b = c.put(Key::Workspace("w".into()), token("w", "s"));
        assert!(!c.holds(Target::Workspace("w"), &a));
        assert!(c.holds(Target::Workspace("w"), &b));
        c.clear();
        assert!(!c.holds(Target::Workspace("w"), &b));
    }
}
