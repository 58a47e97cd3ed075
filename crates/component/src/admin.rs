//! Operator actions: inspect and revoke. Revoke follows Linear's documented
//! revoke (see `linear_oauth_core::RevokePlan`), never RFC 7009's `token=`.

use linear_oauth_core::{
    freshness, inspect_fields, revoke_refresh_form, Freshness, ProbeResult, RevokeCredential, RevokeOutcome,
    RevokePlan, RevokeStep, StoredToken, REVOKE_CONTENT_TYPE,
};

use crate::cache::invalidate;
use crate::call::Call;
use crate::exports::linear::oauth::admin::{Inspection, Revocation, RevokeOutcome as RevokeOutcomeWit};
use crate::io::Imports;
use crate::keys::{check_id, named_workspace};
use crate::linear::oauth::log::Level;
use crate::linear::oauth::registry::{self, Row};
use crate::linear::oauth::secret_store;
use crate::linear::oauth::types::{EndpointError, Error, Target};
use crate::resolve::probe_refresh;
use crate::settings::{endpoint, settings};
use crate::webhook::expire_kept_secret;
use crate::{http, log_event, now_ms};

pub fn inspect(target: &Target) -> Result<Inspection, Error> {
    let (secret_id, row) = match target {
        Target::Workspace(workspace_id) => {
            check_id("workspace id", workspace_id)?;
            let row = registry::get(workspace_id)
                .map_err(|e| Error::Store(format!("registry read failed: {e}")))?
                .ok_or_else(|| Error::NotRegistered(format!("workspace {workspace_id} is not registered")))?;
            (row.secret_id.clone(), Some(row))
        }
        Target::Secret(secret_id) => (secret_id.clone(), None),
    };
    let secret_id = secret_id.as_str();
    check_id("secret id", secret_id)?;
    let s = settings();
    let v = secret_store::get(secret_id)
        .map_err(|e| Error::Store(format!("secret read failed: {e}")))?
        .ok_or_else(|| Error::SecretMissing(format!("secret {secret_id} does not exist")))?;
    let parsed = StoredToken::parse(&v.value);
    let invalid_fields = parsed.as_ref().err().map(|e| e.problems()).unwrap_or_default();
    // Every string not declared non-secret in core is fingerprinted.
    let fields = inspect_fields(&v.value);
    let (expires_in_ms, needs_refresh) = match &parsed {
        Ok(t) => match freshness(&t.expires_at, now_ms(), s.refresh_threshold_ms) {
            Freshness::Malformed => (None, true),
            f => (linear_oauth_core::parse_instant(&t.expires_at).map(|e| e - now_ms()), f.needs_refresh()),
        },
        Err(_) => (None, true),
    };
    // A secret target's row: the workspace the stored token names, if its
    // row points back here (one read, where a scan would cost the registry).
    let registry = match row {
        Some(row) => Some(row),
        None => named_workspace(&v.value)
            .and_then(|w| registry::get(&w).ok().flatten())
            .filter(|row| row.secret_id == secret_id),
    };
    Ok(Inspection { secret_id: secret_id.to_owned(), fields, invalid_fields, expires_in_ms, needs_refresh, registry })
}

