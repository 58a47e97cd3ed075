//! The race suite: N `linear-oauth token` processes on one expiring token, on
//! each backend, at several token-endpoint latencies — exactly one refresh POST,
//! every process succeeds, and the stored refresh token is the live one. Also:
//! a refresher killed after Linear rotated but before the write-back.
//!
//! The aws backend runs against moto (AWS_ENDPOINT_URL); without it these
//! tests fail rather than skip. `make test` starts moto.

use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use linear_oauth_host::{Backends, RegistryRow};
use linear_oauth_testserver::fixtures::{iso8601_in, stored_token};
use linear_oauth_testserver::{FaultsPatch, GraceMode, ServerConfig, TestServer};

const BIN: &str = env!("CARGO_BIN_EXE_linear-oauth");

#[derive(Clone, Copy, Debug, PartialEq)]
enum Backend {
    File,
    Aws,
}

struct Fixture {
    server: TestServer,
    store: String,
    table: Option<String>,
    dir: Option<std::path::PathBuf>,
    /// The processes' `XDG_CACHE_HOME` (the aws store's hint file), not the user's.
    cache: std::path::PathBuf,
}

fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

impl Fixture {
    fn new(backend: Backend, grace: GraceMode) -> Self {
        let server = TestServer::start(ServerConfig { grace, ..ServerConfig::default() }).unwrap();
        let cache = std::env::temp_dir().join(format!("lo-race-cache-{}", unique()));
        match backend {
            Backend::File => {
                let dir = std::env::temp_dir().join(format!("lo-race-{}", unique()));
                Self { server, store: format!("file:{}", dir.display()), table: None, dir: Some(dir), cache }
            }
            Backend::Aws => {
                std::env::var("AWS_ENDPOINT_URL")
                    .expect("the aws race suite needs moto: set AWS_ENDPOINT_URL (make test starts it)");
                let table = format!("lo-race-{}", unique());
                linear_oauth_host::store::AwsBackend::open(&table).unwrap().bootstrap().unwrap();
                Self { server, store: "aws".into(), table: Some(table), dir: None, cache }
            }
        }
    }

    fn backends(&self) -> Backends {
        Backends::open_with(&self.store, self.table.as_deref()).unwrap()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("LINEAR_OAUTH_STORE", &self.store)
            .env("LINEAR_OAUTH_API_BASE", self.server.base_url())
            .env("LINEAR_OAUTH_AUTHORIZE_URL", self.server.authorize_url())
            .env("XDG_CACHE_HOME", &self.cache)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(t) = &self.table {
            c.env("LINEAR_OAUTH_REGISTRY_TABLE", t);
        }
        c
    }

    /// An installed workspace whose token is due for refresh (test data in
    /// the stored-token layout the old tooling wrote).
    fn seed_expiring(&self, slug: &str) -> (String, String) {
        let issued = self.server.issue_tokens("test-client-id", "read write", 86_399);
        let workspace_id = format!("org-{slug}");
        let secret_id = format!("bgagent-linear-oauth-{slug}");
        let value = stored_token(&issued.access_token, &issued.refresh_token, &iso8601_in(20), &workspace_id, slug);
        let b = self.backends();
        b.secrets.put(&secret_id, &value.to_string(), None).unwrap();
        b.registry
            .put(&RegistryRow {
                workspace_id: workspace_id.clone(),
                workspace_slug: slug.into(),
                secret_id: secret_id.clone(),
                status: "active".into(),
                ..Default::default()
            })
            .unwrap();
        (workspace_id, secret_id)
    }

    fn stored_refresh_token(&self, secret_id: &str) -> String {
        let v: serde_json::Value =
            serde_json::from_str(&self.backends().secrets.get(secret_id).unwrap().unwrap().value).unwrap();
        v["refresh_token"].as_str().unwrap().to_owned()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
        let _ = std::fs::remove_dir_all(&self.cache);
    }
}

struct Cell {
    backend: Backend,
    n: usize,
    latency_ms: u64,
    posts: u64,
    failures: usize,
    live: bool,
    wall: Duration,
}

