//! Token endpoint requests and answers (RFC 6749 sections 4.1.3, 5.1, 5.2, 6)
//! and the GraphQL identity query. Revocation is in `revoke.rs`.

use serde_json::Value;

use crate::{format_instant, AccessToken, AuthCode, ClientSecret, PkceVerifier, RefreshToken};

/// A successful token response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: AccessToken,
    pub token_type: Option<String>,
    pub expires_in: u64,
    pub scope: Option<String>,
    pub refresh_token: Option<RefreshToken>,
}

impl TokenResponse {
    pub fn expires_at(&self, now_ms: i64) -> String {
        let secs = i64::try_from(self.expires_in).unwrap_or(i64::MAX / 2_000);
        format_instant(now_ms.saturating_add(secs.saturating_mul(1000)))
    }

    #[cfg(test)]
    pub(crate) fn for_tests(access: &str, refresh: Option<&str>, expires_in: u64, scope: Option<&str>) -> Self {
        Self {
            access_token: AccessToken::new(access),
            token_type: Some("Bearer".into()),
            expires_in,
            scope: scope.map(str::to_owned),
            refresh_token: refresh.map(RefreshToken::new),
        }
    }
}

/// A token endpoint answer that is not a usable token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointFailure {
    /// Non-2xx, with the RFC 6749 section 5.2 fields when the body had them.
    Error { status: u16, code: Option<String>, description: Option<String> },
    /// 2xx but not a token: not JSON, or `access_token`/`expires_in` missing.
    Malformed(String),
}

impl EndpointFailure {
    /// Replaces any of `secrets` that the server echoed back with `[redacted]`:
    /// error texts travel into logs and exceptions.
    pub fn redacted(self, secrets: &[&str]) -> Self {
        let scrub = |t: String| {
            secrets.iter().filter(|s| s.len() >= 4).fold(t, |t, s| t.replace(*s, "[redacted]"))
        };
        match self {
            Self::Error { status, code, description } => {
                Self::Error { status, code: code.map(scrub), description: description.map(scrub) }
            }
            Self::Malformed(m) => Self::Malformed(scrub(m)),
        }
    }

    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, Self::Error { code: Some(c), .. } if c == "invalid_grant")
    }
}

fn str_field(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Interprets a token endpoint answer. Bodies are never echoed: they can hold tokens.
pub fn parse_token_response(status: u16, body: &[u8]) -> Result<TokenResponse, EndpointFailure> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    if !(200..300).contains(&status) {
        let (code, description) = match &json {
            Some(v) => (str_field(v, "error"), str_field(v, "error_description")),
            None => (None, None),
        };
        return Err(EndpointFailure::Error { status, code, description });
    }
    let Some(v) = json.filter(Value::is_object) else {
        return Err(EndpointFailure::Malformed("token response is not a JSON object".into()));
    };
    let access = str_field(&v, "access_token")
        .ok_or_else(|| EndpointFailure::Malformed("token response has no access_token".into()))?;
    let expires_in = match v.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| EndpointFailure::Malformed("token response has no valid expires_in".into()))?;
    Ok(TokenResponse {
        access_token: AccessToken::new(access),
        token_type: str_field(&v, "token_type"),
        expires_in,
        scope: str_field(&v, "scope"),
        refresh_token: str_field(&v, "refresh_token").map(RefreshToken::new),
    })
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

pub fn refresh_form(refresh: &RefreshToken, client_id: &str, client_secret: &ClientSecret) -> String {
    form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.secret()),
        ("client_id", client_id),
        ("client_secret", client_secret.secret()),
    ])
}

pub fn code_exchange_form(
    code: &AuthCode,
    verifier: &PkceVerifier,
    redirect_uri: &str,
    client_id: &str,
    client_secret: &ClientSecret,
) -> String {
    form(&[
        ("grant_type", "authorization_code"),
        ("code", code.secret()),
        ("code_verifier", verifier.secret()),
        ("redirect_uri", redirect_uri),
        ("client_id", client_id),
        ("client_secret", client_secret.secret()),
    ])
}

/// Who installed, and which workspace.
pub const IDENTITY_QUERY: &str =
    r#"{"query":"query { viewer { id name email } organization { id name urlKey } }"}"#;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub viewer_id: String,
    pub viewer_name: String,
    pub viewer_email: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub workspace_slug: String,
}

