//! The resolver's pipeline natively, over the in-memory world of `fake`:
//! what it sends to Linear, what it stores, what it serves. The end-to-end
//! suites (crates/host/tests, Python, Node) run the same code as wasm.

mod fake;
mod fleet;
mod webhook;

use fake::{error_answer, token_answer, Fake, MINUTE, SECRET, WS};
use linear_oauth_core::format_instant;

use crate::call::Call;
use crate::http::Failure;
use crate::keys::{known_key, refresh_key, row_to_json, unsaved_key};
use crate::linear::oauth::metrics::Event;
use crate::linear::oauth::registry::Row;
use crate::linear::oauth::types::{Error, Lifetime, Target};
use crate::resolve::{force_refresh, report_unauthorized, resolve, resolve_secret};

/// A token due for refresh: inside the 5-minute threshold, still valid.
const DUE: i64 = 2 * MINUTE;
const FRESH: i64 = 60 * MINUTE;

fn lease_written(fake: &Fake) -> Option<String> {
    fake.leases.borrow().get(&refresh_key(SECRET)).and_then(|l| l.written.clone())
}

fn stored_version(fake: &Fake) -> String {
    fake.secrets.borrow()[SECRET].1.clone()
}

#[test]
fn a_fresh_token_is_served_without_a_request_and_only_its_row_is_kept() {
    let fake = Fake::with_token("a1", "r1", FRESH);
    let r = resolve(&mut fake.call(), WS).unwrap();
    assert_eq!((r.access_token.as_str(), r.secret_id.as_str(), r.workspace_id.as_str()), ("a1", SECRET, WS));
    // The host serves it from here on: no copy of the stored token (its
    // refresh token and client secret) stays in the process.
    assert!(fake.cache_get_token().is_none());
    assert!(fake.cache.borrow().is_empty(), "{:?}", fake.cache.borrow().keys().collect::<Vec<_>>());
    // The row does, in its hint, marked as read by this resolver: a second
    // call reads the secret again, not the row.
    assert!(fake.hints.borrow()[&known_key(WS)].contains("\"me\""), "{:?}", fake.hints.borrow());
    // The workspace id is its key's, not written again in every hint.
    assert!(!fake.hints.borrow()[&known_key(WS)].contains(WS), "{:?}", fake.hints.borrow());
    fake.store(SECRET, &fake.token("a2", "r1", FRESH));
    assert_eq!(resolve(&mut fake.call(), WS).unwrap().access_token, "a2", "the secret is read again");
    assert_eq!((fake.post_count(), fake.registry_reads.get()), (0, 1), "the row is not");
    // Past cache-ttl the mark has lapsed: the row is read again.
    fake.advance(60_001);
    resolve(&mut fake.call(), WS).unwrap();
    assert_eq!(fake.registry_reads.get(), 2);
    // Another resolver's mark (a hint file other processes share) is only a hint.
    let mut other = fake.call();
    other.s.holder_id = "someone-else".into();
    resolve(&mut other, WS).unwrap();
    assert_eq!(fake.registry_reads.get(), 3);
}

#[test]
fn a_due_token_is_refreshed_once_and_written_back() {
    let fake = Fake::with_token("a1", "r1", DUE);
    fake.answer_token("a2", "r2");
    let r = resolve(&mut fake.call(), WS).unwrap();
    assert_eq!(r.access_token, "a2");
    assert_eq!(fake.post_count(), 1);
    assert!(fake.posts.borrow()[0].contains("refresh_token=r1"), "{:?}", fake.posts.borrow());
    let stored = fake.stored(SECRET);
    assert_eq!((stored.access_token.secret(), stored.lineage()), ("a2", "r2"));
    // The lease is free again and hands on the version written.
    assert_eq!(lease_written(&fake), Some(stored_version(&fake)));
    assert_eq!(fake.leases.borrow()[&refresh_key(SECRET)].holder, None);
    // Served from the cache afterwards: no second request.
    assert_eq!(resolve(&mut fake.call(), WS).unwrap().access_token, "a2");
    assert_eq!(fake.post_count(), 1);
    assert_eq!(*fake.events.borrow(), [(Event::RefreshOk, WS.to_owned())], "counted once, with its workspace");
    assert_eq!(fake.latencies.borrow().len(), 1, "one renewal timed");
}

