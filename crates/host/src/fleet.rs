//! Operations over every workspace of a store: the refresh sweeper and the
//! rotation of a Linear app's client secret (issue 23, sections 3 and 4).
//!
//! The protocol stays in the component (`admin.sweep-one`,
//! `admin.set-client-secret`: one workspace per call, each idempotent); this
//! module walks the registry and paces the calls. Resumable by idempotence: a
//! run that crashed or was interrupted loses nothing (every step is a lease
//! and a conditional write), and a re-run finds the work already done
//! (`fresh`, `already`) and does the rest.

use std::time::{Duration, Instant};

use crate::bindings::admin as wit_admin;
use crate::cache::Scope;
use crate::pool::ms;
use crate::types::SecretString;
use crate::{Error, RegistryRow, Resolver, Result, REAUTHORIZATION_REQUIRED};

/// What `sweep_one` did with a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepOutcome {
    /// Renewed now; the new expiry (ISO-8601 UTC).
    Refreshed { expires_at: String },
    /// Expires after the window (or another refresher renewed it): nothing sent.
    Fresh { expires_at: String },
    /// Another refresher holds the lease: skipped without waiting.
    HeldByAnother,
    /// Linear refused the stored credential for good: its OAuth error code.
    Dead { code: String },
}

impl SweepOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Refreshed { .. } => "refreshed",
            Self::Fresh { .. } => "fresh",
            Self::HeldByAnother => "held_by_another",
            Self::Dead { .. } => "dead",
        }
    }
}

/// How `set_client_secret` goes about it (see the WIT `admin.rotate-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateMode {
    /// Say what `Write` would do; nothing sent or written.
    DryRun,
    /// Renew the token with the new secret and store both: proves the secret at Linear.
    Verify,
    /// Store the new secret (conditional write, retried after a refresh);
    /// a client-credentials token is fetched anew.
    Write,
}

/// What `set_client_secret` did with a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// Written (a dry run: would be).
    Updated,
    /// The stored token holds the new secret already.
    Already,
    /// The stored token is another app's (its client id): untouched.
    OtherClient(String),
}

impl RotateOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Updated => "updated",
            Self::Already => "already",
            Self::OtherClient(_) => "other_client",
        }
    }
}

impl Resolver {
    /// The sweeper's step: refreshes the workspace's token if it expires
    /// within `ahead`, under the usual lease and conditional write-back, and
    /// never waits for another refresher.
    pub fn sweep_one(&self, workspace_id: &str, ahead: Duration) -> Result<SweepOutcome> {
        let o = self.pool.call(|i| i.api.linear_oauth_admin().call_sweep_one(&mut i.store, workspace_id, ms(ahead)))?;
        Ok(match o {
            wit_admin::SweepOutcome::Refreshed(expires_at) => {
                self.cache.forget(Scope { workspace: Some(workspace_id), secret: None });
                SweepOutcome::Refreshed { expires_at }
            }
            wit_admin::SweepOutcome::Fresh(expires_at) => SweepOutcome::Fresh { expires_at },
            wit_admin::SweepOutcome::HeldByAnother => SweepOutcome::HeldByAnother,
            wit_admin::SweepOutcome::Dead(code) => SweepOutcome::Dead { code },
        })
    }

    /// Replaces the client secret stored for a workspace if its stored
    /// token is of `client_id` (see [`RotateMode`]). The secret is compared
    /// inside the component and never returned.
    pub fn set_client_secret(
        &self,
        workspace_id: &str,
        client_id: &str,
        new_secret: &SecretString,
        mode: RotateMode,
    ) -> Result<RotateOutcome> {
        let wit_mode = match mode {
            RotateMode::DryRun => wit_admin::RotateMode::DryRun,
            RotateMode::Verify => wit_admin::RotateMode::Verify,
            RotateMode::Write => wit_admin::RotateMode::Write,
        };
        let o = self.pool.call(|i| {
            i.api.linear_oauth_admin().call_set_client_secret(
                &mut i.store,
                workspace_id,
                client_id,
                new_secret.secret(),
                wit_mode,
            )
        })?;
        if mode != RotateMode::DryRun {
            self.cache.forget(Scope { workspace: Some(workspace_id), secret: None });
        }
        Ok(match o {
            wit_admin::RotateOutcome::Updated => RotateOutcome::Updated,
            wit_admin::RotateOutcome::Already => RotateOutcome::Already,
            wit_admin::RotateOutcome::OtherClient(c) => RotateOutcome::OtherClient(c),
        })
    }
}

