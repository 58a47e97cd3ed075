//! `linear-oauth webhook ...` and `setup --webhook-secret-stdin`, with
//! deliveries signed by the test server as Linear signs them.

mod common;

use std::io::Write;
use std::process::{Output, Stdio};

use common::{text, Env};
use linear_oauth_testserver::webhook::{deliver, Delivery, DeliverySpec};
use serde_json::Value;

const CLIENT_ID: &str = "wh-cli-app";
const CLIENT_SECRET: &str = "wh-cli-secret-canary";
const SIGNING: &str = "whsec-cli-canary";

fn with_stdin(env: &Env, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = env
        .cmd(args)
        .env("LINEAR_OAUTH_CLIENT_SECRET", CLIENT_SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn spec(secret: &str, org: &str) -> DeliverySpec {
    serde_json::from_value(serde_json::json!({ "secret": secret, "organization_id": org })).unwrap()
}

fn run_delivery(env: &Env, command: &str, d: &Delivery) -> Output {
    with_stdin(
        env,
        &["webhook", command, "--signature", &d.signature, "--delivery", &d.delivery_id, "--json"],
        d.body.as_bytes(),
    )
}

#[test]
fn setup_stores_the_signing_secret_and_webhook_commands_verify_and_handle() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    let o = with_stdin(
        &env,
        &["setup", "--client-credentials", "--client-id", CLIENT_ID, "--webhook-secret-stdin", "--json"],
        format!("{SIGNING}\n").as_bytes(),
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let installed: Value = serde_json::from_slice(&o.stdout).unwrap();
    let org = installed["workspace_id"].as_str().unwrap().to_owned();
    assert_eq!(installed["webhook_secret_stored"], true);

    // inspect shows a fingerprint only.
    let o = env.run(&["inspect", "--workspace", &org]);
    let (out, _) = text(&o);
    assert!(out.contains("webhook_signing_secret") && out.contains("[redacted sha256:"), "{out}");
    assert!(!out.contains(SIGNING), "{out}");

    let d = deliver(&spec(SIGNING, &org)).unwrap();
    let o = run_delivery(&env, "verify", &d);
    assert!(o.status.success(), "{:?}", text(&o));
    let e: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((e["type"].as_str(), e["matched"].as_str()), (Some("Issue"), Some("workspace")));
    assert_eq!(e["delivery_id"].as_str(), Some(d.delivery_id.as_str()));
    assert_eq!(e["data"]["identifier"], "ACM-1");

    // Distinct exit codes: bad signature 17, stale 18, malformed 19.
    let mut forged = spec(SIGNING, &org);
    forged.bad_signature = true;
    let o = run_delivery(&env, "verify", &deliver(&forged).unwrap());
    assert_eq!(o.status.code(), Some(17), "{:?}", text(&o));
    assert!(!text(&o).1.contains(SIGNING));
    let mut stale = spec(SIGNING, &org);
    stale.age_ms = 3_600_000;
    assert_eq!(run_delivery(&env, "handle", &deliver(&stale).unwrap()).status.code(), Some(18));
    let o = with_stdin(&env, &["webhook", "verify", "--signature", &"0".repeat(64)], b"not json");
    assert_eq!(o.status.code(), Some(19), "{:?}", text(&o));

    // The app removed from the workspace: handled once, then a no-op.
    let mut revoked = spec(SIGNING, &org);
    revoked.event = "app-revoked".into();
    revoked.oauth_client_id = Some(CLIENT_ID.into());
    let d = deliver(&revoked).unwrap();
    let o = run_delivery(&env, "handle", &d);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(serde_json::from_slice::<Value>(&o.stdout).unwrap()["outcome"], "revoked");
    assert_eq!(env.run(&["token", "--workspace", &org]).status.code(), Some(4), "revoked");
    let o = run_delivery(&env, "handle", &d);
    assert_eq!(serde_json::from_slice::<Value>(&o.stdout).unwrap()["outcome"], "already-revoked");
}

#[test]
fn set_secret_reads_stdin_and_refuses_bad_input() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    // The stack-wide secret needs its id configured.
    let o = with_stdin(&env, &["webhook", "set-secret", "--stack"], b"whsec-stack\n");
    assert_eq!(o.status.code(), Some(11), "{:?}", text(&o));
    let o =
        with_stdin(&env, &["--webhook-secret-id", "wh-stack", "webhook", "set-secret", "--stack"], b"whsec-stack\n");
    assert!(o.status.success(), "{:?}", text(&o));
    let d = deliver(&spec("whsec-stack", "org-unknown")).unwrap();
    let o = with_stdin(
        &env,
        &["--webhook-secret-id", "wh-stack", "webhook", "verify", "--signature", &d.signature, "--json"],
        d.body.as_bytes(),
    );
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(serde_json::from_slice::<Value>(&o.stdout).unwrap()["matched"], "stack");
    // Empty input loses nothing; an unknown workspace is exit 3.
    let o = with_stdin(&env, &["--webhook-secret-id", "wh-stack", "webhook", "set-secret", "--stack"], b"\n");
    assert_eq!(o.status.code(), Some(11), "{:?}", text(&o));
    let o = with_stdin(&env, &["webhook", "set-secret", "--workspace", "org-nope"], b"whsec\n");
    assert_eq!(o.status.code(), Some(3), "{:?}", text(&o));
}
