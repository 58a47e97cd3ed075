//! The refresh sweeper and the client-secret rotation over a fleet (issue
//! 23, sections 3 and 4), against the test server.

use std::sync::Arc;
use std::time::Duration;

use linear_oauth_host::fleet::{self, RotateOptions, SweepOptions};
use linear_oauth_host::{Backends, Error, RegistryRow, Resolver, RotateOutcome, SecretString, SweepOutcome};
use linear_oauth_testserver::{ClientConfig, TestServer, DEFAULT_REDIRECT_URI};

use crate::common::*;

const APP_B: &str = "app-b-client-id";
const APP_B_SECRET: &str = "app-b-secret-1";
const NEW_SECRET: &str = "rotated-app-a-secret-XYZ";

fn sweep_options(limit: Option<usize>) -> SweepOptions {
    SweepOptions { ahead: Duration::from_secs(2 * 3600), rate: 0.0, limit }
}

fn put_row(b: &Backends, workspace_id: &str, slug: &str, secret_id: &str, status: &str) {
    b.registry
        .put(&RegistryRow {
            workspace_id: workspace_id.into(),
            workspace_slug: slug.into(),
            secret_id: secret_id.into(),
            status: status.into(),
            ..Default::default()
        })
        .unwrap();
}

#[test]
fn a_sweep_refreshes_what_expires_within_the_window_and_a_rerun_after_a_crash_does_the_rest() {
    let server = server();
    let b = memory();
    let due: Vec<Seeded> = (0..10).map(|i| seed(&server, &b, &format!("due{i:02}"), 3600)).collect();
    let fresh: Vec<Seeded> = (0..5).map(|i| seed(&server, &b, &format!("fresh{i:02}"), 5 * 3600)).collect();
    let held = seed(&server, &b, "held", 600);
    b.registry
        .try_lease(&format!("refresh:{}", held.secret_id), "another-sweeper", Duration::from_secs(60), "{}")
        .unwrap();
    let gone = seed(&server, &b, "gone", 600);
    put_row(&b, &gone.workspace_id, "gone", &gone.secret_id, "revoked");
    let sink = Arc::new(Captured::default());
    let r = resolver_with(&server, &b, Some(sink.clone()));

    // The first run stops half-way (as a crash would, after a finished step).
    let first = fleet::sweep(&r, &sweep_options(Some(8)), |_, _| {}).unwrap();
    assert_eq!(first.refreshed.len() + first.fresh + first.held_by_another.len(), 8);
    assert_eq!((first.not_reached, first.inactive), (8, 1));
    // A fresh process runs again: it refreshes the rest, finds the first
    // run's refreshes fresh, and sends nothing twice.
    let r = resolver_with(&server, &b, Some(sink.clone()));
    let second = fleet::sweep(&r, &sweep_options(None), |_, _| {}).unwrap();
    assert_eq!(first.refreshed.len() + second.refreshed.len(), 10, "{first:?} {second:?}");
    assert_eq!(second.fresh, 5 + first.refreshed.len());
    assert_eq!(second.held_by_another, vec![held.workspace_id.clone()]);
    assert_eq!((second.inactive, second.failed.len(), second.not_reached), (1, 0, 0));
    assert_eq!(server.counters().token_requests, 10);
    for s in &due {
        let tok = stored(&b, &s.secret_id);
        let refresh = tok["refresh_token"].as_str().unwrap();
        assert_ne!(refresh, s.refresh, "refreshed");
        assert!(server.refresh_token_live(refresh), "the rotated refresh token was kept");
        assert_eq!(tok["team_hint"]["kept"], true, "unknown fields kept");
    }
    for s in fresh.iter().chain([&held, &gone]) {
        assert_eq!(stored(&b, &s.secret_id)["refresh_token"], s.refresh.as_str(), "untouched");
    }
    // The one-workspace step, and a dead credential with its code.
    server.revoke_grant(stored(&b, &due[0].secret_id)["refresh_token"].as_str().unwrap());
    assert!(
        matches!(r.sweep_one(&due[0].workspace_id, Duration::from_secs(86_400)), Ok(SweepOutcome::Dead { code }) if code == "invalid_grant")
    );
    let third = fleet::sweep(&r, &sweep_options(None), |_, _| {}).unwrap();
    assert_eq!(third.dead, vec![(due[0].workspace_id.clone(), "invalid_grant".to_owned())]);
    assert!(third.refreshed.is_empty());
    let logs = sink.text();
    for s in &due {
        assert!(!logs.contains(&s.refresh) && !logs.contains(&s.access), "no secret in the log");
    }
}

