//! `linear-oauth`: install a Linear workspace, hand out tokens, inspect,
//! refresh, revoke, and smoke-test — a thin command-line host over
//! `linear-oauth-host`. No protocol logic lives here.

mod bulk;
mod callback;
mod doctor;
mod error;
mod fleet;
mod release;
mod settings;
mod setup;
mod smoke;
mod status;
mod webhook;

use std::io::Read;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use linear_oauth_host::{Lifetime, Options, Resolver, RevokeOutcome, SecretDeletion};
use serde_json::json;

use crate::error::CliError;
use crate::release::Releases;
use crate::setup::SetupArgs;

/// Linear OAuth credentials for services: install, resolve, inspect, refresh, revoke.
#[derive(Debug, Parser)]
#[command(name = "linear-oauth", version, after_help = error::exit_codes_help())]
struct Cli {
    #[command(flatten)]
    settings: settings::SettingFlags,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    /// Log what happens (never secrets) on stderr.
    #[arg(long, short, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

/// Which stored credential: by Linear organization id or by secret id.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct Target {
    /// Linear organization id (as webhooks carry it).
    #[arg(long)]
    workspace: Option<String>,
    /// Secret id (name or ARN) of the stored token.
    #[arg(long)]
    secret: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install a Linear workspace: browser authorization with PKCE (or, with
    /// --client-credentials, the app's own token without a browser), then store the token.
    Setup(SetupArgs),
    /// Print a valid access token (refreshing if needed) and nothing else.
    Token {
        #[command(flatten)]
        target: Target,
        /// Linear answered 401 to the token read from stdin (never argv):
        /// print the stored token if it is another one, else refresh first.
        #[arg(long)]
        unauthorized: bool,
    },
    /// Validate a stored token and show it with secrets redacted.
    Inspect(#[command(flatten)] Target),
    /// Refresh now, even if the token is fresh.
    Refresh(#[command(flatten)] Target),
    /// Mark the workspace revoked and revoke its grant at Linear; exits 0 only
    /// when Linear confirmed or the grant is provably dead already (else 15).
    Revoke {
        /// Linear organization id.
        #[arg(long)]
        workspace: String,
        /// Also delete the stored secret, once Linear confirmed (or the grant is dead).
        #[arg(long)]
        purge: bool,
        /// With --purge: delete the secret even when Linear did not confirm.
        #[arg(long, requires = "purge")]
        force: bool,
        /// With --purge on the aws store: days Secrets Manager keeps the
        /// deleted secret restorable (7 to 30). The file and memory stores
        /// delete at once.
        #[arg(long, requires = "purge", default_value_t = 7, value_parser = clap::value_parser!(u8).range(7..=30))]
        recovery_window_days: u8,
        /// With --purge on the aws store: delete at once, with no recovery window.
        #[arg(long, requires = "purge", conflicts_with = "recovery_window_days")]
        no_recovery: bool,
    },
    /// Registered workspaces and their status.
    List,
    /// Health of each workspace (active, revoked, reauthorization required,
    /// with the reason and when), its token's expiry and scope, and its last
    /// refresh; a table, or one workspace with --workspace. Never a secret.
    Status {
        /// Only this workspace (Linear organization id).
        #[arg(long)]
        workspace: Option<String>,
    },
    /// Refresh every active workspace whose token expires within --ahead
    /// (same lease and conditional write-back as any refresh), at a bounded,
    /// jittered rate; resumable (a re-run skips what is fresh). Exit 20 when
    /// some workspaces failed.
    Sweep(fleet::SweepArgs),
    /// Store a Linear app's new client secret in every stored token of that
    /// client id, after proving it at Linear with one token renewal;
    /// resumable, with --dry-run. Exit 20 when some workspaces failed.
    RotateClientSecret(fleet::RotateArgs),
    /// Import stored tokens from stdin, one JSON object per line (bare, or
    /// {"secret_id", "token"}); idempotent; never overwrites a newer token.
    Import(bulk::ImportArgs),
    /// Write every registered workspace's stored token to stdout as JSON lines
    /// (`import`'s input). The output IS the secrets: it refuses a terminal.
    Export(bulk::ExportArgs),
    /// Check this installation: component load, store permissions, registry, reaching Linear.
    Doctor(doctor::DoctorArgs),
    /// Linear webhooks: signing secrets, verifying and handling deliveries.
    #[command(subcommand)]
    Webhook(webhook::WebhookCommand),
    /// AWS backend administration.
    #[command(subcommand)]
    Aws(AwsCommand),
    /// Print a shell completion script, e.g.
    /// `linear-oauth completions bash > /etc/bash_completion.d/linear-oauth`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `linear-oauth man | man -l -`; with
    /// --out-dir, write one page per command there instead.
    Man {
        /// Write linear-oauth.1 and linear-oauth-<command>.1 into this directory.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<std::path::PathBuf>,
    },
    /// Run the whole story against a local Linear-compatible server.
    Smoke {
        /// Concurrent resolvers in the burst step.
        #[arg(long, default_value_t = 32)]
        burst: usize,
    },
    /// Internal: gives back the refresh leases an exited command held (see release.rs).
    #[command(hide = true)]
    ReleaseLeases {
        /// JSON list of [key, holder, written version or null].
        #[arg(long)]
        leases: String,
    },
}

#[derive(Debug, Subcommand)]
enum AwsCommand {
    /// Create the DynamoDB registry table (on-demand billing) if it does not exist.
    Bootstrap,
}

/// Where `setup` may find the client secret. Read once and removed from this
/// process's environment, so that no child inherits it.
pub(crate) const CLIENT_SECRET_ENV: &str = "LINEAR_OAUTH_CLIENT_SECRET";

fn main() -> ExitCode {
    // First, while this is the only thread: the browser opener (started by the
    // webbrowser crate, whose Command we cannot reach) and release-leases
    // must not see the client secret.
    let env_secret = std::env::var(CLIENT_SECRET_ENV).ok().filter(|s| !s.is_empty());
    std::env::remove_var(CLIENT_SECRET_ENV);
    let cli = Cli::parse();
    let filter = if cli.verbose { "linear_oauth=debug" } else { "linear_oauth=warn" };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let releases = Releases::default();
    let code = match run(&cli, &releases, env_secret) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.report(cli.json);
            ExitCode::from(e.exit_code())
        }
    };
    // Everything the caller reads is out: lease releases go to a process
    // that outlives this one, so the caller's wait ends here.
    releases.hand_off();
    code
}

fn options(cli: &Cli) -> Result<Options, CliError> {
    let mut o = store_options(cli)?;
    // The process ends with the command: a rotated token the store refuses
    // must fail the command, not wait in memory for a later call.
    o.lifetime = Some(Lifetime::Command);
    o.check_store()?;
    o.hints = hint_store(&o);
    // stdout is the command's output (`--json`): EMF lines, if on, go to stderr.
    o.emf_sink = Some(std::sync::Arc::new(StderrEmf));
    Ok(o)
}

/// The options, refusing a default file store that would not outlive this
/// process or that has no home (see `Options::check_store`): every command
/// that reads or writes the store, bulk ones included.
fn store_options(cli: &Cli) -> Result<Options, CliError> {
    let o = cli.settings.options()?;
    o.check_store()?;
    Ok(o)
}

/// The CLI's EMF sink: whole lines on stderr.
#[derive(Debug)]
struct StderrEmf;

impl linear_oauth_host::EmfSink for StderrEmf {
    fn write_line(&self, line: &str) {
        eprintln!("{line}");
    }
}

/// Where the component's hints outlive this process: on the aws store, a
/// file under `$XDG_CACHE_HOME/linear-oauth` (or `~/.cache/linear-oauth`),
/// one per store and registry table. It holds the registry row a workspace
/// was last read with (ids, slug, status; nothing secret), so the next
/// command's refresh checks the row in the DynamoDB request that takes the
/// lease instead of reading it first: 4 AWS requests on the path, not 5.
/// Other stores gain nothing (their lease take cannot check a row), so their
/// hints stay in memory, as do all hints without a cache directory.
fn hint_store(o: &Options) -> Option<std::sync::Arc<dyn linear_oauth_host::HintStore>> {
    if o.store != "aws" {
        return None;
    }
    let base =
        std::env::var_os("XDG_CACHE_HOME").map(std::path::PathBuf::from).filter(|p| p.is_absolute()).or_else(|| {
            std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| std::path::PathBuf::from(h).join(".cache"))
        })?;
    let identity = format!("store={}\nregistry_table={}", o.store, o.registry_table.as_deref().unwrap_or_default());
    Some(std::sync::Arc::new(linear_oauth_host::FileHints::new(base.join("linear-oauth"), &identity)))
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("JSON values serialize"));
}

