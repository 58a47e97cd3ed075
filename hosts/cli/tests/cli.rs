//! The `linear-oauth` binary against the Linear-compatible test server.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};

use common::{text, Env, BIN, STORED_SECRET};
use linear_oauth_testserver::{ClientConfig, FaultsPatch};

const CLIENT_ID: &str = "cli-client";
const CLIENT_SECRET: &str = "cli-client-secret-canary";

impl Env {
    /// Starts `setup --no-browser` and returns it with the authorization URL it printed.
    fn start_setup(&self, extra: &[&str]) -> (Child, String, BufReader<std::process::ChildStderr>) {
        let mut args = vec![
            "setup",
            "--no-browser",
            "--client-id",
            CLIENT_ID,
            "--redirect-uri",
            &self.redirect,
            "--installed-by",
            "tester",
        ];
        args.extend_from_slice(extra);
        let mut child = self
            .cmd(&args)
            .env("LINEAR_OAUTH_CLIENT_SECRET", CLIENT_SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let url = loop {
            line.clear();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "setup exited before printing a URL");
            if line.starts_with("http://") {
                break line.trim().to_owned();
            }
        };
        (child, url, stderr)
    }

    /// A full install, the test playing the browser. Returns the workspace id.
    fn install(&self) -> String {
        let (child, url, stderr) = self.start_setup(&["--json"]);
        let (status, location) = get(&url);
        assert_eq!(status, 302);
        assert_eq!(get(&location.unwrap()).0, 200);
        let out = finish(child, stderr);
        assert!(out.0.success(), "setup failed: {}", out.2);
        let v: serde_json::Value = serde_json::from_str(&out.1).unwrap();
        v["workspace_id"].as_str().unwrap().to_owned()
    }
}

fn finish(
    mut child: Child,
    mut stderr: BufReader<std::process::ChildStderr>,
) -> (std::process::ExitStatus, String, String) {
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    (child.wait().unwrap(), out, err)
}

/// A browser GET that does not follow redirects: (status, Location).
fn get(url: &str) -> (u16, Option<String>) {
    linear_oauth_testserver::fixtures::browser_get(url).unwrap()
}

fn stored_secret_values(env: &Env) -> Vec<String> {
    let mut out = vec![CLIENT_SECRET.to_owned()];
    for entry in std::fs::read_dir(env.dir.join("secrets")).unwrap() {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
        for k in ["access_token", "refresh_token", "client_secret"] {
            out.push(v[k].as_str().unwrap().to_owned());
        }
    }
    out
}

#[test]
fn setup_waits_past_other_paths_then_installs() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    let (child, url, stderr) = env.start_setup(&[]);
    assert!(url.contains("scope=read+write+app%3Aassignable+app%3Amentionable") && url.contains("actor=app"), "{url}");
    assert!(url.contains("prompt=consent"), "prompt=consent by default: {url}");
    let (_, location) = get(&url);
    let location = location.unwrap();
    let origin = &location[..location.find("/oauth/callback").unwrap()];
    assert_eq!(get(&format!("{origin}/favicon.ico")).0, 404);
    assert_eq!(get(&format!("{origin}/elsewhere?code=x&state=y")).0, 404);
    assert_eq!(get(&location).0, 200);
    let (status, out, err) = finish(child, stderr);
    assert!(status.success(), "{err}");
    assert!(out.contains("Installed Linear workspace \"Test Workspace\" (testws"), "{out}");
    for s in stored_secret_values(&env) {
        assert!(!out.contains(&s) && !err.contains(&s), "secret in setup output");
    }
    // Again: updates the same workspace.
    let id = env.install();
    let list = env.run(&["list", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["workspace_id"], id.as_str());
    assert_eq!(rows[0]["status"], "active");
}

/// A headless install: the browser is elsewhere, so the redirect URL is
/// pasted on stdin. A line that is not it, or is another install's, is
/// reported and the wait goes on; the listener never sees a request.
#[test]
fn setup_no_browser_takes_the_pasted_redirect_url() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    let mut child = env
        .cmd(&["setup", "--no-browser", "--client-id", CLIENT_ID, "--redirect-uri", &env.redirect, "--json"])
        .env("LINEAR_OAUTH_CLIENT_SECRET", CLIENT_SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut printed = String::new();
    let url = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "setup exited before printing a URL");
        printed.push_str(&line);
        if line.starts_with("http://") {
            break line.trim().to_owned();
        }
    };
    let mut help = String::new();
    for _ in 0..6 {
        stderr.read_line(&mut help).unwrap();
    }
    let port = env.redirect.split(':').nth(2).unwrap().split('/').next().unwrap();
    assert!(help.contains(&format!("ssh -L {port}:localhost:{port}")), "{help}");
    assert!(help.contains("paste") && help.contains(&env.redirect), "{help}");
    let (status, location) = get(&url);
    assert_eq!(status, 302);
    let location = location.unwrap();
    let forged = format!("{}state=forged", &location[..location.find("state=").unwrap()]);
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "not a url at all\n{forged}\n{forged}\n{location}").unwrap();
    drop(stdin);
    let (status, out, err) = finish(child, stderr);
    assert!(status.success(), "{out}{err}");
    assert!(err.contains("the pasted line is not the redirect URL"), "{err}");
    assert!(err.contains("belongs to another install"), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["workspace_id"].is_string(), "{out}");
    assert_eq!(env.server.counters().token_code_ok, 1, "only the real code is exchanged");
    let code = location.split("code=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    for s in stored_secret_values(&env).into_iter().chain([code]) {
        assert!(!out.contains(&s) && !err.contains(&s) && !help.contains(&s), "secret in setup output");
    }
}

