//! Refreshes against the test server: rotation elsewhere, invalid_grant
//! recovery, concurrency, write-back failures and crashes mid-refresh.

use super::*;

/// Shows the resolver a stale copy until the token endpoint has been hit, as
/// when another process rotated the token right after we read it.
#[derive(Debug)]
struct StaleUntilRefresh {
    inner: linear_oauth_host::Backends,
    stale: String,
    server: Arc<linear_oauth_testserver::TestServer>,
}

impl SecretStore for StaleUntilRefresh {
    fn get(&self, id: &str) -> Result<Option<Versioned>, Error> {
        if self.server.counters().token_refresh == 0 {
            return Ok(Some(Versioned { value: self.stale.clone(), version: "stale".into() }));
        }
        self.inner.secrets.get(id)
    }
    fn put(&self, id: &str, value: &str, expected: Option<&str>) -> Result<PutOutcome, Error> {
        self.inner.secrets.put(id, value, expected)
    }
    fn delete(&self, id: &str) -> Result<bool, Error> {
        self.inner.secrets.delete(id)
    }
}

pub(crate) fn rotated_elsewhere(
    expires_in_s: i64,
) -> (Arc<linear_oauth_testserver::TestServer>, linear_oauth_host::Backends, Seeded, String) {
    let server = Arc::new(server());
    let b = memory();
    let s = seed(&server, &b, "acme", 10);
    let stale = stored(&b, &s.secret_id).to_string();
    // "Another process" spends the refresh token and stores the new pair.
    let other = server.issue_tokens(CLIENT_ID, "read write", 86_399);
    let _ = linear_oauth_testserver_refresh(&server, &s.refresh);
    b.secrets
        .put(
            &s.secret_id,
            &token_json(&other.access_token, &other.refresh_token, &in_secs(expires_in_s), &s.workspace_id, "acme"),
            None,
        )
        .unwrap();
    let wrapped = linear_oauth_host::Backends {
        secrets: Arc::new(StaleUntilRefresh { inner: b.clone(), stale, server: server.clone() }),
        registry: b.registry.clone(),
    };
    (server, wrapped, s, other.access_token)
}

/// Spends a refresh token directly at the server (what a competing refresher does).
pub(crate) fn linear_oauth_testserver_refresh(server: &linear_oauth_testserver::TestServer, refresh: &str) -> u16 {
    use std::io::{Read, Write};
    let body =
        format!("grant_type=refresh_token&refresh_token={refresh}&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}");
    let mut s = std::net::TcpStream::connect(server.addr()).unwrap();
    write!(s, "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out[9..12].parse().unwrap()
}

#[test]
fn invalid_grant_after_concurrent_rotation_uses_the_rotated_token() {
    let (server, b, s, other_access) = rotated_elsewhere(3600);
    server.reset();
    let r = resolver_with(&server, &b, None);
    let t = r.resolve_secret(&s.secret_id).unwrap();
    assert_eq!(t.access_token(), other_access);
    let c = server.counters();
    assert_eq!((c.token_refresh, c.invalid_grant), (1, 1));
}

#[test]
fn invalid_grant_then_rotated_but_expiring_refreshes_once_more() {
    let (server, b, s, other_access) = rotated_elsewhere(5);
    server.reset();
    let r = resolver_with(&server, &b, None);
    let t = r.resolve_secret(&s.secret_id).unwrap();
    assert_ne!(t.access_token(), other_access);
    assert_eq!(server.counters().token_refresh_ok, 1);
    assert_eq!(server.counters().token_refresh, 2);
}

#[test]
fn invalid_grant_with_unchanged_token_requires_reauthorization_and_keeps_the_secret() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 10);
    linear_oauth_testserver_refresh(&server, &s.refresh); // spent, nobody stored the result
    let before = b.secrets.get(&s.secret_id).unwrap().unwrap();
    let sink = Arc::new(Captured::default());
    let r = resolver_with(&server, &b, Some(sink.clone()));
    assert!(matches!(r.resolve(&s.workspace_id), Err(Error::ReauthorizationRequired(_))));
    // The credential as it was, plus the mark that tells every process (issue 22).
    let unmarked = || {
        let mut v: serde_json::Value =
            serde_json::from_str(&b.secrets.get(&s.secret_id).unwrap().unwrap().value).unwrap();
        let o = v.as_object_mut().unwrap();
        assert_eq!(o.remove("reauthorization_required_error"), Some("invalid_grant".into()));
        assert!(o.remove("reauthorization_required_at").is_some());
        v
    };
    let before: serde_json::Value = serde_json::from_str(&before.value).unwrap();
    assert_eq!(unmarked(), before, "store untouched but for the mark");
    // And it stays an error (no cached bogus state), without another request.
    assert!(matches!(r.resolve(&s.workspace_id), Err(Error::ReauthorizationRequired(_))));
    assert_eq!(unmarked(), before, "never deleted or blanked");
    let c = server.counters();
    assert_eq!((c.invalid_grant, c.token_refresh_ok), (1, 1), "only the competing spend succeeded; sent once");
    assert!(!events(&sink, LogLevel::Error, "installed again").is_empty(), "{}", sink.text());
}