fn run(cli: &Cli, releases: &Releases, env_secret: Option<String>) -> Result<(), CliError> {
    match &cli.command {
        Command::Smoke { burst } => return smoke::run(*burst, cli.json),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "linear-oauth", &mut script);
            return write_stdout(&script, "the completion script");
        }
        Command::Man { out_dir } => return man(out_dir.as_deref()),
        Command::ReleaseLeases { leases } => return release::send(&options(cli)?, leases),
        Command::Setup(args) => return setup::setup(cli, args, env_secret),
        Command::Doctor(args) => return doctor::run(&options(cli)?, args, cli.json),
        Command::Import(args) => return bulk::import(&store_options(cli)?, args, cli.json),
        Command::Export(args) => return bulk::export(&store_options(cli)?, args, cli.json),
        Command::Aws(AwsCommand::Bootstrap) => {
            let table = cli.settings.get("registry_table").unwrap_or_default();
            let created = linear_oauth_host::store::AwsBackend::open(&table)?.bootstrap()?;
            if cli.json {
                print_json(&json!({ "table": table, "created": created }));
            } else if created {
                println!("created DynamoDB table {table} (on-demand billing, key linear_workspace_id)");
            } else {
                println!("DynamoDB table {table} already exists");
            }
            return Ok(());
        }
        _ => {}
    }
    let mut o = options(cli)?;
    if let Command::Revoke { recovery_window_days, no_recovery, .. } = &cli.command {
        o.secret_deletion = match no_recovery {
            true => SecretDeletion::Immediate,
            false => SecretDeletion::window(*recovery_window_days)?,
        };
    }
    let r = match &cli.command {
        // A long walk over the fleet: each lease goes back as its refresh
        // ends, not when the command exits (other refreshers would find
        // hours-old leases, and the held list would grow with the fleet).
        Command::Sweep(_) | Command::RotateClientSecret(_) => Resolver::new(o)?,
        _ => releases.resolver(o)?,
    };
    match &cli.command {
        Command::Token { target: t, unauthorized } => {
            let tok = match (&t.workspace, &t.secret) {
                (Some(w), _) if *unauthorized => r.report_unauthorized(w, &rejected_token()?)?,
                (_, Some(s)) if *unauthorized => r.report_unauthorized_secret(s, &rejected_token()?)?,
                (Some(w), _) => r.resolve(w)?,
                (_, Some(s)) => r.resolve_secret(s)?,
                _ => unreachable!("clap requires one"),
            };
            if cli.json {
                print_json(&json!({
                    "access_token": tok.access_token().secret(), "scope": tok.scope(), "workspace_slug": tok.workspace_slug(),
                    "secret_id": tok.secret_id(), "expires_at": tok.expires_at(),
                }));
            } else {
                println!("{}", tok.access_token().secret());
            }
        }
        Command::Inspect(t) => inspect(cli, &r, t)?,
        Command::Refresh(t) => {
            let tok = r.force_refresh(target(t))?;
            if cli.json {
                print_json(
                    &json!({ "secret_id": tok.secret_id(), "workspace_slug": tok.workspace_slug(), "expires_at": tok.expires_at() }),
                );
            } else {
                println!(
                    "refreshed {} ({}); new token expires at {}",
                    tok.workspace_slug(),
                    tok.secret_id(),
                    tok.expires_at()
                );
            }
        }
        Command::Revoke { workspace, purge, force, .. } => return revoke(cli, &r, workspace, *purge, *force),
        Command::Webhook(w) => webhook::run(&r, w, cli.json)?,
        Command::Sweep(a) => fleet::sweep(&r, a, cli.json)?,
        Command::RotateClientSecret(a) => fleet::rotate(&r, a, cli.json)?,
        Command::List if cli.json => list_json(&r)?,
        Command::List => {
            let rows = r.backends().registry.list()?;
            if rows.is_empty() {
                println!("no workspaces registered in {}", r.options().store);
            } else {
                println!("{:<20} {:<38} {:<10} SECRET", "SLUG", "WORKSPACE ID", "STATUS");
                for row in &rows {
                    println!(
                        "{:<20} {:<38} {:<10} {}",
                        row.workspace_slug, row.workspace_id, row.status, row.secret_id
                    );
                }
                for row in rows.iter().filter(|r| r.status == linear_oauth_host::REAUTHORIZATION_REQUIRED) {
                    println!("{}: {}; fix: {}", row.workspace_slug, status_detail(row), reinstall_fix(row));
                }
            }
        }
        Command::Status { workspace } => status::run(&r, workspace.as_deref(), cli.json)?,
        Command::Setup(_)
        | Command::Smoke { .. }
        | Command::Completions { .. }
        | Command::Man { .. }
        | Command::Aws(_)
        | Command::Doctor(_)
        | Command::Import(_)
        | Command::Export(_)
        | Command::ReleaseLeases { .. } => unreachable!("handled above"),
    }
    Ok(())
}

