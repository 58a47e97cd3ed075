//! Refresh-ahead: resolve latency over a period that crosses refresh points,
//! 8 concurrent callers, the token endpoint answering after 300 ms. Run once
//! with refresh-ahead off (every expiry, callers wait for Linear) and once on.
//!
//! cargo run --release -p linear-oauth-host --example bench_ahead [-- SECONDS]
//!
//! Tokens live 6 s here (threshold 2 s, refresh-ahead 2 s) so that a short
//! run crosses several refresh points; the shape matches 24 h tokens with a
//! 60 s threshold and a 10 min window.

use std::sync::Arc;
use std::time::Duration;

use linear_oauth_host::{Options, Resolver};
use linear_oauth_testserver::fixtures::iso8601_in;
use linear_oauth_testserver::{FaultsPatch, ServerConfig, TestServer};

mod common;

const CALLERS: usize = 8;
const LIFETIME_S: u64 = 6;

fn main() {
    let secs: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(15);
    println!("{CALLERS} callers, {secs} s, token life {LIFETIME_S} s, token endpoint latency 300 ms");
    println!(
        "{:<18} {:>8} {:>9} {:>9} {:>9} {:>12} {:>6}",
        "mode", "calls", "p50 us", "p99 us", "max ms", "waits>100ms", "POSTs"
    );
    for (label, ahead) in [("refresh-ahead off", Duration::ZERO), ("refresh-ahead on", Duration::from_secs(2))] {
        run(label, ahead, Duration::from_secs(secs));
    }
}

fn run(label: &str, ahead: Duration, period: Duration) {
    let server = TestServer::start(ServerConfig::default()).unwrap();
    server.set_faults(FaultsPatch { latency_ms: Some(300), expires_in: Some(LIFETIME_S), ..Default::default() });
    let (backends, _) = common::seeded(&server, LIFETIME_S, &iso8601_in(5));
    let options = Options {
        store: "memory:".into(),
        api_base: server.base_url(),
        authorize_url: server.authorize_url(),
        refresh_threshold: Duration::from_secs(2),
        refresh_ahead: ahead,
        log_sink: Some(Arc::new(common::Quiet)),
        ..Options::default()
    };
    let r = Resolver::with_backends(options, backends).unwrap();
    r.resolve(common::WORKSPACE).unwrap();
    let before = server.counters().token_requests;
    let (lat, errors) = common::callers(&r, CALLERS, period, Duration::from_micros(500));
    assert_eq!(errors, 0, "every resolve gets a token");
    let pct = |p: f64| common::pct(&lat, p);
    let waits = lat.iter().filter(|d| **d > Duration::from_millis(100)).count();
    println!(
        "{label:<18} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>12} {:>6}",
        lat.len(),
        pct(0.5).as_secs_f64() * 1e6,
        pct(0.99).as_secs_f64() * 1e6,
        lat.last().unwrap().as_secs_f64() * 1e3,
        waits,
        server.counters().token_requests - before
    );
}
