//! The metrics table's counters after real resolves and refreshes against
//! the test server, and the EMF lines they become.

use super::refresh::{died_mid_refresh, linear_oauth_testserver_refresh, rotated_elsewhere};
use super::*;
use std::sync::Mutex;

use linear_oauth_host::{Counter as C, EmfSink, MetricsSnapshot};

/// The counters that are not zero, by name.
fn nonzero(m: &MetricsSnapshot) -> Vec<(&'static str, u64)> {
    m.counters().filter(|(_, v)| *v > 0).collect()
}

/// Linear's token endpoint answers the next `count` requests with `status`.
fn token_fails_next(server: &TestServer, count: u32, status: u16) {
    server.set_faults(FaultsPatch { fail_next: Some(FailNext { count, status, body: None }), ..Default::default() });
}

#[test]
fn cached_and_uncached_resolves_and_a_refresh_are_counted_exactly() {
    let (server, b, s, r) = acme(3600);
    r.resolve(&s.workspace_id).unwrap();
    r.resolve(&s.workspace_id).unwrap();
    assert!(r.cached(&s.workspace_id).is_some());
    assert!(r.cached("org-unknown").is_none(), "a miss of the fast path is not a resolve");
    let m = r.metrics();
    assert_eq!(nonzero(&m), [("resolves_cached", 2), ("resolves_uncached", 1)]);
    assert_eq!(m.refresh_latency.count, 0);
    // A due token: one refresh, timed.
    server.set_faults(FaultsPatch { latency_ms: Some(60), ..Default::default() });
    let due = seed(&server, &b, "beta", 10);
    r.resolve(&due.workspace_id).unwrap();
    let m = r.metrics();
    assert_eq!(nonzero(&m), [("resolves_cached", 2), ("resolves_uncached", 2), ("refreshes_ok", 1)]);
    let t = m.refresh_latency;
    assert_eq!(t.count, 1);
    assert!(t.min_ms >= 60 && t.min_ms == t.max_ms && t.sum_ms == t.min_ms, "{t:?}");
    assert_eq!(t.buckets.iter().map(|(_, n)| n).sum::<u64>(), 1);
    assert_eq!(server.counters().token_refresh_ok, 1);
    // Clones share the counters; the JSON names every metric of the table.
    let json = r.clone().metrics().to_json();
    for metric in linear_oauth_host::METRICS {
        assert!(json.get(metric.name).is_some(), "{}", metric.name);
    }
    assert_eq!(json["refresh_latency_ms"]["count"], 1);
}

#[test]
fn invalid_grant_recovered_and_reauthorization_required_by_code() {
    let (server, b, s, _) = rotated_elsewhere(3600);
    server.reset();
    let r = resolver_with(&server, &b, None);
    r.resolve_secret(&s.secret_id).unwrap();
    assert_eq!(r.metrics().get(C::RefreshesInvalidGrantRecovered), 1);
    assert_eq!(r.metrics().get(C::RefreshesOk), 0, "nothing renewed here");

    let server = super::common::server();
    let b = memory();
    let s = seed(&server, &b, "acme", 10);
    linear_oauth_testserver_refresh(&server, &s.refresh);
    let r = resolver_with(&server, &b, None);
    assert!(r.resolve(&s.workspace_id).is_err());
    assert!(r.resolve(&s.workspace_id).is_err(), "recorded: no second refusal to count");
    let m = r.metrics();
    assert_eq!(nonzero(&m), [("resolves_uncached", 2), ("refreshes_reauthorization_required_invalid_grant", 1)]);
    assert_eq!(m.refresh_latency.count, 1);
}

#[test]
fn rate_limits_stale_serves_and_failures() {
    let (server, _b, s, r) = acme(10);
    token_fails_next(&server, 1000, 429);
    let t = r.resolve(&s.workspace_id).unwrap();
    assert_eq!(t.access_token(), s.access, "served through the rate limit");
    let sent = server.counters().token_requests;
    assert!(sent >= 1);
    let m = r.metrics();
    assert_eq!(m.get(C::RefreshesRateLimited), sent, "every 429 answer");
    assert_eq!(m.get(C::RefreshesServedStale), 1);
    // A forced refresh does not want the old token: a failure.
    assert!(r.force_refresh(Target::Workspace(&s.workspace_id)).is_err());
    let m = r.metrics();
    assert_eq!((m.get(C::RefreshesFailed), m.get(C::RefreshesOk)), (1, 0));
    assert_eq!(m.get(C::RefreshesRateLimited), server.counters().token_requests);
}

