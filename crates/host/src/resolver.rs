//! `Resolver`: the typed Rust API.
//!
//! The hot path never enters wasm: each resolved token comes back with the
//! instant until which it may be served again, and a cached, fresh token is a
//! map lookup and a clock comparison. Everything else is one call into an
//! instance from the pool (`pool.rs`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::bindings::{admin as wit_admin, install as wit_install, resolver as wit_resolver, types as wit_types};
use crate::cache::{Key, Scope, TokenCache};
use crate::coord::{holder_id, Coordination};
use crate::ctx::Shared;
use crate::engine::runtime;
use crate::hints::MemoryHints;
use crate::http::Origin;
use crate::metrics::{Counter, Emf, Metrics, MetricsSnapshot, StdoutEmf};
use crate::pool::{ms, Pool};
use crate::store::{now_ms, Backends};
use crate::test_hook::test_panic;
use crate::types::{
    AuthCode, ClientCredentialsParams, Inspection, InstallParams, Installed, PendingInstall, ResolvedToken, Revocation,
    Target,
};
use crate::webhook::WebhookKeys;
use crate::{Lifetime, LogLevel, Options, Result, TracingSink};

/// Entries in a resolver's in-memory caches ([`Resolver::cache_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Tokens on the fast path, by workspace and by secret id (at most
    /// `cache_max_entries`).
    pub tokens: usize,
    /// The component's cache (tokens this process renewed, rows of workspaces
    /// not active, of about the last `cache_ttl`; active rows are hints).
    pub component: usize,
    /// Keys with a refresh lock held or waited on now.
    pub refresh_locks: usize,
}

/// The least time between two refresh-ahead attempts of one secret after one
/// did not refresh.
const AHEAD_RETRY: Duration = Duration::from_secs(5);

/// Resolves Linear access tokens; cheap to share across threads.
#[derive(Clone)]
pub struct Resolver {
    pub(crate) pool: Arc<Pool>,
    pub(crate) cache: Arc<TokenCache>,
    pub(crate) webhook_keys: Arc<WebhookKeys>,
    /// Refresh-ahead per secret id: running, or cooling down after a failure
    /// until the given Unix ms (`u64::MAX` while running).
    ahead: Arc<Mutex<HashMap<String, u64>>>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("store", &self.pool.shared.options.store)
            .field("api_base", &self.pool.shared.options.api_base)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// Opens the store named in `options.store`.
    pub fn new(options: Options) -> Result<Self> {
        test_panic("new", &options.store);
        options.validate()?;
        options.check_store()?;
        let mut backends =
            Backends::open_deleting(&options.store, options.registry_table.as_deref(), options.secret_deletion)?;
        if options.effective_lifetime().0 == Lifetime::LongLived && options.store == "aws" {
            // A lease release is a DynamoDB round trip nobody here waits
            // for; only a process that outlives the call may send it later.
            backends.registry = Arc::new(crate::store::DeferredRelease::new(backends.registry));
        }
        Self::with_backends(options, backends)
    }

