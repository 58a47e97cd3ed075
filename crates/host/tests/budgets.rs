//! Issue 20, item 4: time budgets that hold under a slow Linear. A request
//! may take 3 x `http_timeout` (the host ends it there); a retry is sent only
//! when that and the write-back fit in the lease and the call, a wait for
//! another refresher ends in time for a refresh of one's own, write-back
//! retries stop before the call deadline, and a file lock held by a stopped
//! process is waited for boundedly.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use linear_oauth_host::{Backends, Error, Options, Resolver, Target};
use linear_oauth_testserver::{FailNext, FaultsPatch};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The next token request answers 503 with `Retry-After: retry_after`.
fn unavailable(retry_after: &str) -> FaultsPatch {
    FaultsPatch {
        fail_next: Some(FailNext { count: 1, status: 503, body: None }),
        fail_retry_after: Some(retry_after.into()),
        ..Default::default()
    }
}

/// Runs `f` on a thread; its result, or `None` if it did not return within
/// `bound` (a call blocked forever must fail the test, not hang it).
fn within<T: Send + 'static>(bound: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(bound).ok()
}

#[test]
fn a_retry_whose_worst_case_could_outlast_the_lease_or_the_call_is_not_sent() {
    let server = server();
    let b = memory();
    let base = Options { failure_memory: Duration::ZERO, ..options(&server) };
    let tight = [
        // The case: default timings (5 s, 25 s lease); a retry after
        // 14 s may run until 29 s, past the lease.
        ("lease", "14", Options { http_timeout: secs(5), lease_ttl: secs(25), ..base.clone() }),
        // 3 x 2 s + 2 s = 8 s: an 8 s lease leaves no time to wait first.
        ("lease", "3", Options { http_timeout: secs(2), lease_ttl: secs(8), ..base.clone() }),
        ("call", "3", Options { http_timeout: secs(2), call_deadline: secs(10), ..base.clone() }),
    ];
    for (i, (what, retry_after, o)) in tight.into_iter().enumerate() {
        let s = seed(&server, &b, &format!("tight{i}"), -5);
        let r = Resolver::with_backends(o, b.clone()).unwrap();
        server.set_faults(unavailable(retry_after));
        let before = server.counters().token_requests;
        let e = r.resolve(&s.workspace_id).unwrap_err();
        assert!(matches!(e, Error::TokenEndpoint { status: 503, .. }), "{what}: {e:?}");
        let sent = server.counters().token_requests - before;
        assert_eq!(sent, 1, "a retry after {retry_after} s could end past the {what}");
        assert!(server.refresh_token_live(&s.refresh), "nothing was spent");
    }
    // Where it fits, the same answer is retried once Retry-After has passed.
    let s = seed(&server, &b, "roomy", -5);
    let r = Resolver::with_backends(Options { http_timeout: secs(2), lease_ttl: secs(12), ..base }, b.clone()).unwrap();
    server.set_faults(unavailable("1"));
    let before = server.counters().token_requests;
    let t = r.resolve(&s.workspace_id).unwrap();
    assert_ne!(t.access_token(), s.access);
    assert_eq!(server.counters().token_requests - before, 2);
}

fn lease_key(secret_id: &str) -> String {
    format!("refresh:{secret_id}")
}

