//! The token lifecycle around Linear's answers: rate limits and outages
//! (retries, serving through, the shared failure memory), 401 reports, and
//! refresh-ahead.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;
use linear_oauth_host::{Error, Lifetime, Options, Resolver};
use linear_oauth_testserver::{FailNext, FaultsPatch, GraceMode};

fn fail(count: u32, status: u16) -> FaultsPatch {
    FaultsPatch { fail_next: Some(FailNext { count, status, body: None }), ..Default::default() }
}

/// `n` threads call `f` at once; their results in thread order.
fn concurrently<T: Send + 'static>(n: usize, f: impl Fn() -> T + Send + Sync + 'static) -> Vec<T> {
    let (barrier, f) = (Arc::new(Barrier::new(n)), Arc::new(f));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (b, f) = (barrier.clone(), f.clone());
            std::thread::spawn(move || {
                b.wait();
                f()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

// ------------------------------------------------------- rate limits, outages

#[test]
fn an_outage_shorter_than_the_token_life_is_invisible_and_shares_one_failure() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 30); // due (threshold 60 s), valid for 30 s more
    let sink = Arc::new(Captured::default());
    let r = resolver_with(&server, &b, Some(sink.clone()));
    let outage = Instant::now();
    server.set_faults(fail(100_000, 503));
    // Two bursts of 64 concurrent resolves during a 3 s outage.
    for _ in 0..2 {
        let r2 = r.clone();
        let w = s.workspace_id.clone();
        for got in concurrently(64, move || r2.resolve(&w).map(|t| t.access_token().secret().to_owned())) {
            assert_eq!(got.unwrap(), s.access, "the current token, not an error");
        }
        std::thread::sleep(Duration::from_millis(1200));
    }
    let posts = server.counters().token_requests;
    assert!((1..=10).contains(&posts), "{posts} token POSTs during the outage");
    assert!(sink.text().contains("serving the unexpired stored token"), "{}", sink.text());
    assert!(server.refresh_token_live(&s.refresh), "no refresh happened");
    // The outage ends; the first resolve after it refreshes.
    std::thread::sleep(Duration::from_secs(3).saturating_sub(outage.elapsed()));
    server.set_faults(fail(0, 503));
    let t = r.resolve(&s.workspace_id).unwrap();
    assert_ne!(t.access_token(), s.access);
    assert_eq!(stored(&b, &s.secret_id)["access_token"], t.access_token().secret());
}

#[test]
fn outages_are_retried_inside_the_call_and_a_500_is_never_resent() {
    let server = server();
    let b = memory();
    let r = resolver_with(&server, &b, None);
    // Two 503s, then Linear is back: one call, three POSTs, refreshed.
    let s = seed(&server, &b, "acme", -5);
    server.set_faults(fail(2, 503));
    let t = r.resolve(&s.workspace_id).unwrap();
    assert_ne!(t.access_token(), s.access);
    assert_eq!(server.counters().token_requests, 3);
    // A 500 may hide a processed grant: one POST, then the error.
    let s = seed(&server, &b, "beta", -5);
    let before = server.counters().token_requests;
    server.set_faults(fail(5, 500));
    let e = r.resolve(&s.workspace_id).unwrap_err();
    assert!(matches!(e, Error::TokenEndpoint { status: 500, .. }), "{e:?}");
    assert_eq!(server.counters().token_requests - before, 1, "a 500 is not re-sent");
    // At most three attempts.
    server.set_faults(fail(0, 500));
    let s = seed(&server, &b, "gamma", -5);
    let before = server.counters().token_requests;
    server.set_faults(fail(10, 502));
    let e = r.resolve(&s.workspace_id).unwrap_err();
    assert!(matches!(e, Error::TokenEndpoint { status: 502, .. }), "{e:?}");
    assert_eq!(server.counters().token_requests - before, 3);
}

#[test]
fn retry_after_is_honoured_within_the_budget_and_reported() {
    let server = server();
    let b = memory();
    let r = resolver_with(&server, &b, None);
    let s = seed(&server, &b, "acme", -5);
    server.set_faults(FaultsPatch { fail_retry_after: Some("1".into()), ..fail(1, 429) });
    let started = Instant::now();
    let t = r.resolve(&s.workspace_id).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(950), "waited {:?}", started.elapsed());
    assert_ne!(t.access_token(), s.access);
    assert_eq!(server.counters().token_requests, 2);

    // Longer than the call can wait: no retry, and the error says when.
    let s = seed(&server, &b, "beta", -5);
    server.set_faults(FaultsPatch { fail_retry_after: Some("120".into()), ..fail(3, 429) });
    let before = server.counters().token_requests;
    let e = r.resolve(&s.workspace_id).unwrap_err();
    assert!(matches!(e, Error::TokenEndpoint { status: 429, .. }), "{e:?}");
    assert_eq!(server.counters().token_requests - before, 1);
    let after = e.retry_after().expect("retry_after");
    assert!(after > Duration::from_secs(110) && after <= Duration::from_secs(120), "{after:?}");
    assert!(e.to_string().contains("retry after"), "{e}");
    // The failure is remembered: the next caller gets it without a POST.
    let e2 = r.resolve(&s.workspace_id).unwrap_err();
    assert_eq!(server.counters().token_requests - before, 1, "{e2:?}");
    assert!(e2.retry_after().is_some_and(|d| d <= after), "{e2:?}");
}

