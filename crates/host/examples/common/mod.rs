//! What the host's benchmarks share: one workspace seeded in a memory store,
//! concurrent callers resolving it, and a log sink that drops everything
//! (logging would be timed too).

#![allow(dead_code)] // each example uses part of it

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use linear_oauth_host::store::MemoryBackend;
use linear_oauth_host::{Backends, LogLevel, LogSink, RegistryRow, Resolver};
use linear_oauth_testserver::fixtures::stored_token;
use linear_oauth_testserver::TestServer;

pub const WORKSPACE: &str = "org-bench";
pub const SECRET: &str = "bgagent-linear-oauth-bench";

/// A memory store holding a token pair the server issued (living
/// `issued_for_s` at the server), stored as expiring at `expires_at`, and an
/// active registry row; returns it with the stored access token.
pub fn seeded(server: &TestServer, issued_for_s: u64, expires_at: &str) -> (Backends, String) {
    let backends = Backends::from_backend(MemoryBackend::default());
    let issued = server.issue_tokens("test-client-id", "read write", issued_for_s);
    let token = stored_token(&issued.access_token, &issued.refresh_token, expires_at, WORKSPACE, "bench");
    backends.secrets.put(SECRET, &token.to_string(), None).unwrap();
    backends
        .registry
        .put(&RegistryRow {
            workspace_id: WORKSPACE.into(),
            workspace_slug: "bench".into(),
            secret_id: SECRET.into(),
            status: "active".into(),
            ..Default::default()
        })
        .unwrap();
    (backends, issued.access_token)
}

/// `callers` threads, started together, each resolving the workspace for
/// `period` with `pause` between calls: every call's latency (sorted) and
/// how many calls failed.
pub fn callers(r: &Resolver, callers: usize, period: Duration, pause: Duration) -> (Vec<Duration>, usize) {
    let barrier = Arc::new(Barrier::new(callers));
    let handles: Vec<_> = (0..callers)
        .map(|_| {
            let (r, barrier) = (r.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let end = Instant::now() + period;
                let (mut lat, mut errors) = (Vec::new(), 0usize);
                while Instant::now() < end {
                    let t = Instant::now();
                    if r.resolve(WORKSPACE).is_err() {
                        errors += 1;
                    }
                    lat.push(t.elapsed());
                    std::thread::sleep(pause);
                }
                (lat, errors)
            })
        })
        .collect();
    let (mut lat, mut errors) = (Vec::new(), 0);
    for h in handles {
        let (l, e) = h.join().unwrap();
        lat.extend(l);
        errors += e;
    }
    lat.sort();
    (lat, errors)
}

/// The `p` quantile of sorted latencies.
pub fn pct(lat: &[Duration], p: f64) -> Duration {
    lat[((lat.len() - 1) as f64 * p) as usize]
}

#[derive(Debug)]
pub struct Quiet;

impl LogSink for Quiet {
    fn log(&self, _: LogLevel, _: &str, _: &[(String, String)]) {}
}
