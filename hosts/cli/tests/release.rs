//! `linear-oauth token` on the aws store gives its refresh lease back only
//! after its caller has the token: the process has exited and its stdout and
//! stderr are closed (a shell's `T=$(...)` waits for both), and the release
//! still lands. Between the CLI and moto sits a proxy that counts requests
//! and holds every lease release until the test lets it through, so a release
//! on the caller's path makes the CLI hang here instead of passing. The
//! proxy's counts also show the hint file at work: a command's first refresh
//! in a cache directory reads the registry row (5 requests on the path),
//! later ones check the row they remember while taking the lease (4).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use linear_oauth_host::store::AwsBackend;
use linear_oauth_host::{Backends, RegistryRow};
use linear_oauth_testserver::fixtures::{iso8601_in, stored_token};
use linear_oauth_testserver::{FaultsPatch, ServerConfig, TestServer};

const BIN: &str = env!("CARGO_BIN_EXE_linear-oauth");

/// What the proxy has seen: requests answered, by operation, and releases waiting.
#[derive(Default)]
struct Seen {
    served: BTreeMap<String, u64>,
    held: usize,
    open: bool,
}

struct Proxy {
    url: String,
    state: Arc<(Mutex<Seen>, Condvar)>,
}

impl Proxy {
    /// Forwards to `upstream`, one request per connection (it answers with
    /// `Connection: close`); lease releases wait for [`open`](Self::open).
    fn start(upstream: &str) -> Self {
        let upstream = url::Url::parse(upstream).unwrap();
        let upstream = format!("{}:{}", upstream.host_str().unwrap(), upstream.port().unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state: Arc<(Mutex<Seen>, Condvar)> = Arc::default();
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (st, upstream) = (st.clone(), upstream.clone());
                std::thread::spawn(move || forward(conn, &upstream, &st));
            }
        });
        Self { url, state }
    }

    fn served(&self) -> BTreeMap<String, u64> {
        self.state.0.lock().unwrap().served.clone()
    }

    fn held(&self) -> usize {
        self.state.0.lock().unwrap().held
    }

    fn open(&self) {
        self.state.0.lock().unwrap().open = true;
        self.state.1.notify_all();
    }
}

fn forward(client: TcpStream, upstream: &str, state: &(Mutex<Seen>, Condvar)) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        head.push(line);
    }
    let header = |name: &str| {
        head.iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let op = header("x-amz-target").unwrap_or_default();
    let op = op.rsplit('.').next().unwrap_or_default().to_owned();
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    if String::from_utf8_lossy(&body).contains("REMOVE lease_holder") {
        let (seen, cv) = state;
        let mut seen = seen.lock().unwrap();
        seen.held += 1;
        let mut seen = cv.wait_while(seen, |s| !s.open).unwrap();
        seen.held -= 1;
    }
    let mut up = TcpStream::connect(upstream).unwrap();
    for line in head.iter().filter(|l| !l.to_ascii_lowercase().starts_with("connection:")) {
        up.write_all(line.as_bytes()).unwrap();
    }
    up.write_all(b"Connection: close\r\n\r\n").unwrap();
    up.write_all(&body).unwrap();
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer") + 2;
    let answer_head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let mut client = client;
    for line in answer_head.split_inclusive("\r\n").filter(|l| !l.to_ascii_lowercase().starts_with("connection:")) {
        client.write_all(line.as_bytes()).unwrap();
    }
    client.write_all(b"Connection: close\r\n").unwrap();
    client.write_all(&answer[split..]).unwrap();
    *state.0.lock().unwrap().served.entry(op).or_default() += 1;
}

fn eventually(what: &str, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(15), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn ops(list: &[(&str, u64)]) -> BTreeMap<String, u64> {
    list.iter().map(|(op, n)| ((*op).to_owned(), *n)).collect()
}

fn minus(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after.iter().map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0))).filter(|(_, v)| *v > 0).collect()
}

/// Set for the CLI; its release-leases child must not have it.
const CLIENT_SECRET_CANARY: &str = "release-client-secret-canary";

