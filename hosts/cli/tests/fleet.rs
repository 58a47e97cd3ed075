//! `linear-oauth sweep` and `linear-oauth rotate-client-secret` on the file
//! and aws stores, each with a run cut short (a killed process, `--limit`)
//! and resumed. The aws store runs against moto (AWS_ENDPOINT_URL; `make
//! test` starts it); without it the aws tests fail rather than skip.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use linear_oauth_host::{Backends, RegistryRow};
use linear_oauth_testserver::fixtures::{iso8601_in, stored_token};
use linear_oauth_testserver::{
    ClientConfig, GraceMode, ServerConfig, TestServer, DEFAULT_CLIENT_ID, DEFAULT_REDIRECT_URI,
};

const BIN: &str = env!("CARGO_BIN_EXE_linear-oauth");
const APP_B: &str = "app-b-client-id";
const APP_B_SECRET: &str = "app-b-secret-SEKRIT-B";
const NEW_SECRET: &str = "new-app-a-secret-SEKRIT-N";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Backend {
    File,
    Aws,
}

struct Fixture {
    server: TestServer,
    store: String,
    table: Option<String>,
    dir: std::path::PathBuf,
}

fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

impl Fixture {
    fn new(backend: Backend) -> Self {
        Self::with_grace(backend, GraceMode::None)
    }

