//! `linear-oauth doctor`: is this installation able to work here? Each check
//! reports what it saw; every problem comes with a one-line fix, and any
//! problem makes the command exit non-zero. Read-only except for one probe
//! file written and removed in a file store's directory.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use linear_oauth_host::{Backends, Options, RegistryRow, Resolver};
use serde_json::{json, Value};

use crate::error::CliError;

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How much of a large store `doctor` reads.
#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// Read the secrets of this many active workspaces, picked at random
    /// (on the aws store: one GetSecretValue each).
    #[arg(long, default_value_t = 200, value_name = "N", conflicts_with = "all")]
    pub sample: usize,
    /// Read the secret of every active workspace.
    #[arg(long)]
    pub all: bool,
    /// Secrets read at once.
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

/// What one pass over the registry keeps: counts, the rows Linear refused
/// for good, and a uniform sample of the active ones (reservoir sampling),
/// so a store of 100,000 workspaces is read in the memory of a page.
#[derive(Debug, Default)]
struct Census {
    by_status: BTreeMap<String, usize>,
    dead: Vec<RegistryRow>,
    active: usize,
    sample: Vec<RegistryRow>,
}

impl Census {
    fn take(backends: &Backends, sample: usize) -> Result<Self, linear_oauth_host::Error> {
        use rand::Rng;
        let mut rng = rand::rng();
        let mut c = Census::default();
        backends.registry.scan(&mut |page| {
            for row in page {
                *c.by_status.entry(row.status.clone()).or_default() += 1;
                if row.status == linear_oauth_host::REAUTHORIZATION_REQUIRED {
                    c.dead.push(row);
                } else if row.status == "active" {
                    c.active += 1;
                    if c.sample.len() < sample {
                        c.sample.push(row);
                    } else if let Some(slot) = c.sample.get_mut(rng.random_range(0..c.active)) {
                        *slot = row;
                    }
                }
            }
            Ok(())
        })?;
        Ok(c)
    }
}

/// One thing found wrong, and what to do about it.
#[derive(Debug)]
struct Problem {
    check: &'static str,
    problem: String,
    fix: String,
}

#[derive(Debug, Default)]
struct Report {
    sections: serde_json::Map<String, Value>,
    problems: Vec<Problem>,
}

impl Report {
    fn problem(&mut self, check: &'static str, problem: impl Into<String>, fix: impl Into<String>) {
        self.problems.push(Problem { check, problem: problem.into(), fix: fix.into() });
    }
}

pub fn run(options: &Options, args: &DoctorArgs, json_out: bool) -> Result<(), CliError> {
    let mut report = Report::default();
    report.sections.insert(
        "version".into(),
        json!({ "linear_oauth": env!("CARGO_PKG_VERSION"), "os": std::env::consts::OS, "arch": std::env::consts::ARCH }),
    );
    component(&mut report);
    // File permissions are looked at before the store is opened: opening
    // refuses (or would change) what this check is about.
    let uri = options.store.as_str();
    let summary = uri.strip_prefix("file:").map(|dir| file_store(&mut report, Path::new(dir)));
    let found_already = !report.problems.is_empty();
    match Backends::open_with(uri, options.registry_table.as_deref()) {
        Ok(backends) => {
            // One pass over the registry serves the secret checks and the counts.
            let census = Census::take(&backends, if args.all { usize::MAX } else { args.sample });
            if let Err(e) = &census {
                report.problem("registry", format!("cannot list the registry: {e}"), store_fix(uri));
            }
            let read_fix = if uri == "aws" { iam_fix(&options.secret_prefix) } else { store_fix(uri) };
            let summary = match (summary, &census) {
                (Some(s), Ok(c)) => format!("{s}; {}", secrets(&mut report, &backends, c, args, &read_fix)),
                (Some(s), Err(_)) => s,
                (None, Ok(c)) if uri == "aws" => secrets(&mut report, &backends, c, args, &read_fix),
                (None, Err(_)) if uri == "aws" => "registry unreadable".into(),
                (None, _) => "in-process only (nothing persists)".into(),
            };
            report.sections.insert("store".into(), json!({ "uri": uri, "summary": summary }));
            if let Ok(c) = &census {
                registry(&mut report, c);
            }
        }
        Err(e) => {
            report.sections.insert("store".into(), json!({ "uri": uri, "summary": format!("cannot open: {e}") }));
            if !found_already {
                report.problem("store", format!("cannot open store {uri}: {e}"), store_fix(uri));
            }
        }
    }
    api(&mut report, &options.api_base);

    let ok = report.problems.is_empty();
    if json_out {
        let problems: Vec<Value> =
            report.problems.iter().map(|p| json!({ "check": p.check, "problem": p.problem, "fix": p.fix })).collect();
        let mut out = report.sections.clone();
        out.insert("problems".into(), json!(problems));
        out.insert("ok".into(), json!(ok));
        crate::print_json(&Value::Object(out));
    } else {
        print_human(&report);
    }
    if ok {
        Ok(())
    } else {
        Err(CliError::Doctor(report.problems.len()))
    }
}

