//! Fleet operations over the fake: the sweeper's step and the client
//! secret's rotation (issue 23, sections 3 and 4).

use super::fake::{error_answer, token_answer, Fake, MINUTE, SECRET, WS};
use crate::exports::linear::oauth::admin::{RotateMode, RotateOutcome, SweepOutcome};
use crate::fleet::{set_client_secret, sweep_one};
use crate::keys::refresh_key;
use crate::linear::oauth::types::Error;

const HOUR: i64 = 60 * MINUTE;
const AHEAD: u64 = 2 * 3_600_000;

fn sweep(fake: &Fake) -> Result<SweepOutcome, Error> {
    sweep_one(&mut fake.call(), WS, AHEAD)
}

fn rotate(fake: &Fake, client_id: &str, secret: &str, mode: RotateMode) -> Result<RotateOutcome, Error> {
    set_client_secret(&mut fake.call(), WS, client_id, secret, mode)
}

#[test]
fn the_sweeper_refreshes_inside_the_window_and_a_rerun_finds_it_fresh() {
    let fake = Fake::with_token("a1", "r1", HOUR);
    fake.answer_token("a2", "r2");
    let Ok(SweepOutcome::Refreshed(expires_at)) = sweep(&fake) else { panic!("{:?}", sweep(&fake)) };
    let stored = fake.stored(SECRET);
    assert_eq!((stored.access_token.secret(), stored.lineage(), fake.post_count()), ("a2", "r2", 1));
    assert_eq!(stored.expires_at, expires_at);
    // The lease was taken and given back with the version written.
    assert_eq!(fake.leases.borrow()[&refresh_key(SECRET)].holder, None);
    assert!(matches!(sweep(&fake), Ok(SweepOutcome::Fresh(e)) if e == expires_at));
    assert_eq!(fake.post_count(), 1, "a re-run sends nothing");
}

#[test]
fn a_token_beyond_the_window_is_fresh_and_nothing_is_sent() {
    let fake = Fake::with_token("a1", "r1", 3 * HOUR);
    assert!(matches!(sweep(&fake), Ok(SweepOutcome::Fresh(_))));
    assert_eq!((fake.post_count(), fake.puts.get()), (0, 0));
}

#[test]
fn a_lease_held_by_another_refresher_is_skipped_without_waiting() {
    let fake = Fake::with_token("a1", "r1", HOUR);
    fake.leases.borrow_mut().entry(refresh_key(SECRET)).or_default().holder = Some("other".into());
    let before = fake.now.get();
    assert!(matches!(sweep(&fake), Ok(SweepOutcome::HeldByAnother)));
    assert_eq!((fake.post_count(), fake.now.get()), (0, before), "no request, no wait");
    assert_eq!(fake.stored(SECRET).lineage(), "r1");
}

#[test]
fn a_dead_credential_is_reported_with_its_code_and_recorded_once() {
    let fake = Fake::with_token("a1", "r1", HOUR);
    fake.answer_error(400, "invalid_grant");
    assert!(matches!(sweep(&fake), Ok(SweepOutcome::Dead(c)) if c == "invalid_grant"));
    assert_eq!(fake.rows.borrow()[WS].status, "reauthorization_required");
    // Next run: from the row, nothing sent.
    assert!(matches!(sweep(&fake), Ok(SweepOutcome::Dead(c)) if c == "invalid_grant"));
    assert_eq!(fake.post_count(), 1);
}

#[test]
fn a_revoked_or_unregistered_workspace_is_an_error() {
    let fake = Fake::with_token("a1", "r1", HOUR);
    fake.put_row(WS, SECRET, "revoked");
    assert!(matches!(sweep(&fake), Err(Error::Revoked(_))));
    assert!(matches!(sweep_one(&mut fake.call(), "nope", AHEAD), Err(Error::NotRegistered(_))));
    assert_eq!(fake.post_count(), 0);
}

#[test]
fn a_transient_failure_is_an_error_and_the_token_stays() {
    let fake = Fake::with_token("a1", "r1", HOUR);
    for _ in 0..10 {
        fake.answer(|_| Ok(error_answer(503, "server_error")));
    }
    assert!(matches!(sweep(&fake), Err(Error::Transport(_) | Error::TokenEndpoint(_))), "{:?}", sweep(&fake));
    assert_eq!(fake.stored(SECRET).lineage(), "r1");
}

#[test]
fn rotation_writes_the_new_secret_keeping_every_other_field_and_is_idempotent() {
    let fake = Fake::with_token("a1", "r1", HOUR);
    let before = fake.stored(SECRET);
    assert!(matches!(rotate(&fake, "client", "new-secret", RotateMode::DryRun), Ok(RotateOutcome::Updated)));
    assert_eq!(fake.puts.get(), 0, "a dry run writes nothing");
    assert!(matches!(rotate(&fake, "client", "new-secret", RotateMode::Write), Ok(RotateOutcome::Updated)));
    let after = fake.stored(SECRET);
    assert_eq!(after.client_secret.secret(), "new-secret");
    assert_eq!((after.lineage(), after.access_token.secret()), (before.lineage(), before.access_token.secret()));
    assert_eq!((&after.expires_at, &after.installed_at), (&before.expires_at, &before.installed_at));
    assert!(matches!(rotate(&fake, "client", "new-secret", RotateMode::Write), Ok(RotateOutcome::Already)));
    assert!(
        matches!(rotate(&fake, "other", "x", RotateMode::Write), Ok(RotateOutcome::OtherClient(c)) if c == "client")
    );
    assert_eq!((fake.puts.get(), fake.post_count()), (1, 0));
    // A refresh afterwards sends the new secret.
    fake.advance(HOUR - 2 * MINUTE);
    fake.answer_token("a2", "r2");
    crate::resolve::resolve(&mut fake.call(), WS).unwrap();
    assert!(fake.posts.borrow()[0].contains("client_secret=new-secret"), "{:?}", fake.posts.borrow());
}