/// The environment of the one running `linear-oauth release-leases` for `table`.
fn release_process_environ(table: &str) -> Vec<String> {
    let split = |b: Vec<u8>| -> Vec<String> {
        b.split(|c| *c == 0).filter(|v| !v.is_empty()).map(|v| String::from_utf8_lossy(v).into_owned()).collect()
    };
    let found: Vec<_> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|c| c.is_ascii_digit()))
        .filter_map(|e| {
            let args = split(std::fs::read(e.path().join("cmdline")).ok()?);
            (args.iter().any(|a| a == "release-leases") && args.iter().any(|a| a == table))
                .then(|| split(std::fs::read(e.path().join("environ")).unwrap()))
        })
        .collect();
    assert_eq!(found.len(), 1, "one release-leases process for {table}");
    found.into_iter().next().unwrap()
}

#[test]
fn the_cli_releases_its_lease_after_its_caller_has_the_token() {
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("this test needs moto: set AWS_ENDPOINT_URL (make test)");
    let server = TestServer::start(ServerConfig::default()).unwrap();
    // Every refresh stores a token that is due again, so each run refreshes.
    server.set_faults(FaultsPatch { expires_in: Some(30), ..Default::default() });
    let table = format!("lo-release-{}", std::process::id());
    let aws = AwsBackend::open(&table).unwrap();
    aws.bootstrap().unwrap();
    let backends = Backends::from_backend(aws);
    let slug = format!("rel{}", std::process::id());
    let (workspace_id, secret_id) = (format!("org-{slug}"), format!("bgagent-linear-oauth-{slug}"));
    let issued = server.issue_tokens("test-client-id", "read write", 86_399);
    let value = stored_token(&issued.access_token, &issued.refresh_token, &iso8601_in(20), &workspace_id, &slug);
    backends.secrets.put(&secret_id, &value.to_string(), None).unwrap();
    let row = |status: &str| RegistryRow {
        workspace_id: workspace_id.clone(),
        workspace_slug: slug.clone(),
        secret_id: secret_id.clone(),
        status: status.into(),
        ..Default::default()
    };
    backends.registry.put(&row("active")).unwrap();
    let proxy = Proxy::start(&moto);
    let scratch = std::env::temp_dir().join(format!("lo-release-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let (first_cache, cache) = (scratch.join("first"), scratch.join("cache"));
    let token = |endpoint: &str, cache: &std::path::Path| {
        Command::new(BIN)
            .args(["token", "--workspace", &workspace_id])
            .env("XDG_CACHE_HOME", cache)
            .env("LINEAR_OAUTH_STORE", "aws")
            .env("LINEAR_OAUTH_REGISTRY_TABLE", &table)
            .env("LINEAR_OAUTH_API_BASE", server.base_url())
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("LINEAR_OAUTH_CLIENT_SECRET", CLIENT_SECRET_CANARY)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let lease_free = || {
        let key = format!("refresh:{secret_id}");
        let free = backends.registry.try_lease(&key, "probe", Duration::from_secs(5), "").unwrap().acquired;
        backends.registry.release_lease(&key, "probe").unwrap();
        free
    };
    // The first refresh of a secret creates its lease item (and reads the secret twice).
    let first = token(&moto, &first_cache).wait_with_output().unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    eventually("the first run's release", lease_free);

    for run in 0..3 {
        let before = proxy.served();
        let mut child = token(&proxy.url, &cache);
        // The caller reads stdout and stderr to EOF, as `T=$(linear-oauth token ... 2>&1)` does.
        let (tx, rx) = mpsc::channel();
        let pipes: [Box<dyn Read + Send>; 2] =
            [Box::new(child.stdout.take().unwrap()), Box::new(child.stderr.take().unwrap())];
        for (i, mut pipe) in pipes.into_iter().enumerate() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = pipe.read_to_string(&mut s);
                tx.send((i, s)).unwrap();
            });
        }
        let mut outputs = [String::new(), String::new()];
        for _ in 0..2 {
            let (i, s) = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| {
                proxy.open();
                panic!("run {run}: the caller waited for the lease release (EOF never came)")
            });
            outputs[i] = s;
        }
        let [stdout, stderr] = outputs;
        let t = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if t.elapsed() > Duration::from_secs(10) {
                proxy.open();
                panic!("run {run}: the CLI did not exit while its lease release was held");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(status.success(), "run {run}: {stderr}");
        let stored: serde_json::Value =
            serde_json::from_str(&backends.secrets.get(&secret_id).unwrap().unwrap().value).unwrap();
        assert_eq!(stdout.trim(), stored["access_token"].as_str().unwrap(), "run {run}: the refreshed token");
        // Everything the caller waited for (see crates/host/tests/aws.rs for
        // why each): the first run in this cache directory reads the row and
        // takes the lease with an UpdateItem, 5; later runs check the row the
        // hint file names in the TransactWriteItems that takes the lease, 4.
        let critical = if run == 0 {
            ops(&[
                ("GetItem", 1),
                ("GetSecretValue", 1),
                ("UpdateItem", 1),
                ("PutSecretValue", 1),
                ("UpdateSecretVersionStage", 1),
            ])
        } else {
            ops(&[
                ("GetSecretValue", 1),
                ("TransactWriteItems", 1),
                ("PutSecretValue", 1),
                ("UpdateSecretVersionStage", 1),
            ])
        };
        assert_eq!(minus(&proxy.served(), &before), critical, "run {run}: requests before the caller had its token");
        // The release comes from a process that outlived the CLI, and is held at the proxy.
        eventually("the release to reach the proxy", || proxy.held() == 1);
        if run == 0 {
            // That process is waiting on the proxy now: it has the store's
            // settings and none of the client secret.
            let environ = release_process_environ(&table);
            assert!(environ.iter().any(|v| v.starts_with("AWS_ENDPOINT_URL=")), "{environ:?}");
            assert!(!environ.iter().any(|v| v.contains("CLIENT_SECRET")), "release-leases inherited the client secret");
        }
        assert!(!lease_free(), "run {run}: still held while the release waits");
        proxy.open();
        eventually("the release to land", lease_free);
        let mut all = critical.clone();
        *all.entry("UpdateItem".into()).or_default() += 1;
        eventually("the proxy to count it", || minus(&proxy.served(), &before) == all);
        proxy.state.0.lock().unwrap().open = false;
    }
    assert_eq!(server.counters().invalid_grant, 0);

    // The hint file: private, and nothing secret in it.
    use std::os::unix::fs::PermissionsExt;
    let dir = cache.join("linear-oauth");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "one hint file per store: {files:?}");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(&dir), mode(&files[0])), (0o700, 0o600));
    let hints = std::fs::read_to_string(&files[0]).unwrap();
    assert!(hints.contains(&secret_id) && hints.contains(&table), "{hints}");
    let stored: serde_json::Value =
        serde_json::from_str(&backends.secrets.get(&secret_id).unwrap().unwrap().value).unwrap();
    let mut secrets = vec![issued.access_token.clone(), issued.refresh_token.clone(), "test-client-secret".into()];
    secrets.extend(["access_token", "refresh_token", "client_secret"].map(|f| stored[f].as_str().unwrap().to_owned()));
    for s in &secrets {
        assert!(!hints.contains(s.as_str()), "a secret in the hint file: {hints}");
    }

    // A stale hint: the row revoked behind the CLI's back. The command fails
    // as a cold one would (revoked), with no token request.
    backends.registry.put(&row("revoked")).unwrap();
    proxy.open();
    let posts = server.counters().token_requests;
    let before = proxy.served();
    let out = token(&proxy.url, &cache).wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not active"), "{stderr}");
    assert_eq!(server.counters().token_requests, posts, "no refresh of a revoked workspace");
    let tried = minus(&proxy.served(), &before);
    assert_eq!(tried.get("TransactWriteItems"), Some(&1), "the hint was used: {tried:?}");
    let hints = std::fs::read_to_string(&files[0]).unwrap();
    assert!(!hints.contains(&secret_id), "the revoked row is no longer remembered: {hints}");
    let _ = std::fs::remove_dir_all(&scratch);
}