/// A workspace of app A or B: live tokens at the server, stored with the app's credentials.
fn seed_app(server: &TestServer, b: &Backends, app: (&str, &str), i: usize) -> String {
    let issued = server.issue_tokens(app.0, "read write", 86_399);
    let (workspace_id, slug) = (format!("org-{}-{i:03}", app.0), format!("ws{}{i:03}", &app.0[..5]));
    let secret_id = format!("bgagent-linear-oauth-{slug}");
    let mut v: serde_json::Value = serde_json::from_str(&token_json(
        &issued.access_token,
        &issued.refresh_token,
        &in_secs(20 * 3600),
        &workspace_id,
        &slug,
    ))
    .unwrap();
    v["client_id"] = app.0.into();
    v["client_secret"] = app.1.into();
    b.secrets.put(&secret_id, &v.to_string(), None).unwrap();
    put_row(b, &workspace_id, &slug, &secret_id, "active");
    workspace_id
}

/// App A's client-credentials workspace.
fn seed_client_credentials(server: &TestServer, b: &Backends) -> (String, String) {
    let issued = server.issue_client_credentials(CLIENT_ID, "read write", 2_591_999);
    let (workspace_id, slug, secret_id) = ("org-cc", "ccapp", "bgagent-linear-oauth-ccapp");
    let mut v: serde_json::Value =
        serde_json::from_str(&token_json(&issued.access_token, "unused", &in_secs(20 * 86_400), workspace_id, slug))
            .unwrap();
    v.as_object_mut().unwrap().remove("refresh_token");
    v["grant_type"] = "client_credentials".into();
    b.secrets.put(secret_id, &v.to_string(), None).unwrap();
    put_row(b, workspace_id, slug, secret_id, "active");
    (workspace_id.to_owned(), issued.access_token)
}

fn rotate(
    r: &Resolver,
    secret: &str,
    dry_run: bool,
    limit: Option<usize>,
) -> linear_oauth_host::Result<fleet::RotateSummary> {
    let o = RotateOptions { client_id: CLIENT_ID.into(), dry_run, rate: 0.0, limit };
    fleet::rotate_client_secret(r, &SecretString::new(secret), &o, |_, _| {})
}

fn all_stored(b: &Backends) -> Vec<(String, serde_json::Value)> {
    b.registry.list().unwrap().into_iter().map(|row| (row.workspace_id.clone(), stored(b, &row.secret_id))).collect()
}

