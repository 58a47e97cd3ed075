//! The `linear-oauth` Node addon: `linear_oauth_host` in napi terms, nothing more.
//!
//! Protocol, schema, caching and refresh decisions all live in the host and its
//! component. This crate only translates: options in, token objects and typed
//! errors out, log events to stderr or a JS logger, and blocking calls onto the
//! libuv pool so the event loop never waits for I/O.
//!
//! `index.js` wraps the class exported here (as `Resolver`) and passes in the
//! two JS factories it needs: one builds `LinearOAuthToken` objects, one builds
//! `LinearOAuthError`s. The TypeScript signatures below describe that public
//! wrapper; parameters and methods only the wrapper uses are hidden from the
//! generated `index.d.ts`.
//!
//! The hot path: `cached()` asks the host for a token that may be served
//! without I/O and hands back the very JS object made for that token the first
//! time (kept by reference, keyed by the host's `Arc`), so a cached resolve
//! creates no strings and crosses napi once. Each token object also carries the
//! host's `serve_until_ms`, which lets `index.js` answer repeated calls from a
//! JS map until that instant (see the note on `Resolver` there).

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use linear_oauth_host::{
    Error as HostError, LogLevel, LogSink, Options, ResolvedToken, Resolver as HostResolver, Setting, SettingKind,
    SETTINGS,
};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::ScopedTask;
use napi_derive::napi;

/// `(accessToken, scope, workspaceSlug, secretId, expiresAt, workspaceId, serveUntilMs) => LinearOAuthToken`
type TokenArgs = FnArgs<(String, String, String, String, String, String, f64, f64)>;
/// `(code, message, invalidFields, status, error, description, retryAfter) => LinearOAuthError`
type ErrorArgs =
    FnArgs<(String, String, Option<Vec<String>>, Option<u32>, Option<String>, Option<String>, Option<f64>)>;
type HostResult<T> = std::result::Result<T, HostError>;
/// A JSON log record (one line, no newline) for the JS logger.
type LogTsfn = ThreadsafeFunction<String, Unknown<'static>, String, Status, false, true>;

// ------------------------------------------------------------------ options

