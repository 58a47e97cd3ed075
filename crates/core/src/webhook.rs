//! Linear webhook deliveries: the signature, the freshness window, the event.
//!
//! As Linear documents it (<https://linear.app/developers/webhooks>, "Securing
//! webhooks"): the `Linear-Signature` header is the hex HMAC-SHA256 of the raw
//! request body keyed with the webhook's signing secret; the payload's
//! `webhookTimestamp` (Unix ms) is there for replay protection, and Linear
//! suggests rejecting deliveries more than a minute old. Headers also carry
//! `Linear-Delivery` (a unique id) and `Linear-Event` (the type).
//!
//! One rule for every runtime: [`verify`] checks the signature over the exact
//! bytes received, in constant time, before anything in the payload is
//! trusted; only then is the event parsed and its timestamp checked. The one
//! value read from an unverified body is the claimed `organizationId`
//! ([`claimed_organization`]), because it chooses the secret to verify with.

use std::borrow::Cow;

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::Sha256;

use crate::SigningSecret;

/// Bodies above this are refused unread (Linear's payloads are a few KiB).
pub const MAX_WEBHOOK_BODY: usize = 1 << 20;
/// Linear's suggested replay window.
pub const DEFAULT_WEBHOOK_WINDOW_MS: u64 = 60_000;
/// The stored-token field holding a workspace's own signing secret.
pub const SIGNING_SECRET_FIELD: &str = "webhook_signing_secret";

/// Why a delivery is refused. Messages never quote the signature, the body or
/// a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("no Linear-Signature header")]
    MissingSignature,
    #[error("Linear-Signature is not hex")]
    SignatureNotHex,
    #[error("Linear-Signature has {0} hex digits; an HMAC-SHA256 has 64")]
    SignatureLength(usize),
    #[error("the signature does not match the body (signing secret of the {0})")]
    Mismatch(&'static str),
    #[error("webhook body is {0} bytes; the most accepted is 1 MiB")]
    TooLarge(usize),
    #[error("webhook body is not a JSON object: {0}")]
    NotJson(String),
    #[error("webhook payload has no numeric webhookTimestamp")]
    MissingTimestamp,
    #[error("webhook payload has no type")]
    MissingType,
    #[error("webhookTimestamp is {age_ms} ms from now, outside the {window_ms} ms window (a replay, or a clock off)")]
    Stale { age_ms: i64, window_ms: u64 },
}

/// The three answers a webhook endpoint gives: not authenticated (401),
/// too old (a replay; 401 too, but worth telling apart), unreadable (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFailure {
    Signature,
    Stale,
    Malformed,
}

impl WebhookError {
    pub fn failure(&self) -> WebhookFailure {
        match self {
            Self::MissingSignature | Self::SignatureNotHex | Self::SignatureLength(_) | Self::Mismatch(_) => {
                WebhookFailure::Signature
            }
            Self::Stale { .. } => WebhookFailure::Stale,
            Self::TooLarge(_) | Self::NotJson(_) | Self::MissingTimestamp | Self::MissingType => {
                WebhookFailure::Malformed
            }
        }
    }
}

/// A `Linear-Signature` value, decoded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; 32]);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signature([redacted])")
    }
}

impl Signature {
    /// 64 hex digits, either case; surrounding whitespace is ignored.
    pub fn parse(header: &str) -> Result<Self, WebhookError> {
        let hex = header.trim();
        if hex.is_empty() {
            return Err(WebhookError::MissingSignature);
        }
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(WebhookError::SignatureNotHex);
        }
        if hex.len() != 64 {
            return Err(WebhookError::SignatureLength(hex.len()));
        }
        let mut out = [0u8; 32];
        for (o, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            *o = (nibble(pair[0]) << 4) | nibble(pair[1]);
        }
        Ok(Self(out))
    }

    /// Hex of the HMAC-SHA256 of `body` under `secret`: what Linear sends
    /// (the test server signs with this).
    pub fn sign(body: &[u8], secret: &[u8]) -> String {
        mac(body, secret).finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether this is the HMAC of `body` under `secret`, compared in
    /// constant time.
    pub fn matches(&self, body: &[u8], secret: &[u8]) -> bool {
        mac(body, secret).verify_slice(&self.0).is_ok()
    }
}

