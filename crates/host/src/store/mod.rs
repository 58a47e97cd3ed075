//! Storage capabilities: where stored tokens and the workspace registry live.
//!
//! Values are opaque strings here; only the component knows their schema.

#[cfg(feature = "aws")]
mod aws;
mod deferred;
mod file;
mod memory;
pub(crate) mod wit;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "aws")]
pub use aws::AwsBackend;
pub use deferred::{DeferredRelease, HeldRelease};
pub use file::FileBackend;
pub use memory::MemoryBackend;

use crate::Error;

/// A stored value and the version it was read at.
#[derive(Clone, PartialEq, Eq)]
pub struct Versioned {
    pub value: String,
    pub version: String,
}

impl fmt::Debug for Versioned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Versioned").field("value", &"[redacted]").field("version", &self.version).finish()
    }
}

/// What a conditional write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Written(String),
    Conflict,
}

/// How a purge deletes a secret where the store can keep it recoverable
/// (Secrets Manager's recovery window, which `RestoreSecret` undoes). The
/// file and memory stores have no such thing and delete at once either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretDeletion {
    /// Scheduled for deletion after this many days (7..=30, as Secrets
    /// Manager allows); restorable until then.
    RecoveryWindow(u8),
    /// Gone at once (`ForceDeleteWithoutRecovery`).
    Immediate,
}

impl SecretDeletion {
    /// Secrets Manager's bounds for `RecoveryWindowInDays`.
    pub const WINDOW_DAYS: std::ops::RangeInclusive<u8> = 7..=30;

    /// A recovery window, or `InvalidInput` outside [`Self::WINDOW_DAYS`].
    pub fn window(days: u8) -> Result<Self, Error> {
        if Self::WINDOW_DAYS.contains(&days) {
            Ok(Self::RecoveryWindow(days))
        } else {
            Err(Error::InvalidInput(format!(
                "a recovery window is 7 to 30 days (Secrets Manager's limits), not {days}"
            )))
        }
    }
}

impl Default for SecretDeletion {
    /// Secrets Manager's shortest window: a mistaken purge can be undone for a week.
    fn default() -> Self {
        Self::RecoveryWindow(7)
    }
}

/// One workspace in the registry (the DynamoDB item layout of the old tooling,
/// plus two optional attributes old readers ignore).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryRow {
    pub workspace_id: String,
    pub workspace_slug: String,
    pub secret_id: String,
    pub status: String,
    /// Why the status is not `active`, where recorded: the OAuth error code
    /// of a `reauthorization_required` row. Attribute `status_reason`.
    pub status_reason: Option<String>,
    /// When the status last changed, where recorded (ISO-8601 UTC).
    /// Attribute `status_changed_at`.
    pub status_changed_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseGrant {
    pub acquired: bool,
    pub previous_note: Option<String>,
    /// The secret version the last holder wrote (see `Registry::finish_lease`);
    /// `None` when the store does not keep it.
    pub written_version: Option<String>,
}

/// Secret storage with versions for optimistic concurrency.
pub trait SecretStore: Send + Sync + fmt::Debug {
    fn get(&self, id: &str) -> Result<Option<Versioned>, Error>;
    /// With `expected_version`, writes only if the stored version is that one.
    fn put(&self, id: &str, value: &str, expected_version: Option<&str>) -> Result<PutOutcome, Error>;
    fn delete(&self, id: &str) -> Result<bool, Error>;
    /// Makes sure a later `put` of up to `bytes` for `id` can be stored; the
    /// component calls it before a refresh spends the refresh token. Stores
    /// whose writes cannot run out of space need not do anything.
    fn reserve(&self, id: &str, bytes: u64) -> Result<(), Error> {
        let _ = (id, bytes);
        Ok(())
    }
}

/// The refresh leases that coordinate processes: the half of a registry that
/// wrappers (deferred or observed releases) intercept.
pub trait Leases: Send + Sync + fmt::Debug {
    /// Takes `key` if it is free, expired, or already held by `holder`.
    fn try_lease(&self, key: &str, holder: &str, ttl: Duration, note: &str) -> Result<LeaseGrant, Error>;
    fn release_lease(&self, key: &str, holder: &str) -> Result<(), Error>;
    /// Releases `key` and, when given, keeps the secret version this holder
    /// wrote for the next taker (`LeaseGrant::written_version`): a taker that
    /// read that very version knows nobody refreshed since, and need not read
    /// the secret again. Stores where a read costs no round trip keep nothing.
    fn finish_lease(&self, key: &str, holder: &str, written_version: Option<&str>) -> Result<(), Error> {
        let _ = written_version;
        self.release_lease(key, holder)
    }
    /// Takes `key` only if it is free (released, not expired), its last
    /// holder recorded `seen_version` (nobody refreshed since the taker read
    /// it), and the registry still holds `row` with status `active` - all in
    /// one request, so a warm process need not read the row before a refresh.
    /// `false`: a condition did not hold and nothing was taken; the caller
    /// reads the row and takes the lease with `try_lease`. Stores where a
    /// read costs no round trip need not check anything and answer `false`.
    fn take_lease_if_unchanged(
        &self,
        key: &str,
        holder: &str,
        ttl: Duration,
        note: &str,
        seen_version: &str,
        row: &RegistryRow,
    ) -> Result<bool, Error> {
        let _ = (key, holder, ttl, note, seen_version, row);
        Ok(false)
    }
}

