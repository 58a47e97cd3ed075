//! Linear webhooks for every runtime: the signature and the replay window are
//! checked natively with `linear-oauth-core` (one rule, the same bytes in
//! Python, Node and the CLI), against a signing secret the component chose
//! and this process keeps for `cache_ttl`; the app-revoked event is applied
//! by the component. A cached verification never enters wasm.

use std::collections::HashMap;
use std::sync::Mutex;

use linear_oauth_core::{claimed_organization, verify_webhook, Signature, SigningSecret, WebhookError, WebhookFailure};

use crate::bindings::webhook as wit;
use crate::bound::trim;
use crate::cache::Scope;
use crate::pool::ms;
use crate::store::now_ms;
use crate::types::{SecretString, Target};
use crate::{Error, Resolver, Result};

/// The least time between two uncached reads of one organization's secret
/// after a mismatch: a flood of forged deliveries costs the store one read a
/// second, not one each.
const REREAD_EVERY_MS: u64 = 1_000;

/// Whose signing secret verified a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// The workspace's own (`webhook_signing_secret` in its stored token).
    Workspace,
    /// The stack-wide secret (`Options::webhook_secret_id`).
    Stack,
}

impl KeySource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Workspace => "workspace",
            Self::Stack => "stack",
        }
    }
}

/// What `handle_webhook` did with a lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// The app was removed from the workspace: its row is now `revoked`.
    Revoked,
    /// It already was (Linear retried the delivery): nothing written.
    AlreadyRevoked,
    /// The event is about another OAuth app: ignored.
    OtherApp { stored_client_id: String },
    /// No registry row for the event's organization: nothing to do.
    NotRegistered,
}

impl WebhookOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::AlreadyRevoked => "already-revoked",
            Self::OtherApp { .. } => "other-app",
            Self::NotRegistered => "not-registered",
        }
    }
}

/// A verified delivery (Linear's payload fields, the delivery id from the
/// `Linear-Delivery` header, and which secret matched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// `type`: `Issue`, `Comment`, `OAuthApp`, ...
    pub kind: String,
    pub action: Option<String>,
    pub organization_id: Option<String>,
    pub webhook_id: Option<String>,
    /// `oauthClientId` (on `OAuthApp` events).
    pub oauth_client_id: Option<String>,
    pub delivery_id: Option<String>,
    pub created_at: Option<String>,
    /// `webhookTimestamp`, Unix milliseconds.
    pub timestamp_ms: i64,
    pub matched: KeySource,
    /// `data`, the JSON text as received (`null` when absent).
    pub data: String,
    /// Set by `handle_webhook` for the events it acts on.
    pub outcome: Option<WebhookOutcome>,
}

/// One organization's signing secret as this process last read it.
#[derive(Clone)]
struct Key {
    /// `None`: neither the workspace nor the stack has one.
    secret: Option<(SigningSecret, KeySource)>,
    /// Served from memory until then.
    until_ms: u64,
    /// When it was last read past every cache, if ever: a mismatch may read
    /// it so again [`REREAD_EVERY_MS`] later.
    fresh_ms: Option<u64>,
}

impl Key {
    /// Whether `result` (checked with this key) calls for one uncached read:
    /// a signature failure (the header's form is checked before, so the
    /// secret is wrong or missing: it may have been rotated).
    fn rereads(&self, result: &Result<WebhookEvent>, now: u64) -> bool {
        matches!(result, Err(Error::WebhookSignature(_)))
            && self.fresh_ms.is_none_or(|at| now.saturating_sub(at) >= REREAD_EVERY_MS)
    }
}

/// Signing secrets by claimed organization (`""` for none), bounded like the
/// token cache.
pub(crate) struct WebhookKeys {
    keys: Mutex<HashMap<String, Key>>,
    max: usize,
}

impl WebhookKeys {
    pub(crate) fn new(max: usize) -> Self {
        Self { keys: Mutex::default(), max }
    }