#[test]
fn setup_ignores_a_state_mismatch_never_exchanges_its_code_and_keeps_waiting() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    let (child, url, stderr) = env.start_setup(&["--json"]);
    let (_, location) = get(&url);
    let location = location.unwrap();
    let forged = format!("{}state=forged", &location[..location.find("state=").unwrap()]);
    assert_eq!(get(&forged).0, 400);
    assert_eq!(env.server.counters().token_requests, 0, "a forged callback's code must never be exchanged");
    // The install is still waiting: the real callback completes it.
    assert_eq!(get(&location).0, 200);
    let (status, out, err) = finish(child, stderr);
    assert!(status.success(), "{err}");
    assert!(err.contains("state does not match"), "{err}");
    assert_eq!(env.server.counters().token_code_ok, 1);
    assert!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["workspace_id"].is_string());
}

#[test]
fn setup_is_not_stalled_by_a_slow_client_and_times_out_by_the_clock() {
    use std::time::{Duration, Instant};
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    let (child, url, stderr) = env.start_setup(&[]);
    let (_, location) = get(&url);
    let location = location.unwrap();
    let port = url::Url::parse(&location).unwrap().port().unwrap();
    // A local client that sends one byte of a request per 500 ms and never finishes.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dripper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            for b in b"GET /oauth/callback?code=x&state=y HTTP/1.1\r\n".iter().cycle() {
                if stop.load(std::sync::atomic::Ordering::SeqCst) || s.write_all(&[*b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(get(&location).0, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the real callback waited {:?} behind a slow client",
        started.elapsed()
    );
    let (status, _, err) = finish(child, stderr);
    assert!(status.success(), "{err}");

    // With a staller connected, --timeout 2 still ends after about 2 s.
    let (child, _url, stderr) = env.start_setup(&["--timeout", "2"]);
    let _staller = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let started = Instant::now();
    let (status, _, _) = finish(child, stderr);
    assert_eq!(status.code(), Some(13));
    assert!(started.elapsed() < Duration::from_millis(4500), "--timeout 2 ended after {:?}", started.elapsed());
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    dripper.join().unwrap();
}

#[test]
fn setup_reports_access_denied() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    env.server.set_faults(FaultsPatch { deny_next_authorize: Some(1), ..Default::default() });
    let (child, url, stderr) = env.start_setup(&[]);
    let (_, location) = get(&url);
    assert_eq!(get(&location.unwrap()).0, 400);
    let (status, _, err) = finish(child, stderr);
    assert_eq!(status.code(), Some(12));
    assert!(err.contains("access_denied") && err.contains("declined"), "{err}");
}

#[test]
fn setup_times_out() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    let (child, _url, stderr) = env.start_setup(&["--timeout", "1"]);
    let (status, _, err) = finish(child, stderr);
    assert_eq!(status.code(), Some(13));
    assert!(err.contains("Invalid redirect_uri"), "hint mentions the redirect URI: {err}");
}