#[test]
fn a_forced_refresh_renews_a_fresh_token() {
    let fake = Fake::with_token("a1", "r1", FRESH);
    fake.answer_token("a2", "r2");
    let r = force_refresh(&mut fake.call(), &Target::Workspace(WS.into())).unwrap();
    assert_eq!((r.access_token.as_str(), fake.post_count()), ("a2", 1));
    assert_eq!(fake.stored(SECRET).lineage(), "r2");
}

#[test]
fn a_write_conflict_with_a_writer_that_did_not_renew_merges_ours_on_top() {
    let fake = Fake::with_token("a1", "r1", DUE);
    fake.answer(|f| {
        // Another writer adds a field of its own while we refresh.
        let mut theirs: serde_json::Value = serde_json::from_str(&f.secrets.borrow()[SECRET].0).unwrap();
        theirs["note"] = "kept".into();
        f.store_raw(SECRET, &theirs.to_string());
        Ok(token_answer("a2", "r2"))
    });
    assert_eq!(resolve(&mut fake.call(), WS).unwrap().access_token, "a2");
    let stored = fake.stored(SECRET);
    assert_eq!((stored.access_token.secret(), stored.lineage()), ("a2", "r2"));
    assert_eq!(stored.extra()["note"], "kept");
    assert_eq!((fake.post_count(), fake.puts.get()), (1, 2), "a conflict, then the merged write");
}

#[test]
fn a_write_conflict_with_a_renewal_keeps_the_renewed_token() {
    let fake = Fake::with_token("a1", "r1", DUE);
    fake.answer(|f| {
        f.store(SECRET, &f.token("b2", "rb2", FRESH));
        Ok(token_answer("a2", "r2"))
    });
    resolve(&mut fake.call(), WS).unwrap();
    assert_eq!(fake.stored(SECRET).lineage(), "rb2", "theirs is newer and stays");
    assert_eq!(fake.puts.get(), 1);
}

#[test]
fn invalid_grant_after_another_refresher_rotated_uses_the_stored_token() {
    let fake = Fake::with_token("a1", "r1", DUE);
    fake.answer(|f| {
        f.store(SECRET, &f.token("b2", "rb2", FRESH));
        Ok(error_answer(400, "invalid_grant"))
    });
    let r = resolve(&mut fake.call(), WS).unwrap();
    assert_eq!((r.access_token.as_str(), fake.post_count(), fake.puts.get()), ("b2", 1, 0));
    assert!(fake.logged("rotated by another refresher"));
    assert_eq!(fake.counted(), [Event::InvalidGrantRecovered]);
}

#[test]
fn invalid_grant_after_a_rotation_that_is_due_again_refreshes_once_more() {
    let fake = Fake::with_token("a1", "r1", DUE);
    fake.answer(|f| {
        f.store(SECRET, &f.token("b2", "rb2", DUE));
        Ok(error_answer(400, "invalid_grant"))
    });
    fake.answer_token("a3", "r3");
    let r = resolve(&mut fake.call(), WS).unwrap();
    assert_eq!(r.access_token, "a3");
    assert_eq!(fake.post_count(), 2);
    assert!(fake.posts.borrow()[1].contains("refresh_token=rb2"), "the second request uses the rotated token");
    assert_eq!(fake.stored(SECRET).lineage(), "r3");
    assert_eq!(fake.counted(), [Event::RefreshOk, Event::InvalidGrantRecovered]);
}

#[test]
fn invalid_grant_with_nothing_rotated_requires_reauthorization() {
    let fake = Fake::with_token("a1", "r1", DUE);
    fake.answer_error(400, "invalid_grant");
    let e = resolve(&mut fake.call(), WS).unwrap_err();
    assert!(matches!(e, Error::ReauthorizationRequired(_)), "{e:?}");
    assert_eq!((fake.post_count(), fake.puts.get()), (1, 1), "one write: the mark");
    assert_eq!(fake.stored(SECRET).lineage(), "r1", "the credential stays as it was");
    assert_eq!(fake.counted(), [Event::ReauthorizationRequiredInvalidGrant]);
    // A second invalid_grant after a rotation that was due again ends the same way.
    let fake = Fake::with_token("a1", "r1", DUE);
    fake.answer(|f| {
        f.store(SECRET, &f.token("b2", "rb2", DUE));
        Ok(error_answer(400, "invalid_grant"))
    });
    fake.answer_error(400, "invalid_grant");
    assert!(matches!(resolve(&mut fake.call(), WS), Err(Error::ReauthorizationRequired(_))));
    assert_eq!(fake.post_count(), 2);
}