/// See the WIT `admin.revoke`. The row is marked first, so a Linear outage
/// or a refusal never leaves the workspace resolvable.
pub fn revoke(workspace_id: &str, purge: bool, force: bool) -> Result<Revocation, Error> {
    check_id("workspace id", workspace_id)?;
    // The probing refresh's budget counts from the start of this call.
    let mut cx = crate::call();
    let row = registry::get(workspace_id)
        .map_err(|e| Error::Store(format!("registry read failed: {e}")))?
        .ok_or_else(|| Error::NotRegistered(format!("workspace {workspace_id} is not registered")))?;
    let at = linear_oauth_core::format_instant(now_ms());
    registry::put(&Row { status: "revoked".into(), status_reason: None, status_changed_at: Some(at), ..row.clone() })
        .map_err(|e| Error::Store(format!("registry write failed: {e}")))?;
    invalidate(&Imports, workspace_id);
    let stored = secret_store::get(&row.secret_id).map_err(|e| Error::Store(format!("secret read failed: {e}")))?;
    let (outcome, linear_status) = match stored.as_ref().map(|v| StoredToken::parse(&v.value)) {
        Some(Ok(tok)) => revoke_at_linear(&mut cx, &row.secret_id, &tok),
        Some(Err(e)) => (
            RevokeOutcome::NotConfirmed(format!(
                "the stored token is unreadable ({}), so nothing could be sent to Linear",
                e.problems().join(", ")
            )),
            None,
        ),
        None => (RevokeOutcome::NotConfirmed("no stored token to revoke with".into()), None),
    };
    // The probing refresh may have cached a token.
    invalidate(&Imports, workspace_id);
    let confirmed = outcome.confirmed();
    let purged = if stored.is_none() {
        false
    } else if purge && (confirmed || force) {
        secret_store::delete(&row.secret_id).map_err(|e| Error::Store(format!("secret delete failed: {e}")))?
    } else {
        if purge {
            log_event(
                Level::Warn,
                "keeping the secret: Linear did not confirm the revoke (force deletes it anyway)",
                &[("workspace_id", workspace_id), ("secret_id", &row.secret_id)],
            );
        }
        expire_kept_secret(&Imports, &row.secret_id);
        false
    };
    let (label, detail) = outcome_label(&outcome);
    log_event(
        if confirmed { Level::Info } else { Level::Warn },
        "marked the workspace revoked; revoke at Linear ended",
        &[
            ("workspace_id", workspace_id),
            ("secret_id", &row.secret_id),
            ("outcome", label),
            ("detail", detail),
            ("purged", if purged { "true" } else { "false" }),
        ],
    );
    let outcome = match outcome {
        RevokeOutcome::Revoked => RevokeOutcomeWit::Revoked,
        RevokeOutcome::AlreadyDead => RevokeOutcomeWit::AlreadyDead,
        RevokeOutcome::NotConfirmed(m) => RevokeOutcomeWit::NotConfirmed(m),
        RevokeOutcome::Failed(m) => RevokeOutcomeWit::Failed(m),
    };
    Ok(Revocation { workspace_id: workspace_id.to_owned(), secret_id: row.secret_id, outcome, linear_status, purged })
}

fn outcome_label(o: &RevokeOutcome) -> (&'static str, &str) {
    match o {
        RevokeOutcome::Revoked => ("revoked", ""),
        RevokeOutcome::AlreadyDead => ("already-dead", ""),
        RevokeOutcome::NotConfirmed(m) => ("not-confirmed", m),
        RevokeOutcome::Failed(m) => ("failed", m),
    }
}

/// Runs core's [`RevokePlan`]: only the I/O happens here. Returns the outcome
/// and the last status the revoke endpoint answered with.
fn revoke_at_linear(cx: &mut Call<'_>, secret_id: &str, tok: &StoredToken) -> (RevokeOutcome, Option<u16>) {
    let (mut plan, mut step) = RevokePlan::start(tok, now_ms());
    // The access token of a probing refresh that found the grant live.
    let mut refreshed: Option<String> = None;
    let mut last_status = None;
    loop {
        step = match step {
            RevokeStep::Done(outcome) => return (outcome, last_status),
            RevokeStep::Send(credential) => {
                let (bearer, body) = match credential {
                    RevokeCredential::StoredAccessToken => (Some(tok.access_token.secret()), String::new()),
                    RevokeCredential::StoredRefreshToken => {
                        (None, tok.refresh_token.as_ref().map(revoke_refresh_form).unwrap_or_default())
                    }
                    RevokeCredential::RefreshedAccessToken => (refreshed.as_deref(), String::new()),
                };
                let answer = http::post(
                    &endpoint(&cx.s, "oauth/revoke"),
                    REVOKE_CONTENT_TYPE,
                    body.as_bytes(),
                    bearer,
                    cx.s.http_timeout_ms,
                )
                .map(|r| r.status);
                if let Ok(status) = answer {
                    last_status = Some(status);
                }
                plan.on_revoke_answer(answer)
            }
            // The resolver's own forced refresh: single flight, lease,
            // invalid_grant recovery and conditional write-back of the rotated
            // token, exactly as for a caller.
            RevokeStep::Probe => plan.on_probe(match probe_refresh(cx, secret_id) {
                Ok(t) => {
                    refreshed = Some(t.access_token);
                    ProbeResult::Refreshed
                }
                Err(Error::ReauthorizationRequired(_)) => ProbeResult::InvalidGrant,
                Err(e) => ProbeResult::Inconclusive(describe(&e)),
            }),
        };
    }
}

/// A short, secret-free description of why the probing refresh was inconclusive.
fn describe(e: &Error) -> String {
    match e {
        Error::TokenEndpoint(EndpointError { status, code, .. }) => match code {
            Some(c) => format!("the token endpoint answered HTTP {status} {c}"),
            None => format!("the token endpoint answered HTTP {status}"),
        },
        Error::Transport(m) => format!("transport: {m}"),
        Error::Store(m) => format!("store: {m}"),
        other => format!("{other:?}"),
    }
}
