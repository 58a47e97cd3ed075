//! `linear-oauth smoke`: the whole story, end to end through the component,
//! against the bundled Linear-compatible server on loopback, in a throwaway
//! file store. Prints a table of steps; any failure exits 14.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use linear_oauth_host::store::SecretStore;
use linear_oauth_host::{
    Backends, Error, InstallParams, Options, PutOutcome, Resolver, RevokeOutcome, Target, Versioned,
};
use linear_oauth_testserver::{ClientConfig, FaultsPatch, ServerConfig, TestServer};
use serde_json::json;

use crate::callback::Flow;
use crate::error::CliError;

const CLIENT_ID: &str = "smoke-client";
const CLIENT_SECRET: &str = "smoke-client-secret";

type StepResult = Result<String, String>;

struct Smoke {
    server: Arc<TestServer>,
    dir: std::path::PathBuf,
    options: Options,
    resolver: Resolver,
    workspace_id: String,
    secret_id: String,
}

fn browser_get(url: &str) -> Result<(u16, Option<String>), String> {
    linear_oauth_testserver::fixtures::browser_get(url).map_err(|e| format!("browser: {e}"))
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn check(cond: bool, what: impl Into<String>) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.into())
    }
}

fn lib(e: Error) -> String {
    e.to_string()
}

/// Shows a snapshot until the token endpoint has seen a refresh: a resolver
/// that read the store just before another process rotated the token.
#[derive(Debug)]
struct StaleRead {
    inner: Backends,
    snapshot: Versioned,
    server: Arc<TestServer>,
    refreshes_before: u64,
}

impl SecretStore for StaleRead {
    fn get(&self, id: &str) -> Result<Option<Versioned>, Error> {
        if self.server.counters().token_refresh <= self.refreshes_before {
            return Ok(Some(self.snapshot.clone()));
        }
        self.inner.secrets.get(id)
    }
    fn put(&self, id: &str, value: &str, expected: Option<&str>) -> Result<PutOutcome, Error> {
        self.inner.secrets.put(id, value, expected)
    }
    fn delete(&self, id: &str) -> Result<bool, Error> {
        self.inner.secrets.delete(id)
    }
}

impl Smoke {
    fn install(&mut self) -> StepResult {
        let port = free_port()?;
        let redirect = format!("http://127.0.0.1:{port}/oauth/callback");
        self.server.add_client(ClientConfig::new(CLIENT_ID, CLIENT_SECRET, [redirect.clone()]));
        let params = InstallParams {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            redirect_uri: redirect,
            scopes: vec!["read write app:assignable app:mentionable".into()],
            actor_app: true,
            prompt_consent: true,
            secret_id: None,
        };
        let flow = Flow {
            timeout: Duration::from_secs(20),
            open_browser: false,
            spinner: false,
            installed_by: "smoke".into(),
            paste: false,
        };
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let r = self.resolver.clone();
        let installer = std::thread::spawn(move || flow.run(&r, &params, move |url| drop(tx.send(url.to_owned()))));
        let url = rx.recv_timeout(Duration::from_secs(10)).map_err(|_| "no authorization URL announced".to_owned())?;
        let (status, location) = browser_get(&url)?;
        check(status == 302, format!("authorize answered {status}"))?;
        let location = location.ok_or("authorize did not redirect")?;
        let origin = &location[..location.find("/oauth/callback").ok_or("redirect is not the callback")?];
        let (favicon, _) = browser_get(&format!("{origin}/favicon.ico"))?;
        check(favicon == 404, format!("/favicon.ico answered {favicon}, want 404"))?;
        let (cb, _) = browser_get(&location)?;
        check(cb == 200, format!("callback page answered {cb}"))?;
        let installed = installer.join().map_err(|_| "installer panicked")?.map_err(|e| e.message())?;
        check(self.server.counters().last_actor.as_deref() == Some("app"), "actor=app was not sent")?;
        check(self.server.counters().last_prompt.as_deref() == Some("consent"), "prompt=consent was not sent")?;
        check(installed.app_user_id.as_deref() == Some(installed.viewer_id.as_str()), "the app user id was not kept")?;
        self.workspace_id = installed.workspace_id.clone();
        self.secret_id = installed.secret_id.clone();
        Ok(format!("{} -> {}", installed.workspace_slug, installed.secret_id))
    }

