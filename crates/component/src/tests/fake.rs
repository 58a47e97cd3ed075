//! An in-memory world for the resolver: store, registry with leases, the
//! host's cache and hints, scripted token-endpoint answers and a clock that
//! moves only when the resolver sleeps or a test says so.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use linear_oauth_core::{format_instant, StoredToken};

use crate::call::Call;
use crate::exports::linear::oauth::resolver::Settings;
use crate::http::{Failure, Response};
use crate::io::Io;
use crate::linear::oauth::log::Level;
use crate::linear::oauth::metrics::Event;
use crate::linear::oauth::registry::{LeaseGrant, Row};
use crate::linear::oauth::secret_store::{PutOutcome, Versioned};
use crate::linear::oauth::types::Lifetime;

pub const START_MS: i64 = 1_800_000_000_000;
pub const MINUTE: i64 = 60_000;
pub const WS: &str = "ws-1";
pub const SECRET: &str = "secret-acme";
/// The stack-wide webhook signing secret's id.
pub const STACK_SECRET: &str = "webhook-stack";

/// What the token endpoint does with the next POST; it may change the
/// world first (another process writing, a revoke).
pub type Answer = Box<dyn FnOnce(&Fake) -> Result<Response, Failure>>;

#[derive(Debug, Default, Clone)]
pub struct LeaseState {
    pub holder: Option<String>,
    pub written: Option<String>,
}

#[derive(Default)]
pub struct Fake {
    pub now: Cell<i64>,
    /// id -> (value, version)
    pub secrets: RefCell<BTreeMap<String, (String, String)>>,
    versions: Cell<u64>,
    /// How many of the next puts fail (`u32::MAX`: all of them).
    pub failing_puts: Cell<u32>,
    pub puts: Cell<u32>,
    pub rows: RefCell<BTreeMap<String, Row>>,
    pub registry_reads: Cell<u32>,
    pub registry_puts: Cell<u32>,
    pub leases: RefCell<BTreeMap<String, LeaseState>>,
    /// key -> (value, expires at)
    pub cache: RefCell<BTreeMap<String, (String, i64)>>,
    pub hints: RefCell<BTreeMap<String, String>>,
    locks: RefCell<BTreeSet<String>>,
    answers: RefCell<VecDeque<Answer>>,
    /// The bodies of the token requests sent.
    pub posts: RefCell<Vec<String>>,
    pub logs: RefCell<Vec<String>>,
    /// Counted events, with their workspace id, in order.
    pub events: RefCell<Vec<(Event, String)>>,
    /// Refresh latencies reported, in ms.
    pub latencies: RefCell<Vec<u64>>,
}

impl Fake {
    /// A registered, active workspace whose stored token expires in `expires_in_ms`.
    pub fn with_token(access: &str, refresh: &str, expires_in_ms: i64) -> Self {
        let fake = Self { now: Cell::new(START_MS), ..Self::default() };
        fake.put_row(WS, SECRET, "active");
        fake.store(SECRET, &fake.token(access, refresh, expires_in_ms));
        fake
    }

    pub fn settings() -> Settings {
        Settings {
            api_base: "https://api.linear.test/".into(),
            authorize_url: "https://linear.test/oauth/authorize".into(),
            refresh_threshold_ms: 5 * 60_000,
            cache_ttl_ms: 60_000,
            secret_prefix: "secret-".into(),
            http_timeout_ms: 1_000,
            lease_ttl_ms: 30_000,
            lease_wait_ms: 5_000,
            holder_id: "me".into(),
            lifetime: Lifetime::LongLived,
            call_deadline_ms: 60_000,
            failure_memory_ms: 10_000,
            refresh_ahead_ms: 0,
            webhook_secret_id: Some(STACK_SECRET.into()),
        }
    }

