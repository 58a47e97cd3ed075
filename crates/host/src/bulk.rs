//! Bulk import and export of stored tokens as JSON lines: the migration path
//! into a store and the fleet's backup out of one.
//!
//! A line is one stored token in either of two shapes:
//! - bare: the stored-token object itself (the eleven fields and any others);
//!   its secret is named `<secret_prefix><workspace_slug>`;
//! - wrapped: `{"secret_id": ID, "token": {...}}`, optionally with `status`,
//!   `status_reason` and `status_changed_at` for the registry row. `secret_id`
//!   may be left out (then the prefix naming applies). Export writes this
//!   shape, so an export imports back to the same secret ids and statuses.
//!
//! Import validates each line with core's one schema ([`StoredToken::parse`],
//! every bad field named) and writes, per line, the secret and the registry
//! row, each only when it differs: re-running an input writes nothing. A
//! stored token whose `updated_at` is newer than the line's (or the same
//! instant with other content: a revoke or a reauthorization mark, which do
//! not move `updated_at`) is kept. A line without `status` never changes the
//! status of an existing row (re-activating a revoked workspace is `setup`'s
//! job); a new row is `active`.
//!
//! Lines go in batches: their secrets are written by `concurrency` threads
//! (at most `rate` write requests per second, a token bucket), then their
//! rows in one `put_many` (the file store writes a batch's row files at once). A crash
//! between the two leaves secrets without rows; the re-run finds the secrets
//! identical and writes the rows. Reports name fields and ids, never values.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use linear_oauth_core::{
    check_id, parse_instant, secret_name, validate_slug, SchemaError, StoredToken, NOT_A_JSON_OBJECT, NOT_VALID_JSON,
};
use serde_json::{Map, Value};

use crate::store::{Backends, PutOutcome, RegistryRow};
use crate::Error;

/// Secrets Manager's documented quota for PutSecretValue and
/// UpdateSecretVersionStage together is 50 requests/s per region; the aws
/// store's default rate leaves room for everything else writing there.
pub const DEFAULT_AWS_WRITE_RATE: f64 = 20.0;
/// Threads writing secrets at once (and reading them, for export).
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Lines per batch: one registry write per batch. A batch grows with the
/// registry (a quarter of its rows, up to [`MAX_BATCH_LINES`]), so a store
/// whose `put_many` costs per batch (the file store's single-file registry
/// did) pays it a few times per import, not once per 512 lines.
const BATCH_LINES: usize = 512;
const MAX_BATCH_LINES: usize = 16_384;
/// The status a new row gets.
const ACTIVE: &str = "active";
/// A line longer than this is refused without parsing (a stored token is
/// under 1 KiB; Secrets Manager keeps at most 64 KiB).
const MAX_LINE_BYTES: usize = 256 * 1024;

/// How `import_lines` writes.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Names the secret of a line without `secret_id`.
    pub secret_prefix: String,
    /// Secrets written at once (at least 1).
    pub concurrency: usize,
    /// Secret write requests per second, as Secrets Manager counts them: a
    /// new secret costs one (CreateSecret), an update two (PutSecretValue +
    /// UpdateSecretVersionStage). `None`: unlimited.
    pub rate: Option<f64>,
}

impl ImportOptions {
    /// The prefix, [`DEFAULT_CONCURRENCY`], and the store's default rate:
    /// [`DEFAULT_AWS_WRITE_RATE`] on `aws`, unlimited elsewhere.
    pub fn for_store(store: &str, secret_prefix: &str) -> Self {
        Self {
            secret_prefix: secret_prefix.to_owned(),
            concurrency: DEFAULT_CONCURRENCY,
            rate: (store == "aws").then_some(DEFAULT_AWS_WRITE_RATE),
        }
    }
}

/// What import did with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineOutcome {
    /// The secret, the registry row, or both were written.
    Imported,
    /// Both were already as the line says: nothing written.
    Unchanged,
    /// The stored token is newer (or as new with other content): kept, nothing written.
    SkippedOlder,
    /// Not a stored token (see `bad_fields`), or the store failed.
    Failed,
}