    fn resolve(&self) -> StepResult {
        let t = self.resolver.resolve(&self.workspace_id).map_err(lib)?;
        check(self.server.access_token_live(t.access_token().secret()), "resolved token is not live at the server")?;
        let by_secret = self.resolver.resolve_secret(&self.secret_id).map_err(lib)?;
        check(by_secret.access_token() == t.access_token(), "workspace and secret paths disagree")?;
        Ok(format!("scope {:?}, expires {}", t.scope(), t.expires_at()))
    }

    /// Makes Linear hand out 30 s tokens: inside the 60 s threshold, so every
    /// token it issues from now on is already due for refresh.
    fn expire_quickly(&self, yes: bool) {
        let expires_in = if yes { 30 } else { 86_399 };
        self.server.set_faults(FaultsPatch { expires_in: Some(expires_in), ..Default::default() });
    }

    fn refresh(&self) -> StepResult {
        self.expire_quickly(true);
        let before = self.server.counters().token_refresh_ok;
        let forced = self.resolver.force_refresh(Target::Secret(&self.secret_id)).map_err(lib)?;
        self.resolver.invalidate(&self.workspace_id);
        let t = self.resolver.resolve(&self.workspace_id).map_err(lib)?;
        let refreshes = self.server.counters().token_refresh_ok - before;
        check(refreshes == 2, format!("{refreshes} refreshes, want 2 (forced, then expiring)"))?;
        check(t.access_token() != forced.access_token(), "expiring token was served instead of refreshed")?;
        check(self.server.access_token_live(t.access_token().secret()), "refreshed token is not live at the server")?;
        Ok("forced refresh, then expiry-driven refresh".into())
    }

    fn burst(&self, n: usize) -> StepResult {
        // Several resolvers sharing the file store stand in for processes.
        self.resolver.invalidate(&self.workspace_id);
        // The stored token is due (30 s, from the step before); the refreshed
        // one is not, so a thread that starts after the refresh landed
        // serves it instead of refreshing again.
        self.server.set_faults(FaultsPatch { latency_ms: Some(100), expires_in: Some(86_399), ..Default::default() });
        let before = self.server.counters().token_requests;
        let resolvers: Vec<Resolver> =
            (0..4.min(n.max(1))).map(|_| Resolver::new(self.options.clone())).collect::<Result<_, _>>().map_err(lib)?;
        let barrier = Arc::new(Barrier::new(n));
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (r, b, w) = (resolvers[i % resolvers.len()].clone(), barrier.clone(), self.workspace_id.clone());
                std::thread::spawn(move || {
                    b.wait();
                    r.resolve(&w).map(|t| t.access_token().secret().to_owned())
                })
            })
            .collect();
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "resolver thread panicked".to_owned()))
            .collect::<Result<_, _>>()?;
        self.server.set_faults(FaultsPatch { latency_ms: Some(0), ..Default::default() });
        let tokens: Vec<String> = results.into_iter().collect::<Result<_, _>>().map_err(lib)?;
        let posts = self.server.counters().token_requests - before;
        check(posts == 1, format!("{posts} token POSTs for {n} concurrent resolvers, want 1"))?;
        check(tokens.iter().all(|t| *t == tokens[0]), "resolvers got different tokens")?;
        Ok(format!("{n} threads over {} resolvers sharing the file store, 1 refresh POST", resolvers.len()))
    }

    fn invalid_grant(&self) -> StepResult {
        let store = Backends::open(&self.options.store).map_err(lib)?;
        let snapshot = store.secrets.get(&self.secret_id).map_err(lib)?.ok_or("secret vanished")?;
        // Another process refreshes (rotating the refresh token) and stores its result…
        self.expire_quickly(false);
        let other = Resolver::new(self.options.clone()).map_err(lib)?;
        let theirs = other.force_refresh(Target::Secret(&self.secret_id)).map_err(lib)?;
        // …while this one still holds what it read before.
        let stale = Backends {
            secrets: Arc::new(StaleRead {
                inner: store.clone(),
                snapshot,
                server: self.server.clone(),
                refreshes_before: self.server.counters().token_refresh,
            }),
            registry: store.registry.clone(),
        };
        let ig_before = self.server.counters().invalid_grant;
        let late = Resolver::with_backends(self.options.clone(), stale).map_err(lib)?;
        // Forced: the snapshot is fresh (the burst stored a 24 h token).
        let t = late.force_refresh(Target::Secret(&self.secret_id)).map_err(lib)?;
        check(self.server.counters().invalid_grant == ig_before + 1, "the stale refresh token was not refused")?;
        check(t.access_token() == theirs.access_token(), "did not adopt the token the other process stored")?;
        Ok("invalid_grant -> uncached re-read -> adopted the rotated token".into())
    }

    fn revoke(&self) -> StepResult {
        let rev = self.resolver.revoke(&self.workspace_id, false, false).map_err(lib)?;
        check(
            rev.outcome == RevokeOutcome::Revoked,
            format!("revoke ended {:?} (HTTP {:?})", rev.outcome, rev.linear_status),
        )?;
        match self.resolver.resolve(&self.workspace_id) {
            Err(Error::Revoked(_)) => {}
            other => return Err(format!("resolve after revoke gave {other:?}")),
        }
        // The grant is dead at Linear, not just marked here.
        let store = Backends::open(&self.options.store).map_err(lib)?;
        let stored = store.secrets.get(&self.secret_id).map_err(lib)?.ok_or("secret vanished")?;
        let v: serde_json::Value = serde_json::from_str(&stored.value).map_err(|e| format!("stored token: {e}"))?;
        let (access, refresh) =
            (v["access_token"].as_str().unwrap_or_default(), v["refresh_token"].as_str().unwrap_or_default());
        check(
            !self.server.access_token_live(access) && !self.server.refresh_token_live(refresh),
            "the stored grant is still live at the server",
        )?;
        Ok("revoked at Linear (grant dead at the server); resolve now fails with revoked".into())
    }
}

