//! Operator actions against the test server: inspect, force refresh, and
//! `revoke` (what Linear is sent, the outcome, what is kept or purged).

use super::*;

#[test]
fn inspect_redacts_and_validates() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 30);
    let r = resolver_with(&server, &b, None);
    let i = r.inspect(Target::Secret(&s.secret_id)).unwrap();
    assert!(i.invalid_fields.is_empty());
    assert!(i.needs_refresh);
    assert!(i.expires_in_ms.unwrap() <= 30_000 && i.expires_in_ms.unwrap() > 0);
    let shown = format!("{i:?}");
    assert!(!shown.contains(&s.access) && !shown.contains(&s.refresh) && !shown.contains(CLIENT_SECRET), "{shown}");
    let field = |n: &str| i.fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap();
    assert!(field("access_token").starts_with("[redacted sha256:"));
    assert_eq!(field("workspace_slug"), "acme");
    // Unknown fields may hold secrets (old_refresh_token, id_token): never shown in clear.
    assert_eq!(field("team_hint"), "[redacted]");

    b.secrets.put("half", r#"{"access_token":"x","scope":""}"#, None).unwrap();
    let i = r.inspect(Target::Secret("half")).unwrap();
    assert_eq!(i.invalid_fields.len(), 10);
    assert_eq!(i.expires_in_ms, None);
    assert!(matches!(r.inspect(Target::Secret("absent")), Err(Error::SecretMissing(_))));

    // A truncated secret is "not valid JSON", not eleven missing fields.
    b.secrets.put("truncated", r#"{"access_token":"x","#, None).unwrap();
    assert_eq!(r.inspect(Target::Secret("truncated")).unwrap().invalid_fields, vec!["<not valid JSON>".to_owned()]);
    match r.resolve_secret("truncated") {
        Err(Error::InvalidStoredToken(f)) => assert_eq!(f, vec!["<not valid JSON>".to_owned()]),
        other => panic!("{other:?}"),
    }
    b.secrets
        .put("secretive", &serde_json::json!({"old_refresh_token": "lin_oauth_OLD_SECRET_x"}).to_string(), None)
        .unwrap();
    let shown = format!("{:?}", r.inspect(Target::Secret("secretive")).unwrap());
    assert!(!shown.contains("lin_oauth_OLD_SECRET_x") && shown.contains("[redacted sha256:"), "{shown}");
}

/// Operator actions by workspace id go through the component (the CLI no
/// longer reads the registry itself): the row comes back with the
/// inspection, a refresh needs an active row.
#[test]
fn operator_actions_take_a_workspace_or_a_secret() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    let r = resolver_with(&server, &b, None);
    let row = |status: &str| RegistryRow {
        workspace_id: s.workspace_id.clone(),
        workspace_slug: "acme".into(),
        secret_id: s.secret_id.clone(),
        status: status.into(),
        ..Default::default()
    };

    let by_ws = r.inspect(Target::Workspace(&s.workspace_id)).unwrap();
    assert_eq!((by_ws.secret_id.as_str(), by_ws.registry.clone()), (s.secret_id.as_str(), Some(row("active"))));
    // A secret target finds the row of the workspace its token names.
    assert_eq!(r.inspect(Target::Secret(&s.secret_id)).unwrap().registry, Some(row("active")));
    // ... only when that row points back at it.
    b.secrets.put("copy", &b.secrets.get(&s.secret_id).unwrap().unwrap().value, None).unwrap();
    assert_eq!(r.inspect(Target::Secret("copy")).unwrap().registry, None);
    assert!(matches!(r.inspect(Target::Workspace("org-nobody")), Err(Error::NotRegistered(_))));

    let before = server.counters().token_refresh_ok;
    let t = r.force_refresh(Target::Workspace(&s.workspace_id)).unwrap();
    assert_eq!(server.counters().token_refresh_ok, before + 1, "a fresh token is refreshed anyway");
    assert_ne!(t.access_token(), s.access.as_str());
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token(), t.access_token(), "the cache has the new token");
    assert!(matches!(r.force_refresh(Target::Workspace("org-nobody")), Err(Error::NotRegistered(_))));

    b.registry.put(&row("revoked")).unwrap();
    r.invalidate(&s.workspace_id);
    assert!(matches!(r.force_refresh(Target::Workspace(&s.workspace_id)), Err(Error::Revoked(_))));
    assert_eq!(server.counters().token_refresh_ok, before + 1, "nothing sent for a revoked workspace");
    // A revoked workspace can still be looked at.
    assert_eq!(r.inspect(Target::Workspace(&s.workspace_id)).unwrap().registry, Some(row("revoked")));
}

