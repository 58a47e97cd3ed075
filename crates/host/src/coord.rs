//! Per-process state shared by every component instance: the cache the
//! component fills and the per-key locks that make a refresh single-flight.
//! Hints (`recall`/`remember`) go to the resolver's `HintStore` (hints.rs).

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::HasData;

use crate::bindings;
use crate::hints::HintStore;

/// This resolver's name on the leases it takes: 128 random bits in hex. A pid
/// and a counter coincide across containers and Lambdas (every one is pid 1
/// or 8 and starts at 0), and two holders with one name would both think they
/// hold the lease.
pub(crate) fn holder_id() -> crate::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| crate::Error::Internal(format!("no OS randomness for a lease holder id: {e}")))?;
    Ok(crate::files::hex(&bytes))
}

#[derive(Debug, Default)]
pub(crate) struct Coordination {
    cache: Mutex<Cache>,
    /// One entry per key locked now or waited on; removed with the last user.
    locks: Mutex<HashMap<String, Arc<KeyLock>>>,
}

/// The component's cache. Every entry but an unsaved token has a deadline,
/// at most `cache-ttl` (or a `Retry-After`) away, so dropping the expired
/// ones now and then keeps it at the working set of the last minute or so.
/// A process that sees more workspaces within that minute than
/// `cache_max_entries` is also bounded by count: past
/// `cache_max_entries` x [`KEYS_PER_WORKSPACE`] live entries, those soonest
/// to expire go first (each is a copy of the store's, read again when
/// missed); an unsaved token never goes.
#[derive(Debug)]
struct Cache {
    map: HashMap<String, (String, Option<Instant>)>,
    /// Expired entries are dropped once the map reaches this size.
    purge_at: usize,
    /// Most entries kept (see above).
    max: usize,
}

impl Default for Cache {
    fn default() -> Self {
        Self::bounded(usize::MAX)
    }
}

impl Cache {
    fn bounded(max: usize) -> Self {
        Self { map: HashMap::new(), purge_at: 0, max }
    }
}

/// Cache keys the component sets per workspace (its token, its row, which
/// secret holds its token) and one to spare.
pub(crate) const KEYS_PER_WORKSPACE: usize = 4;

/// The smallest cache worth a purge.
const PURGE_FLOOR: usize = 1024;

#[derive(Debug, Default)]
struct KeyLock {
    held: Mutex<bool>,
    freed: Condvar,
}

impl Coordination {
    /// At most `max_entries` cache entries with a deadline.
    pub fn bounded(max_entries: usize) -> Self {
        Self { cache: Mutex::new(Cache::bounded(max_entries)), locks: Mutex::default() }
    }

    pub fn cache_get(&self, key: &str) -> Option<String> {
        let map = &mut self.cache.lock().unwrap().map;
        match map.get(key) {
            Some((_, Some(deadline))) if *deadline <= Instant::now() => {
                map.remove(key);
                None
            }
            Some((v, _)) => Some(v.clone()),
            None => None,
        }
    }

    pub fn cache_set(&self, key: String, value: String, ttl: Duration) {
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap();
        cache.map.insert(key, (value, now.checked_add(ttl)));
        if cache.map.len() >= cache.purge_at.min(cache.max) {
            cache.map.retain(|_, (_, deadline)| deadline.is_none_or(|d| d > now));
            if cache.map.len() > cache.max {
                // Down to 7/8 of the bound, so the next trim is many inserts away.
                let keep = cache.max - cache.max / 8;
                let rank = |_: &String, (_, d): &(String, Option<Instant>)| {
                    d.map(|d| u64::try_from(d.saturating_duration_since(now).as_millis()).unwrap_or(u64::MAX))
                };
                crate::bound::trim(&mut cache.map, keep, rank);
            }
            cache.purge_at = crate::bound::next_purge(cache.map.len(), PURGE_FLOOR);
        }
    }

    pub fn cache_remove(&self, key: &str) {
        self.cache.lock().unwrap().map.remove(key);
    }

    pub fn locks_len(&self) -> usize {
        self.locks.lock().unwrap().len()
    }

    /// Entries in the component's cache (expired ones not yet purged included).
    pub fn cache_len(&self) -> usize {
        self.cache.lock().unwrap().map.len()
    }

    /// Blocks until `key` is ours or `timeout` passes. Other keys never wait.
    pub fn lock(&self, key: &str, timeout: Duration) -> bool {
        let entry = self.locks.lock().unwrap().entry(key.to_owned()).or_default().clone();
        let deadline = Instant::now() + timeout;
        let mut held = entry.held.lock().unwrap();
        while *held {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            held = entry.freed.wait_timeout(held, deadline - now).unwrap().0;
        }
        *held = true;
        true
    }

    pub fn unlock(&self, key: &str) {
        let mut locks = self.locks.lock().unwrap();
        if let Some(entry) = locks.get(key).cloned() {
            *entry.held.lock().unwrap() = false;
            entry.freed.notify_one();
            // Nobody waits (only the map and `entry` hold it; a waiter
            // clones it under the map's lock, which is ours): forget the key.
            if Arc::strong_count(&entry) == 2 {
                locks.remove(key);
            }
        }
    }
}

