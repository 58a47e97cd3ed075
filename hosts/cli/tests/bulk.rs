//! `linear-oauth import` and `export` as a user runs them: stdin to the file
//! store, reports on stderr, summary and exit codes, a crash half-way.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::{json, Value};

fn token(n: usize, updated_at: &str) -> Value {
    json!({
        "access_token": format!("at-{n}-secret"), "refresh_token": format!("rt-{n}-secret"),
        "expires_at": "2030-01-01T00:00:00.000Z", "scope": "read write", "client_id": "cid",
        "client_secret": "cs-secret", "workspace_id": format!("org-{n}"), "workspace_slug": format!("ws-{n:04}"),
        "installed_at": "2026-01-01T00:00:00.000Z", "updated_at": updated_at,
        "installed_by_platform_user_id": "u-1",
    })
}

const T1: &str = "2026-03-01T00:00:00.000Z";

fn lines(values: &[Value]) -> String {
    values.iter().map(|v| format!("{v}\n")).collect()
}

fn with_stdin(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn store() -> Env {
    Env::new("cid", "cs-secret")
}

fn no_secrets(s: &str) {
    for secret in ["at-", "rt-", "cs-secret"] {
        assert!(!s.contains(secret), "output shows a secret value: {s}");
    }
}

#[test]
fn import_reports_bad_lines_by_number_and_field_and_imports_the_rest() {
    let env = store();
    let mut bad = token(2, T1);
    bad.as_object_mut().unwrap().remove("refresh_token");
    bad["updated_at"] = json!("soon");
    let input =
        format!("{}\n{bad}\n{{oops\n{}\n", token(1, T1), json!({"secret_id": "custom-3", "token": token(3, T1)}));
    let out = with_stdin(env.cmd(&["import"]), &input);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(20), "{stdout}{stderr}");
    assert!(stderr.contains("line 2") && stderr.contains("refresh_token") && stderr.contains("updated_at"), "{stderr}");
    assert!(stderr.contains("line 3") && stderr.contains("<not valid JSON>"), "{stderr}");
    assert!(stdout.contains("2 imported, 0 unchanged, 0 skipped as older, 2 failed"), "{stdout}");
    no_secrets(&stdout);
    no_secrets(&stderr);
    let list: Value = serde_json::from_slice(&env.run(&["--json", "list"]).stdout).unwrap();
    let ids: Vec<_> = list.as_array().unwrap().iter().map(|r| r["secret_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, ["bgagent-linear-oauth-ws-0001", "custom-3"]);

    // --json: one summary object on stdout, a JSON line per input line on stderr.
    let out = with_stdin(env.cmd(&["--json", "import"]), &input);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((summary["unchanged"].as_u64(), summary["failed"].as_u64()), (Some(2), Some(2)));
    let per_line: Vec<Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("line").is_some())
        .collect();
    assert_eq!(per_line.len(), 4);
    assert_eq!(per_line[1]["bad_fields"], json!(["refresh_token", "updated_at"]));
    assert_eq!(per_line[3]["outcome"], "unchanged");
}

#[test]
fn export_then_import_into_a_fresh_store_round_trips() {
    let (from, to) = (store(), store());
    let input = lines(&(0..12).map(|n| token(n, T1)).collect::<Vec<_>>());
    assert!(with_stdin(from.cmd(&["import"]), &input).status.success());
    // Not a terminal: no --force needed; with it, the same.
    let exported = from.cmd(&["export"]).output().unwrap();
    assert!(exported.status.success(), "{:?}", text(&exported));
    assert!(String::from_utf8_lossy(&exported.stderr).contains("exported 12 workspaces"));
    let forced = from.cmd(&["export", "--force"]).output().unwrap();
    assert_eq!(forced.stdout, exported.stdout);
    let dump = String::from_utf8(exported.stdout).unwrap();
    let out = with_stdin(to.cmd(&["import"]), &dump);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(to.run(&["--json", "list"]).stdout, from.run(&["--json", "list"]).stdout);
    assert_eq!(String::from_utf8(to.cmd(&["export"]).output().unwrap().stdout).unwrap(), dump);
}

/// A terminal on stdout is refused without --force (through `script`, which
/// gives the command a pseudo-terminal; util-linux).
#[test]
fn export_refuses_a_terminal_unless_forced() {
    if !std::path::Path::new("/usr/bin/script").exists() {
        eprintln!("no /usr/bin/script (util-linux) to make a terminal; the non-terminal paths are tested elsewhere");
        return;
    }
    let env = store();
    assert!(with_stdin(env.cmd(&["import"]), &lines(&[token(1, T1)])).status.success());
    let run = |args: &str| {
        let c = env.cmd(&[]);
        let cmd = format!("{BIN} {args}; echo \"exit=$?\"");
        let mut s = Command::new("/usr/bin/script");
        s.args(["-qec", &cmd, "/dev/null"]);
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => s.env(k, v),
                None => s.env_remove(k),
            };
        }
        String::from_utf8_lossy(&s.stdin(Stdio::null()).output().unwrap().stdout).into_owned()
    };
    let refused = run("export");
    assert!(refused.contains("refusing to print them to a terminal") && refused.contains("exit=11"), "{refused}");
    assert!(!refused.contains("at-1-secret"), "{refused}");
    let forced = run("export --force");
    assert!(forced.contains("at-1-secret") && forced.contains("exit=0"), "{forced}");
}

