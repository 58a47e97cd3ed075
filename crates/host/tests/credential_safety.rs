//! Issue 20 items 1-3: nothing outlives an invocation, revoked means revoked
//! on every path, and one workspace's token is never another's.

mod common;

use std::time::Duration;

use common::*;
use linear_oauth_host::{Error, InstallParams, Lifetime, Options, Resolver, RevokeOutcome, Target};
use linear_oauth_testserver::fixtures;
use linear_oauth_testserver::Organization;

fn with_lifetime(
    server: &linear_oauth_testserver::TestServer,
    b: &linear_oauth_host::Backends,
    l: Lifetime,
) -> Resolver {
    Resolver::with_backends(Options { lifetime: Some(l), ..options(server) }, b.clone()).unwrap()
}

/// A token 5 minutes from expiry: inside refresh-ahead (600 s) + threshold
/// (60 s), outside the threshold alone.
const INSIDE_AHEAD_S: i64 = 300;

#[test]
fn an_invocation_refreshes_ahead_inline_and_nothing_runs_after_the_call() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", INSIDE_AHEAD_S);
    let sink = std::sync::Arc::new(Captured::default());
    let o = Options { lifetime: Some(Lifetime::Invocation), log_sink: Some(sink.clone()), ..options(&server) };
    let r = Resolver::with_backends(o, b.clone()).unwrap();
    let ready = sink.text().matches("Info linear-oauth resolver ready").count();
    assert_eq!(ready, 1, "the lifetime is logged once, at construction: {}", sink.text());
    assert!(sink.text().contains(r#"("lifetime", "invocation")"#), "{}", sink.text());
    let t = r.resolve(&s.workspace_id).unwrap();
    // The refresh happened inside the call: the caller has the new token,
    // and the store holds it the moment the call returns.
    assert_ne!(t.access_token(), s.access, "refreshed inline, not in the background");
    assert_eq!(stored(&b, &s.secret_id)["access_token"], t.access_token().secret());
    assert!(!server.refresh_token_live(&s.refresh));
    assert_eq!(server.counters().token_refresh_ok, 1);
    // Served from memory afterwards, and no background refresh is started.
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token(), t.access_token());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.counters().token_requests, 1);
}

#[test]
fn a_long_lived_resolver_answers_at_once_and_refreshes_in_the_background() {
    // The contrast to the invocation case: this is what strands a token in a
    // frozen Lambda.
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", INSIDE_AHEAD_S);
    let r = with_lifetime(&server, &b, Lifetime::LongLived);
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token(), s.access, "the valid token, at once");
    for _ in 0..100 {
        if server.counters().token_refresh_ok == 1 && stored(&b, &s.secret_id)["access_token"] != s.access.as_str() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no background refresh");
}

#[test]
fn an_invocation_that_cannot_save_the_rotated_token_still_hands_it_to_its_caller() {
    let server = server();
    let b = memory();
    let s = seed(&server, &b, "acme", 10);
    let sink = std::sync::Arc::new(Captured::default());
    let (_, failing) = failing_puts(&b, Duration::ZERO);
    let o = Options { lifetime: Some(Lifetime::Invocation), log_sink: Some(sink.clone()), ..options(&server) };
    let t = Resolver::with_backends(o, failing).unwrap().resolve_secret(&s.secret_id).unwrap();
    assert_ne!(t.access_token(), s.access, "the rotated token reaches the caller");
    let log = sink.text();
    assert!(log.contains("Error refreshed token could not be written back within the call"), "{log}");
    assert!(!log.contains(t.access_token().secret()), "no secret in the log");
    // A command fails instead (it cannot report success over memory only).
    let s2 = seed(&server, &b, "beta", 10);
    let (_, failing) = failing_puts(&b, Duration::ZERO);
    let o = Options { lifetime: Some(Lifetime::Command), ..options(&server) };
    let e = Resolver::with_backends(o, failing).unwrap().resolve_secret(&s2.secret_id).unwrap_err();
    assert!(matches!(e, Error::Store(_)), "{e:?}");
}