/// What `index.js` passes after checking types (`ResolverOptions` without the
/// logger); every field is optional and falls back to the host's default (or,
/// for `fromEnv`, the environment).
#[derive(Debug, Default)]
struct NativeOptions {
    /// Options of the host's table, under their Node names.
    text: Vec<(&'static Setting, String)>,
    numbers: Vec<(&'static Setting, f64)>,
    log_level: Option<String>,
}

impl NativeOptions {
    fn read(o: Option<Object<'_>>) -> Result<Self> {
        let Some(o) = o else { return Ok(Self::default()) };
        let mut out = Self { log_level: o.get("logLevel")?, ..Self::default() };
        for setting in &SETTINGS {
            let name = setting.node_name();
            if let SettingKind::Text { .. } = setting.kind {
                if let Some(v) = o.get::<String>(&name)? {
                    out.text.push((setting, v));
                }
            } else if let Some(v) = o.get::<f64>(&name)? {
                out.numbers.push((setting, v));
            }
        }
        Ok(out)
    }
}

/// The host's options table as Node spells it (`SETTINGS` in index.js):
/// `[name, kind, default]`, the default as text (`null`: unset).
#[napi(skip_typescript)]
pub fn settings() -> Vec<(String, &'static str, Option<String>)> {
    SETTINGS
        .iter()
        .map(|s| {
            let kind = match s.kind {
                SettingKind::Text { .. } => "text",
                SettingKind::Seconds(_) => "seconds",
                SettingKind::Bytes => "bytes",
            };
            (s.node_name(), kind, s.default_text())
        })
        .collect()
}

/// Lays the given options over `base`; returns the minimum log level too.
fn apply(mut base: Options, o: NativeOptions) -> HostResult<(Options, LogLevel)> {
    for (setting, v) in o.text {
        setting.set_text(&mut base, &setting.node_name(), v)?;
    }
    // The host's one validator, under this host's option name.
    for (setting, v) in o.numbers {
        setting.set_number(&mut base, &setting.node_name(), v)?;
    }
    let level = match o.log_level.as_deref() {
        None => LogLevel::Info,
        Some(s) => parse_level(s).ok_or_else(|| {
            HostError::InvalidInput(format!("logLevel must be trace, debug, info, warn or error, got {s:?}"))
        })?,
    };
    Ok((base, level))
}

fn parse_level(s: &str) -> Option<LogLevel> {
    Some(match s {
        "trace" => LogLevel::Trace,
        "debug" => LogLevel::Debug,
        "info" => LogLevel::Info,
        "warn" => LogLevel::Warn,
        "error" => LogLevel::Error,
        _ => return None,
    })
}

// --------------------------------------------------------------------- logs

const TIME_FORMAT: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// `{"level", "message", ...fields, "time"}`: one CloudWatch-friendly JSON
/// object. A field that would shadow one of the three is prefixed `field_`.
fn record(level: LogLevel, message: &str, fields: &[(String, String)]) -> String {
    let mut m = serde_json::Map::with_capacity(fields.len() + 3);
    m.insert("level".into(), level.as_str().into());
    m.insert("message".into(), message.into());
    for (k, v) in fields {
        let key = if matches!(k.as_str(), "level" | "message" | "time") { format!("field_{k}") } else { k.clone() };
        m.insert(key, v.as_str().into());
    }
    let now = time::OffsetDateTime::now_utc().format(TIME_FORMAT).unwrap_or_default();
    m.insert("time".into(), now.into());
    serde_json::Value::Object(m).to_string()
}

/// The default sink: one JSON line per event on stderr, written whole.
#[derive(Debug)]
struct StderrSink {
    min: LogLevel,
}

impl LogSink for StderrSink {
    fn log(&self, level: LogLevel, message: &str, fields: &[(String, String)]) {
        if level < self.min {
            return;
        }
        let mut line = record(level, message, fields);
        line.push('\n');
        // Nothing sensible to do if stderr is gone.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// Hands each event to the JS logger on the JS thread without waiting for it
/// (events come from libuv worker threads). Weak: never keeps the process alive.
struct JsSink {
    min: LogLevel,
    tsfn: LogTsfn,
}

impl fmt::Debug for JsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsSink").field("min", &self.min).finish_non_exhaustive()
    }
}

impl LogSink for JsSink {
    fn log(&self, level: LogLevel, message: &str, fields: &[(String, String)]) {
        if level < self.min {
            return;
        }
        // NonBlocking on an unbounded queue; fails only while the env shuts down.
        let _ = self.tsfn.call(record(level, message, fields), ThreadsafeFunctionCallMode::NonBlocking);
    }
}

// ------------------------------------------------------------ JS factories

/// The wrapper's factories, kept by reference for the resolver's lifetime.
struct Hooks {
    make_token: FunctionRef<TokenArgs, ObjectRef<false>>,
    make_error: FunctionRef<ErrorArgs, Unknown<'static>>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hooks")
    }
}

/// The one mapping of host errors to JS: a `LinearOAuthError` with the host's
/// stable `code`, its message, and the variant's fields.
fn js_error(env: &Env, hooks: &Hooks, e: &HostError) -> Error {
    let (missing, status, error, description) = match e {
        HostError::InvalidStoredToken(fields) => (Some(fields.clone()), None, None, None),
        HostError::TokenEndpoint { status, code, description, .. }
        | HostError::Authorization { status, code, description } => {
            (None, Some(u32::from(*status)), code.clone(), description.clone())
        }
        _ => (None, None, None, None),
    };
    let retry_after = e.retry_after().map(|d| d.as_secs_f64());
    let args = FnArgs::from((e.code().to_owned(), e.to_string(), missing, status, error, description, retry_after));
    match hooks.make_error.borrow_back(env).and_then(|f| f.call(args)) {
        Ok(value) => Error::from(value),
        Err(failed) => failed,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Workspace,
    Secret,
}

impl Kind {
    fn target(self, id: &str) -> linear_oauth_host::Target<'_> {
        match self {
            Kind::Workspace => linear_oauth_host::Target::Workspace(id),
            Kind::Secret => linear_oauth_host::Target::Secret(id),
        }
    }
}

/// A JS token object and the host token it was made from.
struct JsToken {
    token: Arc<ResolvedToken>,
    object: ObjectRef<false>,
}

/// The JS objects handed out so far, so a cached resolve returns the same
/// object instead of building a new one. Touched only on the JS thread; the
/// mutex is there because async tasks carry it across threads.
#[derive(Default)]
struct JsTokens {
    workspaces: HashMap<String, JsToken>,
    secrets: HashMap<String, JsToken>,
    /// Set when the resolver is finalized: later results are not kept.
    closed: bool,
    /// The host cache's generation when these entries were last checked.
    generation: u64,
}

impl fmt::Debug for JsTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsTokens")
            .field("workspaces", &self.workspaces.len())
            .field("secrets", &self.secrets.len())
            .field("closed", &self.closed)
            .finish()
    }
}

