//! A Linear outage shorter than the token's remaining life: 64 callers keep
//! resolving a token 30 s from expiry (inside the 60 s threshold) while the
//! token endpoint answers 503 for 3 s. Prints the token POSTs, the errors
//! callers saw, latency, and what the first resolve after the outage did.
//!
//! cargo run --release -p linear-oauth-host --example bench_outage

use std::sync::Arc;
use std::time::Duration;

use linear_oauth_host::{Options, Resolver};
use linear_oauth_testserver::fixtures::iso8601_in;
use linear_oauth_testserver::{FailNext, FaultsPatch, ServerConfig, TestServer};

mod common;

const CALLERS: usize = 64;
const OUTAGE: Duration = Duration::from_secs(3);

fn main() {
    println!("{CALLERS} callers, token 30 s from expiry, token endpoint 503 for {} s", OUTAGE.as_secs());
    println!(
        "{:<22} {:>7} {:>7} {:>9} {:>9} {:>9} {:>6}",
        "failure memory", "calls", "errors", "p50 us", "p99 us", "max ms", "POSTs"
    );
    for memory in [Duration::ZERO, Duration::from_secs(1)] {
        run(memory);
    }
}

fn run(memory: Duration) {
    let server = TestServer::start(ServerConfig::default()).unwrap();
    let (backends, issued_access) = common::seeded(&server, 86_399, &iso8601_in(30));
    let options = Options {
        store: "memory:".into(),
        api_base: server.base_url(),
        authorize_url: server.authorize_url(),
        failure_memory: memory,
        log_sink: Some(Arc::new(common::Quiet)),
        ..Options::default()
    };
    let r = Resolver::with_backends(options, backends).unwrap();
    server.set_faults(FaultsPatch {
        fail_next: Some(FailNext { count: 1_000_000, status: 503, body: None }),
        ..Default::default()
    });
    let (lat, errors) = common::callers(&r, CALLERS, OUTAGE, Duration::from_millis(5));
    let posts = server.counters().token_requests;
    let pct = |p: f64| common::pct(&lat, p).as_secs_f64();
    println!(
        "{:<22} {:>7} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>6}",
        format!("{} s", memory.as_secs_f64()),
        lat.len(),
        errors,
        pct(0.5) * 1e6,
        pct(0.99) * 1e6,
        lat.last().unwrap().as_secs_f64() * 1e3,
        posts
    );
    server.set_faults(FaultsPatch {
        fail_next: Some(FailNext { count: 0, status: 503, body: None }),
        ..Default::default()
    });
    std::thread::sleep(memory);
    let before = server.counters().token_refresh_ok;
    let t = r.resolve(common::WORKSPACE).unwrap();
    let refreshed = server.counters().token_refresh_ok - before == 1 && t.access_token() != issued_access;
    println!("{:<22} first resolve after the outage refreshed: {refreshed}", "");
}
