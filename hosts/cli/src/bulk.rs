//! `linear-oauth import` and `export`: stored tokens as JSON lines, through
//! `linear_oauth_host::bulk` (which validates, compares and writes). This
//! file reads stdin, writes stdout, and reports: per-line results on stderr,
//! a progress line when stderr is a terminal, a summary at the end.

use std::io::{BufWriter, IsTerminal};
use std::time::{Duration, Instant};

use clap::Args;
use linear_oauth_host::bulk::{self, ImportOptions, LineOutcome, LineReport};
use linear_oauth_host::{Backends, Error, Options};
use serde_json::json;

use crate::error::CliError;

/// Secrets Manager's documented quota shared by PutSecretValue and
/// UpdateSecretVersionStage, per region.
const AWS_WRITE_QUOTA: f64 = 50.0;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Secrets written at once.
    #[arg(long, default_value_t = bulk::DEFAULT_CONCURRENCY as u16, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Secret write requests per second (a new secret costs 1, an update 2, as
    /// Secrets Manager counts them); 0 for no limit. [default: 20 on the aws
    /// store, whose quota is 50/s per region shared with every other writer;
    /// no limit elsewhere]
    #[arg(long, value_name = "N")]
    rate: Option<f64>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a terminal anyway (the output holds every token's secrets).
    #[arg(long)]
    force: bool,
    /// Secrets read at once.
    #[arg(long, default_value_t = bulk::DEFAULT_CONCURRENCY as u16, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
}

fn open(o: &Options) -> Result<Backends, Error> {
    Backends::open_with(&o.store, o.registry_table.as_deref())
}

/// A one-line progress display on a terminal's stderr, redrawn at most
/// every 100 ms and cleared before any other line is printed.
struct Progress {
    on: bool,
    shown: bool,
    last: Option<Instant>,
    start: Instant,
}

impl Progress {
    fn update(&mut self, s: &bulk::ImportSummary, lines: usize) {
        if !self.on || self.last.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) {
            return;
        }
        self.last = Some(Instant::now());
        let per_s = lines as f64 / self.start.elapsed().as_secs_f64().max(0.001);
        eprint!(
            "\r\x1b[Kimport: {lines} lines: {} imported, {} unchanged, {} skipped as older, {} failed ({per_s:.0} lines/s)",
            s.imported, s.unchanged, s.skipped_older, s.failed
        );
        self.shown = true;
    }

    fn clear(&mut self) {
        if self.shown {
            eprint!("\r\x1b[K");
            self.shown = false;
        }
    }
}

fn line_json(r: &LineReport) -> serde_json::Value {
    json!({
        "line": r.line, "outcome": r.outcome.label(), "secret_id": r.secret_id, "workspace_id": r.workspace_id,
        "bad_fields": r.bad_fields, "detail": r.detail,
    })
}

pub fn import(o: &Options, args: &ImportArgs, json_out: bool) -> Result<(), CliError> {
    let backends = open(o)?;
    let mut io = ImportOptions::for_store(&o.store, &o.secret_prefix);
    io.concurrency = usize::from(args.concurrency);
    match args.rate {
        Some(0.0) => io.rate = None,
        Some(r) if r.is_finite() && r > 0.0 => io.rate = Some(r),
        Some(r) => {
            return Err(Error::InvalidInput(format!("--rate is writes per second (0: no limit), not {r}")).into())
        }
        None => {}
    }
    if o.store == "aws" && io.rate.is_none_or(|r| r > AWS_WRITE_QUOTA) {
        eprintln!(
            "linear-oauth: warning: a write rate above {AWS_WRITE_QUOTA}/s exceeds Secrets Manager's quota \
             (PutSecretValue + UpdateSecretVersionStage, per region); expect throttling"
        );
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("linear-oauth: reading stored tokens as JSON lines from stdin (end with Ctrl-D)");
    }
    let start = Instant::now();
    let mut progress = Progress { on: std::io::stderr().is_terminal() && !json_out, shown: false, last: None, start };
    let mut running = bulk::ImportSummary::default();
    let mut seen = 0;
    let summary = bulk::import_lines(&backends, stdin.lock(), &io, |r| {
        seen += 1;
        match r.outcome {
            LineOutcome::Imported => running.imported += 1,
            LineOutcome::Unchanged => running.unchanged += 1,
            LineOutcome::SkippedOlder => running.skipped_older += 1,
            LineOutcome::Failed => running.failed += 1,
        }
        if json_out {
            progress.clear();
            eprintln!("{}", line_json(r));
        } else if matches!(r.outcome, LineOutcome::Failed | LineOutcome::SkippedOlder) {
            progress.clear();
            let what = if r.outcome == LineOutcome::Failed { "FAILED" } else { "skipped" };
            let id = r.secret_id.as_deref().map(|s| format!(" ({s})")).unwrap_or_default();
            eprintln!("line {}{id}: {what}: {}", r.line, r.detail);
        }
        progress.update(&running, seen);
    })?;
    progress.clear();
    let seconds = start.elapsed().as_secs_f64();
    if json_out {
        crate::print_json(&json!({
            "lines": summary.lines, "imported": summary.imported, "unchanged": summary.unchanged,
            "skipped_older": summary.skipped_older, "failed": summary.failed,
            "secret_writes": summary.secret_writes, "row_writes": summary.row_writes,
            "seconds": seconds, "rate": io.rate, "concurrency": io.concurrency,
        }));
    } else {
        println!(
            "{} imported, {} unchanged, {} skipped as older, {} failed ({} lines in {seconds:.1} s; {} secrets and {} registry rows written)",
            summary.imported,
            summary.unchanged,
            summary.skipped_older,
            summary.failed,
            summary.lines,
            summary.secret_writes,
            summary.row_writes
        );
    }
    if summary.failed > 0 {
        return Err(CliError::Incomplete(format!("{} of {} lines failed (see above)", summary.failed, summary.lines)));
    }
    Ok(())
}

pub fn export(o: &Options, args: &ExportArgs, json_out: bool) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    if stdout.is_terminal() && !args.force {
        return Err(Error::InvalidInput(
            "export writes every stored token with its secrets (access and refresh tokens, client secrets); \
             refusing to print them to a terminal. Redirect it to a private file (umask 077) or a pipe, or pass --force"
                .into(),
        )
        .into());
    }
    let backends = open(o)?;
    let mut out = BufWriter::new(stdout.lock());
    let summary = bulk::export(&backends, &mut out, usize::from(args.concurrency), |row, why| {
        if json_out {
            eprintln!(
                "{}",
                json!({ "workspace_id": row.workspace_id, "workspace_slug": row.workspace_slug,
                        "secret_id": row.secret_id, "outcome": "left_out", "detail": why })
            );
        } else {
            eprintln!(
                "linear-oauth: export: left out workspace {} ({}), secret {}: {why}",
                row.workspace_slug, row.workspace_id, row.secret_id
            );
        }
    })?;
    drop(out);
    // stdout is the export itself: the summary goes to stderr.
    if json_out {
        eprintln!("{}", json!({ "exported": summary.exported, "left_out": summary.problems }));
    } else {
        eprintln!("linear-oauth: exported {} workspaces ({} left out)", summary.exported, summary.problems);
    }
    if summary.problems > 0 {
        return Err(CliError::Incomplete(format!(
            "{} registry rows left out of the export (see above)",
            summary.problems
        )));
    }
    Ok(())
}