    /// Uses the given backends (`options.store` is then only a label).
    pub fn with_backends(options: Options, backends: Backends) -> Result<Self> {
        options.validate()?;
        let origin = Origin::from_api_base(&options.api_base)?;
        let (lifetime, detected_from) = options.effective_lifetime();
        // Only a process that outlives the call may refresh in the
        // background; any other refreshes inline that much earlier.
        let (threshold, ahead) = if lifetime == Lifetime::LongLived {
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
            holder_id: holder_id()?,
            lifetime: match lifetime {
                Lifetime::LongLived => wit_types::Lifetime::LongLived,
                Lifetime::Invocation => wit_types::Lifetime::Invocation,
                Lifetime::Command => wit_types::Lifetime::Command,
            },
            call_deadline_ms: ms(options.call_deadline),
            failure_memory_ms: ms(options.failure_memory),
            refresh_ahead_ms: ms(ahead),
            webhook_secret_id: options.webhook_secret_id.clone(),
        };
        let shared = Arc::new(Shared {
            backends,
            coord: Coordination::bounded(
                options.cache_max_entries.saturating_mul(crate::coord::KEYS_PER_WORKSPACE).max(64),
            ),
            hints: options.hints.clone().unwrap_or_else(|| Arc::new(MemoryHints::new(options.cache_max_entries))),
            sink: options.log_sink.clone().unwrap_or_else(|| Arc::new(TracingSink)),
            origin,
            metrics: Metrics::default(),
            emf: options.metrics_emf.then(|| {
                let emf = Emf {
                    namespace: options.metrics_namespace.clone(),
                    workspace_dimension: options.metrics_by_workspace,
                };
                (emf, options.emf_sink.clone().unwrap_or_else(|| Arc::new(StdoutEmf)))
            }),
            options,
            settings,
        });
        let cache = Arc::new(TokenCache::new(shared.options.cache_max_entries));
        let webhook_keys = Arc::new(WebhookKeys::new(shared.options.cache_max_entries));
        let r = Self { pool: Arc::new(Pool::new(shared)?), cache, webhook_keys, ahead: Arc::default() };
        // Once per resolver: what may run after a call returns depends on
        // it. The plain service default stays quiet (constructing a resolver
        // need not import a binding's logging machinery).
        if lifetime == Lifetime::Invocation || r.pool.shared.options.lifetime == Some(Lifetime::LongLived) {
            let mut fields = vec![("lifetime".to_owned(), lifetime.as_str().to_owned())];
            fields.extend(detected_from.map(|v| ("detected_from".to_owned(), v.to_owned())));
            r.pool.shared.sink.log(LogLevel::Info, "linear-oauth resolver ready", &fields);
        }
        if let Some(reason) = &runtime()?.info.fallback_reason {
            r.pool.shared.sink.log(
                LogLevel::Warn,
                "precompiled component rejected on this machine; compiled it from wasm (slow cold start)",
                &[("reason".into(), reason.clone())],
            );
        }
        Ok(r)
    }

    pub fn options(&self) -> &Options {
        &self.pool.shared.options
    }

    pub fn backends(&self) -> &Backends {
        &self.pool.shared.backends
    }

    /// Whether the embedded precompiled component was usable, and load time.
    pub fn load_info() -> Result<crate::engine::LoadInfo> {
        Ok(runtime()?.info.clone())
    }

    /// Counts the times this resolver's cache dropped tokens early (see
    /// [`Resolver::holds`]).
    pub fn generation(&self) -> u64 {
        self.cache.generation()
    }

    /// Whether the token of `serial` ([`ResolvedToken::serial`]) is still
    /// the one this resolver caches for `target`: a binding may keep an
    /// object made from it (the one rule for dropping cached tokens lives
    /// here, not in the bindings).
    pub fn holds(&self, target: Target<'_>, serial: u64) -> bool {
        self.cache.holds(target, serial)
    }

    /// The cached token for a workspace if it may be served without any I/O
    /// (inside the refresh-ahead window this starts the background refresh).
    pub fn cached(&self, workspace_id: &str) -> Option<Arc<ResolvedToken>> {
        test_panic("cached", workspace_id);
        self.fast(Target::Workspace(workspace_id))
    }

    /// The cached token for a secret id if it may be served without any I/O.
    pub fn cached_secret(&self, secret_id: &str) -> Option<Arc<ResolvedToken>> {
        test_panic("cached_secret", secret_id);
        self.fast(Target::Secret(secret_id))
    }

    /// The fast path: a token served without I/O, counted as a cached
    /// resolve (and starting refresh-ahead when it is due).
    fn fast(&self, target: Target<'_>) -> Option<Arc<ResolvedToken>> {
        let t = self.cache.get(target)?;
        self.pool.shared.metrics.add(Counter::ResolvesCached);
        self.maybe_refresh_ahead(&t);
        Some(t)
    }