    pub fn call(&self) -> Call<'_> {
        Call::start(self, Self::settings())
    }

    /// A stored token of workspace `WS` expiring `expires_in_ms` from now.
    pub fn token(&self, access: &str, refresh: &str, expires_in_ms: i64) -> StoredToken {
        let now = self.now.get();
        let json = serde_json::json!({
            "access_token": access,
            "refresh_token": refresh,
            "expires_at": format_instant(now + expires_in_ms),
            "scope": "read write",
            "client_id": "client",
            "client_secret": "client-secret",
            "workspace_id": WS,
            "workspace_slug": "acme",
            "installed_at": format_instant(now - 60 * MINUTE),
            "updated_at": format_instant(now - 30 * MINUTE),
            "installed_by_platform_user_id": "user-1",
        });
        StoredToken::parse(&json.to_string()).expect("a valid token")
    }

    /// Writes a secret as another process would (a new version).
    pub fn store(&self, id: &str, tok: &StoredToken) {
        self.store_raw(id, &tok.to_json());
    }

    pub fn store_raw(&self, id: &str, value: &str) {
        let version = self.next_version();
        self.secrets.borrow_mut().insert(id.to_owned(), (value.to_owned(), version));
    }

    pub fn stored(&self, id: &str) -> StoredToken {
        StoredToken::parse(&self.secrets.borrow()[id].0).expect("a valid stored token")
    }

    pub fn put_row(&self, workspace_id: &str, secret_id: &str, status: &str) {
        let row = Row {
            workspace_id: workspace_id.into(),
            workspace_slug: "acme".into(),
            secret_id: secret_id.into(),
            status: status.into(),
            status_reason: None,
            status_changed_at: None,
        };
        self.rows.borrow_mut().insert(workspace_id.to_owned(), row);
    }

    pub fn answer(&self, a: impl FnOnce(&Fake) -> Result<Response, Failure> + 'static) {
        self.answers.borrow_mut().push_back(Box::new(a));
    }

    /// A successful token answer.
    pub fn answer_token(&self, access: &'static str, refresh: &'static str) {
        self.answer(move |_| Ok(token_answer(access, refresh)));
    }

    /// An error answer of the token endpoint.
    pub fn answer_error(&self, status: u16, code: &'static str) {
        self.answer(move |_| Ok(error_answer(status, code)));
    }

    pub fn post_count(&self) -> usize {
        self.posts.borrow().len()
    }

    pub fn advance(&self, ms: i64) {
        self.now.set(self.now.get() + ms);
    }

    /// The events counted so far, without their workspace ids.
    pub fn counted(&self) -> Vec<Event> {
        self.events.borrow().iter().map(|(e, _)| *e).collect()
    }

    pub fn logged(&self, message: &str) -> bool {
        self.logs.borrow().iter().any(|l| l.contains(message))
    }

    fn next_version(&self) -> String {
        self.versions.set(self.versions.get() + 1);
        format!("v{}", self.versions.get())
    }
}

pub fn token_answer(access: &str, refresh: &str) -> Response {
    let body = serde_json::json!({"access_token": access, "refresh_token": refresh, "expires_in": 86_400,
        "token_type": "Bearer", "scope": "read write"});
    Response { status: 200, body: body.to_string().into_bytes(), retry_after: None }
}

pub fn error_answer(status: u16, code: &str) -> Response {
    let body = serde_json::json!({"error": code});
    Response { status, body: body.to_string().into_bytes(), retry_after: None }
}

