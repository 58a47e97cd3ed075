//! The host API against the Linear-compatible test server.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;
use linear_oauth_host::store::{Leases, SecretStore};
use linear_oauth_host::{
    Error, LeaseGrant, Lifetime, LogLevel, Options, PutOutcome, RegistryRow, Resolver, RevokeOutcome, Target, Versioned,
};
use linear_oauth_testserver::{FailNext, FaultsPatch};

#[test]
fn happy_path_and_cache() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    let r = resolver_with(&server, &b, None);
    let t = r.resolve(&s.workspace_id).unwrap();
    assert_eq!(t.access_token, s.access);
    assert_eq!(t.workspace_slug, "acme");
    assert_eq!(t.secret_id, s.secret_id);
    assert_eq!(t.scope, "read write");
    // Served from memory: a changed store is not read again within the TTL.
    b.secrets.put(&s.secret_id, &token_json("other", "r", &in_secs(3600), &s.workspace_id, "acme"), None).unwrap();
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token, s.access);
    assert_eq!(
        r.resolve_secret(&s.secret_id).unwrap().access_token,
        s.access,
        "secret path shares the component cache"
    );
    r.invalidate(&s.workspace_id);
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token, "other");
    assert_eq!(server.counters().token_requests, 0);
}

/// The captured events at `level` whose message contains `text`.
fn events(sink: &Captured, level: LogLevel, text: &str) -> Vec<Event> {
    sink.0.lock().unwrap().iter().filter(|(l, m, _)| *l == level && m.contains(text)).cloned().collect()
}

/// The value of field `name` of a captured event.
fn field<'a>(event: &'a Event, name: &str) -> Option<&'a str> {
    event.2.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn not_registered_revoked_and_unknown_status() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    let sink = Arc::new(Captured::default());
    let r = resolver_with(&server, &b, Some(sink.clone()));
    assert!(matches!(r.resolve("org-nope"), Err(Error::NotRegistered(_))));
    for status in ["revoked", "", "paused"] {
        b.registry
            .put(&RegistryRow {
                workspace_id: s.workspace_id.clone(),
                workspace_slug: "acme".into(),
                secret_id: s.secret_id.clone(),
                status: status.into(),
            })
            .unwrap();
        r.invalidate(&s.workspace_id);
        assert!(matches!(r.resolve(&s.workspace_id), Err(Error::Revoked(_))), "status {status:?}");
    }
    b.registry
        .put(&RegistryRow {
            workspace_id: "org-gone".into(),
            workspace_slug: "gone".into(),
            secret_id: "no-such-secret".into(),
            status: "active".into(),
        })
        .unwrap();
    // An unknown status is a warning that names it and the workspace.
    let unknown = events(&sink, LogLevel::Warn, "unknown registry status");
    assert_eq!(unknown.len(), 1, "{}", sink.text());
    assert_eq!((field(&unknown[0], "status"), field(&unknown[0], "workspace_id")), (Some("paused"), Some("org-acme")));
    assert!(matches!(r.resolve("org-gone"), Err(Error::SecretMissing(_))));
    assert!(matches!(r.resolve_secret("no-such-secret"), Err(Error::SecretMissing(_))));
    for bad in ["", "   ", "a\nb"] {
        assert!(matches!(r.resolve(bad), Err(Error::InvalidInput(_))), "{bad:?}");
        assert!(matches!(r.resolve_secret(bad), Err(Error::InvalidInput(_))), "{bad:?}");
    }
    assert_eq!(server.counters().token_requests, 0);
}

/// A warm process resolving by workspace id starts from the row it
/// remembers once its row cache lapsed. On a store that cannot check the row
/// while taking the lease (memory, file), a refresh reads the row before it
/// posts anything: a workspace revoked meanwhile is `revoked` with no token
/// request, one installed again under another secret is followed.
#[test]
fn a_warm_resolve_reads_the_row_before_refreshing_where_the_lease_cannot_check_it() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "warm", 10);
    let ttl = Duration::from_millis(30);
    let r = Resolver::with_backends(Options { cache_ttl: ttl, ..options(&server) }, b.clone()).unwrap();
    server.set_faults(FaultsPatch { expires_in: Some(30), ..Default::default() }); // every refresh due again
    r.resolve(&s.workspace_id).unwrap();
    let row = |secret_id: &str, status: &str| RegistryRow {
        workspace_id: s.workspace_id.clone(),
        workspace_slug: "warm".into(),
        secret_id: secret_id.into(),
        status: status.into(),
    };
    b.registry.put(&row(&s.secret_id, "revoked")).unwrap();
    std::thread::sleep(ttl * 2);
    let posts = server.counters().token_requests;
    assert!(matches!(r.resolve(&s.workspace_id), Err(Error::Revoked(_))));
    assert_eq!(server.counters().token_requests, posts, "no refresh of a revoked workspace");
    assert!(b.registry.try_lease(&format!("refresh:{}", s.secret_id), "x", ttl, "").unwrap().acquired, "no lease left");
    b.registry.release_lease(&format!("refresh:{}", s.secret_id), "x").unwrap();

    b.registry.put(&row(&s.secret_id, "active")).unwrap();
    std::thread::sleep(ttl * 2);
    r.resolve(&s.workspace_id).unwrap();
    let other = seed(&server, &b, "warm2", 3600);
    // Reinstalled under another secret, which holds this workspace's token.
    let mut v = stored(&b, &other.secret_id);
    v["workspace_id"] = s.workspace_id.clone().into();
    b.secrets.put(&other.secret_id, &v.to_string(), None).unwrap();
    b.registry.put(&row(&other.secret_id, "active")).unwrap();
    std::thread::sleep(ttl * 2);
    let t = r.resolve(&s.workspace_id).unwrap();
    assert_eq!((t.secret_id.as_str(), t.access_token.secret()), (other.secret_id.as_str(), other.access.as_str()));
}

