//! What the host's benchmarks share: one workspace seeded in a memory store,
//! and a log sink that drops everything (logging would be timed too).

#![allow(dead_code)] // each example uses part of it

use linear_oauth_host::store::MemoryBackend;
use linear_oauth_host::{Backends, LogLevel, LogSink, RegistryRow};
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
        })
        .unwrap();
    (backends, issued.access_token)
}

#[derive(Debug)]
pub struct Quiet;

impl LogSink for Quiet {
    fn log(&self, _: LogLevel, _: &str, _: &[(String, String)]) {}
}