    /// Registry row -> status -> stored token -> refresh if expiring.
    pub fn resolve(&self, workspace_id: &str) -> Result<Arc<ResolvedToken>> {
        test_panic("resolve", workspace_id);
        self.cached_or(Target::Workspace(workspace_id), || {
            self.pool.call(|i| i.api.linear_oauth_resolver().call_resolve(&mut i.store, workspace_id))
        })
    }

    /// The cached token of `target`, else `call` (an uncached resolve),
    /// single-flighted by the cache.
    fn cached_or(
        &self,
        target: Target<'_>,
        call: impl FnOnce() -> Result<wit_resolver::ResolvedToken>,
    ) -> Result<Arc<ResolvedToken>> {
        if let Some(t) = self.fast(target) {
            return Ok(t);
        }
        self.pool.shared.metrics.add(Counter::ResolvesUncached);
        let t = self.cache.single_flight(Key::from(target), || call().map(ResolvedToken::from))?;
        self.maybe_refresh_ahead(&t);
        Ok(t)
    }

    /// How the instance pool has been used (bound, peak, instances made).
    pub fn pool_stats(&self) -> crate::PoolStats {
        self.pool.stats()
    }

    /// The same from a secret id, without the registry.
    pub fn resolve_secret(&self, secret_id: &str) -> Result<Arc<ResolvedToken>> {
        test_panic("resolve_secret", secret_id);
        self.cached_or(Target::Secret(secret_id), || {
            self.pool.call(|i| i.api.linear_oauth_resolver().call_resolve_secret(&mut i.store, secret_id))
        })
    }

    /// A Linear API call made with `access_token` got 401: returns a token
    /// to retry with. When the stored token is another one (somebody already
    /// refreshed) that one, with no request to Linear; when it is this one,
    /// a refresh under the usual single flight and lease.
    /// `ReauthorizationRequired` when Linear refuses the refresh token too.
    pub fn report_unauthorized(&self, workspace_id: &str, access_token: &str) -> Result<Arc<ResolvedToken>> {
        self.report_unauthorized_target(Target::Workspace(workspace_id), access_token)
    }

    /// [`Resolver::report_unauthorized`] for a token resolved by secret id
    /// (callers that key by secret id, without the registry), same rule.
    pub fn report_unauthorized_secret(&self, secret_id: &str, access_token: &str) -> Result<Arc<ResolvedToken>> {
        self.report_unauthorized_target(Target::Secret(secret_id), access_token)
    }

