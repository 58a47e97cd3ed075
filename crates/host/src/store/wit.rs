//! The component's `secret-store` and `registry` imports over `Backends`.
//! Errors cross as strings; the component maps them to its `store` error.

use std::time::Duration;

use wasmtime::component::HasData;

use crate::bindings;
use crate::store::{Backends, PutOutcome, RegistryRow};
use crate::Error;

/// What these imports need of an instance's state (`ctx::link` builds it).
pub(crate) struct StoreView<'a> {
    pub backends: &'a Backends,
    /// Leases taken during the current call, released if it traps.
    pub leases: &'a mut Vec<(String, String)>,
}

/// `HasData` for `add_to_linker`: the imports see a [`StoreView`].
pub(crate) struct Storage;

impl HasData for Storage {
    type Data<'a> = StoreView<'a>;
}

fn store_err(e: Error) -> String {
    match e {
        Error::Store(m) => m,
        other => other.to_string(),
    }
}

impl bindings::secret_store::Host for StoreView<'_> {
    fn get(&mut self, id: String) -> std::result::Result<Option<bindings::secret_store::Versioned>, String> {
        let v = self.backends.secrets.get(&id).map_err(store_err)?;
        Ok(v.map(|v| bindings::secret_store::Versioned { value: v.value, version: v.version }))
    }

    fn put(
        &mut self,
        id: String,
        value: String,
        expected_version: Option<String>,
    ) -> std::result::Result<bindings::secret_store::PutOutcome, String> {
        Ok(match self.backends.secrets.put(&id, &value, expected_version.as_deref()).map_err(store_err)? {
            PutOutcome::Written(v) => bindings::secret_store::PutOutcome::Written(v),
            PutOutcome::Conflict => bindings::secret_store::PutOutcome::Conflict,
        })
    }

    fn delete(&mut self, id: String) -> std::result::Result<bool, String> {
        self.backends.secrets.delete(&id).map_err(store_err)
    }

    fn reserve(&mut self, id: String, bytes: u64) -> std::result::Result<(), String> {
        self.backends.secrets.reserve(&id, bytes).map_err(store_err)
    }
}

impl From<RegistryRow> for bindings::registry::Row {
    fn from(r: RegistryRow) -> Self {
        Self {
            workspace_id: r.workspace_id,
            workspace_slug: r.workspace_slug,
            secret_id: r.secret_id,
            status: r.status,
            status_reason: r.status_reason,
            status_changed_at: r.status_changed_at,
        }
    }
}

impl From<bindings::registry::Row> for RegistryRow {
    fn from(r: bindings::registry::Row) -> Self {
        Self {
            workspace_id: r.workspace_id,
            workspace_slug: r.workspace_slug,
            secret_id: r.secret_id,
            status: r.status,
            status_reason: r.status_reason,
            status_changed_at: r.status_changed_at,
        }
    }
}

impl bindings::registry::Host for StoreView<'_> {
    fn get(&mut self, workspace_id: String) -> std::result::Result<Option<bindings::registry::Row>, String> {
        Ok(self.backends.registry.get(&workspace_id).map_err(store_err)?.map(Into::into))
    }

    fn put(&mut self, r: bindings::registry::Row) -> std::result::Result<(), String> {
        self.backends.registry.put(&r.into()).map_err(store_err)
    }

    fn list(&mut self) -> std::result::Result<Vec<bindings::registry::Row>, String> {
        Ok(self.backends.registry.list().map_err(store_err)?.into_iter().map(Into::into).collect())
    }

    fn try_lease(
        &mut self,
        key: String,
        holder: String,
        ttl_ms: u64,
        note: String,
    ) -> std::result::Result<bindings::registry::LeaseGrant, String> {
        let g =
            self.backends.registry.try_lease(&key, &holder, Duration::from_millis(ttl_ms), &note).map_err(store_err)?;
        if g.acquired && !self.leases.iter().any(|(k, h)| *k == key && *h == holder) {
            self.leases.push((key, holder));
        }
        Ok(bindings::registry::LeaseGrant {
            acquired: g.acquired,
            previous_note: g.previous_note,
            written_version: g.written_version,
        })
    }

    fn take_lease_if_unchanged(
        &mut self,
        key: String,
        holder: String,
        ttl_ms: u64,
        note: String,
        seen_version: String,
        r: bindings::registry::Row,
    ) -> std::result::Result<bool, String> {
        let taken = self
            .backends
            .registry
            .take_lease_if_unchanged(&key, &holder, Duration::from_millis(ttl_ms), &note, &seen_version, &r.into())
            .map_err(store_err)?;
        if taken && !self.leases.iter().any(|(k, h)| *k == key && *h == holder) {
            self.leases.push((key, holder));
        }
        Ok(taken)
    }

    fn release_lease(
        &mut self,
        key: String,
        holder: String,
        written_version: Option<String>,
    ) -> std::result::Result<(), String> {
        self.backends.registry.finish_lease(&key, &holder, written_version.as_deref()).map_err(store_err)?;
        self.leases.retain(|(k, h)| !(*k == key && *h == holder));
        Ok(())
    }
}