/// The stored token's `(access_token, refresh_token, expires_at)`.
fn stored_pair(b: &linear_oauth_host::Backends, secret_id: &str) -> (String, String, String) {
    let v = stored(b, secret_id);
    let f = |k: &str| v[k].as_str().unwrap().to_owned();
    (f("access_token"), f("refresh_token"), f("expires_at"))
}

#[test]
fn revoke_ends_the_grant_at_linear() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    let log = Arc::new(Captured::default());
    let r = resolver_with(&server, &b, Some(log.clone()));
    r.resolve(&s.workspace_id).unwrap();
    let rev = r.revoke(&s.workspace_id, false, false).unwrap();
    assert_eq!(rev.outcome, RevokeOutcome::Revoked, "{rev:?}");
    assert_eq!(rev.linear_status, Some(200));
    assert!(!rev.purged);
    // Really dead at Linear: every token of the grant.
    assert!(!server.access_token_live(&s.access) && !server.refresh_token_live(&s.refresh));
    assert_eq!(b.registry.get(&s.workspace_id).unwrap().unwrap().status, "revoked");
    assert!(matches!(r.resolve(&s.workspace_id), Err(Error::Revoked(_))), "cached token not served after revoke");
    // The kept secret is marked revoked (and expired, for old readers), so the
    // secret paths are revoked too, without asking Linear.
    assert!(b.secrets.get(&s.secret_id).unwrap().is_some());
    let posts = server.counters().token_requests;
    assert!(matches!(r.resolve_secret(&s.secret_id), Err(Error::Revoked(_))));
    assert!(matches!(r.force_refresh(Target::Secret(&s.secret_id)), Err(Error::Revoked(_))));
    assert_eq!(server.counters().token_requests, posts);
    let shown = format!("{rev:?} {}", log.text());
    assert!(!shown.contains(&s.access) && !shown.contains(&s.refresh) && !shown.contains(CLIENT_SECRET), "{shown}");

    // Again, with purge: Linear cannot revoke a dead grant, the refresh proves it dead.
    let again = r.revoke(&s.workspace_id, true, false).unwrap();
    assert_eq!(again.outcome, RevokeOutcome::AlreadyDead, "{again:?}");
    assert!(again.purged);
    assert!(b.secrets.get(&s.secret_id).unwrap().is_none());
    assert!(matches!(r.revoke("org-none", false, false), Err(Error::NotRegistered(_))));
}

#[test]
fn revoke_of_a_grant_revoked_out_of_band_is_already_dead() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    let r = resolver_with(&server, &b, None);
    assert!(server.revoke_grant(&s.refresh));
    let before = server.counters();
    let rev = r.revoke(&s.workspace_id, true, false).unwrap();
    assert_eq!(rev.outcome, RevokeOutcome::AlreadyDead, "{rev:?}");
    assert!(rev.outcome.confirmed());
    // Bearer 401, then the refresh token 400, then the refresh answered invalid_grant.
    let after = server.counters();
    assert_eq!((after.revoke - before.revoke, after.invalid_grant - before.invalid_grant), (2, 1));
    assert_eq!(rev.linear_status, Some(400));
    assert!(rev.purged && b.secrets.get(&s.secret_id).unwrap().is_none());
    assert_eq!(b.registry.get(&s.workspace_id).unwrap().unwrap().status, "revoked");
}

#[test]
fn revoke_with_an_expired_access_token_sends_the_refresh_token() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", -60);
    let r = resolver_with(&server, &b, None);
    let rev = r.revoke(&s.workspace_id, false, false).unwrap();
    assert_eq!((rev.outcome, rev.linear_status), (RevokeOutcome::Revoked, Some(200)));
    assert_eq!(server.counters().revoke, 1, "no Bearer attempt with an expired token");
    assert!(!server.refresh_token_live(&s.refresh) && !server.access_token_live(&s.access));
}