    fn cached(&self, org: &str, now: u64) -> Option<Key> {
        self.keys.lock().unwrap().get(org).filter(|k| now < k.until_ms).cloned()
    }

    fn store(&self, org: &str, key: Key) {
        let mut keys = self.keys.lock().unwrap();
        keys.insert(org.to_owned(), key);
        if keys.len() > self.max {
            trim(&mut keys, self.max - self.max / 8, |_, k| Some(k.until_ms));
        }
    }

    fn clear(&self) {
        self.keys.lock().unwrap().clear();
    }
}

/// The decoded signature and the claimed organization (`""`: none).
fn parse(body: &[u8], signature: &str) -> Result<(Signature, String)> {
    let signature = Signature::parse(signature).map_err(webhook_error)?;
    let org = claimed_organization(body).map_err(webhook_error)?.unwrap_or_default();
    Ok((signature, org))
}

impl Resolver {
    /// Checks a delivery as Linear documents it: `signature` (the
    /// `Linear-Signature` header) is the hex HMAC-SHA256 of the exact `body`
    /// under the workspace's signing secret (the stack-wide one only for a
    /// workspace without its own), then `webhookTimestamp` must be within
    /// `webhook_window` of now. A mismatch re-reads the secret once, uncached
    /// (it may have been rotated), and is then final.
    pub fn verify_webhook(&self, body: &[u8], signature: &str, delivery_id: Option<&str>) -> Result<WebhookEvent> {
        let (signature, org) = parse(body, signature)?;
        let now = now_ms();
        let key = match self.webhook_keys.cached(&org, now) {
            Some(key) => key,
            None => self.read_signing_key(&org, now, false)?,
        };
        let first = self.check(body, &signature, &key, &org, now, delivery_id);
        if !key.rereads(&first, now) {
            return first;
        }
        let fresh = self.read_signing_key(&org, now, true)?;
        if fresh.secret.as_ref().map(|(s, _)| s) == key.secret.as_ref().map(|(s, _)| s) {
            return first;
        }
        self.check(body, &signature, &fresh, &org, now, delivery_id)
    }