/// A token bucket of one: at most `rate` writes per second, each wait
/// jittered (between half and one and a half intervals) so that runs started
/// together by a scheduler spread out. Rate 0: no limit.
#[derive(Debug)]
pub struct Pace {
    interval: Option<Duration>,
    next: Instant,
}

impl Pace {
    pub fn new(rate_per_s: f64) -> Self {
        let interval = (rate_per_s.is_finite() && rate_per_s > 0.0).then(|| Duration::from_secs_f64(1.0 / rate_per_s));
        Self { interval, next: Instant::now() }
    }

    /// Waits until the next write may start.
    pub fn wait(&self) {
        let now = Instant::now();
        if self.next > now {
            std::thread::sleep(self.next - now);
        }
    }

    /// Counts a write: the next may start one (jittered) interval from now.
    pub fn wrote(&mut self) {
        if let Some(i) = self.interval {
            let mut b = [0u8; 2];
            let r = getrandom::fill(&mut b).map(|()| u16::from_le_bytes(b)).unwrap_or(u16::MAX / 2);
            let jittered = i.mul_f64(0.5 + f64::from(r) / f64::from(u16::MAX));
            self.next = Instant::now().max(self.next) + jittered;
        }
    }
}

/// What a sweep does.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Refresh tokens that expire within this window.
    pub ahead: Duration,
    /// Refreshes (writes) per second; 0: no limit. Default 10, under Secrets
    /// Manager's shared 50/s write quota.
    pub rate: f64,
    /// Stop after examining this many workspaces (a re-run does the rest).
    pub limit: Option<usize>,
}

impl Default for SweepOptions {
    fn default() -> Self {
        Self { ahead: Duration::from_secs(2 * 3600), rate: 10.0, limit: None }
    }
}

/// One workspace a run could not handle, and why (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub workspace_id: String,
    /// The error's code (`TRANSPORT`, `STORE`, ...).
    pub code: String,
    pub message: String,
}

impl Failure {
    fn new(workspace_id: &str, e: &Error) -> Self {
        Self { workspace_id: workspace_id.to_owned(), code: e.code().to_owned(), message: e.to_string() }
    }
}

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepSummary {
    pub refreshed: Vec<String>,
    pub fresh: usize,
    pub held_by_another: Vec<String>,
    /// Workspaces whose credential Linear refused for good: (id, OAuth error code).
    pub dead: Vec<(String, String)>,
    /// Rows neither active nor dead (revoked, unknown status): not examined.
    pub inactive: usize,
    pub failed: Vec<Failure>,
    /// Active rows not reached because of `limit`.
    pub not_reached: usize,
}

/// Refreshes every active workspace whose token expires within
/// `o.ahead`; `each` sees every outcome as it happens (progress).
pub fn sweep(
    r: &Resolver,
    o: &SweepOptions,
    mut each: impl FnMut(&RegistryRow, &Result<SweepOutcome>),
) -> Result<SweepSummary> {
    let rows = r.backends().registry.list()?;
    let mut s = SweepSummary::default();
    let mut pace = Pace::new(o.rate);
    let mut examined = 0;
    for row in &rows {
        match row.status.as_str() {
            "active" => {}
            REAUTHORIZATION_REQUIRED => {
                s.dead.push((row.workspace_id.clone(), row.status_reason.clone().unwrap_or_else(|| "unknown".into())));
                continue;
            }
            _ => {
                s.inactive += 1;
                continue;
            }
        }
        if o.limit.is_some_and(|l| examined >= l) {
            s.not_reached += 1;
            continue;
        }
        examined += 1;
        pace.wait();
        let outcome = r.sweep_one(&row.workspace_id, o.ahead);
        each(row, &outcome);
        match outcome {
            Ok(SweepOutcome::Refreshed { .. }) => {
                pace.wrote();
                s.refreshed.push(row.workspace_id.clone());
            }
            Ok(SweepOutcome::Fresh { .. }) => s.fresh += 1,
            Ok(SweepOutcome::HeldByAnother) => s.held_by_another.push(row.workspace_id.clone()),
            Ok(SweepOutcome::Dead { code }) => {
                pace.wrote();
                s.dead.push((row.workspace_id.clone(), code));
            }
            Err(e) => s.failed.push(Failure::new(&row.workspace_id, &e)),
        }
    }
    Ok(s)
}