/// The man page on stdout, or one page per command in `out_dir`.
fn man(out_dir: Option<&std::path::Path>) -> Result<(), CliError> {
    let cmd = Cli::command();
    match out_dir {
        Some(dir) => clap_mangen::generate_to(cmd, dir)
            .map_err(|e| CliError::Io(format!("writing man pages to {}: {e}", dir.display()))),
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page).expect("rendering into memory");
            write_stdout(&page, "the man page")
        }
    }
}

/// Generated text on stdout, rendered first so that a closed pipe (`| head`)
/// is an I/O error (exit 21), not a panic inside the generator's `print!`.
fn write_stdout(bytes: &[u8], what: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush()).map_err(|e| CliError::Io(format!("writing {what}: {e}")))
}

/// Prints what happened; anything short of a grant known dead at Linear is an
/// error (exit 15), after the result itself has been printed.
fn revoke(cli: &Cli, r: &Resolver, workspace: &str, purge: bool, force: bool) -> Result<(), CliError> {
    let rev = r.revoke(workspace, purge, force)?;
    let secret = match (rev.purged, r.options().secret_deletion) {
        (false, _) => "kept (marked expired)".to_owned(),
        (true, SecretDeletion::RecoveryWindow(days)) if r.options().store == "aws" => format!(
            "scheduled for deletion in {days} days (until then: aws secretsmanager restore-secret --secret-id {})",
            rev.secret_id
        ),
        (true, _) => "deleted".to_owned(),
    };
    if cli.json {
        print_json(&json!({
            "workspace_id": rev.workspace_id, "secret_id": rev.secret_id, "outcome": rev.outcome.label(),
            "detail": rev.outcome.detail(), "linear_status": rev.linear_status, "purged": rev.purged,
        }));
    } else {
        let at_linear = match &rev.outcome {
            RevokeOutcome::Revoked => "revoked at Linear".to_owned(),
            RevokeOutcome::AlreadyDead => {
                "the grant was already dead at Linear (its stored credential is refused or expired)".to_owned()
            }
            RevokeOutcome::NotConfirmed(_) => "Linear did NOT confirm the revoke".to_owned(),
            RevokeOutcome::Failed(m) => format!("revoking at Linear FAILED ({m})"),
        };
        println!("workspace {} marked revoked; {at_linear}; secret {} {secret}", rev.workspace_id, rev.secret_id);
    }
    match rev.outcome {
        RevokeOutcome::Revoked | RevokeOutcome::AlreadyDead => Ok(()),
        RevokeOutcome::NotConfirmed(detail) => Err(CliError::RevokeNotConfirmed { outcome: "not-confirmed", detail }),
        RevokeOutcome::Failed(detail) => Err(CliError::RevokeNotConfirmed { outcome: "failed", detail }),
    }
}

