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
    cache: Mutex<HashMap<String, (String, Option<Instant>)>>,
    locks: Mutex<HashMap<String, Arc<KeyLock>>>,
}

#[derive(Debug, Default)]
struct KeyLock {
    held: Mutex<bool>,
    freed: Condvar,
}

impl Coordination {
    pub fn cache_get(&self, key: &str) -> Option<String> {
        let mut cache = self.cache.lock().unwrap();
        match cache.get(key) {
            Some((_, Some(deadline))) if *deadline <= Instant::now() => {
                cache.remove(key);
                None
            }
            Some((v, _)) => Some(v.clone()),
            None => None,
        }
    }

    pub fn cache_set(&self, key: String, value: String, ttl: Duration) {
        let deadline = Instant::now().checked_add(ttl);
        self.cache.lock().unwrap().insert(key, (value, deadline));
    }

    pub fn cache_remove(&self, key: &str) {
        self.cache.lock().unwrap().remove(key);
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
        let entry = self.locks.lock().unwrap().get(key).cloned();
        if let Some(entry) = entry {
            *entry.held.lock().unwrap() = false;
            entry.freed.notify_one();
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
}
