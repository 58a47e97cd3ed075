//! Embeds the linear-oauth component in wasmtime and gives Rust callers one
//! typed API. The component decides (protocol, schema, caching, refresh); this
//! crate provides capabilities (storage, coordination, logs, HTTP egress) and
//! policy (allowlist, timeouts, memory and time limits).

mod bindings;
mod coord;
mod engine;
mod error;
mod http;
mod log;
mod options;
mod resolver;
pub mod store;

pub use error::{Error, Result};
pub use log::{LogLevel, LogSink, TracingSink};
pub use options::{checked_seconds, DurationOption, Options};
pub use engine::LoadInfo;
pub use resolver::{AuthCode, Inspection, InstallParams, Installed, PendingInstall, ResolvedToken, Resolver, Revocation};
pub use store::{Backends, LeaseGrant, PutOutcome, RegistryRow, Versioned};

/// The component as built into this library, for size reporting.
pub const COMPONENT_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/linear_oauth.wasm"));
