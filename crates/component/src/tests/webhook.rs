//! The store's half of webhooks: which secret, storing one, app-revoked.

use super::fake::{Fake, MINUTE, SECRET, STACK_SECRET, WS};
use crate::exports::linear::oauth::webhook::{AppRevokedOutcome, KeySource};
use crate::linear::oauth::types::{Error, Target};
use crate::resolve::resolve;
use crate::webhook::{app_revoked, set_signing_secret, signing_key};

fn fake_with_secret(signing: Option<&str>) -> Fake {
    let fake = Fake::with_token("a1", "r1", 60 * MINUTE);
    if let Some(signing) = signing {
        set_signing_secret(&fake.call(), Some(&Target::Workspace(WS.into())), signing).unwrap();
    }
    fake
}

fn key(fake: &Fake, org: Option<&str>, fresh: bool) -> Option<(String, KeySource)> {
    signing_key(&fake.call(), org, fresh).unwrap().map(|k| (k.secret, k.source))
}

#[test]
fn a_workspace_secret_wins_and_only_its_absence_falls_back_to_the_stack() {
    let fake = fake_with_secret(Some("ws-signing"));
    fake.store_raw(STACK_SECRET, "stack-signing\n");
    assert_eq!(key(&fake, Some(WS), false), Some(("ws-signing".into(), KeySource::Workspace)));
    // Not registered, or no claim at all: the stack-wide secret.
    assert_eq!(key(&fake, Some("other-org"), false), Some(("stack-signing".into(), KeySource::Stack)));
    assert_eq!(key(&fake, None, false), Some(("stack-signing".into(), KeySource::Stack)));
    // A registered workspace without its own secret.
    let plain = Fake::with_token("a1", "r1", 60 * MINUTE);
    plain.store_raw(STACK_SECRET, r#"{"webhook_signing_secret":"stack-json"}"#);
    assert_eq!(key(&plain, Some(WS), false), Some(("stack-json".into(), KeySource::Stack)));
    // Neither: none, which the host reports as unverifiable.
    let bare = Fake::with_token("a1", "r1", 60 * MINUTE);
    assert_eq!(key(&bare, Some(WS), false), None);
}

#[test]
fn a_bad_signing_field_or_unreadable_secret_fails_closed() {
    let fake = Fake::with_token("a1", "r1", 60 * MINUTE);
    fake.store_raw(STACK_SECRET, "stack-signing");
    let mut v: serde_json::Value = serde_json::from_str(&fake.stored(SECRET).to_json()).unwrap();
    v["webhook_signing_secret"] = 7.into();
    fake.store_raw(SECRET, &v.to_string());
    let e = signing_key(&fake.call(), Some(WS), true).unwrap_err();
    assert!(matches!(&e, Error::InvalidStoredToken(f) if f == &["webhook_signing_secret"]), "{e:?}");
    fake.store_raw(SECRET, "{truncated");
    assert!(matches!(signing_key(&fake.call(), Some(WS), true), Err(Error::InvalidStoredToken(_))));
    let e = signing_key(&fake.call(), Some(&"x".repeat(5000)), false).unwrap_err();
    assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
}

#[test]
fn fresh_reads_past_the_cache_after_a_rotation() {
    let fake = fake_with_secret(Some("old"));
    // A refresh caches the stored token it wrote, signing field included.
    fake.store(SECRET, &fake.token("a1", "r1", 0));
    set_signing_secret(&fake.call(), Some(&Target::Workspace(WS.into())), "old").unwrap();
    fake.answer_token("a2", "r2");
    resolve(&mut fake.call(), WS).unwrap();
    assert_eq!(fake.post_count(), 1);
    let mut v: serde_json::Value = serde_json::from_str(&fake.secrets.borrow()[SECRET].0).unwrap();
    v["webhook_signing_secret"] = "new".into();
    fake.store_raw(SECRET, &v.to_string());
    let reads = fake.registry_reads.get();
    assert_eq!(key(&fake, Some(WS), false).unwrap().0, "old", "from the cached token and row");
    assert_eq!(fake.registry_reads.get(), reads);
    assert_eq!(key(&fake, Some(WS), true).unwrap().0, "new");
    assert_eq!(fake.registry_reads.get(), reads + 1);
}

#[test]
fn setting_a_signing_secret_keeps_every_other_field() {
    let fake = Fake::with_token("a1", "r1", 60 * MINUTE);
    let before = fake.stored(SECRET);
    let puts = fake.puts.get();
    set_signing_secret(&fake.call(), Some(&Target::Workspace(WS.into())), "  s1\n").unwrap();
    let after = fake.stored(SECRET);
    assert_eq!(after.to_json().replace(r#","webhook_signing_secret":"s1""#, ""), before.to_json());
    assert_eq!(after.extra()["webhook_signing_secret"], "s1");
    assert_eq!(fake.puts.get(), puts + 1);
    // The stack-wide secret: created plain, replaced plain.
    set_signing_secret(&fake.call(), None, "stack-1").unwrap();
    set_signing_secret(&fake.call(), None, "stack-2").unwrap();
    assert_eq!(fake.secrets.borrow()[STACK_SECRET].0, "stack-2");
    // Bad input loses nothing.
    for bad in ["", "  ", "two\nlines", &"x".repeat(4097)] {
        let e = set_signing_secret(&fake.call(), Some(&Target::Secret(SECRET.into())), bad).unwrap_err();
        assert!(matches!(e, Error::InvalidInput(_)), "{e:?}");
    }
    assert_eq!(fake.stored(SECRET).extra()["webhook_signing_secret"], "s1");
    let e = set_signing_secret(&fake.call(), Some(&Target::Secret("nope".into())), "s").unwrap_err();
    assert!(matches!(e, Error::SecretMissing(_)), "{e:?}");
    let e = set_signing_secret(&fake.call(), Some(&Target::Workspace("nope".into())), "s").unwrap_err();
    assert!(matches!(e, Error::NotRegistered(_)), "{e:?}");
    let e = set_signing_secret(&fake.call(), Some(&Target::Workspace(WS.into())), "s1").map(|_| ());
    assert!(e.is_ok());
    // Without a configured stack-wide id, `None` is refused.
    let mut cx = fake.call();
    cx.s.webhook_secret_id = None;
    assert!(
        matches!(set_signing_secret(&cx, None, "s"), Err(Error::InvalidInput(m)) if m.contains("WEBHOOK_SECRET_ID"))
    );
}

#[test]
fn app_revoked_marks_once_and_ignores_other_apps() {
    let fake = Fake::with_token("a1", "r1", 60 * MINUTE);
    resolve(&mut fake.call(), WS).unwrap();
    let puts = fake.puts.get();
    assert!(
        matches!(app_revoked(&fake.call(), WS, "another-client").unwrap(), AppRevokedOutcome::OtherApp(c) if c == "client")
    );
    assert_eq!((fake.rows.borrow()[WS].status.as_str(), fake.puts.get()), ("active", puts));
    assert!(fake.logged("names another OAuth app"));

    assert!(matches!(app_revoked(&fake.call(), WS, "client").unwrap(), AppRevokedOutcome::Revoked));
    assert_eq!(fake.rows.borrow()[WS].status, "revoked");
    assert_eq!(fake.rows.borrow()[WS].status_reason.as_deref(), Some("app_revoked"));
    assert!(fake.stored(SECRET).revoked_at().is_some());
    assert_eq!(fake.puts.get(), puts + 1);
    // Nothing serves it any more, not even this process's cache.
    assert!(matches!(resolve(&mut fake.call(), WS), Err(Error::Revoked(_))));
    // Linear retries the delivery: nothing more is written.
    assert!(matches!(app_revoked(&fake.call(), WS, "client").unwrap(), AppRevokedOutcome::AlreadyRevoked));
    assert_eq!(fake.puts.get(), puts + 1);
    assert!(matches!(app_revoked(&fake.call(), "ws-unknown", "client").unwrap(), AppRevokedOutcome::NotRegistered));
    assert_eq!(fake.post_count(), 0, "Linear already ended the grant: nothing is sent");
}
