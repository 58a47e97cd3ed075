//! In-process storage for tests and for callers that bring their own persistence.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::{lease_decision, now_ms, LeaseGrant, Leases, PutOutcome, Registry, RegistryRow, SecretStore, Versioned};
use crate::Error;

#[derive(Debug, Default)]
struct Lease {
    holder: String,
    expires_ms: u64,
    note: String,
}

#[derive(Default)]
pub struct MemoryBackend {
    secrets: Mutex<HashMap<String, (String, u64)>>,
    rows: Mutex<HashMap<String, RegistryRow>>,
    leases: Mutex<HashMap<String, Lease>>,
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend").finish_non_exhaustive()
    }
}

impl SecretStore for MemoryBackend {
    fn get(&self, id: &str) -> Result<Option<Versioned>, Error> {
        let map = self.secrets.lock().unwrap();
        Ok(map.get(id).map(|(v, n)| Versioned { value: v.clone(), version: n.to_string() }))
    }

    fn put(&self, id: &str, value: &str, expected: Option<&str>) -> Result<PutOutcome, Error> {
        let mut map = self.secrets.lock().unwrap();
        let current = map.get(id).map(|(_, n)| *n);
        if let Some(expected) = expected {
            if current.map(|n| n.to_string()).as_deref() != Some(expected) {
                return Ok(PutOutcome::Conflict);
            }
        }
        let next = current.unwrap_or(0) + 1;
        map.insert(id.to_owned(), (value.to_owned(), next));
        Ok(PutOutcome::Written(next.to_string()))
    }

    fn delete(&self, id: &str) -> Result<bool, Error> {
        Ok(self.secrets.lock().unwrap().remove(id).is_some())
    }
}

impl Registry for MemoryBackend {
    fn get(&self, workspace_id: &str) -> Result<Option<RegistryRow>, Error> {
        Ok(self.rows.lock().unwrap().get(workspace_id).cloned())
    }

    fn put(&self, row: &RegistryRow) -> Result<(), Error> {
        self.rows.lock().unwrap().insert(row.workspace_id.clone(), row.clone());
        Ok(())
    }

    fn list(&self) -> Result<Vec<RegistryRow>, Error> {
        let mut rows: Vec<_> = self.rows.lock().unwrap().values().cloned().collect();
        rows.sort_by(|a, b| a.workspace_slug.cmp(&b.workspace_slug));
        Ok(rows)
    }
}

impl Leases for MemoryBackend {
    fn try_lease(&self, key: &str, holder: &str, ttl: Duration, note: &str) -> Result<LeaseGrant, Error> {
        let mut leases = self.leases.lock().unwrap();
        let now = now_ms();
        let current = leases.get(key).map(|l| (l.holder.as_str(), l.expires_ms, l.note.as_str()));
        let Some(grant) = lease_decision(current, holder, now, ttl) else {
            return Ok(LeaseGrant { acquired: false, previous_note: None, written_version: None });
        };
        let expires_ms = now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        leases.insert(key.to_owned(), Lease { holder: holder.to_owned(), expires_ms, note: note.to_owned() });
        Ok(grant)
    }

    fn release_lease(&self, key: &str, holder: &str) -> Result<(), Error> {
        let mut leases = self.leases.lock().unwrap();
        if leases.get(key).is_some_and(|l| l.holder == holder) {
            leases.remove(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_far_future_lease_does_not_block_forever() {
        let b = MemoryBackend::default();
        b.leases
            .lock()
            .unwrap()
            .insert("k".into(), Lease { holder: "ghost".into(), expires_ms: u64::MAX, note: String::new() });
        assert!(b.try_lease("k", "me", Duration::from_secs(25), "").unwrap().acquired);
        assert!(!b.try_lease("k", "other", Duration::from_secs(25), "").unwrap().acquired, "ours now, within its ttl");
    }
}
