//! Saving a renewed token: a conditional write, a merge after a conflict,
//! retries within the call, and what becomes of a token no write would take.

use linear_oauth_core::{write_retry_fits, Grant, StoredToken};

use crate::cache::{cache_token, cached_token, invalidate_secret};
use crate::call::Call;
use crate::exports::linear::oauth::resolver::ResolvedToken;
use crate::keys::unsaved_key;
use crate::linear::oauth::log::Level;
use crate::linear::oauth::metrics::Event;
use crate::linear::oauth::secret_store::PutOutcome;
use crate::linear::oauth::types::{Error, Lifetime};
use crate::token::{fresh_until, read_secret, resolved, revoked_meanwhile, updated_after};

/// Persists a refreshed token; never loses it silently. Returns the token to
/// serve, or (in a short-lived host) `store` when the write kept failing.
pub(crate) fn write_back(
    cx: &mut Call<'_>,
    secret_id: &str,
    old: &StoredToken,
    new: &StoredToken,
    version: &str,
) -> Result<ResolvedToken, Error> {
    let result = match put_with_retry(cx, secret_id, new, Some(version)) {
        Ok(PutOutcome::Written(_)) => Ok(()),
        Ok(PutOutcome::Conflict) => merge_after_conflict(cx, secret_id, old, new),
        Err(e) => Err(WriteFailure::Failed(e)),
    };
    let refresh_due = fresh_until(cx, new).unwrap_or_else(|| cx.now());
    let fields = [("workspace_id", new.workspace_id.as_str()), ("secret_id", secret_id)];
    match result {
        Ok(()) => {
            cx.renewed_here = true;
            cx.count(Event::RefreshOk, &new.workspace_id);
            cache_token(cx, secret_id, new);
            cx.log(
                Level::Info,
                match new.grant() {
                    Grant::AuthorizationCode => "refreshed Linear access token",
                    Grant::ClientCredentials => "fetched a new client-credentials token",
                },
                &[
                    ("workspace_id", &new.workspace_id),
                    ("workspace_slug", &new.workspace_slug),
                    ("expires_at", &new.expires_at),
                ],
            );
        }
        Err(WriteFailure::Revoked(e)) => {
            cx.log(
                Level::Warn,
                "the workspace was revoked while its token was refreshed; dropping the refreshed token",
                &fields,
            );
            return Err(e);
        }
        Err(WriteFailure::Failed(e)) if cx.s.lifetime == Lifetime::Command => {
            cx.count(Event::WriteBackFailure, &new.workspace_id);
            invalidate_secret(cx.io, secret_id, &new.workspace_id);
            cx.log(
                Level::Error,
                "refreshed token could not be written back; the rotated refresh token is lost with this process",
                &[fields[0], fields[1], ("error", &e)],
            );
            return Err(Error::Store(format!(
                "Linear rotated the token of workspace {} but it could not be saved ({e}); the stored refresh token is now spent, \
                 so the workspace may need re-authorization (run the install again) once the store is writable",
                new.workspace_id
            )));
        }
        Err(WriteFailure::Failed(e)) => {
            cx.count(Event::WriteBackFailure, &new.workspace_id);
            // Kept either way: a thawed invocation process writes it on its
            // next call like a service does.
            cx.io.cache_set(&unsaved_key(secret_id), &new.to_json(), u64::MAX);
            cx.log(
                Level::Error,
                if cx.s.lifetime == Lifetime::Invocation {
                    "refreshed token could not be written back within the call; the stored refresh token is now \
                     spent and the rotated one is only in this process's memory: if the process is frozen for good \
                     the workspace must be installed again"
                } else {
                    "refreshed token could not be written back; keeping it in memory and retrying on later calls"
                },
                &[fields[0], fields[1], ("error", &e)],
            );
        }
    }
    Ok(resolved(cx, secret_id, new, refresh_due))
}