impl JsTokens {
    fn map(&mut self, kind: Kind) -> &mut HashMap<String, JsToken> {
        match kind {
            Kind::Workspace => &mut self.workspaces,
            Kind::Secret => &mut self.secrets,
        }
    }

    /// After the host dropped tokens (its generation moved): drops (and
    /// unrefs) the objects of tokens the host no longer caches. Which tokens
    /// a call drops is the host's rule alone.
    fn sync(&mut self, env: &Env, host: &HostResolver) -> Result<()> {
        let generation = host.generation();
        if generation == self.generation {
            return Ok(());
        }
        self.generation = generation;
        self.drop_where(env, |kind, id, t| !host.holds(kind.target(id), t))
    }

    /// Drops (and unrefs) every entry `pred` selects.
    fn drop_where(&mut self, env: &Env, pred: impl Fn(Kind, &str, &Arc<ResolvedToken>) -> bool) -> Result<()> {
        for kind in [Kind::Workspace, Kind::Secret] {
            let map = self.map(kind);
            let gone: Vec<String> =
                map.iter().filter(|(k, v)| pred(kind, k, &v.token)).map(|(k, _)| k.clone()).collect();
            for k in gone {
                if let Some(e) = map.remove(&k) {
                    e.object.unref(env)?;
                }
            }
        }
        Ok(())
    }
}

fn lock(tokens: &Mutex<JsTokens>) -> MutexGuard<'_, JsTokens> {
    tokens.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The JS object for `token`: the one made before if it is for this very
/// host token, else a new one from the wrapper's factory.
fn token_object<'e>(
    env: &'e Env,
    hooks: &Hooks,
    tokens: &Mutex<JsTokens>,
    kind: Kind,
    id: &str,
    token: Arc<ResolvedToken>,
) -> Result<Object<'e>> {
    if let Some(e) = lock(tokens).map(kind).get(id) {
        if Arc::ptr_eq(&e.token, &token) {
            return e.object.get_value(env);
        }
    }
    // No lock held while JS runs.
    let t = &*token;
    let args = FnArgs::from((
        t.access_token.secret().to_owned(),
        t.scope.clone(),
        t.workspace_slug.clone(),
        t.secret_id.clone(),
        t.expires_at.clone(),
        t.workspace_id.clone(),
        // Unix ms: exact in an f64 for the next 285,000 years.
        t.serve_until_ms as f64,
        // u64::MAX (never) becomes 1.8e19: still "never" for Date.now().
        t.refresh_ahead_at_ms as f64,
    ));
    let object = hooks.make_token.borrow_back(env)?.call(args)?;
    let value = object.get_value(env)?;
    let mut guard = lock(tokens);
    if guard.closed {
        object.unref(env)?;
    } else if let Some(old) = guard.map(kind).insert(id.to_owned(), JsToken { token, object }) {
        old.object.unref(env)?;
    }
    Ok(value)
}

// ------------------------------------------------------------- async calls

#[derive(Debug)]
enum Op {
    Resolve(String),
    ResolveSecret(String),
    ForceRefresh(String),
    /// Workspace id and the rejected access token.
    ReportUnauthorized(String, RejectedToken),
}

/// An access token Linear rejected; still a secret, so `Debug` hides it.
struct RejectedToken(String);

impl fmt::Debug for RejectedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RejectedToken([redacted])")
    }
}