/// A caller that waited for a dead holder's lease until the end of its call
/// had no time left to save what it refreshed: the call deadline trapped the
/// write-back, and the rotated refresh token was lost with it. The wait now
/// ends while a refresh of its own (3 x 1 s + 2 s) still fits the 8 s call.
#[test]
fn a_long_lease_wait_leaves_a_refresh_and_its_write_back_their_time() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", -10);
    let (store, slow) = failing_puts(&b, Duration::from_millis(800));
    // Another process took the lease and died; it runs out 5.5 s from now.
    let dead_until = Instant::now() + Duration::from_millis(5500);
    assert!(b.registry.try_lease(&lease_key(&s.secret_id), "dead", Duration::from_millis(5500), "").unwrap().acquired);
    let o = Options {
        http_timeout: secs(1),
        lease_ttl: secs(5),
        lease_wait: secs(20),
        call_deadline: secs(8),
        failure_memory: Duration::ZERO,
        ..options(&server)
    };
    let r = Resolver::with_backends(o, slow).unwrap();
    let e = r.resolve(&s.workspace_id).unwrap_err();
    assert!(matches!(&e, Error::Transport(m) if m.contains("another process has been refreshing")), "{e:?}");
    assert_eq!(server.counters().token_requests, 0, "nothing was spent");
    // The store recovers and the dead holder's lease runs out: the next call
    // refreshes, and what Linear rotated is what is stored.
    store.heal();
    std::thread::sleep(dead_until.saturating_duration_since(Instant::now()));
    let t = r.resolve(&s.workspace_id).unwrap();
    assert_ne!(t.access_token(), s.access);
    let now_stored = stored(&b, &s.secret_id);
    assert_eq!(now_stored["access_token"], t.access_token().secret());
    assert!(server.refresh_token_live(now_stored["refresh_token"].as_str().unwrap()));
}

/// Write-back retries used to run into the call deadline, whose trap dropped
/// the rotated token the failed write would have kept in memory. They now
/// stop while one more attempt, as slow as the last, could not end in time.
#[test]
fn write_back_retries_stop_before_the_call_deadline_and_keep_the_rotated_token() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", -10);
    let (store, slow) = failing_puts(&b, Duration::from_millis(1500));
    let sink = Arc::new(Captured::default());
    let o = Options {
        http_timeout: secs(1),
        lease_ttl: secs(5),
        call_deadline: secs(5),
        log_sink: Some(sink.clone()),
        ..options(&server)
    };
    let r = Resolver::with_backends(o, slow).unwrap();
    let t = r.resolve(&s.workspace_id).unwrap();
    assert_ne!(t.access_token(), s.access, "the caller gets the rotated token");
    assert!(sink.text().contains("keeping it in memory"), "{}", sink.text());
    assert_eq!(stored(&b, &s.secret_id)["refresh_token"], s.refresh.as_str(), "not written yet");
    // The store recovers: the next call writes the kept token.
    store.heal();
    r.invalidate(&s.workspace_id);
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token(), t.access_token());
    let now_stored = stored(&b, &s.secret_id);
    assert_eq!(now_stored["access_token"], t.access_token().secret());
    assert!(server.refresh_token_live(now_stored["refresh_token"].as_str().unwrap()));
    assert_eq!(server.counters().token_refresh, 1);
}

/// A process stopped while holding the file store's lock on a lease (SIGSTOP,
/// a frozen Lambda, a hung NFS mount) used to block every other refresher of
/// that secret forever. They now wait `lease_wait` and get the error of any
/// lease wait that ran out.
#[test]
fn a_lease_lock_held_by_a_stopped_process_ends_as_a_lease_wait_timeout() {
    let server = server();
    let dir = std::env::temp_dir().join(format!("lo-budgets-flock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let b = Backends::open(&format!("file:{}", dir.display())).unwrap();
    let s = seed(&server, &b, "acme", -10);
    let lease_wait = secs(1);
    let r = Resolver::with_backends(Options { lease_wait, ..options(&server) }, b.clone()).unwrap();
    r.resolve(&s.workspace_id).unwrap(); // a refresh: the lease's lock file exists now
                                         // flock treats another open file like another process.
    let held: Vec<std::fs::File> = std::fs::read_dir(dir.join("locks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("lease-"))
        .map(|p| {
            let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            f.lock().unwrap();
            f
        })
        .collect();
    assert_eq!(held.len(), 1);
    let (r2, workspace) = (r.clone(), s.workspace_id.clone());
    let got = within(lease_wait + secs(5), move || r2.force_refresh(Target::Workspace(&workspace)).map(|_| ()))
        .expect("the refresh waited without bound for the stopped process's lock");
    let e = got.unwrap_err();
    assert!(matches!(&e, Error::Transport(m) if m.contains("another process has been refreshing")), "{e:?}");
    assert_eq!(server.counters().token_requests, 1, "no refresh without the lease");
    drop(held);
    r.force_refresh(Target::Workspace(&s.workspace_id)).unwrap();
    assert_eq!(server.counters().token_requests, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}