#[test]
fn invalid_stored_tokens_list_their_fields() {
    let server = server();
    let b = memory();
    let sink = Arc::new(Captured::default());
    let r = resolver_with(&server, &b, Some(sink.clone()));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors/stored_tokens.json");
    let vectors: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let outcomes: std::collections::HashSet<bool> =
        vectors["vectors"].as_array().unwrap().iter().map(|c| c["valid"].as_bool().unwrap()).collect();
    assert_eq!(outcomes.len(), 2, "the vectors have valid and invalid cases");
    for (i, case) in vectors["vectors"].as_array().unwrap().iter().enumerate() {
        let id = format!("vector-{i}");
        b.secrets.put(&id, case["value"].as_str().unwrap(), None).unwrap();
        let result = r.resolve_secret(&id);
        if case["valid"].as_bool().unwrap() {
            assert_eq!(result.unwrap().access_token, "lin_oauth_vector_access", "{}", case["name"]);
        } else {
            let want: Vec<String> = serde_json::from_value(case["bad_fields"].clone()).unwrap();
            assert_eq!(result.unwrap_err(), Error::InvalidStoredToken(want.clone()), "{}", case["name"]);
            // Logged with the secret and its bad fields, for whoever fixes it.
            let logged = sink.0.lock().unwrap().iter().find(|e| field(e, "secret_id") == Some(id.as_str())).cloned();
            let logged = logged.unwrap_or_else(|| panic!("{}: not logged: {}", case["name"], sink.text()));
            assert_eq!(field(&logged, "fields"), Some(want.join(",").as_str()), "{}", case["name"]);
        }
    }
    assert_eq!(server.counters().token_requests, 0, "a bad secret fails at read time");
}

#[test]
fn expiring_token_is_refreshed_and_written_back() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 30); // inside the 60 s threshold
    let r = resolver_with(&server, &b, None);
    let t = r.resolve(&s.workspace_id).unwrap();
    assert_ne!(t.access_token, s.access);
    let stored = stored(&b, &s.secret_id);
    assert_eq!(stored["access_token"], t.access_token.secret());
    let new_refresh = stored["refresh_token"].as_str().unwrap();
    assert_ne!(new_refresh, s.refresh, "rotated refresh token stored");
    assert!(server.refresh_token_live(new_refresh));
    assert!(!server.refresh_token_live(&s.refresh));
    assert_eq!(stored["installed_at"], "2026-01-01T00:00:00.000Z");
    assert_ne!(stored["updated_at"], "2026-01-01T00:00:00.000Z");
    assert_eq!(stored["team_hint"]["kept"], true, "unknown fields kept");
    assert_eq!(stored["expires_at"], t.expires_at.as_str());
    // The new token is fresh: no second refresh.
    r.invalidate(&s.workspace_id);
    r.resolve(&s.workspace_id).unwrap();
    assert_eq!(server.counters().token_refresh, 1);
}

#[test]
fn a_refresh_without_rotation_keeps_the_old_refresh_token() {
    let (server, b, s, r) = acme(10);
    server.set_faults(FaultsPatch { omit_refresh_token: Some(true), ..Default::default() });
    let t = r.resolve_secret(&s.secret_id).unwrap();
    let stored = stored(&b, &s.secret_id);
    assert_ne!(t.access_token, s.access);
    assert_eq!(stored["access_token"], t.access_token.secret());
    assert_eq!(stored["refresh_token"], s.refresh.as_str(), "no refresh_token in the answer: the old one stays");
}

