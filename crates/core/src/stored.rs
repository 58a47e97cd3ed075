//! The one stored-token schema: eleven required, non-empty string fields.
//!
//! A client-credentials token (issue 10) is the same object with an extra
//! `grant_type: "client_credentials"` and no `refresh_token` (Linear issues
//! none for that grant). Authorization-code tokens never get `grant_type`,
//! so they keep exactly the eleven fields old readers expect; old readers
//! reject a client-credentials token (no refresh token), which is the safe
//! outcome since they could not renew it. The client id and secret stay in
//! the secret for both grants: whoever renews a token (a refresh, or a new
//! client-credentials fetch) needs them, and the secret is already where the
//! client secret lives and is redacted.

use serde_json::{Map, Value};

use crate::{fingerprint, format_instant, AccessToken, ClientSecret, RefreshToken, TokenResponse};

/// The eleven fields, in the order they are written.
pub const FIELDS: [&str; 11] = [
    "access_token",
    "refresh_token",
    "expires_at",
    "scope",
    "client_id",
    "client_secret",
    "workspace_id",
    "workspace_slug",
    "installed_at",
    "updated_at",
    "installed_by_platform_user_id",
];

/// Fields (of the eleven, plus ones other writers add) whose values are not
/// secret: `inspect` shows them in clear and fingerprints every other string.
/// `grant_type` marks a client-credentials token (issue 10); `revoked_at`
/// a token whose workspace was revoked; `app_user_id` is the app user of an
/// `actor=app` install; the `reauthorization_required_*` pair marks a token
/// Linear refused for good.
pub const NON_SECRET_FIELDS: [&str; 13] = [
    "expires_at",
    "scope",
    "client_id",
    "workspace_id",
    "workspace_slug",
    "installed_at",
    "updated_at",
    "installed_by_platform_user_id",
    "grant_type",
    "revoked_at",
    "app_user_id",
    "reauthorization_required_at",
    "reauthorization_required_error",
];

/// The field that marks a token's grant; absent means authorization code.
pub const GRANT_TYPE_FIELD: &str = "grant_type";
/// Its value for a client-credentials token.
pub const CLIENT_CREDENTIALS: &str = "client_credentials";
/// Set (to the instant) by `revoke` on a secret it keeps: the secret itself
/// says its workspace was revoked, so paths that never read the registry (by
/// secret id) refuse it too. Every rewrite keeps it (it is an unknown field
/// to old writers as well); only a new install of the workspace clears it.
pub const REVOKED_AT_FIELD: &str = "revoked_at";

/// Set (to the instant) when Linear refused this token's credential for good
/// (`invalid_grant` after the re-read, or a refused client secret), beside
/// the registry's `reauthorization_required` status: the secret itself says
/// so, for the paths that never read the registry (by secret id) and for a
/// process that read the secret before the mark. Kept by every rewrite; only
/// a new install clears it.
pub const REAUTHORIZATION_AT_FIELD: &str = "reauthorization_required_at";
/// The OAuth error code of that refusal (`invalid_grant`, `invalid_client`).
pub const REAUTHORIZATION_ERROR_FIELD: &str = "reauthorization_required_error";

/// With `actor=app`, GraphQL's `viewer` is the app user (Linear's agents
/// page, <https://linear.app/developers/agents>, recommends storing its id
/// beside the token: it is who the app acts as, e.g. to tell its own
/// comments and assignments apart). Optional: never needed for validity,
/// absent for installs without `actor=app` and for older secrets.
pub const APP_USER_ID_FIELD: &str = "app_user_id";

/// How a stored token was obtained, and therefore how it is renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Browser install; renewed with its rotating refresh token.
    AuthorizationCode,
    /// Linear's client_credentials grant: no refresh token; renewed by
    /// fetching a new token with the client id and secret.
    ClientCredentials,
}

/// Whether `inspect` may show this field's value. Unknown fields are secret
/// until declared otherwise here (`old_refresh_token`, `id_token`, ...).
pub fn is_non_secret_field(name: &str) -> bool {
    NON_SECRET_FIELDS.contains(&name)
}

/// The one entry of `invalid-stored-token` when the secret is not JSON at all
/// (empty, truncated, binary).
pub const NOT_VALID_JSON: &str = "<not valid JSON>";
/// The one entry of `invalid-stored-token` when the secret is JSON but not an
/// object (`[]`, `null`, a string).
pub const NOT_A_JSON_OBJECT: &str = "<not a JSON object>";

