//! Static configuration of the test server and the public data types that the
//! admin API exchanges as JSON.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Client id of the client registered by [`ServerConfig::default`].
pub const DEFAULT_CLIENT_ID: &str = "test-client-id";
/// Client secret of the client registered by [`ServerConfig::default`].
pub const DEFAULT_CLIENT_SECRET: &str = "test-client-secret";
/// Redirect URI of the client registered by [`ServerConfig::default`].
pub const DEFAULT_REDIRECT_URI: &str = "http://localhost:8080/oauth/callback";
/// Linear's access-token lifetime (one day minus a second).
pub const DEFAULT_EXPIRES_IN: u64 = 86_399;
/// Linear's client-credentials token lifetime (30 days minus a second).
pub const DEFAULT_CLIENT_CREDENTIALS_EXPIRES_IN: u64 = 2_591_999;
/// How long a spent refresh token may be replayed when a grace mode is on.
pub const DEFAULT_GRACE_WINDOW_S: u64 = 1_800;

/// An OAuth application registered with the server.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientConfig {
    pub client_id: String,
    pub client_secret: String,
    /// Compared byte-exactly against `redirect_uri`, as Linear does.
    pub redirect_uris: Vec<String>,
    /// The app's client-credentials toggle. Linear makes it opt-in per app;
    /// here it defaults on so tests need not enable it, and off is the knob
    /// for the disabled-grant answer.
    #[serde(default = "enabled")]
    pub client_credentials: bool,
}

fn enabled() -> bool {
    true
}

impl ClientConfig {
    pub fn new(
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        redirect_uris: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        ClientConfig {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            redirect_uris: redirect_uris.into_iter().map(Into::into).collect(),
            client_credentials: true,
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig::new(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, [DEFAULT_REDIRECT_URI])
    }
}

// Secrets stay out of test logs even though they are test secrets: the same
// habit keeps real ones out when someone points a config at them.
impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uris", &self.redirect_uris)
            .field("client_credentials", &self.client_credentials)
            .finish()
    }
}

/// The workspace that GraphQL `organization` answers with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    pub id: String,
    pub name: String,
    #[serde(alias = "urlKey")]
    pub url_key: String,
}

impl Default for Organization {
    fn default() -> Self {
        Organization {
            id: "5a1d3f2e-8c4b-4e6f-9a7d-2b3c4d5e6f70".into(),
            name: "Test Workspace".into(),
            url_key: "testws".into(),
        }
    }
}

/// The user that GraphQL `viewer` answers with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub id: String,
    pub name: String,
    pub email: String,
}

impl Default for Viewer {
    fn default() -> Self {
        Viewer {
            id: "0f1e2d3c-4b5a-4697-8877-665544332211".into(),
            name: "Test User".into(),
            email: "test.user@example.com".into(),
        }
    }
}

/// What the token endpoint does when a spent refresh token is presented again
/// within the grace window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GraceMode {
    /// Spent tokens are always rejected with `invalid_grant`.
    #[default]
    None,
    /// The replay returns exactly the pair the first use produced.
    SamePair,
    /// The replay mints a fresh pair and revokes the previously produced one.
    NewPair,
}

impl FromStr for GraceMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(GraceMode::None),
            "same_pair" => Ok(GraceMode::SamePair),
            "new_pair" => Ok(GraceMode::NewPair),
            other => Err(format!("unknown grace mode {other:?} (expected none, same_pair or new_pair)")),
        }
    }
}

impl fmt::Display for GraceMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GraceMode::None => "none",
            GraceMode::SamePair => "same_pair",
            GraceMode::NewPair => "new_pair",
        })
    }
}

/// Server configuration. The knob-like fields (`expires_in`, `grace`,
/// `grace_window_s`) are also the values that a reset returns to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    pub clients: Vec<ClientConfig>,
    pub organization: Organization,
    pub viewer: Viewer,
    pub expires_in: u64,
    pub grace: GraceMode,
    pub grace_window_s: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            clients: vec![ClientConfig::default()],
            organization: Organization::default(),
            viewer: Viewer::default(),
            expires_in: DEFAULT_EXPIRES_IN,
            grace: GraceMode::None,
            grace_window_s: DEFAULT_GRACE_WINDOW_S,
        }
    }
}

/// A scripted failure of the next `count` token (or, as `revoke_fail_next`,
/// revoke) requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailNext {
    pub count: u32,
    #[serde(default = "default_fail_status")]
    pub status: u16,
    /// Sent verbatim; `None` sends `{"error":"server_error"}`.
    #[serde(default)]
    pub body: Option<String>,
}

fn default_fail_status() -> u16 {
    500
}

/// The current fault knobs, as `GET /_admin/faults` shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faults {
    pub latency_ms: u64,
    /// Delay AFTER a token grant was processed (tokens already rotated),
    /// before the answer: a client that dies meanwhile lost the new pair.
    pub post_grant_delay_ms: u64,
    pub graphql_latency_ms: u64,
    pub fail_next: Option<FailNext>,
    /// Like `fail_next`, for `POST /oauth/revoke`: answered before any token
    /// is looked at, so nothing is revoked.
    pub revoke_fail_next: Option<FailNext>,
    pub malformed_next: u32,
    pub oversize_next: u32,
    pub drop_next: u32,
    pub grace: GraceMode,
    pub grace_window_s: u64,
    pub omit_refresh_token: bool,
    pub expires_in: u64,
    /// Lifetime of client-credentials tokens (Linear: 30 days).
    pub client_credentials_expires_in: u64,
    pub deny_next_authorize: u32,
    /// When non-zero, every token response body is sent one byte every
    /// `drip_ms` ms (a slow network, not anything Linear does), until reset.
    pub drip_ms: u64,
    /// When non-empty, sent as `Retry-After` with every scripted token
    /// failure (`fail_next`): seconds or an HTTP-date, verbatim.
    pub fail_retry_after: String,
    /// The next N `POST /graphql` answer 401 whatever the token (as Linear
    /// answers a token it no longer accepts; see `graphql` in http.rs): a
    /// caller's retry with a freshly refreshed token is rejected too.
    pub graphql_unauthorized_next: u32,
}