/// `list --json`: one JSON array, written a registry page at a time (a
/// `Scan` page, or 1,000 row files), so 100,000 workspaces list in the
/// memory of one page. Rows come in store order, each page sorted by slug.
fn list_json(r: &Resolver) -> Result<(), CliError> {
    use std::io::Write;
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let io = |e: std::io::Error| CliError::Io(format!("writing the listing: {e}"));
    let mut first = true;
    let mut failed = None;
    let scanned = r.backends().registry.scan(&mut |page| {
        for row in &page {
            let sep = if std::mem::take(&mut first) { "[\n  " } else { ",\n  " };
            let written = out
                .write_all(sep.as_bytes())
                .and_then(|()| serde_json::to_writer(&mut out, &row_json(row)).map_err(Into::into));
            if let Err(e) = written {
                failed = Some(e);
                return Err(linear_oauth_host::Error::Store("stdout closed".into()));
            }
        }
        Ok(())
    });
    match (failed, scanned) {
        (Some(e), _) => return Err(io(e)),
        (None, Err(e)) => return Err(e.into()),
        (None, Ok(())) => {}
    }
    out.write_all(if first { b"[]\n" } else { b"\n]\n" }).and_then(|()| out.flush()).map_err(io)
}

/// A registry row as `list --json` and `inspect --json` show it; for a
/// credential Linear refused for good, with the fix.
fn row_json(r: &linear_oauth_host::RegistryRow) -> serde_json::Value {
    let mut v = json!({
        "workspace_id": r.workspace_id, "workspace_slug": r.workspace_slug, "secret_id": r.secret_id,
        "status": r.status, "status_reason": r.status_reason, "status_changed_at": r.status_changed_at,
    });
    if r.status == linear_oauth_host::REAUTHORIZATION_REQUIRED {
        v["fix"] = json!(reinstall_fix(r));
    }
    v
}