impl Io for Fake {
    fn secret_get(&self, id: &str) -> Result<Option<Versioned>, String> {
        Ok(self
            .secrets
            .borrow()
            .get(id)
            .map(|(value, version)| Versioned { value: value.clone(), version: version.clone() }))
    }
    fn secret_put(&self, id: &str, value: &str, expected_version: Option<&str>) -> Result<PutOutcome, String> {
        self.puts.set(self.puts.get() + 1);
        if self.failing_puts.get() > 0 {
            self.failing_puts
                .set(self.failing_puts.get().saturating_sub(u32::from(self.failing_puts.get() != u32::MAX)));
            return Err("store unavailable".into());
        }
        let current = self.secrets.borrow().get(id).map(|(_, v)| v.clone());
        if expected_version.is_some() && expected_version.map(str::to_owned) != current {
            return Ok(PutOutcome::Conflict);
        }
        let version = self.next_version();
        self.secrets.borrow_mut().insert(id.to_owned(), (value.to_owned(), version.clone()));
        Ok(PutOutcome::Written(version))
    }
    fn secret_reserve(&self, _id: &str, _bytes: u64) -> Result<(), String> {
        Ok(())
    }
    fn registry_get(&self, workspace_id: &str) -> Result<Option<Row>, String> {
        self.registry_reads.set(self.registry_reads.get() + 1);
        Ok(self.rows.borrow().get(workspace_id).cloned())
    }
    fn registry_put(&self, row: &Row) -> Result<(), String> {
        self.registry_puts.set(self.registry_puts.get() + 1);
        self.rows.borrow_mut().insert(row.workspace_id.clone(), row.clone());
        Ok(())
    }
    fn try_lease(&self, key: &str, holder: &str, _ttl_ms: u64, _note: &str) -> Result<LeaseGrant, String> {
        let mut leases = self.leases.borrow_mut();
        let lease = leases.entry(key.to_owned()).or_default();
        if lease.holder.as_deref().is_some_and(|h| h != holder) {
            return Ok(LeaseGrant { acquired: false, previous_note: None, written_version: None });
        }
        lease.holder = Some(holder.to_owned());
        Ok(LeaseGrant { acquired: true, previous_note: None, written_version: lease.written.clone() })
    }
    fn take_lease_if_unchanged(
        &self,
        key: &str,
        holder: &str,
        _ttl_ms: u64,
        _note: &str,
        seen_version: &str,
        row: &Row,
    ) -> Result<bool, String> {
        let row_unchanged = self
            .rows
            .borrow()
            .get(&row.workspace_id)
            .is_some_and(|r| r.status == "active" && r.secret_id == row.secret_id);
        let mut leases = self.leases.borrow_mut();
        let lease = leases.entry(key.to_owned()).or_default();
        let taken = row_unchanged && lease.holder.is_none() && lease.written.as_deref() == Some(seen_version);
        if taken {
            lease.holder = Some(holder.to_owned());
        }
        Ok(taken)
    }
    fn release_lease(&self, key: &str, holder: &str, written_version: Option<&str>) -> Result<(), String> {
        let mut leases = self.leases.borrow_mut();
        let lease = leases.entry(key.to_owned()).or_default();
        if lease.holder.as_deref() == Some(holder) {
            *lease = LeaseState { holder: None, written: written_version.map(str::to_owned) };
        }
        Ok(())
    }
    fn cache_get(&self, key: &str) -> Option<String> {
        let cache = self.cache.borrow();
        cache.get(key).filter(|(_, until)| *until > self.now.get()).map(|(v, _)| v.clone())
    }
    fn cache_set(&self, key: &str, value: &str, ttl_ms: u64) {
        let until = self.now.get().saturating_add(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        self.cache.borrow_mut().insert(key.to_owned(), (value.to_owned(), until));
    }
    fn cache_remove(&self, key: &str) {
        self.cache.borrow_mut().remove(key);
    }
    fn lock(&self, key: &str, _timeout_ms: u64) -> bool {
        self.locks.borrow_mut().insert(key.to_owned())
    }
    fn unlock(&self, key: &str) {
        self.locks.borrow_mut().remove(key);
    }
    fn recall(&self, key: &str) -> Option<String> {
        self.hints.borrow().get(key).cloned()
    }
    fn remember(&self, key: &str, value: Option<&str>) {
        match value {
            Some(v) => self.hints.borrow_mut().insert(key.to_owned(), v.to_owned()),
            None => self.hints.borrow_mut().remove(key),
        };
    }
    fn post(
        &self,
        url: &str,
        _ct: &str,
        body: &[u8],
        _bearer: Option<&str>,
        _timeout: u64,
    ) -> Result<Response, Failure> {
        assert_eq!(url, "https://api.linear.test/oauth/token");
        self.posts.borrow_mut().push(String::from_utf8_lossy(body).into_owned());
        let answer = self.answers.borrow_mut().pop_front().expect("a scripted answer for every token request");
        answer(self)
    }
    fn now_ms(&self) -> i64 {
        self.now.get()
    }
    fn sleep_ms(&self, ms: u64) {
        self.advance(i64::try_from(ms).unwrap_or(i64::MAX));
    }
    fn random_32(&self) -> [u8; 32] {
        [7; 32]
    }
    fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]) {
        self.logs.borrow_mut().push(format!("{level:?} {message} {fields:?}"));
    }
    fn count(&self, e: Event, workspace_id: &str) {
        self.events.borrow_mut().push((e, workspace_id.to_owned()));
    }
    fn refresh_latency(&self, ms: u64, _workspace_id: &str) {
        self.latencies.borrow_mut().push(ms);
    }
}
