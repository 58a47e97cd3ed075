//! The `Resolver` class `index.js` wraps.

use std::fmt;
use std::sync::Arc;

use linear_oauth_host::{camel_case, LogLevel, LogSink, Options, Resolver as HostResolver, REFRESH_LATENCY};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::errors::{js_error, no_panic};
use crate::logging::{JsSink, StderrSink};
use crate::options::NativeOptions;
use crate::records::{ClientCredentialsInstall, RevokeOptions, WebhookEvent, WebhookSecretTarget};
use crate::tasks::{Install, Job, Op, RejectedToken, Revoke, SetWebhookSecret, Task, Webhook};
use crate::tokens::{token_fields, Kind};
use crate::{ErrorArgs, Hooks};

#[napi]
pub struct Resolver {
    inner: HostResolver,
    sink: Arc<dyn LogSink>,
    hooks: Arc<Hooks>,
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
        make_error: Function<'_, ErrorArgs, Unknown<'static>>,
        log: Option<Function<'_, String, Unknown<'static>>>,
    ) -> Result<Self> {
        let hooks = Arc::new(Hooks { make_error: make_error.create_ref()? });
        let given = NativeOptions::read(options)?;
        let built = no_panic(|| {
            let base = if from_env { Options::from_env()? } else { Options::default() };
            given.apply(base)
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
        Ok(Self { inner, sink, hooks })
    }

    fn task<J: Job>(&self, job: J) -> AsyncTask<Task<J>> {
        AsyncTask::new(Task { job, resolver: self.inner.clone(), hooks: self.hooks.clone() })
    }

    /// The fast path: `null` if the host has no token to serve without I/O,
    /// `true` if it is the one with serial `known` (the wrapper's object
    /// still shows it), else the token's fields.
    fn cached_fields<'e>(
        &self,
        env: &'e Env,
        kind: Kind,
        id: &str,
        known: f64,
    ) -> Result<Option<Either<bool, Array<'e>>>> {
        let hit = no_panic(|| {
            Ok(match kind {
                Kind::Workspace => self.inner.cached(id),
                Kind::Secret => self.inner.cached_secret(id),
            })
        })
        .map_err(|e| js_error(env, &self.hooks, &e))?;
        hit.map(|t| if t.serial() as f64 == known { Ok(Either::A(true)) } else { token_fields(env, &t).map(Either::B) })
            .transpose()
    }
}

#[napi]
impl Resolver {
    /// Opens the store and loads the component (precompiled: no JIT).
    #[napi(constructor, ts_args_type = "options?: ResolverOptions")]
    pub fn new(
        env: &Env,
        options: Option<Object<'_>>,
        make_error: Function<'_, ErrorArgs, Unknown<'static>>,
        log: Option<Function<'_, String, Unknown<'static>>>,
    ) -> Result<Self> {
        Self::build(env, false, options, make_error, log)
    }

    /// The `LINEAR_OAUTH_*` environment variables, read exactly as the CLI
    /// reads them (`Options::from_env`), with any given options on top.
    #[napi(factory, ts_args_type = "options?: ResolverOptions")]
    pub fn from_env(
        env: &Env,
        options: Option<Object<'_>>,
        make_error: Function<'_, ErrorArgs, Unknown<'static>>,
        log: Option<Function<'_, String, Unknown<'static>>>,
    ) -> Result<Self> {
        Self::build(env, true, options, make_error, log)
    }

    /// A valid token for a Linear organization id: registry row, status,
    /// stored token, refresh if expiring.
    #[napi(ts_return_type = "Promise<LinearOAuthToken>")]
    pub fn resolve(&self, workspace_id: String) -> AsyncTask<Task<Op>> {
        self.task(Op::Resolve(workspace_id))
    }

    /// The same from a secret id, without the registry.
    #[napi(ts_return_type = "Promise<LinearOAuthToken>")]
    pub fn resolve_secret(&self, secret_id: String) -> AsyncTask<Task<Op>> {
        self.task(Op::ResolveSecret(secret_id))
    }

    /// A Linear API call with `accessToken` got 401: a token to retry with.
    /// The stored one when it is another token (no request to Linear), else
    /// a refresh under the usual single flight and lease.
    #[napi(ts_return_type = "Promise<LinearOAuthToken>")]
    pub fn report_unauthorized(&self, workspace_id: String, access_token: String) -> AsyncTask<Task<Op>> {
        self.task(Op::ReportUnauthorized(workspace_id, RejectedToken(access_token)))
    }

