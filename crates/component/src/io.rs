//! Everything the resolver's pipeline does outside itself, as one trait: the
//! wasm build implements it with the world's imports ([`Imports`]), unit
//! tests with in-memory fakes, so the refresh and recovery state machine is
//! tested natively.

use std::time::Duration;

use crate::http::{Failure, Response};
use crate::linear::oauth::coordination as coord;
use crate::linear::oauth::log::Level;
use crate::linear::oauth::metrics::{self, Event};
use crate::linear::oauth::registry::{self, LeaseGrant, Row};
use crate::linear::oauth::secret_store::{self, PutOutcome, Versioned};

/// The resolver's I/O. Methods mirror the WIT imports one to one (see
/// `wit/linear-oauth.wit` for what each promises); errors stay the store's
/// own text, which the callers wrap.
pub trait Io {
    fn secret_get(&self, id: &str) -> Result<Option<Versioned>, String>;
    fn secret_put(&self, id: &str, value: &str, expected_version: Option<&str>) -> Result<PutOutcome, String>;
    fn secret_reserve(&self, id: &str, bytes: u64) -> Result<(), String>;

    fn registry_get(&self, workspace_id: &str) -> Result<Option<Row>, String>;
    fn registry_put(&self, row: &Row) -> Result<(), String>;
    fn try_lease(&self, key: &str, holder: &str, ttl_ms: u64, note: &str) -> Result<LeaseGrant, String>;
    fn take_lease_if_unchanged(
        &self,
        key: &str,
        holder: &str,
        ttl_ms: u64,
        note: &str,
        seen_version: &str,
        row: &Row,
    ) -> Result<bool, String>;
    fn release_lease(&self, key: &str, holder: &str, written_version: Option<&str>) -> Result<(), String>;

    fn cache_get(&self, key: &str) -> Option<String>;
    fn cache_set(&self, key: &str, value: &str, ttl_ms: u64);
    fn cache_remove(&self, key: &str);
    fn lock(&self, key: &str, timeout_ms: u64) -> bool;
    fn unlock(&self, key: &str);
    fn recall(&self, key: &str) -> Option<String>;
    fn remember(&self, key: &str, value: Option<&str>);

    /// One POST to a Linear endpoint (see [`crate::http::post_detailed`]).
    fn post(
        &self,
        url: &str,
        content_type: &str,
        body: &[u8],
        bearer: Option<&str>,
        timeout_ms: u64,
    ) -> Result<Response, Failure>;

    /// Unix milliseconds.
    fn now_ms(&self) -> i64;
    fn sleep_ms(&self, ms: u64);
    fn random_32(&self) -> [u8; 32];
    /// One structured log line; callers pass only non-secret fields.
    fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]);
    /// One occurrence of a counted event (the `metrics` import).
    fn count(&self, e: Event, workspace_id: &str);
    /// One renewal's duration in ms (the `metrics` import).
    fn refresh_latency(&self, ms: u64, workspace_id: &str);
}

/// The world's imports: what the component uses in a host.
#[derive(Debug, Clone, Copy)]
pub struct Imports;

impl Io for Imports {
    fn secret_get(&self, id: &str) -> Result<Option<Versioned>, String> {
        secret_store::get(id)
    }
    fn secret_put(&self, id: &str, value: &str, expected_version: Option<&str>) -> Result<PutOutcome, String> {
        secret_store::put(id, value, expected_version)
    }
    fn secret_reserve(&self, id: &str, bytes: u64) -> Result<(), String> {
        secret_store::reserve(id, bytes)
    }
    fn registry_get(&self, workspace_id: &str) -> Result<Option<Row>, String> {
        registry::get(workspace_id)
    }
    fn registry_put(&self, row: &Row) -> Result<(), String> {
        registry::put(row)
    }
    fn try_lease(&self, key: &str, holder: &str, ttl_ms: u64, note: &str) -> Result<LeaseGrant, String> {
        registry::try_lease(key, holder, ttl_ms, note)
    }
    fn take_lease_if_unchanged(
        &self,
        key: &str,
        holder: &str,
        ttl_ms: u64,
        note: &str,
        seen_version: &str,
        row: &Row,
    ) -> Result<bool, String> {
        registry::take_lease_if_unchanged(key, holder, ttl_ms, note, seen_version, row)
    }
    fn release_lease(&self, key: &str, holder: &str, written_version: Option<&str>) -> Result<(), String> {
        registry::release_lease(key, holder, written_version)
    }
    fn cache_get(&self, key: &str) -> Option<String> {
        coord::cache_get(key)
    }
    fn cache_set(&self, key: &str, value: &str, ttl_ms: u64) {
        coord::cache_set(key, value, ttl_ms);
    }
    fn cache_remove(&self, key: &str) {
        coord::cache_remove(key);
    }
    fn lock(&self, key: &str, timeout_ms: u64) -> bool {
        coord::lock(key, timeout_ms)
    }
    fn unlock(&self, key: &str) {
        coord::unlock(key);
    }
    fn recall(&self, key: &str) -> Option<String> {
        coord::recall(key)
    }
    fn remember(&self, key: &str, value: Option<&str>) {
        coord::remember(key, value);
    }
    fn post(
        &self,
        url: &str,
        content_type: &str,
        body: &[u8],
        bearer: Option<&str>,
        timeout_ms: u64,
    ) -> Result<Response, Failure> {
        crate::http::post_detailed(url, content_type, body, bearer, timeout_ms)
    }
    fn now_ms(&self) -> i64 {
        crate::now_ms()
    }
    fn sleep_ms(&self, ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }
    fn random_32(&self) -> [u8; 32] {
        crate::random_32()
    }
    fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]) {
        crate::log_event(level, message, fields);
    }
    fn count(&self, e: Event, workspace_id: &str) {
        metrics::count(e, workspace_id);
    }
    fn refresh_latency(&self, ms: u64, workspace_id: &str) {
        metrics::refresh_latency(ms, workspace_id);
    }
}
