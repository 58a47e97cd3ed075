//! Issue 23's fleet table: per fleet size, the costs that must stay flat as
//! the fleet grows (goal: 100,000 workspaces within 1.2x of 10) and the ones
//! that grow with it (import, `list --json`).
//!
//!   make bench-fleet                       (builds what it needs, starts moto)
//!   fleet_bench [SIZES]                    SIZES default 10,1000,10000,100000
//!
//! Per size, on a store seeded by `bulk::import_lines` (its rate printed):
//! - `token --workspace` in a new CLI process (median of 15 processes, each a
//!   different workspace, with the CLI's cache directory as a user has it);
//! - one uncached resolve in a long-lived resolver (median over 200
//!   workspaces spread over the fleet, each resolved for the first time);
//! - a `setup`-equivalent single write: a new workspace's secret and
//!   registry row (median of 50);
//! - `linear-oauth --json list > /dev/null`, the whole process.
//!
//! - with `LINEAR_OAUTH_BENCH_PYTHON` (a python with `linear_oauth`) and
//!   `LINEAR_OAUTH_BENCH_NODE` (node; hosts/node built): RSS bytes per cached
//!   workspace of a resolver that resolved every workspace once
//!   (hosts/python/bench_rss.py, hosts/node/bench-rss.mjs; goal: under 1 KiB).
//!
//! The CLI is `LINEAR_OAUTH_CLI`, else `linear-oauth` next to this example's
//! directory (`cargo build --release -p linear-oauth-cli`). With
//! `AWS_ENDPOINT_URL` set (moto, `tests/with-moto.sh`), the same rows for the
//! aws store at `LINEAR_OAUTH_BENCH_AWS_SIZES` (default `10,1000,10000`), seeded
//! without the Secrets Manager rate limit (moto has no quota).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use linear_oauth_host::bulk::{self, ImportOptions};
use linear_oauth_host::{Backends, Options, RegistryRow, Resolver};
use linear_oauth_testserver::{ServerConfig, TestServer};
use serde_json::{json, Value};

mod common;

const PREFIX: &str = "fleet-";

fn workspace_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