fn print_human(report: &Report) {
    let s = &report.sections;
    let get = |section: &str, key: &str| s.get(section).and_then(|v| v.get(key)).cloned().unwrap_or(Value::Null);
    let text = |v: Value| match v {
        Value::String(s) => s,
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    println!(
        "linear-oauth {} ({}-{})",
        text(get("version", "linear_oauth")),
        text(get("version", "os")),
        text(get("version", "arch"))
    );
    println!(
        "component    {} in {} ms (artifact for {}, CPU baseline [{}])",
        text(get("component", "load")),
        text(get("component", "load_ms")),
        text(get("component", "target")),
        text(get("component", "cpu_baseline"))
    );
    println!("store        {} {}", text(get("store", "uri")), text(get("store", "summary")));
    if let Some(Value::Object(counts)) = s.get("registry").and_then(|r| r.get("by_status")) {
        let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
        println!("registry     {}", if parts.is_empty() { "no workspaces".into() } else { parts.join(", ") });
    }
    println!("api          {} {}", text(get("api", "base")), text(get("api", "summary")));
    if report.problems.is_empty() {
        println!("ok: no problems found");
    } else {
        for p in &report.problems {
            println!("PROBLEM [{}] {}\n  fix: {}", p.check, p.problem, p.fix);
        }
    }
}

fn component(report: &mut Report) {
    match Resolver::load_info() {
        Ok(info) => {
            report.sections.insert(
                "component".into(),
                json!({
                    "load": if info.compiled_fallback { "compiled" } else { "precompiled" },
                    "load_ms": (info.load_time.as_secs_f64() * 1e5).round() / 100.0,
                    "target": info.target,
                    "cpu_baseline": info.cpu_baseline,
                    "fallback_reason": info.fallback_reason,
                }),
            );
            if let Some(reason) = info.fallback_reason {
                report.problem(
                    "component",
                    format!("the precompiled component was rejected and compiled at load (slow cold starts): {reason}"),
                    format!("install the build for this platform (artifact is for {})", info.target),
                );
            }
        }
        Err(e) => {
            report.sections.insert("component".into(), json!({ "load": "failed", "error": e.to_string() }));
            report.problem(
                "component",
                format!("the component does not load: {e}"),
                "install the build for this platform (x86_64 or aarch64 Linux)",
            );
        }
    }
}

fn store_fix(uri: &str) -> String {
    if uri == "aws" {
        "check AWS credentials and region, and pass --registry-table (create it with `linear-oauth aws bootstrap`)"
            .into()
    } else {
        "use --store file:DIR (a directory only you can read), memory: or aws".into()
    }
}

fn mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o7777)
}

fn file_store(report: &mut Report, dir: &Path) -> String {
    let Some(dir_mode) = mode(dir) else {
        return "does not exist yet (created 0700 on the first install)".into();
    };
    if dir_mode & 0o077 != 0 {
        report.problem(
            "store",
            format!("{} has mode {dir_mode:04o}: other users can reach the stored tokens", dir.display()),
            format!("chmod 700 {}", dir.display()),
        );
    }
    let mut loose = Vec::new();
    let mut files = 0;
    for sub in ["secrets", "registry", "leases", "locks"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else { continue };
        for entry in entries.flatten() {
            files += 1;
            if mode(&entry.path()).is_some_and(|m| m & 0o077 != 0) {
                loose.push(entry.path());
            }
        }
    }
    if let Some(m) = mode(&dir.join("registry.json")) {
        files += 1;
        if m & 0o077 != 0 {
            loose.push(dir.join("registry.json"));
        }
    }
    for path in &loose {
        report.problem(
            "store",
            format!("{} is readable by other users (mode {:04o})", path.display(), mode(path).unwrap_or(0)),
            format!("chmod 600 {}", path.display()),
        );
    }
    let probe = dir.join(format!(".doctor-probe-{}", std::process::id()));
    let writable = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut f| f.write_all(b"probe"))
        .map(|()| std::fs::remove_file(&probe));
    if let Err(e) = writable {
        report.problem(
            "store",
            format!("cannot write in {}: {e}", dir.display()),
            format!(
                "run as the owner of {} or fix its permissions (a refresh must write the rotated token)",
                dir.display()
            ),
        );
    }
    format!("directory mode {dir_mode:04o}, {files} files")
}