#[test]
fn lease_waits_takeovers_and_write_back_retries_and_failures() {
    let (server, b, s) = died_mid_refresh(linear_oauth_testserver::GraceMode::SamePair);
    let r = resolver_with(&server, &b, None);
    r.resolve(&s.workspace_id).unwrap();
    let m = r.metrics();
    assert_eq!((m.get(C::LeaseWaits), m.get(C::LeaseTakeovers), m.get(C::RefreshesOk)), (1, 1, 1));

    let server = super::common::server();
    let b = memory();
    let s = seed(&server, &b, "acme", 10);
    let (_failing, wrapped) = failing_puts(&b, Duration::ZERO);
    let r = resolver_with(&server, &wrapped, None);
    r.resolve(&s.workspace_id).unwrap();
    let m = r.metrics();
    assert_eq!((m.get(C::WriteBackRetries), m.get(C::WriteBackFailures), m.get(C::RefreshesOk)), (3, 1, 0));
}

/// Keeps every EMF line.
#[derive(Debug, Default)]
struct Lines(Mutex<Vec<String>>);

impl EmfSink for Lines {
    fn write_line(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_owned());
    }
}

#[test]
fn emf_lines_are_written_per_refresh_and_on_flush_and_never_carry_secrets() {
    let server = super::common::server();
    let b = memory();
    let s = seed(&server, &b, "acme", 10);
    let lines = Arc::new(Lines::default());
    let mut o = options(&server);
    o.metrics_emf = true;
    o.metrics_namespace = "Test/NS".into();
    o.emf_sink = Some(lines.clone());
    let r = Resolver::with_backends(o.clone(), b.clone()).unwrap();
    let t = r.resolve(&s.workspace_id).unwrap();
    for _ in 0..5 {
        r.resolve(&s.workspace_id).unwrap();
    }
    let written = lines.0.lock().unwrap().clone();
    assert_eq!(written.len(), 1, "one line for the refresh, none for cached resolves: {written:?}");
    let v: serde_json::Value = serde_json::from_str(&written[0]).unwrap();
    let cw = &v["_aws"]["CloudWatchMetrics"][0];
    assert_eq!((cw["Namespace"].as_str(), cw["Dimensions"].clone()), (Some("Test/NS"), serde_json::json!([[]])));
    assert!(v["_aws"]["Timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(v["refreshes_ok"], 1);
    assert_eq!(v["refresh_latency_ms"].as_array().map(Vec::len), Some(1));
    let names: Vec<_> = cw["Metrics"].as_array().unwrap().iter().map(|m| m["Name"].as_str().unwrap()).collect();
    assert_eq!(names, ["refreshes_ok", "refresh_latency_ms"]);
    r.flush_metrics();
    r.flush_metrics();
    let written = lines.0.lock().unwrap().clone();
    assert_eq!(written.len(), 2, "a flush with nothing new writes nothing");
    let v: serde_json::Value = serde_json::from_str(&written[1]).unwrap();
    assert_eq!((v["resolves_cached"].clone(), v["resolves_uncached"].clone()), (5.into(), 1.into()));
    // The workspace dimension only when opted in.
    let stored_now = stored(&b, &s.secret_id);
    let secrets = [
        s.access.as_str(),
        s.refresh.as_str(),
        t.access_token().secret(),
        stored_now["refresh_token"].as_str().unwrap(),
        CLIENT_SECRET,
    ];
    for line in &written {
        assert!(!line.contains(&s.workspace_id), "{line}");
        for secret in secrets {
            assert!(!line.contains(secret), "{line}");
        }
    }
    o.metrics_by_workspace = true;
    let r = Resolver::with_backends(o, b.clone()).unwrap();
    r.force_refresh(Target::Workspace(&s.workspace_id)).unwrap();
    let last: serde_json::Value = serde_json::from_str(lines.0.lock().unwrap().last().unwrap()).unwrap();
    assert_eq!(last["WorkspaceId"], s.workspace_id.as_str());
    assert_eq!(last["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([["WorkspaceId"]]));
}
