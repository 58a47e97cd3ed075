//! The host's fast path: resolved tokens by workspace or secret id, each
//! served without I/O until its own serve-until instant, and the one rule for
//! which of them a call that replaced or ended a token makes every cache drop.
//!
//! Bindings that keep objects of their own (Node's token objects and hot
//! maps) do not repeat the rule: they watch [`TokenCache::generation`] and ask
//! [`TokenCache::holds`] whether an object's token is still the one served.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
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

impl Key {
    pub fn target(&self) -> Target<'_> {
        match self {
            Key::Workspace(w) => Target::Workspace(w),
            Key::Secret(s) => Target::Secret(s),
        }
    }
}

/// Which of its token's ids an entry of the fast map is found by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum By {
    Workspace,
    Secret,
}

/// An entry of the fast map, keyed by its token's own workspace or secret
/// id: the map keeps no second copy of the id (a fleet's resolver holds
/// 100,000 of them), and a lookup by `&str` allocates nothing.
#[derive(Debug, Clone)]
struct Slot {
    by: By,
    token: Arc<ResolvedToken>,
}

/// What the fast map is looked up by: a [`Slot`], or an id to find one.
trait Lookup {
    fn id(&self) -> (By, &str);
}

#[cfg(test)]
impl Slot {
    fn target(&self) -> Target<'_> {
        match self.id() {
            (By::Workspace, w) => Target::Workspace(w),
            (By::Secret, s) => Target::Secret(s),
        }
    }
}

impl Lookup for Slot {
    fn id(&self) -> (By, &str) {
        match self.by {
            By::Workspace => (By::Workspace, self.token.workspace_id()),
            By::Secret => (By::Secret, self.token.secret_id()),
        }
    }
}

impl Lookup for Target<'_> {
    fn id(&self) -> (By, &str) {
        match *self {
            Target::Workspace(w) => (By::Workspace, w),
            Target::Secret(s) => (By::Secret, s),
        }
    }
}

impl<'a> Borrow<dyn Lookup + 'a> for Slot {
    fn borrow(&self) -> &(dyn Lookup + 'a) {
        self
    }
}

impl Hash for dyn Lookup + '_ {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.id().hash(h);
    }
}

impl PartialEq for dyn Lookup + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for dyn Lookup + '_ {}

// As `dyn Lookup` hashes and compares, which `Borrow` requires.
impl Hash for Slot {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.id().hash(h);
    }
}

impl PartialEq for Slot {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for Slot {}

type FastMap = HashMap<Slot, u64>;

/// The entry of `target` in `fast`, if any.
fn slot<'m>(fast: &'m FastMap, target: Target<'_>) -> Option<(&'m Slot, &'m u64)> {
    fast.get_key_value(&target as &dyn Lookup)
}

/// What a call that replaced or ended tokens makes the caches drop: every
/// entry keyed by, or holding a token of, the workspace or the secret named.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Scope<'a> {
    pub workspace: Option<&'a str>,
    pub secret: Option<&'a str>,
}

impl Scope<'_> {
    /// An entry is keyed by one of its token's ids, so naming the token's
    /// workspace or secret covers its key too.
    fn covers(&self, t: &ResolvedToken) -> bool {
        self.workspace == Some(t.workspace_id()) || self.secret == Some(t.secret_id())
    }
}

/// An uncached resolve in flight; later callers of its key wait for it.
#[derive(Debug, Default)]
struct Flight {
    done: Mutex<bool>,
    landed: Condvar,
}

#[derive(Debug)]
pub(crate) struct TokenCache {
    /// Each token with the order it was stored in (for eviction).
    fast: RwLock<FastMap>,
    /// `cache_max_entries`: past it, the oldest entries go.
    max: usize,
    stored: AtomicU64,
    /// Counts [`TokenCache::forget`]s: a binding's copy made before the
    /// current value may name a token this cache no longer serves.
    generation: AtomicU64,
    /// Counts the drops a result from before them must not undo (forgets,
    /// not evictions): see [`TokenCache::put`].
    forgets: AtomicU64,
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
    pub fn new(max: usize) -> Self {
        Self {
            fast: RwLock::default(),
            max: max.max(1),
            stored: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            forgets: AtomicU64::new(0),
            inflight: Mutex::default(),
        }
    }

    /// The token under `target` if it may still be served.
    pub fn get(&self, target: Target<'_>) -> Option<Arc<ResolvedToken>> {
        let t = slot(&self.fast.read().unwrap(), target).map(|(s, _)| s.token.clone())?;
        (now_ms() < t.serve_until_ms).then_some(t)
    }

