//! `Resolver`: the typed Rust API over a small pool of component instances.
//!
//! The hot path never enters wasm: each resolved token comes back with the
//! instant until which it may be served again, and a cached, fresh token is a
//! map lookup and a clock comparison. Everything else is one call into an
//! instance taken from the pool, so a slow refresh of one workspace holds one
//! instance and never blocks resolves of others.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::{self, admin as wit_admin, install as wit_install, resolver as wit_resolver, LinearOauth};
use crate::coord::Coordination;
use crate::engine::{runtime, EPOCH_TICK};
use crate::http::{EgressPolicy, Origin};
use crate::store::{now_ms, Backends, PutOutcome};
use crate::{Error, LogLevel, LogSink, Options, Result, TracingSink};

/// A token the caller may use now.
#[derive(Clone, PartialEq, Eq)]
pub struct ResolvedToken {
    pub access_token: String,
    pub scope: String,
    pub workspace_slug: String,
    pub workspace_id: String,
    pub secret_id: String,
    /// ISO-8601 UTC.
    pub expires_at: String,
    /// Unix ms until which this token is served without asking the component.
    pub serve_until_ms: u64,
    /// Unix ms from which a long-lived resolver refreshes it in the background
    /// (`u64::MAX`: never).
    pub refresh_ahead_at_ms: u64,
}

impl fmt::Debug for ResolvedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedToken")
            .field("access_token", &"[redacted]")
            .field("scope", &self.scope)
            .field("workspace_slug", &self.workspace_slug)
            .field("workspace_id", &self.workspace_id)
            .field("secret_id", &self.secret_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl From<wit_resolver::ResolvedToken> for ResolvedToken {
    fn from(t: wit_resolver::ResolvedToken) -> Self {
        Self {
            access_token: t.access_token,
            scope: t.scope,
            workspace_slug: t.workspace_slug,
            workspace_id: t.workspace_id,
            secret_id: t.secret_id,
            expires_at: t.expires_at,
            serve_until_ms: t.serve_until_ms,
            refresh_ahead_at_ms: t.refresh_ahead_at_ms,
        }
    }
}

/// What an install needs from the operator.
#[derive(Clone)]
pub struct InstallParams {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    /// Sent space-separated; commas in user input are split too.
    pub scopes: Vec<String>,
    /// `actor=app` (default on).
    pub actor_app: bool,
}

impl fmt::Debug for InstallParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstallParams")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .field("actor_app", &self.actor_app)
            .finish()
    }
}

impl From<&InstallParams> for wit_install::InstallParams {
    fn from(p: &InstallParams) -> Self {
        Self {
            client_id: p.client_id.clone(),
            client_secret: p.client_secret.clone(),
            redirect_uri: p.redirect_uri.clone(),
            scopes: p.scopes.clone(),
            actor_app: p.actor_app,
        }
    }
}

/// What a client-credentials install needs: the Linear app's credentials
/// (the app must allow the client_credentials grant) and the scopes.
#[derive(Clone)]
pub struct ClientCredentialsParams {
    pub client_id: String,
    pub client_secret: String,
    /// Sent space-separated; commas in user input are split too.
    pub scopes: Vec<String>,
}

impl fmt::Debug for ClientCredentialsParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsParams")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// An install between `begin_install` and `complete_install`. Not `Clone`:
/// its verifier is used once.
pub struct PendingInstall {
    pub authorize_url: String,
    state: String,
    code_verifier: String,
}

impl fmt::Debug for PendingInstall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingInstall").field("authorize_url", &self.authorize_url).finish_non_exhaustive()
    }
}

impl PendingInstall {
    /// The `state` sent to Linear (not secret once in the URL, but never logged).
    pub fn state(&self) -> &str {
        &self.state
    }
}

/// An authorization code from the callback. Redacted in `Debug`.
pub struct AuthCode(String);

impl fmt::Debug for AuthCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthCode([redacted])")
    }
}

/// The result of a finished install (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub workspace_id: String,
    pub workspace_name: String,
    pub workspace_slug: String,
    pub viewer_id: String,
    pub viewer_name: String,
    pub viewer_email: String,
    pub secret_id: String,
    pub scope: String,
    pub expires_at: String,
    pub installed_at: String,
    pub replaced: bool,
}