/// What a `reauthorization_required` row records, in words.
pub(crate) fn status_detail(r: &linear_oauth_host::RegistryRow) -> String {
    format!(
        "Linear refused its stored credential ({}) at {}",
        r.status_reason.as_deref().unwrap_or("reason not recorded"),
        r.status_changed_at.as_deref().unwrap_or("an unrecorded time")
    )
}

/// The fix for a workspace whose credential Linear refused for good.
pub(crate) fn reinstall_fix(r: &linear_oauth_host::RegistryRow) -> String {
    format!(
        "re-run `linear-oauth setup` for workspace {} ({}) (with --client-credentials if it was installed so)",
        r.workspace_slug, r.workspace_id
    )
}

fn target(t: &Target) -> linear_oauth_host::Target<'_> {
    match (&t.workspace, &t.secret) {
        (Some(w), _) => linear_oauth_host::Target::Workspace(w),
        (_, Some(s)) => linear_oauth_host::Target::Secret(s),
        _ => unreachable!("clap requires one"),
    }
}

pub(crate) fn human_duration(ms: i64) -> String {
    let (sign, ms) = if ms < 0 { ("-", -ms) } else { ("", ms) };
    let s = ms / 1000;
    match s {
        0..=59 => format!("{sign}{s}s"),
        60..=3599 => format!("{sign}{}m {}s", s / 60, s % 60),
        _ => format!("{sign}{}h {}m", s / 3600, s % 3600 / 60),
    }
}

fn inspect(cli: &Cli, r: &Resolver, t: &Target) -> Result<(), CliError> {
    let i = r.inspect(target(t))?;
    let row = &i.registry;
    let field = |n: &str| i.fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    if cli.json {
        print_json(&json!({
            "secret_id": i.secret_id,
            "registry": row.as_ref().map(row_json),
            "valid": i.invalid_fields.is_empty(),
            "invalid_fields": i.invalid_fields,
            "expires_at": field("expires_at"),
            "expires_in_s": i.expires_in_ms.map(|ms| ms / 1000),
            "needs_refresh": i.needs_refresh,
            "app_user_id": field("app_user_id"),
            "fields": i.fields.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        }));
    } else {
        println!("secret        {}", i.secret_id);
        match row {
            Some(r) if r.status == linear_oauth_host::REAUTHORIZATION_REQUIRED => {
                println!("registry      {} ({}) status {}", r.workspace_id, r.workspace_slug, r.status);
                println!("              {}", status_detail(r));
                println!("              fix: {}", reinstall_fix(r));
            }
            Some(r) => println!("registry      {} ({}) status {}", r.workspace_id, r.workspace_slug, r.status),
            None => println!("registry      no row points at this secret"),
        }
        if i.invalid_fields.is_empty() {
            println!("valid         yes");
        } else {
            println!("valid         NO: missing, empty or non-string: {}", i.invalid_fields.join(", "));
        }
        match i.expires_in_ms {
            Some(ms) => println!(
                "expires       {} ({}{})",
                field("expires_at").unwrap_or_default(),
                if ms < 0 { "expired " } else { "in " },
                human_duration(ms.abs()) + if i.needs_refresh { "; next resolve refreshes" } else { "" }
            ),
            None => println!("expires       unreadable; next resolve refreshes"),
        }
        if let Some(id) = field("app_user_id") {
            println!("app user      {id} (the viewer of this actor=app token)");
        }
        println!("fields");
        for (k, v) in &i.fields {
            println!("  {k:<32} {v}");
        }
    }
    if i.invalid_fields.is_empty() {
        Ok(())
    } else {
        Err(linear_oauth_host::Error::InvalidStoredToken(i.invalid_fields).into())
    }
}

/// The access token Linear rejected, from stdin: argv is visible to every
/// user of the machine.
fn rejected_token() -> Result<String, CliError> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| CliError::Io(format!("reading the rejected token from stdin: {e}")))?;
    let token = s.trim();
    if token.is_empty() {
        return Err(linear_oauth_host::Error::InvalidInput(
            "--unauthorized reads the access token Linear rejected from stdin, and stdin was empty".into(),
        )
        .into());
    }
    Ok(token.to_owned())
}
