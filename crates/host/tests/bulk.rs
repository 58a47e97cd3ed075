//! `linear_oauth_host::bulk` (import and export) on the file and memory
//! stores; tests/aws runs the same cases on moto.

#[path = "bulk_cases/mod.rs"]
mod cases;

use std::sync::atomic::{AtomicU32, Ordering};

use linear_oauth_host::Backends;

/// A fresh file store in its own directory (removed on drop).
struct FileStore(std::path::PathBuf, Backends);

impl FileStore {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir =
            std::env::temp_dir().join(format!("lo-bulk-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        let _ = std::fs::remove_dir_all(&dir);
        let b = Backends::open(&format!("file:{}", dir.display())).unwrap();
        Self(dir, b)
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn memory() -> Backends {
    Backends::open("memory:").unwrap()
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod file {
            $(#[test] fn $name() { super::cases::$name(&super::FileStore::new().1); })*
        }
        mod memory {
            $(#[test] fn $name() { super::cases::$name(&super::memory()); })*
        }
    };
}

on_both!(
    bad_lines,
    rerun_writes_nothing,
    newer_is_kept,
    shapes_extras_and_status,
    export_reports_missing_secrets,
    store_failure_midway_then_rerun,
    secrets_without_rows_then_rerun,
);

#[test]
fn round_trip_file_to_fresh_file_and_memory() {
    let (from, to) = (FileStore::new(), FileStore::new());
    cases::round_trip(&from.1, &to.1);
    let from = FileStore::new();
    cases::round_trip(&from.1, &memory());
}

/// The rate caps secret writes: 12 new secrets (one request each) at
/// 40/s with a burst of 10 cannot finish in under 50 ms.
#[test]
fn a_rate_spaces_the_writes() {
    let b = memory();
    let values: Vec<_> = (0..12).map(|n| cases::token(n, cases::T1)).collect();
    let o = linear_oauth_host::bulk::ImportOptions { rate: Some(40.0), ..cases::opts() };
    let start = std::time::Instant::now();
    let (s, _) = cases::import_with(&b, &cases::lines(&values), &o);
    assert_eq!(s.imported, 12);
    assert!(start.elapsed() >= std::time::Duration::from_millis(45), "{:?}", start.elapsed());
}