impl From<wit_install::Installed> for Installed {
    fn from(i: wit_install::Installed) -> Self {
        Self {
            workspace_id: i.workspace_id,
            workspace_name: i.workspace_name,
            workspace_slug: i.workspace_slug,
            viewer_id: i.viewer_id,
            viewer_name: i.viewer_name,
            viewer_email: i.viewer_email,
            secret_id: i.secret_id,
            scope: i.scope,
            expires_at: i.expires_at,
            installed_at: i.installed_at,
            replaced: i.replaced,
        }
    }
}

/// A stored credential as an operator may see it: secrets only as fingerprints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub secret_id: String,
    pub fields: Vec<(String, String)>,
    /// Empty when the stored token is valid.
    pub invalid_fields: Vec<String>,
    /// Negative when already expired; `None` when unreadable.
    pub expires_in_ms: Option<i64>,
    pub needs_refresh: bool,
}

/// How a revoke ended at Linear. Messages never contain secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// Linear's revoke endpoint answered 200: the grant is ended.
    Revoked,
    /// Linear did not confirm, but the stored refresh token is refused with
    /// `invalid_grant`: the grant is provably dead.
    AlreadyDead,
    /// Linear answered 400/401 every time and the grant could not be shown
    /// dead (what was tried). Remove the app's authorization in Linear.
    NotConfirmed(String),
    /// A 5xx, 429 or transport failure (a short reason); try again.
    Failed(String),
}

impl RevokeOutcome {
    /// Whether the grant is known to be dead at Linear.
    pub fn confirmed(&self) -> bool {
        matches!(self, Self::Revoked | Self::AlreadyDead)
    }

    /// `revoked`, `already-dead`, `not-confirmed` or `failed`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::AlreadyDead => "already-dead",
            Self::NotConfirmed(_) => "not-confirmed",
            Self::Failed(_) => "failed",
        }
    }

    /// The explanation carried by `NotConfirmed` and `Failed`.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Self::NotConfirmed(m) | Self::Failed(m) => Some(m),
            Self::Revoked | Self::AlreadyDead => None,
        }
    }
}

impl From<wit_admin::RevokeOutcome> for RevokeOutcome {
    fn from(o: wit_admin::RevokeOutcome) -> Self {
        match o {
            wit_admin::RevokeOutcome::Revoked => Self::Revoked,
            wit_admin::RevokeOutcome::AlreadyDead => Self::AlreadyDead,
            wit_admin::RevokeOutcome::NotConfirmed(m) => Self::NotConfirmed(m),
            wit_admin::RevokeOutcome::Failed(m) => Self::Failed(m),
        }
    }
}

/// What `revoke` did. The registry row is `revoked` whatever the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub workspace_id: String,
    pub secret_id: String,
    pub outcome: RevokeOutcome,
    /// The last HTTP status of Linear's revoke endpoint; `None` when it never
    /// answered or no readable token was stored.
    pub linear_status: Option<u16>,
    pub purged: bool,
}

/// Everything instances of one resolver share.
struct Shared {
    backends: Backends,
    coord: Coordination,
    sink: Arc<dyn LogSink>,
    origin: Origin,
    options: Options,
    settings: wit_resolver::Settings,
}

/// The `T` of each instance's `Store`.
pub(crate) struct Ctx {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    egress: EgressPolicy,
    limits: StoreLimits,
    shared: Arc<Shared>,
    /// Locks this instance holds; released if it traps mid-call.
    held: Vec<String>,
    /// Store leases (key, holder) taken during the current call; released if
    /// it traps, so a deadline does not leave a refresh blocked until expiry.
    leases: Vec<(String, String)>,
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // Leases first: an in-process waiter woken by the unlock below must
        // find the store lease free.
        for (key, holder) in self.leases.drain(..) {
            if let Err(e) = self.shared.backends.registry.release_lease(&key, &holder) {
                self.shared.sink.log(
                    LogLevel::Warn,
                    "releasing the refresh lease of a failed call failed; it will expire",
                    &[("lease".into(), key.clone()), ("error".into(), e.to_string())],
                );
            }
        }
        for key in self.held.drain(..) {
            self.shared.coord.unlock(&key);
        }
    }
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for Ctx {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.egress }
    }
}