#[test]
fn an_unreachable_endpoint_serves_the_unexpired_token() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 30);
    // A port nothing listens on: connection refused, retried, then served around.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let sink = Arc::new(Captured::default());
    let o =
        Options { api_base: format!("http://127.0.0.1:{closed}"), log_sink: Some(sink.clone()), ..options(&server) };
    let r = Resolver::with_backends(o, b.clone()).unwrap();
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token(), s.access);
    let log = sink.text();
    assert!(log.contains("retrying") && log.contains("connection refused"), "{log}");
    // Expired, the same outage is an error.
    let s = seed(&server, &b, "beta", -5);
    assert!(matches!(r.resolve(&s.workspace_id), Err(Error::Transport(_))));
}

#[test]
fn a_pair_lost_to_a_timeout_is_recovered_within_linears_grace() {
    let (server, b, s, _) = acme(-5);
    // Linear rotates, then its answer never arrives in time.
    server.set_faults(FaultsPatch {
        grace: Some(GraceMode::SamePair),
        post_grant_delay_ms: Some(1500),
        ..Default::default()
    });
    let o = Options { http_timeout: Duration::from_millis(400), failure_memory: Duration::ZERO, ..options(&server) };
    let r = Resolver::with_backends(o, b.clone()).unwrap();
    assert!(matches!(r.resolve(&s.workspace_id), Err(Error::Transport(_))));
    assert!(!server.refresh_token_live(&s.refresh), "the server did rotate");
    assert_eq!(stored(&b, &s.secret_id)["refresh_token"], s.refresh.as_str());
    // The next call replays the original request inside the grace window.
    server.set_faults(FaultsPatch { post_grant_delay_ms: Some(0), ..Default::default() });
    let t = r.resolve(&s.workspace_id).unwrap();
    let stored = stored(&b, &s.secret_id);
    assert_ne!(t.access_token(), s.access);
    assert_eq!(stored["access_token"], t.access_token().secret());
    assert!(server.refresh_token_live(stored["refresh_token"].as_str().unwrap()));
}

// ------------------------------------------------------------- 401 reports

#[test]
fn concurrent_reports_of_one_rejected_token_refresh_once() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600); // fresh: only the report makes it refresh
    let r = resolver_with(&server, &b, None);
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token(), s.access);
    let (r2, w, rejected) = (r.clone(), s.workspace_id.clone(), s.access.clone());
    let got =
        concurrently(32, move || r2.report_unauthorized(&w, &rejected).map(|t| t.access_token().secret().to_owned()));
    let first = got[0].clone().unwrap();
    assert_ne!(first, s.access);
    assert!(got.iter().all(|t| t.as_ref() == Ok(&first)), "every reporter gets the one new token");
    assert_eq!(server.counters().token_requests, 1);
    assert_eq!(stored(&b, &s.secret_id)["access_token"], first.as_str());
    // The cache now serves the new token.
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token(), first);
    // A late report about the old token: the stored one, no POST.
    assert_eq!(r.report_unauthorized(&s.workspace_id, &s.access).unwrap().access_token(), first);
    // Another process's resolver, with the old token still cached.
    let other = resolver_with(&server, &b, None);
    assert_eq!(other.report_unauthorized(&s.workspace_id, &s.access).unwrap().access_token(), first);
    assert_eq!(server.counters().token_requests, 1, "reports about old tokens never POST");
}