/// One blocking host call on the libuv pool; settles on the JS thread.
#[derive(Debug)]
pub struct Call {
    op: Op,
    resolver: HostResolver,
    hooks: Arc<Hooks>,
    tokens: Arc<Mutex<JsTokens>>,
}

impl<'t> ScopedTask<'t> for Call {
    type Output = HostResult<Arc<ResolvedToken>>;
    type JsValue = Object<'t>;

    fn compute(&mut self) -> Result<Self::Output> {
        let r = &self.resolver;
        Ok(no_panic(|| match &self.op {
            Op::Resolve(id) => r.resolve(id),
            Op::ResolveSecret(id) => r.resolve_secret(id),
            Op::ForceRefresh(id) => r.force_refresh(linear_oauth_host::Target::Secret(id)),
            Op::ReportUnauthorized(id, token) => r.report_unauthorized(id, &token.0),
        }))
    }

    fn resolve(&mut self, env: &'t Env, output: Self::Output) -> Result<Object<'t>> {
        let (kind, id) = match &self.op {
            Op::Resolve(id) | Op::ReportUnauthorized(id, _) => (Kind::Workspace, id),
            Op::ResolveSecret(id) | Op::ForceRefresh(id) => (Kind::Secret, id),
        };
        lock(&self.tokens).sync(env, &self.resolver)?;
        match output {
            Ok(token) => token_object(env, &self.hooks, &self.tokens, kind, id, token),
            Err(e) => Err(js_error(env, &self.hooks, &e)),
        }
    }
}

/// What `revoke` did. The workspace is marked revoked whatever the outcome;
/// `confirmed` says whether Linear's side of the grant is known dead.
#[napi(object)]
#[derive(Debug)]
pub struct Revocation {
    pub workspace_id: String,
    pub secret_id: String,
    /// `revoked`, `already-dead`, `not-confirmed` or `failed`.
    pub outcome: String,
    pub confirmed: bool,
    /// What was tried, for `not-confirmed` and `failed` (never a secret).
    pub detail: Option<String>,
    /// The last HTTP status of Linear's revoke endpoint, if it answered.
    pub linear_status: Option<u32>,
    pub purged: bool,
}

/// Options of `revoke`.
#[napi(object)]
#[derive(Debug, Default)]
pub struct RevokeOptions {
    /// Also delete the stored secret (only once Linear's side is known dead, unless `force`).
    pub purge: Option<bool>,
    /// With `purge`: delete the secret even if Linear did not confirm.
    pub force: Option<bool>,
}

/// A panic in the host becomes `INTERNAL`, never an abort of the Node process
/// (a panic unwinding out of a napi callback aborts it). Every entry point
/// that reaches the host goes through here.
fn no_panic<R>(f: impl FnOnce() -> HostResult<R>) -> HostResult<R> {
    std::panic::catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(HostError::Internal("the resolver panicked".into())))
}

/// `revoke` on the libuv pool (it talks to Linear and may probe a refresh).
#[derive(Debug)]
pub struct RevokeCall {
    workspace_id: String,
    purge: bool,
    force: bool,
    resolver: HostResolver,
    hooks: Arc<Hooks>,
    tokens: Arc<Mutex<JsTokens>>,
}

impl<'t> ScopedTask<'t> for RevokeCall {
    type Output = HostResult<linear_oauth_host::Revocation>;
    type JsValue = Revocation;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(no_panic(|| self.resolver.revoke(&self.workspace_id, self.purge, self.force)))
    }

    fn resolve(&mut self, env: &'t Env, output: Self::Output) -> Result<Revocation> {
        lock(&self.tokens).sync(env, &self.resolver)?;
        let r = output.map_err(|e| js_error(env, &self.hooks, &e))?;
        Ok(Revocation {
            outcome: r.outcome.label().to_owned(),
            confirmed: r.outcome.confirmed(),
            detail: r.outcome.detail().map(str::to_owned),
            linear_status: r.linear_status.map(u32::from),
            purged: r.purged,
            workspace_id: r.workspace_id,
            secret_id: r.secret_id,
        })
    }
}

