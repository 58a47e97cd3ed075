//! Issue 11, host side: a slow network or store ends a call as a transport
//! error and frees its lease; options, ids and stored values are bounded with
//! clear errors instead of panics, traps or store errors.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use linear_oauth_host::store::SecretStore;
use linear_oauth_host::{Backends, Error, Options, PutOutcome, Resolver, Target, Versioned};
use linear_oauth_testserver::{FaultsPatch, TestServer};

fn lease_key(secret_id: &str) -> String {
    format!("refresh:{secret_id}")
}

/// Another process would get the refresh lease right now.
fn lease_is_free(b: &Backends, secret_id: &str) -> bool {
    let key = lease_key(secret_id);
    let g = b.registry.try_lease(&key, "another-process", Duration::from_secs(25), "").unwrap();
    if g.acquired {
        b.registry.release_lease(&key, "another-process").unwrap();
    }
    g.acquired
}

fn assert_no_internals(e: &Error) {
    let m = e.to_string();
    for bad in ["wasm", "backtrace", "bug", "0x"] {
        assert!(!m.contains(bad), "{bad:?} in {m}");
    }
}

#[test]
fn a_dripping_token_endpoint_is_a_transport_error_and_frees_the_lease() {
    let server = server();
    let b = memory();
    // Expired: a transport failure cannot be served around with the old token.
    let s = seed(&server, &b, "acme", -10);
    // Each byte arrives well within the per-phase timeout; the body takes minutes.
    server.set_faults(FaultsPatch { drip_ms: Some(300), ..Default::default() });
    let o =
        Options { http_timeout: Duration::from_millis(500), call_deadline: Duration::from_secs(8), ..options(&server) };
    let r = Resolver::with_backends(o, b.clone()).unwrap();
    let started = Instant::now();
    let err = r.resolve(&s.workspace_id).unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert_no_internals(&err);
    // The whole-request deadline (3 x 500 ms) ended it, not the 8 s call deadline.
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(lease_is_free(&b, &s.secret_id), "the lease was left taken");
}

/// Delays every write, like a store on a stalled network disk.
#[derive(Debug)]
struct SlowPuts {
    inner: Backends,
    delay: Duration,
}

impl SecretStore for SlowPuts {
    fn get(&self, id: &str) -> Result<Option<Versioned>, Error> {
        self.inner.secrets.get(id)
    }
    fn put(&self, id: &str, value: &str, expected: Option<&str>) -> Result<PutOutcome, Error> {
        std::thread::sleep(self.delay);
        self.inner.secrets.put(id, value, expected)
    }
    fn delete(&self, id: &str) -> Result<bool, Error> {
        self.inner.secrets.delete(id)
    }
}

#[test]
fn a_call_past_its_deadline_is_a_transport_error_and_releases_its_lease() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 10);
    let slow = Backends {
        secrets: Arc::new(SlowPuts { inner: b.clone(), delay: Duration::from_millis(3500) }),
        registry: b.registry.clone(),
    };
    let sink = Arc::new(Captured::default());
    // The shortest call that fits a request (3 x 0.3 s) and its write-back (2 s).
    let o = Options {
        http_timeout: Duration::from_millis(300),
        call_deadline: Duration::from_secs(3),
        log_sink: Some(sink.clone()),
        ..options(&server)
    };
    let r = Resolver::with_backends(o, slow).unwrap();
    // The write-back (lease held) returns after the deadline: the instance traps.
    let err = r.resolve(&s.workspace_id).unwrap_err();
    assert!(matches!(&err, Error::Transport(m) if m.contains("deadline")), "{err:?}");
    assert_no_internals(&err);
    assert!(lease_is_free(&b, &s.secret_id), "a trapped call kept its lease");
    // The backtrace is in the log for whoever debugs it, at warn: not a bug.
    assert!(sink.text().contains("past its deadline"), "{}", sink.text());
    // The write did land; the resolver's in-process lock is free too.
    let stored = stored(&b, &s.secret_id);
    assert_ne!(stored["refresh_token"], s.refresh.as_str());
    r.invalidate(&s.workspace_id);
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token(), stored["access_token"].as_str().unwrap());
}