#[test]
fn a_cached_token_is_not_served_once_it_is_expiring() {
    let (server, b, s, _) = acme(61); // fresh for another second under the 60 s threshold
    let r = Resolver::with_backends(Options { refresh_ahead: Duration::ZERO, ..options(&server) }, b.clone()).unwrap();
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token, s.access);
    assert!(r.cached(&s.workspace_id).is_some());
    std::thread::sleep(Duration::from_millis(1300));
    assert!(r.cached(&s.workspace_id).is_none(), "inside the cache TTL, but expiring");
    assert_ne!(r.resolve(&s.workspace_id).unwrap().access_token, s.access);
    assert_eq!(server.counters().token_refresh_ok, 1);
}

#[test]
fn a_refresh_by_another_resolver_is_adopted_without_refreshing_again() {
    let (server, b, s, a) = acme(61);
    assert_eq!(a.resolve(&s.workspace_id).unwrap().access_token, s.access, "cached in a");
    // "Another process" that refreshes now.
    let eager = Options { refresh_threshold: Duration::from_secs(600), ..options(&server) };
    let by_b = Resolver::with_backends(eager, b.clone()).unwrap().resolve(&s.workspace_id).unwrap();
    assert_ne!(by_b.access_token, s.access);
    std::thread::sleep(Duration::from_millis(1300)); // a's copy is now expiring
    assert_eq!(a.resolve(&s.workspace_id).unwrap().access_token, by_b.access_token);
    assert_eq!(server.counters().token_requests, 1);
}

#[test]
fn force_refresh_rotates_a_fresh_token() {
    let (server, b, s, r) = acme(3600);
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token, s.access);
    let t = r.force_refresh(Target::Secret(&s.secret_id)).unwrap();
    assert_ne!(t.access_token, s.access);
    assert_eq!(stored(&b, &s.secret_id)["access_token"], t.access_token.secret());
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token, t.access_token, "the cached old token was dropped");
    assert_eq!(r.resolve_secret(&s.secret_id).unwrap().access_token, t.access_token);
    assert_eq!(server.counters().token_refresh_ok, 1);
}

#[test]
fn a_token_endpoint_slower_than_the_timeout_is_a_transport_error() {
    let (server, b, s, _) = acme(-5);
    server.set_faults(FaultsPatch { latency_ms: Some(2000), ..Default::default() });
    let r =
        Resolver::with_backends(Options { http_timeout: Duration::from_millis(300), ..options(&server) }, b.clone())
            .unwrap();
    let started = Instant::now();
    assert!(matches!(r.resolve(&s.workspace_id), Err(Error::Transport(_))));
    assert!(started.elapsed() < Duration::from_millis(1900), "{:?}", started.elapsed());
    assert_eq!(stored(&b, &s.secret_id)["refresh_token"], s.refresh.as_str());
    assert!(server.refresh_token_live(&s.refresh), "the server never processed the refresh");
}