#[test]
fn thirty_two_threads_one_refresh() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 10);
    server.set_faults(FaultsPatch { latency_ms: Some(100), ..Default::default() });
    let r = resolver_with(&server, &b, None);
    let barrier = Arc::new(Barrier::new(32));
    let tokens: Vec<String> = (0..32)
        .map(|_| {
            let (r, barrier, id) = (r.clone(), barrier.clone(), s.workspace_id.clone());
            std::thread::spawn(move || {
                barrier.wait();
                r.resolve(&id).unwrap().access_token().secret().to_owned()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(server.counters().token_requests, 1);
    assert!(tokens.iter().all(|t| *t == tokens[0] && *t != s.access));
}

#[test]
fn two_resolvers_sharing_a_store_refresh_once() {
    // Two resolvers = two processes' worth of state; the lease coordinates them.
    let server = server();
    let dir = std::env::temp_dir().join(format!("lo-share-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let b = linear_oauth_host::Backends::open(&format!("file:{}", dir.display())).unwrap();
    let s = seed(&server, &b, "acme", 10);
    server.set_faults(FaultsPatch { latency_ms: Some(200), ..Default::default() });
    let resolvers: Vec<_> = (0..4)
        .map(|_| {
            resolver_with(
                &server,
                &linear_oauth_host::Backends::open(&format!("file:{}", dir.display())).unwrap(),
                None,
            )
        })
        .collect();
    let barrier = Arc::new(Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let (r, barrier, id) = (resolvers[i % 4].clone(), barrier.clone(), s.workspace_id.clone());
            std::thread::spawn(move || {
                barrier.wait();
                r.resolve(&id).map(|t| t.access_token().secret().to_owned())
            })
        })
        .collect();
    let tokens: Vec<_> = handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
    assert_eq!(server.counters().token_requests, 1);
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    let live = stored(&b, &s.secret_id)["refresh_token"].as_str().unwrap().to_owned();
    assert!(server.refresh_token_live(&live));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_slow_refresh_does_not_block_other_workspaces() {
    let server = server();
    let b = memory();
    let slow = seed(&server, &b, "slow", 10);
    let fast = seed(&server, &b, "fast", 3600);
    let r = resolver_with(&server, &b, None);
    r.resolve(&fast.workspace_id).unwrap();
    server.set_faults(FaultsPatch { latency_ms: Some(1500), ..Default::default() });
    let r2 = r.clone();
    let id = slow.workspace_id.clone();
    let refresher = std::thread::spawn(move || r2.resolve(&id).unwrap());
    std::thread::sleep(Duration::from_millis(200)); // the refresh is in flight
    let started = Instant::now();
    r.resolve(&fast.workspace_id).unwrap(); // host cache
    r.invalidate(&fast.workspace_id);
    r.resolve(&fast.workspace_id).unwrap(); // through the component and the store
    let took = started.elapsed();
    assert!(!refresher.is_finished(), "the slow refresh should still be running");
    assert!(took < Duration::from_millis(1000), "other workspace waited {took:?}");
    refresher.join().unwrap();
}

#[test]
fn write_back_failure_keeps_the_rotated_token() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 10);
    let (failing, wrapped) = failing_puts(&b, Duration::ZERO);
    let sink = Arc::new(Captured::default());
    let r = resolver_with(&server, &wrapped, Some(sink.clone()));
    let t = r.resolve(&s.workspace_id).unwrap();
    assert_ne!(t.access_token(), s.access, "the caller still gets the new token");
    assert!(sink.text().contains("could not be written back"), "{}", sink.text());
    assert_eq!(stored(&b, &s.secret_id)["refresh_token"], s.refresh.as_str(), "store unchanged, not blanked");
    // Later calls are served from memory, without refreshing again.
    r.invalidate(&s.workspace_id);
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token(), t.access_token());
    assert_eq!(server.counters().token_refresh, 1);
    // Once the store works again, the kept token is written.
    failing.heal();
    r.invalidate(&s.workspace_id);
    r.resolve(&s.workspace_id).unwrap();
    let now_stored = stored(&b, &s.secret_id);
    assert_eq!(now_stored["access_token"], t.access_token().secret());
    assert!(server.refresh_token_live(now_stored["refresh_token"].as_str().unwrap()));
}

/// A store that cannot take one more byte (a full disk), but reads fine.
#[derive(Debug)]
struct NoSpace(linear_oauth_host::Backends);

impl SecretStore for NoSpace {
    fn get(&self, id: &str) -> Result<Option<Versioned>, Error> {
        self.0.secrets.get(id)
    }
    fn put(&self, _: &str, _: &str, _: Option<&str>) -> Result<PutOutcome, Error> {
        Err(Error::Store("No space left on device (os error 28)".into()))
    }
    fn delete(&self, id: &str) -> Result<bool, Error> {
        self.0.secrets.delete(id)
    }
    fn reserve(&self, _: &str, _: u64) -> Result<(), Error> {
        Err(Error::Store("No space left on device (os error 28)".into()))
    }
}

#[test]
fn a_refresh_token_is_never_spent_when_its_successor_cannot_be_saved() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 10);
    let full = linear_oauth_host::Backends { secrets: Arc::new(NoSpace(b.clone())), registry: b.registry.clone() };
    let r = resolver_with(&server, &full, None);
    match r.resolve(&s.workspace_id) {
        Err(Error::Store(m)) => assert!(m.contains("not refreshing") && m.contains("No space"), "{m}"),
        other => panic!("expected a store error, got {other:?}"),
    }
    assert_eq!(server.counters().token_requests, 0, "the refresh token was not spent");
    assert!(server.refresh_token_live(&s.refresh));
    assert_eq!(stored(&b, &s.secret_id)["refresh_token"], s.refresh.as_str());
    // The lease was released: a resolver on a working store refreshes at once.
    let ok = resolver_with(&server, &b, None);
    assert_ne!(ok.resolve(&s.workspace_id).unwrap().access_token(), s.access);
}

