//! Token endpoint requests and answers (RFC 6749 sections 4.1.3, 5.1, 5.2, 6)
//! and the GraphQL identity query. Revocation is in `revoke.rs`.

use serde_json::Value;

use crate::{
    format_instant, normalize_scopes, redact, AccessToken, AuthCode, ClientSecret, PkceVerifier, RefreshToken,
};

/// Longest access or refresh token accepted. Linear's are well under 100
/// characters; anything near this is not a token.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Longest `expires_in` accepted, in seconds: ten years of 366 days. Linear's
/// legacy long-lived tokens carry 315705599; a larger value is a broken answer
/// (and `1e20` once turned into an `expires_at` in 1970).
pub const MAX_EXPIRES_IN_S: u64 = 10 * 366 * 86_400;

/// A successful token response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: AccessToken,
    pub token_type: Option<String>,
    /// Seconds, `1..=MAX_EXPIRES_IN_S` when parsed.
    pub expires_in: u64,
    /// Space-separated, already normalized; `None` when absent or unusable.
    pub scope: Option<String>,
    pub refresh_token: Option<RefreshToken>,
}

impl TokenResponse {
    /// `now + expires_in`, computed exactly and clamped to what an instant
    /// can spell: never wraps, never falls back to 1970.
    pub fn expires_at(&self, now_ms: i64) -> String {
        let at = i128::from(now_ms) + i128::from(self.expires_in) * 1000;
        format_instant(i64::try_from(at).unwrap_or(if at < 0 { i64::MIN } else { i64::MAX }))
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
    /// 2xx but not a usable token: not JSON, a token field missing or not
    /// RFC 6750 characters, `expires_in` out of range, a non-string `refresh_token`.
    Malformed(String),
}

impl EndpointFailure {
    /// Replaces every spelling of any of `secrets` that the server echoed back
    /// (see [`redact`]): error texts travel into logs and exceptions.
    pub fn redacted(self, secrets: &[&str]) -> Self {
        let scrub = |t: String| redact(&t, secrets);
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

/// RFC 6750 section 2.1 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~"
/// / "+" / "/" ) *"="`, at most [`MAX_TOKEN_LEN`]. Anything else (CR, LF, NUL,
/// spaces, quotes) would be a header injection for callers that paste the
/// token into `Authorization: Bearer …`.
pub fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    s.len() <= MAX_TOKEN_LEN
        && !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

fn malformed(m: &str) -> EndpointFailure {
    EndpointFailure::Malformed(m.to_owned())
}

/// A positive JSON integer (or a string of ASCII digits, which some servers
/// send) up to [`MAX_EXPIRES_IN_S`]. Fractions, exponents (`1e20`, and also
/// `3600.0`: Linear sends integers), signs and zero are refused.
fn expires_in(v: Option<&Value>) -> Option<u64> {
    let secs = match v? {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok()?,
        _ => return None,
    };
    (1..=MAX_EXPIRES_IN_S).contains(&secs).then_some(secs)
}

/// A string (space- or comma-separated) or, for apps created before
/// 2023-12-01, an array of strings; normalized to single spaces.
///
/// Anything else (a number, an object, an array holding a non-string) counts
/// as absent, so the stored scope is kept, rather than as a malformed answer:
/// by the time the answer is read Linear has already rotated the refresh
/// token, so refusing an otherwise good answer over an informational field
/// would throw away the only copy of the new token.
fn scope(v: Option<&Value>) -> Option<String> {
    let parts: Vec<&str> = match v? {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().map(Value::as_str).collect::<Option<_>>()?,
        _ => return None,
    };
    let joined = normalize_scopes(&parts).join(" ");
    (!joined.is_empty()).then_some(joined)
}

/// Interprets a token endpoint answer. Bodies and token values are never
/// echoed in errors: they can hold tokens.
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
        return Err(malformed("token response is not a JSON object"));
    };
    let access =
        match v.get("access_token") {
            None | Some(Value::Null) => return Err(malformed("token response has no access_token")),
            Some(Value::String(s)) if is_b64token(s) => s.clone(),
            Some(_) => return Err(malformed(
                "token response has an access_token that is not a string of RFC 6750 token characters (at most 4096)",
            )),
        };
    let expires_in = expires_in(v.get("expires_in")).ok_or_else(|| {
        malformed("token response has no valid expires_in (a positive integer of seconds, at most 10 years)")
    })?;
    // Absent or null: Linear did not rotate, keep the old one. Anything else
    // that is not a token must not be mistaken for "absent": the old refresh
    // token is spent by now, and keeping it would break the chain silently.
    let refresh_token =
        match v.get("refresh_token") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if is_b64token(s) => Some(RefreshToken::new(s.clone())),
            Some(_) => return Err(malformed(
                "token response has a refresh_token that is not a string of RFC 6750 token characters (at most 4096)",
            )),
        };
    Ok(TokenResponse {
        access_token: AccessToken::new(access),
        token_type: str_field(&v, "token_type"),
        expires_in,
        scope: scope(v.get("scope")),
        refresh_token,
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

/// Linear's client_credentials grant: `scope` is required, the client
/// authenticates with body fields (Basic is accepted too; the body matches
/// the refresh request).
pub fn client_credentials_form(scope: &str, client_id: &str, client_secret: &ClientSecret) -> String {
    form(&[
        ("grant_type", "client_credentials"),
        ("scope", scope),
        ("client_id", client_id),
        ("client_secret", client_secret.secret()),
    ])
}

/// Whether a client_credentials request failed because the app does not
/// allow the grant. Linear answers `{"error":"Error","error_description":
/// "Client does not support the client_credentials grant type"}`: the code is
/// generic, so the description is the only signal; RFC 6749's own codes for
/// the case (`unauthorized_client`, `unsupported_grant_type`) count too.
pub fn client_credentials_disabled(f: &EndpointFailure) -> bool {
    let EndpointFailure::Error { code, description, .. } = f else { return false };
    let code = code.as_deref().unwrap_or_default();
    let description = description.as_deref().unwrap_or_default();
    code == "unauthorized_client"
        || code == "unsupported_grant_type"
        || (description.contains("client_credentials") && description.contains("does not support"))
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
pub const IDENTITY_QUERY: &str = r#"{"query":"query { viewer { id name email } organization { id name urlKey } }"}"#;

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
        v.pointer(p).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| format!("GraphQL answer lacks {p}"))
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
        let Err(EndpointFailure::Malformed(m)) = parse_token_response(200, br#"{"access_token":"lin_secret"}"#) else {
            panic!()
        };
        assert!(!m.contains("lin_secret"));
    }

    #[test]
    fn oauth_errors() {
        let e = parse_token_response(
            400,
            br#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
        )
        .unwrap_err();
        assert!(e.is_invalid_grant());
        assert_eq!(
            e,
            EndpointFailure::Error {
                status: 400,
                code: Some("invalid_grant".into()),
                description: Some("Token has been expired or revoked.".into())
            }
        );
        let e = parse_token_response(502, b"<html>bad gateway</html>").unwrap_err();
        assert_eq!(e, EndpointFailure::Error { status: 502, code: None, description: None });
        assert!(!e.is_invalid_grant());
    }

    #[test]
    fn echoed_secrets_are_redacted() {
        let e =
            parse_token_response(400, br#"{"error":"bad","error_description":"refresh lin_refresh_XYZ for s3cret"}"#)
                .unwrap_err();
        let EndpointFailure::Error { description, .. } = e.redacted(&["lin_refresh_XYZ", "s3cret", ""]) else {
            panic!()
        };
        assert_eq!(description.as_deref(), Some("refresh [redacted] for [redacted]"));
    }

    #[test]
    fn forms_are_encoded() {
        let f = refresh_form(&RefreshToken::new("r+/="), "cid", &ClientSecret::new("s&x"));
        assert_eq!(f, "grant_type=refresh_token&refresh_token=r%2B%2F%3D&client_id=cid&client_secret=s%26x");
        let f = code_exchange_form(
            &AuthCode::new("c"),
            &PkceVerifier::new("v"),
            "http://localhost:8080/oauth/callback",
            "cid",
            &ClientSecret::new("s"),
        );
        assert!(f.starts_with("grant_type=authorization_code&code=c&code_verifier=v&redirect_uri=http%3A%2F%2Flocalhost%3A8080%2Foauth%2Fcallback"));
    }

    #[test]
    fn client_credentials_request_and_disabled_grant() {
        let f = client_credentials_form("read write", "cid", &ClientSecret::new("s&x"));
        assert_eq!(f, "grant_type=client_credentials&scope=read+write&client_id=cid&client_secret=s%26x");
        let linear = parse_token_response(
            400,
            br#"{"error":"Error","error_description":"Client does not support the client_credentials grant type"}"#,
        )
        .unwrap_err();
        assert!(client_credentials_disabled(&linear));
        let rfc = parse_token_response(400, br#"{"error":"unauthorized_client"}"#).unwrap_err();
        assert!(client_credentials_disabled(&rfc));
        for other in [&br#"{"error":"invalid_client"}"#[..], br#"{"error":"Error","error_description":"x"}"#] {
            assert!(!client_credentials_disabled(&parse_token_response(400, other).unwrap_err()));
        }
        assert!(!client_credentials_disabled(&EndpointFailure::Malformed(
            "client_credentials does not support".into()
        )));
    }

    #[test]
    fn identity() {
        let body = br#"{"data":{"viewer":{"id":"u","name":"N","email":"e@x"},"organization":{"id":"o","name":"Org","urlKey":"acme"}}}"#;
        let id = parse_identity(body).unwrap();
        assert_eq!(id.workspace_slug, "acme");
        assert!(parse_identity(br#"{"errors":[{"message":"Authentication required"}]}"#)
            .unwrap_err()
            .contains("Authentication"));
    }

    // One test per defect of issue 11 (item 8, 6) and issue 10 (item 2).

    #[test]
    fn expires_in_1e20_is_malformed() {
        let r = parse_token_response(200, br#"{"access_token":"a","expires_in":1e20,"refresh_token":"r"}"#);
        assert!(matches!(r, Err(EndpointFailure::Malformed(_))), "{r:?}");
    }

    #[test]
    fn non_string_refresh_token_is_malformed() {
        for rt in ["42", "{}", "[\"r\"]", "true", "\"\""] {
            let body = format!(r#"{{"access_token":"a","expires_in":3600,"refresh_token":{rt}}}"#);
            let r = parse_token_response(200, body.as_bytes());
            assert!(matches!(r, Err(EndpointFailure::Malformed(_))), "{rt}: {r:?}");
        }
    }

    #[test]
    fn access_token_with_control_or_space_is_malformed() {
        for bad in ["lin_oauth_a\\r\\nX-Evil: 1", "lin_oauth_a\\n", "lin_oauth_a\\u0000", "lin_oauth a", "lin\\\"oauth"]
        {
            let body = format!(r#"{{"access_token":"{bad}","expires_in":3600,"refresh_token":"r"}}"#);
            let r = parse_token_response(200, body.as_bytes());
            let Err(EndpointFailure::Malformed(m)) = r else { panic!("{bad}: {r:?}") };
            assert!(!m.contains("lin_oauth"), "{m}");
        }
    }

    #[test]
    fn url_encoded_echo_of_client_secret_is_redacted() {
        let secret = "S3cr3t+With/Special=Chars&x";
        let body = br#"{"error":"invalid_request","error_description":"bad body: client_secret=S3cr3t%2BWith%2FSpecial%3DChars%26x&grant_type=refresh_token"}"#;
        let EndpointFailure::Error { description, .. } =
            parse_token_response(400, body).unwrap_err().redacted(&[secret])
        else {
            panic!()
        };
        let d = description.unwrap();
        assert_eq!(d, "bad body: client_secret=[redacted]&grant_type=refresh_token");
    }

    #[test]
    fn scope_array_is_joined_with_spaces() {
        let body = br#"{"access_token":"a","expires_in":3600,"refresh_token":"r","scope":["read","write"]}"#;
        assert_eq!(parse_token_response(200, body).unwrap().scope.as_deref(), Some("read write"));
    }

    fn with(field: &str, json: &str) -> Result<TokenResponse, EndpointFailure> {
        let mut v: Value =
            serde_json::from_str(r#"{"access_token":"a","expires_in":3600,"refresh_token":"r"}"#).unwrap();
        v[field] = serde_json::from_str(json).unwrap();
        parse_token_response(200, v.to_string().as_bytes())
    }

    #[test]
    fn expires_in_bounds() {
        for ok in ["1", "86399", "315705599", "316224000", "\"3600\""] {
            assert!(with("expires_in", ok).is_ok(), "{ok}");
        }
        assert_eq!(with("expires_in", "315705599").unwrap().expires_in, 315_705_599, "Linear's legacy 10-year tokens");
        for bad in [
            "0",
            "-1",
            "3600.5",
            "3600.0",
            "1e3",
            "316224001",
            "18446744073709551615",
            "1e300",
            "\"\"",
            "\"-5\"",
            "\"1e20\"",
            "\"NaN\"",
            "\"3600 \"",
            "null",
            "true",
            "[3600]",
        ] {
            assert!(matches!(with("expires_in", bad), Err(EndpointFailure::Malformed(_))), "{bad}");
        }
    }

    #[test]
    fn expires_at_never_wraps_to_1970() {
        let t = TokenResponse::for_tests("a", None, u64::MAX, None);
        assert_eq!(t.expires_at(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(t.expires_at(0), "9999-12-31T23:59:59.999Z");
        let t = TokenResponse::for_tests("a", None, MAX_EXPIRES_IN_S, None);
        assert_eq!(crate::parse_instant(&t.expires_at(1_000)), Some(1_000 + 316_224_000_000));
    }

    #[test]
    fn refresh_token_null_is_absent_and_bad_ones_do_not_leak() {
        assert!(with("refresh_token", "null").unwrap().refresh_token.is_none());
        let Err(EndpointFailure::Malformed(m)) = with("refresh_token", r#""lin_refresh_canary\r\n""#) else { panic!() };
        assert!(!m.contains("canary"), "{m}");
    }

    #[test]
    fn token_characters() {
        for ok in ["lin_oauth_0123abcDEF", "a-b.c_d~e+f/g", "YWJj==", "x="] {
            assert!(is_b64token(ok), "{ok}");
        }
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        for bad in [
            "",
            "=",
            "==",
            "a=b",
            "a b",
            "a\tb",
            "a\"b",
            "a'b",
            "a,b",
            "a;b",
            "a:b",
            "a\u{0}",
            "a\r",
            "\u{e9}",
            long.as_str(),
        ] {
            assert!(!is_b64token(bad), "{bad:?}");
        }
        assert!(is_b64token(&"a".repeat(MAX_TOKEN_LEN)));
        assert!(matches!(with("access_token", "42"), Err(EndpointFailure::Malformed(_))));
        assert!(matches!(with("access_token", "null"), Err(EndpointFailure::Malformed(_))));
    }

    #[test]
    fn scope_spellings() {
        let scope = |json: &str| with("scope", json).unwrap().scope;
        assert_eq!(scope(r#""read write""#).as_deref(), Some("read write"));
        assert_eq!(scope(r#""read,write, admin""#).as_deref(), Some("read write admin"));
        assert_eq!(scope(r#"["read", "write,admin", " x "]"#).as_deref(), Some("read write admin x"));
        // Unusable scopes count as absent, so the stored one is kept.
        for absent in [r#""""#, r#"" , ""#, "[]", r#"["read", 1]"#, "42", "{}", "null"] {
            assert_eq!(scope(absent), None, "{absent}");
        }
    }
}