#[test]
fn cached_resolves_from_many_threads_agree() {
    let server = server();
    let b = memory();
    let workspaces: Arc<Vec<Seeded>> =
        Arc::new((0..8).map(|i| seed(&server, &b, &format!("ws{i:02}"), 3600)).collect());
    let r = resolver_with(&server, &b, None);
    let handles: Vec<_> = (0..16)
        .map(|t| {
            let (r, ws) = (r.clone(), workspaces.clone());
            std::thread::spawn(move || {
                for i in 0..125 {
                    let s = &ws[(t + i) % ws.len()];
                    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token, s.access);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(server.counters().token_requests, 0);
    assert!(workspaces.iter().all(|s| r.cached(&s.workspace_id).is_some()));
}

#[test]
fn malformed_expiry_counts_as_expiring() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    b.secrets
        .put(&s.secret_id, &token_json(&s.access, &s.refresh, "next tuesday", &s.workspace_id, "acme"), None)
        .unwrap();
    let sink = Arc::new(Captured::default());
    let r = resolver_with(&server, &b, Some(sink.clone()));
    assert_ne!(r.resolve(&s.workspace_id).unwrap().access_token, s.access);
    let warned = events(&sink, LogLevel::Warn, "malformed");
    assert_eq!(warned.len(), 1, "{}", sink.text());
    assert_eq!(field(&warned[0], "secret_id"), Some(s.secret_id.as_str()));
}

#[test]
fn refresh_failure_is_typed_and_the_next_call_rereads() {
    let server = server();
    let b = memory();
    // Expired, so a transient failure cannot be served around; every attempt fails.
    let s = seed(&server, &b, "acme", -10);
    // Without the failure memory, so each call below asks again.
    let o = Options { failure_memory: Duration::ZERO, ..options(&server) };
    let r = Resolver::with_backends(o, b.clone()).unwrap();
    server.set_faults(FaultsPatch {
        fail_next: Some(FailNext { count: 3, status: 503, body: None }),
        ..Default::default()
    });
    match r.resolve(&s.workspace_id) {
        Err(Error::TokenEndpoint { status: 503, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(stored(&b, &s.secret_id)["refresh_token"], s.refresh.as_str(), "store untouched");
    // An operator fixes the secret; the next call must see it, not a cached stale token.
    b.secrets
        .put(&s.secret_id, &token_json("fixed", &s.refresh, &in_secs(3600), &s.workspace_id, "acme"), None)
        .unwrap();
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token, "fixed");

    for fault in [
        FaultsPatch { malformed_next: Some(1), ..Default::default() },
        FaultsPatch { oversize_next: Some(1), ..Default::default() },
        FaultsPatch { drop_next: Some(1), ..Default::default() },
    ] {
        let s = seed(&server, &b, "beta", -10);
        r.invalidate(&s.workspace_id);
        server.set_faults(fault.clone());
        let err = r.resolve(&s.workspace_id).unwrap_err();
        assert!(matches!(err, Error::Transport(_)), "{fault:?}: {err:?}");
        // The knob is spent; the token was never rotated, so a retry works.
        assert_ne!(r.resolve(&s.workspace_id).unwrap().access_token, s.access);
    }
}

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

fn rotated_elsewhere(
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
fn linear_oauth_testserver_refresh(server: &linear_oauth_testserver::TestServer, refresh: &str) -> u16 {
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
    assert_eq!(t.access_token, other_access);
    let c = server.counters();
    assert_eq!((c.token_refresh, c.invalid_grant), (1, 1));
}

#[test]
fn invalid_grant_then_rotated_but_expiring_refreshes_once_more() {
    let (server, b, s, other_access) = rotated_elsewhere(5);
    server.reset();
    let r = resolver_with(&server, &b, None);
    let t = r.resolve_secret(&s.secret_id).unwrap();
    assert_ne!(t.access_token, other_access);
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
    assert_eq!(b.secrets.get(&s.secret_id).unwrap().unwrap(), before, "store untouched");
    // And it stays an error (no cached bogus state).
    assert!(matches!(r.resolve(&s.workspace_id), Err(Error::ReauthorizationRequired(_))));
    assert_eq!(b.secrets.get(&s.secret_id).unwrap().unwrap(), before, "never deleted or blanked");
    let c = server.counters();
    assert_eq!((c.invalid_grant, c.token_refresh_ok), (2, 1), "only the competing spend succeeded");
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
                r.resolve(&id).unwrap().access_token.secret().to_owned()
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
                r.resolve(&id).map(|t| t.access_token.secret().to_owned())
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
    assert_ne!(t.access_token, s.access, "the caller still gets the new token");
    assert!(sink.text().contains("could not be written back"), "{}", sink.text());
    assert_eq!(stored(&b, &s.secret_id)["refresh_token"], s.refresh.as_str(), "store unchanged, not blanked");
    // Later calls are served from memory, without refreshing again.
    r.invalidate(&s.workspace_id);
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token, t.access_token);
    assert_eq!(server.counters().token_refresh, 1);
    // Once the store works again, the kept token is written.
    failing.heal();
    r.invalidate(&s.workspace_id);
    r.resolve(&s.workspace_id).unwrap();
    let now_stored = stored(&b, &s.secret_id);
    assert_eq!(now_stored["access_token"], t.access_token.secret());
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
    assert_ne!(ok.resolve(&s.workspace_id).unwrap().access_token, s.access);
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

#[test]
fn egress_is_https_only_except_loopback() {
    let server = server();
    let mut o = options(&server);
    o.api_base = "http://api.linear.app".into();
    assert!(matches!(linear_oauth_host::Resolver::with_backends(o.clone(), memory()), Err(Error::InvalidInput(_))));
    o.api_base = "file:///etc/passwd".into();
    assert!(linear_oauth_host::Resolver::with_backends(o, memory()).is_err());
}

#[test]
fn no_secret_in_logs_errors_or_debug() {
    let server = server();
    let b = memory();
    let sink = Arc::new(Captured::default());
    let r = resolver_with(&server, &b, Some(sink.clone()));
    let mut seen = String::new();
    let mut secrets = vec![CLIENT_SECRET.to_owned()];
    // Success with refresh, then every failure path.
    let s = seed(&server, &b, "acme", 10);
    secrets.extend([s.access.clone(), s.refresh.clone()]);
    let t = r.resolve(&s.workspace_id).unwrap();
    seen += &format!("{t:?} {r:?}");
    let st = stored(&b, &s.secret_id);
    secrets.extend([t.access_token.secret().to_owned(), st["refresh_token"].as_str().unwrap().to_owned()]);
    let echo = format!("{{\"error\":\"x\",\"error_description\":\"{}\"}}", CLIENT_SECRET);
    let faults = [
        FaultsPatch { fail_next: Some(FailNext { count: 1, status: 500, body: Some(echo) }), ..Default::default() },
        FaultsPatch { malformed_next: Some(1), ..Default::default() },
        FaultsPatch { oversize_next: Some(1), ..Default::default() },
    ];
    for (i, fault) in faults.into_iter().enumerate() {
        let s2 = seed(&server, &b, &format!("beta{i}"), -10);
        secrets.extend([s2.access.clone(), s2.refresh.clone()]);
        server.set_faults(fault);
        let e = r.resolve(&s2.workspace_id).unwrap_err();
        seen += &format!("{e:?} {e}");
    }
    let s3 = seed(&server, &b, "gamma", 10);
    linear_oauth_testserver_refresh(&server, &s3.refresh);
    let e = r.resolve(&s3.workspace_id).unwrap_err();
    seen += &format!("{e:?} {e}");
    b.secrets.put("broken", &format!("{{\"access_token\":\"{}\"}}", s3.access), None).unwrap();
    let e = r.resolve_secret("broken").unwrap_err();
    seen += &format!("{e:?} {e}");
    seen += &sink.text();
    assert!(sink.text().contains("refreshed Linear access token"), "logs were captured: {}", sink.text());
    for secret in &secrets {
        assert!(!seen.contains(secret.as_str()), "secret leaked into: {seen}");
    }
}

#[test]
fn resolver_works_inside_a_tokio_runtime() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 10);
    let r = resolver_with(&server, &b, None);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let t = rt.block_on(async { r.resolve(&s.workspace_id).unwrap() });
    assert_ne!(t.access_token, s.access);
}

#[test]
fn leases_in_memory_backend() {
    let b = linear_oauth_host::store::MemoryBackend::default();
    assert!(b.try_lease("k", "a", Duration::from_secs(5), "n").unwrap().acquired);
    assert_eq!(
        b.try_lease("k", "b", Duration::from_secs(5), "").unwrap(),
        LeaseGrant { acquired: false, previous_note: None, written_version: None }
    );
}

#[test]
fn inspect_redacts_and_validates() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 30);
    let r = resolver_with(&server, &b, None);
    let i = r.inspect(Target::Secret(&s.secret_id)).unwrap();
    assert!(i.invalid_fields.is_empty());
    assert!(i.needs_refresh);
    assert!(i.expires_in_ms.unwrap() <= 30_000 && i.expires_in_ms.unwrap() > 0);
    let shown = format!("{i:?}");
    assert!(!shown.contains(&s.access) && !shown.contains(&s.refresh) && !shown.contains(CLIENT_SECRET), "{shown}");
    let field = |n: &str| i.fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap();
    assert!(field("access_token").starts_with("[redacted sha256:"));
    assert_eq!(field("workspace_slug"), "acme");
    // Unknown fields may hold secrets (old_refresh_token, id_token): never shown in clear.
    assert_eq!(field("team_hint"), "[redacted]");

    b.secrets.put("half", r#"{"access_token":"x","scope":""}"#, None).unwrap();
    let i = r.inspect(Target::Secret("half")).unwrap();
    assert_eq!(i.invalid_fields.len(), 10);
    assert_eq!(i.expires_in_ms, None);
    assert!(matches!(r.inspect(Target::Secret("absent")), Err(Error::SecretMissing(_))));

    // A truncated secret is "not valid JSON", not eleven missing fields.
    b.secrets.put("truncated", r#"{"access_token":"x","#, None).unwrap();
    assert_eq!(r.inspect(Target::Secret("truncated")).unwrap().invalid_fields, vec!["<not valid JSON>".to_owned()]);
    match r.resolve_secret("truncated") {
        Err(Error::InvalidStoredToken(f)) => assert_eq!(f, vec!["<not valid JSON>".to_owned()]),
        other => panic!("{other:?}"),
    }
    b.secrets
        .put("secretive", &serde_json::json!({"old_refresh_token": "lin_oauth_OLD_SECRET_x"}).to_string(), None)
        .unwrap();
    let shown = format!("{:?}", r.inspect(Target::Secret("secretive")).unwrap());
    assert!(!shown.contains("lin_oauth_OLD_SECRET_x") && shown.contains("[redacted sha256:"), "{shown}");
}

/// Operator actions by workspace id go through the component (the CLI no
/// longer reads the registry itself): the row comes back with the
/// inspection, a refresh needs an active row.
#[test]
fn operator_actions_take_a_workspace_or_a_secret() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    let r = resolver_with(&server, &b, None);
    let row = |status: &str| RegistryRow {
        workspace_id: s.workspace_id.clone(),
        workspace_slug: "acme".into(),
        secret_id: s.secret_id.clone(),
        status: status.into(),
    };

    let by_ws = r.inspect(Target::Workspace(&s.workspace_id)).unwrap();
    assert_eq!((by_ws.secret_id.as_str(), by_ws.registry.clone()), (s.secret_id.as_str(), Some(row("active"))));
    // A secret target finds the row of the workspace its token names.
    assert_eq!(r.inspect(Target::Secret(&s.secret_id)).unwrap().registry, Some(row("active")));
    // ... only when that row points back at it.
    b.secrets.put("copy", &b.secrets.get(&s.secret_id).unwrap().unwrap().value, None).unwrap();
    assert_eq!(r.inspect(Target::Secret("copy")).unwrap().registry, None);
    assert!(matches!(r.inspect(Target::Workspace("org-nobody")), Err(Error::NotRegistered(_))));

    let before = server.counters().token_refresh_ok;
    let t = r.force_refresh(Target::Workspace(&s.workspace_id)).unwrap();
    assert_eq!(server.counters().token_refresh_ok, before + 1, "a fresh token is refreshed anyway");
    assert_ne!(t.access_token, s.access.as_str());
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token, t.access_token, "the cache has the new token");
    assert!(matches!(r.force_refresh(Target::Workspace("org-nobody")), Err(Error::NotRegistered(_))));

    b.registry.put(&row("revoked")).unwrap();
    r.invalidate(&s.workspace_id);
    assert!(matches!(r.force_refresh(Target::Workspace(&s.workspace_id)), Err(Error::Revoked(_))));
    assert_eq!(server.counters().token_refresh_ok, before + 1, "nothing sent for a revoked workspace");
    // A revoked workspace can still be looked at.
    assert_eq!(r.inspect(Target::Workspace(&s.workspace_id)).unwrap().registry, Some(row("revoked")));
}

/// The stored token's `(access_token, refresh_token, expires_at)`.
fn stored_pair(b: &linear_oauth_host::Backends, secret_id: &str) -> (String, String, String) {
    let v = stored(b, secret_id);
    let f = |k: &str| v[k].as_str().unwrap().to_owned();
    (f("access_token"), f("refresh_token"), f("expires_at"))
}

#[test]
fn revoke_ends_the_grant_at_linear() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    let log = Arc::new(Captured::default());
    let r = resolver_with(&server, &b, Some(log.clone()));
    r.resolve(&s.workspace_id).unwrap();
    let rev = r.revoke(&s.workspace_id, false, false).unwrap();
    assert_eq!(rev.outcome, RevokeOutcome::Revoked, "{rev:?}");
    assert_eq!(rev.linear_status, Some(200));
    assert!(!rev.purged);
    // Really dead at Linear: every token of the grant.
    assert!(!server.access_token_live(&s.access) && !server.refresh_token_live(&s.refresh));
    assert_eq!(b.registry.get(&s.workspace_id).unwrap().unwrap().status, "revoked");
    assert!(matches!(r.resolve(&s.workspace_id), Err(Error::Revoked(_))), "cached token not served after revoke");
    // The kept secret is marked revoked (and expired, for old readers), so the
    // secret paths are revoked too, without asking Linear.
    assert!(b.secrets.get(&s.secret_id).unwrap().is_some());
    let posts = server.counters().token_requests;
    assert!(matches!(r.resolve_secret(&s.secret_id), Err(Error::Revoked(_))));
    assert!(matches!(r.force_refresh(Target::Secret(&s.secret_id)), Err(Error::Revoked(_))));
    assert_eq!(server.counters().token_requests, posts);
    let shown = format!("{rev:?} {}", log.text());
    assert!(!shown.contains(&s.access) && !shown.contains(&s.refresh) && !shown.contains(CLIENT_SECRET), "{shown}");

    // Again, with purge: Linear cannot revoke a dead grant, the refresh proves it dead.
    let again = r.revoke(&s.workspace_id, true, false).unwrap();
    assert_eq!(again.outcome, RevokeOutcome::AlreadyDead, "{again:?}");
    assert!(again.purged);
    assert!(b.secrets.get(&s.secret_id).unwrap().is_none());
    assert!(matches!(r.revoke("org-none", false, false), Err(Error::NotRegistered(_))));
}

#[test]
fn revoke_of_a_grant_revoked_out_of_band_is_already_dead() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    let r = resolver_with(&server, &b, None);
    assert!(server.revoke_grant(&s.refresh));
    let before = server.counters();
    let rev = r.revoke(&s.workspace_id, true, false).unwrap();
    assert_eq!(rev.outcome, RevokeOutcome::AlreadyDead, "{rev:?}");
    assert!(rev.outcome.confirmed());
    // Bearer 401, then the refresh token 400, then the refresh answered invalid_grant.
    let after = server.counters();
    assert_eq!((after.revoke - before.revoke, after.invalid_grant - before.invalid_grant), (2, 1));
    assert_eq!(rev.linear_status, Some(400));
    assert!(rev.purged && b.secrets.get(&s.secret_id).unwrap().is_none());
    assert_eq!(b.registry.get(&s.workspace_id).unwrap().unwrap().status, "revoked");
}