    /// [`Self::verify_webhook`] when it needs no I/O (the secret is in this
    /// process's memory and no re-read is due), else `None`: no call into
    /// the component, for callers that must not block (Node's event loop).
    pub fn verify_webhook_cached(
        &self,
        body: &[u8],
        signature: &str,
        delivery_id: Option<&str>,
    ) -> Option<Result<WebhookEvent>> {
        let (signature, org) = match parse(body, signature) {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let now = now_ms();
        let key = self.webhook_keys.cached(&org, now)?;
        let result = self.check(body, &signature, &key, &org, now, delivery_id);
        (!key.rereads(&result, now)).then_some(result)
    }

    fn check(
        &self,
        body: &[u8],
        signature: &Signature,
        key: &Key,
        org: &str,
        now: u64,
        delivery_id: Option<&str>,
    ) -> Result<WebhookEvent> {
        let Some((secret, source)) = &key.secret else {
            return Err(Error::WebhookSignature(format!(
                "no signing secret for organization {org:?}: its stored token has no webhook_signing_secret and \
                 no stack-wide secret is stored (webhook_secret_id)"
            )));
        };
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let window = ms(self.pool.shared.options.webhook_window);
        verify_webhook(body, signature, secret, source.as_str(), now, window)
            .map(|e| event(e, *source, delivery_id))
            .map_err(webhook_error)
    }

    /// [`Self::verify_webhook`], then acts on the lifecycle event: Linear's
    /// `OAuthApp` `revoked` for this app's client id marks the workspace
    /// revoked (row, kept secret, this process's caches). Every other event
    /// comes back untouched for the caller. Idempotent under Linear's retries.
    pub fn handle_webhook(&self, body: &[u8], signature: &str, delivery_id: Option<&str>) -> Result<WebhookEvent> {
        let mut e = self.verify_webhook(body, signature, delivery_id)?;
        if !(e.kind == "OAuthApp" && e.action.as_deref() == Some("revoked")) {
            return Ok(e);
        }
        let (Some(org), Some(client_id)) = (e.organization_id.clone(), e.oauth_client_id.clone()) else {
            return Err(Error::WebhookMalformed(
                "an OAuthApp revoked event without organizationId or oauthClientId".into(),
            ));
        };
        let outcome =
            self.pool.call(|i| i.api.linear_oauth_webhook().call_app_revoked(&mut i.store, &org, &client_id))?;
        e.outcome = Some(match outcome {
            wit::AppRevokedOutcome::Revoked => WebhookOutcome::Revoked,
            wit::AppRevokedOutcome::AlreadyRevoked => WebhookOutcome::AlreadyRevoked,
            wit::AppRevokedOutcome::OtherApp(stored_client_id) => WebhookOutcome::OtherApp { stored_client_id },
            wit::AppRevokedOutcome::NotRegistered => WebhookOutcome::NotRegistered,
        });
        if matches!(e.outcome, Some(WebhookOutcome::Revoked | WebhookOutcome::AlreadyRevoked)) {
            self.cache.forget(Scope { workspace: Some(&org), secret: None });
        }
        Ok(e)
    }

    /// Stores a webhook signing secret: a workspace's own (in its stored
    /// token, every other field kept) or, for `None`, the stack-wide one.
    pub fn set_webhook_secret(&self, target: Option<Target<'_>>, value: &SecretString) -> Result<()> {
        let wit_target = target.map(Into::into);
        self.pool.call(|i| {
            i.api.linear_oauth_webhook().call_set_signing_secret(&mut i.store, wit_target.as_ref(), value.secret())
        })?;
        self.webhook_keys.clear();
        Ok(())
    }

    /// The component's choice of secret for `org` (`""`: no claim), kept for
    /// `cache_ttl`; `fresh` reads past every cache.
    fn read_signing_key(&self, org: &str, now: u64, fresh: bool) -> Result<Key> {
        let claim = Some(org.to_owned()).filter(|o| !o.is_empty());
        let key = self
            .pool
            .call(|i| i.api.linear_oauth_webhook().call_get_signing_key(&mut i.store, claim.as_deref(), fresh))?;
        let secret = key.map(|k| {
            let source = match k.source {
                wit::KeySource::Workspace => KeySource::Workspace,
                wit::KeySource::Stack => KeySource::Stack,
            };
            (SigningSecret::new(k.secret), source)
        });
        let previous = self.webhook_keys.cached(org, now).and_then(|k| k.fresh_ms);
        let key = Key {
            secret,
            until_ms: now.saturating_add(ms(self.pool.shared.options.cache_ttl)),
            fresh_ms: if fresh { Some(now) } else { previous },
        };
        self.webhook_keys.store(org, key.clone());
        Ok(key)
    }
}

fn event(e: linear_oauth_core::WebhookEvent, matched: KeySource, delivery_id: Option<&str>) -> WebhookEvent {
    WebhookEvent {
        kind: e.kind,
        action: e.action,
        organization_id: e.organization_id,
        webhook_id: e.webhook_id,
        oauth_client_id: e.oauth_client_id,
        delivery_id: delivery_id.map(str::to_owned).filter(|d| !d.is_empty()),
        created_at: e.created_at,
        timestamp_ms: e.timestamp_ms,
        matched,
        data: e.data,
        outcome: None,
    }
}

/// Core's refusal as the host error of its kind.
fn webhook_error(e: WebhookError) -> Error {
    let message = e.to_string();
    match e.failure() {
        WebhookFailure::Signature => Error::WebhookSignature(message),
        WebhookFailure::Stale => Error::WebhookStale(message),
        WebhookFailure::Malformed => Error::WebhookMalformed(message),
    }
}
