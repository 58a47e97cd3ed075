//! Issue 11 through the binary: bad numbers, ports, ids and store
//! permissions end in a clear error and the documented exit code, never a
//! panic, and read-only commands leave the store directory alone.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use linear_oauth_testserver::fixtures::{iso8601_in, stored_token};

const BIN: &str = env!("CARGO_BIN_EXE_linear-oauth");

fn tempdir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let p =
        std::env::temp_dir().join(format!("lo-cli-hard-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
    let _ = std::fs::remove_dir_all(&p);
    p
}

/// The binary with a file store in `dir` and no ambient configuration.
fn cmd(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).env("LINEAR_OAUTH_STORE", format!("file:{}", dir.display())).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("LINEAR_OAUTH_") && k != "LINEAR_OAUTH_STORE" {
            c.env_remove(k);
        }
    }
    c
}

/// Exit code and stderr; asserts no panic got through.
fn run(c: &mut Command) -> (i32, String) {
    let out: Output = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
    (out.status.code().expect("exited, not killed"), stderr)
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn out_of_range_seconds_are_invalid_input() {
    let dir = tempdir();
    // Everything else about the install is valid, so only the timeout can stop it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let redirect = format!("http://127.0.0.1:{port}/oauth/callback");
    for t in ["18446744073709551615", "1e20", "0", "-1", "nan", "inf", "86401"] {
        let args = ["setup", "--client-id", "x", "--no-browser", "--redirect-uri", &redirect, "--timeout", t];
        let (code, err) = run(cmd(&dir, &args).env("LINEAR_OAUTH_CLIENT_SECRET", "not-used"));
        assert_eq!(code, 11, "--timeout {t}: {err}");
        assert!(err.contains("--timeout"), "{err}");
    }
    for (k, v) in [
        ("LINEAR_OAUTH_HTTP_TIMEOUT_S", "1e20"),
        ("LINEAR_OAUTH_HTTP_TIMEOUT_S", "0"),
        ("LINEAR_OAUTH_LEASE_TTL_S", "0"),
        ("LINEAR_OAUTH_LEASE_TTL_S", "1e300"),
        ("LINEAR_OAUTH_LEASE_WAIT_S", "1e300"),
        ("LINEAR_OAUTH_CACHE_TTL_S", "-1"),
        ("LINEAR_OAUTH_REFRESH_THRESHOLD_S", "1e300"),
    ] {
        let (code, err) = run(cmd(&dir, &["list"]).env(k, v));
        assert_eq!(code, 11, "{k}={v}: {err}");
        assert!(err.contains(k), "{err}");
    }
    // Zero is meaningful for the cache and the threshold.
    let (code, err) =
        run(cmd(&dir, &["list"]).env("LINEAR_OAUTH_CACHE_TTL_S", "0").env("LINEAR_OAUTH_REFRESH_THRESHOLD_S", "0"));
    assert_eq!(code, 0, "{err}");
}

/// Every option of the host's table is a global flag with its variable and
/// default in `--help`; a flag wins over the variable and is checked under
/// its own name.
#[test]
fn global_flags_are_the_options_table() {
    let dir = tempdir();
    let out = cmd(&dir, &["--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for s in linear_oauth_host::SETTINGS {
        let line = help.lines().find(|l| l.trim_start().starts_with(&format!("--{} ", s.cli_flag())));
        let line = line.unwrap_or_else(|| panic!("--{} missing from --help:\n{help}", s.cli_flag()));
        assert!(line.contains(s.env_var.unwrap()), "{line}");
        if let Some(d) = s.default_text() {
            assert!(line.contains(&format!("[default: {d}]")), "{line}");
        }
    }
    for (flag, v) in [("--http-timeout-s", "1e20"), ("--lease-ttl-s", "0"), ("--max-memory-bytes", "1000")] {
        let (code, err) = run(&mut cmd(&dir, &["list", flag, v]));
        assert_eq!(code, 11, "{flag} {v}: {err}");
        assert!(err.contains(flag), "{err}");
    }
    // A bad variable is refused even under a good flag: nothing set is ignored.
    let (code, err) = run(cmd(&dir, &["list", "--cache-ttl-s", "5"]).env("LINEAR_OAUTH_CACHE_TTL_S", "-1"));
    assert_eq!(code, 11, "{err}");
    let out = cmd(&dir, &["list", "--store", "memory:"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no workspaces registered in memory:", "the flag wins");
}

#[test]
fn a_redirect_uri_on_port_zero_is_refused() {
    let dir = tempdir();
    let started = Instant::now();
    let (code, err) = run(cmd(
        &dir,
        &[
            "setup",
            "--no-browser",
            "--client-id",
            "x",
            "--redirect-uri",
            "http://127.0.0.1:0/oauth/callback",
            "--timeout",
            "5",
        ],
    )
    .env("LINEAR_OAUTH_CLIENT_SECRET", "not-used"));
    assert_eq!(code, 11, "{err}");
    assert!(err.contains("port"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(4), "it waited for a callback");
}

#[test]
fn overlong_ids_are_invalid_input() {
    let dir = tempdir();
    let long = "a".repeat(300);
    for args in [["token", "--secret"], ["inspect", "--secret"], ["refresh", "--secret"], ["token", "--workspace"]] {
        let (code, err) = run(&mut cmd(&dir, &[args[0], args[1], &long]));
        assert_eq!(code, 11, "{args:?}: {err}");
    }
    assert!(!dir.exists(), "a read created the store directory");
}

#[test]
fn read_only_commands_leave_the_store_directory_alone() {
    // Missing: list creates nothing.
    let dir = tempdir();
    let (code, err) = run(&mut cmd(&dir, &["list"]));
    assert_eq!(code, 0, "{err}");
    assert!(!dir.exists());

    // Shared with others: refused with the fix, mode and contents unchanged.
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let (code, err) = run(&mut cmd(&dir, &["list"]));
    assert_eq!(code, 10, "{err}");
    assert!(err.contains(&format!("chmod 700 {}", dir.display())), "{err}");
    assert_eq!(mode(&dir), 0o1777);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "created something");

    // Through a symlink: the target is not re-permissioned either.
    let link = tempdir();
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    let (code, _) = run(&mut cmd(&link, &["list"]));
    assert_eq!(code, 10);
    assert_eq!(mode(&dir), 0o1777);
    std::fs::remove_file(&link).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_secret_file_others_can_read_is_refused() {
    let dir = tempdir();
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = dir.join("secrets/tok.json");
    let value = stored_token("lin_oauth_canary_access", "lin_refresh_canary", &iso8601_in(3600), "org-x", "x");
    std::fs::write(&path, value.to_string()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = cmd(&dir, &["token", "--secret", "tok"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(10), "{err}");
    assert!(err.contains(&format!("chmod 600 {}", path.display())), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("canary") && !err.contains("canary"), "token printed");
    assert_eq!(mode(&path), 0o644, "re-permissioned");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = cmd(&dir, &["token", "--secret", "tok"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "lin_oauth_canary_access");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `setup --redirect-uri http://localhost:PORT/...` with 127.0.0.1:PORT held
/// by another program: an error (local I/O, exit 21, not the store's 10)
/// naming the address and the way out, not a
/// wait on ::1 alone.
#[test]
fn setup_on_localhost_names_a_taken_ipv4_port() {
    let dir = tempdir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let redirect = format!("http://localhost:{port}/oauth/callback");
    let args = ["setup", "--no-browser", "--client-id", "x", "--redirect-uri", &redirect, "--timeout", "5"];
    let (code, err) = run(cmd(&dir, &args).env("LINEAR_OAUTH_CLIENT_SECRET", "not-used"));
    assert_eq!(code, 21, "{err}");
    assert!(err.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{err}");
    assert!(err.contains("another program") && err.contains("--redirect-uri"), "{err}");
}

/// The same with [::1]:PORT held: a browser resolving localhost to ::1 would
/// hand the code to that program, so setup refuses and names the IPv4
/// literal to use instead. (A machine without IPv6 cannot hold ::1.)
#[test]
fn setup_on_localhost_names_a_taken_ipv6_port() {
    let taken = match std::net::TcpListener::bind("[::1]:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("skipped: no IPv6 loopback on this machine ({e})");
            return;
        }
    };
    let dir = tempdir();
    let port = taken.local_addr().unwrap().port();
    let redirect = format!("http://localhost:{port}/oauth/callback");
    let args = ["setup", "--no-browser", "--client-id", "x", "--redirect-uri", &redirect, "--timeout", "5"];
    let (code, err) = run(cmd(&dir, &args).env("LINEAR_OAUTH_CLIENT_SECRET", "not-used"));
    assert_eq!(code, 21, "{err}");
    assert!(err.contains(&format!("cannot listen on [::1]:{port}")), "{err}");
    assert!(err.contains(&format!("--redirect-uri http://127.0.0.1:{port}/oauth/callback")), "{err}");
}
