//! The host API against the Linear-compatible test server.

mod admin;
#[path = "../common/mod.rs"]
mod common;
mod fleet;
mod metrics;
mod refresh;
mod webhook;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;
use linear_oauth_host::store::{Leases, SecretStore};
use linear_oauth_host::{
    Backends, Error, LeaseGrant, Lifetime, LogLevel, Options, PutOutcome, RegistryRow, Resolver, RevokeOutcome, Target,
    Versioned,
};
use linear_oauth_testserver::{FailNext, FaultsPatch, TestServer};

#[test]
fn happy_path_and_cache() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    let r = resolver_with(&server, &b, None);
    let t = r.resolve(&s.workspace_id).unwrap();
    assert_eq!(t.access_token(), s.access);
    assert_eq!(t.workspace_slug(), "acme");
    assert_eq!(t.secret_id(), s.secret_id);
    assert_eq!(t.scope(), "read write");
    // Served from memory: a changed store is not read again within the TTL.
    b.secrets.put(&s.secret_id, &token_json("other", "r", &in_secs(3600), &s.workspace_id, "acme"), None).unwrap();
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token(), s.access);
    // The secret id is another key, and the component keeps no copy of a
    // fresh stored token (its refresh token and client secret): it reads.
    assert_eq!(r.resolve_secret(&s.secret_id).unwrap().access_token(), "other");
    r.invalidate(&s.workspace_id);
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token(), "other");
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
                ..Default::default()
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
            ..Default::default()
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
        ..Default::default()
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
    assert_eq!((t.secret_id(), t.access_token().secret()), (other.secret_id.as_str(), other.access.as_str()));
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
            assert_eq!(result.unwrap().access_token(), "lin_oauth_vector_access", "{}", case["name"]);
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
    assert_ne!(t.access_token(), s.access);
    let stored = stored(&b, &s.secret_id);
    assert_eq!(stored["access_token"], t.access_token().secret());
    let new_refresh = stored["refresh_token"].as_str().unwrap();
    assert_ne!(new_refresh, s.refresh, "rotated refresh token stored");
    assert!(server.refresh_token_live(new_refresh));
    assert!(!server.refresh_token_live(&s.refresh));
    assert_eq!(stored["installed_at"], "2026-01-01T00:00:00.000Z");
    assert_ne!(stored["updated_at"], "2026-01-01T00:00:00.000Z");
    assert_eq!(stored["team_hint"]["kept"], true, "unknown fields kept");
    assert_eq!(stored["expires_at"], t.expires_at());
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
    assert_ne!(t.access_token(), s.access);
    assert_eq!(stored["access_token"], t.access_token().secret());
    assert_eq!(stored["refresh_token"], s.refresh.as_str(), "no refresh_token in the answer: the old one stays");
}

#[test]
fn a_cached_token_is_not_served_once_it_is_expiring() {
    let (server, b, s, _) = acme(61); // fresh for another second under the 60 s threshold
    let r = Resolver::with_backends(Options { refresh_ahead: Duration::ZERO, ..options(&server) }, b.clone()).unwrap();
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token(), s.access);
    assert!(r.cached(&s.workspace_id).is_some());
    std::thread::sleep(Duration::from_millis(1300));
    assert!(r.cached(&s.workspace_id).is_none(), "inside the cache TTL, but expiring");
    assert_ne!(r.resolve(&s.workspace_id).unwrap().access_token(), s.access);
    assert_eq!(server.counters().token_refresh_ok, 1);
}

#[test]
fn a_refresh_by_another_resolver_is_adopted_without_refreshing_again() {
    let (server, b, s, a) = acme(61);
    assert_eq!(a.resolve(&s.workspace_id).unwrap().access_token(), s.access, "cached in a");
    // "Another process" that refreshes now.
    let eager = Options { refresh_threshold: Duration::from_secs(600), ..options(&server) };
    let by_b = Resolver::with_backends(eager, b.clone()).unwrap().resolve(&s.workspace_id).unwrap();
    assert_ne!(by_b.access_token(), s.access);
    std::thread::sleep(Duration::from_millis(1300)); // a's copy is now expiring
    assert_eq!(a.resolve(&s.workspace_id).unwrap().access_token(), by_b.access_token());
    assert_eq!(server.counters().token_requests, 1);
}

#[test]
fn force_refresh_rotates_a_fresh_token() {
    let (server, b, s, r) = acme(3600);
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token(), s.access);
    let t = r.force_refresh(Target::Secret(&s.secret_id)).unwrap();
    assert_ne!(t.access_token(), s.access);
    assert_eq!(stored(&b, &s.secret_id)["access_token"], t.access_token().secret());
    assert_eq!(
        r.resolve(&s.workspace_id).unwrap().access_token(),
        t.access_token(),
        "the cached old token was dropped"
    );
    assert_eq!(r.resolve_secret(&s.secret_id).unwrap().access_token(), t.access_token());
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
                    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token(), s.access);
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
    assert_ne!(r.resolve(&s.workspace_id).unwrap().access_token(), s.access);
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
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token(), "fixed");

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
        assert_ne!(r.resolve(&s.workspace_id).unwrap().access_token(), s.access);
    }
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
    secrets.extend([t.access_token().secret().to_owned(), st["refresh_token"].as_str().unwrap().to_owned()]);
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
    refresh::linear_oauth_testserver_refresh(&server, &s3.refresh);
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
    assert_ne!(t.access_token(), s.access);
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
fn invalidate_reaches_tokens_resolved_by_secret() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    let r = resolver_with(&server, &b, None);
    assert_eq!(r.resolve_secret(&s.secret_id).unwrap().access_token(), s.access);
    b.secrets
        .put(&s.secret_id, &token_json("rotated-elsewhere", "r", &in_secs(3600), &s.workspace_id, "acme"), None)
        .unwrap();
    r.invalidate(&s.workspace_id);
    assert_eq!(r.resolve_secret(&s.secret_id).unwrap().access_token(), "rotated-elsewhere");
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
                    r.resolve(&ws).map(|t| (ws, t.access_token().secret().to_owned()))
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