fn mac(body: &[u8], secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; the error arm cannot happen.
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    m.update(body);
    m
}

fn nibble(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// Refuses a body over [`MAX_WEBHOOK_BODY`] before anything reads it.
pub fn check_size(body: &[u8]) -> Result<(), WebhookError> {
    if body.len() > MAX_WEBHOOK_BODY {
        return Err(WebhookError::TooLarge(body.len()));
    }
    Ok(())
}

#[derive(Deserialize)]
struct Claim<'a> {
    #[serde(rename = "organizationId", borrow, default)]
    organization_id: Option<Cow<'a, str>>,
}

/// The workspace an unverified body claims to be about: it only chooses the
/// secret to check the signature with, and nothing else is read before the
/// signature holds. The rest of the body is skipped, not built.
pub fn claimed_organization(body: &[u8]) -> Result<Option<String>, WebhookError> {
    check_size(body)?;
    let claim: Claim<'_> = object(body)?;
    Ok(claim.organization_id.map(Cow::into_owned).filter(|o| !o.is_empty()))
}

/// `body` as a JSON object (serde would also take an array for a struct).
fn object<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, WebhookError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(WebhookError::NotJson("not an object".into()));
    }
    // serde_json's messages name a position and a category, never the input.
    serde_json::from_slice(body).map_err(|e| WebhookError::NotJson(e.to_string()))
}

/// A verified delivery, as Linear documents the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// `type`: `Issue`, `Comment`, `OAuthApp`, ...
    pub kind: String,
    pub action: Option<String>,
    pub organization_id: Option<String>,
    pub webhook_id: Option<String>,
    /// `oauthClientId`: on `OAuthApp` events, the app concerned.
    pub oauth_client_id: Option<String>,
    pub created_at: Option<String>,
    pub timestamp_ms: i64,
    /// `data` exactly as received (JSON text); `null` when absent.
    pub data: String,
}

impl WebhookEvent {
    /// Linear's "app removed from a workspace" event.
    pub fn is_app_revoked(&self) -> bool {
        self.kind == "OAuthApp" && self.action.as_deref() == Some("revoked")
    }
}

#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    action: Option<Cow<'a, str>>,
    #[serde(rename = "organizationId", borrow, default)]
    organization_id: Option<Cow<'a, str>>,
    #[serde(rename = "webhookId", borrow, default)]
    webhook_id: Option<Cow<'a, str>>,
    #[serde(rename = "oauthClientId", borrow, default)]
    oauth_client_id: Option<Cow<'a, str>>,
    #[serde(rename = "createdAt", borrow, default)]
    created_at: Option<Cow<'a, str>>,
    #[serde(rename = "webhookTimestamp", default)]
    timestamp: Option<serde_json::Number>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

/// Checks `signature` over `body` with `secret`, then parses the event and
/// checks its timestamp against `now_ms` within `window_ms` either way.
/// `secret_of` names whose secret it is, for the mismatch message.
pub fn verify(
    body: &[u8],
    signature: &Signature,
    secret: &SigningSecret,
    secret_of: &'static str,
    now_ms: i64,
    window_ms: u64,
) -> Result<WebhookEvent, WebhookError> {
    check_size(body)?;
    if !signature.matches(body, secret.secret().as_bytes()) {
        return Err(WebhookError::Mismatch(secret_of));
    }
    parse_event(body, now_ms, window_ms)
}

