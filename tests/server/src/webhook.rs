//! Webhook deliveries signed as Linear signs them, for tests of receivers.
//!
//! Linear's webhook documentation (<https://linear.app/developers/webhooks>):
//! each delivery is a POST with a JSON body; the `Linear-Signature` header is
//! the hex HMAC-SHA256 of the raw body keyed with the webhook's signing
//! secret; `Linear-Delivery` is a unique id (a UUID v4) and `Linear-Event`
//! the entity type; the payload carries `action`, `type`, `createdAt`,
//! `data`, `url`, `organizationId`, `webhookTimestamp` (Unix ms, for replay
//! protection: receivers should refuse one older than a minute) and
//! `webhookId`. When a workspace removes an OAuth app, the app's webhook gets
//! `{"type":"OAuthApp","action":"revoked","organizationId",
//! "oauthClientId",...}`. Failed deliveries are retried after 1 minute,
//! 1 hour and 6 hours, with the same body.
//!
//! The HMAC is computed here with the `hmac` crate directly, not with the
//! code under test.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::Sha256;

/// What to deliver, and how wrong to get it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySpec {
    /// The signing secret to sign with (a rotated one: just another value).
    pub secret: String,
    /// `issue` (an Issue `create`) or `app-revoked` (OAuthApp `revoked`),
    /// unless `payload` is given.
    #[serde(default = "issue")]
    pub event: String,
    pub organization_id: Option<String>,
    /// For `app-revoked`: the app's client id.
    pub oauth_client_id: Option<String>,
    /// The whole payload instead of one of the events above; a missing
    /// `webhookTimestamp` is added (unless `no_timestamp`).
    pub payload: Option<Map<String, Value>>,
    /// How long ago Linear sent it (negative: in the future).
    #[serde(default)]
    pub age_ms: i64,
    /// Leave `webhookTimestamp` out.
    #[serde(default)]
    pub no_timestamp: bool,
    /// Send a signature one bit off.
    #[serde(default)]
    pub bad_signature: bool,
    /// Pad `data` so the body is about this many bytes (benchmarks).
    pub size: Option<usize>,
}

fn issue() -> String {
    "issue".into()
}

/// A delivery: the raw body and the headers Linear sends with it.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub body: String,
    pub signature: String,
    pub delivery_id: String,
    pub event: String,
}

impl Delivery {
    /// `[(header, value)]` as Linear sends them.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Content-Type", "application/json; charset=utf-8".into()),
            ("Linear-Signature", self.signature.clone()),
            ("Linear-Delivery", self.delivery_id.clone()),
            ("Linear-Event", self.event.clone()),
            ("User-Agent", "Linear-Webhook".into()),
        ]
    }
}

/// The hex HMAC-SHA256 of `body` keyed with `secret`.
pub fn sign(body: &[u8], secret: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Builds and signs one delivery.
pub fn deliver(spec: &DeliverySpec) -> Result<Delivery, String> {
    let org = spec.organization_id.clone().unwrap_or_else(|| "org-acme".into());
    let sent = now_ms() - spec.age_ms;
    let created_at = crate::fixtures::iso8601(sent);
    let mut payload = match (&spec.payload, spec.event.as_str()) {
        (Some(p), _) => p.clone(),
        (None, "issue") => obj(json!({
            "action": "create", "type": "Issue", "createdAt": created_at, "organizationId": org,
            "url": "https://linear.app/acme/issue/ACM-1", "webhookId": "webhook-test-1",
            "data": {"id": "issue-1", "identifier": "ACM-1", "title": "Webhook test", "teamId": "team-1"},
        })),
        (None, "app-revoked") => obj(json!({
            "action": "revoked", "type": "OAuthApp", "createdAt": created_at, "organizationId": org,
            "oauthClientId": spec.oauth_client_id.clone().ok_or("app-revoked needs oauth_client_id")?,
            "webhookId": "webhook-test-1",
        })),
        (None, other) => return Err(format!("unknown event {other:?}: issue or app-revoked")),
    };
    if spec.no_timestamp {
        payload.remove("webhookTimestamp");
    } else {
        payload.entry("webhookTimestamp").or_insert(json!(sent));
    }
    if let Some(size) = spec.size {
        let pad = size.saturating_sub(Value::Object(payload.clone()).to_string().len() + 17);
        let data = payload.entry("data").or_insert_with(|| json!({}));
        if let Value::Object(d) = data {
            d.insert("description".into(), Value::String("x".repeat(pad)));
        }
    }
    let event = payload.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
    let body = Value::Object(payload).to_string();
    let mut signature = sign(body.as_bytes(), &spec.secret);
    if spec.bad_signature {
        let flipped = if signature.starts_with('0') { "1" } else { "0" };
        signature.replace_range(0..1, flipped);
    }
    let delivery_id = format!("{:032x}", rand::random::<u128>());
    Ok(Delivery { body, signature, delivery_id, event })
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("object literals"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(secret: &str) -> DeliverySpec {
        serde_json::from_value(json!({ "secret": secret })).unwrap()
    }

    #[test]
    fn signs_the_exact_body_as_documented() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"what do ya want for nothing?", "Jefe"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let d = deliver(&spec("s1")).unwrap();
        assert_eq!(d.signature, sign(d.body.as_bytes(), "s1"));
        let v: Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!((v["type"].as_str(), v["organizationId"].as_str()), (Some("Issue"), Some("org-acme")));
        assert!((v["webhookTimestamp"].as_i64().unwrap() - now_ms()).abs() < 60_000);
        assert_eq!(d.event, "Issue");
    }

    #[test]
    fn knobs() {
        let mut s = spec("s1");
        s.bad_signature = true;
        s.age_ms = 120_000;
        s.size = Some(4096);
        let d = deliver(&s).unwrap();
        assert_ne!(d.signature, sign(d.body.as_bytes(), "s1"));
        assert_eq!(d.signature.len(), 64);
        let v: Value = serde_json::from_str(&d.body).unwrap();
        assert!(now_ms() - v["webhookTimestamp"].as_i64().unwrap() >= 120_000);
        assert!((4000..=4096).contains(&d.body.len()), "{}", d.body.len());
        s.event = "app-revoked".into();
        assert!(deliver(&s).is_err(), "needs the client id");
    }
}