fn token(i: usize) -> Value {
    json!({
        "access_token": format!("lin_oauth_{i:08}{}", "a".repeat(40)),
        "refresh_token": format!("lin_refresh_{i:08}{}", "r".repeat(40)),
        "expires_at": "2099-01-01T00:00:00.000Z", "scope": "read write app:assignable app:mentionable",
        "client_id": "test-client-id", "client_secret": "bench-client-secret",
        "workspace_id": workspace_id(i), "workspace_slug": format!("fleet-{i:08}"),
        "installed_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-03-01T00:00:00.000Z",
        "installed_by_platform_user_id": "bench",
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

/// `n` workspaces spread evenly over `0..size`.
fn spread(size: usize, n: usize) -> Vec<usize> {
    (0..n.min(size)).map(|k| k * size / n.min(size)).collect()
}

struct Row {
    import_per_s: f64,
    cold_token: Duration,
    uncached: Duration,
    write: Duration,
    list: Duration,
    /// RSS bytes per cached workspace of a Python and a Node resolver.
    python: Option<f64>,
    node: Option<f64>,
}

fn cli_path() -> PathBuf {
    if let Some(p) = std::env::var_os("LINEAR_OAUTH_CLI") {
        return p.into();
    }
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().join("linear-oauth")
}

fn measure(store: &str, b: &Backends, size: usize, server: &TestServer, aws_table: Option<&str>) -> Row {
    let lines: String = (0..size).map(|i| format!("{}\n", token(i))).collect();
    // Unlimited rate on either store: moto has no quota.
    let o = ImportOptions::for_store("file", PREFIX);
    let t = Instant::now();
    let s = bulk::import_lines(b, Cursor::new(lines.as_bytes()), &o, |_| {}).unwrap();
    let import_per_s = size as f64 / t.elapsed().as_secs_f64();
    assert_eq!((s.imported, s.failed), (size, 0), "{s:?}");
    drop(lines);

    let options = Options {
        store: store.to_owned(),
        registry_table: aws_table.map(str::to_owned),
        api_base: server.base_url(),
        authorize_url: server.authorize_url(),
        log_sink: Some(Arc::new(common::Quiet)),
        ..Options::default()
    };
    let r = Resolver::with_backends(options, b.clone()).unwrap();
    r.resolve(&workspace_id(size - 1)).unwrap(); // the pool's first instance
    let uncached = median(
        spread(size - 1, 200)
            .into_iter()
            .map(|i| {
                let t = Instant::now();
                r.resolve(&workspace_id(i)).unwrap();
                t.elapsed()
            })
            .collect(),
    );

    let write = median(
        (0..50)
            .map(|k| {
                let i = size + k;
                let t = Instant::now();
                b.secrets.put(&format!("{PREFIX}new-{i}"), &token(i).to_string(), None).unwrap();
                b.registry
                    .put(&RegistryRow {
                        workspace_id: workspace_id(i),
                        workspace_slug: format!("fleet-{i:08}"),
                        secret_id: format!("{PREFIX}new-{i}"),
                        status: "active".into(),
                        status_reason: None,
                        status_changed_at: None,
                    })
                    .unwrap();
                t.elapsed()
            })
            .collect(),
    );

    let cli = cli_path();
    let cache = std::env::temp_dir().join(format!("lo-fleet-bench-cache-{}-{size}", std::process::id()));
    let run = |args: &[&str]| {
        let mut c = Command::new(&cli);
        c.args(args)
            .env("LINEAR_OAUTH_STORE", store)
            .env("LINEAR_OAUTH_API_BASE", server.base_url())
            .env("XDG_CACHE_HOME", &cache)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(table) = aws_table {
            c.env("LINEAR_OAUTH_REGISTRY_TABLE", table);
        }
        let t = Instant::now();
        let out = c
            .output()
            .unwrap_or_else(|e| panic!("{}: {e} (build it: cargo build --release -p linear-oauth-cli)", cli.display()));
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        t.elapsed()
    };
    let cold_token =
        median(spread(size, 15).into_iter().map(|i| run(&["token", "--workspace", &workspace_id(i)])).collect());
    let list = run(&["--json", "list"]);
    let _ = std::fs::remove_dir_all(&cache);

    let ids = cache.with_extension("ids");
    std::fs::write(&ids, (0..size).map(|i| workspace_id(i) + "\n").collect::<String>()).unwrap();
    let rss = |var: &str, args: &[&str]| {
        let program = std::env::var_os(var)?;
        let mut c = Command::new(program);
        c.args(args).args([store, ids.to_str().unwrap(), &server.base_url()]).stderr(Stdio::inherit());
        if let Some(table) = aws_table {
            c.env("LINEAR_OAUTH_REGISTRY_TABLE", table);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{var}: {}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = rss("LINEAR_OAUTH_BENCH_PYTHON", &[here.join("hosts/python/bench_rss.py").to_str().unwrap()]);
    let node =
        rss("LINEAR_OAUTH_BENCH_NODE", &["--expose-gc", here.join("hosts/node/bench-rss.mjs").to_str().unwrap()]);
    let _ = std::fs::remove_file(&ids);
    Row { import_per_s, cold_token, uncached, write, list, python, node }
}

fn header(store: &str) {
    println!(
        "{store:<5} {:>8} {:>12} {:>16} {:>18} {:>14} {:>12} {:>10} {:>10}",
        "size",
        "import /s",
        "token (process)",
        "uncached resolve",
        "single write",
        "list --json",
        "py B/ws",
        "node B/ws"
    );
}

fn print(store: &str, size: usize, r: &Row, base: Option<&Row>) {
    let ratio = |now: Duration, f: fn(&Row) -> Duration| {
        base.map(|b| format!(" {:>4.2}x", now.as_secs_f64() / f(b).as_secs_f64())).unwrap_or_else(|| "      ".into())
    };
    println!(
        "{store:<5} {size:>8} {:>12.0} {:>9.1} ms{} {:>9.1} us{} {:>9.2} ms{} {:>11.2} s {:>10} {:>10}",
        r.import_per_s,
        r.cold_token.as_secs_f64() * 1e3,
        ratio(r.cold_token, |b| b.cold_token),
        r.uncached.as_secs_f64() * 1e6,
        ratio(r.uncached, |b| b.uncached),
        r.write.as_secs_f64() * 1e3,
        ratio(r.write, |b| b.write),
        r.list.as_secs_f64(),
        r.python.map_or("-".into(), |b| format!("{b:.0}")),
        r.node.map_or("-".into(), |b| format!("{b:.0}")),
    );
}

fn sizes(text: &str) -> Vec<usize> {
    text.split(',').filter_map(|s| s.trim().replace('_', "").parse().ok()).filter(|&n| n >= 2).collect()
}

fn main() {
    let server = TestServer::start(ServerConfig::default()).unwrap();
    let arg = std::env::args().nth(1).unwrap_or_else(|| "10,1000,10000,100000".into());
    println!("fleet costs (ratios against the smallest size; goal for token/uncached/write: within 1.2x)");
    header("file");
    let mut base = None;
    for size in sizes(&arg) {
        let dir = std::env::temp_dir().join(format!("lo-fleet-bench-{}-{size}", std::process::id()));
        let uri = format!("file:{}", dir.display());
        let b = Backends::open(&uri).unwrap();
        let row = measure(&uri, &b, size, &server, None);
        print("file", size, &row, base.as_ref());
        base.get_or_insert(row);
        let _ = std::fs::remove_dir_all(&dir);
    }
    if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
        let aws_sizes = std::env::var("LINEAR_OAUTH_BENCH_AWS_SIZES").unwrap_or_else(|_| "10,1000,10000".into());
        header("aws");
        let mut base = None;
        for size in sizes(&aws_sizes) {
            let table = format!("lo-fleet-bench-{}-{size}", std::process::id());
            let backend = linear_oauth_host::store::AwsBackend::open(&table).unwrap();
            backend.bootstrap().unwrap();
            let b = Backends::from_backend(backend);
            let row = measure("aws", &b, size, &server, Some(&table));
            print("aws", size, &row, base.as_ref());
            base.get_or_insert(row);
        }
    }
}