    /// Drops what `scope` covers, then stores `t` under `key` unless tokens
    /// were forgotten since `since` ([`TokenCache::forgets`] read before the
    /// call that made `t`): a revoke or invalidate that ran meanwhile is not undone by
    /// a result from before it. The caller gets `t` either way.
    ///
    /// Past `max` entries, first those no longer served go, then the oldest,
    /// down to 7/8 of `max` (so eviction runs once per `max / 8` stores, not
    /// on every one); the bindings follow through the generation, as after a
    /// [`TokenCache::forget`].
    pub fn put(&self, scope: Scope<'_>, key: Key, t: ResolvedToken, since: u64) -> Arc<ResolvedToken> {
        let t = Arc::new(t);
        let order = self.stored.fetch_add(1, Ordering::Relaxed);
        let mut fast = self.fast.write().unwrap();
        // Read and moved under the write lock, as `forget` moves it.
        let dropped_meanwhile = self.forgets.load(Ordering::Acquire) != since;
        if scope.workspace.is_some() || scope.secret.is_some() {
            fast.retain(|s, _| !scope.covers(&s.token));
            self.moved(true);
        }
        let keyed = key.target();
        let new = Slot { by: keyed.id().0, token: t.clone() };
        // A token of another id than its key (the component never answers
        // one) is served, but not kept under an id it does not carry.
        if dropped_meanwhile || new.id() != keyed.id() {
            return t;
        }
        // `insert` would keep the old key, which is the old token.
        fast.remove(&new);
        fast.insert(new, order);
        if fast.len() > self.max {
            let now = now_ms();
            let keep = self.max - self.max / 8;
            // Expired entries rank first (0), then by age.
            let rank = |s: &Slot, order: &u64| Some(if now < s.token.serve_until_ms { order + 1 } else { 0 });
            crate::bound::trim(&mut fast, keep, rank);
            self.moved(false);
        }
        t
    }

    pub fn len(&self) -> usize {
        self.fast.read().unwrap().len()
    }

    /// Drops every entry `scope` covers: with eviction past `max`, the only
    /// way entries go.
    pub fn forget(&self, scope: Scope<'_>) {
        let mut fast = self.fast.write().unwrap();
        fast.retain(|s, _| !scope.covers(&s.token));
        self.moved(true);
    }

