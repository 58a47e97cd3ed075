//! Fleet operations, one workspace per call (the host iterates the registry
//! and paces the calls): the refresh sweeper's step, and the rotation of the
//! app's client secret. Both are idempotent, which is what makes a crashed or
//! interrupted run resumable: a re-run finds the work already done.

use linear_oauth_core::{format_instant, ClientSecret, Freshness, Grant, RegistryStatus, StoredToken};

use crate::cache::invalidate_secret;
use crate::call::Call;
use crate::exports::linear::oauth::admin::{RotateMode, RotateOutcome, SweepOutcome};
use crate::exports::linear::oauth::resolver::Settings;
use crate::keys::check_id;
use crate::linear::oauth::log::Level;
use crate::linear::oauth::registry::Row;
use crate::linear::oauth::secret_store::PutOutcome;
use crate::linear::oauth::types::Error;
use crate::refresh::refresh_single_flight;
use crate::rows::checked_status;
use crate::token::{check_usable, fresh, read_secret};

/// A conditional write that keeps losing to refreshes gives up after this many tries.
const WRITE_TRIES: usize = 5;

/// The registry row, read past every cache.
fn row_of(cx: &Call<'_>, workspace_id: &str) -> Result<Row, Error> {
    check_id("workspace id", workspace_id)?;
    let row = cx
        .io
        .registry_get(workspace_id)
        .map_err(|e| Error::Store(format!("registry read failed: {e}")))?
        .ok_or_else(|| Error::NotRegistered(format!("workspace {workspace_id} is not registered")))?;
    check_id("secret id", &row.secret_id)?;
    Ok(row)
}

/// See the WIT `admin.sweep-one`.
pub(crate) fn sweep_one(cx: &mut Call<'_>, workspace_id: &str, ahead_ms: u64) -> Result<SweepOutcome, Error> {
    let row = row_of(cx, workspace_id)?;
    if RegistryStatus::parse(&row.status) == RegistryStatus::ReauthorizationRequired {
        return Ok(SweepOutcome::Dead(row.status_reason.unwrap_or_else(|| "unknown".into())));
    }
    let row = checked_status(cx, workspace_id, row)?;
    let secret_id = row.secret_id.as_str();
    cx.s =
        Settings { refresh_threshold_ms: cx.s.refresh_threshold_ms.max(ahead_ms), refresh_ahead_ms: 0, ..cx.s.clone() };
    let (tok, version) = read_secret(cx, secret_id)?;
    if let Some((_, code)) = tok.reauthorization_required() {
        return Ok(SweepOutcome::Dead(code.to_owned()));
    }
    check_usable(cx, secret_id, &tok, Some(workspace_id))?;
    if let Freshness::Fresh { .. } = fresh(cx, &tok) {
        return Ok(SweepOutcome::Fresh(tok.expires_at));
    }
    cx.no_wait = true;
    match refresh_single_flight(cx, secret_id, &tok, &version) {
        Ok(r) if cx.renewed_here => Ok(SweepOutcome::Refreshed(r.expires_at)),
        // Another refresher renewed it after our read.
        Ok(r) if r.expires_at != tok.expires_at => Ok(SweepOutcome::Fresh(r.expires_at)),
        // The token came back unrenewed: an outage it outlives.
        Ok(r) => Err(Error::Transport(format!(
            "the token endpoint failed for a transient reason; the token of workspace {workspace_id} stays valid \
             until {} and was not renewed",
            r.expires_at
        ))),
        Err(_) if cx.lease_busy => Ok(SweepOutcome::HeldByAnother),
        Err(Error::ReauthorizationRequired(_)) if cx.dead_code.is_some() => {
            Ok(SweepOutcome::Dead(cx.dead_code.unwrap_or_default().to_owned()))
        }
        Err(e) => Err(e),
    }
}

