//! Client-credentials workspaces (issue 10, item 5): install without a
//! browser, renew by fetching a new token (Linear issues no refresh token and
//! keeps one active token per app), revoke with the access token alone.

mod common;

use std::sync::Arc;

use common::*;
use linear_oauth_host::{Backends, ClientCredentialsParams, Error, InstallParams, RevokeOutcome, Target};
use linear_oauth_testserver::{fixtures, ClientConfig, TestServer};
use serde_json::Value;

/// An app whose secret is easy to spot if it ever leaks.
const APP_ID: &str = "cc-app";
const APP_SECRET: &str = "cc-secret-canary-7f3a";

fn app(server: &TestServer) -> ClientCredentialsParams {
    server.add_client(ClientConfig::new(APP_ID, APP_SECRET, ["http://localhost:8080/oauth/callback"]));
    ClientCredentialsParams {
        client_id: APP_ID.into(),
        client_secret: APP_SECRET.into(),
        scopes: vec!["read,write".into()],
        secret_id: None,
    }
}

/// Whether an ISO-8601 instant (the project's fixed format, so strings
/// compare like instants) lies between `lo_s` and `hi_s` seconds from now.
fn expires_within(expires_at: &str, lo_s: i64, hi_s: i64) -> bool {
    in_secs(lo_s).as_str() <= expires_at && expires_at <= in_secs(hi_s).as_str()
}

/// A registered workspace holding the app's live client-credentials token,
/// stored as expiring in `expires_in_s`.
fn seed_cc(server: &TestServer, b: &Backends, slug: &str, expires_in_s: i64) -> Seeded {
    let issued = server.issue_client_credentials(CLIENT_ID, "read write", 2_591_999);
    let workspace_id = format!("org-{slug}");
    let secret_id = format!("bgagent-linear-oauth-{slug}");
    let mut v = fixtures::stored_token(&issued.access_token, "unused", &in_secs(expires_in_s), &workspace_id, slug);
    let o = v.as_object_mut().unwrap();
    o.remove("refresh_token");
    o.insert("grant_type".into(), "client_credentials".into());
    b.secrets.put(&secret_id, &v.to_string(), None).unwrap();
    b.registry
        .put(&linear_oauth_host::RegistryRow {
            workspace_id: workspace_id.clone(),
            workspace_slug: slug.into(),
            secret_id: secret_id.clone(),
            status: "active".into(),
            ..Default::default()
        })
        .unwrap();
    Seeded { workspace_id, secret_id, access: issued.access_token, refresh: String::new() }
}

#[test]
fn install_fetches_identifies_stores_and_registers() {
    let server = server();
    let b = memory();
    let r = resolver_with(&server, &b, None);
    let installed = r.install_client_credentials(&app(&server), "platform-user-3").unwrap();
    assert_eq!((installed.workspace_slug.as_str(), installed.scope.as_str()), ("testws", "read write"));
    assert!(!installed.replaced);
    let stored = stored(&b, &installed.secret_id);
    assert_eq!(stored["grant_type"], "client_credentials");
    assert!(stored.get("refresh_token").is_none(), "{}", stored.as_object().unwrap().len());
    assert_eq!((stored["client_id"].as_str(), stored["client_secret"].as_str()), (Some(APP_ID), Some(APP_SECRET)));
    assert_eq!(stored["installed_by_platform_user_id"], "platform-user-3");
    assert!(
        expires_within(stored["expires_at"].as_str().unwrap(), 2_591_000, 2_592_000),
        "30 days: {}",
        stored["expires_at"]
    );
    let row = b.registry.get(&installed.workspace_id).unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.secret_id.as_str()), ("active", installed.secret_id.as_str()));

    let t = r.resolve(&installed.workspace_id).unwrap();
    assert_eq!(t.access_token(), stored["access_token"].as_str().unwrap());
    assert!(server.access_token_live(t.access_token().secret()));
    let c = server.counters();
    assert_eq!((c.token_requests, c.token_client_credentials, c.graphql), (1, 1, 1), "{c:?}");
}

