//! `linear-oauth sweep` and `linear-oauth rotate-client-secret`: thin over
//! `linear_oauth_host::fleet` (the walk and the pace) and the component (the
//! protocol, one workspace per call).

use std::time::Duration;

use clap::Args;
use linear_oauth_host::fleet::{self, Failure, RotateOptions, SweepOptions};
use linear_oauth_host::{Resolver, RotateOutcome, SweepOutcome};
use serde_json::json;

use crate::error::CliError;
use crate::print_json;
use crate::setup::read_secret;

#[derive(Debug, Args)]
pub(crate) struct SweepArgs {
    /// Refresh every active workspace whose token expires within this window
    /// (`90s`, `30m`, `2h`, `1d`; a bare number is seconds).
    #[arg(long, default_value = "2h", value_parser = parse_window)]
    ahead: Duration,
    /// Refreshes per second at most (jittered), under Secrets Manager's
    /// shared 50/s write quota; 0: no limit.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Examine at most this many workspaces; a re-run does the rest.
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    /// The Linear app whose client secret was rotated; other apps' tokens are left alone.
    #[arg(long)]
    client_id: String,
    /// Read the new client secret from stdin (also the default when stdin is
    /// not a terminal); else a hidden prompt. Never argv.
    #[arg(long)]
    client_secret_stdin: bool,
    /// Count what would change; send and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Writes per second at most (jittered); 0: no limit.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Examine at most this many workspaces of the app; a re-run does the rest.
    #[arg(long)]
    limit: Option<usize>,
}

/// `90`, `90s`, `30m`, `2h`, `1d`.
fn parse_window(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (n, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = n.parse().map_err(|_| format!("not a duration: {s:?} (e.g. 2h, 30m, 90s)"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}: use s, m, h or d")),
    };
    if !secs.is_finite() || !(0.0..=30.0 * 86_400.0).contains(&secs) {
        return Err(format!("{s:?} is out of range (0 to 30 days)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn check_rate(rate: f64) -> Result<f64, CliError> {
    if !rate.is_finite() || rate < 0.0 {
        return Err(linear_oauth_host::Error::InvalidInput(format!("--rate must be 0 or more, not {rate}")).into());
    }
    Ok(rate)
}

fn failures_json(f: &[Failure]) -> serde_json::Value {
    json!(f
        .iter()
        .map(|f| json!({ "workspace_id": f.workspace_id, "error": f.code, "message": f.message }))
        .collect::<Vec<_>>())
}

fn print_failures(f: &[Failure]) {
    for f in f {
        println!("  failed {}: {} ({})", f.workspace_id, f.message, f.code);
    }
}

pub(crate) fn sweep(r: &Resolver, a: &SweepArgs, json_out: bool) -> Result<(), CliError> {
    let o = SweepOptions { ahead: a.ahead, rate: check_rate(a.rate)?, limit: a.limit };
    let verbose = !json_out && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let s = fleet::sweep(r, &o, |row, outcome| {
        if verbose {
            let what = match outcome {
                Ok(SweepOutcome::Refreshed { expires_at }) => format!("refreshed (expires {expires_at})"),
                Ok(o) => o.label().to_owned(),
                Err(e) => format!("failed: {}", e.code()),
            };
            eprintln!("{} ({}): {what}", row.workspace_slug, row.workspace_id);
        }
    })?;
    if json_out {
        print_json(&json!({
            "ahead_s": a.ahead.as_secs(),
            "refreshed": s.refreshed.len(),
            "fresh": s.fresh,
            "held_by_another": s.held_by_another.len(),
            "dead": s.dead.len(),
            "inactive": s.inactive,
            "failed": s.failed.len(),
            "not_reached": s.not_reached,
            "refreshed_workspaces": s.refreshed,
            "held_by_another_workspaces": s.held_by_another,
            "dead_workspaces": s.dead.iter().map(|(w, c)| json!({ "workspace_id": w, "error": c })).collect::<Vec<_>>(),
            "failures": failures_json(&s.failed),
            "metrics": r.metrics().to_json(),
        }));
    } else {
        println!(
            "sweep (tokens expiring within {}s): {} refreshed, {} fresh, {} held by another refresher, {} dead, \
             {} inactive, {} failed{}",
            a.ahead.as_secs(),
            s.refreshed.len(),
            s.fresh,
            s.held_by_another.len(),
            s.dead.len(),
            s.inactive,
            s.failed.len(),
            if s.not_reached > 0 {
                format!(", {} not reached (--limit; run again)", s.not_reached)
            } else {
                String::new()
            }
        );
        for (w, code) in &s.dead {
            println!("  dead {w}: Linear refused its credential ({code}); re-run `linear-oauth setup` for it");
        }
        print_failures(&s.failed);
    }
    if s.failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Incomplete(format!("{} workspace(s) failed; run `linear-oauth sweep` again", s.failed.len())))
    }
}

pub(crate) fn rotate(r: &Resolver, a: &RotateArgs, json_out: bool) -> Result<(), CliError> {
    let from_stdin = a.client_secret_stdin || !std::io::IsTerminal::is_terminal(&std::io::stdin());
    let secret = read_secret("the new client secret", from_stdin, "pipe it on stdin or run in a terminal")?;
    let o =
        RotateOptions { client_id: a.client_id.clone(), dry_run: a.dry_run, rate: check_rate(a.rate)?, limit: a.limit };
    let verbose = !json_out && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let s = fleet::rotate_client_secret(r, &secret.into(), &o, |row, outcome| {
        if verbose && !matches!(outcome, Ok(RotateOutcome::OtherClient(_))) {
            let what = match outcome {
                Ok(o) => o.label().to_owned(),
                Err(e) => format!("failed: {}", e.code()),
            };
            eprintln!("{} ({}): {what}", row.workspace_slug, row.workspace_id);
        }
    })?;
    if json_out {
        print_json(&json!({
            "client_id": a.client_id,
            "dry_run": a.dry_run,
            "verified_on": s.verified_on,
            "updated": s.updated,
            "already": s.already,
            "other_client": s.other_client,
            "failed": s.failed.len(),
            "not_reached": s.not_reached,
            "failures": failures_json(&s.failed),
            "metrics": r.metrics().to_json(),
        }));
    } else {
        if let Some(w) = &s.verified_on {
            println!("Linear accepted the new client secret (a token renewal of workspace {w})");
        }
        println!(
            "rotate-client-secret {}{}: {} {}, {} already had it, {} of other apps untouched, {} failed{}",
            a.client_id,
            if a.dry_run { " (dry run)" } else { "" },
            s.updated,
            if a.dry_run { "would be updated" } else { "updated" },
            s.already,
            s.other_client,
            s.failed.len(),
            if s.not_reached > 0 {
                format!(", {} not reached (--limit; run again)", s.not_reached)
            } else {
                String::new()
            }
        );
        print_failures(&s.failed);
    }
    if s.failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Incomplete(format!(
            "{} workspace(s) failed; run `linear-oauth rotate-client-secret` again (it skips the done ones)",
            s.failed.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_window;
    use std::time::Duration;

    #[test]
    fn windows() {
        assert_eq!(parse_window("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_window("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_window("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_window("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_window("2w").is_err() && parse_window("h").is_err() && parse_window("40d").is_err());
    }
}