/// Why a stored value is not a token. Messages never quote the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// Empty, truncated or otherwise unparseable.
    #[error("stored token is not valid JSON (empty or truncated?)")]
    NotJson,
    #[error("stored token is valid JSON but not a JSON object")]
    NotAnObject,
    /// Every missing, empty or non-string field, by name, in schema order.
    #[error("stored token has missing, empty or non-string fields: {}", .0.join(", "))]
    Fields(Vec<String>),
}

impl SchemaError {
    /// The bad field names; empty when the value is not a JSON object at all.
    pub fn fields(&self) -> Vec<String> {
        match self {
            Self::NotJson | Self::NotAnObject => Vec::new(),
            Self::Fields(f) => f.clone(),
        }
    }

    /// What a host reports as `invalid-stored-token`: the bad field names, or
    /// one [`NOT_VALID_JSON`] / [`NOT_A_JSON_OBJECT`] entry.
    pub fn problems(&self) -> Vec<String> {
        match self {
            Self::NotJson => vec![NOT_VALID_JSON.to_owned()],
            Self::NotAnObject => vec![NOT_A_JSON_OBJECT.to_owned()],
            Self::Fields(f) => f.clone(),
        }
    }
}

/// A stored value's fields as `inspect` shows them: the eleven in schema order,
/// then the others in stored order. Non-secret fields in clear (non-strings as
/// JSON); every other string as `[redacted sha256:<fingerprint>]`, every other
/// value as `[redacted]`. Empty when the value is not a JSON object.
pub fn inspect_fields(json: &str) -> Vec<(String, String)> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(json) else {
        return Vec::new();
    };
    let known = FIELDS.iter().filter_map(|f| map.get_key_value(*f));
    let unknown = map.iter().filter(|(k, _)| !FIELDS.contains(&k.as_str()));
    known
        .chain(unknown)
        .map(|(name, value)| {
            let shown = match (is_non_secret_field(name), value) {
                (true, Value::String(s)) => s.clone(),
                (true, other) => other.to_string(),
                (false, Value::String(s)) => format!("[redacted sha256:{}]", fingerprint(s)),
                (false, _) => "[redacted]".to_owned(),
            };
            (name.clone(), shown)
        })
        .collect()
}

/// A validated stored token. Fields it does not know are kept in `extra` and
/// written back unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredToken {
    pub access_token: AccessToken,
    /// Always present for [`Grant::AuthorizationCode`]; absent (or whatever
    /// was stored) for [`Grant::ClientCredentials`].
    pub refresh_token: Option<RefreshToken>,
    pub expires_at: String,
    pub scope: String,
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub workspace_id: String,
    pub workspace_slug: String,
    pub installed_at: String,
    pub updated_at: String,
    pub installed_by_platform_user_id: String,
    extra: Map<String, Value>,
}

/// What an install knows when it writes a token for the first time.
#[derive(Debug)]
pub struct InstallRecord<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a ClientSecret,
    pub workspace_id: &'a str,
    pub workspace_slug: &'a str,
    pub installed_by: &'a str,
    pub requested_scope: &'a str,
    pub grant: Grant,
    /// The app user's id ([`APP_USER_ID_FIELD`]), for an `actor=app` install.
    pub app_user_id: Option<&'a str>,
}