/// What `installClientCredentials` needs. The app must allow Linear's
/// client_credentials grant.
#[napi(object)]
pub struct ClientCredentialsInstall {
    pub client_id: String,
    pub client_secret: String,
    /// Sent space-separated; commas are split too.
    pub scopes: Vec<String>,
    /// Recorded as `installed_by_platform_user_id`.
    pub installed_by: String,
}

impl fmt::Debug for ClientCredentialsInstall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsInstall")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("scopes", &self.scopes)
            .field("installed_by", &self.installed_by)
            .finish()
    }
}

/// What an install wrote (no secrets).
#[napi(object)]
#[derive(Debug)]
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
    /// A secret for this workspace existed and was replaced.
    pub replaced: bool,
}

/// `installClientCredentials` on the libuv pool (it talks to Linear).
#[derive(Debug)]
pub struct InstallCall {
    params: linear_oauth_host::ClientCredentialsParams,
    installed_by: String,
    resolver: HostResolver,
    hooks: Arc<Hooks>,
    tokens: Arc<Mutex<JsTokens>>,
}

impl<'t> ScopedTask<'t> for InstallCall {
    type Output = HostResult<linear_oauth_host::Installed>;
    type JsValue = Installed;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(no_panic(|| self.resolver.install_client_credentials(&self.params, &self.installed_by)))
    }

    fn resolve(&mut self, env: &'t Env, output: Self::Output) -> Result<Installed> {
        lock(&self.tokens).sync(env, &self.resolver)?;
        let i = output.map_err(|e| js_error(env, &self.hooks, &e))?;
        Ok(Installed {
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
        })
    }
}

// ----------------------------------------------------------------- the class

#[napi(custom_finalize)]
pub struct Resolver {
    inner: HostResolver,
    sink: Arc<dyn LogSink>,
    hooks: Arc<Hooks>,
    tokens: Arc<Mutex<JsTokens>>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl Resolver {
    fn build(
        env: &Env,
        from_env: bool,
        options: Option<Object<'_>>,
        make_token: Function<'_, TokenArgs, ObjectRef<false>>,
        make_error: Function<'_, ErrorArgs, Unknown<'static>>,
        log: Option<Function<'_, String, Unknown<'static>>>,
    ) -> Result<Self> {
        let hooks = Arc::new(Hooks { make_token: make_token.create_ref()?, make_error: make_error.create_ref()? });
        let given = NativeOptions::read(options)?;
        let built = no_panic(|| {
            let base = if from_env { Options::from_env()? } else { Options::default() };
            apply(base, given)
        });
        let (mut opts, min) = built.map_err(|e| js_error(env, &hooks, &e))?;
        let sink: Arc<dyn LogSink> = match log {
            None => Arc::new(StderrSink { min }),
            Some(f) => {
                let tsfn = f.build_threadsafe_function::<String>().weak::<true>().callee_handled::<false>().build()?;
                Arc::new(JsSink { min, tsfn })
            }
        };
        opts.log_sink = Some(sink.clone());
        let inner = no_panic(|| HostResolver::new(opts)).map_err(|e| js_error(env, &hooks, &e))?;
        Ok(Self { inner, sink, hooks, tokens: Arc::default() })
    }

    fn call(&self, op: Op) -> AsyncTask<Call> {
        AsyncTask::new(Call {
            op,
            resolver: self.inner.clone(),
            hooks: self.hooks.clone(),
            tokens: self.tokens.clone(),
        })
    }

    fn cached_object<'e>(&self, env: &'e Env, kind: Kind, id: &str) -> Result<Option<Object<'e>>> {
        let hit = no_panic(|| {
            Ok(match kind {
                Kind::Workspace => self.inner.cached(id),
                Kind::Secret => self.inner.cached_secret(id),
            })
        })
        .map_err(|e| js_error(env, &self.hooks, &e))?;
        hit.map(|t| token_object(env, &self.hooks, &self.tokens, kind, id, t)).transpose()
    }
}

#[napi]
impl Resolver {
    /// Opens the store and loads the component (precompiled: no JIT).
    #[napi(constructor, ts_args_type = "options?: ResolverOptions")]
    pub fn new(
        env: &Env,
        options: Option<Object<'_>>,
        make_token: Function<'_, TokenArgs, ObjectRef<false>>,
        make_error: Function<'_, ErrorArgs, Unknown<'static>>,
        log: Option<Function<'_, String, Unknown<'static>>>,
    ) -> Result<Self> {
        Self::build(env, false, options, make_token, make_error, log)
    }

