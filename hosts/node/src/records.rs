//! The plain objects `revoke` and `installClientCredentials` take and give.

use std::fmt;

use napi_derive::napi;

/// What `revoke` did. The workspace is marked revoked whatever the outcome;
/// `confirmed` says whether Linear's side of the grant is known dead.
#[napi(object)]
#[derive(Debug)]
pub struct Revocation {
    pub workspace_id: String,
    pub secret_id: String,
    /// `revoked`, `already-dead`, `not-confirmed` or `failed`.
    #[napi(ts_type = "RevokeOutcome")]
    pub outcome: String,
    pub confirmed: bool,
    /// What was tried, for `not-confirmed` and `failed` (never a secret).
    pub detail: Option<String>,
    /// The last HTTP status of Linear's revoke endpoint, if it answered.
    pub linear_status: Option<u32>,
    pub purged: bool,
}

impl From<linear_oauth_host::Revocation> for Revocation {
    fn from(r: linear_oauth_host::Revocation) -> Self {
        Self {
            outcome: r.outcome.label().to_owned(),
            confirmed: r.outcome.confirmed(),
            detail: r.outcome.detail().map(str::to_owned),
            linear_status: r.linear_status.map(u32::from),
            purged: r.purged,
            workspace_id: r.workspace_id,
            secret_id: r.secret_id,
        }
    }
}

/// Options of `revoke`.
#[napi(object)]
#[derive(Debug, Default)]
pub struct RevokeOptions {
    /// Also delete the stored secret (only once Linear's side is known dead, unless `force`).
    pub purge: Option<bool>,
    /// With `purge`: delete the secret even if Linear did not confirm.
    pub force: Option<bool>,
}

/// What `installClientCredentials` needs. The app must allow Linear's
/// client_credentials grant.
#[napi(object)]
pub struct ClientCredentialsInstall {
    pub client_id: String,
    pub client_secret: String,
    /// Sent space-separated; commas are split too.
    pub scopes: Vec<String>,
    /// Recorded as `installed_by_platform_user_id`.
    pub installed_by: String,
}

impl fmt::Debug for ClientCredentialsInstall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentialsInstall")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("scopes", &self.scopes)
            .field("installed_by", &self.installed_by)
            .finish()
    }
}

/// What an install wrote (no secrets).
#[napi(object)]
#[derive(Debug)]
pub struct Installed {
    pub workspace_id: String,
    pub workspace_name: String,
    pub workspace_slug: String,
    pub viewer_id: String,
    pub viewer_name: String,
    pub viewer_email: String,
    /// The app user's id (the viewer, for an app-actor token), also stored
    /// as `app_user_id`.
    pub app_user_id: Option<String>,
    pub secret_id: String,
    pub scope: String,
    pub expires_at: String,
    pub installed_at: String,
    /// A secret for this workspace existed and was replaced.
    pub replaced: bool,
}

impl From<linear_oauth_host::Installed> for Installed {
    fn from(i: linear_oauth_host::Installed) -> Self {
        Self {
            workspace_id: i.workspace_id,
            workspace_name: i.workspace_name,
            workspace_slug: i.workspace_slug,
            viewer_id: i.viewer_id,
            viewer_name: i.viewer_name,
            viewer_email: i.viewer_email,
            app_user_id: i.app_user_id,
            secret_id: i.secret_id,
            scope: i.scope,
            expires_at: i.expires_at,
            installed_at: i.installed_at,
            replaced: i.replaced,
        }
    }
}

/// How the embedded component was loaded.
#[napi(object)]
#[derive(Debug)]
pub struct LoadInfo {
    /// True when the precompiled component was rejected and wasm was compiled
    /// at load time instead (should never happen for a build of this package).
    pub compiled_fallback: bool,
    pub load_time_ms: f64,
}

/// A verified Linear webhook delivery; `data` is the payload's `data` as JSON
/// text, exactly as received (`JSON.parse` it).
#[napi(object)]
#[derive(Debug)]
pub struct WebhookEvent {
    /// `Issue`, `Comment`, `OAuthApp`, ...
    #[napi(js_name = "type")]
    pub kind: String,
    pub action: Option<String>,
    pub organization_id: Option<String>,
    pub webhook_id: Option<String>,
    /// `oauthClientId`, on `OAuthApp` events.
    pub oauth_client_id: Option<String>,
    /// The `Linear-Delivery` header, when passed.
    pub delivery_id: Option<String>,
    pub created_at: Option<String>,
    /// `webhookTimestamp`, Unix milliseconds.
    pub timestamp_ms: f64,
    /// Whose signing secret matched: `workspace` or `stack`.
    #[napi(ts_type = "'workspace' | 'stack'")]
    pub matched: String,
    pub data: String,
    /// `handleWebhook` only: `revoked`, `already-revoked`, `other-app` or
    /// `not-registered`; absent for events it does not act on.
    #[napi(ts_type = "WebhookOutcome")]
    pub outcome: Option<String>,
}

impl From<linear_oauth_host::WebhookEvent> for WebhookEvent {
    fn from(e: linear_oauth_host::WebhookEvent) -> Self {
        Self {
            outcome: e.outcome.as_ref().map(|o| o.as_str().to_owned()),
            matched: e.matched.as_str().to_owned(),
            timestamp_ms: e.timestamp_ms as f64,
            kind: e.kind,
            action: e.action,
            organization_id: e.organization_id,
            webhook_id: e.webhook_id,
            oauth_client_id: e.oauth_client_id,
            delivery_id: e.delivery_id,
            created_at: e.created_at,
            data: e.data,
        }
    }
}

/// Whose signing secret `setWebhookSecret` stores; neither: the stack-wide one.
#[napi(object)]
#[derive(Debug, Default)]
pub struct WebhookSecretTarget {
    pub workspace_id: Option<String>,
    pub secret_id: Option<String>,
}
