//! Shared fixtures: a test server, seeded stores, a capturing log sink.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use linear_oauth_host::store::MemoryBackend;
use linear_oauth_host::{Backends, LogLevel, LogSink, Options, RegistryRow, Resolver};
use linear_oauth_testserver::{ServerConfig, TestServer};
use serde_json::json;

pub const CLIENT_ID: &str = "test-client-id";
pub const CLIENT_SECRET: &str = "test-client-secret";

pub fn server() -> TestServer {
    TestServer::start(ServerConfig::default()).expect("test server")
}

pub fn options(server: &TestServer) -> Options {
    Options {
        store: "memory:".into(),
        api_base: server.base_url(),
        authorize_url: server.authorize_url(),
        http_timeout: Duration::from_secs(5),
        lease_wait: Duration::from_secs(10),
        ..Options::default()
    }
}

/// An ISO instant `secs` from now (negative = past).
pub fn in_secs(secs: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let t = time_fmt(now + secs * 1000);
    t
}

fn time_fmt(ms: i64) -> String {
    // Days-from-civil inverse (Howard Hinnant's algorithm), good for any date we use.
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, ms.rem_euclid(1000))
}

/// A stored-token JSON value (test data, as the old tooling wrote it).
pub fn token_json(access: &str, refresh: &str, expires_at: &str, workspace_id: &str, slug: &str) -> String {
    json!({
        "access_token": access,
        "refresh_token": refresh,
        "expires_at": expires_at,
        "scope": "read write",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "workspace_id": workspace_id,
        "workspace_slug": slug,
        "installed_at": "2026-01-01T00:00:00.000Z",
        "updated_at": "2026-01-01T00:00:00.000Z",
        "installed_by_platform_user_id": "platform-user-1",
        "team_hint": {"kept": true}
    })
    .to_string()
}

/// A workspace whose live server-side tokens are stored, expiring in `expires_in_s`.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub workspace_id: String,
    pub secret_id: String,
    pub access: String,
    pub refresh: String,
}

pub fn seed(server: &TestServer, backends: &Backends, slug: &str, expires_in_s: i64) -> Seeded {
    let issued = server.issue_tokens(CLIENT_ID, "read write", 86_399);
    let workspace_id = format!("org-{slug}");
    let secret_id = format!("bgagent-linear-oauth-{slug}");
    let value = token_json(&issued.access_token, &issued.refresh_token, &in_secs(expires_in_s), &workspace_id, slug);
    backends.secrets.put(&secret_id, &value, None).unwrap();
    backends
        .registry
        .put(&RegistryRow {
            workspace_id: workspace_id.clone(),
            workspace_slug: slug.into(),
            secret_id: secret_id.clone(),
            status: "active".into(),
        })
        .unwrap();
    Seeded { workspace_id, secret_id, access: issued.access_token, refresh: issued.refresh_token }
}

pub fn memory() -> Backends {
    Backends::from_backend(MemoryBackend::default())
}

pub fn stored(backends: &Backends, secret_id: &str) -> serde_json::Value {
    serde_json::from_str(&backends.secrets.get(secret_id).unwrap().unwrap().value).unwrap()
}

/// Keeps every log event for assertions.
#[derive(Debug, Default)]
pub struct Captured(pub Mutex<Vec<(LogLevel, String, Vec<(String, String)>)>>);

impl LogSink for Captured {
    fn log(&self, level: LogLevel, message: &str, fields: &[(String, String)]) {
        self.0.lock().unwrap().push((level, message.to_owned(), fields.to_vec()));
    }
}

impl Captured {
    pub fn text(&self) -> String {
        self.0.lock().unwrap().iter().map(|(l, m, f)| format!("{l:?} {m} {f:?}\n")).collect()
    }
}

pub fn resolver_with(server: &TestServer, backends: &Backends, sink: Option<Arc<Captured>>) -> Resolver {
    let mut o = options(server);
    o.log_sink = sink.map(|s| s as Arc<dyn LogSink>);
    Resolver::with_backends(o, backends.clone()).unwrap()
}