pub fn parse_identity(body: &[u8]) -> Result<Identity, String> {
    let v: Value = serde_json::from_slice(body).map_err(|_| "GraphQL answer is not JSON".to_owned())?;
    if let Some(msg) = v.pointer("/errors/0/message").and_then(Value::as_str) {
        return Err(format!("GraphQL error: {msg}"));
    }
    let get = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("GraphQL answer lacks {p}"))
    };
    Ok(Identity {
        viewer_id: get("/data/viewer/id")?,
        viewer_name: get("/data/viewer/name").unwrap_or_default(),
        viewer_email: get("/data/viewer/email").unwrap_or_default(),
        workspace_id: get("/data/organization/id")?,
        workspace_name: get("/data/organization/name").unwrap_or_default(),
        workspace_slug: get("/data/organization/urlKey")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success() {
        let body = br#"{"access_token":"a","token_type":"Bearer","expires_in":86399,"scope":"read write","refresh_token":"r"}"#;
        let t = parse_token_response(200, body).unwrap();
        assert_eq!(t.expires_in, 86399);
        assert_eq!(t.refresh_token.unwrap().secret(), "r");
        assert_eq!(t.scope.as_deref(), Some("read write"));
    }

    #[test]
    fn refresh_token_may_be_absent() {
        let t = parse_token_response(200, br#"{"access_token":"a","expires_in":"60"}"#).unwrap();
        assert!(t.refresh_token.is_none());
        assert_eq!(t.expires_in, 60);
    }

    #[test]
    fn malformed_success() {
        assert!(matches!(parse_token_response(200, b"{\"access_token\": \"x\""), Err(EndpointFailure::Malformed(_))));
        assert!(matches!(parse_token_response(200, br#"{"expires_in":1}"#), Err(EndpointFailure::Malformed(_))));
        assert!(matches!(parse_token_response(200, br#"{"access_token":"a"}"#), Err(EndpointFailure::Malformed(_))));
        let Err(EndpointFailure::Malformed(m)) = parse_token_response(200, br#"{"access_token":"lin_secret"}"#) else { panic!() };
        assert!(!m.contains("lin_secret"));
    }

    #[test]
    fn oauth_errors() {
        let e = parse_token_response(400, br#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#).unwrap_err();
        assert!(e.is_invalid_grant());
        assert_eq!(e, EndpointFailure::Error {
            status: 400,
            code: Some("invalid_grant".into()),
            description: Some("Token has been expired or revoked.".into())
        });
        let e = parse_token_response(502, b"<html>bad gateway</html>").unwrap_err();
        assert_eq!(e, EndpointFailure::Error { status: 502, code: None, description: None });
        assert!(!e.is_invalid_grant());
    }

    #[test]
    fn echoed_secrets_are_redacted() {
        let e = parse_token_response(400, br#"{"error":"bad","error_description":"refresh lin_refresh_XYZ for s3cret"}"#).unwrap_err();
        let EndpointFailure::Error { description, .. } = e.redacted(&["lin_refresh_XYZ", "s3cret", ""]) else { panic!() };
        assert_eq!(description.as_deref(), Some("refresh [redacted] for [redacted]"));
    }

    #[test]
    fn forms_are_encoded() {
        let f = refresh_form(&RefreshToken::new("r+/="), "cid", &ClientSecret::new("s&x"));
        assert_eq!(f, "grant_type=refresh_token&refresh_token=r%2B%2F%3D&client_id=cid&client_secret=s%26x");
        let f = code_exchange_form(&AuthCode::new("c"), &PkceVerifier::new("v"), "http://localhost:8080/oauth/callback", "cid", &ClientSecret::new("s"));
        assert!(f.starts_with("grant_type=authorization_code&code=c&code_verifier=v&redirect_uri=http%3A%2F%2Flocalhost%3A8080%2Foauth%2Fcallback"));
    }

    #[test]
    fn identity() {
        let body = br#"{"data":{"viewer":{"id":"u","name":"N","email":"e@x"},"organization":{"id":"o","name":"Org","urlKey":"acme"}}}"#;
        let id = parse_identity(body).unwrap();
        assert_eq!(id.workspace_slug, "acme");
        assert!(parse_identity(br#"{"errors":[{"message":"Authentication required"}]}"#).unwrap_err().contains("Authentication"));
    }
}
