//! How a `Resolver` is configured. Every host exposes these same options.

use std::sync::Arc;
use std::time::Duration;

use crate::{Error, LogSink};

/// Resolver options; `Default` is production Linear with the file store.
#[derive(Debug, Clone)]
pub struct Options {
    /// `file:DIR`, `memory:` or `aws`.
    pub store: String,
    /// DynamoDB registry table of the `aws` store.
    pub registry_table: Option<String>,
    /// Token, revoke and GraphQL endpoints hang off this (https, or http on loopback).
    pub api_base: String,
    pub authorize_url: String,
    /// Refresh when `now + threshold >= expires_at`.
    pub refresh_threshold: Duration,
    /// How long registry rows and tokens are served from memory.
    pub cache_ttl: Duration,
    /// Secret names are `<prefix><slug>`.
    pub secret_prefix: String,
    /// Connect timeout and per-phase response timeout of each HTTP request.
    pub http_timeout: Duration,
    /// Lifetime of a cross-process refresh lease whose holder died.
    pub lease_ttl: Duration,
    /// How long a caller waits for another process's refresh.
    pub lease_wait: Duration,
    /// Hard limit on one call into the component.
    pub call_deadline: Duration,
    /// Linear memory cap of one component instance.
    pub max_memory_bytes: usize,
    /// Where log events go; `None` means `tracing`.
    pub log_sink: Option<Arc<dyn LogSink>>,
}

pub const DEFAULT_API_BASE: &str = "https://api.linear.app";
pub const DEFAULT_AUTHORIZE_URL: &str = "https://linear.app/oauth/authorize";

impl Default for Options {
    fn default() -> Self {
        Self {
            store: default_store(),
            registry_table: None,
            api_base: DEFAULT_API_BASE.into(),
            authorize_url: DEFAULT_AUTHORIZE_URL.into(),
            refresh_threshold: Duration::from_secs(60),
            cache_ttl: Duration::from_secs(60),
            secret_prefix: "bgagent-linear-oauth-".into(),
            // Per phase (connect, first byte, between bytes): at most ~15 s a request.
            http_timeout: Duration::from_secs(5),
            // Outlives one refresh plus write-back, so it only expires when its holder died...
            lease_ttl: Duration::from_secs(25),
            // ...and waiters outlast it, so they can take over from a dead holder.
            lease_wait: Duration::from_secs(30),
            call_deadline: Duration::from_secs(60),
            max_memory_bytes: 64 << 20,
            log_sink: None,
        }
    }
}

/// `file:` + `$XDG_DATA_HOME/linear-oauth` (or `~/.local/share/linear-oauth`).
pub fn default_store() -> String {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    format!("file:{}", base.join("linear-oauth").display())
}

impl Options {
    /// Reads `LINEAR_OAUTH_STORE`, `LINEAR_OAUTH_REGISTRY_TABLE`, `LINEAR_OAUTH_API_BASE`,
    /// `LINEAR_OAUTH_AUTHORIZE_URL`, and the seconds-valued `LINEAR_OAUTH_REFRESH_THRESHOLD_S`,
    /// `LINEAR_OAUTH_CACHE_TTL_S`, `LINEAR_OAUTH_HTTP_TIMEOUT_S`, `LINEAR_OAUTH_LEASE_TTL_S`,
    /// `LINEAR_OAUTH_LEASE_WAIT_S` over the defaults.
    pub fn from_env() -> Result<Self, Error> {
        let mut o = Self::default();
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(v) = var("LINEAR_OAUTH_STORE") {
            o.store = v;
        }
        if let Some(v) = var("LINEAR_OAUTH_REGISTRY_TABLE") {
            o.registry_table = Some(v);
        }
        if let Some(v) = var("LINEAR_OAUTH_API_BASE") {
            o.api_base = v;
        }
        if let Some(v) = var("LINEAR_OAUTH_AUTHORIZE_URL") {
            o.authorize_url = v;
        }
        let secs = |k: &str| -> Result<Option<Duration>, Error> {
            var(k)
                .map(|v| v.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64)
                    .ok_or_else(|| Error::InvalidInput(format!("{k} must be a number of seconds, got {v:?}"))))
                .transpose()
        };
        if let Some(d) = secs("LINEAR_OAUTH_REFRESH_THRESHOLD_S")? {
            o.refresh_threshold = d;
        }
        if let Some(d) = secs("LINEAR_OAUTH_CACHE_TTL_S")? {
            o.cache_ttl = d;
        }
        if let Some(d) = secs("LINEAR_OAUTH_HTTP_TIMEOUT_S")? {
            o.http_timeout = d;
        }
        if let Some(d) = secs("LINEAR_OAUTH_LEASE_TTL_S")? {
            o.lease_ttl = d;
        }
        if let Some(d) = secs("LINEAR_OAUTH_LEASE_WAIT_S")? {
            o.lease_wait = d;
        }
        Ok(o)
    }
}
