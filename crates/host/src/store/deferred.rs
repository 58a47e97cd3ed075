//! Lease releases off the caller's critical path.
//!
//! Once a refresh is written back the caller has its token; giving the lease
//! back is one more store round trip (a DynamoDB `UpdateItem` on the aws
//! store) that nobody in this process waits for. Long-lived hosts hand it to
//! a worker thread ([`DeferredRelease::new`]); a short-lived one (the CLI)
//! holds it until its caller has the token - stdout written and closed - and
//! then sends it ([`DeferredRelease::held`], [`DeferredRelease::finish_pending`]).
//! Waiters elsewhere are not held up: they poll the secret and find the new
//! version as soon as it is written. A host frozen between calls (a Lambda)
//! may send a queued release only once thawed; one that never thaws (or dies
//! before sending) leaves the lease to expire, and the next taker reads the
//! secret again, as after a crash: nothing is lost but a round trip.

use std::collections::HashMap;
use std::fmt;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{LeaseGrant, LeaseLayer, Leases, Registry, RegistryRow};
use crate::Error;

type Release = (String, String, Option<String>);

/// A release [`DeferredRelease::held`] kept, for a host that sends it from
/// elsewhere (the CLI hands them to a process that outlives it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRelease {
    pub key: String,
    pub holder: String,
    pub written_version: Option<String>,
}

/// Wraps a registry; `release_lease` and `finish_lease` return at once and
/// run later, in order: on a worker thread, or (held) when the host calls
/// `finish_pending`. Dropping it sends what is queued or held.
pub struct DeferredRelease {
    inner: Arc<dyn Registry>,
    /// Held releases (the `held` mode), in the order they were asked for.
    held: Option<Mutex<Vec<Release>>>,
    /// Releases queued or in flight, by lease key: `try_lease` of that key
    /// waits for them, so a late release never frees a lease taken again.
    pending: Arc<(Mutex<HashMap<String, usize>>, Condvar)>,
    queue: Mutex<Option<mpsc::Sender<Release>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for DeferredRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeferredRelease").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl DeferredRelease {
    pub fn new(inner: Arc<dyn Registry>) -> Self {
        let (tx, rx) = mpsc::channel::<Release>();
        let pending: Arc<(Mutex<HashMap<String, usize>>, Condvar)> = Arc::default();
        let (registry, done) = (inner.clone(), pending.clone());
        let worker = std::thread::Builder::new()
            .name("linear-oauth-lease-release".into())
            .spawn(move || {
                for (key, holder, version) in rx {
                    if let Err(e) = registry.finish_lease(&key, &holder, version.as_deref()) {
                        tracing::warn!(target: "linear_oauth", lease = key, error = %e, "releasing a refresh lease failed; it will expire");
                    }
                    let (map, cv) = &*done;
                    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(n) = map.get_mut(&key) {
                        *n -= 1;
                        if *n == 0 {
                            map.remove(&key);
                        }
                    }
                    cv.notify_all();
                }
            })
            .ok();
        let queue = Mutex::new(worker.as_ref().map(|_| tx));
        Self { inner, held: None, pending, queue, worker: Mutex::new(worker) }
    }

    /// Holds every release until [`finish_pending`](Self::finish_pending) (or
    /// drop), for a short-lived host that answers its caller first. Taking a
    /// lease again in this process first sends the releases held for it.
    pub fn held(inner: Arc<dyn Registry>) -> Self {
        Self {
            inner,
            held: Some(Mutex::default()),
            pending: Arc::default(),
            queue: Mutex::new(None),
            worker: Mutex::new(None),
        }
    }

    /// Sends the held releases now, and waits until the queued ones landed.
    /// A failed release is logged: the lease then expires on its own.
    pub fn finish_pending(&self) {
        self.send_held();
        let (map, cv) = &*self.pending;
        let map = map.lock().unwrap_or_else(|e| e.into_inner());
        let _ = cv.wait_timeout_while(map, Duration::from_secs(30), |m| !m.is_empty());
    }

    /// Takes the held releases out, for the caller to send (with the inner
    /// registry's `finish_lease`, in order).
    pub fn take_held(&self) -> Vec<HeldRelease> {
        let Some(held) = &self.held else { return Vec::new() };
        std::mem::take(&mut *held.lock().unwrap_or_else(|e| e.into_inner()))
            .into_iter()
            .map(|(key, holder, written_version)| HeldRelease { key, holder, written_version })
            .collect()
    }

    fn send_held(&self) {
        if let Some(held) = &self.held {
            let releases = std::mem::take(&mut *held.lock().unwrap_or_else(|e| e.into_inner()));
            for (key, holder, version) in releases {
                self.send(&key, &holder, version.as_deref());
            }
        }
    }

    fn send(&self, key: &str, holder: &str, version: Option<&str>) {
        if let Err(e) = self.inner.finish_lease(key, holder, version) {
            tracing::warn!(target: "linear_oauth", lease = key, error = %e, "releasing a refresh lease failed; it will expire");
        }
    }

    /// Blocks until no release of `key` is queued or in flight (bounded: a
    /// stuck release is the store's timeout, then the lease's own expiry).
    fn settle(&self, key: &str) {
        if let Some(held) = &self.held {
            let mut held = held.lock().unwrap_or_else(|e| e.into_inner());
            let (mine, others): (Vec<Release>, Vec<Release>) =
                std::mem::take(&mut *held).into_iter().partition(|(k, _, _)| k == key);
            *held = others;
            drop(held);
            for (key, holder, version) in mine {
                self.send(&key, &holder, version.as_deref());
            }
            return;
        }
        let (map, cv) = &*self.pending;
        let map = map.lock().unwrap_or_else(|e| e.into_inner());
        let _ = cv.wait_timeout_while(map, Duration::from_secs(30), |m| m.contains_key(key));
    }
}

