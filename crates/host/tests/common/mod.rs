//! Shared fixtures: a test server, seeded stores, a capturing log sink.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use linear_oauth_host::store::{MemoryBackend, SecretStore};
use linear_oauth_host::{Backends, Error, LogLevel, LogSink, Options, PutOutcome, RegistryRow, Resolver, Versioned};
use linear_oauth_testserver::{FailNext, FaultsPatch, ServerConfig, TestServer};

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

pub use linear_oauth_testserver::fixtures::iso8601_in as in_secs;

/// A stored-token JSON value (test data, as the old tooling wrote it).
pub fn token_json(access: &str, refresh: &str, expires_at: &str, workspace_id: &str, slug: &str) -> String {
    linear_oauth_testserver::fixtures::stored_token(access, refresh, expires_at, workspace_id, slug).to_string()
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
            ..Default::default()
        })
        .unwrap();
    Seeded { workspace_id, secret_id, access: issued.access_token, refresh: issued.refresh_token }
}

/// The usual start: a server, a memory store holding workspace `acme` whose
/// token expires in `expires_in_s`, and a resolver on both.
pub fn acme(expires_in_s: i64) -> (TestServer, Backends, Seeded, Resolver) {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", expires_in_s);
    let r = resolver_with(&server, &b, None);
    (server, b, s, r)
}

/// Linear's revoke endpoint answers the next `count` requests with `status`.
pub fn revoke_fails_next(server: &TestServer, count: u32, status: u16) {
    server.set_faults(FaultsPatch {
        revoke_fail_next: Some(FailNext { count, status, body: None }),
        ..Default::default()
    });
}

pub fn memory() -> Backends {
    Backends::from_backend(MemoryBackend::default())
}

pub fn stored(backends: &Backends, secret_id: &str) -> serde_json::Value {
    serde_json::from_str(&backends.secrets.get(secret_id).unwrap().unwrap().value).unwrap()
}

/// One captured log event: level, message, fields.
pub type Event = (LogLevel, String, Vec<(String, String)>);

/// Keeps every log event for assertions.
#[derive(Debug, Default)]
pub struct Captured(pub Mutex<Vec<Event>>);

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

/// A secret store over `inner` whose writes fail, each after `delay` (a store
/// timing out), while `failing` is set; reads and deletes pass through.
#[derive(Debug)]
pub struct FailingPuts {
    pub inner: Backends,
    pub failing: AtomicBool,
    pub delay: Duration,
}

impl SecretStore for FailingPuts {
    fn get(&self, id: &str) -> Result<Option<Versioned>, Error> {
        self.inner.secrets.get(id)
    }
    fn put(&self, id: &str, value: &str, expected: Option<&str>) -> Result<PutOutcome, Error> {
        std::thread::sleep(self.delay);
        if self.failing.load(Ordering::SeqCst) {
            return Err(Error::Store("injected write failure".into()));
        }
        self.inner.secrets.put(id, value, expected)
    }
    fn delete(&self, id: &str) -> Result<bool, Error> {
        self.inner.secrets.delete(id)
    }
}

impl FailingPuts {
    /// Lets writes through again.
    pub fn heal(&self) {
        self.failing.store(false, Ordering::SeqCst);
    }
}

/// `b` with failing writes (see [`FailingPuts`]), and the store to heal it.
pub fn failing_puts(b: &Backends, delay: Duration) -> (Arc<FailingPuts>, Backends) {
    let store = Arc::new(FailingPuts { inner: b.clone(), failing: true.into(), delay });
    (store.clone(), Backends { secrets: store, registry: b.registry.clone() })
}