/// The event of a body whose signature held.
fn parse_event(body: &[u8], now_ms: i64, window_ms: u64) -> Result<WebhookEvent, WebhookError> {
    let p: Payload<'_> = object(body)?;
    let timestamp_ms = p.timestamp.and_then(|n| n.as_i64()).ok_or(WebhookError::MissingTimestamp)?;
    let age_ms = now_ms.saturating_sub(timestamp_ms);
    if age_ms.unsigned_abs() > window_ms {
        return Err(WebhookError::Stale { age_ms, window_ms });
    }
    let own = |s: Option<Cow<'_, str>>| s.map(Cow::into_owned);
    Ok(WebhookEvent {
        kind: own(p.kind).filter(|k| !k.is_empty()).ok_or(WebhookError::MissingType)?,
        action: own(p.action),
        organization_id: own(p.organization_id),
        webhook_id: own(p.webhook_id),
        oauth_client_id: own(p.oauth_client_id),
        created_at: own(p.created_at),
        timestamp_ms,
        data: p.data.map_or_else(|| "null".to_owned(), |d| d.get().to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000_000;

    fn body(extra: &str) -> Vec<u8> {
        format!(
            r#"{{"type":"Issue","action":"create","organizationId":"org-1","webhookId":"wh-1","createdAt":"2026-05-28T20:26:40.000Z","webhookTimestamp":{NOW}{extra},"data":{{"id":"i1","title":"x"}}}}"#
        )
        .into_bytes()
    }

    fn secret() -> SigningSecret {
        SigningSecret::new("lin_wh_secret")
    }

    #[test]
    fn a_signed_delivery_verifies_and_keeps_data_verbatim() {
        let b = body("");
        let sig = Signature::parse(&Signature::sign(&b, b"lin_wh_secret")).unwrap();
        let e = verify(&b, &sig, &secret(), "workspace", NOW + 5_000, 60_000).unwrap();
        assert_eq!(e.kind, "Issue");
        assert_eq!(e.action.as_deref(), Some("create"));
        assert_eq!(e.organization_id.as_deref(), Some("org-1"));
        assert_eq!(e.webhook_id.as_deref(), Some("wh-1"));
        assert_eq!(e.timestamp_ms, NOW);
        assert_eq!(e.data, r#"{"id":"i1","title":"x"}"#);
        assert!(!e.is_app_revoked());
        // Upper-case hex and surrounding whitespace are the same signature.
        let upper = format!(" {} ", Signature::sign(&b, b"lin_wh_secret").to_uppercase());
        assert!(Signature::parse(&upper).unwrap().matches(&b, b"lin_wh_secret"));
    }

    #[test]
    fn known_vector() {
        // RFC 4231 test case 2 (key "Jefe").
        assert_eq!(
            Signature::sign(b"what do ya want for nothing?", b"Jefe"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn any_changed_byte_or_key_is_a_mismatch() {
        let b = body("");
        let sig = Signature::parse(&Signature::sign(&b, b"lin_wh_secret")).unwrap();
        let mut tampered = b.clone();
        let i = tampered.len() - 5;
        tampered[i] ^= 1;
        assert_eq!(
            verify(&tampered, &sig, &secret(), "stack", NOW, 60_000).unwrap_err(),
            WebhookError::Mismatch("stack")
        );
        let other = SigningSecret::new("lin_wh_other");
        let e = verify(&b, &sig, &other, "workspace", NOW, 60_000).unwrap_err();
        assert_eq!(e.failure(), WebhookFailure::Signature);
        assert!(!e.to_string().contains("lin_wh"), "{e}");
    }

    #[test]
    fn stale_and_future_timestamps_are_refused_after_the_signature() {
        let b = body("");
        let sig = Signature::parse(&Signature::sign(&b, b"lin_wh_secret")).unwrap();
        let e = verify(&b, &sig, &secret(), "workspace", NOW + 60_001, 60_000).unwrap_err();
        assert_eq!(e, WebhookError::Stale { age_ms: 60_001, window_ms: 60_000 });
        assert_eq!(e.failure(), WebhookFailure::Stale);
        let e = verify(&b, &sig, &secret(), "workspace", NOW - 60_001, 60_000).unwrap_err();
        assert_eq!(e.failure(), WebhookFailure::Stale);
        verify(&b, &sig, &secret(), "workspace", NOW + 60_000, 60_000).unwrap();
        // A stale body with a wrong signature is a signature failure: nothing
        // in it is read before the signature holds.
        let wrong = Signature::parse(&"0".repeat(64)).unwrap();
        let e = verify(&b, &wrong, &secret(), "workspace", NOW + 600_000, 60_000).unwrap_err();
        assert_eq!(e.failure(), WebhookFailure::Signature);
    }

    #[test]
    fn malformed_input_is_typed() {
        assert_eq!(Signature::parse("").unwrap_err(), WebhookError::MissingSignature);
        assert_eq!(Signature::parse("xyz").unwrap_err(), WebhookError::SignatureNotHex);
        assert_eq!(Signature::parse("abcd").unwrap_err(), WebhookError::SignatureLength(4));
        assert_eq!(Signature::parse(&"é".repeat(32)).unwrap_err(), WebhookError::SignatureNotHex);
        let sig = |b: &[u8]| Signature::parse(&Signature::sign(b, b"k")).unwrap();
        let k = SigningSecret::new("k");
        let no_ts = br#"{"type":"Issue","organizationId":"o"}"#;
        assert_eq!(verify(no_ts, &sig(no_ts), &k, "stack", NOW, 60_000).unwrap_err(), WebhookError::MissingTimestamp);
        let no_type = format!(r#"{{"webhookTimestamp":{NOW}}}"#).into_bytes();
        assert_eq!(verify(&no_type, &sig(&no_type), &k, "stack", NOW, 60_000).unwrap_err(), WebhookError::MissingType);
        for not_object in [&b"[]"[..], b"null", b"{\"type\":", b"\xff\xfe"] {
            let e = verify(not_object, &sig(not_object), &k, "stack", NOW, 60_000).unwrap_err();
            assert!(matches!(e, WebhookError::NotJson(_)), "{e:?}");
            assert!(claimed_organization(not_object).is_err());
        }
        let big = vec![b' '; MAX_WEBHOOK_BODY + 1];
        assert_eq!(claimed_organization(&big).unwrap_err(), WebhookError::TooLarge(MAX_WEBHOOK_BODY + 1));
        assert_eq!(verify(&big, &sig(b""), &k, "stack", NOW, 60_000).unwrap_err().failure(), WebhookFailure::Malformed);
    }

    #[test]
    fn the_claim_reads_only_the_organization() {
        assert_eq!(claimed_organization(&body("")).unwrap().as_deref(), Some("org-1"));
        assert_eq!(claimed_organization(br#"{"type":"x"}"#).unwrap(), None);
        assert_eq!(claimed_organization(br#"{"organizationId":""}"#).unwrap(), None);
        assert_eq!(claimed_organization(br#"{"organizationId":"a\"b"}"#).unwrap().as_deref(), Some("a\"b"));
    }

    #[test]
    fn app_revoked_event() {
        let b = format!(
            r#"{{"type":"OAuthApp","action":"revoked","organizationId":"org-1","oauthClientId":"cid","webhookTimestamp":{NOW}}}"#
        )
        .into_bytes();
        let sig = Signature::parse(&Signature::sign(&b, b"k")).unwrap();
        let e = verify(&b, &sig, &SigningSecret::new("k"), "workspace", NOW, 60_000).unwrap();
        assert!(e.is_app_revoked());
        assert_eq!(e.oauth_client_id.as_deref(), Some("cid"));
        assert_eq!(e.data, "null");
        assert_eq!(format!("{sig:?}"), "Signature([redacted])");
    }
}