impl LineOutcome {
    pub fn label(self) -> &'static str {
        match self {
            Self::Imported => "imported",
            Self::Unchanged => "unchanged",
            Self::SkippedOlder => "skipped_older",
            Self::Failed => "failed",
        }
    }
}

/// One line's result. Never holds a token value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineReport {
    /// 1-based line number in the input.
    pub line: usize,
    pub outcome: LineOutcome,
    /// The secret the line names, when it got that far.
    pub secret_id: Option<String>,
    pub workspace_id: Option<String>,
    /// Every bad field of a line that is not a stored token, by name
    /// (`<not valid JSON>` / `<not a JSON object>` for a line that is no object).
    pub bad_fields: Vec<String>,
    /// What was written, why it was skipped, or what failed, in words.
    pub detail: String,
}

/// Counts over a whole import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Non-blank lines read.
    pub lines: usize,
    pub imported: usize,
    pub unchanged: usize,
    pub skipped_older: usize,
    pub failed: usize,
    /// Secrets written and registry rows written.
    pub secret_writes: usize,
    pub row_writes: usize,
}

impl ImportSummary {
    fn count(&mut self, r: &LineReport) {
        match r.outcome {
            LineOutcome::Imported => self.imported += 1,
            LineOutcome::Unchanged => self.unchanged += 1,
            LineOutcome::SkippedOlder => self.skipped_older += 1,
            LineOutcome::Failed => self.failed += 1,
        }
    }
}

/// A token bucket: `rate` tokens per second, at most `burst` saved up. A
/// taker reserves its tokens at once (the balance may go negative) and
/// sleeps off the debt, so concurrent takers are served in order and the
/// long-run rate never exceeds `rate`; in any one second at most
/// `rate + burst` are taken.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// `rate` per second (must be positive); a burst of a quarter second's
    /// worth, and at least two (one update).
    pub fn new(rate: f64) -> Self {
        let burst = (rate / 4.0).max(2.0);
        Self { rate, burst, state: Mutex::new((burst, Instant::now())) }
    }

    /// Waits until `n` tokens are ours.
    pub fn take(&self, n: f64) {
        let wait = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let (balance, last) = *s;
            let refilled = (balance + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst);
            let left = refilled - n;
            *s = (left, now);
            if left >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-left / self.rate)
            }
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// The registry fields a line asks for beyond the token's ids.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Status {
    status: String,
    reason: Option<String>,
    changed_at: Option<String>,
}

/// A valid line, ready to write.
#[derive(Debug)]
struct Item {
    line: usize,
    secret_id: String,
    /// The token as the store keeps it (core's canonical JSON).
    value: String,
    /// `value` parsed, to compare with what is stored.
    parsed: Value,
    updated_at_ms: i64,
    workspace_id: String,
    workspace_slug: String,
    status: Option<Status>,
}

/// What writing one secret did.
#[derive(Debug)]
enum SecretStep {
    Written,
    Unchanged,
    Kept(String),
}

fn failed(line: usize, secret_id: Option<String>, workspace_id: Option<String>, detail: String) -> LineReport {
    LineReport { line, outcome: LineOutcome::Failed, secret_id, workspace_id, bad_fields: Vec::new(), detail }
}

