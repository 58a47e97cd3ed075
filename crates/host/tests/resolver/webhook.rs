//! Webhooks end to end in Rust: deliveries signed by the test server as Linear
//! signs them, verified and handled by the resolver over a real store.

use linear_oauth_host::{KeySource, SecretString, WebhookOutcome};
use linear_oauth_testserver::webhook::{deliver, Delivery, DeliverySpec};

use super::*;

fn spec(secret: &str, org: &str) -> DeliverySpec {
    serde_json::from_value(serde_json::json!({ "secret": secret, "organization_id": org })).unwrap()
}

fn signed(secret: &str, org: &str) -> Delivery {
    deliver(&spec(secret, org)).unwrap()
}

/// A resolver whose stack-wide signing secret lives in secret `webhook-stack`.
fn with_stack(server: &TestServer, b: &Backends) -> Resolver {
    let o = Options { webhook_secret_id: Some("webhook-stack".into()), ..options(server) };
    Resolver::with_backends(o, b.clone()).unwrap()
}

fn verify(r: &Resolver, d: &Delivery) -> Result<linear_oauth_host::WebhookEvent, Error> {
    r.verify_webhook(d.body.as_bytes(), &d.signature, Some(&d.delivery_id))
}

#[test]
fn a_delivery_signed_with_the_workspace_secret_verifies() {
    let (server, b, s, r) = acme(3600);
    r.set_webhook_secret(Some(Target::Workspace(&s.workspace_id)), &SecretString::new("whsec-acme")).unwrap();
    // Every other field of the stored token is kept.
    let stored = stored(&b, &s.secret_id);
    assert_eq!(
        (stored["refresh_token"].as_str(), stored["webhook_signing_secret"].as_str()),
        (Some(s.refresh.as_str()), Some("whsec-acme"))
    );
    let d = signed("whsec-acme", &s.workspace_id);
    let e = verify(&r, &d).unwrap();
    assert_eq!((e.kind.as_str(), e.action.as_deref()), ("Issue", Some("create")));
    assert_eq!(e.organization_id.as_deref(), Some(s.workspace_id.as_str()));
    assert_eq!(e.delivery_id.as_deref(), Some(d.delivery_id.as_str()));
    assert_eq!(e.matched, KeySource::Workspace);
    assert_eq!(e.webhook_id.as_deref(), Some("webhook-test-1"));
    let data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
    assert_eq!(data["identifier"], "ACM-1");
    // Cached: verifying again needs neither the store nor the component.
    b.secrets.delete(&s.secret_id).unwrap();
    assert_eq!(verify(&r, &d).unwrap().matched, KeySource::Workspace);
    let _ = server;
}

#[test]
fn the_stack_secret_serves_only_workspaces_without_their_own() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    let other = seed(&server, &b, "beta", 3600);
    let r = with_stack(&server, &b);
    r.set_webhook_secret(None, &SecretString::new("whsec-stack")).unwrap();
    r.set_webhook_secret(Some(Target::Workspace(&s.workspace_id)), &SecretString::new("whsec-acme")).unwrap();
    assert_eq!(verify(&r, &signed("whsec-stack", &other.workspace_id)).unwrap().matched, KeySource::Stack);
    assert_eq!(verify(&r, &signed("whsec-stack", "org-not-installed")).unwrap().matched, KeySource::Stack);
    // A mismatch against a workspace's own secret is final: the stack-wide
    // secret is never tried for it.
    let e = verify(&r, &signed("whsec-stack", &s.workspace_id)).unwrap_err();
    assert!(matches!(&e, Error::WebhookSignature(m) if m.contains("workspace")), "{e:?}");
    assert!(!e.to_string().contains("whsec"), "{e}");
    // Without a stack-wide secret, a workspace without its own cannot verify.
    let plain = resolver_with(&server, &b, None);
    let e = verify(&plain, &signed("whsec-stack", &other.workspace_id)).unwrap_err();
    assert!(matches!(&e, Error::WebhookSignature(m) if m.contains("webhook_secret_id")), "{e:?}");
}

#[test]
fn a_rotated_secret_is_read_again_once() {
    let (server, b, s, r) = acme(3600);
    r.set_webhook_secret(Some(Target::Workspace(&s.workspace_id)), &SecretString::new("whsec-1")).unwrap();
    verify(&r, &signed("whsec-1", &s.workspace_id)).unwrap();
    // Another process rotates it; this one still holds whsec-1.
    let elsewhere = resolver_with(&server, &b, None);
    elsewhere.set_webhook_secret(Some(Target::Secret(&s.secret_id)), &SecretString::new("whsec-2")).unwrap();
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(verify(&r, &signed("whsec-2", &s.workspace_id)).unwrap().matched, KeySource::Workspace);
    let e = verify(&r, &signed("whsec-1", &s.workspace_id)).unwrap_err();
    assert!(matches!(e, Error::WebhookSignature(_)), "{e:?}");
}