    fn with_grace(backend: Backend, grace: GraceMode) -> Self {
        let server = TestServer::start(ServerConfig { grace, ..ServerConfig::default() }).unwrap();
        server.add_client(ClientConfig::new(APP_B, APP_B_SECRET, [DEFAULT_REDIRECT_URI]));
        let dir = std::env::temp_dir().join(format!("lo-fleet-{}", unique()));
        match backend {
            Backend::File => Self { server, store: format!("file:{}", dir.join("store").display()), table: None, dir },
            Backend::Aws => {
                std::env::var("AWS_ENDPOINT_URL")
                    .expect("the aws fleet tests need moto: set AWS_ENDPOINT_URL (make test starts it)");
                let table = format!("lo-fleet-{}", unique());
                linear_oauth_host::store::AwsBackend::open(&table).unwrap().bootstrap().unwrap();
                Self { server, store: "aws".into(), table: Some(table), dir }
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
            .env("XDG_CACHE_HOME", self.dir.join("cache"))
            .env_remove("LINEAR_OAUTH_CLIENT_SECRET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(t) = &self.table {
            c.env("LINEAR_OAUTH_REGISTRY_TABLE", t);
        }
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// `rotate-client-secret` with `secret` on stdin.
    fn rotate(&self, secret: &str, extra: &[&str]) -> Output {
        let mut args = vec!["rotate-client-secret", "--client-id", DEFAULT_CLIENT_ID, "--rate", "0", "--json"];
        args.extend_from_slice(extra);
        let mut child = self.cmd(&args).stdin(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(format!("{secret}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// A workspace of `app` whose live tokens expire in `expires_in_s`.
    fn seed(&self, app: (&str, &str), slug: &str, expires_in_s: i64) -> (String, String) {
        let issued = self.server.issue_tokens(app.0, "read write", 86_399);
        let workspace_id = format!("org-{slug}");
        let secret_id = format!("bgagent-linear-oauth-{slug}");
        let mut value =
            stored_token(&issued.access_token, &issued.refresh_token, &iso8601_in(expires_in_s), &workspace_id, slug);
        value["client_id"] = app.0.into();
        value["client_secret"] = app.1.into();
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

    fn stored(&self, secret_id: &str) -> serde_json::Value {
        serde_json::from_str(&self.backends().secrets.get(secret_id).unwrap().unwrap().value).unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn json_of(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    })
}

fn app_a() -> (&'static str, &'static str) {
    (DEFAULT_CLIENT_ID, linear_oauth_testserver::DEFAULT_CLIENT_SECRET)
}

/// Short leases, so that a re-run takes over a killed process's lease soon.
fn short_lease(c: &mut Command) -> &mut Command {
    c.env("LINEAR_OAUTH_LEASE_TTL_S", "5").env("LINEAR_OAUTH_HTTP_TIMEOUT_S", "1")
}

/// A sweep killed half-way (its process, mid-run, with the token endpoint
/// slowed down), then run again: every expiring token refreshed and live,
/// the fresh one untouched. The kill most likely lands while a refresh is at
/// Linear: the re-run takes that lease over and replays the refresh, which
/// recovers the pair where Linear replays (the server's same-pair grace;
/// without any, that one workspace ends `reauthorization_required` with its
/// secret intact, exactly as for any refresher killed mid-request).
fn sweep_killed_and_rerun(backend: Backend) {
    let f = Fixture::with_grace(backend, GraceMode::SamePair);
    let due: Vec<_> =
        (0..12).map(|i| f.seed(app_a(), &format!("due{i:02}{}", unique().replace('-', "x")), 3600)).collect();
    let fresh = f.seed(app_a(), &format!("fresh{}", unique().replace('-', "x")), 6 * 3600);
    f.server.set_faults(linear_oauth_testserver::FaultsPatch { latency_ms: Some(150), ..Default::default() });
    let mut victim = short_lease(&mut f.cmd(&["sweep", "--ahead", "2h", "--rate", "0"])).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while f.server.counters().token_refresh_ok < 4 {
        assert!(Instant::now() < deadline, "the sweep never got going");
        std::thread::sleep(Duration::from_millis(5));
    }
    victim.kill().unwrap();
    victim.wait().unwrap();
    f.server.set_faults(linear_oauth_testserver::FaultsPatch { latency_ms: Some(0), ..Default::default() });
    let killed_after = f.server.counters().token_refresh_ok;
    assert!(killed_after < 12, "killed half-way, not at the end");
    // The killed process may have held one lease: once it expires the
    // re-run takes it over instead of reporting it held.
    std::thread::sleep(Duration::from_millis(5100));
    let out = short_lease(&mut f.cmd(&["sweep", "--ahead", "2h", "--rate", "0", "--json"])).output().unwrap();
    let s = json_of(&out);
    assert!(out.status.success(), "{s}");
    assert_eq!(s["held_by_another"], 0, "{s}");
    assert_eq!(s["failed"], 0, "{s}");
    let refreshed = s["refreshed"].as_u64().unwrap();
    assert_eq!(s["fresh"].as_u64().unwrap() + refreshed, 13, "{s}");
    for (_, secret_id) in &due {
        let tok = f.stored(secret_id);
        assert!(f.server.refresh_token_live(tok["refresh_token"].as_str().unwrap()), "{backend:?}: no token lost");
        assert!(f.server.access_token_live(tok["access_token"].as_str().unwrap()));
    }
    assert_eq!(f.stored(&fresh.1)["updated_at"], "2026-01-01T00:00:00.000Z", "fresh untouched");
    // Every lease went back as its refresh ended (not at some later hand-off).
    for (_, secret_id) in &due {
        let key = format!("refresh:{secret_id}");
        let grant = f.backends().registry.try_lease(&key, "checker", Duration::from_secs(1), "{}").unwrap();
        assert!(grant.acquired, "{backend:?}: the lease of {secret_id} is free");
        f.backends().registry.release_lease(&key, "checker").unwrap();
    }
    // A third run finds everything fresh and sends nothing.
    let before = f.server.counters().token_requests;
    let s = json_of(&f.run(&["sweep", "--rate", "0", "--json"]));
    assert_eq!((s["refreshed"].as_u64(), s["fresh"].as_u64()), (Some(0), Some(13)), "{s}");
    assert_eq!(f.server.counters().token_requests, before);
}

#[test]
fn a_killed_sweep_loses_nothing_and_a_rerun_finishes_file_store() {
    sweep_killed_and_rerun(Backend::File);
}

#[test]
fn a_killed_sweep_loses_nothing_and_a_rerun_finishes_aws_store() {
    sweep_killed_and_rerun(Backend::Aws);
}

#[test]
fn sweep_text_summary_names_dead_workspaces_and_exit_code_20_on_failure() {
    let f = Fixture::new(Backend::File);
    let (dead_ws, dead_secret) = f.seed(app_a(), "deadws", 600);
    f.server.revoke_grant(f.stored(&dead_secret)["refresh_token"].as_str().unwrap());
    f.seed(app_a(), "duews", 600);
    // A broken stored token fails its workspace, not the run.
    let (_, broken) = f.seed(app_a(), "brokenws", 600);
    f.backends().secrets.put(&broken, "{\"access_token\": 1}", None).unwrap();
    let out = f.run(&["sweep", "--ahead", "30m", "--rate", "0"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(20), "{stdout}{stderr}");
    assert!(stdout.contains("1 refreshed") && stdout.contains("1 dead") && stdout.contains("1 failed"), "{stdout}");
    assert!(stdout.contains(&format!("dead {dead_ws}: Linear refused its credential (invalid_grant)")), "{stdout}");
    assert!(stderr.contains("INCOMPLETE") || stderr.contains("workspace(s) failed"), "{stderr}");
}

/// 200 workspaces of two apps; app A's secret is rotated in Linear, the
/// rotation is cut short after 50 and resumed.
fn rotation_interrupted_and_resumed(backend: Backend, n_per_app: usize) {
    let f = Fixture::new(backend);
    let tag = unique().replace('-', "x");
    let a: Vec<_> = (0..n_per_app).map(|i| f.seed(app_a(), &format!("a{tag}x{i:03}"), 20 * 3600)).collect();
    let b: Vec<_> =
        (0..n_per_app).map(|i| f.seed((APP_B, APP_B_SECRET), &format!("b{tag}x{i:03}"), 20 * 3600)).collect();
    let b_before: Vec<_> = b.iter().map(|(_, s)| f.stored(s)).collect();
    f.server.add_client(ClientConfig::new(DEFAULT_CLIENT_ID, NEW_SECRET, [DEFAULT_REDIRECT_URI]));

    let dry = f.rotate(NEW_SECRET, &["--dry-run"]);
    let s = json_of(&dry);
    assert_eq!((s["updated"].as_u64(), s["other_client"].as_u64()), (Some(n_per_app as u64), Some(n_per_app as u64)));
    assert_eq!(f.server.counters().token_requests, 0, "a dry run sends nothing");

    let typo = f.rotate("new-app-a-secret-TYPO", &[]);
    assert_eq!(typo.status.code(), Some(11), "{}", String::from_utf8_lossy(&typo.stderr));
    let err = String::from_utf8_lossy(&typo.stderr);
    assert!(err.contains("invalid_client") && err.contains("nothing was written") && !err.contains("TYPO"), "{err}");
    assert!(a.iter().all(|(_, s)| f.stored(s)["client_secret"] != NEW_SECRET));

    let half = n_per_app / 2;
    let first = json_of(&f.rotate(NEW_SECRET, &["--limit", &half.to_string()]));
    assert_eq!((first["updated"].as_u64(), first["already"].as_u64()), (Some(half as u64), Some(0)), "{first}");
    assert!(first["verified_on"].is_string());
    let second = json_of(&f.rotate(NEW_SECRET, &[]));
    assert_eq!(
        (second["updated"].as_u64(), second["already"].as_u64(), second["failed"].as_u64()),
        (Some((n_per_app - half) as u64), Some(half as u64), Some(0)),
        "{second}"
    );
    assert!(second["verified_on"].is_null());
    // `--json` carries the metrics: the one refresh that verified the new
    // secret in the first run, none in the second.
    let counted = |s: &serde_json::Value| {
        (s["metrics"]["refreshes_ok"].clone(), s["metrics"]["refresh_latency_ms"]["count"].clone())
    };
    assert_eq!(counted(&first), (1.into(), 1.into()), "{first}");
    assert_eq!(counted(&second), (0.into(), 0.into()), "{second}");
    for out in [&dry, &typo] {
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!all.contains("SEKRIT") && !all.contains(linear_oauth_testserver::DEFAULT_CLIENT_SECRET), "{all}");
    }
    for (w, s) in &a {
        assert_eq!(f.stored(s)["client_secret"], NEW_SECRET);
        let out = f.run(&["refresh", "--workspace", w]);
        assert!(out.status.success(), "{w}: {}", String::from_utf8_lossy(&out.stderr));
    }
    for ((_, s), before) in b.iter().zip(&b_before) {
        assert_eq!(&f.stored(s), before, "app B untouched");
    }
    assert_eq!(f.server.counters().invalid_client, 1, "only the typo was refused");
}

#[test]
fn rotation_of_one_app_interrupted_and_resumed_file_store() {
    rotation_interrupted_and_resumed(Backend::File, 100);
}

#[test]
fn rotation_of_one_app_interrupted_and_resumed_aws_store() {
    rotation_interrupted_and_resumed(Backend::Aws, 10);
}

#[test]
fn rotation_without_a_secret_on_stdin_is_refused() {
    let f = Fixture::new(Backend::File);
    let out = f.rotate("", &[]);
    assert_eq!(out.status.code(), Some(11), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
}

/// `sweep --json` carries the resolver's metrics table: here two renewals,
/// one credential Linear refused, each timed.
#[test]
fn sweep_json_includes_the_metrics_of_its_refreshes() {
    let f = Fixture::new(Backend::File);
    f.seed(app_a(), "due-one", 600);
    f.seed(app_a(), "due-two", 600);
    f.seed(app_a(), "fresh", 86_000);
    let (_, dead_secret) = f.seed(app_a(), "dead", 600);
    f.server.revoke_grant(f.stored(&dead_secret)["refresh_token"].as_str().unwrap());
    let out = f.run(&["sweep", "--ahead", "2h", "--rate", "0", "--json"]);
    let s = json_of(&out);
    assert_eq!((s["refreshed"].as_u64(), s["dead"].as_u64(), s["fresh"].as_u64()), (Some(2), Some(1), Some(1)), "{s}");
    let m = &s["metrics"];
    assert_eq!(m["refreshes_ok"], 2, "{m}");
    assert_eq!(m["refreshes_reauthorization_required_invalid_grant"], 1, "{m}");
    assert_eq!(m["refresh_latency_ms"]["count"], 3, "{m}");
    for quiet in ["refreshes_failed", "refreshes_served_stale", "lease_waits", "write_back_failures"] {
        assert_eq!(m[quiet], 0, "{quiet}: {m}");
    }
    for name in linear_oauth_host::METRICS.iter().map(|m| m.name) {
        assert!(m.get(name).is_some(), "{name} missing: {m}");
    }
    // With EMF on, its lines go to stderr: stdout stays one JSON document.
    f.seed(app_a(), "due-three", 600);
    let out = f
        .cmd(&["sweep", "--ahead", "2h", "--rate", "0", "--json"])
        .env("LINEAR_OAUTH_METRICS_EMF", "1")
        .output()
        .unwrap();
    let s = json_of(&out);
    assert_eq!(s["metrics"]["refreshes_ok"], 1, "{s}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let emf: Vec<serde_json::Value> =
        stderr.lines().filter(|l| l.contains("\"_aws\"")).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(emf.len(), 1, "{stderr}");
    assert_eq!(emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"], "LinearOAuth");
}