    fn report_unauthorized_target(&self, target: Target<'_>, access_token: &str) -> Result<Arc<ResolvedToken>> {
        let scope = match target {
            Target::Workspace(w) => Scope { workspace: Some(w), secret: None },
            Target::Secret(s) => Scope { workspace: None, secret: Some(s) },
        };
        self.cache.forget(scope);
        let since = self.cache.forgets();
        let wit = target.into();
        let t: ResolvedToken = self
            .pool
            .call(|i| i.api.linear_oauth_resolver().call_report_unauthorized(&mut i.store, &wit, access_token))?
            .into();
        let secret_id = t.secret_id().to_owned();
        let scope = Scope { workspace: None, secret: Some(&secret_id) };
        Ok(self.cache.put(scope, target.into(), t, since))
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
            if ahead.get(t.secret_id()).is_some_and(|&until| now < until) {
                return;
            }
            ahead.insert(t.secret_id().to_owned(), u64::MAX);
        }
        let (r, secret_id) = (self.clone(), t.secret_id().to_owned());
        let spawned = std::thread::Builder::new()
            .name("linear-oauth-refresh-ahead".into())
            .spawn(move || r.refresh_ahead_now(&secret_id));
        if let Err(e) = spawned {
            self.ahead.lock().unwrap().remove(t.secret_id());
            self.pool.shared.sink.log(
                LogLevel::Warn,
                "could not start a refresh-ahead thread",
                &[("error".into(), e.to_string())],
            );
        }
    }

    /// The background refresh: every cached entry of the secret gets the result.
    fn refresh_ahead_now(&self, secret_id: &str) {
        let since = self.cache.forgets();
        let result = self.pool.call(|i| i.api.linear_oauth_resolver().call_refresh_ahead(&mut i.store, secret_id));
        // Retrying sooner would turn an outage into a stream of requests.
        let retry_at = now_ms().saturating_add(ms(self.pool.shared.options.failure_memory.max(AHEAD_RETRY)));
        let cooldown = match result {
            Ok(t) => {
                let t = Arc::new(ResolvedToken::from(t));
                // Still due: the refresh failed for a transient reason and
                // the valid token came back; try again later.
                let cooldown = if t.access_token() == self.cache.token_of(secret_id) { retry_at } else { 0 };
                self.cache.replace_secret(secret_id, t, since);
                cooldown
            }
            Err(e) => {
                self.pool.shared.sink.log(
                    LogLevel::Warn,
                    "refresh-ahead failed; callers keep the valid token",
                    &[("secret_id".into(), secret_id.to_owned()), ("error".into(), e.to_string())],
                );
                retry_at
            }
        };
        let mut ahead = self.ahead.lock().unwrap();
        if cooldown == 0 {
            ahead.remove(secret_id);
        } else {
            ahead.insert(secret_id.to_owned(), cooldown);
        }
        // A cooldown that passed is as good as none: only an outage's remain.
        if ahead.len() > self.pool.shared.options.cache_max_entries {
            let now = now_ms();
            ahead.retain(|_, until| *until > now);
        }
    }

    /// Every metric of the table ([`crate::METRICS`]) since this resolver
    /// was made (clones share them).
    pub fn metrics(&self) -> MetricsSnapshot {
        self.pool.shared.metrics.snapshot()
    }

    /// Counts `n` resolves a binding served from its own memory (a token
    /// object it handed out before, while [`Resolver::holds`] it), which
    /// never reach this resolver: they are `resolves_cached` too.
    pub fn count_cached_resolves(&self, n: u64) {
        self.pool.shared.metrics.add_n(Counter::ResolvesCached, n);
    }

    /// With `metrics_emf` on, writes one EMF line of the resolve counts
    /// (cached, uncached) since the last flush, if any; refresh events have
    /// their lines already (one per call that had any). A Lambda handler
    /// calls it before returning. Without EMF it does nothing.
    pub fn flush_metrics(&self) {
        let shared = &self.pool.shared;
        if let Some((emf, sink)) = &shared.emf {
            if let Some(line) = emf.resolve_line(&shared.metrics, now_ms()) {
                sink.write_line(&line);
            }
        }
    }

    /// How many entries this resolver's in-memory caches hold now.
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            tokens: self.cache.len(),
            component: self.pool.shared.coord.cache_len(),
            refresh_locks: self.pool.shared.coord.locks_len(),
        }
    }

    /// Refreshes now even if the token is fresh (same coordination rules); a
    /// workspace must be registered and active.
    pub fn force_refresh(&self, target: Target<'_>) -> Result<Arc<ResolvedToken>> {
        let wit = target.into();
        let since = self.cache.forgets();
        let t: ResolvedToken =
            self.pool.call(|i| i.api.linear_oauth_resolver().call_force_refresh(&mut i.store, &wit))?.into();
        let workspace = match target {
            Target::Workspace(w) => Some(w),
            Target::Secret(_) => None,
        };
        let secret_id = t.secret_id().to_owned();
        Ok(self.cache.put(Scope { workspace, secret: Some(&secret_id) }, target.into(), t, since))
    }

    /// Forgets everything cached about this workspace.
    pub fn invalidate(&self, workspace_id: &str) {
        test_panic("invalidate", workspace_id);
        self.cache.forget(Scope { workspace: Some(workspace_id), secret: None });
        if let Err(e) =
            self.pool.call(|i| i.api.linear_oauth_resolver().call_invalidate(&mut i.store, workspace_id).map(Ok))
        {
            self.pool.shared.sink.log(LogLevel::Warn, "invalidate failed", &[("error".into(), e.to_string())]);
        }
    }

    /// The stored credential with secrets redacted, whether it is valid, and
    /// its registry row (any status).
    pub fn inspect(&self, target: Target<'_>) -> Result<Inspection> {
        let wit = target.into();
        let i = self.pool.call(|i| i.api.linear_oauth_admin().call_inspect(&mut i.store, &wit))?;
        Ok(Inspection {
            secret_id: i.secret_id,
            fields: i.fields,
            invalid_fields: i.invalid_fields,
            expires_in_ms: i.expires_in_ms,
            needs_refresh: i.needs_refresh,
            registry: i.registry.map(Into::into),
        })
    }

    /// Marks the registry row revoked (always), revokes the grant at Linear as
    /// Linear documents it, and reports how that went. With `purge` the secret
    /// is deleted only if the grant is known dead (`Revoked`, `AlreadyDead`),
    /// or anyway with `force`; a kept secret is marked expired. The deletion
    /// is the store's `delete`: the `aws` store keeps the secret restorable
    /// for `Options::secret_deletion`'s window, file and memory delete at once.
    pub fn revoke(&self, workspace_id: &str, purge: bool, force: bool) -> Result<Revocation> {
        let r: wit_admin::Revocation =
            self.pool.call(|i| i.api.linear_oauth_admin().call_revoke(&mut i.store, workspace_id, purge, force))?;
        self.cache.forget(Scope { workspace: Some(workspace_id), secret: Some(&r.secret_id) });
        Ok(Revocation {
            workspace_id: r.workspace_id,
            secret_id: r.secret_id,
            outcome: crate::types::revoke_outcome(r.outcome),
            linear_status: r.linear_status,
            purged: r.purged,
        })
    }

    /// Fresh PKCE pair and state, and the URL to open in a browser.
    pub fn begin_install(&self, params: &InstallParams) -> Result<PendingInstall> {
        let wit = wit_install::InstallParams::from(params);
        let p = self.pool.call(|i| i.api.linear_oauth_install().call_begin(&mut i.store, &wit))?;
        Ok(PendingInstall {
            authorize_url: p.authorize_url,
            state: p.state.into(),
            code_verifier: p.code_verifier.into(),
        })
    }

    /// The code from the callback's query string, if its `state` is ours.
    pub fn parse_callback(&self, pending: &PendingInstall, query: &str) -> Result<AuthCode> {
        let code = self
            .pool
            .call(|i| i.api.linear_oauth_install().call_parse_callback(&mut i.store, query, pending.state.secret()))?;
        Ok(AuthCode(code.into()))
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
        let installed = self.pool.call(|i| {
            i.api.linear_oauth_install().call_complete(
                &mut i.store,
                &wit,
                code.0.secret(),
                pending.code_verifier.secret(),
                installed_by,
            )
        })?;
        self.cache.forget(Scope { workspace: Some(&installed.workspace_id), secret: None });
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
            client_secret: params.client_secret.secret().to_owned(),
            scopes: params.scopes.clone(),
            secret_id: params.secret_id.clone(),
        };
        let installed = self
            .pool
            .call(|i| i.api.linear_oauth_install().call_install_client_credentials(&mut i.store, &wit, installed_by))?;
        self.cache.forget(Scope { workspace: Some(&installed.workspace_id), secret: None });
        Ok(installed.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lease holder ids are random, not pid-and-counter (which repeat across
    /// containers): two resolvers of one process get two 128-bit hex names.
    #[test]
    fn each_resolver_holds_leases_under_its_own_random_id() {
        let options = || Options { store: "memory:".into(), ..Options::default() };
        let a = Resolver::new(options()).unwrap();
        let b = Resolver::new(options()).unwrap();
        let (a, b) = (&a.pool.shared.settings.holder_id, &b.pool.shared.settings.holder_id);
        for id in [a, b] {
            assert_eq!(id.len(), 32, "{id}");
            assert!(id.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{id}");
        }
        assert_ne!(a, b);
    }
}