fn store_err(e: Error) -> String {
    match e {
        Error::Store(m) => m,
        other => other.to_string(),
    }
}

impl bindings::types::Host for Ctx {}

impl bindings::secret_store::Host for Ctx {
    fn get(&mut self, id: String) -> std::result::Result<Option<bindings::secret_store::Versioned>, String> {
        let v = self.shared.backends.secrets.get(&id).map_err(store_err)?;
        Ok(v.map(|v| bindings::secret_store::Versioned { value: v.value, version: v.version }))
    }

    fn put(
        &mut self,
        id: String,
        value: String,
        expected_version: Option<String>,
    ) -> std::result::Result<bindings::secret_store::PutOutcome, String> {
        Ok(match self.shared.backends.secrets.put(&id, &value, expected_version.as_deref()).map_err(store_err)? {
            PutOutcome::Written(v) => bindings::secret_store::PutOutcome::Written(v),
            PutOutcome::Conflict => bindings::secret_store::PutOutcome::Conflict,
        })
    }

    fn delete(&mut self, id: String) -> std::result::Result<bool, String> {
        self.shared.backends.secrets.delete(&id).map_err(store_err)
    }

    fn reserve(&mut self, id: String, bytes: u64) -> std::result::Result<(), String> {
        self.shared.backends.secrets.reserve(&id, bytes).map_err(store_err)
    }
}

fn row_to_wit(r: crate::RegistryRow) -> bindings::registry::Row {
    bindings::registry::Row {
        workspace_id: r.workspace_id,
        workspace_slug: r.workspace_slug,
        secret_id: r.secret_id,
        status: r.status,
    }
}

fn row_from_wit(r: bindings::registry::Row) -> crate::RegistryRow {
    crate::RegistryRow {
        workspace_id: r.workspace_id,
        workspace_slug: r.workspace_slug,
        secret_id: r.secret_id,
        status: r.status,
    }
}

impl bindings::registry::Host for Ctx {
    fn get(&mut self, workspace_id: String) -> std::result::Result<Option<bindings::registry::Row>, String> {
        Ok(self.shared.backends.registry.get(&workspace_id).map_err(store_err)?.map(row_to_wit))
    }

    fn put(&mut self, r: bindings::registry::Row) -> std::result::Result<(), String> {
        let row = row_from_wit(r);
        self.shared.backends.registry.put(&row).map_err(store_err)
    }

    fn list(&mut self) -> std::result::Result<Vec<bindings::registry::Row>, String> {
        Ok(self.shared.backends.registry.list().map_err(store_err)?.into_iter().map(row_to_wit).collect())
    }

    fn try_lease(
        &mut self,
        key: String,
        holder: String,
        ttl_ms: u64,
        note: String,
    ) -> std::result::Result<bindings::registry::LeaseGrant, String> {
        let g = self
            .shared
            .backends
            .registry
            .try_lease(&key, &holder, Duration::from_millis(ttl_ms), &note)
            .map_err(store_err)?;
        if g.acquired && !self.leases.iter().any(|(k, h)| *k == key && *h == holder) {
            self.leases.push((key, holder));
        }
        Ok(bindings::registry::LeaseGrant {
            acquired: g.acquired,
            previous_note: g.previous_note,
            written_version: g.written_version,
        })
    }

    fn take_lease_if_unchanged(
        &mut self,
        key: String,
        holder: String,
        ttl_ms: u64,
        note: String,
        seen_version: String,
        r: bindings::registry::Row,
    ) -> std::result::Result<bool, String> {
        let row = row_from_wit(r);
        let taken = self
            .shared
            .backends
            .registry
            .take_lease_if_unchanged(&key, &holder, Duration::from_millis(ttl_ms), &note, &seen_version, &row)
            .map_err(store_err)?;
        if taken && !self.leases.iter().any(|(k, h)| *k == key && *h == holder) {
            self.leases.push((key, holder));
        }
        Ok(taken)
    }