    /// `reportUnauthorized` for a token resolved by secret id (same rule).
    #[napi(ts_return_type = "Promise<LinearOAuthToken>")]
    pub fn report_unauthorized_secret(&self, secret_id: String, access_token: String) -> AsyncTask<Task<Op>> {
        self.task(Op::ReportUnauthorizedSecret(secret_id, RejectedToken(access_token)))
    }

    /// Refreshes now even if the token is fresh (same coordination rules).
    #[napi(ts_return_type = "Promise<LinearOAuthToken>")]
    pub fn force_refresh(&self, secret_id: String) -> AsyncTask<Task<Op>> {
        self.task(Op::ForceRefresh(secret_id))
    }

    /// Revokes the workspace's grant at Linear and marks it revoked here;
    /// `purge` deletes the stored secret, only once Linear's side is known
    /// dead unless `force`.
    #[napi(ts_return_type = "Promise<Revocation>")]
    pub fn revoke(&self, workspace_id: String, options: Option<RevokeOptions>) -> AsyncTask<Task<Revoke>> {
        let o = options.unwrap_or_default();
        self.task(Revoke { workspace_id, purge: o.purge.unwrap_or(false), force: o.force.unwrap_or(false) })
    }

    /// Installs a workspace with Linear's client_credentials grant (no
    /// browser); resolves later fetch a new token instead of refreshing.
    #[napi(ts_return_type = "Promise<Installed>")]
    pub fn install_client_credentials(&self, params: ClientCredentialsInstall) -> AsyncTask<Task<Install>> {
        let ClientCredentialsInstall { client_id, client_secret, scopes, installed_by } = params;
        self.task(Install {
            params: linear_oauth_host::ClientCredentialsParams {
                client_id,
                client_secret: client_secret.into(),
                scopes,
                secret_id: None,
            },
            installed_by,
        })
    }

