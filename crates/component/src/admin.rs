//! Operator actions: inspect and revoke.

use linear_oauth_core::{fingerprint, freshness, revoke_form, Freshness, StoredToken, FIELDS};
use serde_json::Value;

use crate::exports::linear::oauth::admin::{Inspection, Revocation};
use crate::linear::oauth::log::Level;
use crate::linear::oauth::registry::{self, Row};
use crate::linear::oauth::secret_store;
use crate::linear::oauth::types::{EndpointError, Error};
use crate::resolver::{check_id, endpoint, invalidate, settings};
use crate::{http, log_event, now_ms};

const SECRET_FIELDS: [&str; 3] = ["access_token", "refresh_token", "client_secret"];

fn redacted(s: &str) -> String {
    format!("[redacted sha256:{}]", fingerprint(s))
}

pub fn inspect(secret_id: &str) -> Result<Inspection, Error> {
    check_id("secret id", secret_id)?;
    let s = settings();
    let v = secret_store::get(secret_id)
        .map_err(|e| Error::Store(format!("secret read failed: {e}")))?
        .ok_or_else(|| Error::SecretMissing(format!("secret {secret_id} does not exist")))?;
    let parsed = StoredToken::parse(&v.value);
    let invalid_fields = parsed.as_ref().err().map(|e| e.fields()).unwrap_or_default();
    let mut fields = Vec::new();
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&v.value) {
        let known = FIELDS.iter().filter_map(|f| map.get(*f).map(|v| (*f, v)));
        let unknown = map.iter().filter(|(k, _)| !FIELDS.contains(&k.as_str())).map(|(k, v)| (k.as_str(), v));
        for (name, value) in known.chain(unknown) {
            let shown = match (SECRET_FIELDS.contains(&name), value) {
                (true, Value::String(s)) => redacted(s),
                (true, _) => "[redacted]".to_owned(),
                (false, Value::String(s)) => s.clone(),
                (false, other) => other.to_string(),
            };
            fields.push((name.to_owned(), shown));
        }
    }
    let (expires_in_ms, needs_refresh) = match &parsed {
        Ok(t) => match freshness(&t.expires_at, now_ms(), s.refresh_threshold_ms) {
            Freshness::Malformed => (None, true),
            f => (
                linear_oauth_core::parse_instant(&t.expires_at).map(|e| e - now_ms()),
                f.needs_refresh(),
            ),
        },
        Err(_) => (None, true),
    };
    Ok(Inspection { secret_id: secret_id.to_owned(), fields, invalid_fields, expires_in_ms, needs_refresh })
}

pub fn revoke(workspace_id: &str, purge: bool) -> Result<Revocation, Error> {
    let s = settings();
    let row = registry::get(workspace_id)
        .map_err(|e| Error::Store(format!("registry read failed: {e}")))?
        .ok_or_else(|| Error::NotRegistered(format!("workspace {workspace_id} is not registered")))?;
    let stored = secret_store::get(&row.secret_id)
        .map_err(|e| Error::Store(format!("secret read failed: {e}")))?
        .and_then(|v| StoredToken::parse(&v.value).ok());
    let mut linear_status = None;
    if let Some(t) = &stored {
        // Revoking the refresh token ends the whole grant.
        let form = revoke_form(t.refresh_token.secret(), "refresh_token", &t.client_id, &t.client_secret);
        let resp = http::post(&endpoint(&s, "oauth/revoke"), "application/x-www-form-urlencoded", form.as_bytes(), None, s.http_timeout_ms)
            .map_err(Error::Transport)?;
        if resp.status == 401 || resp.status >= 500 {
            let secrets = [t.refresh_token.secret(), t.client_secret.secret(), t.access_token.secret()];
            let err = linear_oauth_core::parse_token_response(resp.status, &resp.body).err().map(|f| f.redacted(&secrets));
            let (code, description) = match err {
                Some(linear_oauth_core::EndpointFailure::Error { code, description, .. }) => (code, description),
                _ => (None, None),
            };
            return Err(Error::TokenEndpoint(EndpointError { status: resp.status, code, description }));
        }
        linear_status = Some(resp.status);
    }
    registry::put(&Row { status: "revoked".into(), ..row.clone() })
        .map_err(|e| Error::Store(format!("registry write failed: {e}")))?;
    let purged = purge
        && secret_store::delete(&row.secret_id).map_err(|e| Error::Store(format!("secret delete failed: {e}")))?;
    invalidate(workspace_id);
    log_event(Level::Info, "revoked Linear workspace", &[
        ("workspace_id", workspace_id),
        ("secret_id", &row.secret_id),
        ("purged", if purged { "true" } else { "false" }),
    ]);
    Ok(Revocation { workspace_id: workspace_id.to_owned(), secret_id: row.secret_id, linear_status, purged })
}
