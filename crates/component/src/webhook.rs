//! Linear webhooks, the store's half: which secret signs a workspace's
//! deliveries, storing one, and what the app-revoked event changes. The
//! signature itself is checked by the host with `linear-oauth-core` (see the
//! WIT `webhook` interface).

use linear_oauth_core::{expired_after_revoke, format_instant, StoredToken, SIGNING_SECRET_FIELD};
use serde_json::{Map, Value};

use crate::cache::{cached_row, cached_token, invalidate};
use crate::call::Call;
use crate::exports::linear::oauth::webhook::{AppRevokedOutcome, KeySource, SigningKey};
use crate::io::Io;
use crate::keys::{check_id, token_key};
use crate::linear::oauth::log::Level;
use crate::linear::oauth::registry::Row;
use crate::linear::oauth::secret_store::PutOutcome;
use crate::linear::oauth::types::{Error, Target};

/// A conditional write that keeps losing to other writers gives up after this many tries.
const WRITE_TRIES: usize = 3;

/// See the WIT `webhook.get-signing-key`.
pub(crate) fn signing_key(
    cx: &Call<'_>,
    organization_id: Option<&str>,
    fresh: bool,
) -> Result<Option<SigningKey>, Error> {
    if let Some(org) = organization_id {
        check_id("organization id", org)?;
        if let Some(secret) = workspace_secret(cx, org, fresh)? {
            return Ok(Some(SigningKey { secret, source: KeySource::Workspace }));
        }
    }
    let Some(id) = cx.s.webhook_secret_id.as_deref() else { return Ok(None) };
    let stored = cx.io.secret_get(id).map_err(|e| Error::Store(format!("secret read failed: {e}")))?;
    Ok(stored.and_then(|v| stack_secret(&v.value)).map(|secret| SigningKey { secret, source: KeySource::Stack }))
}

/// The workspace's own signing secret; none when it is not registered, its
/// secret is gone, or its stored token has no such field. A stored value that
/// is not a JSON object fails: it may have held one.
fn workspace_secret(cx: &Call<'_>, org: &str, fresh: bool) -> Result<Option<String>, Error> {
    let row = match cached_row(cx, org).filter(|_| !fresh) {
        Some(row) => row,
        None => match cx.io.registry_get(org).map_err(|e| Error::Store(format!("registry read failed: {e}")))? {
            Some(row) => row,
            None => return Ok(None),
        },
    };
    let fields = match cached_token(cx.io, &token_key(&row.secret_id)).filter(|_| !fresh) {
        Some(tok) => tok.extra().clone(),
        None => match cx.io.secret_get(&row.secret_id).map_err(|e| Error::Store(format!("secret read failed: {e}")))? {
            Some(v) => json_object(&v.value)?,
            None => return Ok(None),
        },
    };
    match fields.get(SIGNING_SECRET_FIELD) {
        None => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
        Some(_) => Err(Error::InvalidStoredToken(vec![SIGNING_SECRET_FIELD.to_owned()])),
    }
}

fn json_object(value: &str) -> Result<Map<String, Value>, Error> {
    match serde_json::from_str::<Value>(value) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::InvalidStoredToken(vec![linear_oauth_core::NOT_A_JSON_OBJECT.to_owned()])),
        Err(_) => Err(Error::InvalidStoredToken(vec![linear_oauth_core::NOT_VALID_JSON.to_owned()])),
    }
}

/// The stack-wide secret's value: the plain string (as one creates it in a
/// secrets console), or a JSON object's `webhook_signing_secret`.
fn stack_secret(value: &str) -> Option<String> {
    let value = value.trim();
    let secret = if value.starts_with('{') {
        match serde_json::from_str::<Value>(value).ok()?.get(SIGNING_SECRET_FIELD)? {
            Value::String(s) => s.trim().to_owned(),
            _ => return None,
        }
    } else {
        value.to_owned()
    };
    Some(secret).filter(|s| !s.is_empty())
}