    /// Checks a Linear webhook delivery: `signature` (the `Linear-Signature`
    /// header) over the exact body, then the replay window.
    #[napi(
        ts_args_type = "body: Uint8Array | string, signature: string, deliveryId?: string | null",
        ts_return_type = "Promise<WebhookEvent>"
    )]
    pub fn verify_webhook(
        &self,
        body: Either<Buffer, String>,
        signature: String,
        delivery_id: Option<String>,
    ) -> AsyncTask<Task<Webhook>> {
        self.task(Webhook { body: bytes(body), signature, delivery_id, handle: false })
    }

    /// `verifyWebhook`, then acts on lifecycle events (the app removed from a
    /// workspace marks it revoked); other events come back untouched.
    #[napi(
        ts_args_type = "body: Uint8Array | string, signature: string, deliveryId?: string | null",
        ts_return_type = "Promise<WebhookEvent>"
    )]
    pub fn handle_webhook(
        &self,
        body: Either<Buffer, String>,
        signature: String,
        delivery_id: Option<String>,
    ) -> AsyncTask<Task<Webhook>> {
        self.task(Webhook { body: bytes(body), signature, delivery_id, handle: true })
    }

    /// `verifyWebhook` on the calling thread when no I/O is needed (the
    /// secret is cached), else `null`.
    #[napi(skip_typescript)]
    pub fn verify_webhook_cached(
        &self,
        env: &Env,
        body: Either<&[u8], String>,
        signature: String,
        delivery_id: Option<String>,
    ) -> Result<Option<WebhookEvent>> {
        let body: &[u8] = match &body {
            Either::A(b) => b,
            Either::B(s) => s.as_bytes(),
        };
        let hit = no_panic(|| Ok(self.inner.verify_webhook_cached(body, &signature, delivery_id.as_deref())))
            .map_err(|e| js_error(env, &self.hooks, &e))?;
        hit.map(|r| r.map(WebhookEvent::from).map_err(|e| js_error(env, &self.hooks, &e))).transpose()
    }

    /// Stores a webhook signing secret: a workspace's own, or with no
    /// target the stack-wide one (`webhookSecretId`).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn set_webhook_secret(
        &self,
        value: String,
        target: Option<WebhookSecretTarget>,
    ) -> AsyncTask<Task<SetWebhookSecret>> {
        let t = target.unwrap_or_default();
        self.task(SetWebhookSecret { workspace_id: t.workspace_id, secret_id: t.secret_id, value: value.into() })
    }

    /// Forgets everything cached about this workspace.
    #[napi]
    pub fn invalidate(&self, env: &Env, workspace_id: String) -> Result<()> {
        no_panic(|| {
            self.inner.invalidate(&workspace_id);
            Ok(())
        })
        .map_err(|e| js_error(env, &self.hooks, &e))
    }

    /// Every metric of the host's table since this resolver was made, named
    /// in camelCase: each counter, and `refreshLatencyMs` as `{count, sumMs,
    /// minMs, maxMs, buckets: [{leMs, count}]}` (`leMs` null: slower than all).
    #[napi(ts_return_type = "Metrics")]
    pub fn metrics<'e>(&self, env: &'e Env) -> Result<Object<'e>> {
        let m = self.inner.metrics();
        let mut out = Object::new(env)?;
        for (name, value) in m.counters() {
            out.set(camel_case(name), value as f64)?;
        }
        let t = &m.refresh_latency;
        let mut timing = Object::new(env)?;
        timing.set("count", t.count as f64)?;
        timing.set("sumMs", t.sum_ms as f64)?;
        timing.set("minMs", t.min_ms as f64)?;
        timing.set("maxMs", t.max_ms as f64)?;
        let mut buckets = env.create_array(0)?;
        for (le, n) in &t.buckets {
            let mut b = Object::new(env)?;
            b.set("leMs", le.map(|l| l as f64))?;
            b.set("count", *n as f64)?;
            buckets.insert(b)?;
        }
        timing.set("buckets", buckets)?;
        out.set(camel_case(REFRESH_LATENCY), timing)?;
        Ok(out)
    }

    /// With `metricsEmf` on: one EMF line of the resolve counts since the
    /// last flush (a Lambda handler calls it before returning).
    #[napi]
    pub fn flush_metrics(&self, env: &Env) -> Result<()> {
        no_panic(|| {
            self.inner.flush_metrics();
            Ok(())
        })
        .map_err(|e| js_error(env, &self.hooks, &e))
    }

    /// Resolves the wrapper served from its own hot maps (never reaching the
    /// host): counted as cached resolves before a snapshot or flush.
    #[napi(skip_typescript)]
    pub fn count_cached_resolves(&self, n: f64) {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        self.inner.count_cached_resolves(n as u64);
    }

    /// Counts the host cache's drops of tokens: the wrapper checks each of
    /// its objects again once it moved (see index.js).
    #[napi(skip_typescript)]
    pub fn generation(&self) -> f64 {
        // Exact in an f64 up to 2^53 drops.
        self.inner.generation() as f64
    }

    /// The token if it may be served without I/O (the wrapper's fast path):
    /// `null`, `true` (the wrapper's object of serial `known` shows it), or
    /// its fields.
    #[napi(skip_typescript)]
    pub fn cached<'e>(
        &self,
        env: &'e Env,
        workspace_id: String,
        known: f64,
    ) -> Result<Option<Either<bool, Array<'e>>>> {
        self.cached_fields(env, Kind::Workspace, &workspace_id, known)
    }

    #[napi(skip_typescript)]
    pub fn cached_secret<'e>(
        &self,
        env: &'e Env,
        secret_id: String,
        known: f64,
    ) -> Result<Option<Either<bool, Array<'e>>>> {
        self.cached_fields(env, Kind::Secret, &secret_id, known)
    }

    /// The host's `cacheMaxEntries`: the wrapper keeps no more objects than that.
    #[napi(skip_typescript)]
    pub fn cache_max_entries(&self) -> f64 {
        self.inner.options().cache_max_entries as f64
    }

    /// One event through this resolver's sink; `fields` is `[k1, v1, k2, v2, ...]`.
    #[napi(skip_typescript)]
    pub fn log(&self, env: &Env, level: String, message: String, fields: Vec<String>) -> Result<()> {
        let level: LogLevel = level.parse().map_err(|e| Error::new(Status::InvalidArg, format!("{e}")))?;
        let pairs: Vec<(String, String)> =
            fields.chunks(2).map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or_default())).collect();
        no_panic(|| {
            self.sink.log(level, &message, &pairs);
            Ok(())
        })
        .map_err(|e| js_error(env, &self.hooks, &e))
    }
}

fn bytes(body: Either<Buffer, String>) -> Vec<u8> {
    match body {
        Either::A(b) => b.to_vec(),
        Either::B(s) => s.into_bytes(),
    }
}