    fn release_lease(
        &mut self,
        key: String,
        holder: String,
        written_version: Option<String>,
    ) -> std::result::Result<(), String> {
        self.shared.backends.registry.finish_lease(&key, &holder, written_version.as_deref()).map_err(store_err)?;
        self.leases.retain(|(k, h)| !(*k == key && *h == holder));
        Ok(())
    }
}

impl bindings::coordination::Host for Ctx {
    fn cache_get(&mut self, key: String) -> Option<String> {
        self.shared.coord.cache_get(&key)
    }
    fn cache_set(&mut self, key: String, value: String, ttl_ms: u64) {
        self.shared.coord.cache_set(key, value, Duration::from_millis(ttl_ms));
    }
    fn cache_remove(&mut self, key: String) {
        self.shared.coord.cache_remove(&key);
    }
    fn lock(&mut self, key: String, timeout_ms: u64) -> bool {
        let ok = self.shared.coord.lock(&key, Duration::from_millis(timeout_ms));
        if ok {
            self.held.push(key);
        }
        ok
    }
    fn unlock(&mut self, key: String) {
        if let Some(i) = self.held.iter().position(|k| *k == key) {
            self.held.swap_remove(i);
            self.shared.coord.unlock(&key);
        }
    }
}

impl bindings::log::Host for Ctx {
    fn log(&mut self, level: bindings::log::Level, message: String, fields: Vec<(String, String)>) {
        use bindings::log::Level as L;
        let level = match level {
            L::Trace => LogLevel::Trace,
            L::Debug => LogLevel::Debug,
            L::Info => LogLevel::Info,
            L::Warn => LogLevel::Warn,
            L::Error => LogLevel::Error,
        };
        self.shared.sink.log(level, &message, &fields);
    }
}

struct Instance {
    store: Store<Ctx>,
    api: LinearOauth,
}

/// The least time between two refresh-ahead attempts of one secret after one
/// did not refresh.
const AHEAD_RETRY: Duration = Duration::from_secs(5);

/// How many idle instances a resolver keeps; more are made on demand.
const MAX_IDLE: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Workspace(String),
    Secret(String),
}

/// Resolves Linear access tokens; cheap to share across threads.
#[derive(Clone)]
pub struct Resolver {
    shared: Arc<Shared>,
    pool: Arc<Mutex<Vec<Instance>>>,
    fast: Arc<RwLock<HashMap<Key, Arc<ResolvedToken>>>>,
    /// Refresh-ahead per secret id: running, or cooling down after a failure
    /// until the given Unix ms (`u64::MAX` while running).
    ahead: Arc<Mutex<HashMap<String, u64>>>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("store", &self.shared.options.store)
            .field("api_base", &self.shared.options.api_base)
            .finish_non_exhaustive()
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn holder_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("pid{}-{:08x}-{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// wasi-http's sync bindings block on a Tokio runtime of their own, which
/// panics on a thread that is already inside one; such callers get a plain
/// thread for the call.
fn off_tokio<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| s.spawn(f).join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    } else {
        f()
    }
}

impl Resolver {
    /// Opens the store named in `options.store`.
    pub fn new(options: Options) -> Result<Self> {
        options.validate()?;
        let mut backends = Backends::open_with(&options.store, options.registry_table.as_deref())?;
        if options.long_lived && options.store == "aws" {
            // A lease release is a DynamoDB round trip nobody here waits for.
            backends.registry = Arc::new(crate::store::DeferredRelease::new(backends.registry));
        }
        Self::with_backends(options, backends)
    }