/// What a client-secret rotation does.
#[derive(Debug, Clone)]
pub struct RotateOptions {
    /// The Linear app whose secret was rotated.
    pub client_id: String,
    /// Count what would change; send and write nothing.
    pub dry_run: bool,
    /// Writes per second; 0: no limit. Default 10.
    pub rate: f64,
    /// Stop after this many workspaces of the app were examined in the write pass.
    pub limit: Option<usize>,
}

/// At most this many workspaces are tried for the verification before
/// giving up (dead or revoked ones cannot verify anything).
const VERIFY_TRIES: usize = 5;

/// What a rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotateSummary {
    /// The workspace whose renewal proved the new secret at Linear in this
    /// run; `None` when an earlier run already stored it (or a dry run).
    pub verified_on: Option<String>,
    /// Written in this run (dry run: would be), the verified one included.
    pub updated: usize,
    /// Holding the new secret already.
    pub already: usize,
    /// Another app's tokens, untouched.
    pub other_client: usize,
    pub failed: Vec<Failure>,
    /// Workspaces not reached because of `limit`.
    pub not_reached: usize,
}

/// Replaces the client secret of `o.client_id` in every stored token of that
/// app. First proves the new secret at Linear with one renewal of one of its
/// workspaces (written back with the new secret, so its rotated refresh token
/// is kept): a secret Linear refuses aborts the run with nothing written.
pub fn rotate_client_secret(
    r: &Resolver,
    new_secret: &SecretString,
    o: &RotateOptions,
    mut each: impl FnMut(&RegistryRow, &Result<RotateOutcome>),
) -> Result<RotateSummary> {
    let rows = r.backends().registry.list()?;
    let mut s = RotateSummary::default();
    if !o.dry_run {
        s.verified_on = verify(r, &rows, new_secret, &o.client_id)?;
    }
    let mode = if o.dry_run { RotateMode::DryRun } else { RotateMode::Write };
    let mut pace = Pace::new(if o.dry_run { 0.0 } else { o.rate });
    let mut examined = 0;
    for row in &rows {
        if o.limit.is_some_and(|l| examined >= l) {
            s.not_reached += 1;
            continue;
        }
        pace.wait();
        let outcome = if s.verified_on.as_deref() == Some(row.workspace_id.as_str()) {
            // Written by the verification just now.
            Ok(RotateOutcome::Updated)
        } else {
            r.set_client_secret(&row.workspace_id, &o.client_id, new_secret, mode)
        };
        each(row, &outcome);
        match outcome {
            Ok(RotateOutcome::Updated) => {
                examined += 1;
                pace.wrote();
                s.updated += 1;
            }
            Ok(RotateOutcome::Already) => {
                examined += 1;
                s.already += 1;
            }
            Ok(RotateOutcome::OtherClient(_)) => s.other_client += 1,
            Err(e) => {
                examined += 1;
                s.failed.push(Failure::new(&row.workspace_id, &e));
            }
        }
    }
    Ok(s)
}

/// The verification: renews one workspace of the app with the new secret.
/// `Some(id)` when done now, `None` when a workspace holds it already (an
/// earlier run verified it).
fn verify(r: &Resolver, rows: &[RegistryRow], new_secret: &SecretString, client_id: &str) -> Result<Option<String>> {
    let mut tried = Vec::new();
    for row in rows.iter().filter(|row| row.status == "active") {
        match r.set_client_secret(&row.workspace_id, client_id, new_secret, RotateMode::Verify) {
            Ok(RotateOutcome::Updated) => return Ok(Some(row.workspace_id.clone())),
            Ok(RotateOutcome::Already) => return Ok(None),
            Ok(RotateOutcome::OtherClient(_)) => continue,
            Err(Error::TokenEndpoint { code: Some(code), .. }) if code == "invalid_client" => {
                return Err(Error::InvalidInput(format!(
                    "Linear refused the new client secret of client id {client_id} (invalid_client) when it was \
                     verified with a token renewal of workspace {}; nothing was written. Check the secret (Linear: \
                     Settings > API > OAuth applications) and run again",
                    row.workspace_id
                )));
            }
            Err(e) => {
                tried.push(format!("{}: {e}", row.workspace_id));
                if tried.len() >= VERIFY_TRIES {
                    break;
                }
            }
        }
    }
    Err(Error::InvalidInput(if tried.is_empty() {
        format!(
            "no active workspace of client id {client_id} to verify the new client secret with; nothing was written"
        )
    } else {
        format!(
            "the new client secret of client id {client_id} could not be verified with a token renewal (tried {}); \
             nothing was written",
            tried.join("; ")
        )
    }))
}
