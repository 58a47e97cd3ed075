//! `linear-oauth setup --client-credentials` and what follows, against the
//! Linear-compatible test server (issue 10, item 5).

mod common;

use std::process::{Child, Output, Stdio};

use common::{text, Env, STORED_SECRET};
use linear_oauth_testserver::FaultsPatch;
use serde_json::Value;

const CLIENT_ID: &str = "cc-cli-app";
const CLIENT_SECRET: &str = "cc-cli-secret-canary";

fn env() -> Env {
    Env::new(CLIENT_ID, CLIENT_SECRET)
}

/// `setup --client-credentials` with the app's secret in its variable.
fn setup(env: &Env, extra: &[&str]) -> Output {
    let mut args = vec!["setup", "--client-credentials", "--client-id", CLIENT_ID, "--installed-by", "ops"];
    args.extend_from_slice(extra);
    env.cmd(&args).env("LINEAR_OAUTH_CLIENT_SECRET", CLIENT_SECRET).output().unwrap()
}

#[test]
fn setup_client_credentials_installs_without_a_browser_and_tokens_are_fetched_anew_at_expiry() {
    let env = env();
    // The first token lives 30 s: inside the 60 s threshold, so the next resolve renews it.
    env.server.set_faults(FaultsPatch { client_credentials_expires_in: Some(30), ..Default::default() });
    let o = setup(&env, &["--json", "--scopes", "read,write"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["grant_type"].as_str(), v["workspace_slug"].as_str()), (Some("client_credentials"), Some("testws")));
    assert_eq!(v["scope"], "read write");
    let id = v["workspace_id"].as_str().unwrap().to_owned();
    let stored = env.stored();
    assert_eq!(stored["grant_type"], "client_credentials");
    assert!(stored.get("refresh_token").is_none());
    assert_eq!(stored["installed_by_platform_user_id"], "ops");
    let first = stored["access_token"].as_str().unwrap().to_owned();
    assert_eq!(env.server.counters().authorize, 0, "no browser leg");
    assert_eq!(env.server.counters().token_client_credentials_ok, 1);
    for secret in [CLIENT_SECRET, first.as_str()] {
        assert!(!out.contains(secret) && !err.contains(secret), "secret in setup output");
    }

    // Eight processes resolve the expiring token: one new token, one POST.
    env.server.set_faults(FaultsPatch { client_credentials_expires_in: Some(2_591_999), ..Default::default() });
    let children: Vec<Child> = (0..8)
        .map(|_| env.cmd(&["token", "--workspace", &id]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
        .collect();
    let outs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for o in &outs {
        assert!(o.status.success(), "{:?}", text(o));
    }
    assert!(outs.iter().all(|o| o.stdout == outs[0].stdout));
    let renewed = text(&outs[0]).0.trim().to_owned();
    assert_ne!(renewed, first);
    assert_eq!(env.server.counters().token_client_credentials_ok, 2, "exactly one new token for eight processes");
    assert!(env.server.access_token_live(&renewed) && !env.server.access_token_live(&first));
    assert_eq!(env.stored()["access_token"].as_str(), Some(renewed.as_str()));

    // Inspect shows the grant and hides the secret; revoke uses the access token.
    let o = env.run(&["inspect", "--workspace", &id]);
    let (out, _) = text(&o);
    assert!(o.status.success() && out.contains("client_credentials"), "{out}");
    assert!(!out.contains(CLIENT_SECRET) && !out.contains(&renewed), "{out}");
    let o = env.run(&["revoke", "--workspace", &id]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(!env.server.access_token_live(&renewed));
}

#[test]
fn a_disabled_grant_exits_8_and_names_the_linear_setting() {
    let env = env();
    env.server.set_client_credentials(CLIENT_ID, false);
    let o = setup(&env, &[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(8), "{out}\n{err}");
    assert!(err.contains("Client does not support the client_credentials grant type"), "{err}");
    assert!(err.contains("enable \"Client credentials\" in the Linear app's settings"), "{err}");
    assert!(!err.contains(CLIENT_SECRET));
    assert!(!env.dir.join(STORED_SECRET).exists());

    let o = setup(&env, &["--json"]);
    let e: Value = serde_json::from_str(text(&o).1.trim()).unwrap();
    assert_eq!((e["error"]["kind"].as_str(), e["error"]["exit_code"].as_u64()), (Some("TOKEN_ENDPOINT"), Some(8)));
}

#[test]
fn client_credentials_conflicts_with_browser_only_flags() {
    let env = env();
    for browser_only in [&["--no-browser"][..], &["--redirect-uri", "http://127.0.0.1:9/cb"], &["--timeout", "5"]] {
        let o = setup(&env, browser_only);
        assert_eq!(o.status.code(), Some(2), "{browser_only:?}: {:?}", text(&o));
    }
    let help = text(&env.run(&["--help"])).0;
    assert!(help.contains("client_credentials grant the Linear app does not allow is 8"), "{help}");
    assert_eq!(env.server.counters().token_requests, 0);
}

#[test]
fn a_401_report_from_another_process_finds_the_new_token_without_a_post() {
    let env = env();
    let o = setup(&env, &["--json"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let id = serde_json::from_slice::<Value>(&o.stdout).unwrap()["workspace_id"].as_str().unwrap().to_owned();
    let old = env.stored()["access_token"].as_str().unwrap().to_owned();
    let report = |token: &str| {
        let o = env.report_unauthorized(&id, token);
        assert!(o.status.success(), "{:?}", text(&o));
        text(&o).0.trim().to_owned()
    };
    // Linear rejected the stored token: one new token is fetched.
    let new = report(&old);
    assert_ne!(new, old);
    assert_eq!(env.server.counters().token_client_credentials_ok, 2);
    assert!(!env.server.access_token_live(&old));
    // Another process that still held the old one: the stored token, no POST.
    let before = env.server.counters().token_requests;
    assert_eq!(report(&old), new);
    assert_eq!(env.server.counters().token_requests, before);
}
