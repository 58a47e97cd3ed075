//! Peak memory of 1,000 concurrent uncached resolves: every caller that
//! misses the host's fast path needs a component instance (a Store and its
//! linear memory), so without a bound 1,000 callers mean 1,000 instances.
//!
//! cargo run --release -p linear-oauth-host --example pool_rss -- one
//! cargo run --release -p linear-oauth-host --example pool_rss -- many
//!
//! `one`: 1,000 callers of ONE expiring workspace (one refresh expected).
//! `many`: 1,000 callers spread over 100 expiring workspaces (100 refreshes).
//! The token endpoint answers after 200 ms, so the callers overlap. Peak RSS
//! is the kernel's high-water mark (`VmHWM` in /proc/self/status), read
//! before the callers start and after they all returned.

use std::sync::{Arc, Barrier};
use std::time::Instant;

use linear_oauth_host::store::MemoryBackend;
use linear_oauth_host::{Backends, Options, RegistryRow, Resolver};
use linear_oauth_testserver::fixtures::{iso8601_in, stored_token};
use linear_oauth_testserver::{FaultsPatch, ServerConfig, TestServer};

mod common;

const CALLERS: usize = 1000;

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn main() {
    let scenario = std::env::args().nth(1).unwrap_or_else(|| "one".into());
    let workspaces = match scenario.as_str() {
        "one" => 1,
        "many" => 100,
        other => panic!("scenario {other:?}: use one or many"),
    };
    let server = TestServer::start(ServerConfig::default()).unwrap();
    let backends = Backends::from_backend(MemoryBackend::default());
    for i in 0..workspaces {
        let issued = server.issue_tokens("test-client-id", "read write", 86_399);
        let (ws, slug, secret) =
            (format!("org-rss-{i}"), format!("rss{i:04}"), format!("bgagent-linear-oauth-rss{i:04}"));
        let token = stored_token(&issued.access_token, &issued.refresh_token, &iso8601_in(10), &ws, &slug);
        backends.secrets.put(&secret, &token.to_string(), None).unwrap();
        let row = RegistryRow {
            workspace_id: ws,
            workspace_slug: slug,
            secret_id: secret,
            status: "active".into(),
            ..Default::default()
        };
        backends.registry.put(&row).unwrap();
    }
    server.set_faults(FaultsPatch { latency_ms: Some(200), ..Default::default() });
    let options = Options {
        store: "memory:".into(),
        api_base: server.base_url(),
        authorize_url: server.authorize_url(),
        log_sink: Some(Arc::new(common::Quiet)),
        ..Options::default()
    };
    let r = Resolver::with_backends(options, backends).unwrap();
    let before = status_kib("VmHWM:");
    let barrier = Arc::new(Barrier::new(CALLERS));
    let started = Instant::now();
    let handles: Vec<_> = (0..CALLERS)
        .map(|i| {
            let (r, barrier) = (r.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                r.resolve(&format!("org-rss-{}", i % workspaces)).is_ok()
            })
        })
        .collect();
    let ok = handles.into_iter().map(|h| h.join().unwrap()).filter(|ok| *ok).count();
    let elapsed = started.elapsed();
    let after = status_kib("VmHWM:");
    println!("scenario                 {scenario} ({CALLERS} callers, {workspaces} expiring workspaces)");
    println!("resolves ok              {ok} of {CALLERS} in {:.2} s", elapsed.as_secs_f64());
    println!("refreshes at the server  {}", server.counters().token_refresh);
    println!("peak RSS before callers  {:>8} KiB", before);
    println!("peak RSS after callers   {:>8} KiB  (VmHWM)", after);
    println!("instance pool            {:?}", r.pool_stats());
}