/// See the WIT `webhook.app-revoked`. Idempotent: a retried delivery finds
/// the row revoked and writes nothing (except a secret mark the first one
/// did not get to).
pub(crate) fn app_revoked(cx: &Call<'_>, org: &str, client_id: &str) -> Result<AppRevokedOutcome, Error> {
    check_id("organization id", org)?;
    let io = cx.io;
    let Some(row) = io.registry_get(org).map_err(|e| Error::Store(format!("registry read failed: {e}")))? else {
        cx.log(Level::Info, "app-revoked webhook for a workspace that is not registered", &[("workspace_id", org)]);
        return Ok(AppRevokedOutcome::NotRegistered);
    };
    let stored = io.secret_get(&row.secret_id).map_err(|e| Error::Store(format!("secret read failed: {e}")))?;
    let ours = stored.as_ref().and_then(|v| match serde_json::from_str::<Value>(&v.value) {
        Ok(Value::Object(m)) => m.get("client_id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    });
    // An unreadable or missing token cannot say whose it is; such a workspace
    // does not resolve anyway, so the row may as well say it is revoked.
    if let Some(ours) = ours.filter(|ours| ours != client_id) {
        cx.log(
            Level::Info,
            "app-revoked webhook names another OAuth app; ignored",
            &[("workspace_id", org), ("event_client_id", client_id), ("stored_client_id", &ours)],
        );
        return Ok(AppRevokedOutcome::OtherApp(ours));
    }
    let outcome = if row.status == "revoked" {
        AppRevokedOutcome::AlreadyRevoked
    } else {
        let at = format_instant(io.now_ms());
        // The reason says who ended it: Linear's event, not an operator's revoke.
        let reason = Some("app_revoked".to_owned());
        io.registry_put(&Row {
            status: "revoked".into(),
            status_reason: reason,
            status_changed_at: Some(at),
            ..row.clone()
        })
        .map_err(|e| Error::Store(format!("registry write failed: {e}")))?;
        AppRevokedOutcome::Revoked
    };
    invalidate(io, org);
    expire_kept_secret(io, &row.secret_id);
    if matches!(outcome, AppRevokedOutcome::Revoked) {
        cx.log(
            Level::Info,
            "Linear reports the app removed from the workspace; marked it revoked",
            &[("workspace_id", org), ("secret_id", &row.secret_id)],
        );
    }
    Ok(outcome)
}

/// Marks a kept secret revoked and expired, so no process serves or refreshes
/// it from the store again. Best effort (the row is revoked anyway); a secret
/// already marked is left as it is.
pub(crate) fn expire_kept_secret(io: &dyn Io, secret_id: &str) {
    let failed = |e: &str| {
        io.log(Level::Warn, "could not mark the revoked secret expired", &[("secret_id", secret_id), ("error", e)]);
    };
    for _ in 0..WRITE_TRIES {
        let current = match io.secret_get(secret_id) {
            Ok(Some(v)) => v,
            Ok(None) => return,
            Err(e) => return failed(&e),
        };
        let Ok(tok) = StoredToken::parse(&current.value) else { return };
        if tok.revoked_at().is_some() {
            return;
        }
        let expired = expired_after_revoke(&tok, io.now_ms());
        match io.secret_put(secret_id, &expired.to_json(), Some(&current.version)) {
            Ok(PutOutcome::Written(_)) => return,
            Ok(PutOutcome::Conflict) => continue,
            Err(e) => return failed(&e),
        }
    }
    io.log(Level::Warn, "could not mark the revoked secret expired: it kept changing", &[("secret_id", secret_id)]);
}

/// See the WIT `webhook.set-signing-secret`.
pub(crate) fn set_signing_secret(cx: &Call<'_>, target: Option<&Target>, value: &str) -> Result<(), Error> {
    let value = value.trim();
    if value.is_empty() || value.len() > 4096 || value.chars().any(char::is_control) {
        return Err(Error::InvalidInput(
            "a webhook signing secret is one line of 1 to 4096 printable characters".into(),
        ));
    }
    let (secret_id, stack) =
        match target {
            None => match cx.s.webhook_secret_id.clone() {
                Some(id) => (id, true),
                None => return Err(Error::InvalidInput(
                    "no stack-wide webhook secret is configured (webhook_secret_id, LINEAR_OAUTH_WEBHOOK_SECRET_ID)"
                        .into(),
                )),
            },
            Some(Target::Workspace(ws)) => {
                check_id("workspace id", ws)?;
                let row = cx
                    .io
                    .registry_get(ws)
                    .map_err(|e| Error::Store(format!("registry read failed: {e}")))?
                    .ok_or_else(|| Error::NotRegistered(format!("workspace {ws} is not registered")))?;
                (row.secret_id, false)
            }
            Some(Target::Secret(id)) => (id.clone(), false),
        };
    check_id("secret id", &secret_id)?;
    for _ in 0..WRITE_TRIES {
        let current = cx.io.secret_get(&secret_id).map_err(|e| Error::Store(format!("secret read failed: {e}")))?;
        let next = match &current {
            None if stack => value.to_owned(),
            None => return Err(Error::SecretMissing(format!("secret {secret_id} does not exist"))),
            // A plain stack-wide secret is replaced; an object keeps its other fields.
            Some(v) if stack && !v.value.trim_start().starts_with('{') => value.to_owned(),
            Some(v) => {
                let mut map = json_object(&v.value)?;
                map.insert(SIGNING_SECRET_FIELD.to_owned(), Value::String(value.to_owned()));
                Value::Object(map).to_string()
            }
        };
        let expected = current.as_ref().map(|v| v.version.as_str());
        match cx.io.secret_put(&secret_id, &next, expected) {
            Ok(PutOutcome::Written(_)) => {
                cx.io.cache_remove(&token_key(&secret_id));
                cx.log(
                    Level::Info,
                    "stored a webhook signing secret",
                    &[("secret_id", &secret_id), ("scope", if stack { "stack" } else { "workspace" })],
                );
                return Ok(());
            }
            Ok(PutOutcome::Conflict) => continue,
            Err(e) => return Err(Error::Store(format!("secret write failed: {e}"))),
        }
    }
    Err(Error::Store(format!("secret {secret_id} kept changing while storing the signing secret; try again")))
}
