//! The binary the Python and Node suites start: what `POST /_admin/seed`
//! writes is what the host's stores read, and a resolver serves it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use linear_oauth_host::{Backends, Options, Resolver};
use serde_json::{json, Value};

/// The running binary; killed when dropped.
struct Harness {
    child: Child,
    addr: String,
}

impl Harness {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_linear-oauth-testharness"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the harness");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim_end().strip_prefix("listening on http://").expect("listening line").to_owned();
        Harness { child, addr }
    }

    /// One request: the status and the JSON body.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut s = TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        let json = out.split_once("\r\n\r\n").map(|(_, b)| serde_json::from_str(b).unwrap()).unwrap();
        (status, json)
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("lo-harness-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

fn q(s: &str) -> String {
    s.replace('/', "%2F").replace(':', "%3A")
}

#[test]
fn a_seeded_workspace_is_what_the_host_reads_and_serves() {
    let h = Harness::start();
    let dir = tempdir("seed");
    let store = format!("file:{}", dir.display());
    let (status, seeded) = h.call("POST", "/_admin/seed", Some(json!({"store": store, "slug": "acme"})));
    assert_eq!(status, 200, "{seeded}");
    assert_eq!(
        (seeded["workspace_id"].as_str(), seeded["secret_id"].as_str()),
        (Some("org-acme"), Some("bgagent-linear-oauth-acme"))
    );
    let access = seeded["access_token"].as_str().unwrap();

    // The host's own view of the store.
    let b = Backends::open(&store).unwrap();
    let row = b.registry.get("org-acme").unwrap().unwrap();
    assert_eq!(
        (row.workspace_slug.as_str(), row.secret_id.as_str(), row.status.as_str()),
        ("acme", "bgagent-linear-oauth-acme", "active")
    );
    let value: Value =
        serde_json::from_str(&b.secrets.get("bgagent-linear-oauth-acme").unwrap().unwrap().value).unwrap();
    assert_eq!(value["access_token"], access);
    assert_eq!(value["team_hint"], json!({"kept": true}));

    // Live at the server and fresh for an hour: served without a refresh.
    let o = Options { store: store.clone(), api_base: h.base_url(), ..Options::default() };
    assert_eq!(Resolver::new(o).unwrap().resolve("org-acme").unwrap().access_token(), access);
    let (_, counters) = h.call("GET", "/_admin/counters", None);
    assert_eq!(counters["token_requests"], 0);

    // The reading routes.
    let (status, got) =
        h.call("GET", &format!("/_admin/stored?store={}&secret_id=bgagent-linear-oauth-acme", q(&store)), None);
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(got["value"].as_str().unwrap()).unwrap(), value);
    let (_, absent) = h.call("GET", &format!("/_admin/stored?store={}&secret_id=nope", q(&store)), None);
    assert_eq!(absent["value"], Value::Null);
    let (_, rows) = h.call("GET", &format!("/_admin/registry?store={}", q(&store)), None);
    assert_eq!(rows["rows"].as_array().unwrap().len(), 1);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn fields_values_statuses_and_client_credentials() {
    let h = Harness::start();
    let dir = tempdir("shapes");
    let store = format!("file:{}", dir.display());
    let b = Backends::open(&store).unwrap();
    let stored = |id: &str| -> Value { serde_json::from_str(&b.secrets.get(id).unwrap().unwrap().value).unwrap() };

    // Fields replace or (null) remove; a past expiry; a paused row.
    let (status, _) = h.call(
        "POST",
        "/_admin/seed",
        Some(json!({"store": store, "slug": "beta", "expires_in_s": -5, "status": "paused",
                    "fields": {"access_token": "other", "team_hint": null}})),
    );
    assert_eq!(status, 200);
    let v = stored("bgagent-linear-oauth-beta");
    assert_eq!(v["access_token"], "other");
    assert!(v.get("team_hint").is_none());
    assert!(v["expires_at"].as_str().unwrap() < linear_oauth_testserver::fixtures::iso8601_in(0).as_str());
    assert_eq!(b.registry.get("org-beta").unwrap().unwrap().status, "paused");

    // A raw value under any id, and no row.
    let arn = "arn:aws:secretsmanager:us-east-1:1:secret:x/y";
    let (status, _) =
        h.call("POST", "/_admin/seed", Some(json!({"store": store, "secret_id": arn, "value": "{not json"})));
    assert_eq!(status, 200);
    assert_eq!(b.secrets.get(arn).unwrap().unwrap().value, "{not json");
    assert_eq!(b.registry.list().unwrap().len(), 1);

    // The app's client-credentials token: no refresh token, the app's credentials.
    let app =
        json!({"client_id": "app", "client_secret": "app-secret", "redirect_uris": [], "client_credentials": true});
    assert_eq!(h.call("POST", "/_admin/clients", Some(app)).0, 200);
    let (status, cc) = h.call(
        "POST",
        "/_admin/seed",
        Some(json!({"store": store, "slug": "cc", "grant_type": "client_credentials", "client_id": "app"})),
    );
    assert_eq!(status, 200, "{cc}");
    let v = stored("bgagent-linear-oauth-cc");
    assert_eq!(
        (v["grant_type"].as_str(), v["client_id"].as_str(), v["client_secret"].as_str()),
        (Some("client_credentials"), Some("app"), Some("app-secret"))
    );
    assert!(v.get("refresh_token").is_none() && cc["refresh_token"].is_null());

    // Mistakes are 400s that say what is wrong; other paths stay 404.
    for (body, says) in [
        (json!({"store": store}), "slug or secret_id"),
        (json!({"store": "memory:", "slug": "x"}), "memory:"),
        (json!({"store": "ftp://x", "slug": "x"}), "unknown store"),
        (json!({"store": store, "slug": "x", "client_id": "nobody"}), "unknown client_id"),
        (json!({"store": store, "slug": "x", "colour": "red"}), "unknown field"),
    ] {
        let (status, e) = h.call("POST", "/_admin/seed", Some(body));
        assert_eq!(status, 400, "{e}");
        assert!(e["error_description"].as_str().unwrap().contains(says), "{e}");
    }
    assert_eq!(h.call("GET", "/_admin/nothing-here", None).0, 404);
    assert_eq!(h.call("GET", "/_admin/stored", None).0, 400);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_linear_endpoints_are_the_test_servers() {
    let h = Harness::start();
    let (status, issued) = h.call("POST", "/_admin/issue", Some(json!({})));
    assert_eq!(status, 200);
    assert!(issued["refresh_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(h.call("POST", "/graphql", Some(json!({"query": "{ viewer { id } }"}))).0, 401);
}