    /// Uses the given backends (`options.store` is then only a label).
    pub fn with_backends(options: Options, backends: Backends) -> Result<Self> {
        options.validate()?;
        let origin = Origin::from_api_base(&options.api_base)?;
        // A short-lived host has no later moment to refresh ahead in, so it
        // refreshes inline that much earlier.
        let (threshold, ahead) = if options.long_lived {
            (options.refresh_threshold, options.refresh_ahead)
        } else {
            (options.refresh_threshold + options.refresh_ahead, Duration::ZERO)
        };
        let settings = wit_resolver::Settings {
            api_base: options.api_base.clone(),
            authorize_url: options.authorize_url.clone(),
            refresh_threshold_ms: ms(threshold),
            cache_ttl_ms: ms(options.cache_ttl),
            secret_prefix: options.secret_prefix.clone(),
            http_timeout_ms: ms(options.http_timeout),
            lease_ttl_ms: ms(options.lease_ttl),
            lease_wait_ms: ms(options.lease_wait),
            holder_id: holder_id(),
            long_lived: options.long_lived,
            call_deadline_ms: ms(options.call_deadline),
            failure_memory_ms: ms(options.failure_memory),
            refresh_ahead_ms: ms(ahead),
        };
        let shared = Arc::new(Shared {
            backends,
            coord: Coordination::default(),
            sink: options.log_sink.clone().unwrap_or_else(|| Arc::new(TracingSink)),
            origin,
            options,
            settings,
        });
        let r = Self { shared, pool: Arc::default(), fast: Arc::default(), ahead: Arc::default() };
        // Load and validate now so configuration errors surface at construction.
        let inst = r.instantiate()?;
        if let Some(reason) = &runtime()?.info.fallback_reason {
            r.shared.sink.log(
                LogLevel::Warn,
                "precompiled component rejected on this machine; compiled it from wasm (slow cold start)",
                &[("reason".into(), reason.clone())],
            );
        }
        r.pool.lock().unwrap().push(inst);
        Ok(r)
    }

    pub fn options(&self) -> &Options {
        &self.shared.options
    }

    pub fn backends(&self) -> &Backends {
        &self.shared.backends
    }

    /// Whether the embedded precompiled component was usable, and load time.
    pub fn load_info() -> Result<crate::engine::LoadInfo> {
        Ok(runtime()?.info.clone())
    }

    fn instantiate(&self) -> Result<Instance> {
        let rt = runtime()?;
        let ctx = Ctx {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            egress: EgressPolicy::new(self.shared.origin.clone(), self.shared.options.http_timeout),
            limits: StoreLimitsBuilder::new().memory_size(self.shared.options.max_memory_bytes).instances(4).build(),
            shared: self.shared.clone(),
            held: Vec::new(),
            leases: Vec::new(),
        };
        let mut store = Store::new(&rt.engine, ctx);
        store.limiter(|c| &mut c.limits);
        self.arm_deadline(&mut store);
        let api = rt.pre.instantiate(&mut store).map_err(Error::internal)?;
        api.linear_oauth_resolver().call_init(&mut store, &self.shared.settings).map_err(Error::internal)??;
        Ok(Instance { store, api })
    }

    /// Starts the call's clock: the epoch deadline traps wasm that runs past
    /// it, and HTTP requests made during the call end before it.
    fn arm_deadline(&self, store: &mut Store<Ctx>) {
        let deadline = self.shared.options.call_deadline;
        let ticks = ms(deadline) / ms(EPOCH_TICK).max(1) + 1;
        store.set_epoch_deadline(ticks);
        store.data_mut().egress.call_started(deadline);
    }

    /// One call into an instance from the pool. A trap (deadline, memory cap,
    /// bug) discards the instance and its locks; errors the component returns
    /// keep it.
    fn call<R: Send>(
        &self,
        f: impl FnOnce(&mut Instance) -> wasmtime::Result<std::result::Result<R, bindings::types::Error>> + Send,
    ) -> Result<R> {
        off_tokio(|| {
            let popped = self.pool.lock().unwrap().pop();
            let mut inst = match popped {
                Some(i) => i,
                None => self.instantiate()?,
            };
            self.arm_deadline(&mut inst.store);
            match f(&mut inst) {
                Ok(result) => {
                    // The call returned: whatever leases it kept are its decision.
                    inst.store.data_mut().leases.clear();
                    let mut pool = self.pool.lock().unwrap();
                    if pool.len() < MAX_IDLE {
                        pool.push(inst);
                    }
                    result.map_err(Error::from)
                }
                Err(trap) => {
                    // Dropping `inst` below releases the locks and leases it held.
                    Err(self.trap_error(&trap))
                }
            }
        })
    }