/// Issue 22, section 3: the refusal is recorded once, in the row (status,
/// code, time) and in the secret, and nothing sends the dead token again:
/// not this process, not a cold one, not by secret id.
#[test]
fn a_dead_refresh_token_is_recorded_once_and_never_sent_again() {
    let fake = Fake::with_token("a1", "r1", DUE);
    let (seen, seen_version) = (fake.stored(SECRET), stored_version(&fake));
    fake.answer_error(400, "invalid_grant");
    let e = resolve(&mut fake.call(), WS).unwrap_err();
    assert!(matches!(&e, Error::ReauthorizationRequired(m) if m.contains("linear-oauth setup")), "{e:?}");
    let row = fake.rows.borrow()[WS].clone();
    let at = format_instant(fake::START_MS);
    assert_eq!(row.status, "reauthorization_required");
    assert_eq!(
        (row.status_reason.as_deref(), row.status_changed_at.as_deref()),
        (Some("invalid_grant"), Some(at.as_str()))
    );
    assert_eq!(fake.registry_puts.get(), 1);
    let stored = fake.stored(SECRET);
    assert_eq!(stored.reauthorization_required(), Some((at.as_str(), "invalid_grant")));
    assert_eq!(stored.lineage(), "r1");
    assert_eq!(lease_written(&fake), Some(stored_version(&fake)), "the mark's version goes to the next lease taker");

    let dead = |r: Result<_, Error>| matches!(r, Err(Error::ReauthorizationRequired(m)) if m.contains("invalid_grant"));
    // This process, again, by workspace and by secret.
    assert!(dead(resolve(&mut fake.call(), WS)));
    assert!(dead(resolve_secret(&mut fake.call(), SECRET)));
    assert!(dead(force_refresh(&mut fake.call(), &Target::Secret(SECRET.into()))));
    // A process that read the secret before the mark and waited for the lease.
    assert!(dead(crate::refresh::refresh_single_flight(&mut fake.call(), SECRET, &seen, &seen_version)));
    // A cold process, by workspace (even from a remembered row) and by secret.
    for cold in [false, true] {
        fake.cache.borrow_mut().clear();
        fake.hints.borrow_mut().clear();
        if cold {
            remembered(&fake, SECRET);
        }
        assert!(dead(resolve(&mut fake.call(), WS)));
        fake.cache.borrow_mut().clear();
        assert!(dead(resolve_secret(&mut fake.call(), SECRET)));
    }
    assert_eq!(fake.post_count(), 1, "the dead token was sent once");
    assert_eq!((fake.registry_puts.get(), fake.puts.get()), (1, 1), "recorded once");
}

#[test]
fn a_revoked_row_is_not_marked_and_a_secret_without_a_row_is_marked_alone() {
    // Revoke's probe: the row is already revoked and stays so; the secret too.
    let fake = Fake::with_token("a1", "r1", DUE);
    fake.put_row(WS, SECRET, "revoked");
    fake.answer_error(400, "invalid_grant");
    assert!(resolve_secret(&mut fake.call(), SECRET).is_err());
    assert_eq!(fake.rows.borrow()[WS].status, "revoked");
    assert_eq!((fake.stored(SECRET).reauthorization_required(), fake.puts.get()), (None, 0));
    // No row for the secret: the secret alone is marked.
    let fake = Fake::with_token("a1", "r1", DUE);
    fake.rows.borrow_mut().clear();
    fake.answer_error(400, "invalid_grant");
    assert!(resolve_secret(&mut fake.call(), SECRET).is_err());
    assert!(fake.stored(SECRET).reauthorization_required().is_some());
    assert_eq!(fake.registry_puts.get(), 0);
}

