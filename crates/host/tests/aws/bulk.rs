//! Import and export on the aws store (moto): the cases tests/bulk.rs runs
//! on the file and memory stores, each on a fresh registry table and with
//! its secrets under a name prefix of its own (moto's secrets are shared).

use std::sync::Arc;

use linear_oauth_host::store::SecretStore;
use linear_oauth_host::{Backends, Error, PutOutcome, Versioned};

use super::{backend, table};

#[path = "../bulk_cases/mod.rs"]
mod cases;

/// The secrets of `inner` under `<ns>/`.
#[derive(Debug)]
struct Namespaced {
    ns: String,
    inner: Arc<dyn SecretStore>,
}

impl Namespaced {
    fn id(&self, id: &str) -> String {
        format!("{}/{id}", self.ns)
    }
}

impl SecretStore for Namespaced {
    fn get(&self, id: &str) -> Result<Option<Versioned>, Error> {
        self.inner.get(&self.id(id))
    }
    fn put(&self, id: &str, value: &str, expected: Option<&str>) -> Result<PutOutcome, Error> {
        self.inner.put(&self.id(id), value, expected)
    }
    fn delete(&self, id: &str) -> Result<bool, Error> {
        self.inner.delete(&self.id(id))
    }
}

/// A fresh table, and secrets named under it.
fn fresh() -> Backends {
    let t = table();
    let b = Backends::from_backend(backend(&t).with_deletion(linear_oauth_host::SecretDeletion::Immediate));
    Backends { secrets: Arc::new(Namespaced { ns: t, inner: b.secrets }), registry: b.registry }
}

#[test]
fn bulk_bad_lines() {
    cases::bad_lines(&fresh());
}

#[test]
fn bulk_rerun_writes_nothing_and_no_version_moves() {
    cases::rerun_writes_nothing(&fresh());
}

#[test]
fn bulk_newer_is_kept() {
    cases::newer_is_kept(&fresh());
}

#[test]
fn bulk_shapes_extras_and_status() {
    cases::shapes_extras_and_status(&fresh());
}

#[test]
fn bulk_export_reports_missing_secrets() {
    cases::export_reports_missing_secrets(&fresh());
}

#[test]
fn bulk_store_failure_midway_then_rerun() {
    cases::store_failure_midway_then_rerun(&fresh());
}

#[test]
fn bulk_secrets_without_rows_then_rerun() {
    cases::secrets_without_rows_then_rerun(&fresh());
}

#[test]
fn bulk_round_trip_into_a_fresh_table() {
    cases::round_trip(&fresh(), &fresh());
}

/// With a rate, updates over existing secrets still land (two requests each).
#[test]
fn bulk_import_under_a_rate_updates_existing_secrets() {
    let b = fresh();
    let first: Vec<_> = (0..6).map(|n| cases::token(n, cases::T1)).collect();
    let newer: Vec<_> = (0..6).map(|n| cases::token(n, cases::T2)).collect();
    let o = linear_oauth_host::bulk::ImportOptions { rate: Some(50.0), ..cases::opts() };
    assert_eq!(cases::import_with(&b, &cases::lines(&first), &o).0.imported, 6);
    let (s, _) = cases::import_with(&b, &cases::lines(&newer), &o);
    assert_eq!((s.imported, s.secret_writes, s.row_writes), (6, 6, 0));
}
