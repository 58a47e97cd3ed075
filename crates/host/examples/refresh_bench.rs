//! The refresh path per store, with AWS round trips made realistic: p50/p99
//! per refresh and the AWS requests each one sends.
//!
//!   MOTO_DELAY_MS=5 tests/with-moto.sh cargo run --release -p linear-oauth-host --example refresh_bench [N]
//!
//! tests/moto_serial.py holds each AWS request MOTO_DELAY_MS before serving it
//! (a network round trip) and counts requests by operation, so the counts
//! come from the emulator and hold for any version of this code. Every
//! iteration is a real refresh (token POST to the local test server, answered
//! with a token due again, so the next iteration refreshes too). "on path"
//! counts the requests sent before the caller had its token: all of them but
//! the lease releases, which every row of this project sends afterwards
//! (counted where they are sent). Rows:
//! - file store, CLI: a short-lived resolver per refresh, by workspace id;
//! - aws store, CLI: the same on Secrets Manager + DynamoDB (a new resolver,
//!   and so new AWS clients, per refresh, as in a new process) with the
//!   CLI's hint file, so it checks the registry row it remembers while taking
//!   the lease; its release is held and sent once the token is out, untimed
//!   (the CLI hands it to a process that outlives it); next to it the same
//!   without a hint file (a command's first refresh in a cache directory,
//!   which reads the row), and with the release on the path as well (before);
//! - aws store, long-lived, by workspace id, warm: one resolver whose row
//!   cache lapses between refreshes (as it does with refreshes hours apart);
//!   next to it a new resolver per refresh, which reads the row first (what
//!   the warm path did before it checked the row in the lease take);
//! - aws store, long-lived, by secret id: one resolver (the agent's path);
//! - old Node resolver (emulated): GetItem, GetSecretValue, the POST, and
//!   PutSecretValue without stages: no lease, no compare-and-swap.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use linear_oauth_host::store::{AwsBackend, DeferredRelease, ObservedReleases};
use linear_oauth_host::{Backends, FileHints, HintStore, Lifetime, Options, RegistryRow, Resolver};
use linear_oauth_testserver::{FaultsPatch, ServerConfig, TestServer};

const CLIENT_ID: &str = "test-client-id";
const CLIENT_SECRET: &str = "test-client-secret";

mod common;