#[test]
fn revoke_with_an_expired_access_token_sends_the_refresh_token() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", -60);
    let r = resolver_with(&server, &b, None);
    let rev = r.revoke(&s.workspace_id, false, false).unwrap();
    assert_eq!((rev.outcome, rev.linear_status), (RevokeOutcome::Revoked, Some(200)));
    assert_eq!(server.counters().revoke, 1, "no Bearer attempt with an expired token");
    assert!(!server.refresh_token_live(&s.refresh) && !server.access_token_live(&s.access));
}

#[test]
fn revoke_when_linear_fails_marks_the_row_and_keeps_the_secret() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    let r = resolver_with(&server, &b, None);
    server.set_faults(FaultsPatch {
        revoke_fail_next: Some(FailNext { count: 1, status: 503, body: None }),
        ..Default::default()
    });
    let rev = r.revoke(&s.workspace_id, true, false).unwrap();
    let RevokeOutcome::Failed(reason) = &rev.outcome else { panic!("{rev:?}") };
    assert!(reason.contains("503"), "{reason}");
    assert_eq!(rev.linear_status, Some(503));
    assert!(!rev.purged, "purge waits for a confirmed revoke");
    assert_eq!(b.registry.get(&s.workspace_id).unwrap().unwrap().status, "revoked", "fail closed");
    assert!(server.refresh_token_live(&s.refresh), "nothing reached the grant");
    let (access, refresh, expires_at) = stored_pair(&b, &s.secret_id);
    assert_eq!((access.as_str(), refresh.as_str()), (s.access.as_str(), s.refresh.as_str()));
    assert!(expires_at <= in_secs(0), "kept secret marked expired: {expires_at}");
    assert!(matches!(r.resolve(&s.workspace_id), Err(Error::Revoked(_))));

    // Linear unreachable: failed too.
    let mut o = options(&server);
    o.api_base = format!("http://127.0.0.1:{}", closed_port());
    let offline = linear_oauth_host::Resolver::with_backends(o, b.clone()).unwrap();
    let rev = offline.revoke(&s.workspace_id, true, false).unwrap();
    assert!(matches!(rev.outcome, RevokeOutcome::Failed(_)), "{rev:?}");
    assert_eq!((rev.linear_status, rev.purged), (None, false));

    // Once Linear answers, the next revoke confirms (with the refresh token:
    // the stored access token is marked expired) and purges.
    let rev = r.revoke(&s.workspace_id, true, false).unwrap();
    assert_eq!(rev.outcome, RevokeOutcome::Revoked, "{rev:?}");
    assert!(rev.purged);
    assert!(!server.refresh_token_live(&s.refresh));
}

