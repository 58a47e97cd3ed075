//! The public records of the Rust API. Secrets are `SecretString`s, so every
//! record can derive `Debug` without a hand-written redaction to keep in step
//! with its fields.

use std::fmt;

use crate::bindings::{admin as wit_admin, install as wit_install, resolver as wit_resolver, types as wit_types};
use crate::store::RegistryRow;

/// A secret (token, client secret, code, verifier): `Debug` prints
/// `[redacted]`, there is no `Display`, and reading it takes `.secret()`, so
/// every place that exposes one says so.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn secret(&self) -> &str {
        &self.0
    }

    pub fn into_secret(self) -> String {
        self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl PartialEq<str> for SecretString {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for SecretString {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for SecretString {
    fn eq(&self, other: &String) -> bool {
        self.0 == *other
    }
}

/// A borrowed secret (a [`ResolvedToken`]'s access token): the same
/// redacted `Debug` and explicit `.secret()` as [`SecretString`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SecretRef<'a>(&'a str);

impl<'a> SecretRef<'a> {
    pub fn secret(self) -> &'a str {
        self.0
    }
}

impl fmt::Debug for SecretRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl PartialEq<&str> for SecretRef<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<str> for SecretRef<'_> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<String> for SecretRef<'_> {
    fn eq(&self, other: &String) -> bool {
        self.0 == *other
    }
}

impl PartialEq<SecretString> for SecretRef<'_> {
    fn eq(&self, other: &SecretString) -> bool {
        self.0 == other.secret()
    }
}

impl From<SecretRef<'_>> for SecretString {
    fn from(s: SecretRef<'_>) -> Self {
        Self(s.0.to_owned())
    }
}

/// A token the caller may use now.
///
/// Its six texts are one allocation (a fleet's resolver keeps one of these
/// per workspace: six `String`s cost about 150 bytes more each), read
/// through the methods below.
#[derive(Clone)]
pub struct ResolvedToken {
    /// Access token, scope, workspace slug, workspace id, secret id and
    /// expiry, back to back.
    text: Box<str>,
    /// Where each but the last of them ends in `text`.
    ends: [u32; 5],
    /// Which token this is, unique in the process (copies share it): a
    /// binding tells from it whether an object it made shows the token the
    /// host serves now.
    serial: u64,
    /// Unix ms until which this token is served without asking the component.
    pub serve_until_ms: u64,
    /// Unix ms from which a long-lived resolver refreshes it in the background
    /// (`u64::MAX`: never).
    pub refresh_ahead_at_ms: u64,
}

/// The next [`ResolvedToken::serial`]; starts at 1 so that 0 names no token.
static SERIALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl ResolvedToken {
    /// Bundles the texts; `None` if they exceed 4 GiB together.
    fn pack(texts: [&str; 6], serve_until_ms: u64, refresh_ahead_at_ms: u64) -> Option<Self> {
        let mut text = String::with_capacity(texts.iter().map(|t| t.len()).sum());
        let mut ends = [0u32; 5];
        for (i, t) in texts.iter().enumerate() {
            text.push_str(t);
            if let Some(end) = ends.get_mut(i) {
                *end = u32::try_from(text.len()).ok()?;
            }
        }
        let serial = SERIALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(Self { text: text.into_boxed_str(), ends, serial, serve_until_ms, refresh_ahead_at_ms })
    }

    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        let end = self.ends.get(i).map_or(self.text.len(), |&e| e as usize);
        &self.text[start..end]
    }

    /// The bearer token for Linear's API.
    pub fn access_token(&self) -> SecretRef<'_> {
        SecretRef(self.part(0))
    }
    /// Space-separated scopes Linear granted.
    pub fn scope(&self) -> &str {
        self.part(1)
    }
    pub fn workspace_slug(&self) -> &str {
        self.part(2)
    }
    /// Linear organization id.
    pub fn workspace_id(&self) -> &str {
        self.part(3)
    }
    /// The id of the stored token (secret name or ARN).
    pub fn secret_id(&self) -> &str {
        self.part(4)
    }
    /// ISO-8601 UTC.
    pub fn expires_at(&self) -> &str {
        self.part(5)
    }
    /// Unique to this token in the process (its copies share it), never 0.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// Whether a binding may hand this token out again without asking the
    /// resolver: inside its serve window and before refresh-ahead is due
    /// (from then on the resolver is asked, which starts that refresh).
    pub fn servable_now(&self) -> bool {
        let now = crate::store::now_ms();
        now < self.serve_until_ms && now < self.refresh_ahead_at_ms
    }
}