#[test]
fn verification_refreshes_with_the_new_secret_and_writes_both_at_once() {
    let fake = Fake::with_token("a1", "r1", 20 * HOUR);
    fake.answer_token("a2", "r2");
    assert!(matches!(rotate(&fake, "client", "new-secret", RotateMode::Verify), Ok(RotateOutcome::Updated)));
    assert!(fake.posts.borrow()[0].contains("client_secret=new-secret"), "{:?}", fake.posts.borrow());
    let stored = fake.stored(SECRET);
    assert_eq!((stored.lineage(), stored.client_secret.secret()), ("r2", "new-secret"));
    assert!(matches!(rotate(&fake, "client", "new-secret", RotateMode::Write), Ok(RotateOutcome::Already)));
}

#[test]
fn a_refused_new_secret_writes_and_records_nothing() {
    let fake = Fake::with_token("a1", "r1", 20 * HOUR);
    let before = fake.secrets.borrow()[SECRET].clone();
    fake.answer(|_| Ok(error_answer(401, "invalid_client")));
    let e = rotate(&fake, "client", "typo", RotateMode::Verify).unwrap_err();
    assert!(matches!(&e, Error::TokenEndpoint(t) if t.code.as_deref() == Some("invalid_client")), "{e:?}");
    assert!(!format!("{e:?}").contains("typo"));
    assert_eq!(fake.secrets.borrow()[SECRET], before, "nothing written");
    assert_eq!(fake.rows.borrow()[WS].status, "active");
    // The same for a client-credentials token (whose own refusal is recorded dead).
    let fake = client_credentials_fake();
    let before = fake.secrets.borrow()[SECRET].clone();
    fake.answer(|_| Ok(error_answer(401, "invalid_client")));
    let e = rotate(&fake, "client", "typo", RotateMode::Verify).unwrap_err();
    assert!(matches!(&e, Error::TokenEndpoint(_)), "{e:?}");
    assert_eq!(fake.secrets.borrow()[SECRET], before);
    assert_eq!(fake.rows.borrow()[WS].status, "active");
}

#[test]
fn a_refresh_racing_the_rotation_never_puts_the_old_secret_back() {
    let fake = Fake::with_token("a1", "r1", 2 * MINUTE);
    // While the refresh is at Linear, the rotation writes the new secret.
    fake.answer(|f| {
        assert!(matches!(rotate(f, "client", "new-secret", RotateMode::Write), Ok(RotateOutcome::Updated)));
        Ok(token_answer("a2", "r2"))
    });
    crate::resolve::resolve(&mut fake.call(), WS).unwrap();
    let stored = fake.stored(SECRET);
    assert_eq!((stored.lineage(), stored.client_secret.secret()), ("r2", "new-secret"), "both kept");
}

fn client_credentials_fake() -> Fake {
    let fake = Fake::with_token("a1", "r1", 20 * 24 * HOUR);
    let mut v: serde_json::Value = serde_json::from_str(&fake.secrets.borrow()[SECRET].0).unwrap();
    v["grant_type"] = "client_credentials".into();
    v.as_object_mut().unwrap().remove("refresh_token");
    fake.store_raw(SECRET, &v.to_string());
    fake
}

#[test]
fn a_client_credentials_workspace_gets_a_new_token_with_the_new_secret() {
    let fake = client_credentials_fake();
    fake.answer(|_| {
        let body = serde_json::json!({"access_token": "cc2", "expires_in": 2_591_999, "token_type": "Bearer",
            "scope": "read write"});
        Ok(crate::http::Response { status: 200, body: body.to_string().into_bytes(), retry_after: None })
    });
    assert!(matches!(rotate(&fake, "client", "new-secret", RotateMode::Write), Ok(RotateOutcome::Updated)));
    let posts = fake.posts.borrow();
    assert!(posts[0].contains("grant_type=client_credentials") && posts[0].contains("client_secret=new-secret"));
    let stored = fake.stored(SECRET);
    assert_eq!((stored.access_token.secret(), stored.client_secret.secret()), ("cc2", "new-secret"));
}

#[test]
fn a_client_credentials_fetch_that_fails_leaves_the_token_due() {
    let fake = client_credentials_fake();
    for _ in 0..10 {
        fake.answer(|_| Ok(error_answer(503, "server_error")));
    }
    assert!(matches!(rotate(&fake, "client", "new-secret", RotateMode::Write), Ok(RotateOutcome::Updated)));
    let stored = fake.stored(SECRET);
    assert_eq!(stored.client_secret.secret(), "new-secret");
    assert!(linear_oauth_core::parse_instant(&stored.expires_at).unwrap() < fake.now.get());
}