#[test]
fn an_authorization_code_install_and_refresh_still_write_exactly_the_eleven_fields_and_the_app_user() {
    let server = server();
    let b = memory();
    let r = resolver_with(&server, &b, None);
    let p = InstallParams {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        redirect_uri: "http://localhost:8080/oauth/callback".into(),
        scopes: vec!["read write".into()],
        actor_app: true,
        prompt_consent: true,
        secret_id: None,
    };
    // Installed over a client-credentials secret: the grant marker must go.
    let cc = r.install_client_credentials(&app(&server), "u").unwrap();
    let pending = r.begin_install(&p).unwrap();
    let (_, location) = fixtures::browser_get(&pending.authorize_url).unwrap();
    let location = location.unwrap();
    let code = r.parse_callback(&pending, &location[location.find('?').unwrap()..]).unwrap();
    let installed = r.complete_install(&p, pending, code, "u").unwrap();
    assert_eq!(installed.secret_id, cc.secret_id);
    let keys = |v: Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let mut eleven: Vec<String> = [
        "access_token",
        "refresh_token",
        "expires_at",
        "scope",
        "client_id",
        "client_secret",
        "workspace_id",
        "workspace_slug",
        "installed_at",
        "updated_at",
        "installed_by_platform_user_id",
        // actor=app: the viewer is the app user, whose id is kept (issue 22).
        "app_user_id",
    ]
    .map(String::from)
    .to_vec();
    eleven.sort();
    assert_eq!(keys(stored(&b, &installed.secret_id)), eleven);
    r.force_refresh(Target::Secret(&installed.secret_id)).unwrap();
    assert_eq!(keys(stored(&b, &installed.secret_id)), eleven);
    assert_eq!(server.counters().token_refresh_ok, 1, "an authorization-code token is still refreshed");
}