/// Parses and checks one line. `Err` names every bad field.
fn parse_line(line: usize, bytes: &[u8], prefix: &str) -> Result<Item, LineReport> {
    let bad_line = |fields: Vec<(String, &str)>| {
        // Grouped by reason: "missing, empty or non-string: scope, client_id; ...".
        let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
        for (f, why) in &fields {
            match reasons.iter_mut().find(|(w, _)| w == why) {
                Some((_, names)) => names.push(f),
                None => reasons.push((why, vec![f])),
            }
        }
        let detail = reasons.iter().map(|(why, names)| format!("{why}: {}", names.join(", "))).collect::<Vec<_>>();
        let detail = detail.join("; ");
        LineReport {
            line,
            outcome: LineOutcome::Failed,
            secret_id: None,
            workspace_id: None,
            bad_fields: fields.into_iter().map(|(f, _)| f).collect(),
            detail: format!("not a stored token: {detail}"),
        }
    };
    if bytes.len() > MAX_LINE_BYTES {
        return Err(bad_line(vec![(NOT_VALID_JSON.into(), "line longer than 256 KiB")]));
    }
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return Err(bad_line(vec![(NOT_VALID_JSON.into(), "not one JSON value")]));
    };
    let Value::Object(mut obj) = value else {
        return Err(bad_line(vec![(NOT_A_JSON_OBJECT.into(), "a line is a JSON object")]));
    };
    let mut bad: Vec<(String, &str)> = Vec::new();
    let mut secret_id = None;
    let mut status = None;
    let token = if obj.contains_key("token") {
        let text = |obj: &mut Map<String, Value>, k: &str, bad: &mut Vec<(String, &str)>| match obj.remove(k) {
            None => None,
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s),
            Some(_) => {
                bad.push((k.to_owned(), "a non-empty string when present"));
                None
            }
        };
        secret_id = text(&mut obj, "secret_id", &mut bad);
        if let Some(id) = &secret_id {
            if check_id("secret id", id).is_err() {
                bad.push(("secret_id".into(), "printable, at most 200 bytes once escaped"));
            }
        }
        let st = text(&mut obj, "status", &mut bad);
        let reason = text(&mut obj, "status_reason", &mut bad);
        let changed_at = text(&mut obj, "status_changed_at", &mut bad);
        if let Some(at) = &changed_at {
            if parse_instant(at).is_none() {
                bad.push(("status_changed_at".into(), "not an ISO-8601 instant"));
            }
        }
        match st {
            Some(status_text) => status = Some(Status { status: status_text, reason, changed_at }),
            None if reason.is_some() || changed_at.is_some() => {
                bad.push(("status".into(), "needed beside status_reason or status_changed_at"));
            }
            None => {}
        }
        let token = obj.remove("token");
        for k in obj.keys() {
            bad.push((k.clone(), "unknown field beside token"));
        }
        match token {
            Some(Value::Object(t)) => t,
            _ => {
                bad.push(("token".into(), "must be a JSON object"));
                return Err(bad_line(bad));
            }
        }
    } else {
        obj
    };
    let schema = StoredToken::parse(&Value::Object(token.clone()).to_string());
    if let Err(e) = &schema {
        let why = |f: &str| match f {
            "grant_type" => "unknown grant type",
            _ => "missing, empty or non-string",
        };
        let fields = match e {
            SchemaError::Fields(f) => f.clone(),
            other => other.problems(),
        };
        bad.extend(fields.into_iter().map(|f| {
            let w = why(&f);
            (f, w)
        }));
    }
    let present = |f: &str| token.get(f).and_then(Value::as_str).filter(|s| !s.trim().is_empty());
    for f in ["expires_at", "installed_at", "updated_at"] {
        if present(f).is_some_and(|v| parse_instant(v).is_none()) {
            bad.push((f.to_owned(), "not an ISO-8601 instant"));
        }
    }
    if present("workspace_slug").is_some_and(|s| validate_slug(s).is_err()) {
        bad.push(("workspace_slug".into(), "must match [A-Za-z0-9_-]{4,50}"));
    }
    if present("workspace_id").is_some_and(|w| check_id("workspace id", w).is_err()) {
        bad.push(("workspace_id".into(), "printable, at most 200 bytes once escaped"));
    }
    let tok = match schema {
        Ok(t) if bad.is_empty() => t,
        _ => {
            let mut report = bad_line(bad);
            report.workspace_id = present("workspace_id").map(str::to_owned);
            return Err(report);
        }
    };
    let secret_id = match secret_id {
        Some(id) => id,
        None => secret_name(prefix, &tok.workspace_slug).expect("the slug was validated above"),
    };
    let value = tok.to_json();
    let parsed = serde_json::from_str(&value).expect("core writes JSON");
    Ok(Item {
        line,
        secret_id,
        value,
        parsed,
        updated_at_ms: parse_instant(&tok.updated_at).expect("checked above"),
        workspace_id: tok.workspace_id.clone(),
        workspace_slug: tok.workspace_slug.clone(),
        status,
    })
}