#[test]
fn a_revoke_linear_did_not_confirm_still_stops_every_secret_path() {
    let (server, b, s, r) = acme(3600);
    revoke_fails_next(&server, 1, 503);
    let rev = r.revoke(&s.workspace_id, false, false).unwrap();
    assert!(matches!(rev.outcome, RevokeOutcome::Failed(_)), "{rev:?}");
    assert!(stored(&b, &s.secret_id)["revoked_at"].is_string(), "the kept secret says it was revoked");
    let before = server.counters().token_requests;
    // Every path, in this resolver and in a fresh one (another process).
    for r in [r.clone(), resolver_with(&server, &b, None)] {
        let paths: [(&str, linear_oauth_host::Result<_>); 4] = [
            ("resolve", r.resolve(&s.workspace_id)),
            ("resolve_secret", r.resolve_secret(&s.secret_id)),
            ("force_refresh(secret)", r.force_refresh(Target::Secret(&s.secret_id))),
            ("force_refresh(workspace)", r.force_refresh(Target::Workspace(&s.workspace_id))),
        ];
        for (path, result) in paths {
            assert!(matches!(result, Err(Error::Revoked(_))), "{path}: {result:?}");
        }
        let ahead = Resolver::with_backends(
            Options {
                refresh_ahead: Duration::from_secs(7200),
                lifetime: Some(Lifetime::LongLived),
                ..options(&server)
            },
            b.clone(),
        )
        .unwrap();
        assert!(matches!(ahead.resolve_secret(&s.secret_id), Err(Error::Revoked(_))));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(server.counters().token_requests, before, "no token POST on any path");
    assert!(server.refresh_token_live(&s.refresh), "the grant was not touched");

    // Revoke again once Linear answers: the mark does not stop the revoke's
    // own probe, and the grant ends.
    let rev = r.revoke(&s.workspace_id, false, false).unwrap();
    assert!(rev.outcome == RevokeOutcome::Revoked || rev.outcome == RevokeOutcome::AlreadyDead, "{rev:?}");
    assert!(!server.refresh_token_live(&s.refresh));
}

fn install(r: &Resolver, secret_id: Option<&str>) -> linear_oauth_host::Result<linear_oauth_host::Installed> {
    let p = InstallParams {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        redirect_uri: "http://localhost:8080/oauth/callback".into(),
        scopes: vec!["read write".into()],
        actor_app: true,
        prompt_consent: true,
        secret_id: secret_id.map(str::to_owned),
    };
    let pending = r.begin_install(&p)?;
    let (_, location) = fixtures::browser_get(&pending.authorize_url).unwrap();
    let location = location.unwrap();
    let code = r.parse_callback(&pending, &location[location.find('?').unwrap()..])?;
    r.complete_install(&p, pending, code, "tester")
}

fn org(id: &str, url_key: &str) -> Organization {
    Organization { id: id.into(), name: format!("Org {id}"), url_key: url_key.into() }
}

#[test]
fn setup_clears_the_revoked_mark() {
    let server = server();
    let b = memory();
    let r = resolver_with(&server, &b, None);
    server.set_organization(org("org-x", "acme"));
    let installed = install(&r, None).unwrap();
    revoke_fails_next(&server, 1, 503);
    r.revoke(&installed.workspace_id, false, false).unwrap();
    assert!(matches!(r.resolve_secret(&installed.secret_id), Err(Error::Revoked(_))));
    install(&r, None).unwrap();
    assert!(stored(&b, &installed.secret_id).get("revoked_at").is_none());
    r.resolve_secret(&installed.secret_id).unwrap();
    r.resolve(&installed.workspace_id).unwrap();
}

#[test]
fn setup_never_overwrites_another_workspaces_secret() {
    let server = server();
    let b = memory();
    let r = resolver_with(&server, &b, None);
    server.set_organization(org("org-x", "acme"));
    let x = install(&r, None).unwrap();
    let x_token = r.resolve(&x.workspace_id).unwrap();
    // Org X renamed its url key; org Y took "acme".
    server.set_organization(org("org-y", "acme"));
    let e = install(&r, None).unwrap_err();
    let Error::InvalidInput(m) = &e else { panic!("{e:?}") };
    assert!(m.contains("org-x") && m.contains("org-y") && m.contains("--secret-id"), "{m}");
    assert_eq!(stored(&b, &x.secret_id)["workspace_id"], "org-x", "X's secret untouched");
    assert!(b.registry.get("org-y").unwrap().is_none(), "nothing written for Y");
    r.invalidate(&x.workspace_id);
    assert_eq!(r.resolve(&x.workspace_id).unwrap().access_token(), x_token.access_token());

    // With a secret name of its own, Y installs beside X.
    let y = install(&r, Some("bgagent-linear-oauth-acme-y")).unwrap();
    assert_eq!(y.secret_id, "bgagent-linear-oauth-acme-y");
    assert_eq!(b.registry.get("org-y").unwrap().unwrap().secret_id, y.secret_id);
    assert_ne!(r.resolve("org-y").unwrap().access_token(), x_token.access_token());
    assert_eq!(r.resolve("org-x").unwrap().access_token(), x_token.access_token());
}

#[test]
fn a_row_that_leads_to_another_workspaces_token_fails_closed() {
    let server = server();
    let b = memory();
    let x = seed(&server, &b, "acme", 3600);
    let y = seed(&server, &b, "other", 3600);
    // X's row names Y's secret (as an old overwrite left it).
    let mut row = b.registry.get(&x.workspace_id).unwrap().unwrap();
    row.secret_id = y.secret_id.clone();
    b.registry.put(&row).unwrap();
    let sink = std::sync::Arc::new(Captured::default());
    let r = resolver_with(&server, &b, Some(sink.clone()));
    for result in [r.resolve(&x.workspace_id), r.force_refresh(Target::Workspace(&x.workspace_id))] {
        let e = result.unwrap_err();
        let Error::InvalidStoredToken(fields) = &e else { panic!("{e:?}") };
        assert!(fields[0].starts_with("workspace_id") && fields[0].contains(&y.workspace_id), "{fields:?}");
    }
    assert!(!sink.text().contains(&y.access), "no token in the log");
    assert_eq!(server.counters().token_requests, 0);
    // Y's own path still works.
    assert_eq!(r.resolve(&y.workspace_id).unwrap().access_token(), y.access);
}
