//! Embeds the linear-oauth component in wasmtime and gives Rust callers one
//! typed API. The component decides (protocol, schema, caching, refresh); this
//! crate provides capabilities (storage, coordination, logs, HTTP egress) and
//! policy (allowlist, timeouts, memory and time limits).

mod bindings;
mod bound;
pub mod bulk;
mod cache;
mod coord;
mod ctx;
mod engine;
mod error;
mod files;
pub mod fleet;
pub mod hints;
mod http;
mod log;
mod metrics;
mod options;
mod pool;
mod resolver;
mod settings;
pub mod store;
mod test_hook;
mod types;
mod webhook;

pub use engine::LoadInfo;
pub use error::{no_panic, Attr, Error, ErrorKind, Result, ERROR_KINDS};
pub use fleet::{RotateMode, RotateOutcome, SweepOutcome};
pub use hints::{FileHints, HintStore, MemoryHints};
/// The registry status of a workspace whose credential Linear refused for good.
pub use linear_oauth_core::REAUTHORIZATION_REQUIRED;
pub use linear_oauth_core::{Signature as WebhookSignature, DEFAULT_WEBHOOK_WINDOW_MS, MAX_WEBHOOK_BODY};
pub use log::{LogLevel, LogSink, TracingSink, UnknownLogLevel};
pub use metrics::{
    Counter, EmfSink, Metric, MetricKind, MetricsSnapshot, StdoutEmf, Timing, LATENCY_BUCKETS_MS, METRICS,
    REFRESH_LATENCY,
};
pub use options::{default_max_instances, Lifetime, Options, INVOCATION_ENV_VARS, SETTINGS};
pub use pool::PoolStats;
pub use resolver::{CacheStats, Resolver};
pub use settings::{camel_case, checked_seconds, Setting, SettingKind, SettingValue};
pub use store::{Backends, LeaseGrant, PutOutcome, RegistryRow, SecretDeletion, Versioned};
pub use test_hook::{TEST_IMPORT_ABORT_ENV, TEST_PANIC_ENV};
pub use types::{
    AuthCode, ClientCredentialsParams, Inspection, InstallParams, Installed, PendingInstall, ResolvedToken, Revocation,
    RevokeOutcome, SecretRef, SecretString, Target,
};
pub use webhook::{KeySource, WebhookEvent, WebhookOutcome};

/// The component's wasm, embedded only where it can be used: compiling it at
/// load when the precompiled artifact is rejected (`jit` feature).
#[cfg(feature = "jit")]
pub const COMPONENT_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/linear_oauth.wasm"));

/// Size in bytes of the component's wasm (what the `.cwasm` was compiled from).
pub const COMPONENT_WASM_SIZE: usize = {
    let digits = env!("LINEAR_OAUTH_WASM_SIZE").as_bytes();
    let mut n = 0;
    let mut i = 0;
    while i < digits.len() {
        n = n * 10 + (digits[i] - b'0') as usize;
        i += 1;
    }
    n
};