/// Reads the sampled (or every) active workspace's secret, a bounded number
/// at a time: each must exist and be readable with this identity.
fn secrets(report: &mut Report, backends: &Backends, c: &Census, args: &DoctorArgs, read_fix: &str) -> String {
    let reads = linear_oauth_host::bulk::parallel_map(&c.sample, args.concurrency.into(), |row| {
        backends.secrets.get(&row.secret_id)
    });
    let mut readable = 0;
    for (row, read) in c.sample.iter().zip(reads) {
        match read {
            Ok(Some(_)) => readable += 1,
            Ok(None) => report.problem(
                "store",
                format!("workspace {} points at secret {} which does not exist", row.workspace_id, row.secret_id),
                "install the workspace again with `linear-oauth setup`",
            ),
            Err(e) => report.problem("store", format!("cannot read secret {}: {e}", row.secret_id), read_fix),
        }
    }
    if c.sample.len() < c.active {
        format!(
            "{readable} of a random sample of {} active secrets readable ({} active; --all reads every one)",
            c.sample.len(),
            c.active
        )
    } else {
        format!("{readable} active secrets readable")
    }
}

/// The grant a resolver needs on the secrets named with the configured
/// prefix (Secrets Manager appends 6 random characters to a secret's ARN,
/// hence the `*`), and on a customer-managed KMS key if the secrets use one.
fn iam_fix(prefix: &str) -> String {
    format!(
        "grant this role secretsmanager:GetSecretValue, PutSecretValue and UpdateSecretVersionStage on \
         arn:aws:secretsmanager:REGION:ACCOUNT:secret:{prefix}*; if the secrets are encrypted with a customer-managed \
         KMS key, also kms:Decrypt and kms:GenerateDataKey on that key (see README, AWS store)"
    )
}

fn registry(report: &mut Report, c: &Census) {
    let workspaces: usize = c.by_status.values().sum();
    report.sections.insert("registry".into(), json!({ "workspaces": workspaces, "by_status": c.by_status }));
    // Linear refused these credentials for good: nothing resolves them until
    // they are installed again.
    for row in &c.dead {
        report.problem(
            "registry",
            format!(
                "workspace {} ({}) must be installed again: {}",
                row.workspace_slug,
                row.workspace_id,
                crate::status_detail(row)
            ),
            crate::reinstall_fix(row),
        );
    }
}

fn api(report: &mut Report, base: &str) {
    let url = match url::Url::parse(base) {
        Ok(u) => u,
        Err(e) => {
            report.problem(
                "api",
                format!("api base {base:?} is not a URL: {e}"),
                "set --api-base / LINEAR_OAUTH_API_BASE to https://api.linear.app",
            );
            return;
        }
    };
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']).to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let started = Instant::now();
    let result =
        connect(&host, port).and_then(|tcp| if url.scheme() == "https" { tls_handshake(&host, tcp) } else { Ok(()) });
    let ms = (started.elapsed().as_secs_f64() * 1e5).round() / 100.0;
    match result {
        Ok(()) => {
            let what = if url.scheme() == "https" { "TCP + TLS" } else { "TCP" };
            report.sections.insert(
                "api".into(),
                json!({ "base": base, "reachable": true, "summary": format!("{what} ok in {ms} ms") }),
            );
        }
        Err(e) => {
            report.sections.insert(
                "api".into(),
                json!({ "base": base, "reachable": false, "summary": format!("unreachable: {e}") }),
            );
            report.problem(
                "api",
                format!("cannot reach {host}:{port} ({e})"),
                "allow outbound HTTPS to api.linear.app (security group, proxy, VPC NAT), or fix --api-base",
            );
        }
    }
}

fn connect(host: &str, port: u16) -> Result<TcpStream, String> {
    let addrs: Vec<_> = (host, port).to_socket_addrs().map_err(|e| format!("name lookup failed: {e}"))?.collect();
    let mut last = "no address".to_owned();
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// The same roots the component's HTTPS client trusts (webpki-roots).
fn tls_handshake(host: &str, mut tcp: TcpStream) -> Result<(), String> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(PROBE_TIMEOUT)).map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(PROBE_TIMEOUT)).map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| format!("TLS handshake: {e}"))?;
    }
    Ok(())
}