/// Rows per page of [`Registry::scan`] where the store chooses (file store).
pub const SCAN_PAGE: usize = 1000;

/// The workspace registry, and its refresh leases.
pub trait Registry: Leases {
    fn get(&self, workspace_id: &str) -> Result<Option<RegistryRow>, Error>;
    fn put(&self, row: &RegistryRow) -> Result<(), Error>;
    fn list(&self) -> Result<Vec<RegistryRow>, Error>;
    /// Every row, handed over a page at a time (a DynamoDB `Scan` page, up
    /// to [`SCAN_PAGE`] row files), so a fleet-wide listing holds one page
    /// in memory, not the fleet. Rows come in store order, each page sorted
    /// by slug; stores without pages hand over `list` as one page.
    fn scan(&self, page: &mut dyn FnMut(Vec<RegistryRow>) -> Result<(), Error>) -> Result<(), Error> {
        page(self.list()?)
    }
    /// Writes several rows (a bulk import's batch), each as `put` would.
    /// Not atomic: on an error some rows may be written. Stores whose `put`
    /// rewrites a shared file override it to rewrite it once.
    fn put_many(&self, rows: &[RegistryRow]) -> Result<(), Error> {
        rows.iter().try_for_each(|r| self.put(r))
    }
}

/// A wrapper of a registry's [`Leases`]: its rows are those of the registry
/// it wraps, untouched, so it writes out only the lease methods it changes.
pub trait LeaseLayer: Leases {
    fn rows(&self) -> &dyn Registry;
}

impl<T: LeaseLayer> Registry for T {
    fn get(&self, workspace_id: &str) -> Result<Option<RegistryRow>, Error> {
        self.rows().get(workspace_id)
    }
    fn put(&self, row: &RegistryRow) -> Result<(), Error> {
        self.rows().put(row)
    }
    fn list(&self) -> Result<Vec<RegistryRow>, Error> {
        self.rows().list()
    }
    fn scan(&self, page: &mut dyn FnMut(Vec<RegistryRow>) -> Result<(), Error>) -> Result<(), Error> {
        self.rows().scan(page)
    }
    fn put_many(&self, rows: &[RegistryRow]) -> Result<(), Error> {
        self.rows().put_many(rows)
    }
}

/// A registry that calls `before_release` with the lease key before each
/// release and is otherwise `inner`: how tests and benchmarks count or hold
/// releases.
pub struct ObservedReleases<F> {
    pub inner: Arc<dyn Registry>,
    pub before_release: F,
}

impl<F> fmt::Debug for ObservedReleases<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObservedReleases").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl<F: Fn(&str) + Send + Sync> LeaseLayer for ObservedReleases<F> {
    fn rows(&self) -> &dyn Registry {
        &*self.inner
    }
}

impl<F: Fn(&str) + Send + Sync> Leases for ObservedReleases<F> {
    fn try_lease(&self, key: &str, holder: &str, ttl: Duration, note: &str) -> Result<LeaseGrant, Error> {
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
        self.inner.take_lease_if_unchanged(key, holder, ttl, note, seen_version, row)
    }
    fn release_lease(&self, key: &str, holder: &str) -> Result<(), Error> {
        self.finish_lease(key, holder, None)
    }
    fn finish_lease(&self, key: &str, holder: &str, written_version: Option<&str>) -> Result<(), Error> {
        (self.before_release)(key);
        self.inner.finish_lease(key, holder, written_version)
    }
}

/// A secret store and a registry, usually one backend serving both.
#[derive(Debug, Clone)]
pub struct Backends {
    pub secrets: Arc<dyn SecretStore>,
    pub registry: Arc<dyn Registry>,
}

