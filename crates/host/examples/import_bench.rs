//! Prints bulk import throughput (workspaces/s): a first import into an empty
//! file store, the idempotent re-run (nothing written), and export, at each
//! fleet size; with `AWS_ENDPOINT_URL` set (moto, `tests/with-moto.sh`), also
//! the aws store at its default rate (20 writes/s) for the sizes given by
//! `LINEAR_OAUTH_BENCH_AWS_SIZES` (default `10,100`; each 1,000 takes ~50 s).
//! The goal on the file store is at least 2,000 workspaces/s.
//!
//! cargo run --release -p linear-oauth-host --example import_bench -- [SIZES]
//! (SIZES: comma-separated, default 10,1000,10000; add 100000 for the full table)

use std::io::Cursor;
use std::time::Instant;

use linear_oauth_host::bulk::{self, ImportOptions};
use linear_oauth_host::Backends;
use serde_json::json;

fn input(n: usize) -> String {
    (0..n)
        .map(|i| {
            let v = json!({
                "access_token": format!("at-{i:08}-{}", "x".repeat(40)), "refresh_token": format!("rt-{i:08}-{}", "y".repeat(40)),
                "expires_at": "2030-01-01T00:00:00.000Z", "scope": "read write app:assignable app:mentionable",
                "client_id": "bench-client-id", "client_secret": "bench-client-secret",
                "workspace_id": format!("00000000-0000-4000-8000-{i:012}"), "workspace_slug": format!("bench-{i:08}"),
                "installed_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-03-01T00:00:00.000Z",
                "installed_by_platform_user_id": "bench",
            });
            format!("{v}\n")
        })
        .collect()
}

fn sizes(text: &str) -> Vec<usize> {
    text.split(',').filter_map(|s| s.trim().replace('_', "").parse().ok()).collect()
}

fn run(label: &str, b: &Backends, n: usize, o: &ImportOptions) {
    let lines = input(n);
    let t = Instant::now();
    let s = bulk::import_lines(b, Cursor::new(lines.as_bytes()), o, |_| {}).unwrap();
    let first = t.elapsed().as_secs_f64();
    assert_eq!((s.imported, s.failed), (n, 0), "{s:?}");
    let t = Instant::now();
    let s = bulk::import_lines(b, Cursor::new(lines.as_bytes()), o, |_| {}).unwrap();
    let again = t.elapsed().as_secs_f64();
    assert_eq!((s.unchanged, s.secret_writes, s.row_writes), (n, 0, 0), "{s:?}");
    let t = Instant::now();
    let mut out = Vec::with_capacity(lines.len() + n * 64);
    let e = bulk::export(b, &mut out, o.concurrency, |_, why| panic!("{why}")).unwrap();
    let export = t.elapsed().as_secs_f64();
    assert_eq!(e.exported, n);
    println!(
        "{label:<6} {n:>7} workspaces  import {:>8.0}/s ({first:>7.2} s)  re-run {:>8.0}/s  export {:>8.0}/s",
        n as f64 / first,
        n as f64 / again,
        n as f64 / export
    );
}

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "10,1000,10000".into());
    let base = std::env::temp_dir().join(format!("lo-import-bench-{}", std::process::id()));
    println!("bulk import (concurrency {}; file store: fsynced writes, no rate limit)", bulk::DEFAULT_CONCURRENCY);
    for n in sizes(&arg) {
        let dir = base.join(n.to_string());
        let b = Backends::open(&format!("file:{}", dir.display())).unwrap();
        run("file", &b, n, &ImportOptions::for_store("file", "bench-"));
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir_all(&base);
    if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
        let aws_sizes = std::env::var("LINEAR_OAUTH_BENCH_AWS_SIZES").unwrap_or_else(|_| "10,100".into());
        for n in sizes(&aws_sizes) {
            let table = format!("lo-import-bench-{}-{n}", std::process::id());
            let backend = linear_oauth_host::store::AwsBackend::open(&table).unwrap();
            backend.bootstrap().unwrap();
            let b = Backends::from_backend(backend);
            let o = ImportOptions::for_store("aws", &format!("{table}/"));
            run("aws", &b, n, &o);
        }
        println!("(aws: default rate {} write requests/s; a new secret is 1 request)", bulk::DEFAULT_AWS_WRITE_RATE);
    }
}