    /// The caller's error for a trapped call. Running past the call deadline
    /// (a slow store or network) is `Transport`; anything else is a bug and
    /// `Internal`. The wasm backtrace goes to the log, never into the message.
    fn trap_error(&self, trap: &wasmtime::Error) -> Error {
        let deadline = trap.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt);
        let (level, message) = if deadline {
            (LogLevel::Warn, "component call ran past its deadline; instance discarded")
        } else {
            (LogLevel::Error, "component call failed; instance discarded")
        };
        self.shared.sink.log(level, message, &[("error".into(), format!("{trap:#}"))]);
        if deadline {
            let secs = self.shared.options.call_deadline.as_secs_f64();
            Error::Transport(format!("the call ran past its {secs} s deadline (slow store or network); retry"))
        } else {
            let cause =
                trap.downcast_ref::<wasmtime::Trap>().map_or_else(|| trap.root_cause().to_string(), |t| t.to_string());
            Error::Internal(format!("component call failed: {cause}"))
        }
    }

    fn fast_get(&self, key: &Key) -> Option<Arc<ResolvedToken>> {
        let t = self.fast.read().unwrap().get(key).cloned()?;
        (now_ms() < t.serve_until_ms).then_some(t)
    }

    fn fast_put(&self, key: Key, t: ResolvedToken) -> Arc<ResolvedToken> {
        let t = Arc::new(t);
        self.fast.write().unwrap().insert(key, t.clone());
        t
    }

    /// The cached token for a workspace if it may be served without any I/O
    /// (inside the refresh-ahead window this starts the background refresh).
    pub fn cached(&self, workspace_id: &str) -> Option<Arc<ResolvedToken>> {
        let t = self.fast_get(&Key::Workspace(workspace_id.to_owned()))?;
        self.maybe_refresh_ahead(&t);
        Some(t)
    }

    /// The cached token for a secret id if it may be served without any I/O.
    pub fn cached_secret(&self, secret_id: &str) -> Option<Arc<ResolvedToken>> {
        let t = self.fast_get(&Key::Secret(secret_id.to_owned()))?;
        self.maybe_refresh_ahead(&t);
        Some(t)
    }

    /// Registry row -> status -> stored token -> refresh if expiring.
    pub fn resolve(&self, workspace_id: &str) -> Result<Arc<ResolvedToken>> {
        let key = Key::Workspace(workspace_id.to_owned());
        if let Some(t) = self.fast_get(&key) {
            self.maybe_refresh_ahead(&t);
            return Ok(t);
        }
        let t = self.call(|i| i.api.linear_oauth_resolver().call_resolve(&mut i.store, workspace_id))?;
        let t = self.fast_put(key, t.into());
        self.maybe_refresh_ahead(&t);
        Ok(t)
    }

    /// The same from a secret id, without the registry.
    pub fn resolve_secret(&self, secret_id: &str) -> Result<Arc<ResolvedToken>> {
        let key = Key::Secret(secret_id.to_owned());
        if let Some(t) = self.fast_get(&key) {
            self.maybe_refresh_ahead(&t);
            return Ok(t);
        }
        let t = self.call(|i| i.api.linear_oauth_resolver().call_resolve_secret(&mut i.store, secret_id))?;
        let t = self.fast_put(key, t.into());
        self.maybe_refresh_ahead(&t);
        Ok(t)
    }

    /// A Linear API call made with `access_token` got 401: returns a token
    /// to retry with. When the stored token is another one (somebody already
    /// refreshed) that one, with no request to Linear; when it is this one,
    /// a refresh under the usual single flight and lease.
    /// `ReauthorizationRequired` when Linear refuses the refresh token too.
    pub fn report_unauthorized(&self, workspace_id: &str, access_token: &str) -> Result<Arc<ResolvedToken>> {
        self.forget(|k, v| matches!(k, Key::Workspace(w) if w == workspace_id) || v.workspace_id == workspace_id);
        let t: ResolvedToken = self
            .call(|i| i.api.linear_oauth_resolver().call_report_unauthorized(&mut i.store, workspace_id, access_token))?
            .into();
        self.forget(|_, v| v.secret_id == t.secret_id);
        Ok(self.fast_put(Key::Workspace(workspace_id.to_owned()), t))
    }

    /// Starts one background refresh when `t` is inside the refresh-ahead
    /// window; the caller keeps its valid token and never waits.
    fn maybe_refresh_ahead(&self, t: &ResolvedToken) {
        let now = now_ms();
        if now < t.refresh_ahead_at_ms {
            return;
        }
        {
            let mut ahead = self.ahead.lock().unwrap();
            if ahead.get(&t.secret_id).is_some_and(|&until| now < until) {
                return;
            }
            ahead.insert(t.secret_id.clone(), u64::MAX);
        }
        let (r, secret_id) = (self.clone(), t.secret_id.clone());
        let spawned = std::thread::Builder::new()
            .name("linear-oauth-refresh-ahead".into())
            .spawn(move || r.refresh_ahead_now(&secret_id));
        if let Err(e) = spawned {
            self.ahead.lock().unwrap().remove(&t.secret_id);
            self.shared.sink.log(
                LogLevel::Warn,
                "could not start a refresh-ahead thread",
                &[("error".into(), e.to_string())],
            );
        }
    }

    /// The access token cached for `secret_id`, if any (to tell whether a
    /// background refresh changed it).
    fn fast_token_of(&self, secret_id: &str) -> String {
        let fast = self.fast.read().unwrap();
        fast.values().find(|v| v.secret_id == secret_id).map(|v| v.access_token.clone()).unwrap_or_default()
    }

    /// The background refresh: every cached entry of the secret gets the result.
    fn refresh_ahead_now(&self, secret_id: &str) {
        let result = self.call(|i| i.api.linear_oauth_resolver().call_refresh_ahead(&mut i.store, secret_id));
        // Retrying sooner would turn an outage into a stream of requests.
        let retry_at = now_ms().saturating_add(ms(self.shared.options.failure_memory.max(AHEAD_RETRY)));
        let cooldown = match result {
            Ok(t) => {
                let t = Arc::new(ResolvedToken::from(t));
                // Still due: the refresh failed for a transient reason and
                // the valid token came back; try again later.
                let cooldown = if t.access_token == self.fast_token_of(secret_id) { retry_at } else { 0 };
                let mut fast = self.fast.write().unwrap();
                for v in fast.values_mut().filter(|v| v.secret_id == secret_id) {
                    *v = t.clone();
                }
                fast.entry(Key::Secret(secret_id.to_owned())).or_insert(t);
                cooldown
            }
            Err(e) => {
                self.shared.sink.log(
                    LogLevel::Warn,
                    "refresh-ahead failed; callers keep the valid token",
                    &[("secret_id".into(), secret_id.to_owned()), ("error".into(), e.to_string())],
                );
                retry_at
            }
        };
        self.ahead.lock().unwrap().insert(secret_id.to_owned(), cooldown);
    }

    /// Refreshes now even if the token is fresh (same coordination rules).
    pub fn force_refresh(&self, secret_id: &str) -> Result<Arc<ResolvedToken>> {
        let t: ResolvedToken =
            self.call(|i| i.api.linear_oauth_resolver().call_force_refresh(&mut i.store, secret_id))?.into();
        self.forget(|k, v| matches!(k, Key::Secret(s) if s == secret_id) || v.secret_id == secret_id);
        Ok(self.fast_put(Key::Secret(secret_id.to_owned()), t))
    }

    /// Forgets everything cached about this workspace.
    pub fn invalidate(&self, workspace_id: &str) {
        self.forget(|k, v| matches!(k, Key::Workspace(w) if w == workspace_id) || v.workspace_id == workspace_id);
        if let Err(e) = self.call(|i| i.api.linear_oauth_resolver().call_invalidate(&mut i.store, workspace_id).map(Ok))
        {
            self.shared.sink.log(LogLevel::Warn, "invalidate failed", &[("error".into(), e.to_string())]);
        }
    }

    fn forget(&self, pred: impl Fn(&Key, &ResolvedToken) -> bool) {
        self.fast.write().unwrap().retain(|k, v| !pred(k, v));
    }

    /// The stored credential with secrets redacted, and whether it is valid.
    pub fn inspect(&self, secret_id: &str) -> Result<Inspection> {
        let i = self.call(|i| i.api.linear_oauth_admin().call_inspect(&mut i.store, secret_id))?;
        Ok(Inspection {
            secret_id: i.secret_id,
            fields: i.fields,
            invalid_fields: i.invalid_fields,
            expires_in_ms: i.expires_in_ms,
            needs_refresh: i.needs_refresh,
        })
    }

    /// Marks the registry row revoked (always), revokes the grant at Linear as
    /// Linear documents it, and reports how that went. With `purge` the secret
    /// is deleted only if the grant is known dead (`Revoked`, `AlreadyDead`),
    /// or anyway with `force`; a kept secret is marked expired.
    pub fn revoke(&self, workspace_id: &str, purge: bool, force: bool) -> Result<Revocation> {
        let r: wit_admin::Revocation =
            self.call(|i| i.api.linear_oauth_admin().call_revoke(&mut i.store, workspace_id, purge, force))?;
        self.forget(|k, v| {
            matches!(k, Key::Workspace(w) if w == workspace_id)
                || v.workspace_id == workspace_id
                || v.secret_id == r.secret_id
        });
        Ok(Revocation {
            workspace_id: r.workspace_id,
            secret_id: r.secret_id,
            outcome: r.outcome.into(),
            linear_status: r.linear_status,
            purged: r.purged,
        })
    }

    /// Fresh PKCE pair and state, and the URL to open in a browser.
    pub fn begin_install(&self, params: &InstallParams) -> Result<PendingInstall> {
        let wit = wit_install::InstallParams::from(params);
        let p = self.call(|i| i.api.linear_oauth_install().call_begin(&mut i.store, &wit))?;
        Ok(PendingInstall { authorize_url: p.authorize_url, state: p.state, code_verifier: p.code_verifier })
    }

    /// The code from the callback's query string, if its `state` is ours.
    pub fn parse_callback(&self, pending: &PendingInstall, query: &str) -> Result<AuthCode> {
        let code =
            self.call(|i| i.api.linear_oauth_install().call_parse_callback(&mut i.store, query, &pending.state))?;
        Ok(AuthCode(code))
    }

    /// Exchanges the code, identifies the workspace, writes secret and registry row.
    pub fn complete_install(
        &self,
        params: &InstallParams,
        pending: PendingInstall,
        code: AuthCode,
        installed_by: &str,
    ) -> Result<Installed> {
        let wit = wit_install::InstallParams::from(params);
        let installed = self.call(|i| {
            i.api.linear_oauth_install().call_complete(
                &mut i.store,
                &wit,
                &code.0,
                &pending.code_verifier,
                installed_by,
            )
        })?;
        self.forget(|k, v| {
            matches!(k, Key::Workspace(w) if *w == installed.workspace_id) || v.workspace_id == installed.workspace_id
        });
        Ok(installed.into())
    }

    /// Installs with Linear's client_credentials grant (no browser): fetches
    /// the app's token, identifies the workspace, writes secret and registry
    /// row. Resolvers later fetch a new token instead of refreshing.
    pub fn install_client_credentials(
        &self,
        params: &ClientCredentialsParams,
        installed_by: &str,
    ) -> Result<Installed> {
        let wit = wit_install::ClientCredentialsParams {
            client_id: params.client_id.clone(),
            client_secret: params.client_secret.clone(),
            scopes: params.scopes.clone(),
        };
        let installed = self
            .call(|i| i.api.linear_oauth_install().call_install_client_credentials(&mut i.store, &wit, installed_by))?;
        self.forget(|k, v| {
            matches!(k, Key::Workspace(w) if *w == installed.workspace_id) || v.workspace_id == installed.workspace_id
        });
        Ok(installed.into())
    }
}