/// What the `coordination` import needs of an instance's state.
pub(crate) struct CoordView<'a> {
    pub coord: &'a Coordination,
    /// Non-secret hints the host may keep across processes.
    pub hints: &'a dyn HintStore,
    /// Locks the instance holds; released if it traps mid-call.
    pub held: &'a mut Vec<String>,
}

/// `HasData` for `add_to_linker`: the import sees a [`CoordView`].
pub(crate) struct Coord;

impl HasData for Coord {
    type Data<'a> = CoordView<'a>;
}

/// The component's `coordination` import.
impl bindings::coordination::Host for CoordView<'_> {
    fn cache_get(&mut self, key: String) -> Option<String> {
        self.coord.cache_get(&key)
    }
    fn cache_set(&mut self, key: String, value: String, ttl_ms: u64) {
        self.coord.cache_set(key, value, Duration::from_millis(ttl_ms));
    }
    fn cache_remove(&mut self, key: String) {
        self.coord.cache_remove(&key);
    }
    fn lock(&mut self, key: String, timeout_ms: u64) -> bool {
        let ok = self.coord.lock(&key, Duration::from_millis(timeout_ms));
        if ok {
            self.held.push(key);
        }
        ok
    }
    fn unlock(&mut self, key: String) {
        if let Some(i) = self.held.iter().position(|k| *k == key) {
            self.held.swap_remove(i);
            self.coord.unlock(&key);
        }
    }
    fn recall(&mut self, key: String) -> Option<String> {
        self.hints.recall(&key)
    }
    fn remember(&mut self, key: String, value: Option<String>) {
        self.hints.remember(&key, value.as_deref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_expires() {
        let c = Coordination::default();
        c.cache_set("a".into(), "1".into(), Duration::from_millis(30));
        c.cache_set("b".into(), "2".into(), Duration::MAX);
        assert_eq!(c.cache_get("a").as_deref(), Some("1"));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(c.cache_get("a"), None);
        assert_eq!(c.cache_get("b").as_deref(), Some("2"));
    }

    #[test]
    fn locks_are_per_key_and_time_out() {
        let c = Arc::new(Coordination::default());
        assert!(c.lock("x", Duration::ZERO));
        assert!(c.lock("y", Duration::ZERO), "another key is not blocked");
        assert!(!c.lock("x", Duration::from_millis(20)));
        let c2 = c.clone();
        let t = std::thread::spawn(move || c2.lock("x", Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(20));
        c.unlock("x");
        assert!(t.join().unwrap());
    }

    /// Expired entries are dropped once the cache doubles; unsaved tokens
    /// (no deadline) and live entries stay.
    #[test]
    fn the_cache_drops_expired_entries_as_it_grows() {
        let c = Coordination::default();
        c.cache_set("unsaved:s".into(), "t".into(), Duration::MAX);
        for i in 0..5000 {
            c.cache_set(format!("tok:{i}"), "v".into(), Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(5));
        // Enough live entries to pass the next purge point whatever it is
        // (at most twice the 5,001 entries of before).
        for i in 0..12_000 {
            c.cache_set(format!("row:{i}"), "v".into(), Duration::from_secs(60));
        }
        assert_eq!(c.cache_len(), 12_000 + 1, "every expired entry went, nothing else");
        assert_eq!(c.cache_get("unsaved:s").as_deref(), Some("t"));
        assert_eq!(c.cache_get("row:0").as_deref(), Some("v"));
    }

    /// Past its bound the cache drops the entries soonest to expire, never
    /// one without a deadline, and stays near the bound however many come.
    #[test]
    fn the_cache_is_bounded_by_count_too() {
        let c = Coordination::bounded(1000);
        c.cache_set("unsaved:s".into(), "t".into(), Duration::MAX);
        for i in 0..20_000u64 {
            c.cache_set(format!("tok:{i}"), "v".into(), Duration::from_secs(60 + i));
            assert!(c.cache_len() <= 1001, "{i}: {}", c.cache_len());
        }
        assert_eq!(c.cache_get("unsaved:s").as_deref(), Some("t"));
        assert_eq!(c.cache_get("tok:19999").as_deref(), Some("v"), "the latest to expire stays");
        assert_eq!(c.cache_get("tok:0"), None, "the soonest to expire went");
    }

    #[test]
    fn a_key_lock_is_forgotten_with_its_last_user() {
        let c = Arc::new(Coordination::default());
        for i in 0..100 {
            assert!(c.lock(&format!("refresh:{i}"), Duration::ZERO));
            c.unlock(&format!("refresh:{i}"));
        }
        assert_eq!(c.locks_len(), 0);
        // A waiter keeps the key's lock alive across the holder's unlock.
        assert!(c.lock("k", Duration::ZERO));
        let c2 = c.clone();
        let waiter = std::thread::spawn(move || {
            let got = c2.lock("k", Duration::from_secs(5));
            c2.unlock("k");
            got
        });
        std::thread::sleep(Duration::from_millis(20));
        c.unlock("k");
        assert!(waiter.join().unwrap());
        assert_eq!(c.locks_len(), 0);
    }
}