/// The browser opener is a child of `setup`: it gets the authorization URL
/// and not the client secret, which `setup` still uses. `$BROWSER` here is a
/// script that records its environment and the URL it was given. The redirect
/// URI is `localhost`, so the callback listens on 127.0.0.1 and ::1.
#[test]
fn setup_opens_the_browser_without_the_client_secret_in_its_environment() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let redirect = format!("http://localhost:{port}/oauth/callback");
    env.server.add_client(ClientConfig::new(CLIENT_ID, CLIENT_SECRET, [redirect.clone()]));
    let seen = env.dir.with_extension("browser");
    std::fs::create_dir_all(&seen).unwrap();
    let browser = seen.join("browser.sh");
    std::fs::write(
        &browser,
        format!(
            "#!/bin/sh\nenv > {d}/env.tmp && printf '%s' \"$1\" > {d}/url.tmp && mv {d}/env.tmp {d}/env && mv {d}/url.tmp {d}/url\n",
            d = seen.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = env
        .cmd(&["setup", "--client-id", CLIENT_ID, "--redirect-uri", &redirect, "--timeout", "60"])
        .env("LINEAR_OAUTH_CLIENT_SECRET", CLIENT_SECRET)
        .env("BROWSER", &browser)
        .env("LO_TEST_INHERITED", "yes")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = loop {
        if let Ok(url) = std::fs::read_to_string(seen.join("url")) {
            break url;
        }
        if child.try_wait().unwrap().is_some() {
            panic!("setup exited before opening the browser: {:?}", text(&child.wait_with_output().unwrap()));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let browser_env = std::fs::read_to_string(seen.join("env")).unwrap();
    assert!(browser_env.contains("LO_TEST_INHERITED=yes"), "the opener's environment: {browser_env}");
    assert!(!browser_env.contains(CLIENT_SECRET), "the opener inherited the client secret");
    assert!(!browser_env.contains("LINEAR_OAUTH_CLIENT_SECRET"), "{browser_env}");
    assert!(url.contains(&format!("redirect_uri=http%3A%2F%2Flocalhost%3A{port}")), "{url}");
    let (_, location) = get(&url);
    assert_eq!(get(&location.unwrap()).0, 200);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(env.stored()["client_secret"], CLIENT_SECRET, "setup used the secret it took from the environment");
    let _ = std::fs::remove_dir_all(&seen);
}

#[test]
fn setup_needs_a_client_secret() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    let o = env.run(&["setup", "--client-id", CLIENT_ID, "--redirect-uri", &env.redirect]);
    assert_eq!(o.status.code(), Some(11), "{:?}", text(&o));
    let mut child = env
        .cmd(&[
            "setup",
            "--client-id",
            CLIENT_ID,
            "--client-secret-stdin",
            "--redirect-uri",
            &env.redirect,
            "--no-browser",
            "--timeout",
            "1",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{CLIENT_SECRET}\n").as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(13), "secret read from stdin, then waited: {:?}", text(&o));
}

#[test]
fn token_by_workspace_and_secret() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    let id = env.install();
    let o = env.run(&["token", "--workspace", &id]);
    assert!(o.status.success());
    let (out, err) = text(&o);
    let token = out.strip_suffix('\n').unwrap();
    assert!(!token.contains('\n') && env.server.access_token_live(token), "stdout is exactly the token");
    assert!(err.is_empty(), "{err}");
    // Only the aws store keeps hints in a file (a file store's lease take cannot use them).
    assert!(!env.dir.join("cache").exists(), "no hint file for the file store");
    let o = env.run(&["token", "--secret", "bgagent-linear-oauth-testws", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["access_token"], token);
    assert_eq!(v["workspace_slug"], "testws");
    assert_eq!(v["secret_id"], "bgagent-linear-oauth-testws");
    assert!(v["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v.as_object().unwrap().len(), 5);
}

#[test]
fn unknown_workspace_is_a_clear_error() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    let o = env.run(&["token", "--workspace", "org-missing"]);
    assert_eq!(o.status.code(), Some(3));
    let (out, err) = text(&o);
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("org-missing") && err.contains("linear-oauth setup"), "{err}");
    let o = env.run(&["token", "--workspace", "org-missing", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(v["error"]["kind"], "NOT_REGISTERED");
    assert_eq!(env.run(&["token"]).status.code(), Some(2), "usage error");
}

#[test]
fn concurrent_token_processes_refresh_once() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    env.server.set_faults(FaultsPatch { expires_in: Some(30), ..Default::default() });
    let id = env.install();
    env.server.set_faults(FaultsPatch { expires_in: Some(86_399), latency_ms: Some(50), ..Default::default() });
    let before = env.server.counters().token_requests;
    let children: Vec<Child> = (0..32)
        .map(|_| env.cmd(&["token", "--workspace", &id]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
        .collect();
    let outs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for o in &outs {
        assert!(o.status.success(), "{:?}", text(o));
    }
    assert_eq!(env.server.counters().token_requests - before, 1, "exactly one refresh POST");
    let first = &outs[0].stdout;
    assert!(outs.iter().all(|o| o.stdout == *first));
    let stored = env.stored();
    assert!(
        env.server.refresh_token_live(stored["refresh_token"].as_str().unwrap()),
        "the stored refresh token is the live one"
    );
}

#[test]
fn inspect_refresh_revoke_purge_and_list() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    let id = env.install();
    let o = env.run(&["inspect", "--workspace", &id]);
    assert!(o.status.success());
    let (out, _) = text(&o);
    assert!(
        out.contains("valid         yes") && out.contains("status active") && out.contains("[redacted sha256:"),
        "{out}"
    );
    let before = env.server.counters().token_refresh_ok;
    let o = env.run(&["refresh", "--workspace", &id]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.starts_with("refreshed testws"));
    assert_eq!(env.server.counters().token_refresh_ok, before + 1);
    let o = env.run(&["refresh", "--secret", "bgagent-linear-oauth-testws", "--json"]);
    assert!(serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["expires_at"].is_string());

    let mut all_output = String::new();
    for args in [
        vec!["inspect", "--secret", "bgagent-linear-oauth-testws", "--json"],
        vec!["list"],
        vec!["inspect", "--workspace", &id],
    ] {
        let (out, err) = text(&env.run(&args));
        all_output += &(out + &err);
    }
    let secrets = stored_secret_values(&env);
    let o = env.run(&["revoke", "--workspace", &id]);
    assert!(o.status.success(), "{:?}", text(&o));
    all_output += &text(&o).0;
    assert!(text(&o).0.contains("revoked at Linear"), "{:?}", text(&o));
    assert_eq!(env.run(&["token", "--workspace", &id]).status.code(), Some(4));
    // The secret paths fail too: the kept secret is marked revoked (exit 4,
    // as by workspace), so they send nothing to Linear.
    let before = env.server.counters().token_requests;
    for args in
        [["refresh", "--secret", "bgagent-linear-oauth-testws"], ["token", "--secret", "bgagent-linear-oauth-testws"]]
    {
        let o = env.run(&args);
        assert_eq!(o.status.code(), Some(4), "{args:?}: {:?}", text(&o));
        assert_eq!(env.server.counters().token_requests, before, "{args:?} sent a token request");
        all_output += &(text(&o).0 + &text(&o).1);
    }
    assert!(text(&env.run(&["list"])).0.contains("revoked"));
    let o = env.run(&["revoke", "--workspace", &id, "--purge", "--json"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["outcome"].as_str(), v["purged"].as_bool()), (Some("already-dead"), Some(true)), "{v}");
    assert!(!env.dir.join(STORED_SECRET).exists());
    assert_eq!(env.run(&["token", "--secret", "bgagent-linear-oauth-testws"]).status.code(), Some(5));
    for s in secrets {
        assert!(!all_output.contains(&s), "secret leaked: {all_output}");
    }
}

#[test]
fn inspect_flags_an_invalid_secret() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    env.install();
    std::fs::write(env.dir.join(STORED_SECRET), r#"{"access_token":"lin_oauth_canary","scope":""}"#).unwrap();
    let o = env.run(&["inspect", "--secret", "bgagent-linear-oauth-testws"]);
    assert_eq!(o.status.code(), Some(6));
    let (out, err) = text(&o);
    assert!(out.contains("NO: missing, empty or non-string: refresh_token, expires_at, scope"), "{out}");
    assert!(!out.contains("lin_oauth_canary") && !err.contains("lin_oauth_canary"));
}

#[test]
fn smoke_passes() {
    let o = Command::new(BIN).args(["smoke", "--burst", "8"]).output().unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert_eq!(out.lines().filter(|l| l.contains(" ok ")).count(), 6, "{out}");
}

#[test]
fn doctor_reports_a_healthy_install_and_names_the_fix_for_each_problem() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    let ws = env.install();
    let out = env.run(&["--json", "doctor"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "doctor: {report}");
    assert_eq!(report["ok"], true);
    assert_eq!(report["component"]["load"], "precompiled");
    assert!(report["component"]["target"].as_str().unwrap().starts_with(std::env::consts::ARCH));
    assert_eq!(report["registry"]["by_status"]["active"], 1);
    assert_eq!(report["api"]["reachable"], true);

    // A store others can read, and a Linear that cannot be reached.
    std::fs::set_permissions(&env.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = env
        .cmd(&["--json", "doctor"])
        .env("LINEAR_OAUTH_API_BASE", format!("http://127.0.0.1:{closed}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(16));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = report["problems"].as_array().unwrap();
    let fix =
        |check: &str| problems.iter().find(|p| p["check"] == check).map(|p| p["fix"].as_str().unwrap().to_owned());
    assert_eq!(fix("store").unwrap(), format!("chmod 700 {}", env.dir.display()));
    assert!(fix("api").unwrap().contains("api.linear.app"));
    assert_eq!(report["api"]["reachable"], false);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(CLIENT_SECRET));
    std::fs::set_permissions(&env.dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let _ = ws;
}

/// A stand-in for AWS on loopback: DynamoDB's `Scan` lists one active
/// workspace whose secret is `secret_id`, and Secrets Manager refuses every
/// request with `AccessDeniedException`, as IAM does for a role without the grant.
fn aws_denying_secrets(secret_id: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let scan = serde_json::json!({ "Count": 1, "ScannedCount": 1, "Items": [{
        "linear_workspace_id": { "S": "org-denied" }, "workspace_slug": { "S": "denied" },
        "oauth_secret_arn": { "S": secret_id }, "status": { "S": "active" },
    }]})
    .to_string();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let (mut target, mut length, mut line) = (String::new(), 0usize, String::new());
            while reader.read_line(&mut line).unwrap_or(0) > 2 {
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("x-amz-target:") {
                    target = v.trim().to_owned();
                } else if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let (status, kind, body) = if target.ends_with(".scan") {
                ("200 OK", "application/x-amz-json-1.0", scan.clone())
            } else {
                let denied = r#"{"__type":"AccessDeniedException","message":"not authorized to perform this action"}"#;
                ("400 Bad Request", "application/x-amz-json-1.1", denied.to_owned())
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// The IAM grant the doctor suggests names the configured secret prefix; it
/// used to name `bgagent-linear-oauth-*` whatever the prefix.
#[test]
fn doctor_names_the_configured_secret_prefix_in_its_iam_fix() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    let endpoint = aws_denying_secrets("acme-tokens-denied");
    let out = env
        .cmd(&["--json", "doctor"])
        .env("LINEAR_OAUTH_STORE", "aws")
        .env("LINEAR_OAUTH_REGISTRY_TABLE", "lo-doctor")
        .env("LINEAR_OAUTH_SECRET_PREFIX", "acme-tokens-")
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = report["problems"].as_array().unwrap();
    let store = problems.iter().find(|p| p["check"] == "store").unwrap_or_else(|| panic!("{report}"));
    assert!(store["problem"].as_str().unwrap().contains("cannot read secret acme-tokens-denied"), "{store}");
    let fix = store["fix"].as_str().unwrap();
    assert!(fix.contains("secret:acme-tokens-*"), "{fix}");
    assert!(!fix.contains("bgagent-linear-oauth"), "{fix}");
    assert!(fix.contains("kms:Decrypt") && fix.contains("kms:GenerateDataKey"), "{fix}");
}

fn stored_refresh_token(env: &Env) -> String {
    env.stored()["refresh_token"].as_str().unwrap().to_owned()
}

#[test]
fn revoke_of_a_grant_already_revoked_at_linear_exits_0() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    let id = env.install();
    assert!(env.server.revoke_grant(&stored_refresh_token(&env)));
    let o = env.run(&["revoke", "--workspace", &id]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains("already dead at Linear"), "{:?}", text(&o));
    let o = env.run(&["revoke", "--workspace", &id, "--json"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["outcome"], "already-dead");
}

#[test]
fn revoke_when_linear_fails_exits_15_marks_the_row_and_keeps_the_secret() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    let id = env.install();
    let secrets = stored_secret_values(&env);
    let refresh = stored_refresh_token(&env);
    env.server.set_faults(FaultsPatch {
        revoke_fail_next: Some(linear_oauth_testserver::FailNext { count: 1, status: 503, body: None }),
        ..Default::default()
    });
    let o = env.run(&["revoke", "--workspace", &id, "--purge"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(15), "{out}\n{err}");
    assert!(out.contains("FAILED") && out.contains("503") && out.contains("kept"), "{out}");
    assert!(err.contains("remove the app's authorization in Linear's workspace settings"), "{err}");
    assert!(env.dir.join(STORED_SECRET).exists(), "no purge without confirmation");
    assert!(env.server.refresh_token_live(&refresh), "the grant is untouched");
    assert!(text(&env.run(&["list"])).0.contains("revoked"), "the row is revoked anyway");
    assert_eq!(env.run(&["token", "--workspace", &id]).status.code(), Some(4));
    // The secret-id paths never read the row; the kept secret's own mark
    // stops them, before any token request.
    let secret_id = "bgagent-linear-oauth-testws";
    let before = env.server.counters().token_requests;
    for args in [["token", "--secret", secret_id], ["refresh", "--secret", secret_id]] {
        let o = env.run(&args);
        assert_eq!(o.status.code(), Some(4), "{args:?}: {:?}", text(&o));
        assert!(text(&o).1.contains("revoked"), "{:?}", text(&o));
    }
    assert_eq!(env.server.counters().token_requests, before, "no token POST on a secret-id path");
    assert!(env.server.refresh_token_live(&refresh));
    for s in &secrets {
        assert!(!out.contains(s.as_str()) && !err.contains(s.as_str()), "secret leaked");
    }

    // Once Linear answers, revoking again confirms.
    let o = env.run(&["revoke", "--workspace", &id, "--json"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["outcome"], "revoked");
    assert!(!env.server.refresh_token_live(&refresh));
}

#[test]
fn setup_refuses_a_url_key_that_holds_another_workspace_and_takes_a_secret_name() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    let x = env.install();
    let x_token = text(&env.run(&["token", "--workspace", &x])).0;
    // Another organization now answers with the same url key.
    env.server.set_organization(linear_oauth_testserver::Organization {
        id: "org-other".into(),
        name: "Other".into(),
        url_key: "testws".into(),
    });
    let (child, url, stderr) = env.start_setup(&[]);
    let (_, location) = get(&url);
    get(&location.unwrap());
    let (status, _, err) = finish(child, stderr);
    assert_eq!(status.code(), Some(11), "{err}");
    assert!(err.contains(&x) && err.contains("org-other") && err.contains("--secret-id"), "{err}");
    assert_eq!(env.stored()["workspace_id"], x.as_str(), "the first workspace's secret is untouched");
    assert_eq!(text(&env.run(&["token", "--workspace", &x])).0, x_token);

    let (child, url, stderr) = env.start_setup(&["--secret-id", "bgagent-linear-oauth-testws-2"]);
    let (_, location) = get(&url);
    get(&location.unwrap());
    let (status, _, err) = finish(child, stderr);
    assert!(status.success(), "{err}");
    let other = text(&env.run(&["token", "--workspace", "org-other"])).0;
    assert!(!other.trim().is_empty() && other != x_token);
    assert_eq!(text(&env.run(&["token", "--workspace", &x])).0, x_token);
}

#[test]
fn revoke_purge_keeps_an_unconfirmed_secret_unless_forced() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    let id = env.install();
    // Linear refuses the revokes although the grant is live.
    let refuse = || FaultsPatch {
        revoke_fail_next: Some(linear_oauth_testserver::FailNext { count: 2, status: 400, body: None }),
        ..Default::default()
    };
    env.server.set_faults(refuse());
    let o = env.run(&["revoke", "--workspace", &id, "--purge", "--json"]);
    assert_eq!(o.status.code(), Some(15), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["outcome"].as_str(), v["purged"].as_bool()), (Some("not-confirmed"), Some(false)), "{v}");
    assert!(v["detail"].as_str().unwrap().contains("live"), "{v}");
    let err: serde_json::Value = serde_json::from_str(text(&o).1.lines().last().unwrap()).unwrap();
    assert_eq!(
        (err["error"]["kind"].as_str(), err["error"]["exit_code"].as_u64()),
        (Some("REVOKE_NOT_CONFIRMED"), Some(15))
    );
    assert!(env.dir.join(STORED_SECRET).exists());

    assert_eq!(env.run(&["revoke", "--workspace", &id, "--force"]).status.code(), Some(2), "--force needs --purge");
    env.server.set_faults(refuse());
    let o = env.run(&["revoke", "--workspace", &id, "--purge", "--force", "--json"]);
    assert_eq!(o.status.code(), Some(15), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["outcome"].as_str(), v["purged"].as_bool()), (Some("not-confirmed"), Some(true)), "{v}");
    assert!(!env.dir.join(STORED_SECRET).exists());
}

#[test]
fn help_lists_the_revoke_exit_code() {
    let o = Command::new(BIN).arg("--help").output().unwrap();
    assert!(text(&o).0.contains("15  revoke not confirmed by Linear"), "{:?}", text(&o));
}

#[test]
fn token_unauthorized_reads_the_rejected_token_from_stdin_and_refreshes_once() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    let id = env.install();
    let old = text(&env.run(&["token", "--workspace", &id])).0.trim().to_owned();
    let report = |rejected: &str| env.report_unauthorized(&id, rejected);
    let before = env.server.counters().token_requests;
    let o = report(&old);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let new = out.trim();
    assert!(new != old && env.server.access_token_live(new), "a refreshed token");
    assert_eq!(env.server.counters().token_requests - before, 1);
    assert!(!err.contains(&old) && !err.contains(new), "no token on stderr: {err}");
    // The same report again (another process, late): the stored token, no POST.
    let o = report(&old);
    assert_eq!(text(&o).0.trim(), new);
    assert_eq!(env.server.counters().token_requests - before, 1, "a stale report never POSTs");
    // Empty stdin is invalid input; the token never comes from argv.
    assert_eq!(report("").status.code(), Some(11));
    // By secret id, the same rule: the stored token for a stale report, and
    // a refresh for the current one.
    let by_secret = |rejected: &str| env.report_unauthorized_of("--secret", "bgagent-linear-oauth-testws", rejected);
    assert_eq!(text(&by_secret(&old)).0.trim(), new);
    assert_eq!(env.server.counters().token_requests - before, 1);
    let o = by_secret(new);
    let newest = text(&o).0.trim().to_owned();
    assert!(o.status.success() && newest != new && env.server.access_token_live(&newest), "{:?}", text(&o));
    assert_eq!(env.server.counters().token_requests - before, 2);
}

#[test]
fn json_errors_carry_linear_retry_after() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    let id = env.install();
    env.server.set_faults(FaultsPatch {
        fail_next: Some(linear_oauth_testserver::FailNext { count: 3, status: 429, body: None }),
        fail_retry_after: Some("120".into()),
        ..Default::default()
    });
    let o = env.run(&["refresh", "--workspace", &id, "--json"]);
    assert_eq!(o.status.code(), Some(8), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(v["error"]["kind"], "TOKEN_ENDPOINT");
    let after = v["error"]["retry_after"].as_f64().unwrap();
    assert!(after > 100.0 && after <= 120.0, "{v}");
    let o = env.run(&["token", "--workspace", "org-missing", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stderr).unwrap();
    assert!(v["error"]["retry_after"].is_null(), "{v}");
}

/// Lambda freezes a process between invocations. A refresh frozen (SIGSTOP)
/// after Linear rotated the pair, past its lease, while another process takes
/// the lease over, must lose nothing once thawed (SIGCONT).
#[test]
fn a_refresh_frozen_past_its_lease_loses_nothing() {
    use linear_oauth_testserver::GraceMode;
    for grace in [GraceMode::None, GraceMode::SamePair] {
        let env = Env::new(CLIENT_ID, CLIENT_SECRET);
        let id = env.install();
        env.server.set_faults(FaultsPatch {
            grace: Some(grace),
            post_grant_delay_ms: Some(3000),
            ..Default::default()
        });
        let secret = env.dir.join(STORED_SECRET);
        // A's request must outlive the freeze (30 s per phase), so its lease
        // and call must outlast 3 x 30 s plus the write-back. Rather than wait
        // that out, A's lease runs out while A is frozen (below).
        let leased = |c: &mut Command| {
            c.env("LINEAR_OAUTH_HTTP_TIMEOUT_S", "30")
                .env("LINEAR_OAUTH_LEASE_TTL_S", "92")
                .env("LINEAR_OAUTH_CALL_DEADLINE_S", "92");
        };
        let before = env.server.counters().token_refresh_ok;
        let mut a = env.cmd(&["refresh", "--workspace", &id]);
        leased(&mut a);
        let a = a.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let started = std::time::Instant::now();
        while env.server.counters().token_refresh_ok == before {
            assert!(started.elapsed() < std::time::Duration::from_secs(10), "A never reached Linear");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // Linear has rotated the pair; A is frozen before it hears back.
        let signal =
            |sig: &str| assert!(Command::new("kill").args([sig, &a.id().to_string()]).status().unwrap().success());
        signal("-STOP");
        env.server.set_faults(FaultsPatch { post_grant_delay_ms: Some(0), ..Default::default() });
        // Time passes past A's lease: the file store's lease record says it expired.
        let leases: Vec<_> = std::fs::read_dir(env.dir.join("leases")).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(leases.len(), 1, "A holds the one lease");
        let mut lease: serde_json::Value = serde_json::from_slice(&std::fs::read(&leases[0]).unwrap()).unwrap();
        assert!(lease["expires_ms"].as_u64().is_some(), "{lease}");
        lease["expires_ms"] = 0.into();
        std::fs::write(&leases[0], lease.to_string()).unwrap();
        let stored_before_b = std::fs::read(&secret).unwrap();
        let mut b = env.cmd(&["refresh", "--workspace", &id]);
        leased(&mut b);
        let b = b.output().unwrap();
        match grace {
            // Without a replay grace the taker-over cannot refresh: it says so
            // and leaves the stored secret alone for the frozen holder.
            GraceMode::None => {
                assert_eq!(b.status.code(), Some(7), "{:?}", text(&b));
                assert_eq!(std::fs::read(&secret).unwrap(), stored_before_b, "B left the secret untouched");
            }
            _ => assert!(b.status.success(), "{:?}", text(&b)),
        }
        signal("-CONT");
        let a = a.wait_with_output().unwrap();
        assert!(a.status.success(), "{grace:?}: the thawed refresh finished: {:?}", text(&a));
        // Nothing lost: what is stored is live, and refreshes again.
        let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&secret).unwrap()).unwrap();
        assert!(env.server.refresh_token_live(stored["refresh_token"].as_str().unwrap()), "{grace:?}");
        let o = env.run(&["refresh", "--workspace", &id]);
        assert!(o.status.success(), "{grace:?}: {:?}", text(&o));
    }
}

/// Issue 22, section 3: a credential Linear refused for good is shown by
/// `list`, `inspect` and `doctor` with its code, time and the fix, and a
/// new `setup` of the workspace clears it.
#[test]
fn a_dead_credential_is_shown_with_the_fix_until_setup_clears_it() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    env.server.set_faults(FaultsPatch { expires_in: Some(30), ..Default::default() });
    let id = env.install();
    assert!(env.server.revoke_grant(env.stored()["refresh_token"].as_str().unwrap()));
    let o = env.run(&["token", "--workspace", &id]);
    assert_eq!(o.status.code(), Some(7), "{:?}", text(&o));

    let (out, _) = text(&env.run(&["list"]));
    assert!(out.contains("reauthorization_required") && out.contains("invalid_grant"), "{out}");
    assert!(out.contains("re-run `linear-oauth setup`"), "{out}");
    let rows: serde_json::Value = serde_json::from_slice(&env.run(&["list", "--json"]).stdout).unwrap();
    assert_eq!(rows[0]["status"], "reauthorization_required");
    assert_eq!(rows[0]["status_reason"], "invalid_grant");
    assert!(rows[0]["status_changed_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{rows}");
    assert!(rows[0]["fix"].as_str().unwrap().contains("linear-oauth setup"), "{rows}");
    let (out, _) = text(&env.run(&["inspect", "--workspace", &id]));
    assert!(out.contains("status reauthorization_required") && out.contains("(invalid_grant) at "), "{out}");
    assert!(out.contains("fix: re-run `linear-oauth setup`"), "{out}");
    let o = env.run(&["--json", "doctor"]);
    assert_eq!(o.status.code(), Some(16), "{:?}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let problem = report["problems"].as_array().unwrap().iter().find(|p| p["check"] == "registry").cloned();
    let problem = problem.unwrap_or_else(|| panic!("no registry problem: {report}"));
    assert!(problem["problem"].as_str().unwrap().contains("invalid_grant"), "{problem}");
    assert!(problem["fix"].as_str().unwrap().contains("linear-oauth setup"), "{problem}");

    env.server.set_faults(FaultsPatch { expires_in: Some(86_399), ..Default::default() });
    assert_eq!(env.install(), id);
    let rows: serde_json::Value = serde_json::from_slice(&env.run(&["list", "--json"]).stdout).unwrap();
    assert_eq!((rows[0]["status"].as_str(), rows[0]["status_reason"].as_str()), (Some("active"), None), "{rows}");
    assert!(env.stored().get("reauthorization_required_at").is_none(), "the new install cleared the secret's mark");
    for args in [["token", "--workspace", id.as_str()], ["token", "--secret", "bgagent-linear-oauth-testws"]] {
        let o = env.run(&args);
        assert!(o.status.success(), "{args:?}: {:?}", text(&o));
    }
    assert!(env.run(&["--json", "doctor"]).status.success());
}

#[test]
fn completions_for_each_shell_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let o = Command::new(BIN).args(["completions", shell]).output().unwrap();
        assert!(o.status.success(), "{shell}: {:?}", text(&o));
        let (out, _) = text(&o);
        for word in ["linear-oauth", "webhook", "status", "rotate-client-secret", "--workspace"] {
            assert!(out.contains(word), "{shell} completion lacks {word}: {out}");
        }
    }
    assert_eq!(Command::new(BIN).args(["completions", "tcsh"]).output().unwrap().status.code(), Some(2));
}

#[test]
fn a_reader_that_stops_early_is_an_io_error_not_a_panic() {
    // `linear-oauth completions bash | head -1`: the pipe closes before the
    // script is written.
    for args in [&["completions", "bash"][..], &["man"][..]] {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(21), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.contains("Broken pipe") || err.contains("broken pipe"), "{args:?}: {err}");
    }
}

#[test]
fn man_prints_roff_naming_the_commands_and_writes_one_page_per_command() {
    let o = Command::new(BIN).arg("man").output().unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    let (out, _) = text(&o);
    assert!(out.starts_with(".ie") || out.contains(".TH linear-oauth 1"), "not roff: {out}");
    assert!(out.contains(".TH linear-oauth 1"), "{out}");
    for cmd in ["setup", "token", "status", "completions", "webhook"] {
        assert!(out.contains(cmd), "man page lacks {cmd}");
    }
    let dir = std::env::temp_dir().join(format!("lo-man-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let o = Command::new(BIN).args(["man", "--out-dir"]).arg(&dir).output().unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    for page in ["linear-oauth.1", "linear-oauth-status.1", "linear-oauth-webhook-verify.1"] {
        let body = std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(body.contains(".TH"), "{page}: {body}");
    }
    assert!(!dir.join("linear-oauth-release-leases.1").exists(), "a page for a hidden command");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn status_shows_health_expiry_scope_and_last_refresh_never_a_secret() {
    let env = Env::new(CLIENT_ID, CLIENT_SECRET);
    let id = env.install();
    let stored = env.stored();
    let secrets = stored_secret_values(&env);
    let mut all_output = String::new();

    let o = env.run(&["status"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let (out, _) = text(&o);
    all_output += &out;
    let header = out.lines().next().unwrap();
    for col in ["SLUG", "WORKSPACE ID", "HEALTH", "EXPIRES", "LAST REFRESH", "SCOPE"] {
        assert!(header.contains(col), "{out}");
    }
    let line = out.lines().find(|l| l.contains(&id)).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("testws") && line.contains("active"), "{out}");
    assert!(line.contains(stored["expires_at"].as_str().unwrap()), "{out}");
    assert!(line.contains(stored["updated_at"].as_str().unwrap()), "{out}");
    assert!(line.contains(stored["scope"].as_str().unwrap()), "{out}");

    let o = env.run(&["status", "--workspace", &id]);
    assert!(o.status.success(), "{:?}", text(&o));
    let (out, _) = text(&o);
    all_output += &out;
    assert!(out.contains("health        active"), "{out}");
    assert!(out.contains(&format!("expires       {} (in ", stored["expires_at"].as_str().unwrap())), "{out}");
    assert!(out.contains(&format!("scope         {}", stored["scope"].as_str().unwrap())), "{out}");
    assert!(out.contains(&format!("last refresh  {}", stored["updated_at"].as_str().unwrap())), "{out}");

    let o = env.run(&["status", "--workspace", &id, "--json"]);
    assert!(o.status.success(), "{:?}", text(&o));
    all_output += &text(&o).0;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["workspace_id"], id.as_str());
    assert_eq!(v["health"], "active");
    assert_eq!(v["expires_at"], stored["expires_at"]);
    assert_eq!(v["scope"], stored["scope"]);
    assert_eq!(v["last_refresh"], stored["updated_at"]);
    assert!(v["expires_in_s"].as_i64().unwrap() > 0, "{v}");

    let o = env.run(&["status", "--json"]);
    all_output += &text(&o).0;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v[0]["health"], "active");

    // After a revoke: revoked, with the time it changed.
    assert!(env.run(&["revoke", "--workspace", &id]).status.success());
    let o = env.run(&["status", "--workspace", &id, "--json"]);
    assert!(o.status.success(), "{:?}", text(&o));
    all_output += &text(&o).0;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["health"], "revoked", "{v}");
    let (out, _) = text(&env.run(&["status"]));
    all_output += &out;
    assert!(out.lines().any(|l| l.contains(&id) && l.contains("revoked")), "{out}");
    // Purged: still listed, its token unreadable.
    assert!(env.run(&["revoke", "--workspace", &id, "--purge"]).status.success());
    let o = env.run(&["status", "--workspace", &id]);
    assert!(o.status.success(), "{:?}", text(&o));
    let (out, err) = text(&o);
    all_output += &(out.clone() + &err);
    assert!(out.contains("health        revoked") && out.contains("unreadable"), "{out}");

    let o = env.run(&["status", "--workspace", "no-such-org"]);
    assert_eq!(o.status.code(), Some(3), "{:?}", text(&o));
    for s in secrets {
        assert!(!all_output.contains(&s), "secret leaked: {all_output}");
    }
}

#[test]
fn subcommand_help_lists_its_own_flags_before_the_store_and_timing_options() {
    let o = Command::new(BIN).args(["revoke", "--help"]).output().unwrap();
    let (out, _) = text(&o);
    let own = out.find("--purge").unwrap_or_else(|| panic!("{out}"));
    let heading = out.find("Store and timing options").unwrap_or_else(|| panic!("{out}"));
    let global = out.find("--http-timeout-s").unwrap_or_else(|| panic!("{out}"));
    assert!(own < heading && heading < global, "{out}");
    for flag in ["--recovery-window-days", "--json"] {
        assert!(out.find(flag).unwrap() < heading, "{flag} after the heading: {out}");
    }
}

#[test]
fn local_io_errors_exit_21() {
    let o = Command::new(BIN).arg("--help").output().unwrap();
    assert!(text(&o).0.contains("21  local I/O"), "{:?}", text(&o));
    // `man --out-dir` into a directory that cannot be created.
    let o = Command::new(BIN).args(["man", "--out-dir", "/proc/no/such/dir"]).output().unwrap();
    assert_eq!(o.status.code(), Some(21), "{:?}", text(&o));
}

#[test]
fn without_a_home_no_command_falls_back_to_the_working_directory() {
    // No store named and neither HOME nor XDG_DATA_HOME: the default file
    // store has no home, and would land in the working directory.
    let cwd = std::env::temp_dir().join(format!("lo-nohome-{}", std::process::id()));
    std::fs::create_dir_all(&cwd).unwrap();
    for args in [&["import"][..], &["export", "--force"][..], &["token", "--workspace", "w1"][..], &["list"][..]] {
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(&cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The command may exit before reading: a refused write is fine.
        let _ = child.stdin.take().unwrap().write_all(b"{}\n");
        let o = child.wait_with_output().unwrap();
        let (out, err) = text(&o);
        assert!(!o.status.success(), "{args:?}: {out}");
        assert!(err.contains("neither HOME nor XDG_DATA_HOME is set"), "{args:?}: {err}");
        assert_eq!(std::fs::read_dir(&cwd).unwrap().count(), 0, "{args:?} wrote into the working directory");
    }
    std::fs::remove_dir_all(&cwd).unwrap();
}