/// Writes one line's secret unless the store has it already or has a newer one.
fn write_secret(b: &Backends, item: &Item, bucket: Option<&TokenBucket>) -> Result<SecretStep, Error> {
    for _ in 0..3 {
        let expected =
            match b.secrets.get(&item.secret_id)? {
                None => None,
                Some(current) => {
                    if serde_json::from_str::<Value>(&current.value).ok().as_ref() == Some(&item.parsed) {
                        return Ok(SecretStep::Unchanged);
                    }
                    // An invalid stored value, or one without a readable
                    // `updated_at`, is replaced: the import repairs it.
                    let stored_at = StoredToken::parse(&current.value).ok().and_then(|t| parse_instant(&t.updated_at));
                    match stored_at {
                        Some(at) if at > item.updated_at_ms => {
                            return Ok(SecretStep::Kept("the stored token is newer (updated_at); kept it".into()))
                        }
                        Some(at) if at == item.updated_at_ms => return Ok(SecretStep::Kept(
                            "the stored token has the same updated_at and other content (e.g. a revoke mark); kept it"
                                .into(),
                        )),
                        _ => {}
                    }
                    Some(current.version)
                }
            };
        if let Some(bucket) = bucket {
            bucket.take(if expected.is_some() { 2.0 } else { 1.0 });
        }
        if let PutOutcome::Written(_) = b.secrets.put(&item.secret_id, &item.value, expected.as_deref())? {
            crate::test_hook::import_wrote_secret();
            return Ok(SecretStep::Written);
        }
        // Conflict: someone wrote in between (a refresh); decide again.
    }
    Err(Error::Store(format!("secret {} kept changing while being imported; run the import again", item.secret_id)))
}

/// `f` over `items` on up to `threads` threads; results in `items`' order.
/// (Also `doctor`'s bounded concurrent reads.)
pub fn parallel_map<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let out: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                *out[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            });
        }
    });
    out.into_iter().map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()).expect("every item ran")).collect()
}

/// The row a written or unchanged line wants.
fn wanted_row(item: &Item, existing: Option<&RegistryRow>) -> RegistryRow {
    let base = RegistryRow {
        workspace_id: item.workspace_id.clone(),
        workspace_slug: item.workspace_slug.clone(),
        secret_id: item.secret_id.clone(),
        status: ACTIVE.into(),
        ..Default::default()
    };
    match (&item.status, existing) {
        (Some(s), _) => RegistryRow {
            status: s.status.clone(),
            status_reason: s.reason.clone(),
            status_changed_at: s.changed_at.clone(),
            ..base
        },
        // No status on the line: an existing row keeps its own.
        (None, Some(e)) => RegistryRow {
            status: e.status.clone(),
            status_reason: e.status_reason.clone(),
            status_changed_at: e.status_changed_at.clone(),
            ..base
        },
        (None, None) => base,
    }
}