fn main() {
    let n: usize = std::env::args().nth(1).map(|a| a.parse().expect("N: refreshes per row")).unwrap_or(50);
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("run under tests/with-moto.sh (AWS_ENDPOINT_URL)");
    let delay = std::env::var("MOTO_DELAY_MS").unwrap_or_else(|_| "0".into());
    let server = TestServer::start(ServerConfig::default()).unwrap();
    // Every refresh answers with a token due again (30 s < the 60 s threshold).
    server.set_faults(FaultsPatch { expires_in: Some(30), ..Default::default() });
    let base = Options {
        api_base: server.base_url(),
        authorize_url: server.authorize_url(),
        log_sink: Some(std::sync::Arc::new(common::Quiet)),
        ..Options::default()
    };
    println!("refresh path, {n} refreshes per row, {delay} ms added to every AWS request (moto on loopback)");
    println!(
        "  {:<52} {:>9} {:>9} {:>13} {:>8}  AWS requests by operation",
        "", "p50", "p99", "AWS requests", "on path"
    );

    // File store, as the CLI uses it.
    let dir = std::env::temp_dir().join(format!("lo-refresh-bench-{}", std::process::id()));
    let file = Options { store: format!("file:{}", dir.display()), lifetime: Some(Lifetime::Command), ..base.clone() };
    let backends = Backends::open(&file.store).unwrap();
    seed(&server, &backends, "benchfile");
    let stats = measure(&server, &endpoint, n, None, |_| {
        let r = Resolver::with_backends(file.clone(), backends.clone()).unwrap();
        time(|| r.resolve("org-benchfile").unwrap().access_token().secret().to_owned())
    });
    stats.print("file store, CLI (new resolver, by workspace id)");
    let _ = std::fs::remove_dir_all(&dir);

    // The aws store.
    let table = format!("lo-refresh-bench-{}", std::process::id());
    let aws = AwsBackend::open(&table).unwrap();
    aws.bootstrap().unwrap();
    let backends = Backends::from_backend(aws);
    let aws_opts =
        |lifetime| Options { store: "aws".into(), registry_table: Some(table.clone()), lifetime, ..base.clone() };
    let releases = Arc::new(AtomicU64::new(0));
    // A fresh AWS backend (new clients, as in a new process) whose releases are counted.
    let counted = || {
        let aws = Arc::new(AwsBackend::open(&table).unwrap());
        let releases = releases.clone();
        let before_release = move |_: &str| {
            releases.fetch_add(1, Ordering::SeqCst);
        };
        (aws.clone(), Arc::new(ObservedReleases { inner: aws, before_release }))
    };

    // The CLI: releases held until the token is out, then sent (untimed);
    // hints in a file, as hosts/cli keeps them under ~/.cache/linear-oauth.
    let cache = std::env::temp_dir().join(format!("lo-refresh-bench-cache-{}", std::process::id()));
    let cli = |workspace_id: &str, hint_file: bool| {
        let (aws, counted) = counted();
        let held = Arc::new(DeferredRelease::held(counted));
        let backends = Backends { secrets: aws, registry: held.clone() };
        let hints = hint_file.then(|| Arc::new(FileHints::new(&cache, &table)) as Arc<dyn HintStore>);
        let r = Resolver::with_backends(Options { hints, ..aws_opts(Some(Lifetime::Command)) }, backends).unwrap();
        let took = time(|| r.resolve(workspace_id).unwrap().access_token().secret().to_owned());
        held.finish_pending();
        took
    };
    seed(&server, &backends, "benchcli");
    // The first refresh of a secret creates its lease item (and reads the
    // secret twice); the first in a cache directory reads the row.
    cli("org-benchcli", true);
    let stats = measure(&server, &endpoint, n, Some(&releases), |_| cli("org-benchcli", true));
    stats.print("aws store, CLI (new resolver, by workspace id)");
    let _ = std::fs::remove_dir_all(&cache);
    let stats = measure(&server, &endpoint, n, Some(&releases), |_| cli("org-benchcli", false));
    stats.print("  the same, no hint file (row read first)");
    // For comparison: the release on the caller's path, as the CLI sent it before.
    let stats = measure(&server, &endpoint, n, None, |_| {
        let r = Resolver::new(aws_opts(Some(Lifetime::Command))).unwrap();
        time(|| r.resolve("org-benchcli").unwrap().access_token().secret().to_owned())
    });
    stats.print("  no hint file, release on the path (before)");

    // Long-lived: releases on a worker thread, as `Resolver::new` sets up.
    let long_lived = |cache_ttl| {
        let (aws, counted) = counted();
        let backends = Backends { secrets: aws, registry: Arc::new(DeferredRelease::new(counted)) };
        Resolver::with_backends(Options { cache_ttl, ..aws_opts(Some(Lifetime::LongLived)) }, backends).unwrap()
    };
    // Refreshes are hours apart in use: the previous one has finished (and
    // the registry row's cache lapsed) before the next.
    let apart = Duration::from_millis(50);
    seed(&server, &backends, "benchws");
    let r = long_lived(Duration::from_millis(20));
    r.resolve("org-benchws").unwrap();
    std::thread::sleep(Duration::from_millis(200)); // its lease release, before counting
    let stats = measure(&server, &endpoint, n, Some(&releases), |_| {
        std::thread::sleep(apart);
        time(|| r.resolve("org-benchws").unwrap().access_token().secret().to_owned())
    });
    stats.print("aws store, long-lived, by workspace id (warm)");
    drop(r);
    // For comparison: a new resolver each time reads the row first, as the
    // warm path did before it remembered the row.
    let stats = measure(&server, &endpoint, n, Some(&releases), |_| {
        std::thread::sleep(apart);
        let r = long_lived(Options::default().cache_ttl);
        time(|| r.resolve("org-benchws").unwrap().access_token().secret().to_owned())
    });
    stats.print("  cold: row read first (the warm path before)");

    let secret = seed(&server, &backends, "benchagent");
    let r = long_lived(Options::default().cache_ttl);
    r.resolve_secret(&secret).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let stats = measure(&server, &endpoint, n, Some(&releases), |_| {
        std::thread::sleep(apart);
        time(|| r.resolve_secret(&secret).unwrap().access_token().secret().to_owned())
    });
    stats.print("aws store, long-lived, by secret id");
    drop(r);

    seed(&server, &backends, "benchold");
    let old = OldNodeResolver::new(&table, server.token_url());
    let stats = measure(&server, &endpoint, n, None, |_| time(|| old.refresh("org-benchold")));
    stats.print("old Node resolver (emulated), by workspace id");
}

fn time(f: impl FnOnce() -> String) -> (Duration, String) {
    let t = Instant::now();
    let token = f();
    (t.elapsed(), token)
}

struct Stats {
    samples: Vec<Duration>,
    requests: BTreeMap<String, u64>,
    /// Lease releases sent after the caller had its token.
    released: u64,
    n: usize,
}

impl Stats {
    fn print(&self, label: &str) {
        let ms = |q: usize| self.samples[(self.samples.len() - 1) * q / 100].as_secs_f64() * 1e3;
        let total: u64 = self.requests.values().sum();
        let per = |x: u64| x as f64 / self.n as f64;
        let ops: Vec<String> = self
            .requests
            .iter()
            .map(|(op, c)| format!("{} {:.2}", op.rsplit('.').next().unwrap_or(op), per(*c)))
            .collect();
        println!(
            "  {label:<52} {:>6.2} ms {:>6.2} ms {:>9.2}/ref {:>8.2}  {}",
            ms(50),
            ms(99),
            per(total),
            per(total - self.released),
            ops.join(", ")
        );
    }
}