impl fmt::Debug for ResolvedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedToken")
            .field("access_token", &self.access_token())
            .field("scope", &self.scope())
            .field("workspace_slug", &self.workspace_slug())
            .field("workspace_id", &self.workspace_id())
            .field("secret_id", &self.secret_id())
            .field("expires_at", &self.expires_at())
            .field("serve_until_ms", &self.serve_until_ms)
            .field("refresh_ahead_at_ms", &self.refresh_ahead_at_ms)
            .finish()
    }
}

/// The same texts and instants (whichever serial).
impl PartialEq for ResolvedToken {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
            && self.ends == other.ends
            && self.serve_until_ms == other.serve_until_ms
            && self.refresh_ahead_at_ms == other.refresh_ahead_at_ms
    }
}

impl Eq for ResolvedToken {}

impl From<wit_resolver::ResolvedToken> for ResolvedToken {
    fn from(t: wit_resolver::ResolvedToken) -> Self {
        let texts = [&*t.access_token, &*t.scope, &*t.workspace_slug, &*t.workspace_id, &*t.secret_id, &*t.expires_at];
        // Over 4 GiB of text cannot come from the component's bounded reads.
        Self::pack(texts, t.serve_until_ms, t.refresh_ahead_at_ms).expect("a resolved token under 4 GiB")
    }
}

/// What an install needs from the operator.
#[derive(Debug, Clone)]
pub struct InstallParams {
    pub client_id: String,
    pub client_secret: SecretString,
    pub redirect_uri: String,
    /// Sent space-separated; commas in user input are split too.
    pub scopes: Vec<String>,
    /// `actor=app` (default on).
    pub actor_app: bool,
    /// `prompt=consent` (default on): the consent screen even in a browser
    /// session that already authorized the app (several workspaces in a row).
    pub prompt_consent: bool,
    /// The secret to write instead of `<prefix><slug>`: for a workspace
    /// whose url key's secret holds another workspace's token.
    pub secret_id: Option<String>,
}

impl From<&InstallParams> for wit_install::InstallParams {
    fn from(p: &InstallParams) -> Self {
        Self {
            client_id: p.client_id.clone(),
            client_secret: p.client_secret.secret().to_owned(),
            redirect_uri: p.redirect_uri.clone(),
            scopes: p.scopes.clone(),
            actor_app: p.actor_app,
            prompt_consent: p.prompt_consent,
            secret_id: p.secret_id.clone(),
        }
    }
}

/// What a client-credentials install needs: the Linear app's credentials
/// (the app must allow the client_credentials grant) and the scopes.
#[derive(Debug, Clone)]
pub struct ClientCredentialsParams {
    pub client_id: String,
    pub client_secret: SecretString,
    /// Sent space-separated; commas in user input are split too.
    pub scopes: Vec<String>,
    /// As in [`InstallParams::secret_id`].
    pub secret_id: Option<String>,
}

/// An install between `begin_install` and `complete_install`. Not `Clone`:
/// its verifier is used once.
#[derive(Debug)]
pub struct PendingInstall {
    pub authorize_url: String,
    pub(crate) state: SecretString,
    pub(crate) code_verifier: SecretString,
}

impl PendingInstall {
    /// The `state` sent to Linear (not secret once in the URL, but never logged).
    pub fn state(&self) -> &str {
        self.state.secret()
    }
}

/// An authorization code from the callback.
#[derive(Debug)]
pub struct AuthCode(pub(crate) SecretString);

/// The result of a finished install (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub workspace_id: String,
    pub workspace_name: String,
    pub workspace_slug: String,
    pub viewer_id: String,
    pub viewer_name: String,
    pub viewer_email: String,
    /// With `actor=app` the viewer is the app user: its id (also stored as
    /// `app_user_id` beside the token).
    pub app_user_id: Option<String>,
    pub secret_id: String,
    pub scope: String,
    pub expires_at: String,
    pub installed_at: String,
    pub replaced: bool,
}