fn race(backend: Backend, n: usize, latency_ms: u64) -> Cell {
    let f = Fixture::new(backend, GraceMode::None);
    let (workspace_id, secret_id) = f.seed_expiring(&format!("race{n}x{latency_ms}"));
    f.server.set_faults(FaultsPatch { latency_ms: Some(latency_ms), ..Default::default() });
    let before = f.server.counters().token_requests;
    let started = Instant::now();
    let children: Vec<Child> =
        (0..n).map(|_| f.cmd(&["token", "--workspace", &workspace_id]).spawn().unwrap()).collect();
    let outs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let wall = started.elapsed();
    let failures = outs.iter().filter(|o| !o.status.success()).count();
    for o in outs.iter().filter(|o| !o.status.success()) {
        eprintln!("failed process: {}", String::from_utf8_lossy(&o.stderr));
    }
    let distinct: std::collections::HashSet<&[u8]> = outs.iter().map(|o| o.stdout.as_slice()).collect();
    assert_eq!(distinct.len(), 1, "every process printed the same token");
    let live = f.server.refresh_token_live(&f.stored_refresh_token(&secret_id));
    Cell { backend, n, latency_ms, posts: f.server.counters().token_requests - before, failures, live, wall }
}

fn suite(backend: Backend) {
    let mut cells = Vec::new();
    for latency in [0, 50, 200] {
        for n in [2, 8, 32, 64] {
            cells.push(race(backend, n, latency));
        }
    }
    let mut table = String::from("| backend | N | token latency | refresh POSTs | failures | final refresh token live | wall |\n|---|---|---|---|---|---|---|\n");
    for c in &cells {
        table += &format!(
            "| {:?} | {} | {} ms | {} | {} | {} | {:.0} ms |\n",
            c.backend,
            c.n,
            c.latency_ms,
            c.posts,
            c.failures,
            if c.live { "yes" } else { "NO" },
            c.wall.as_secs_f64() * 1e3
        );
    }
    println!("{table}");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("race-{backend:?}.md"));
    std::fs::write(&out, &table).unwrap();
    for c in &cells {
        assert_eq!((c.posts, c.failures, c.live), (1, 0, true), "{:?} N={} latency={}ms", c.backend, c.n, c.latency_ms);
    }
}

#[test]
fn race_suite_file_store() {
    suite(Backend::File);
}

#[test]
fn race_suite_aws_store() {
    suite(Backend::Aws);
}

/// A `token` process killed after Linear rotated the refresh token but before
/// it wrote the new pair back. The next process takes the lease over once it
/// expires and replays the refresh.
fn killed_mid_refresh(backend: Backend, grace: GraceMode) -> (Fixture, String, String, Output) {
    let f = Fixture::new(backend, grace);
    let (workspace_id, secret_id) = f.seed_expiring(&format!("crash{}", unique().replace('-', "x")));
    let before = f.backends().secrets.get(&secret_id).unwrap().unwrap().value;
    f.server.set_faults(FaultsPatch { post_grant_delay_ms: Some(5_000), ..Default::default() });
    // A short lease, so the next process need not wait long to take it over;
    // it must still outlast a request (3 x 1 s) and its write-back (2 s).
    let short_lease = |c: &mut Command| {
        c.env("LINEAR_OAUTH_LEASE_TTL_S", "5").env("LINEAR_OAUTH_HTTP_TIMEOUT_S", "1");
    };
    let mut victim = f.cmd(&["token", "--workspace", &workspace_id]);
    short_lease(&mut victim);
    let mut victim = victim.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while f.server.counters().token_refresh_ok == 0 {
        assert!(Instant::now() < deadline, "the refresh never reached the server");
        std::thread::sleep(Duration::from_millis(10));
    }
    victim.kill().unwrap();
    victim.wait().unwrap();
    f.server.set_faults(FaultsPatch { post_grant_delay_ms: Some(0), ..Default::default() });
    assert_eq!(f.backends().secrets.get(&secret_id).unwrap().unwrap().value, before, "the victim wrote nothing");
    let mut next = f.cmd(&["token", "--workspace", &workspace_id, "--verbose"]);
    short_lease(&mut next);
    let next = next.output().unwrap();
    (f, secret_id, before, next)
}