impl StoredToken {
    /// Validates the whole set at once so one read reports every problem.
    pub fn parse(json: &str) -> Result<Self, SchemaError> {
        let Value::Object(mut map) = serde_json::from_str::<Value>(json).map_err(|_| SchemaError::NotJson)? else {
            return Err(SchemaError::NotAnObject);
        };
        let non_empty = |v: Option<&Value>| matches!(v, Some(Value::String(s)) if !s.trim().is_empty());
        let grant = match map.get(GRANT_TYPE_FIELD) {
            None => Some(Grant::AuthorizationCode),
            Some(Value::String(g)) if g == CLIENT_CREDENTIALS => Some(Grant::ClientCredentials),
            Some(Value::String(g)) if g == "authorization_code" => Some(Grant::AuthorizationCode),
            Some(_) => None,
        };
        let mut bad: Vec<String> = FIELDS
            .iter()
            .filter(|f| !(grant == Some(Grant::ClientCredentials) && **f == "refresh_token"))
            .filter(|f| !non_empty(map.get(**f)))
            .map(|f| (*f).to_owned())
            .collect();
        if grant.is_none() {
            bad.push(GRANT_TYPE_FIELD.to_owned());
        }
        if !bad.is_empty() {
            return Err(SchemaError::Fields(bad));
        }
        // A client-credentials token's refresh token is kept only if usable.
        let refresh_token = match map.remove("refresh_token") {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(RefreshToken::new(s)),
            Some(other) => {
                map.insert("refresh_token".to_owned(), other);
                None
            }
            None => None,
        };
        let mut take = |f: &str| match map.remove(f) {
            Some(Value::String(s)) => s,
            _ => unreachable!("validated above"),
        };
        Ok(Self {
            access_token: AccessToken::new(take("access_token")),
            refresh_token,
            expires_at: take("expires_at"),
            scope: take("scope"),
            client_id: take("client_id"),
            client_secret: ClientSecret::new(take("client_secret")),
            workspace_id: take("workspace_id"),
            workspace_slug: take("workspace_slug"),
            installed_at: take("installed_at"),
            updated_at: take("updated_at"),
            installed_by_platform_user_id: take("installed_by_platform_user_id"),
            extra: map,
        })
    }

    /// The JSON to store: the eleven fields in schema order (`refresh_token`
    /// left out when there is none), then unknown ones.
    pub fn to_json(&self) -> String {
        let mut map = Map::new();
        let fields = [
            self.access_token.secret(),
            self.refresh_token.as_ref().map_or("", RefreshToken::secret),
            &self.expires_at,
            &self.scope,
            &self.client_id,
            self.client_secret.secret(),
            &self.workspace_id,
            &self.workspace_slug,
            &self.installed_at,
            &self.updated_at,
            &self.installed_by_platform_user_id,
        ];
        for (name, value) in FIELDS.iter().zip(fields) {
            if *name == "refresh_token" && self.refresh_token.is_none() {
                continue;
            }
            map.insert((*name).to_owned(), Value::String(value.to_owned()));
        }
        for (k, v) in &self.extra {
            map.insert(k.clone(), v.clone());
        }
        Value::Object(map).to_string()
    }

    /// Takes `other`'s unknown fields (a concurrent writer may have added some).
    pub fn clone_extra_from(&mut self, other: &StoredToken) {
        self.extra = other.extra.clone();
    }

    /// Unknown fields, kept for forward compatibility.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }

    /// When `revoke` marked this token revoked, if it did: such a token is
    /// never served or refreshed.
    pub fn revoked_at(&self) -> Option<&str> {
        match self.extra.get(REVOKED_AT_FIELD) {
            Some(Value::String(at)) => Some(at),
            // Any other value still marks it: fail closed.
            Some(_) => Some("(unreadable instant)"),
            None => None,
        }
    }

    /// The app user an `actor=app` install acts as, if it was stored.
    pub fn app_user_id(&self) -> Option<&str> {
        self.extra.get(APP_USER_ID_FIELD).and_then(Value::as_str)
    }

    /// When and why Linear refused this token for good, if it did: such a
    /// token is never served or refreshed again.
    pub fn reauthorization_required(&self) -> Option<(&str, &str)> {
        let text = |f: &str| match self.extra.get(f) {
            Some(Value::String(s)) => s.as_str(),
            _ => "(unreadable)",
        };
        // Any value marks it: fail closed.
        self.extra
            .contains_key(REAUTHORIZATION_AT_FIELD)
            .then(|| (text(REAUTHORIZATION_AT_FIELD), text(REAUTHORIZATION_ERROR_FIELD)))
    }

    /// The same token marked refused for good at `at` with OAuth error `code`.
    pub fn marked_reauthorization_required(&self, at: &str, code: &str) -> Self {
        let mut t = self.clone();
        t.extra.insert(REAUTHORIZATION_AT_FIELD.to_owned(), Value::String(at.to_owned()));
        t.extra.insert(REAUTHORIZATION_ERROR_FIELD.to_owned(), Value::String(code.to_owned()));
        t
    }

    /// The same token marked revoked at `at`.
    pub fn marked_revoked(&self, at: &str) -> Self {
        let mut t = self.clone();
        t.extra.insert(REVOKED_AT_FIELD.to_owned(), Value::String(at.to_owned()));
        t
    }