pub fn run(burst: usize, json_out: bool) -> Result<(), CliError> {
    let started = Instant::now();
    let server =
        Arc::new(TestServer::start(ServerConfig::default()).map_err(|e| CliError::Io(format!("test server: {e}")))?);
    let dir = std::env::temp_dir().join(format!(
        "linear-oauth-smoke-{}-{}",
        std::process::id(),
        started.elapsed().as_nanos()
    ));
    let options = Options {
        store: format!("file:{}", dir.display()),
        api_base: server.base_url(),
        authorize_url: server.authorize_url(),
        ..Options::default()
    };
    let resolver = Resolver::new(options.clone())?;
    let mut smoke = Smoke { server, dir, options, resolver, workspace_id: String::new(), secret_id: String::new() };

    type Step = fn(&mut Smoke, usize) -> StepResult;
    let steps: [(&str, Step); 6] = [
        ("install (smoke plays the browser)", |s, _| s.install()),
        ("resolve by workspace and by secret", |s, _| s.resolve()),
        ("forced expiry and refresh", |s, _| s.refresh()),
        ("concurrent burst on an expiring token", |s, n| s.burst(n)),
        ("invalid_grant recovery", |s, _| s.invalid_grant()),
        ("revoke", |s, _| s.revoke()),
    ];
    let mut rows = Vec::new();
    let mut failed = None;
    if !json_out {
        println!("{:<40} {:<6} {:>9}  DETAIL", "STEP", "RESULT", "TIME");
    }
    for (name, step) in steps {
        let t = Instant::now();
        let result = step(&mut smoke, burst.max(1));
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let (ok, detail) = match &result {
            Ok(d) => (true, d.clone()),
            Err(e) => (false, e.clone()),
        };
        if !json_out {
            println!("{name:<40} {:<6} {ms:>7.1}ms  {detail}", if ok { "ok" } else { "FAILED" });
        }
        rows.push(json!({ "step": name, "ok": ok, "ms": (ms * 10.0).round() / 10.0, "detail": detail }));
        if !ok {
            failed = Some(format!("smoke step {name:?} failed: {detail}"));
            break;
        }
    }
    let counters = smoke.server.counters();
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "ok": failed.is_none(), "steps": rows, "server": counters }))
                .unwrap()
        );
    } else {
        println!(
            "total {:.1} ms; server saw {} token requests ({} refreshes ok, {} invalid_grant), {} GraphQL, {} revoke",
            started.elapsed().as_secs_f64() * 1e3,
            counters.token_requests,
            counters.token_refresh_ok,
            counters.invalid_grant,
            counters.graphql,
            counters.revoke
        );
    }
    let _ = std::fs::remove_dir_all(&smoke.dir);
    match failed {
        None => Ok(()),
        Some(m) => Err(CliError::Smoke(m)),
    }
}