#[test]
fn rotating_one_apps_secret_across_200_workspaces_interrupted_half_way_and_resumed() {
    let server = server();
    server.add_client(ClientConfig::new(APP_B, APP_B_SECRET, [DEFAULT_REDIRECT_URI]));
    let b = memory();
    let mut a_ids: Vec<String> = (0..99).map(|i| seed_app(&server, &b, (CLIENT_ID, CLIENT_SECRET), i)).collect();
    let (cc_id, cc_access) = seed_client_credentials(&server, &b);
    a_ids.push(cc_id.clone());
    let b_ids: Vec<String> = (0..100).map(|i| seed_app(&server, &b, (APP_B, APP_B_SECRET), i)).collect();
    let before = all_stored(&b);
    let sink = Arc::new(Captured::default());
    let r = resolver_with(&server, &b, Some(sink.clone()));

    // The secret is rotated in Linear: the old one is refused from now on.
    server.add_client(ClientConfig::new(CLIENT_ID, NEW_SECRET, [DEFAULT_REDIRECT_URI]));
    // A dry run counts and changes nothing.
    let dry = rotate(&r, NEW_SECRET, true, None).unwrap();
    assert_eq!((dry.updated, dry.already, dry.other_client, dry.verified_on.clone()), (100, 0, 100, None));
    // A mistyped secret is refused at the verification: nothing written.
    let e = rotate(&r, "rotated-app-a-secret-TYPO", false, None).unwrap_err();
    assert!(matches!(&e, Error::InvalidInput(m) if m.contains("invalid_client") && !m.contains("TYPO")), "{e}");
    assert_eq!(all_stored(&b), before, "nothing written");
    assert_eq!(server.counters().token_requests, 1, "one verification request, no more");

    // Interrupted half-way...
    let first = rotate(&r, NEW_SECRET, false, Some(50)).unwrap();
    assert!(first.verified_on.is_some());
    assert_eq!((first.updated, first.already, first.failed.len()), (50, 0, 0), "{first:?}");
    // ...and resumed by a new process: the done half is `already`.
    let r = resolver_with(&server, &b, Some(sink.clone()));
    let second = rotate(&r, NEW_SECRET, false, None).unwrap();
    assert_eq!(second.verified_on, None, "verified by the first run");
    assert_eq!(
        (second.updated, second.already, second.other_client, second.failed.len()),
        (50, 50, 100, 0),
        "{second:?}"
    );
    // A third run has nothing left to do.
    let third = rotate(&r, NEW_SECRET, false, None).unwrap();
    assert_eq!((third.updated, third.already), (0, 100));

    // App B's tokens are exactly as they were.
    let after = all_stored(&b);
    for ((id, old), (_, new)) in before.iter().zip(&after) {
        if b_ids.contains(id) {
            assert_eq!(old, new, "{id} untouched");
        } else {
            assert_eq!(new["client_secret"], NEW_SECRET, "{id}");
            assert_eq!(new["team_hint"]["kept"], true, "{id}: other fields kept");
        }
    }
    // The client-credentials workspace got a new token (the rotation ended the old one).
    let cc = after.iter().find(|(id, _)| *id == cc_id).unwrap();
    assert_ne!(cc.1["access_token"], cc_access.as_str());
    assert!(server.access_token_live(cc.1["access_token"].as_str().unwrap()));
    // No token lost: every workspace of both apps refreshes (A with the new secret).
    for id in a_ids.iter().chain(&b_ids) {
        r.force_refresh(linear_oauth_host::Target::Workspace(id)).unwrap_or_else(|e| panic!("{id}: {e}"));
    }
    assert_eq!(server.counters().invalid_client, 1, "only the mistyped secret was refused");
    let logs = sink.text();
    for s in [NEW_SECRET, CLIENT_SECRET, APP_B_SECRET, "TYPO"] {
        assert!(!logs.contains(s), "{s} in the log");
        assert!(!format!("{first:?}{second:?}{e:?}").contains(s));
    }
}

#[test]
fn the_one_workspace_rotation_step() {
    let (server, b, s, r) = acme(20 * 3600);
    let new = SecretString::new(NEW_SECRET);
    let set = |mode| r.set_client_secret(&s.workspace_id, CLIENT_ID, &new, mode);
    assert_eq!(
        r.set_client_secret(&s.workspace_id, "another-app", &new, linear_oauth_host::RotateMode::Write).unwrap(),
        RotateOutcome::OtherClient(CLIENT_ID.into())
    );
    assert_eq!(set(linear_oauth_host::RotateMode::DryRun).unwrap(), RotateOutcome::Updated);
    assert_eq!(stored(&b, &s.secret_id)["client_secret"], CLIENT_SECRET);
    server.add_client(ClientConfig::new(CLIENT_ID, NEW_SECRET, [DEFAULT_REDIRECT_URI]));
    assert_eq!(set(linear_oauth_host::RotateMode::Verify).unwrap(), RotateOutcome::Updated);
    let tok = stored(&b, &s.secret_id);
    assert_eq!(tok["client_secret"], NEW_SECRET);
    assert!(server.refresh_token_live(tok["refresh_token"].as_str().unwrap()), "the rotated pair was written with it");
    assert_eq!(set(linear_oauth_host::RotateMode::Write).unwrap(), RotateOutcome::Already);
}