impl From<wit_install::Installed> for Installed {
    fn from(i: wit_install::Installed) -> Self {
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

/// What an operator action is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// Through its registry row (which must exist).
    Workspace(&'a str),
    /// A stored secret directly.
    Secret(&'a str),
}

impl From<Target<'_>> for wit_types::Target {
    fn from(t: Target<'_>) -> Self {
        match t {
            Target::Workspace(w) => Self::Workspace(w.to_owned()),
            Target::Secret(s) => Self::Secret(s.to_owned()),
        }
    }
}

/// A stored credential as an operator may see it: secrets only as fingerprints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub secret_id: String,
    pub fields: Vec<(String, String)>,
    /// Empty when the stored token is valid.
    pub invalid_fields: Vec<String>,
    /// Negative when already expired; `None` when unreadable.
    pub expires_in_ms: Option<i64>,
    pub needs_refresh: bool,
    /// The target's registry row; for a secret target, the row of the
    /// workspace the stored token names if it points at this secret.
    pub registry: Option<RegistryRow>,
}

/// How a revoke ended at Linear: core's decision, as the component reports it.
pub use linear_oauth_core::RevokeOutcome;

pub(crate) fn revoke_outcome(o: wit_admin::RevokeOutcome) -> RevokeOutcome {
    match o {
        wit_admin::RevokeOutcome::Revoked => RevokeOutcome::Revoked,
        wit_admin::RevokeOutcome::AlreadyDead => RevokeOutcome::AlreadyDead,
        wit_admin::RevokeOutcome::NotConfirmed(m) => RevokeOutcome::NotConfirmed(m),
        wit_admin::RevokeOutcome::Failed(m) => RevokeOutcome::Failed(m),
    }
}

/// What `revoke` did. The registry row is `revoked` whatever the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub workspace_id: String,
    pub secret_id: String,
    pub outcome: RevokeOutcome,
    /// The last HTTP status of Linear's revoke endpoint; `None` when it never
    /// answered or no readable token was stored.
    pub linear_status: Option<u16>,
    pub purged: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token as the component hands it over, from its six texts.
    fn token(texts: [&str; 6]) -> ResolvedToken {
        let [access_token, scope, workspace_slug, workspace_id, secret_id, expires_at] = texts.map(str::to_owned);
        ResolvedToken::from(wit_resolver::ResolvedToken {
            access_token,
            scope,
            workspace_slug,
            workspace_id,
            secret_id,
            expires_at,
            serve_until_ms: 1,
            refresh_ahead_at_ms: u64::MAX,
        })
    }

    const ACME: [&str; 6] = ["lin_oauth_sekrit", "read", "acme", "org-1", "s", "2026-01-01T00:00:00Z"];

    #[test]
    fn records_print_secrets_redacted() {
        let t = token(ACME);
        let p = ClientCredentialsParams {
            client_id: "cid".into(),
            client_secret: "cs-sekrit".into(),
            scopes: vec![],
            secret_id: None,
        };
        let code = AuthCode("code-sekrit".into());
        for debug in [format!("{t:?}"), format!("{t:#?}"), format!("{p:?}"), format!("{code:?}")] {
            assert!(!debug.contains("sekrit"), "{debug}");
            assert!(debug.contains("[redacted]"), "{debug}");
        }
        assert!(debug_has_fields(&format!("{t:?}")));
        assert_eq!(t.access_token(), "lin_oauth_sekrit");
        assert_eq!(t.access_token().secret(), "lin_oauth_sekrit");
    }

    #[test]
    fn a_resolved_token_keeps_its_texts_apart_and_has_its_own_serial() {
        let t = token(ACME);
        let texts =
            [t.access_token().secret(), t.scope(), t.workspace_slug(), t.workspace_id(), t.secret_id(), t.expires_at()];
        assert_eq!(texts, ACME);
        let copy = t.clone();
        assert_eq!((copy.serial(), &copy), (t.serial(), &t), "a copy is the same token");
        let again = token(ACME);
        assert_eq!(again, t, "equal texts and instants");
        assert_ne!(again.serial(), t.serial(), "but another token");
        let empty = token(["a", "", "", "w", "", ""]);
        let texts = [empty.access_token().secret(), empty.scope(), empty.workspace_slug()];
        assert_eq!(texts, ["a", "", ""]);
        assert_eq!([empty.workspace_id(), empty.secret_id(), empty.expires_at()], ["w", "", ""]);
    }

    fn debug_has_fields(debug: &str) -> bool {
        [
            "scope: \"read\"",
            "workspace_slug: \"acme\"",
            "workspace_id: \"org-1\"",
            "expires_at: \"2026-01-01T00:00:00Z\"",
        ]
        .iter()
        .all(|f| debug.contains(f))
    }
}