impl Drop for DeferredRelease {
    fn drop(&mut self) {
        self.send_held();
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(worker) = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = worker.join();
        }
    }
}

impl LeaseLayer for DeferredRelease {
    fn rows(&self) -> &dyn Registry {
        &*self.inner
    }
}

impl Leases for DeferredRelease {
    fn try_lease(&self, key: &str, holder: &str, ttl: Duration, note: &str) -> Result<LeaseGrant, Error> {
        self.settle(key);
        self.inner.try_lease(key, holder, ttl, note)
    }

    fn take_lease_if_unchanged(
        &self,
        key: &str,
        holder: &str,
        ttl: Duration,
        note: &str,
        seen_version: &str,
        row: &RegistryRow,
    ) -> Result<bool, Error> {
        self.settle(key);
        self.inner.take_lease_if_unchanged(key, holder, ttl, note, seen_version, row)
    }

    fn release_lease(&self, key: &str, holder: &str) -> Result<(), Error> {
        self.finish_lease(key, holder, None)
    }

    fn finish_lease(&self, key: &str, holder: &str, written_version: Option<&str>) -> Result<(), Error> {
        if let Some(held) = &self.held {
            let release = (key.to_owned(), holder.to_owned(), written_version.map(str::to_owned));
            held.lock().unwrap_or_else(|e| e.into_inner()).push(release);
            return Ok(());
        }
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = queue.as_ref() else {
            return self.inner.finish_lease(key, holder, written_version);
        };
        *self.pending.0.lock().unwrap_or_else(|e| e.into_inner()).entry(key.to_owned()).or_default() += 1;
        if tx.send((key.to_owned(), holder.to_owned(), written_version.map(str::to_owned))).is_err() {
            self.pending.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
            return self.inner.finish_lease(key, holder, written_version);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryBackend;
    use std::time::Instant;

    /// A registry whose releases take `delay`, like a store across a network.
    #[derive(Debug)]
    struct Slow {
        inner: MemoryBackend,
        delay: Duration,
    }

    impl LeaseLayer for Slow {
        fn rows(&self) -> &dyn Registry {
            &self.inner
        }
    }

    impl Leases for Slow {
        fn try_lease(&self, key: &str, holder: &str, ttl: Duration, note: &str) -> Result<LeaseGrant, Error> {
            self.inner.try_lease(key, holder, ttl, note)
        }
        fn release_lease(&self, key: &str, holder: &str) -> Result<(), Error> {
            std::thread::sleep(self.delay);
            self.inner.release_lease(key, holder)
        }
    }

    #[test]
    fn releases_return_at_once_and_land_before_the_key_is_taken_again() {
        let slow = Arc::new(Slow { inner: MemoryBackend::default(), delay: Duration::from_millis(300) });
        let d = DeferredRelease::new(slow.clone());
        let ttl = Duration::from_secs(25);
        assert!(d.try_lease("k", "a", ttl, "").unwrap().acquired);
        let t = Instant::now();
        d.finish_lease("k", "a", Some("v2")).unwrap();
        assert!(t.elapsed() < Duration::from_millis(150), "the caller does not wait for the release");
        // Another holder's take waits for the queued release instead of finding the lease held.
        assert!(d.try_lease("k", "b", ttl, "").unwrap().acquired);
        assert!(t.elapsed() >= Duration::from_millis(300));
        // Dropping sends what is queued.
        d.finish_lease("k", "b", None).unwrap();
        drop(d);
        assert!(slow.try_lease("k", "c", ttl, "").unwrap().acquired, "released on drop");
    }

    #[test]
    fn held_releases_wait_for_finish_pending_unless_the_key_is_taken_again() {
        let inner = Arc::new(MemoryBackend::default());
        let d = DeferredRelease::held(inner.clone());
        let ttl = Duration::from_secs(25);
        assert!(d.try_lease("k", "a", ttl, "").unwrap().acquired);
        assert!(d.try_lease("j", "a", ttl, "").unwrap().acquired);
        d.finish_lease("k", "a", None).unwrap();
        d.finish_lease("j", "a", None).unwrap();
        assert!(!inner.try_lease("k", "x", ttl, "").unwrap().acquired, "held, not sent");
        // Taking `k` again in this process sends its held release first; `j` stays held.
        assert!(d.try_lease("k", "b", ttl, "").unwrap().acquired);
        assert!(!inner.try_lease("j", "x", ttl, "").unwrap().acquired);
        d.finish_lease("k", "b", None).unwrap();
        d.finish_pending();
        assert!(inner.try_lease("j", "x", ttl, "").unwrap().acquired, "sent by finish_pending");
        assert!(inner.try_lease("k", "x", ttl, "").unwrap().acquired);
        inner.release_lease("k", "x").unwrap();
        // Dropping sends what is still held.
        let d = DeferredRelease::held(inner.clone());
        assert!(d.try_lease("k", "c", ttl, "").unwrap().acquired);
        d.release_lease("k", "c").unwrap();
        drop(d);
        assert!(inner.try_lease("k", "y", ttl, "").unwrap().acquired, "released on drop");
    }
}