/// A loopback port nobody listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn purge_without_confirmation_keeps_the_secret_unless_forced() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    let r = resolver_with(&server, &b, None);
    // Linear refuses both revokes although the grant is live.
    let refuse_twice =
        || FaultsPatch { revoke_fail_next: Some(FailNext { count: 2, status: 400, body: None }), ..Default::default() };
    server.set_faults(refuse_twice());
    let rev = r.revoke(&s.workspace_id, true, false).unwrap();
    let RevokeOutcome::NotConfirmed(detail) = &rev.outcome else { panic!("{rev:?}") };
    assert!(detail.contains("live"), "{detail}");
    assert!(!rev.purged && b.secrets.get(&s.secret_id).unwrap().is_some());
    // The probing refresh found the grant live; its rotated token was written back.
    let (_, refresh, expires_at) = stored_pair(&b, &s.secret_id);
    assert_ne!(refresh, s.refresh);
    assert!(server.refresh_token_live(&refresh), "the stored refresh token is the live one");
    assert!(expires_at <= in_secs(0), "kept secret marked expired: {expires_at}");
    assert_eq!(server.counters().revoke, 2);

    server.set_faults(refuse_twice());
    let rev = r.revoke(&s.workspace_id, true, true).unwrap();
    assert!(matches!(rev.outcome, RevokeOutcome::NotConfirmed(_)), "{rev:?}");
    assert!(rev.purged, "force deletes anyway");
    assert!(b.secrets.get(&s.secret_id).unwrap().is_none());
}

