//! Prints the file store's per-row registry costs at each fleet size: one
//! uncached row read and one row write, which stay flat as the registry
//! grows (a file per row), against the single-file `registry.json` layout
//! they replace (a read parses every row), plus the one-time migration of
//! such a file and a full `list`.
//!
//! cargo run --release -p linear-oauth-host --example registry_bench -- [SIZES]
//! (SIZES: comma-separated, default 10,1000,10000,100000)

use std::collections::BTreeMap;
use std::time::Instant;

use linear_oauth_host::store::{FileBackend, Registry, RegistryRow};
use serde_json::{json, Value};

fn sizes(text: &str) -> Vec<usize> {
    text.split(',').filter_map(|s| s.trim().replace('_', "").parse().ok()).collect()
}

fn id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

fn row(i: usize, status: &str) -> RegistryRow {
    RegistryRow {
        workspace_id: id(i),
        workspace_slug: format!("bench-{i:08}"),
        secret_id: format!("bench-{i:08}"),
        status: status.into(),
        ..RegistryRow::default()
    }
}

/// Microseconds per call of `f` over `ids`.
fn per_call(ids: &[usize], mut f: impl FnMut(usize)) -> f64 {
    let t = Instant::now();
    for &i in ids {
        f(i);
    }
    t.elapsed().as_secs_f64() * 1e6 / ids.len() as f64
}

/// Spread over the whole range, so no two calls hit neighbours.
fn sample(n: usize, k: usize) -> Vec<usize> {
    (0..k).map(|j| (j * 7919 + 13) % n).collect()
}

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "10,1000,10000,100000".into());
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let base = std::env::temp_dir().join(format!("lo-registry-bench-{}", std::process::id()));
    println!("file store registry, {profile} build; times per call (fsynced writes, uncached reads)");
    for n in sizes(&arg) {
        let dir = base.join(n.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        // registry.json as the single-file layout wrote it.
        let legacy: BTreeMap<String, Value> = (0..n)
            .map(|i| {
                let r = row(i, "active");
                (
                    r.workspace_id,
                    json!({"workspace_slug": r.workspace_slug, "oauth_secret_arn": r.secret_id, "status": r.status}),
                )
            })
            .collect();
        std::fs::write(dir.join("registry.json"), serde_json::to_vec_pretty(&legacy).unwrap()).unwrap();
        drop(legacy);
        let b = FileBackend::open(&dir).unwrap();
        let old_read = per_call(&sample(n, 5), |i| assert!(b.get(&id(i)).unwrap().is_some()));
        let t = Instant::now();
        b.put(&row(0, "revoked")).unwrap(); // migrates
        let migrate = t.elapsed().as_secs_f64();
        assert!(!dir.join("registry.json").exists());
        let reads = sample(n, 1000.min(n * 10));
        let read = per_call(&reads, |i| assert!(b.get(&id(i)).unwrap().is_some()));
        let write = per_call(&sample(n, 50), |i| b.put(&row(i, "revoked")).unwrap());
        let new_write = per_call(&(n..n + 20).collect::<Vec<_>>(), |i| b.put(&row(i, "active")).unwrap());
        let t = Instant::now();
        assert_eq!(b.list().unwrap().len(), n + 20);
        let list = t.elapsed().as_secs_f64();
        println!(
            "{n:>7} rows  read {read:>7.1} us  write {write:>7.1} us  new-row write {new_write:>7.1} us  \
             | single-file read {old_read:>9.1} us  migration {migrate:>7.2} s  list {list:>6.2} s"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir_all(&base);
}