#[test]
fn killed_refresher_recovers_with_grace() {
    for backend in [Backend::File, Backend::Aws] {
        for grace in [GraceMode::SamePair, GraceMode::NewPair] {
            let (f, secret_id, _, next) = killed_mid_refresh(backend, grace);
            let err = String::from_utf8_lossy(&next.stderr);
            assert!(next.status.success(), "{backend:?} {grace:?}: {err}");
            assert!(err.contains("holder died mid-refresh"), "took the lease over: {err}");
            let token = String::from_utf8_lossy(&next.stdout).trim().to_owned();
            assert!(f.server.access_token_live(&token), "{backend:?} {grace:?}");
            assert!(
                f.server.refresh_token_live(&f.stored_refresh_token(&secret_id)),
                "{backend:?} {grace:?}: live pair stored"
            );
        }
    }
}

#[test]
fn killed_refresher_without_grace_is_a_typed_error_and_the_secret_survives() {
    for backend in [Backend::File, Backend::Aws] {
        let (f, secret_id, before, next) = killed_mid_refresh(backend, GraceMode::None);
        assert_eq!(next.status.code(), Some(7), "{backend:?}: {}", String::from_utf8_lossy(&next.stderr));
        assert_eq!(f.backends().secrets.get(&secret_id).unwrap().unwrap().value, before, "{backend:?}: secret intact");
    }
}

/// Issue 22, section 3: once Linear refuses a refresh token for good, 16
/// processes send exactly one token request between them (the one that
/// finds out records it in the registry and the secret; the others, waiting
/// on its lease or starting after, read the record), and a fresh process
/// afterwards sends none, by workspace id or by secret id.
fn dead_token_is_sent_once(backend: Backend) {
    let f = Fixture::new(backend, GraceMode::None);
    let (workspace_id, secret_id) = f.seed_expiring(&format!("dead{}", unique().replace('-', "x")));
    assert!(f.server.revoke_grant(&f.stored_refresh_token(&secret_id)), "the grant ends at Linear");
    f.server.set_faults(FaultsPatch { latency_ms: Some(50), ..Default::default() });
    let before = f.server.counters().token_requests;
    // Three in four by workspace id, the rest by secret id (the agents' path).
    let children: Vec<Child> = (0..16)
        .map(|i| {
            let args =
                if i % 4 == 3 { ["token", "--secret", &secret_id] } else { ["token", "--workspace", &workspace_id] };
            f.cmd(&args).spawn().unwrap()
        })
        .collect();
    let outs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for o in &outs {
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(7), "{backend:?}: reauthorization required: {err}");
        assert!(err.contains("linear-oauth setup"), "{backend:?}: names the fix: {err}");
    }
    assert_eq!(f.server.counters().token_requests - before, 1, "{backend:?}: one token POST between 16 processes");

    let row = f.backends().registry.get(&workspace_id).unwrap().unwrap();
    assert_eq!(row.status, "reauthorization_required", "{backend:?}");
    assert_eq!(row.status_reason.as_deref(), Some("invalid_grant"), "{backend:?}");
    assert!(row.status_changed_at.as_deref().is_some_and(|t| t.ends_with('Z')), "{backend:?}: {row:?}");

    // Fresh processes, with and without the hint cache.
    let _ = std::fs::remove_dir_all(&f.cache);
    for args in [
        ["token", "--workspace", &workspace_id],
        ["token", "--secret", &secret_id],
        ["refresh", "--workspace", &workspace_id],
        ["refresh", "--secret", &secret_id],
    ] {
        let o = f.cmd(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(7), "{backend:?} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(f.server.counters().token_requests - before, 1, "{backend:?}: a fresh process sends none");
}

#[test]
fn a_dead_refresh_token_is_sent_once_by_16_processes_file_store() {
    dead_token_is_sent_once(Backend::File);
}

#[test]
fn a_dead_refresh_token_is_sent_once_by_16_processes_aws_store() {
    dead_token_is_sent_once(Backend::Aws);
}