impl Backends {
    pub fn from_backend<B: SecretStore + Registry + 'static>(b: B) -> Self {
        let b = Arc::new(b);
        Self { secrets: b.clone(), registry: b }
    }

    /// `file:DIR` or `memory:`.
    pub fn open(uri: &str) -> Result<Self, Error> {
        Self::open_with(uri, None)
    }

    /// `file:DIR`, `memory:`, or `aws` (Secrets Manager + the DynamoDB
    /// `registry_table`).
    pub fn open_with(uri: &str, registry_table: Option<&str>) -> Result<Self, Error> {
        Self::open_deleting(uri, registry_table, SecretDeletion::default())
    }

    /// `open_with`, and purges delete as `deletion` says (where the store can
    /// keep a deleted secret recoverable).
    pub fn open_deleting(uri: &str, registry_table: Option<&str>, deletion: SecretDeletion) -> Result<Self, Error> {
        if uri == "aws" {
            return Self::open_aws(registry_table.unwrap_or_default(), deletion);
        }
        if let Some(dir) = uri.strip_prefix("file:") {
            if dir.is_empty() {
                return Err(Error::InvalidInput(
                    "file: store needs a directory, as in file:/var/lib/linear-oauth".into(),
                ));
            }
            Ok(Self::from_backend(FileBackend::open(dir)?))
        } else if uri == "memory:" {
            Ok(Self::from_backend(MemoryBackend::default()))
        } else {
            Err(Error::InvalidInput(format!("unknown store {uri:?}; use file:DIR, memory: or aws")))
        }
    }

    #[cfg(feature = "aws")]
    fn open_aws(registry_table: &str, deletion: SecretDeletion) -> Result<Self, Error> {
        Ok(Self::from_backend(AwsBackend::open(registry_table)?.with_deletion(deletion)))
    }

    #[cfg(not(feature = "aws"))]
    fn open_aws(_: &str, _: SecretDeletion) -> Result<Self, Error> {
        Err(Error::InvalidInput("this build has no aws store (cargo feature `aws` of linear-oauth-host)".into()))
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The lease decision the file and memory backends share. A lease is free
/// when absent, ours, expired, or when its expiry lies further ahead than the
/// `ttl` this taker asks for: leases use the wall clock, and an expiry far in
/// the future (a clock stepped back, a corrupt file) would otherwise block
/// every refresh forever. Taking over such a lease is logged as a warning.
/// How far apart the clocks of processes sharing a store may be (and how
/// much longer another process's lease ttl may be). A lease ending further
/// ahead than the taker's ttl plus this is corrupt (a clock jump, a bad
/// write) and is taken over instead of blocking every refresh.
pub(crate) const LEASE_CLOCK_SKEW_MS: u64 = 60_000;

pub(crate) fn lease_decision(
    current: Option<(&str, u64, &str)>,
    holder: &str,
    now: u64,
    ttl: Duration,
) -> Option<LeaseGrant> {
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    match current {
        None => Some(LeaseGrant { acquired: true, previous_note: None, written_version: None }),
        Some((h, _, _)) if h == holder => {
            Some(LeaseGrant { acquired: true, previous_note: None, written_version: None })
        }
        Some((h, expires, note)) if expires <= now || expires - now > ttl_ms.saturating_add(LEASE_CLOCK_SKEW_MS) => {
            if expires > now {
                tracing::warn!(
                    target: "linear_oauth",
                    holder = h,
                    remaining_ms = expires - now,
                    ttl_ms,
                    "a refresh lease expires further ahead than its ttl (clock change or corrupt lease); taking it over"
                );
            }
            Some(LeaseGrant {
                acquired: true,
                previous_note: Some(note.to_owned()).filter(|n| !n.is_empty()),
                written_version: None,
            })
        }
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_expiring_beyond_the_asked_ttl_is_taken_over() {
        let ttl = Duration::from_secs(25);
        let now = 1_000_000;
        let live = lease_decision(Some(("other", now + 20_000, "n")), "me", now, ttl);
        assert_eq!(live, None, "a lease within its ttl blocks");
        // Another machine's clock (or a longer ttl) may put it up to a minute further.
        let skewed = lease_decision(Some(("other", now + 25_000 + LEASE_CLOCK_SKEW_MS, "n")), "me", now, ttl);
        assert_eq!(skewed, None, "a lease within ttl + clock skew blocks");
        for far in [now + 25_001 + LEASE_CLOCK_SKEW_MS, now + 365 * 86_400_000, u64::MAX] {
            let g = lease_decision(Some(("other", far, "n")), "me", now, ttl).expect("taken over");
            assert_eq!(g, LeaseGrant { acquired: true, previous_note: Some("n".into()), written_version: None });
        }
    }
}