/// The process dies after 5 secret writes, before any registry row: the
/// re-run writes the other secrets and every row, the next run nothing.
#[test]
fn a_crash_half_way_loses_and_duplicates_nothing() {
    let env = store();
    let input = lines(&(0..20).map(|n| token(n, T1)).collect::<Vec<_>>());
    let mut crashing = env.cmd(&["--json", "import", "--concurrency", "1"]);
    crashing.env(linear_oauth_host::TEST_IMPORT_ABORT_ENV, "5");
    let out = with_stdin(crashing, &input);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("aborting after 5 secret writes"), "{:?}", text(&out));
    assert_eq!(
        std::fs::read_dir(env.dir.join("secrets"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".json"))
            .count(),
        5
    );
    let rows = std::fs::read_dir(env.dir.join("registry")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(rows, 0, "no row was written before the crash");

    let summary = |out: &Output| -> Value { serde_json::from_slice(&out.stdout).unwrap() };
    let out = with_stdin(env.cmd(&["--json", "import"]), &input);
    assert!(out.status.success(), "{:?}", text(&out));
    let s = summary(&out);
    assert_eq!(
        (s["imported"].as_u64(), s["secret_writes"].as_u64(), s["row_writes"].as_u64()),
        (Some(20), Some(15), Some(20))
    );
    let out = with_stdin(env.cmd(&["--json", "import"]), &input);
    let s = summary(&out);
    assert_eq!(
        (s["unchanged"].as_u64(), s["secret_writes"].as_u64(), s["row_writes"].as_u64()),
        (Some(20), Some(0), Some(0))
    );
    let dump = String::from_utf8(env.cmd(&["export"]).output().unwrap().stdout).unwrap();
    assert_eq!(dump.lines().count(), 20);
    for (n, line) in dump.lines().enumerate() {
        assert_eq!(serde_json::from_str::<Value>(line).unwrap()["token"], token(n, T1));
    }
}

/// `list --json` streams the registry a page at a time: past one page (1,000
/// row files) it is still one JSON array holding every row once. `doctor`
/// reads a random sample of the secrets, or every one with `--all`.
#[test]
fn list_json_streams_past_a_page_and_doctor_samples() {
    let env = store();
    let n = 2345;
    let input = lines(&(0..n).map(|i| token(i, T1)).collect::<Vec<_>>());
    assert!(with_stdin(env.cmd(&["import"]), &input).status.success());
    let out = env.run(&["--json", "list"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut ids: Vec<_> = list.as_array().unwrap().iter().map(|r| r["workspace_id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n);
    no_secrets(&String::from_utf8_lossy(&out.stdout));

    let doctor = |args: &[&str]| -> Value {
        let mut argv = vec!["--json", "doctor"];
        argv.extend_from_slice(args);
        serde_json::from_slice(&env.cmd(&argv).output().unwrap().stdout).unwrap()
    };
    let sampled = doctor(&["--sample", "25"]);
    assert_eq!(sampled["registry"]["workspaces"], n);
    let summary = sampled["store"]["summary"].as_str().unwrap();
    assert!(summary.contains(&format!("25 of a random sample of 25 active secrets readable ({n} active")), "{summary}");
    let all = doctor(&["--all", "--concurrency", "4"]);
    let summary = all["store"]["summary"].as_str().unwrap();
    assert!(summary.contains(&format!("{n} active secrets readable")), "{summary}");

    // A row whose secret is gone is found by --all, named, with its fix.
    std::fs::remove_file(env.dir.join("secrets").join("bgagent-linear-oauth-ws-0007.json")).unwrap();
    let all = doctor(&["--all"]);
    let problems = all["problems"].to_string();
    assert!(problems.contains("org-7") && problems.contains("does not exist"), "{problems}");
}