/// Reads JSON lines from `input` and imports each (see the module docs).
/// `report` gets every non-blank line's result, in input order, as each
/// batch completes. `Err` only when the input cannot be read or the registry
/// cannot be listed at the start; a line's failure is its report.
pub fn import_lines(
    b: &Backends,
    mut input: impl BufRead,
    o: &ImportOptions,
    mut report: impl FnMut(&LineReport),
) -> Result<ImportSummary, Error> {
    if let Some(rate) = o.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(Error::InvalidInput(format!("a write rate is a positive number per second, not {rate}")));
        }
    }
    let mut rows: HashMap<String, RegistryRow> =
        b.registry.list()?.into_iter().map(|r| (r.workspace_id.clone(), r)).collect();
    let bucket = o.rate.map(TokenBucket::new);
    let mut summary = ImportSummary::default();
    let mut line_no = 0;
    let mut buf = Vec::new();
    let mut eof = false;
    while !eof {
        let mut batch: Vec<Result<Item, LineReport>> = Vec::new();
        let batch_lines = (rows.len() / 4).clamp(BATCH_LINES, MAX_BATCH_LINES);
        while batch.len() < batch_lines {
            buf.clear();
            let n = input
                .read_until(b'\n', &mut buf)
                .map_err(|e| Error::InvalidInput(format!("reading the input after line {line_no}: {e}")))?;
            if n == 0 {
                eof = true;
                break;
            }
            line_no += 1;
            let text = buf.trim_ascii();
            if !text.is_empty() {
                batch.push(parse_line(line_no, text, &o.secret_prefix));
            }
        }
        summary.lines += batch.len();
        for r in import_batch(b, batch, &mut rows, o.concurrency, bucket.as_ref(), &mut summary) {
            summary.count(&r);
            report(&r);
        }
    }
    Ok(summary)
}