#[test]
fn hand_built_options_are_validated() {
    let server = server();
    for o in [
        Options { http_timeout: Duration::ZERO, ..options(&server) },
        Options { lease_ttl: Duration::ZERO, ..options(&server) },
        Options { lease_wait: Duration::from_secs(10 * 86_400), ..options(&server) },
        Options { call_deadline: Duration::MAX, ..options(&server) },
    ] {
        let err = Resolver::with_backends(o.clone(), memory()).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{o:?}: {err:?}");
        assert!(matches!(Resolver::new(o), Err(Error::InvalidInput(_))));
    }
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("lo-hardening-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

#[test]
fn overlong_ids_are_invalid_input_in_every_call() {
    let server = server();
    let dir = tempdir("ids");
    let r = Resolver::new(Options { store: format!("file:{}", dir.display()), ..options(&server) }).unwrap();
    for id in ["a".repeat(300), ":".repeat(100), "é".repeat(40)] {
        for (what, result) in [
            ("resolve", r.resolve(&id).map(|_| ())),
            ("resolve_secret", r.resolve_secret(&id).map(|_| ())),
            ("force_refresh", r.force_refresh(Target::Secret(&id)).map(|_| ())),
            ("inspect", r.inspect(Target::Secret(&id)).map(|_| ())),
        ] {
            assert!(matches!(result, Err(Error::InvalidInput(_))), "{what}({id}): {result:?}");
        }
    }
    // The longest id accepted fits the file store: a plain "not there".
    assert!(matches!(r.resolve_secret(&"a".repeat(200)), Err(Error::SecretMissing(_))));
    assert!(!dir.exists(), "reads created the store directory");
    // A prefix that would make installed ids too long is refused up front.
    let long_prefix = Options { secret_prefix: "p".repeat(151), ..options(&server) };
    assert!(matches!(Resolver::with_backends(long_prefix, memory()), Err(Error::InvalidInput(_))));
    Resolver::with_backends(Options { secret_prefix: "p".repeat(150), ..options(&server) }, memory()).unwrap();
}

/// A resolver on a file store in a fresh directory, holding workspace `acme`.
fn on_file_store(tag: &str, expires_in_s: i64) -> (TestServer, std::path::PathBuf, Resolver, Backends, Seeded) {
    let server = server();
    let dir = tempdir(tag);
    let r = Resolver::new(Options { store: format!("file:{}", dir.display()), ..options(&server) }).unwrap();
    let b = r.backends().clone();
    let s = seed(&server, &b, "acme", expires_in_s);
    (server, dir, r, b, s)
}

#[test]
fn an_oversized_secret_file_is_a_store_error_not_a_trap() {
    let (_server, dir, r, _, s) = on_file_store("big", 3600);
    let path = dir.join("secrets").join(format!("{}.json", s.secret_id));
    assert!(path.exists());
    // 100 MB (sparse) would exhaust the component's memory.
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(100 << 20).unwrap();
    let err = r.resolve(&s.workspace_id).unwrap_err();
    assert!(matches!(&err, Error::Store(m) if m.contains(&path.display().to_string())), "{err:?}");
    // Valid JSON just past the bound is refused too, never served.
    let mut v: serde_json::Value =
        serde_json::from_str(&token_json(&s.access, &s.refresh, &in_secs(3600), &s.workspace_id, "acme")).unwrap();
    v["padding"] = "x".repeat(64 * 1024).into();
    std::fs::write(&path, v.to_string()).unwrap();
    r.invalidate(&s.workspace_id);
    assert!(matches!(r.resolve(&s.workspace_id), Err(Error::Store(_))));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_store_that_cannot_take_the_rotated_token_is_not_refreshed() {
    let (server, dir, r, b, s) = on_file_store("unwritable", 10);
    // Every write of this secret fails: its lock file's place is taken by a directory.
    let blocker = dir.join("locks").join(format!("secret-{}.lock", s.secret_id));
    std::fs::remove_file(&blocker).unwrap();
    std::fs::create_dir(&blocker).unwrap();
    let err = r.resolve(&s.workspace_id).unwrap_err();
    assert!(matches!(&err, Error::Store(m) if m.contains("not refreshing")), "{err:?}");
    assert_eq!(server.counters().token_refresh, 0, "the refresh token was not spent");
    assert!(server.refresh_token_live(&s.refresh));
    assert_eq!(stored(&b, &s.secret_id)["refresh_token"], s.refresh.as_str(), "store unchanged, not blanked");
    // Once the store takes writes again, the next call refreshes and saves.
    std::fs::remove_dir(&blocker).unwrap();
    let t = r.resolve(&s.workspace_id).unwrap();
    let stored = stored(&b, &s.secret_id);
    assert_ne!(t.access_token(), s.access);
    assert_eq!(stored["access_token"], t.access_token().secret());
    assert!(server.refresh_token_live(stored["refresh_token"].as_str().unwrap()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_corrupt_registry_is_a_store_error_that_names_it() {
    let (_server, dir, r, _, s) = on_file_store("registry", 3600);
    let row = dir.join("registry").join(format!("{}.json", linear_oauth_core::escape_id(&s.workspace_id)));
    assert!(row.exists(), "{}", row.display());
    std::fs::write(&row, "{not json").unwrap();
    let err = r.resolve(&s.workspace_id).unwrap_err();
    assert!(matches!(&err, Error::Store(m) if m.contains(&row.display().to_string())), "{err:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_store_directory_others_can_reach_is_refused_unchanged() {
    let dir = tempdir("mode");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let err = Resolver::new(Options { store: format!("file:{}", dir.display()), ..Options::default() }).unwrap_err();
    assert!(matches!(&err, Error::Store(m) if m.contains("chmod 700")), "{err:?}");
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777, 0o1777);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 23: a resolver that sees many more workspaces than
/// `cache_max_entries` keeps at most that many tokens in memory (the oldest
/// go), its refresh locks go with their last user, and an evicted workspace
/// still resolves (from the component, its token unchanged).
#[test]
fn the_caches_of_a_resolver_stay_bounded_across_many_workspaces() {
    let server = server();
    let b = memory();
    let seeded: Vec<Seeded> = (0..300).map(|i| seed(&server, &b, &format!("ws{i}"), 3600)).collect();
    let o = Options { cache_max_entries: 64, ..options(&server) };
    let r = Resolver::with_backends(o, b.clone()).unwrap();
    for s in &seeded {
        assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token(), s.access.as_str());
        let stats = r.cache_stats();
        assert!(stats.tokens <= 64, "{stats:?}");
    }
    // The first ones were evicted: resolved again through the component, with
    // no request to Linear.
    assert!(r.cached(&seeded[0].workspace_id).is_none());
    assert_eq!(r.resolve(&seeded[0].workspace_id).unwrap().access_token(), seeded[0].access.as_str());
    assert_eq!(r.cache_stats().refresh_locks, 0);
    assert_eq!(server.counters().token_requests, 0);
    // Out of range is invalid input naming the option.
    for bad in [0, 10_000_001] {
        let e = Resolver::with_backends(Options { cache_max_entries: bad, ..options(&server) }, b.clone()).unwrap_err();
        assert!(matches!(&e, Error::InvalidInput(m) if m.contains("cache_max_entries")), "{e:?}");
    }
}