#[test]
fn a_short_lived_host_fails_instead_of_keeping_an_unsaved_rotated_token() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 10);
    let (failing, wrapped) = failing_puts(&b, Duration::ZERO);
    let sink = Arc::new(Captured::default());
    let mut o = options(&server);
    o.lifetime = Some(Lifetime::Command); // as the CLI runs
    o.log_sink = Some(sink.clone());
    let r = linear_oauth_host::Resolver::with_backends(o, wrapped).unwrap();
    let started = Instant::now();
    match r.resolve(&s.workspace_id) {
        Err(Error::Store(m)) => {
            assert!(m.contains("re-authorization") && m.contains("could not be saved"), "{m}");
            assert!(!m.contains(&s.refresh) && !m.contains(&s.access), "{m}");
        }
        other => panic!("expected a store error, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_secs(4), "the write is retried for a while first");
    assert_eq!(server.counters().token_refresh, 1);
    assert_eq!(stored(&b, &s.secret_id)["refresh_token"], s.refresh.as_str(), "store unchanged, not blanked");
    assert!(sink.text().contains("lost with this process"), "{}", sink.text());
    // Nothing unsaved is served afterwards: the next call reads the store again.
    failing.heal();
    assert!(matches!(r.resolve(&s.workspace_id), Err(Error::ReauthorizationRequired(_))));
}

/// A refresher that died after Linear rotated the token but before writing it
/// back: it left a lease and a spent refresh token in the store.
pub(crate) fn died_mid_refresh(
    grace: linear_oauth_testserver::GraceMode,
) -> (linear_oauth_testserver::TestServer, linear_oauth_host::Backends, Seeded) {
    let server = server();
    server.set_faults(FaultsPatch { grace: Some(grace), ..Default::default() });
    let b = memory();
    let s = seed(&server, &b, "acme", 10);
    assert_eq!(linear_oauth_testserver_refresh(&server, &s.refresh), 200, "Linear rotated");
    let lease = b
        .registry
        .try_lease(
            &format!("refresh:{}", s.secret_id),
            "dead-holder",
            Duration::from_millis(300),
            "{\"refresh_token_sha256\":\"x\"}",
        )
        .unwrap();
    assert!(lease.acquired);
    (server, b, s)
}

#[test]
fn crash_mid_refresh_recovers_within_linears_grace() {
    let (server, b, s) = died_mid_refresh(linear_oauth_testserver::GraceMode::SamePair);
    let sink = Arc::new(Captured::default());
    let r = resolver_with(&server, &b, Some(sink.clone()));
    let t = r.resolve(&s.workspace_id).unwrap();
    assert!(server.access_token_live(t.access_token().secret()));
    let stored_refresh = stored(&b, &s.secret_id)["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(stored_refresh, s.refresh);
    assert!(server.refresh_token_live(&stored_refresh), "the recovered pair is stored");
    assert!(sink.text().contains("holder died mid-refresh"), "{}", sink.text());
}

#[test]
fn crash_mid_refresh_without_grace_is_reauthorization_and_keeps_the_secret() {
    let (server, b, s) = died_mid_refresh(linear_oauth_testserver::GraceMode::None);
    let before = b.secrets.get(&s.secret_id).unwrap().unwrap();
    let r = resolver_with(&server, &b, None);
    assert!(matches!(r.resolve(&s.workspace_id), Err(Error::ReauthorizationRequired(_))));
    assert_eq!(b.secrets.get(&s.secret_id).unwrap().unwrap(), before, "never deleted or blanked");
}