#[test]
fn a_final_refusal_is_an_error_and_forgets_the_cached_token() {
    let fake = Fake::with_token("a1", "r1", DUE);
    fake.answer_error(400, "invalid_client");
    let e = resolve(&mut fake.call(), WS).unwrap_err();
    assert!(matches!(&e, Error::TokenEndpoint(t) if t.status == 400), "{e:?}");
    assert!(fake.logged("token refresh failed"));
    assert!(fake.cache_get_token().is_none());
    assert_eq!(fake.counted(), [Event::RefreshFailed], "a refused refresh token (not a client-credentials one)");
}

#[test]
fn a_transient_failure_is_served_through_and_remembered() {
    let fake = Fake::with_token("a1", "r1", DUE);
    // May have reached Linear: never sent again.
    fake.answer(|_| Err(Failure::MaybeSent("response timed out".into())));
    let r = resolve(&mut fake.call(), WS).unwrap();
    assert_eq!((r.access_token.as_str(), r.refresh_ahead_at_ms), ("a1", u64::MAX), "the unexpired token");
    assert_eq!(fake.post_count(), 1);
    // The callers that follow share the failure instead of sending again.
    fake.advance(1_000);
    assert_eq!(resolve(&mut fake.call(), WS).unwrap().access_token, "a1");
    assert_eq!(fake.post_count(), 1);
    // A forced refresh does not want the old token: it gets the error.
    let e = force_refresh(&mut fake.call(), &Target::Secret(SECRET.into())).unwrap_err();
    assert!(matches!(&e, Error::Transport(m) if m == "response timed out"), "{e:?}");
    // Once the memory lapses, a caller asks Linear again.
    fake.advance(10_000);
    fake.answer_token("a2", "r2");
    assert_eq!(resolve(&mut fake.call(), WS).unwrap().access_token, "a2");
    assert_eq!(fake.post_count(), 2);
    // Served stale twice (the failure, then its memory), failed once (forced).
    assert_eq!(fake.counted(), [Event::ServedStale, Event::ServedStale, Event::RefreshFailed, Event::RefreshOk]);
}

#[test]
fn a_rate_limit_is_retried_within_the_call_then_remembered_with_its_retry_after() {
    let fake = Fake::with_token("a1", "r1", DUE);
    for _ in 0..crate::tests::max_attempts() {
        fake.answer(|_| {
            let mut r = error_answer(429, "rate_limited");
            r.retry_after = Some("20".into());
            Ok(r)
        });
    }
    let started = fake.now.get();
    assert_eq!(resolve(&mut fake.call(), WS).unwrap().access_token, "a1");
    let sent = fake.post_count();
    assert_eq!(sent, 2, "one retry after 20 s; a second would end past the lease");
    assert_eq!(fake.counted(), [Event::RateLimited, Event::RateLimited, Event::ServedStale]);
    assert!(fake.now.get() - started < 60_000, "retries stay inside the call");
    // Remembered as long as Linear asked (20 s), past the 10 s failure memory.
    fake.advance(15_000);
    assert_eq!(resolve(&mut fake.call(), WS).unwrap().access_token, "a1");
    assert_eq!(fake.post_count(), sent);
}

#[test]
fn an_outage_past_the_token_expiry_is_an_error() {
    let fake = Fake::with_token("a1", "r1", 500);
    fake.answer(|_| Err(Failure::MaybeSent("connection reset".into())));
    assert!(matches!(resolve(&mut fake.call(), WS), Err(Error::Transport(_))));
}