    /// How this token is renewed (validated by [`Self::parse`]).
    pub fn grant(&self) -> Grant {
        match self.extra.get(GRANT_TYPE_FIELD) {
            Some(Value::String(g)) if g == CLIENT_CREDENTIALS => Grant::ClientCredentials,
            _ => Grant::AuthorizationCode,
        }
    }

    /// The credential that changes exactly when somebody renews this token:
    /// the refresh token (it rotates on every refresh), or for a
    /// client-credentials token the access token itself. Two reads with the
    /// same lineage mean nobody renewed in between.
    pub fn lineage(&self) -> &str {
        match (self.grant(), &self.refresh_token) {
            (Grant::AuthorizationCode, Some(r)) => r.secret(),
            _ => self.access_token.secret(),
        }
    }

    /// The token after a successful refresh: rotated refresh token (the old one
    /// when Linear sent none), new expiry, scope from the response or the old
    /// one, `updated_at = now`; `installed_at` and unknown fields preserved.
    pub fn refreshed(&self, resp: &TokenResponse, now_ms: i64) -> Self {
        Self {
            access_token: resp.access_token.clone(),
            refresh_token: resp.refresh_token.clone().or_else(|| self.refresh_token.clone()),
            expires_at: resp.expires_at(now_ms),
            scope: resp.scope.clone().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| self.scope.clone()),
            updated_at: format_instant(now_ms),
            ..self.clone()
        }
    }

    /// A freshly installed token. `previous` (the secret being replaced, if it
    /// parsed) donates its unknown fields, except its grant marker (the grant
    /// is this install's), its revoked and reauthorization marks (a new
    /// install is a new grant) and its app user (this install's, if any). An authorization-code
    /// install needs a refresh token; a client-credentials one drops any
    /// (Linear sends none).
    pub fn installed(
        resp: &TokenResponse,
        rec: &InstallRecord<'_>,
        previous: Option<&StoredToken>,
        now_ms: i64,
    ) -> Result<Self, SchemaError> {
        let refresh = match rec.grant {
            Grant::AuthorizationCode => match resp.refresh_token.clone() {
                Some(r) => Some(r),
                None => return Err(SchemaError::Fields(vec!["refresh_token".into()])),
            },
            Grant::ClientCredentials => None,
        };
        let mut extra = previous.map(|p| p.extra.clone()).unwrap_or_default();
        extra.remove(GRANT_TYPE_FIELD);
        extra.remove(REVOKED_AT_FIELD);
        extra.remove(APP_USER_ID_FIELD);
        extra.remove(REAUTHORIZATION_AT_FIELD);
        extra.remove(REAUTHORIZATION_ERROR_FIELD);
        if let Some(id) = rec.app_user_id {
            extra.insert(APP_USER_ID_FIELD.to_owned(), Value::String(id.to_owned()));
        }
        if rec.grant == Grant::ClientCredentials {
            extra.insert(GRANT_TYPE_FIELD.to_owned(), Value::String(CLIENT_CREDENTIALS.to_owned()));
        }
        let now = format_instant(now_ms);
        let scope = resp.scope.clone().filter(|s| !s.trim().is_empty());
        let token = Self {
            access_token: resp.access_token.clone(),
            refresh_token: refresh,
            expires_at: resp.expires_at(now_ms),
            scope: scope.unwrap_or_else(|| rec.requested_scope.to_owned()),
            client_id: rec.client_id.to_owned(),
            client_secret: rec.client_secret.clone(),
            workspace_id: rec.workspace_id.to_owned(),
            workspace_slug: rec.workspace_slug.to_owned(),
            installed_at: now.clone(),
            updated_at: now,
            installed_by_platform_user_id: rec.installed_by.to_owned(),
            extra,
        };
        // Round-trip through the validator so an install can never write a
        // token that a resolver would later reject.
        Self::parse(&token.to_json())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::parse_instant;

    pub(crate) fn sample() -> String {
        serde_json::json!({
            "access_token": "lin_oauth_A",
            "refresh_token": "lin_refresh_R",
            "expires_at": "2026-01-01T00:00:00.000Z",
            "scope": "read write",
            "client_id": "cid",
            "client_secret": "csecret",
            "workspace_id": "org-1",
            "workspace_slug": "acme",
            "installed_at": "2025-01-01T00:00:00.000Z",
            "updated_at": "2025-06-01T00:00:00.000Z",
            "installed_by_platform_user_id": "user-1",
            "future_field": {"nested": [1, 2]}
        })
        .to_string()
    }

    #[test]
    fn parses_and_round_trips_unknown_fields() {
        let t = StoredToken::parse(&sample()).unwrap();
        assert_eq!(t.workspace_slug, "acme");
        let again: Value = serde_json::from_str(&t.to_json()).unwrap();
        assert_eq!(again["future_field"]["nested"][1], 2);
        assert_eq!(StoredToken::parse(&t.to_json()).unwrap(), t);
    }

    #[test]
    fn reports_every_bad_field() {
        let mut v: Value = serde_json::from_str(&sample()).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("refresh_token");
        o.insert("scope".into(), "".into());
        o.insert("workspace_id".into(), 42.into());
        o.insert("updated_at".into(), Value::Null);
        let err = StoredToken::parse(&v.to_string()).unwrap_err();
        assert_eq!(err.fields(), vec!["refresh_token", "scope", "workspace_id", "updated_at"]);
        assert!(!err.to_string().contains("lin_oauth_A"));
    }

    #[test]
    fn not_an_object() {
        for v in ["[]", "null", "\"x\"", "42"] {
            assert_eq!(StoredToken::parse(v), Err(SchemaError::NotAnObject), "{v}");
        }
        assert_eq!(StoredToken::parse("nope"), Err(SchemaError::NotJson));
        assert_eq!(SchemaError::NotAnObject.problems(), vec![NOT_A_JSON_OBJECT]);
        assert_eq!(SchemaError::NotJson.problems(), vec![NOT_VALID_JSON]);
        assert!(SchemaError::NotJson.fields().is_empty());
    }

    #[test]
    fn inspect_fingerprints_everything_not_known_to_be_public() {
        let mut v: Value = serde_json::from_str(&sample()).unwrap();
        let o = v.as_object_mut().unwrap();
        o.insert("old_refresh_token".into(), "lin_refresh_OLD".into());
        o.insert("id_token".into(), "eyJhbGciOi.canary".into());
        o.insert("grant_type".into(), "client_credentials".into());
        o.insert("scope".into(), serde_json::json!(["read"]));
        let json = v.to_string();
        let shown = inspect_fields(&json);
        let get = |k: &str| shown.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap();
        for secret in ["access_token", "refresh_token", "client_secret", "old_refresh_token", "id_token"] {
            assert!(get(secret).starts_with("[redacted sha256:"), "{secret}: {}", get(secret));
        }
        assert_eq!(get("old_refresh_token"), format!("[redacted sha256:{}]", fingerprint("lin_refresh_OLD")));
        assert_eq!(get("future_field"), "[redacted]");
        assert_eq!(get("workspace_slug"), "acme");
        assert_eq!(get("grant_type"), "client_credentials");
        assert_eq!(get("scope"), r#"["read"]"#);
        let all = format!("{shown:?}");
        for canary in ["lin_oauth_A", "lin_refresh_R", "csecret", "lin_refresh_OLD", "canary", "nested"] {
            assert!(!all.contains(canary), "{canary} in {all}");
        }
        // Schema order first, then the rest in stored order.
        let names: Vec<&str> = shown.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(&names[..11], &FIELDS[..]);
        assert_eq!(&names[11..], ["future_field", "old_refresh_token", "id_token", "grant_type"]);
        assert!(inspect_fields("[]").is_empty() && inspect_fields("").is_empty());
    }

    #[test]
    fn refresh_merge_rules() {
        let t = StoredToken::parse(&sample()).unwrap();
        let now = 1_800_000_000_000;
        let rotated = TokenResponse::for_tests("lin_oauth_B", Some("lin_refresh_S"), 3600, None);
        let r = t.refreshed(&rotated, now);
        assert_eq!(r.access_token.secret(), "lin_oauth_B");
        assert_eq!(r.refresh_token.as_ref().unwrap().secret(), "lin_refresh_S");
        assert_eq!(parse_instant(&r.expires_at), Some(now + 3_600_000));
        assert_eq!(r.scope, "read write", "scope kept when the response has none");
        assert_eq!(r.installed_at, t.installed_at);
        assert_eq!(r.updated_at, format_instant(now));
        assert_eq!(r.extra(), t.extra());

        let no_rotation = TokenResponse::for_tests("lin_oauth_C", None, 60, Some("read"));
        let r2 = t.refreshed(&no_rotation, now);
        assert_eq!(r2.refresh_token.as_ref().unwrap().secret(), "lin_refresh_R", "old refresh token kept");
        assert_eq!(r2.scope, "read");
    }

    /// What an install of workspace `org` (`acme`) by `u1` knows.
    fn record(secret: &ClientSecret, grant: Grant) -> InstallRecord<'_> {
        InstallRecord {
            client_id: "cid",
            client_secret: secret,
            workspace_id: "org",
            workspace_slug: "acme",
            installed_by: "u1",
            requested_scope: "read",
            grant,
            app_user_id: None,
        }
    }

    #[test]
    fn install_builds_a_valid_token() {
        let resp = TokenResponse::for_tests("a", Some("r"), 86399, Some("read write"));
        let secret = ClientSecret::new("cs");
        let rec = record(&secret, Grant::AuthorizationCode);
        let t = StoredToken::installed(&resp, &rec, None, 0).unwrap();
        assert_eq!(t.installed_at, "1970-01-01T00:00:00.000Z");
        assert_eq!(t.scope, "read write");
        let no_refresh = TokenResponse::for_tests("a", None, 1, None);
        assert!(StoredToken::installed(&no_refresh, &rec, None, 0).is_err());
    }

    #[test]
    fn a_new_install_clears_the_revoked_mark_and_every_rewrite_keeps_it() {
        let resp = TokenResponse::for_tests("a", Some("r"), 86399, Some("read"));
        let secret = ClientSecret::new("cs");
        let rec = record(&secret, Grant::AuthorizationCode);
        let revoked = StoredToken::installed(&resp, &rec, None, 0).unwrap().marked_revoked("2026-01-01T00:00:00.000Z");
        assert_eq!(revoked.revoked_at(), Some("2026-01-01T00:00:00.000Z"));
        let reread = StoredToken::parse(&revoked.to_json()).unwrap();
        assert_eq!(reread.revoked_at(), revoked.revoked_at(), "kept through a write and a read");
        assert_eq!(reread.refreshed(&resp, 1).revoked_at(), revoked.revoked_at(), "kept by a refresh");
        let reinstalled = StoredToken::installed(&resp, &rec, Some(&reread), 0).unwrap();
        assert_eq!(reinstalled.revoked_at(), None);
        // A mark that is not a string still marks the token.
        let mut v: Value = serde_json::from_str(&revoked.to_json()).unwrap();
        v["revoked_at"] = Value::Bool(true);
        assert!(StoredToken::parse(&v.to_string()).unwrap().revoked_at().is_some());
    }

    #[test]
    fn app_user_id_is_stored_shown_in_clear_and_replaced_by_each_install() {
        let resp = TokenResponse::for_tests("a", Some("r"), 86399, Some("read"));
        let secret = ClientSecret::new("cs");
        let rec = InstallRecord { app_user_id: Some("app-user-1"), ..record(&secret, Grant::AuthorizationCode) };
        let t = StoredToken::installed(&resp, &rec, None, 0).unwrap();
        assert_eq!(t.app_user_id(), Some("app-user-1"));
        let json = t.to_json();
        assert_eq!(StoredToken::parse(&json).unwrap().app_user_id(), Some("app-user-1"), "kept through a read");
        assert_eq!(t.refreshed(&resp, 1).app_user_id(), Some("app-user-1"), "kept by a refresh");
        let shown = inspect_fields(&json);
        assert!(shown.contains(&("app_user_id".to_owned(), "app-user-1".to_owned())), "{shown:?}");
        // An install without actor=app has no app user: the old one goes.
        let plain = StoredToken::installed(&resp, &record(&secret, Grant::AuthorizationCode), Some(&t), 0).unwrap();
        assert_eq!(plain.app_user_id(), None);
        // Never required: a token without it is valid.
        assert!(StoredToken::parse(&sample()).unwrap().app_user_id().is_none());
    }

    #[test]
    fn the_reauthorization_mark_is_kept_by_rewrites_and_cleared_by_an_install() {
        let resp = TokenResponse::for_tests("a", Some("r"), 86399, Some("read"));
        let secret = ClientSecret::new("cs");
        let rec = record(&secret, Grant::AuthorizationCode);
        let t = StoredToken::installed(&resp, &rec, None, 0).unwrap();
        assert_eq!(t.reauthorization_required(), None);
        let dead = t.marked_reauthorization_required("2026-01-01T00:00:00.000Z", "invalid_grant");
        let reread = StoredToken::parse(&dead.to_json()).unwrap();
        assert_eq!(reread.reauthorization_required(), Some(("2026-01-01T00:00:00.000Z", "invalid_grant")));
        assert!(reread.refreshed(&resp, 1).reauthorization_required().is_some(), "kept by a rewrite");
        let shown = inspect_fields(&dead.to_json());
        assert!(
            shown.contains(&("reauthorization_required_error".to_owned(), "invalid_grant".to_owned())),
            "{shown:?}"
        );
        let reinstalled = StoredToken::installed(&resp, &rec, Some(&reread), 0).unwrap();
        assert_eq!(reinstalled.reauthorization_required(), None);
        // A mark that is not a string still marks the token.
        let mut v: Value = serde_json::from_str(&dead.to_json()).unwrap();
        v["reauthorization_required_at"] = Value::Bool(true);
        assert!(StoredToken::parse(&v.to_string()).unwrap().reauthorization_required().is_some());
    }

    fn client_credentials_sample() -> Value {
        let mut v: Value = serde_json::from_str(&sample()).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("refresh_token");
        o.insert("grant_type".into(), "client_credentials".into());
        v
    }

    #[test]
    fn client_credentials_token_needs_no_refresh_token() {
        let v = client_credentials_sample();
        let t = StoredToken::parse(&v.to_string()).unwrap();
        assert_eq!(t.grant(), Grant::ClientCredentials);
        assert!(t.refresh_token.is_none());
        assert_eq!(t.lineage(), "lin_oauth_A", "a new client-credentials token is a new access token");
        let written: Value = serde_json::from_str(&t.to_json()).unwrap();
        assert!(written.get("refresh_token").is_none());
        assert_eq!(written["grant_type"], "client_credentials");
        assert_eq!(StoredToken::parse(&t.to_json()).unwrap(), t);
        // A fetch keeps the grant and still has no refresh token.
        let r = t.refreshed(&TokenResponse::for_tests("lin_oauth_B", None, 2_591_999, None), 0);
        assert_eq!(
            (r.grant(), r.refresh_token.is_none(), r.lineage()),
            (Grant::ClientCredentials, true, "lin_oauth_B")
        );

        // Every other field is still required, and an unknown grant is refused
        // (and then, not knowing the grant, the refresh token is required).
        let mut bad = client_credentials_sample();
        bad.as_object_mut().unwrap().remove("client_secret");
        assert_eq!(StoredToken::parse(&bad.to_string()).unwrap_err().fields(), vec!["client_secret"]);
        bad["grant_type"] = "password".into();
        assert_eq!(
            StoredToken::parse(&bad.to_string()).unwrap_err().fields(),
            vec!["refresh_token", "client_secret", "grant_type"]
        );
    }

    #[test]
    fn authorization_code_tokens_keep_exactly_the_eleven_fields() {
        let resp = TokenResponse::for_tests("a", Some("r"), 86399, Some("read"));
        let secret = ClientSecret::new("cs");
        let mut rec = record(&secret, Grant::ClientCredentials);
        let cc = StoredToken::installed(&resp, &rec, None, 0).unwrap();
        assert!(cc.refresh_token.is_none(), "Linear sends none; any other is dropped");
        assert_eq!(cc.grant(), Grant::ClientCredentials);
        // Reinstalling with a browser over a client-credentials secret drops the marker.
        rec.grant = Grant::AuthorizationCode;
        let t = StoredToken::installed(&resp, &rec, Some(&cc), 0).unwrap();
        let written: Value = serde_json::from_str(&t.to_json()).unwrap();
        let mut keys: Vec<&str> = written.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut expected = FIELDS.to_vec();
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(t.grant(), Grant::AuthorizationCode);
        assert_eq!(t.lineage(), "r");
    }

    #[test]
    fn empty_or_truncated_secret_is_not_json_not_eleven_missing_fields() {
        let truncated = &sample()[..40];
        for bad in ["", "   ", truncated] {
            let err = StoredToken::parse(bad).unwrap_err();
            assert!(err.to_string().contains("not valid JSON"), "{bad:?}: {err}");
            assert_ne!(err.fields().len(), 11, "{bad:?}");
            assert_eq!(err.problems(), vec![NOT_VALID_JSON], "{bad:?}");
        }
    }
}