#[test]
fn an_expiring_token_is_fetched_anew_once_for_many_threads_and_two_resolvers() {
    let server = server();
    let b = memory();
    let seeded = seed_cc(&server, &b, "ccburst", 30);
    let resolvers = [resolver_with(&server, &b, None), resolver_with(&server, &b, None)];
    let tokens: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..32)
            .map(|i| {
                let r = &resolvers[i % 2];
                let ws = seeded.workspace_id.clone();
                s.spawn(move || r.resolve(&ws).unwrap().access_token().secret().to_owned())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let c = server.counters();
    assert_eq!((c.token_requests, c.token_client_credentials_ok, c.token_refresh), (1, 1, 0), "{c:?}");
    assert!(tokens.iter().all(|t| *t == tokens[0]), "every caller gets the one new token");
    assert_ne!(tokens[0], seeded.access);
    assert!(server.access_token_live(&tokens[0]));
    assert!(!server.access_token_live(&seeded.access), "Linear keeps one active token per app");
    let stored = stored(&b, &seeded.secret_id);
    assert_eq!(stored["access_token"].as_str(), Some(tokens[0].as_str()));
    assert_eq!(stored["grant_type"], "client_credentials");
    assert!(stored.get("refresh_token").is_none());
    assert_eq!(stored["team_hint"]["kept"], true, "unknown fields survive the fetch");
    assert!(expires_within(stored["expires_at"].as_str().unwrap(), 2_591_000, 2_592_000));
}

#[test]
fn another_process_finds_the_new_token_in_the_store_without_a_post() {
    let server = server();
    let b = memory();
    let seeded = seed_cc(&server, &b, "ccother", 3600);
    let (a, other) = (resolver_with(&server, &b, None), resolver_with(&server, &b, None));
    assert_eq!(a.resolve(&seeded.workspace_id).unwrap().access_token(), seeded.access);
    // The other process renews: the token `a` holds dies at Linear.
    let fresh = other.force_refresh(Target::Secret(&seeded.secret_id)).unwrap();
    assert!(!server.access_token_live(&seeded.access));
    assert_eq!(server.counters().token_requests, 1);
    // `a` got a 401 with its token; it forgets its cache and reads the store.
    a.invalidate(&seeded.workspace_id);
    assert_eq!(a.resolve(&seeded.workspace_id).unwrap().access_token(), fresh.access_token());
    assert_eq!(server.counters().token_requests, 1, "no POST: the store had the new token");
}

#[test]
fn a_disabled_grant_names_the_linear_setting_and_writes_nothing() {
    let server = server();
    let b = memory();
    let r = resolver_with(&server, &b, None);
    let params = app(&server);
    server.set_client_credentials(APP_ID, false);
    let err = r.install_client_credentials(&params, "u").unwrap_err();
    let Error::TokenEndpoint { status: 400, code, description, .. } = &err else { panic!("{err:?}") };
    assert_eq!(code.as_deref(), Some("Error"));
    let d = description.as_deref().unwrap();
    assert!(d.contains("Client credentials") && d.contains("app's settings"), "{d}");
    assert!(d.contains("Client does not support the client_credentials grant type"), "Linear's words kept: {d}");
    assert!(b.registry.list().unwrap().is_empty());

    // A stored token due for renewal: the same error, and the secret untouched.
    let seeded = seed_cc(&server, &b, "ccoff", 30);
    server.set_client_credentials(CLIENT_ID, false);
    let before = stored(&b, &seeded.secret_id);
    let err = r.resolve(&seeded.workspace_id).unwrap_err();
    assert!(
        matches!(&err, Error::TokenEndpoint { description: Some(d), .. } if d.contains("Client credentials")),
        "{err}"
    );
    assert_eq!(stored(&b, &seeded.secret_id), before);
}

#[test]
fn revoke_uses_the_access_token_and_knows_a_replaced_one_is_dead() {
    let server = server();
    let b = memory();
    let r = resolver_with(&server, &b, None);
    let installed = r.install_client_credentials(&app(&server), "u").unwrap();
    let access = stored(&b, &installed.secret_id)["access_token"].as_str().unwrap().to_owned();
    let rev = r.revoke(&installed.workspace_id, false, false).unwrap();
    assert_eq!((rev.outcome.clone(), rev.linear_status), (RevokeOutcome::Revoked, Some(200)));
    assert!(!server.access_token_live(&access));
    assert_eq!(b.registry.get(&installed.workspace_id).unwrap().unwrap().status, "revoked");
    assert_eq!(server.counters().revoke, 1, "Bearer only: there is no refresh token to fall back to");

    // A token replaced by a newer one of the same app: Linear answers 401,
    // and with no refresh token nothing stored can be renewed: already dead.
    let seeded = seed_cc(&server, &b, "ccgone", 3600);
    server.issue_client_credentials(CLIENT_ID, "read", 3600);
    let before = server.counters().token_requests;
    let rev = r.revoke(&seeded.workspace_id, true, false).unwrap();
    assert_eq!((rev.outcome, rev.linear_status, rev.purged), (RevokeOutcome::AlreadyDead, Some(401), true));
    assert_eq!(server.counters().token_requests, before, "revoking never fetches a new token");
}

#[test]
fn no_client_secret_or_token_in_logs_errors_debug_or_inspect() {
    let server = server();
    let b = memory();
    let sink = Arc::new(Captured::default());
    let r = resolver_with(&server, &b, Some(sink.clone()));
    let params = app(&server);
    assert!(!format!("{params:?}").contains(APP_SECRET));
    let installed = r.install_client_credentials(&params, "u").unwrap();
    let first = stored(&b, &installed.secret_id)["access_token"].as_str().unwrap().to_owned();
    let renewed = r.force_refresh(Target::Secret(&installed.secret_id)).unwrap();
    let inspection = r.inspect(Target::Secret(&installed.secret_id)).unwrap();
    let field = |n: &str| inspection.fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(field("grant_type"), "client_credentials");
    assert!(field("client_secret").starts_with("[redacted sha256:"));
    assert!(!inspection.fields.iter().any(|(k, _)| k == "refresh_token"));
    server.set_client_credentials(APP_ID, false);
    let err = r.install_client_credentials(&params, "u").unwrap_err();
    let errs = format!("{err} {err:?}");
    let everything = format!("{} {errs} {inspection:?} {renewed:?} {installed:?}", sink.text());
    for secret in [APP_SECRET, first.as_str(), renewed.access_token().secret()] {
        assert!(!everything.contains(secret), "a secret leaked: {everything}");
    }
    assert!(sink.text().contains("fetched a new client-credentials token"), "{}", sink.text());
}

#[test]
fn a_401_report_fetches_one_new_token_and_other_processes_find_it_without_a_post() {
    let server = server();
    let b = memory();
    let seeded = seed_cc(&server, &b, "ccreport", 3600); // fresh: only the report renews it
    let (a, other) = (resolver_with(&server, &b, None), resolver_with(&server, &b, None));
    assert_eq!(a.resolve(&seeded.workspace_id).unwrap().access_token(), seeded.access);
    assert_eq!(other.resolve(&seeded.workspace_id).unwrap().access_token(), seeded.access);
    // 32 callers of one process report the same rejected token: one fetch.
    let got: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..32)
            .map(|_| {
                s.spawn(|| {
                    a.report_unauthorized(&seeded.workspace_id, &seeded.access)
                        .unwrap()
                        .access_token()
                        .secret()
                        .to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(got.iter().all(|t| *t == got[0]) && got[0] != seeded.access);
    let c = server.counters();
    assert_eq!((c.token_requests, c.token_client_credentials_ok), (1, 1), "{c:?}");
    assert!(!server.access_token_live(&seeded.access), "the new token ended the old one everywhere");
    assert_eq!(stored(&b, &seeded.secret_id)["access_token"].as_str(), Some(got[0].as_str()));
    // The other process still serves the old token from memory, gets 401,
    // reports it, and finds the new token in the store: no POST.
    assert_eq!(other.resolve(&seeded.workspace_id).unwrap().access_token(), seeded.access);
    assert_eq!(other.report_unauthorized(&seeded.workspace_id, &seeded.access).unwrap().access_token(), got[0]);
    assert_eq!(server.counters().token_requests, 1, "a report about a replaced token never POSTs");
}

#[test]
fn a_rotated_client_secret_requires_setting_the_workspace_up_again() {
    let server = server();
    let b = memory();
    let r = resolver_with(&server, &b, None);
    let installed = r.install_client_credentials(&app(&server), "u").unwrap();
    let before = stored(&b, &installed.secret_id);
    // The secret is rotated in Linear's app settings: the stored one is refused.
    server.add_client(ClientConfig::new(APP_ID, "rotated-secret", ["http://localhost:8080/oauth/callback"]));
    let access = before["access_token"].as_str().unwrap();
    assert!(!server.access_token_live(access), "rotating the secret ends the token, as at Linear");
    let err = r.report_unauthorized(&installed.workspace_id, access).unwrap_err();
    let Error::ReauthorizationRequired(m) = &err else { panic!("{err:?}") };
    assert!(m.contains("setup --client-credentials") && !m.contains(APP_SECRET), "{m}");
    // Kept as it was, but for the mark that tells every process (issue 22).
    let mut after = stored(&b, &installed.secret_id);
    assert_eq!(after["reauthorization_required_error"], "invalid_client");
    let obj = after.as_object_mut().unwrap();
    obj.remove("reauthorization_required_error");
    assert!(obj.remove("reauthorization_required_at").is_some());
    assert_eq!(after, before, "the secret is kept as it was");
    let row = b.registry.get(&installed.workspace_id).unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.status_reason.as_deref()),
        ("reauthorization_required", Some("invalid_client"))
    );
    // Nothing sends the refused secret again: this resolver, a new one, by secret id.
    let fresh = resolver_with(&server, &b, None);
    for e in [
        r.resolve(&installed.workspace_id).unwrap_err(),
        fresh.resolve(&installed.workspace_id).unwrap_err(),
        fresh.resolve_secret(&installed.secret_id).unwrap_err(),
    ] {
        assert!(matches!(&e, Error::ReauthorizationRequired(m) if m.contains("invalid_client")), "{e:?}");
    }
    assert_eq!(server.counters().invalid_client, 1, "no retry of a refused client");
    // Counted once, by the resolver that met the refusal; the others read the mark.
    use linear_oauth_host::Counter::RefreshesReauthorizationInvalidClient as Refused;
    assert_eq!((r.metrics().get(Refused), fresh.metrics().get(Refused)), (1, 0));
}