#[test]
fn a_failed_write_keeps_the_unsaved_token_and_writes_it_on_a_later_call() {
    let fake = Fake::with_token("a1", "r1", DUE);
    fake.answer_token("a2", "r2");
    fake.failing_puts.set(u32::MAX);
    let r = resolve(&mut fake.call(), WS).unwrap();
    assert_eq!(r.access_token, "a2", "served from memory");
    assert_eq!(fake.stored(SECRET).lineage(), "r1");
    assert!(fake.cache.borrow().contains_key(&unsaved_key(SECRET)));
    assert_eq!(lease_written(&fake), None, "nothing written to hand on");
    let retries = fake.counted().iter().filter(|e| **e == Event::WriteBackRetry).count();
    assert_eq!(retries, super::write_back::WRITE_RETRY.len() - 1);
    assert_eq!(fake.counted().last(), Some(&Event::WriteBackFailure));
    // The store recovers: the next call writes the kept token, without a request.
    fake.failing_puts.set(0);
    fake.advance(2 * MINUTE);
    assert_eq!(resolve(&mut fake.call(), WS).unwrap().access_token, "a2");
    assert_eq!(fake.stored(SECRET).lineage(), "r2");
    assert!(!fake.cache.borrow().contains_key(&unsaved_key(SECRET)));
    assert_eq!(fake.post_count(), 1);
}

#[test]
fn a_command_whose_write_fails_reports_the_store_error() {
    let fake = Fake::with_token("a1", "r1", DUE);
    fake.answer_token("a2", "r2");
    fake.failing_puts.set(u32::MAX);
    let mut cx = Call::start(&fake, fake::Fake::settings());
    cx.s.lifetime = Lifetime::Command;
    let e = resolve(&mut cx, WS).unwrap_err();
    assert!(matches!(&e, Error::Store(m) if m.contains("could not be saved")), "{e:?}");
    assert!(fake.puts.get() > 1, "retried before giving up");
    assert!(!fake.cache.borrow().contains_key(&unsaved_key(SECRET)));
}

#[test]
fn a_write_that_succeeds_on_a_retry_is_saved() {
    let fake = Fake::with_token("a1", "r1", DUE);
    fake.answer_token("a2", "r2");
    fake.failing_puts.set(2);
    assert_eq!(resolve(&mut fake.call(), WS).unwrap().access_token, "a2");
    assert_eq!((fake.stored(SECRET).lineage(), fake.puts.get()), ("r2", 3));
    assert_eq!(fake.counted(), [Event::WriteBackRetry, Event::WriteBackRetry, Event::RefreshOk]);
}

/// A warm process: the row remembered as a hint, a due token.
fn remembered(fake: &Fake, secret_id: &str) {
    let row = Row {
        workspace_id: WS.into(),
        workspace_slug: "acme".into(),
        secret_id: secret_id.into(),
        status: "active".into(),
        status_reason: None,
        status_changed_at: None,
    };
    fake.hints.borrow_mut().insert(known_key(WS), row_to_json(&row));
}

#[test]
fn a_remembered_row_is_checked_by_the_lease_take_without_reading_the_registry() {
    let fake = Fake::with_token("a1", "r1", DUE);
    remembered(&fake, SECRET);
    fake.leases.borrow_mut().entry(refresh_key(SECRET)).or_default().written = Some(stored_version(&fake));
    fake.answer_token("a2", "r2");
    assert_eq!(resolve(&mut fake.call(), WS).unwrap().access_token, "a2");
    assert_eq!((fake.registry_reads.get(), fake.post_count()), (0, 1));
}

#[test]
fn a_remembered_row_that_moved_resolves_the_secret_it_names_now() {
    let fake = Fake::with_token("a1", "r1", DUE);
    remembered(&fake, SECRET);
    fake.put_row(WS, "secret-new", "active");
    fake.store("secret-new", &fake.token("n1", "rn1", FRESH));
    let r = resolve(&mut fake.call(), WS).unwrap();
    assert_eq!((r.secret_id.as_str(), r.access_token.as_str()), ("secret-new", "n1"));
    assert_eq!(fake.post_count(), 0, "no refresh of the secret the row no longer names");
    // Fresh tokens are checked too: the row is read before answering.
    let fake = Fake::with_token("a1", "r1", FRESH);
    remembered(&fake, SECRET);
    fake.put_row(WS, "secret-new", "active");
    fake.store("secret-new", &fake.token("n1", "rn1", FRESH));
    assert_eq!(resolve(&mut fake.call(), WS).unwrap().secret_id, "secret-new");
}