    /// Entries went (called with the map's write lock held): bindings follow
    /// every move; `forget` ones also stop older results from being cached.
    fn moved(&self, forget: bool) {
        self.generation.fetch_add(1, Ordering::Release);
        if forget {
            self.forgets.fetch_add(1, Ordering::Release);
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// What a caller reads before a call whose result it will `put`.
    pub fn forgets(&self) -> u64 {
        self.forgets.load(Ordering::Acquire)
    }

    /// Whether the token of `serial` is still the one cached under `target`
    /// (served or not): a binding's object made from it may be kept.
    pub fn holds(&self, target: Target<'_>, serial: u64) -> bool {
        slot(&self.fast.read().unwrap(), target).is_some_and(|(s, _)| s.token.serial() == serial)
    }

    /// The access token cached for `secret_id`, if any (to tell whether a
    /// background refresh changed it).
    pub fn token_of(&self, secret_id: &str) -> SecretString {
        let fast = self.fast.read().unwrap();
        fast.keys()
            .find(|s| s.token.secret_id() == secret_id)
            .map(|s| s.token.access_token().into())
            .unwrap_or_default()
    }

    /// A background refresh's result: every entry of the secret gets it,
    /// unless tokens were dropped since `since` (see [`TokenCache::put`]).
    pub fn replace_secret(&self, secret_id: &str, t: Arc<ResolvedToken>, since: u64) {
        let order = self.stored.fetch_add(1, Ordering::Relaxed);
        let mut fast = self.fast.write().unwrap();
        if self.forgets() != since {
            return;
        }
        let old: Vec<(Slot, u64)> = fast.extract_if(|s, _| s.token.secret_id() == secret_id).collect();
        for (s, kept) in old {
            fast.insert(Slot { by: s.by, token: t.clone() }, kept);
        }
        if t.secret_id() == secret_id && slot(&fast, Target::Secret(secret_id)).is_none() {
            fast.insert(Slot { by: By::Secret, token: t }, order);
        }
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
            if let Some(t) = self.get(key.target()) {
                return Ok(t);
            }
            None
        };
        let since = self.forgets();
        Ok(self.put(Scope::default(), key.clone(), call()?, since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(workspace: &str, secret: &str) -> ResolvedToken {
        ResolvedToken::from(crate::bindings::resolver::ResolvedToken {
            access_token: format!("tok-{secret}"),
            scope: String::new(),
            workspace_slug: "slug".into(),
            workspace_id: workspace.into(),
            secret_id: secret.into(),
            expires_at: String::new(),
            serve_until_ms: u64::MAX,
            refresh_ahead_at_ms: u64::MAX,
        })
    }

    fn put(c: &TokenCache, key: Key, t: ResolvedToken) -> Arc<ResolvedToken> {
        c.put(Scope::default(), key, t, c.forgets())
    }

    fn keys(c: &TokenCache) -> Vec<Key> {
        let mut k: Vec<Key> = c.fast.read().unwrap().keys().map(|s| Key::from(s.target())).collect();
        k.sort_by_key(|k| format!("{k:?}"));
        k
    }

    /// A workspace scope drops its own key and every key holding its token
    /// (a secret-id entry of the same workspace), and nothing else.
    #[test]
    fn a_scope_drops_entries_by_key_and_by_token() {
        let c = TokenCache::new(100);
        put(&c, Key::Workspace("w1".into()), token("w1", "s1"));
        put(&c, Key::Secret("s1".into()), token("w1", "s1"));
        put(&c, Key::Workspace("w2".into()), token("w2", "s2"));
        put(&c, Key::Secret("s3".into()), token("w3", "s3"));
        let before = c.generation();
        c.forget(Scope { workspace: Some("w1"), secret: None });
        assert_eq!(keys(&c), [Key::Secret("s3".into()), Key::Workspace("w2".into())]);
        assert_eq!(c.generation(), before + 1);
        c.forget(Scope { workspace: None, secret: Some("s2") });
        assert_eq!(keys(&c), [Key::Secret("s3".into())]);
        // A token under a key it does not carry is served, not kept.
        let odd = put(&c, Key::Workspace("w4".into()), token("w5", "s5"));
        assert_eq!(odd.workspace_id(), "w5");
        assert_eq!(keys(&c), [Key::Secret("s3".into())]);
    }

    #[test]
    fn holds_is_about_the_very_token() {
        let c = TokenCache::new(100);
        let a = put(&c, Key::Workspace("w".into()), token("w", "s"));
        assert!(c.holds(Target::Workspace("w"), a.serial()));
        assert!(!c.holds(Target::Secret("w"), a.serial()));
        let b = put(&c, Key::Workspace("w".into()), token("w", "s"));
        assert!(!c.holds(Target::Workspace("w"), a.serial()));
        assert!(c.holds(Target::Workspace("w"), b.serial()));
        c.forget(Scope { workspace: None, secret: Some("s") });
        assert!(!c.holds(Target::Workspace("w"), b.serial()));
    }

    /// Past `max`, the entries no longer served go first, then the oldest,
    /// down to 7/8 of `max`; each eviction moves the generation.
    #[test]
    fn the_cache_stays_under_its_bound_dropping_the_dead_then_the_oldest() {
        let c = TokenCache::new(16);
        let mut expired = token("w-old", "s-old");
        expired.serve_until_ms = 0;
        put(&c, Key::Secret("s-old".into()), expired);
        for i in 0..16 {
            put(&c, Key::Workspace(format!("w{i}")), token(&format!("w{i}"), &format!("s{i}")));
        }
        // 17 entries > 16: down to 14, the expired one first, then w0 and w1.
        assert_eq!(c.len(), 14);
        assert_eq!(c.generation(), 1);
        let left = keys(&c);
        assert!(!left.contains(&Key::Secret("s-old".into())));
        assert!(!left.contains(&Key::Workspace("w0".into())) && !left.contains(&Key::Workspace("w1".into())));
        assert!(left.contains(&Key::Workspace("w2".into())) && left.contains(&Key::Workspace("w15".into())));
        for i in 16..1000 {
            put(&c, Key::Workspace(format!("w{i}")), token(&format!("w{i}"), &format!("s{i}")));
            assert!(c.len() <= 16);
        }
        assert!(c.get(Target::Workspace("w999")).is_some());
    }

    /// A result from before a drop is handed back but not cached: a revoke
    /// during an uncached resolve does not bring the revoked token back.
    #[test]
    fn a_token_from_before_a_drop_is_not_cached() {
        let c = TokenCache::new(100);
        let since = c.forgets();
        c.forget(Scope { workspace: Some("w"), secret: None });
        let t = c.put(Scope::default(), Key::Workspace("w".into()), token("w", "s"), since);
        assert_eq!(t.workspace_id(), "w");
        assert!(c.get(Target::Workspace("w")).is_none());
        c.replace_secret("s", t, since);
        assert!(c.get(Target::Secret("s")).is_none());
        // With no drop in between it is cached, and the scope given is dropped first.
        put(&c, Key::Workspace("other".into()), token("other", "s2"));
        let since = c.forgets();
        c.put(Scope { workspace: Some("other"), secret: None }, Key::Workspace("w".into()), token("w", "s"), since);
        assert!(c.get(Target::Workspace("w")).is_some());
        assert!(c.get(Target::Workspace("other")).is_none());
        // An eviction meanwhile is no drop of that kind: the result is cached.
        let since = c.forgets();
        let generation = c.generation();
        for i in 0..200 {
            put(&c, Key::Secret(format!("s{i}")), token("x", &format!("s{i}")));
        }
        assert!(c.generation() > generation, "evictions move the generation");
        c.put(Scope::default(), Key::Workspace("late".into()), token("late", "sl"), since);
        assert!(c.get(Target::Workspace("late")).is_some());
    }
}