#[test]
fn a_report_by_secret_id_follows_the_same_rule() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    let r = resolver_with(&server, &b, None);
    assert_eq!(r.resolve_secret(&s.secret_id).unwrap().access_token(), s.access);
    let (r2, id, rejected) = (r.clone(), s.secret_id.clone(), s.access.clone());
    let got = concurrently(16, move || {
        r2.report_unauthorized_secret(&id, &rejected).map(|t| t.access_token().secret().to_owned())
    });
    let first = got[0].clone().unwrap();
    assert_ne!(first, s.access);
    assert!(got.iter().all(|t| t.as_ref() == Ok(&first)), "every reporter gets the one new token");
    assert_eq!(server.counters().token_requests, 1);
    // The cache by secret id serves the new token, and so does the workspace.
    assert_eq!(r.resolve_secret(&s.secret_id).unwrap().access_token(), first);
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token(), first);
    // A newer token is already stored: served as it is, no POST.
    let other = resolver_with(&server, &b, None);
    assert_eq!(other.report_unauthorized_secret(&s.secret_id, &s.access).unwrap().access_token(), first);
    assert_eq!(server.counters().token_requests, 1, "reports about old tokens never POST");
    assert!(matches!(r.report_unauthorized_secret("linear-oauth/nope", "x"), Err(Error::SecretMissing(_))));
    assert!(matches!(r.report_unauthorized_secret("", "x"), Err(Error::InvalidInput(_))));
}

#[test]
fn a_report_when_the_grant_is_gone_says_reauthorize() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    let r = resolver_with(&server, &b, None);
    assert!(server.revoke_grant(&s.access), "revoked out of band");
    let e = r.report_unauthorized(&s.workspace_id, &s.access).unwrap_err();
    assert!(matches!(e, Error::ReauthorizationRequired(_)), "{e:?}");
    assert!(matches!(r.report_unauthorized("org-nope", "x"), Err(Error::NotRegistered(_))));
    assert!(matches!(r.report_unauthorized("", "x"), Err(Error::InvalidInput(_))));
    // A report during an outage is an error (the rejected token is no use),
    // with no POST beyond the first caller's.
    let s = seed(&server, &b, "beta", 3600);
    server.set_faults(fail(100, 503));
    let before = server.counters().token_requests;
    assert!(matches!(r.report_unauthorized(&s.workspace_id, &s.access), Err(Error::TokenEndpoint { status: 503, .. })));
    assert!(matches!(r.report_unauthorized(&s.workspace_id, &s.access), Err(Error::TokenEndpoint { status: 503, .. })));
    assert_eq!(server.counters().token_requests - before, 3, "three attempts, then the shared failure");
}

// ----------------------------------------------------------- refresh-ahead

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn refresh_ahead_serves_the_valid_token_and_refreshes_once_in_the_background() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 300); // inside 600 s ahead + 60 s threshold
    let r = resolver_with(&server, &b, None);
    server.set_faults(FaultsPatch { latency_ms: Some(300), ..Default::default() });
    let (r2, w) = (r.clone(), s.workspace_id.clone());
    for got in concurrently(8, move || r2.resolve(&w).map(|t| t.access_token().secret().to_owned())) {
        assert_eq!(got.unwrap(), s.access, "callers get the valid token, not a wait");
    }
    wait_for("the background refresh", || stored(&b, &s.secret_id)["access_token"] != s.access.as_str());
    let new = stored(&b, &s.secret_id)["access_token"].as_str().unwrap().to_owned();
    wait_for("the cache to take the new token", || r.resolve(&s.workspace_id).unwrap().access_token() == new);
    assert_eq!(server.counters().token_requests, 1, "one background refresh for 8 callers");
    // A fresh token: nothing more happens.
    for _ in 0..10 {
        r.resolve(&s.workspace_id).unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(server.counters().token_requests, 1);
}

#[test]
fn refresh_ahead_off_and_short_lived_hosts() {
    let server = server();
    let b = memory();
    // Off: a token 300 s from expiry is served and nothing is sent.
    let s = seed(&server, &b, "acme", 300);
    let off =
        Resolver::with_backends(Options { refresh_ahead: Duration::ZERO, ..options(&server) }, b.clone()).unwrap();
    assert_eq!(off.resolve(&s.workspace_id).unwrap().access_token(), s.access);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(server.counters().token_requests, 0);
    // Short-lived (the CLI): the same token is refreshed inline.
    let cli =
        Resolver::with_backends(Options { lifetime: Some(Lifetime::Command), ..options(&server) }, b.clone()).unwrap();
    assert_ne!(cli.resolve(&s.workspace_id).unwrap().access_token(), s.access);
    assert_eq!(server.counters().token_requests, 1);
}

#[test]
fn a_failing_background_refresh_keeps_serving_and_backs_off() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 300);
    let sink = Arc::new(Captured::default());
    let r = resolver_with(&server, &b, Some(sink.clone()));
    server.set_faults(fail(100_000, 503));
    for _ in 0..50 {
        assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token(), s.access);
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_for("the background attempt", || server.counters().token_requests >= 3);
    std::thread::sleep(Duration::from_millis(300));
    // One background attempt (three POSTs) in a second of steady calls.
    assert_eq!(server.counters().token_requests, 3, "{}", sink.text());
}