/// See the WIT `admin.set-client-secret`.
pub(crate) fn set_client_secret(
    cx: &mut Call<'_>,
    workspace_id: &str,
    client_id: &str,
    new_secret: &str,
    mode: RotateMode,
) -> Result<RotateOutcome, Error> {
    let new_secret = new_secret.trim();
    if new_secret.is_empty() || new_secret.len() > 4096 || new_secret.chars().any(char::is_control) {
        return Err(Error::InvalidInput("a client secret is one line of 1 to 4096 printable characters".into()));
    }
    let row = row_of(cx, workspace_id)?;
    let secret_id = row.secret_id.clone();
    let fields = [("workspace_id", workspace_id), ("secret_id", secret_id.as_str())];
    for _ in 0..WRITE_TRIES {
        let (tok, version) = read_secret(cx, &secret_id)?;
        if tok.workspace_id != workspace_id {
            return Err(Error::InvalidStoredToken(vec![format!(
                "workspace_id (the secret holds workspace {}, but workspace {workspace_id}'s registry row names it)",
                tok.workspace_id
            )]));
        }
        if tok.client_id != client_id {
            return Ok(RotateOutcome::OtherClient(tok.client_id));
        }
        if tok.client_secret.secret() == new_secret {
            return Ok(RotateOutcome::Already);
        }
        match mode {
            RotateMode::DryRun => return Ok(RotateOutcome::Updated),
            RotateMode::Verify => return verify(cx, &row, &tok, &version, new_secret),
            RotateMode::Write => {}
        }
        let marked = tok.revoked_at().is_some() || tok.reauthorization_required().is_some();
        let renew = tok.grant() == Grant::ClientCredentials
            && !marked
            && RegistryStatus::parse(&row.status) == RegistryStatus::Active;
        let mut next = tok.clone();
        next.client_secret = ClientSecret::new(new_secret);
        next.updated_at = format_instant(cx.now());
        if renew {
            // The rotation ended this token at Linear: due now, so whoever
            // reads it next fetches a new one should our fetch below fail.
            next.expires_at = format_instant(cx.now().saturating_sub(1000));
        }
        match cx.io.secret_put(&secret_id, &next.to_json(), Some(&version)) {
            Ok(PutOutcome::Written(written)) => {
                invalidate_secret(cx.io, &secret_id, workspace_id);
                cx.log(Level::Info, "stored the rotated client secret", &fields);
                if renew {
                    renew_client_credentials(cx, &secret_id, &next, &written);
                }
                return Ok(RotateOutcome::Updated);
            }
            // A refresh (or another writer) went first: read it and go again.
            Ok(PutOutcome::Conflict) => continue,
            Err(e) => return Err(Error::Store(format!("secret write failed: {e}"))),
        }
    }
    Err(Error::Store(format!("secret {secret_id} kept changing while storing the client secret; try again")))
}

/// The verification: one renewal with the new secret, written with it.
fn verify(
    cx: &mut Call<'_>,
    row: &Row,
    tok: &StoredToken,
    version: &str,
    new_secret: &str,
) -> Result<RotateOutcome, Error> {
    let row = checked_status(cx, &row.workspace_id, row.clone())?;
    check_usable(cx, &row.secret_id, tok, Some(&row.workspace_id))?;
    cx.force = true;
    cx.client_secret = Some(ClientSecret::new(new_secret));
    refresh_single_flight(cx, &row.secret_id, tok, version)?;
    if !cx.renewed_here {
        return Err(Error::Transport(format!(
            "workspace {}'s token was not renewed with the new client secret (another refresher went first, or the \
             token endpoint failed for a transient reason); nothing verified",
            row.workspace_id
        )));
    }
    cx.log(
        Level::Info,
        "Linear accepted the new client secret; stored it with the renewed token",
        &[("workspace_id", &row.workspace_id), ("secret_id", &row.secret_id)],
    );
    Ok(RotateOutcome::Updated)
}

/// A client-credentials token after the rotation: fetched anew with the
/// stored (new) secret. A failure leaves it stored due, for the next reader.
fn renew_client_credentials(cx: &mut Call<'_>, secret_id: &str, written: &StoredToken, version: &str) {
    cx.force = true;
    if let Err(e) = refresh_single_flight(cx, secret_id, written, version) {
        cx.log(
            Level::Warn,
            "could not fetch a new client-credentials token after the rotation; the next resolve fetches one",
            &[("workspace_id", &written.workspace_id), ("secret_id", secret_id), ("error", &format!("{e:?}"))],
        );
    }
}