    /// The `LINEAR_OAUTH_*` environment variables, read exactly as the CLI
    /// reads them (`Options::from_env`), with any given options on top.
    #[napi(factory, ts_args_type = "options?: ResolverOptions")]
    pub fn from_env(
        env: &Env,
        options: Option<Object<'_>>,
        make_token: Function<'_, TokenArgs, ObjectRef<false>>,
        make_error: Function<'_, ErrorArgs, Unknown<'static>>,
        log: Option<Function<'_, String, Unknown<'static>>>,
    ) -> Result<Self> {
        Self::build(env, true, options, make_token, make_error, log)
    }

    /// A valid token for a Linear organization id: registry row, status,
    /// stored token, refresh if expiring.
    #[napi(ts_return_type = "Promise<LinearOAuthToken>")]
    pub fn resolve(&self, workspace_id: String) -> AsyncTask<Call> {
        self.call(Op::Resolve(workspace_id))
    }

    /// The same from a secret id, without the registry.
    #[napi(ts_return_type = "Promise<LinearOAuthToken>")]
    pub fn resolve_secret(&self, secret_id: String) -> AsyncTask<Call> {
        self.call(Op::ResolveSecret(secret_id))
    }

    /// A Linear API call with `accessToken` got 401: a token to retry with.
    /// The stored one when it is another token (no request to Linear), else
    /// a refresh under the usual single flight and lease.
    #[napi(ts_return_type = "Promise<LinearOAuthToken>")]
    pub fn report_unauthorized(&self, workspace_id: String, access_token: String) -> AsyncTask<Call> {
        self.call(Op::ReportUnauthorized(workspace_id, RejectedToken(access_token)))
    }

    /// Refreshes now even if the token is fresh (same coordination rules).
    #[napi(ts_return_type = "Promise<LinearOAuthToken>")]
    pub fn force_refresh(&self, secret_id: String) -> AsyncTask<Call> {
        self.call(Op::ForceRefresh(secret_id))
    }

    /// Revokes the workspace's grant at Linear and marks it revoked here;
    /// `purge` deletes the stored secret, only once Linear's side is known
    /// dead unless `force`.
    #[napi(ts_return_type = "Promise<Revocation>")]
    pub fn revoke(&self, workspace_id: String, options: Option<RevokeOptions>) -> AsyncTask<RevokeCall> {
        let o = options.unwrap_or_default();
        AsyncTask::new(RevokeCall {
            workspace_id,
            purge: o.purge.unwrap_or(false),
            force: o.force.unwrap_or(false),
            resolver: self.inner.clone(),
            hooks: self.hooks.clone(),
            tokens: self.tokens.clone(),
        })
    }

    /// Installs a workspace with Linear's client_credentials grant (no
    /// browser); resolves later fetch a new token instead of refreshing.
    #[napi(ts_return_type = "Promise<Installed>")]
    pub fn install_client_credentials(&self, params: ClientCredentialsInstall) -> AsyncTask<InstallCall> {
        let ClientCredentialsInstall { client_id, client_secret, scopes, installed_by } = params;
        AsyncTask::new(InstallCall {
            params: linear_oauth_host::ClientCredentialsParams {
                client_id,
                client_secret: client_secret.into(),
                scopes,
                secret_id: None,
            },
            installed_by,
            resolver: self.inner.clone(),
            hooks: self.hooks.clone(),
            tokens: self.tokens.clone(),
        })
    }

    /// Forgets everything cached about this workspace.
    #[napi]
    pub fn invalidate(&self, env: &Env, workspace_id: String) -> Result<()> {
        no_panic(|| {
            self.inner.invalidate(&workspace_id);
            Ok(())
        })
        .map_err(|e| js_error(env, &self.hooks, &e))?;
        lock(&self.tokens).sync(env, &self.inner)
    }