fn import_batch(
    b: &Backends,
    batch: Vec<Result<Item, LineReport>>,
    rows: &mut HashMap<String, RegistryRow>,
    concurrency: usize,
    bucket: Option<&TokenBucket>,
    summary: &mut ImportSummary,
) -> Vec<LineReport> {
    // Lines naming one secret go to one thread, in input order.
    let mut groups: Vec<Vec<&Item>> = Vec::new();
    let mut group_of: HashMap<&str, usize> = HashMap::new();
    for item in batch.iter().flatten() {
        let g = *group_of.entry(&item.secret_id).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(item);
    }
    let steps: HashMap<usize, Result<SecretStep, Error>> = parallel_map(&groups, concurrency, |g| {
        g.iter().map(|i| (i.line, write_secret(b, i, bucket))).collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect();
    summary.secret_writes += steps.values().filter(|s| matches!(s, Ok(SecretStep::Written))).count();

    // Rows, for lines whose secret is now the line's.
    let mut pending: Vec<RegistryRow> = Vec::new();
    let mut previous: HashMap<String, Option<RegistryRow>> = HashMap::new();
    let mut row_written: Vec<usize> = Vec::new();
    for item in batch.iter().flatten() {
        if !matches!(steps.get(&item.line), Some(Ok(SecretStep::Written | SecretStep::Unchanged))) {
            continue;
        }
        let existing = rows.get(&item.workspace_id);
        let wanted = wanted_row(item, existing);
        if existing != Some(&wanted) {
            previous.entry(item.workspace_id.clone()).or_insert_with(|| existing.cloned());
            rows.insert(item.workspace_id.clone(), wanted.clone());
            pending.push(wanted);
            row_written.push(item.line);
        }
    }
    let row_error = match b.registry.put_many(&pending) {
        Ok(()) => {
            summary.row_writes += pending.len();
            None
        }
        Err(e) => {
            // Unknown which were written: the next lines compare with what was there.
            for (ws, row) in previous {
                match row {
                    Some(r) => rows.insert(ws, r),
                    None => rows.remove(&ws),
                };
            }
            Some(e.to_string())
        }
    };

    let mut steps = steps;
    batch
        .into_iter()
        .map(|parsed| {
            let item = match parsed {
                Ok(item) => item,
                Err(report) => return report,
            };
            let (sid, ws) = (Some(item.secret_id.clone()), Some(item.workspace_id.clone()));
            let wrote_row = row_written.contains(&item.line);
            let step = steps.remove(&item.line).expect("every item ran");
            let (outcome, detail) = match step {
                Err(e) => return failed(item.line, sid, ws, format!("writing the secret: {e}")),
                Ok(SecretStep::Kept(why)) => (LineOutcome::SkippedOlder, why),
                Ok(_) if wrote_row && row_error.is_some() => {
                    let e = row_error.as_deref().unwrap_or_default();
                    return failed(item.line, sid, ws, format!("writing the registry row: {e}; run the import again"));
                }
                Ok(SecretStep::Written) if wrote_row => {
                    (LineOutcome::Imported, "secret and registry row written".into())
                }
                Ok(SecretStep::Written) => (LineOutcome::Imported, "secret written (registry row already so)".into()),
                Ok(SecretStep::Unchanged) if wrote_row => {
                    (LineOutcome::Imported, "registry row written (secret already identical)".into())
                }
                Ok(SecretStep::Unchanged) => (LineOutcome::Unchanged, String::new()),
            };
            LineReport { line: item.line, outcome, secret_id: sid, workspace_id: ws, bad_fields: Vec::new(), detail }
        })
        .collect()
}

/// Counts over an export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Rows written out.
    pub exported: usize,
    /// Rows left out: their secret is missing or not a JSON object, or could not be read.
    pub problems: usize,
}

/// Writes every registry row with its secret to `out`, one line each:
/// `{"secret_id", "status", ["status_reason", "status_changed_at",] "token"}`,
/// in the registry's order (by slug). A row whose secret is missing or
/// unreadable is left out and passed to `problem` with why. The output holds
/// every token's secrets.
pub fn export(
    b: &Backends,
    out: &mut dyn Write,
    concurrency: usize,
    mut problem: impl FnMut(&RegistryRow, &str),
) -> Result<ExportSummary, Error> {
    let rows = b.registry.list()?;
    let mut summary = ExportSummary::default();
    for chunk in rows.chunks(BATCH_LINES) {
        let read = parallel_map(chunk, concurrency, |row| b.secrets.get(&row.secret_id));
        for (row, secret) in chunk.iter().zip(read) {
            let token = match secret {
                Ok(Some(v)) => match serde_json::from_str::<Value>(&v.value) {
                    Ok(t @ Value::Object(_)) => t,
                    _ => {
                        summary.problems += 1;
                        problem(row, "its stored value is not a JSON object");
                        continue;
                    }
                },
                Ok(None) => {
                    summary.problems += 1;
                    problem(row, "its secret does not exist");
                    continue;
                }
                Err(e) => {
                    summary.problems += 1;
                    problem(row, &format!("reading its secret failed: {e}"));
                    continue;
                }
            };
            let mut line = Map::new();
            line.insert("secret_id".into(), row.secret_id.clone().into());
            line.insert("status".into(), row.status.clone().into());
            if let Some(r) = &row.status_reason {
                line.insert("status_reason".into(), r.clone().into());
            }
            if let Some(at) = &row.status_changed_at {
                line.insert("status_changed_at".into(), at.clone().into());
            }
            line.insert("token".into(), token);
            let mut text = Value::Object(line).to_string();
            text.push('\n');
            out.write_all(text.as_bytes()).map_err(|e| Error::Store(format!("writing the export: {e}")))?;
            summary.exported += 1;
        }
    }
    out.flush().map_err(|e| Error::Store(format!("writing the export: {e}")))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_keeps_its_rate() {
        let b = TokenBucket::new(200.0);
        let start = Instant::now();
        for _ in 0..60 {
            b.take(2.0);
        }
        // 120 tokens at 200/s, 50 of them saved up: at least 0.35 s.
        assert!(start.elapsed() >= Duration::from_millis(340), "{:?}", start.elapsed());
    }

    #[test]
    fn parallel_map_keeps_order() {
        let items: Vec<u32> = (0..100).collect();
        assert_eq!(parallel_map(&items, 7, |i| i * 2), items.iter().map(|i| i * 2).collect::<Vec<_>>());
    }
}