/// Why a refreshed token was not written.
enum WriteFailure {
    /// A revoke marked the secret meanwhile: the token is dropped.
    Revoked(Error),
    /// The store kept failing or changing.
    Failed(String),
}

/// Somebody wrote the secret while we refreshed: core's
/// `merge_after_conflict` decides whether ours goes on top of theirs.
fn merge_after_conflict(
    cx: &mut Call<'_>,
    secret_id: &str,
    old: &StoredToken,
    new: &StoredToken,
) -> Result<(), WriteFailure> {
    let (current, version) = read_secret(cx, secret_id).map_err(|e| WriteFailure::Failed(format!("{e:?}")))?;
    revoked_meanwhile(cx, secret_id, old, &current).map_err(WriteFailure::Revoked)?;
    let Some(merged) = linear_oauth_core::merge_after_conflict(old, new, &current) else {
        return Ok(());
    };
    match put_with_retry(cx, secret_id, &merged, Some(&version)).map_err(WriteFailure::Failed)? {
        PutOutcome::Written(_) => Ok(()),
        PutOutcome::Conflict => Err(WriteFailure::Failed("the secret kept changing during write-back".into())),
    }
}

/// Waits (ms) before each write attempt. A long-lived host has a later call
/// to retry on; an invocation or a command has only this call, so it keeps
/// trying for about 5 s. Either stops early rather than run into the call
/// deadline, whose trap would drop the token a failed write keeps in memory.
pub(crate) const WRITE_RETRY: &[u64] = &[0, 50, 200, 500];
const WRITE_RETRY_SHORT_LIVED: &[u64] = &[0, 50, 200, 500, 1000, 1500, 2000];

/// A conditional write, retried while the store fails; the version written
/// becomes the call's `written`, for the lease release to hand on.
fn put_with_retry(
    cx: &mut Call<'_>,
    secret_id: &str,
    tok: &StoredToken,
    version: Option<&str>,
) -> Result<PutOutcome, String> {
    let json = tok.to_json();
    let mut last = String::new();
    let mut last_took = 0;
    let patience = if cx.s.lifetime == Lifetime::LongLived { WRITE_RETRY } else { WRITE_RETRY_SHORT_LIVED };
    for (i, &delay) in patience.iter().enumerate() {
        if i > 0 && !write_retry_fits(cx.now(), delay, last_took, cx.call_end()) {
            last = format!("{last} (no time left in the call to try again)");
            break;
        }
        if i > 0 {
            cx.count(Event::WriteBackRetry, &tok.workspace_id);
        }
        cx.io.sleep_ms(delay);
        let started = cx.now();
        match cx.io.secret_put(secret_id, &json, version) {
            Ok(o) => {
                if let PutOutcome::Written(v) = &o {
                    cx.written = Some(v.clone());
                }
                return Ok(o);
            }
            Err(e) => last = e,
        }
        last_took = u64::try_from(cx.now().saturating_sub(started)).unwrap_or(0);
    }
    Err(format!("secret write failed: {last}"))
}

/// Writes a token that an earlier call could not persist, unless the store
/// has meanwhile received a newer write of its own.
pub(crate) fn retry_unsaved(cx: &Call<'_>, secret_id: &str) {
    let key = unsaved_key(secret_id);
    let Some(unsaved) = cached_token(cx.io, &key) else {
        return;
    };
    let Ok((current, version)) = read_secret(cx, secret_id) else { return };
    if revoked_meanwhile(cx, secret_id, &unsaved, &current).is_err() {
        cx.io.cache_remove(&key);
        return;
    }
    let newer = updated_after(&current, &unsaved);
    if newer || matches!(cx.io.secret_put(secret_id, &unsaved.to_json(), Some(&version)), Ok(PutOutcome::Written(_))) {
        cx.io.cache_remove(&key);
        if !newer {
            cx.log(Level::Info, "wrote back a refreshed token kept in memory", &[("secret_id", secret_id)]);
        }
    }
}