/// Runs `refresh` `n` times; each must return a new access token.
fn measure(
    server: &TestServer,
    endpoint: &str,
    n: usize,
    releases: Option<&AtomicU64>,
    mut refresh: impl FnMut(usize) -> (Duration, String),
) -> Stats {
    let before_posts = server.counters().token_refresh_ok;
    let before_releases = releases.map_or(0, |r| r.load(Ordering::SeqCst));
    let before = launcher_requests(endpoint);
    let mut last = String::new();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let (took, token) = refresh(i);
        assert_ne!(token, last, "every iteration refreshes");
        last = token;
        samples.push(took);
    }
    // A long-lived host releases its last lease in the background.
    std::thread::sleep(Duration::from_millis(200));
    let after = launcher_requests(endpoint);
    let released = releases.map_or(0, |r| r.load(Ordering::SeqCst)) - before_releases;
    assert_eq!(server.counters().token_refresh_ok - before_posts, n as u64, "one POST per refresh");
    samples.sort();
    let requests = after
        .into_iter()
        .map(|(op, c)| {
            let d = c - before.get(&op).copied().unwrap_or(0);
            (op, d)
        })
        .filter(|(_, d)| *d > 0)
        .collect();
    Stats { samples, requests, released, n }
}

/// A registry row and an expiring stored token for `org-<slug>`; the secret id.
fn seed(server: &TestServer, backends: &Backends, slug: &str) -> String {
    let issued = server.issue_tokens(CLIENT_ID, "read write", 86_399);
    let secret_id = format!("bgagent-linear-oauth-{slug}");
    let workspace_id = format!("org-{slug}");
    let expires_at = linear_oauth_testserver::fixtures::iso8601_in(10);
    let token = linear_oauth_testserver::fixtures::stored_token(
        &issued.access_token,
        &issued.refresh_token,
        &expires_at,
        &workspace_id,
        slug,
    );
    backends.secrets.put(&secret_id, &token.to_string(), None).unwrap();
    backends
        .registry
        .put(&RegistryRow {
            workspace_id,
            workspace_slug: slug.into(),
            secret_id: secret_id.clone(),
            status: "active".into(),
            ..Default::default()
        })
        .unwrap();
    secret_id
}

/// The launcher's request counts by operation (tests/moto_serial.py).
fn launcher_requests(endpoint: &str) -> BTreeMap<String, u64> {
    let (status, body) = http(endpoint, "GET", "/_launcher/requests", "", "");
    assert_eq!(status, 200, "this moto was not started by tests/moto_serial.py: {body}");
    serde_json::from_str(&body).unwrap()
}

/// One HTTP/1.1 request over a fresh loopback connection: (status, body).
fn http(base: &str, method: &str, path: &str, content_type: &str, body: &str) -> (u16, String) {
    let u = url::Url::parse(base).unwrap();
    let host = u.host_str().unwrap();
    let mut conn = std::net::TcpStream::connect((host, u.port_or_known_default().unwrap())).unwrap();
    let path = format!("{}{}", u.path().trim_end_matches('/'), path);
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

/// What the old TypeScript resolver did on an expiring token: registry row,
/// secret (unstaged), POST, `PutSecretValue` without stages.
struct OldNodeResolver {
    rt: tokio::runtime::Runtime,
    sm: aws_sdk_secretsmanager::Client,
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    token_url: String,
}

impl OldNodeResolver {
    fn new(table: &str, token_url: String) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let conf = rt.block_on(aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http).load());
        Self {
            sm: aws_sdk_secretsmanager::Client::new(&conf),
            ddb: aws_sdk_dynamodb::Client::new(&conf),
            rt,
            table: table.into(),
            token_url,
        }
    }

    fn refresh(&self, workspace_id: &str) -> String {
        use aws_sdk_dynamodb::types::AttributeValue;
        let row = self
            .rt
            .block_on(
                self.ddb
                    .get_item()
                    .table_name(&self.table)
                    .key("linear_workspace_id", AttributeValue::S(workspace_id.into()))
                    .send(),
            )
            .unwrap();
        let secret_id = row.item().unwrap()["oauth_secret_arn"].as_s().unwrap().clone();
        let value = self.rt.block_on(self.sm.get_secret_value().secret_id(&secret_id).send()).unwrap();
        let mut tok: serde_json::Value = serde_json::from_str(value.secret_string().unwrap()).unwrap();
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", tok["refresh_token"].as_str().unwrap())
            .append_pair("client_id", CLIENT_ID)
            .append_pair("client_secret", CLIENT_SECRET)
            .finish();
        let (status, body) = http(&self.token_url, "POST", "", "application/x-www-form-urlencoded", &form);
        assert_eq!(status, 200, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        tok["access_token"] = answer["access_token"].clone();
        tok["refresh_token"] = answer["refresh_token"].clone();
        let in_s = answer["expires_in"].as_i64().unwrap();
        tok["expires_at"] = linear_oauth_testserver::fixtures::iso8601_in(in_s).into();
        self.rt
            .block_on(self.sm.put_secret_value().secret_id(&secret_id).secret_string(tok.to_string()).send())
            .unwrap();
        answer["access_token"].as_str().unwrap().to_owned()
    }
}