    /// Counts the host cache's drops of tokens: the wrapper stamps its hot
    /// entries with it and asks again about those stamped before a drop.
    #[napi(skip_typescript)]
    pub fn generation(&self) -> f64 {
        // Exact in an f64 up to 2^53 drops.
        self.inner.generation() as f64
    }

    /// The token if it may be served without I/O (the wrapper's fast path).
    #[napi(skip_typescript)]
    pub fn cached<'e>(&self, env: &'e Env, workspace_id: String) -> Result<Option<Object<'e>>> {
        self.cached_object(env, Kind::Workspace, &workspace_id)
    }

    #[napi(skip_typescript)]
    pub fn cached_secret<'e>(&self, env: &'e Env, secret_id: String) -> Result<Option<Object<'e>>> {
        self.cached_object(env, Kind::Secret, &secret_id)
    }

    /// One event through this resolver's sink; `fields` is `[k1, v1, k2, v2, ...]`.
    #[napi(skip_typescript)]
    pub fn log(&self, env: &Env, level: String, message: String, fields: Vec<String>) -> Result<()> {
        let level = parse_level(&level)
            .ok_or_else(|| Error::new(Status::InvalidArg, format!("unknown log level {level:?}")))?;
        let pairs: Vec<(String, String)> =
            fields.chunks(2).map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or_default())).collect();
        no_panic(|| {
            self.sink.log(level, &message, &pairs);
            Ok(())
        })
        .map_err(|e| js_error(env, &self.hooks, &e))
    }
}

impl ObjectFinalize for Resolver {
    fn finalize(self, env: Env) -> Result<()> {
        let mut tokens = lock(&self.tokens);
        tokens.closed = true;
        tokens.drop_where(&env, |_, _, _| true)
    }
}

// ---------------------------------------------------------------- load info

/// The host's error codes, in its table's order (`ERROR_CODES` in index.js).
#[napi(skip_typescript)]
pub fn error_codes() -> Vec<&'static str> {
    linear_oauth_host::ERROR_KINDS.iter().map(|k| k.code).collect()
}

/// How the embedded component was loaded.
#[napi(object)]
#[derive(Debug)]
pub struct LoadInfo {
    /// True when the precompiled component was rejected and wasm was compiled
    /// at load time instead (should never happen for a build of this package).
    pub compiled_fallback: bool,
    pub load_time_ms: f64,
}

/// Loads the component if no resolver has yet, and reports how.
#[napi]
pub fn load_info() -> Result<LoadInfo> {
    let info = HostResolver::load_info().map_err(|e| Error::new(Status::GenericFailure, e.to_string()))?;
    Ok(LoadInfo { compiled_fallback: info.compiled_fallback, load_time_ms: info.load_time.as_secs_f64() * 1000.0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn records_are_one_json_object_with_level_message_fields_time() {
        let line =
            record(LogLevel::Warn, "hello", &[("workspace_id".into(), "org-1".into()), ("time".into(), "x".into())]);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["level", "message", "workspace_id", "field_time", "time"]);
        assert_eq!(v["level"], "warn");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn options_are_validated() {
        let find = |n: &str| Setting::find(n).unwrap();
        let bad = NativeOptions { numbers: vec![(find("cacheTtlSeconds"), -1.0)], ..Default::default() };
        assert!(matches!(apply(Options::default(), bad), Err(HostError::InvalidInput(_))));
        let bad = NativeOptions { numbers: vec![(find("httpTimeoutSeconds"), 0.0)], ..Default::default() };
        let e = apply(Options::default(), bad).unwrap_err();
        assert!(e.to_string().contains("httpTimeoutSeconds"), "{e}");
        let bad = NativeOptions { log_level: Some("loud".into()), ..Default::default() };
        assert!(matches!(apply(Options::default(), bad), Err(HostError::InvalidInput(_))));
        let ok = NativeOptions {
            numbers: vec![(find("refreshThresholdSeconds"), 0.5)],
            text: vec![(find("store"), "memory:".into())],
            ..Default::default()
        };
        let (o, level) = apply(Options::default(), ok).unwrap();
        assert_eq!(
            (o.refresh_threshold, o.store.as_str(), level),
            (Duration::from_millis(500), "memory:", LogLevel::Info)
        );
    }
}