#[test]
fn revoke_when_linear_fails_marks_the_row_and_keeps_the_secret() {
    let (server, b, s, r) = acme(3600);
    revoke_fails_next(&server, 1, 503);
    let rev = r.revoke(&s.workspace_id, true, false).unwrap();
    let RevokeOutcome::Failed(reason) = &rev.outcome else { panic!("{rev:?}") };
    assert!(reason.contains("503"), "{reason}");
    assert_eq!(rev.linear_status, Some(503));
    assert!(!rev.purged, "purge waits for a confirmed revoke");
    assert_eq!(b.registry.get(&s.workspace_id).unwrap().unwrap().status, "revoked", "fail closed");
    assert!(server.refresh_token_live(&s.refresh), "nothing reached the grant");
    let (access, refresh, expires_at) = stored_pair(&b, &s.secret_id);
    assert_eq!((access.as_str(), refresh.as_str()), (s.access.as_str(), s.refresh.as_str()));
    assert!(expires_at <= in_secs(0), "kept secret marked expired: {expires_at}");
    assert!(matches!(r.resolve(&s.workspace_id), Err(Error::Revoked(_))));

    // Linear unreachable: failed too.
    let mut o = options(&server);
    o.api_base = format!("http://127.0.0.1:{}", closed_port());
    let offline = linear_oauth_host::Resolver::with_backends(o, b.clone()).unwrap();
    let rev = offline.revoke(&s.workspace_id, true, false).unwrap();
    assert!(matches!(rev.outcome, RevokeOutcome::Failed(_)), "{rev:?}");
    assert_eq!((rev.linear_status, rev.purged), (None, false));

    // Once Linear answers, the next revoke confirms (with the refresh token:
    // the stored access token is marked expired) and purges.
    let rev = r.revoke(&s.workspace_id, true, false).unwrap();
    assert_eq!(rev.outcome, RevokeOutcome::Revoked, "{rev:?}");
    assert!(rev.purged);
    assert!(!server.refresh_token_live(&s.refresh));
}

/// A loopback port nobody listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn purge_without_confirmation_keeps_the_secret_unless_forced() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    let r = resolver_with(&server, &b, None);
    // Linear refuses both revokes although the grant is live.
    let refuse_twice =
        || FaultsPatch { revoke_fail_next: Some(FailNext { count: 2, status: 400, body: None }), ..Default::default() };
    server.set_faults(refuse_twice());
    let rev = r.revoke(&s.workspace_id, true, false).unwrap();
    let RevokeOutcome::NotConfirmed(detail) = &rev.outcome else { panic!("{rev:?}") };
    assert!(detail.contains("live"), "{detail}");
    assert!(!rev.purged && b.secrets.get(&s.secret_id).unwrap().is_some());
    // The probing refresh found the grant live; its rotated token was written back.
    let (_, refresh, expires_at) = stored_pair(&b, &s.secret_id);
    assert_ne!(refresh, s.refresh);
    assert!(server.refresh_token_live(&refresh), "the stored refresh token is the live one");
    assert!(expires_at <= in_secs(0), "kept secret marked expired: {expires_at}");
    assert_eq!(server.counters().revoke, 2);

    server.set_faults(refuse_twice());
    let rev = r.revoke(&s.workspace_id, true, true).unwrap();
    assert!(matches!(rev.outcome, RevokeOutcome::NotConfirmed(_)), "{rev:?}");
    assert!(rev.purged, "force deletes anyway");
    assert!(b.secrets.get(&s.secret_id).unwrap().is_none());
}

#[test]
fn revoke_with_a_live_grant_after_a_refusal_revokes_with_the_refreshed_token() {
    let (server, b, s, r) = acme(3600);
    revoke_fails_next(&server, 1, 400);
    let rev = r.revoke(&s.workspace_id, false, false).unwrap();
    assert_eq!(rev.outcome, RevokeOutcome::Revoked, "{rev:?}");
    let (access, refresh, _) = stored_pair(&b, &s.secret_id);
    assert_ne!(refresh, s.refresh, "the rotated token was written back");
    assert!(
        !server.refresh_token_live(&refresh)
            && !server.access_token_live(&access)
            && !server.access_token_live(&s.access)
    );
}

#[test]
fn revoke_without_a_readable_token_is_not_confirmed() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 3600);
    let r = resolver_with(&server, &b, None);
    b.secrets.put(&s.secret_id, r#"{"access_token":"x"}"#, None).unwrap();
    let rev = r.revoke(&s.workspace_id, true, false).unwrap();
    assert!(matches!(&rev.outcome, RevokeOutcome::NotConfirmed(m) if m.contains("unreadable")), "{rev:?}");
    assert!(!rev.purged && b.secrets.get(&s.secret_id).unwrap().is_some());
    assert_eq!(server.counters().revoke, 0);
    assert_eq!(b.registry.get(&s.workspace_id).unwrap().unwrap().status, "revoked");
}