#[test]
fn revoke_with_a_live_grant_after_a_refusal_revokes_with_the_refreshed_token() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    let r = resolver_with(&server, &b, None);
    server.set_faults(FaultsPatch {
        revoke_fail_next: Some(FailNext { count: 1, status: 400, body: None }),
        ..Default::default()
    });
    let rev = r.revoke(&s.workspace_id, false, false).unwrap();
    assert_eq!(rev.outcome, RevokeOutcome::Revoked, "{rev:?}");
    let (access, refresh, _) = stored_pair(&b, &s.secret_id);
    assert_ne!(refresh, s.refresh, "the rotated token was written back");
    assert!(
        !server.refresh_token_live(&refresh)
            && !server.access_token_live(&access)
            && !server.access_token_live(&s.access)
    );
}

#[test]
fn revoke_without_a_readable_token_is_not_confirmed() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    let r = resolver_with(&server, &b, None);
    b.secrets.put(&s.secret_id, r#"{"access_token":"x"}"#, None).unwrap();
    let rev = r.revoke(&s.workspace_id, true, false).unwrap();
    assert!(matches!(&rev.outcome, RevokeOutcome::NotConfirmed(m) if m.contains("unreadable")), "{rev:?}");
    assert!(!rev.purged && b.secrets.get(&s.secret_id).unwrap().is_some());
    assert_eq!(server.counters().revoke, 0);
    assert_eq!(b.registry.get(&s.workspace_id).unwrap().unwrap().status, "revoked");
}