#[test]
fn a_remembered_row_since_revoked_ends_before_any_request() {
    let fake = Fake::with_token("a1", "r1", DUE);
    remembered(&fake, SECRET);
    fake.put_row(WS, SECRET, "revoked");
    let e = resolve(&mut fake.call(), WS).unwrap_err();
    assert!(matches!(e, Error::Revoked(_)), "{e:?}");
    assert_eq!(fake.post_count(), 0);
    assert!(!fake.hints.borrow().contains_key(&known_key(WS)), "the hint is forgotten");
}

#[test]
fn a_secret_marked_revoked_is_never_served_or_refreshed() {
    let fake = Fake::with_token("a1", "r1", DUE);
    fake.store(SECRET, &fake.stored(SECRET).marked_revoked(&format_instant(fake.now.get())));
    for r in [resolve(&mut fake.call(), WS), resolve_secret(&mut fake.call(), SECRET)] {
        assert!(matches!(r, Err(Error::Revoked(_))), "{r:?}");
    }
    assert_eq!(fake.post_count(), 0);
}

#[test]
fn a_revoke_during_the_refresh_drops_the_refreshed_token() {
    let fake = Fake::with_token("a1", "r1", DUE);
    fake.answer(|f| {
        f.store(SECRET, &f.stored(SECRET).marked_revoked(&format_instant(f.now.get())));
        Ok(token_answer("a2", "r2"))
    });
    assert!(matches!(resolve(&mut fake.call(), WS), Err(Error::Revoked(_))));
    assert!(fake.stored(SECRET).revoked_at().is_some());
    assert_eq!(fake.stored(SECRET).lineage(), "r1");
}

#[test]
fn a_401_report_refreshes_only_the_stored_token() {
    for target in [Target::Workspace(WS.into()), Target::Secret(SECRET.into())] {
        let fake = Fake::with_token("a1", "r1", FRESH);
        // A token that is no longer the stored one: the stored one, no request.
        assert_eq!(report_unauthorized(&mut fake.call(), &target, "old").unwrap().access_token, "a1");
        assert_eq!(fake.post_count(), 0);
        fake.answer_token("a2", "r2");
        assert_eq!(report_unauthorized(&mut fake.call(), &target, "a1").unwrap().access_token, "a2");
        assert_eq!(fake.post_count(), 1);
        // The report about a1 again (a slower caller): a2, still one request.
        assert_eq!(report_unauthorized(&mut fake.call(), &target, "a1").unwrap().access_token, "a2");
        assert_eq!(fake.post_count(), 1, "{target:?}");
    }
}

#[test]
fn a_401_report_by_secret_id_honours_the_revoked_mark() {
    let fake = Fake::with_token("a1", "r1", FRESH);
    fake.store(SECRET, &fake.stored(SECRET).marked_revoked(&format_instant(fake.now.get())));
    let r = report_unauthorized(&mut fake.call(), &Target::Secret(SECRET.into()), "a1");
    assert!(matches!(r, Err(Error::Revoked(_))), "{r:?}");
    assert_eq!(fake.post_count(), 0);
}

#[test]
fn an_overlong_id_is_invalid_input_with_cores_message() {
    let fake = Fake::with_token("a1", "r1", FRESH);
    let e = resolve(&mut fake.call(), &":".repeat(67)).unwrap_err();
    assert!(matches!(&e, Error::InvalidInput(m) if m.starts_with("workspace id is too long: 67 bytes, 201")), "{e:?}");
}

fn max_attempts() -> usize {
    usize::try_from(linear_oauth_core::MAX_ATTEMPTS).unwrap()
}

impl Fake {
    fn cache_get_token(&self) -> Option<String> {
        crate::io::Io::cache_get(self, &crate::keys::token_key(SECRET))
    }
}

#[test]
fn waiting_for_another_holders_lease_counts_one_lease_wait() {
    let fake = Fake::with_token("a1", "r1", DUE);
    fake.leases
        .borrow_mut()
        .insert(refresh_key(SECRET), fake::LeaseState { holder: Some("other".into()), written: None });
    let e = resolve(&mut fake.call(), WS).unwrap_err();
    assert!(matches!(&e, Error::Transport(m) if m.contains("another process")), "{e:?}");
    assert_eq!(fake.counted(), [Event::LeaseWait], "one wait, however many polls");
    assert_eq!(fake.post_count(), 0);
}