impl Faults {
    pub(crate) fn baseline(config: &ServerConfig) -> Self {
        Faults {
            latency_ms: 0,
            post_grant_delay_ms: 0,
            graphql_latency_ms: 0,
            fail_next: None,
            revoke_fail_next: None,
            malformed_next: 0,
            oversize_next: 0,
            drop_next: 0,
            grace: config.grace,
            grace_window_s: config.grace_window_s,
            omit_refresh_token: false,
            expires_in: config.expires_in,
            client_credentials_expires_in: DEFAULT_CLIENT_CREDENTIALS_EXPIRES_IN,
            deny_next_authorize: 0,
            drip_ms: 0,
            fail_retry_after: String::new(),
            graphql_unauthorized_next: 0,
        }
    }

    /// Merges a patch; fields the patch leaves out keep their value.
    pub(crate) fn apply(&mut self, patch: FaultsPatch) -> Result<(), String> {
        for (name, fail) in [("fail_next", &patch.fail_next), ("revoke_fail_next", &patch.revoke_fail_next)] {
            if let Some(fail) = fail {
                if !(100..=999).contains(&fail.status) {
                    return Err(format!("{name}.status {} is not an HTTP status", fail.status));
                }
            }
        }
        let FaultsPatch {
            latency_ms,
            post_grant_delay_ms,
            graphql_latency_ms,
            fail_next,
            revoke_fail_next,
            malformed_next,
            oversize_next,
            drop_next,
            grace,
            grace_window_s,
            omit_refresh_token,
            expires_in,
            client_credentials_expires_in,
            deny_next_authorize,
            drip_ms,
            fail_retry_after,
            graphql_unauthorized_next,
        } = patch;
        macro_rules! merge {
            ($($field:ident),*) => { $( if let Some(v) = $field { self.$field = v; } )* };
        }
        merge!(
            latency_ms,
            post_grant_delay_ms,
            graphql_latency_ms,
            malformed_next,
            oversize_next,
            drop_next,
            grace,
            grace_window_s,
            omit_refresh_token,
            expires_in,
            client_credentials_expires_in,
            deny_next_authorize,
            drip_ms,
            fail_retry_after,
            graphql_unauthorized_next
        );
        if let Some(fail) = fail_next {
            self.fail_next = (fail.count > 0).then_some(fail);
        }
        if let Some(fail) = revoke_fail_next {
            self.revoke_fail_next = (fail.count > 0).then_some(fail);
        }
        Ok(())
    }
}

/// A partial update of [`Faults`]; the body of `POST /_admin/faults`.
/// Unknown fields are rejected so a typo in an out-of-process test fails loudly.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_grant_delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graphql_latency_ms: Option<u64>,
    /// A `count` of 0 clears a pending `fail_next`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_next: Option<FailNext>,
    /// A `count` of 0 clears a pending `revoke_fail_next`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_fail_next: Option<FailNext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub malformed_next: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oversize_next: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_next: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<GraceMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_window_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omit_refresh_token: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_credentials_expires_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_next_authorize: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drip_ms: Option<u64>,
    /// Empty stops sending `Retry-After`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_retry_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graphql_unauthorized_next: Option<u32>,
}

/// Request counters; `GET /_admin/counters` serializes this struct as is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Every `GET /oauth/authorize`.
    pub authorize: u64,
    /// Every `POST /oauth/token`, faulted ones included.
    pub token_requests: u64,
    /// Successful authorization-code exchanges.
    pub token_code_ok: u64,
    /// `refresh_token` grant requests that got past fault injection.
    pub token_refresh: u64,
    /// Successful refreshes, grace replays included.
    pub token_refresh_ok: u64,
    /// `client_credentials` grant requests that got past fault injection.
    pub token_client_credentials: u64,
    /// Client-credentials tokens issued.
    pub token_client_credentials_ok: u64,
    /// Responses with `"error":"invalid_grant"`.
    pub invalid_grant: u64,
    /// Responses with `"error":"invalid_client"` (authorize and token).
    pub invalid_client: u64,
    /// Every `POST /graphql`.
    pub graphql: u64,
    /// Every `POST /oauth/revoke`.
    pub revoke: u64,
    /// Token and revoke requests answered by a fault knob, plus denied authorizations.
    pub faults_injected: u64,
    /// The `actor` parameter of the most recent authorize request.
    pub last_actor: Option<String>,
    /// The `prompt` parameter of the most recent authorize request.
    pub last_prompt: Option<String>,
}

/// A token pair minted directly by the admin API.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedTokens {
    pub access_token: String,
    /// Empty for a client-credentials token (Linear issues none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub refresh_token: String,
    pub expires_in: u64,
    pub scope: String,
}

impl fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedTokens")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}