/// A refresher that died after Linear rotated the token but before writing it
/// back: it left a lease and a spent refresh token in the store.
fn died_mid_refresh(
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
    assert!(server.access_token_live(t.access_token.secret()));
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

#[test]
fn invalidate_reaches_tokens_resolved_by_secret() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    let r = resolver_with(&server, &b, None);
    assert_eq!(r.resolve_secret(&s.secret_id).unwrap().access_token, s.access);
    b.secrets
        .put(&s.secret_id, &token_json("rotated-elsewhere", "r", &in_secs(3600), &s.workspace_id, "acme"), None)
        .unwrap();
    r.invalidate(&s.workspace_id);
    assert_eq!(r.resolve_secret(&s.secret_id).unwrap().access_token, "rotated-elsewhere");
}

/// Uncached calls beyond `max_instances` queue for an instance instead of
/// each making one (a Store whose memory may grow to 64 MiB), and the queue
/// does not deadlock the single flight: 1,000 concurrent resolves of one
/// expiring workspace end with one refresh, and of 100 expiring workspaces
/// with one refresh each. Seen through the pool's counters, not timing.
#[test]
fn concurrent_uncached_resolves_stay_within_the_instance_bound() {
    for workspaces in [1usize, 100] {
        let server = server();
        let b = memory();
        let seeded: Vec<Seeded> = (0..workspaces).map(|i| seed(&server, &b, &format!("bound{i:03}"), 10)).collect();
        // Slow enough that the callers overlap.
        server.set_faults(FaultsPatch { latency_ms: Some(50), ..Default::default() });
        let r = Resolver::with_backends(Options { max_instances: 3, ..options(&server) }, b).unwrap();
        let barrier = Arc::new(Barrier::new(1000));
        let handles: Vec<_> = (0..1000)
            .map(|i| {
                let (r, barrier, ws) = (r.clone(), barrier.clone(), seeded[i % workspaces].workspace_id.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    r.resolve(&ws).map(|t| (ws, t.access_token.secret().to_owned()))
                })
            })
            .collect();
        let tokens: HashMap<String, HashSet<String>> =
            handles.into_iter().map(|h| h.join().unwrap().unwrap()).fold(HashMap::new(), |mut m, (ws, t)| {
                m.entry(ws).or_default().insert(t);
                m
            });
        assert_eq!(server.counters().token_refresh, workspaces as u64, "one refresh per workspace");
        assert!(tokens.values().all(|t| t.len() == 1), "every caller of a workspace got its one new token");
        let stats = r.pool_stats();
        assert_eq!(stats.max_instances, 3);
        assert!(stats.peak_in_use <= 3 && stats.instances_created <= 3, "{workspaces} workspaces: {stats:?}");
        if workspaces == 1 {
            assert_eq!(stats.peak_in_use, 1, "callers of one workspace in flight wait outside the pool: {stats:?}");
        }
    }
}

#[test]
fn max_instances_must_be_positive() {
    let server = server();
    let e = Resolver::with_backends(Options { max_instances: 0, ..options(&server) }, memory()).unwrap_err();
    assert!(matches!(e, Error::InvalidInput(ref m) if m.contains("max_instances")), "{e:?}");
}