#[test]
fn stale_forged_and_malformed_deliveries_are_refused_by_kind() {
    let (_server, _b, s, r) = acme(3600);
    r.set_webhook_secret(Some(Target::Workspace(&s.workspace_id)), &SecretString::new("whsec-acme")).unwrap();
    let mut stale = spec("whsec-acme", &s.workspace_id);
    stale.age_ms = 61_000;
    let e = verify(&r, &deliver(&stale).unwrap()).unwrap_err();
    assert!(matches!(&e, Error::WebhookStale(m) if m.contains("60000 ms window")), "{e:?}");
    let mut future = spec("whsec-acme", &s.workspace_id);
    future.age_ms = -61_000;
    assert!(matches!(verify(&r, &deliver(&future).unwrap()), Err(Error::WebhookStale(_))));
    let mut forged = spec("whsec-acme", &s.workspace_id);
    forged.bad_signature = true;
    assert!(matches!(verify(&r, &deliver(&forged).unwrap()), Err(Error::WebhookSignature(_))));
    let d = signed("whsec-acme", &s.workspace_id);
    for bad in ["", "zz", "abc"] {
        let e = r.verify_webhook(d.body.as_bytes(), bad, None).unwrap_err();
        assert!(matches!(e, Error::WebhookSignature(_)), "{bad:?}: {e:?}");
    }
    // The body is checked exactly as received: re-encoded JSON is another body.
    let reencoded = serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&d.body).unwrap()).unwrap();
    assert!(matches!(r.verify_webhook(reencoded.as_bytes(), &d.signature, None), Err(Error::WebhookSignature(_))));
    let mut no_ts = spec("whsec-acme", &s.workspace_id);
    no_ts.no_timestamp = true;
    let e = verify(&r, &deliver(&no_ts).unwrap()).unwrap_err();
    assert!(matches!(&e, Error::WebhookMalformed(m) if m.contains("webhookTimestamp")), "{e:?}");
    let huge = vec![b' '; linear_oauth_host::MAX_WEBHOOK_BODY + 1];
    assert!(matches!(r.verify_webhook(&huge, &d.signature, None), Err(Error::WebhookMalformed(_))));
    assert_eq!(e.kind().exit_code, 19);
}

#[test]
fn app_revoked_marks_the_workspace_once_and_ignores_other_apps() {
    let (server, b, s, r) = acme(3600);
    let other = seed(&server, &b, "beta", 3600);
    for w in [&s.workspace_id, &other.workspace_id] {
        r.set_webhook_secret(Some(Target::Workspace(w)), &SecretString::new("whsec")).unwrap();
    }
    r.resolve(&s.workspace_id).unwrap();
    let revoked = |org: &str, client: &str| {
        let mut d = spec("whsec", org);
        d.event = "app-revoked".into();
        d.oauth_client_id = Some(client.into());
        deliver(&d).unwrap()
    };
    // Another app's removal: ignored, and says so.
    let d = revoked(&other.workspace_id, "someone-elses-app");
    let e = r.handle_webhook(d.body.as_bytes(), &d.signature, Some(&d.delivery_id)).unwrap();
    assert_eq!(e.outcome, Some(WebhookOutcome::OtherApp { stored_client_id: CLIENT_ID.into() }));
    r.resolve(&other.workspace_id).unwrap();

    let d = revoked(&s.workspace_id, CLIENT_ID);
    let e = r.handle_webhook(d.body.as_bytes(), &d.signature, Some(&d.delivery_id)).unwrap();
    assert_eq!(e.outcome, Some(WebhookOutcome::Revoked));
    assert!(matches!(r.resolve(&s.workspace_id), Err(Error::Revoked(_))), "this process's caches are cleared");
    let row = b.registry.get(&s.workspace_id).unwrap().unwrap();
    assert_eq!(row.status, "revoked");
    assert!(stored(&b, &s.secret_id)["revoked_at"].is_string());
    // A fresh process refuses it too.
    let fresh = resolver_with(&server, &b, None);
    assert!(matches!(fresh.resolve(&s.workspace_id), Err(Error::Revoked(_))));
    // Linear retries the same delivery: nothing more happens.
    let version = b.secrets.get(&s.secret_id).unwrap().unwrap().version;
    let e = r.handle_webhook(d.body.as_bytes(), &d.signature, Some(&d.delivery_id)).unwrap();
    assert_eq!(e.outcome, Some(WebhookOutcome::AlreadyRevoked));
    assert_eq!(b.secrets.get(&s.secret_id).unwrap().unwrap().version, version);
    // Linear already ended the grant: nothing was sent to it.
    let c = server.counters();
    assert_eq!((c.token_requests, c.revoke), (0, 0));
    // Other events come back untouched.
    let d = signed("whsec", &other.workspace_id);
    let e = r.handle_webhook(d.body.as_bytes(), &d.signature, None).unwrap();
    assert_eq!((e.kind.as_str(), e.outcome), ("Issue", None));
    r.resolve(&other.workspace_id).unwrap();
}
