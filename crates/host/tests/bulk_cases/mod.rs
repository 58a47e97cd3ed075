//! Import and export cases every store runs (tests/bulk.rs on the file and
//! memory stores, tests/aws on moto): each takes a maker of fresh, empty
//! stores.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use linear_oauth_host::bulk::{self, ImportOptions, ImportSummary, LineOutcome, LineReport};
use linear_oauth_host::store::{LeaseGrant, Leases, Registry, SecretStore};
use linear_oauth_host::{Backends, Error, PutOutcome, RegistryRow, Versioned};
use serde_json::{json, Value};

pub const PREFIX: &str = "bgagent-linear-oauth-";

/// A stored token for workspace `n`, written at `updated_at`.
pub fn token(n: usize, updated_at: &str) -> Value {
    json!({
        "access_token": format!("at-{n}-{updated_at}"), "refresh_token": format!("rt-{n}-{updated_at}"),
        "expires_at": "2030-01-01T00:00:00.000Z", "scope": "read write", "client_id": "cid",
        "client_secret": "cs-secret", "workspace_id": format!("org-{n}"), "workspace_slug": format!("ws-{n:04}"),
        "installed_at": "2026-01-01T00:00:00.000Z", "updated_at": updated_at,
        "installed_by_platform_user_id": "u-1",
    })
}

pub const T1: &str = "2026-03-01T00:00:00.000Z";
pub const T2: &str = "2026-03-02T00:00:00.000Z";

pub fn lines(values: &[Value]) -> String {
    values.iter().map(|v| format!("{v}\n")).collect()
}

pub fn opts() -> ImportOptions {
    ImportOptions { secret_prefix: PREFIX.into(), concurrency: 4, rate: None }
}

pub fn import(b: &Backends, input: &str) -> (ImportSummary, Vec<LineReport>) {
    import_with(b, input, &opts())
}

pub fn import_with(b: &Backends, input: &str, o: &ImportOptions) -> (ImportSummary, Vec<LineReport>) {
    let mut reports = Vec::new();
    let s = bulk::import_lines(b, Cursor::new(input.as_bytes()), o, |r| reports.push(r.clone())).unwrap();
    (s, reports)
}

fn stored(b: &Backends, id: &str) -> Value {
    serde_json::from_str(&b.secrets.get(id).unwrap().expect("secret exists").value).unwrap()
}

fn versions(b: &Backends, ids: &[String]) -> Vec<String> {
    ids.iter().map(|id| b.secrets.get(id).unwrap().map(|v| v.version).unwrap_or_default()).collect()
}

/// Counts writes to the stores under it, and fails the writes of one secret on demand.
#[derive(Debug)]
pub struct Counting {
    pub inner: Backends,
    pub secret_puts: AtomicUsize,
    pub row_puts: AtomicUsize,
    pub fail_secret: Mutex<Option<String>>,
}

impl Counting {
    pub fn wrap(inner: &Backends) -> (Arc<Self>, Backends) {
        let c = Arc::new(Self {
            inner: inner.clone(),
            secret_puts: AtomicUsize::new(0),
            row_puts: AtomicUsize::new(0),
            fail_secret: Mutex::new(None),
        });
        (c.clone(), Backends { secrets: c.clone(), registry: c })
    }
    pub fn writes(&self) -> (usize, usize) {
        (self.secret_puts.load(Ordering::SeqCst), self.row_puts.load(Ordering::SeqCst))
    }
}

impl SecretStore for Counting {
    fn get(&self, id: &str) -> Result<Option<Versioned>, Error> {
        self.inner.secrets.get(id)
    }
    fn put(&self, id: &str, value: &str, expected: Option<&str>) -> Result<PutOutcome, Error> {
        if self.fail_secret.lock().unwrap().as_deref() == Some(id) {
            return Err(Error::Store("injected write failure".into()));
        }
        self.secret_puts.fetch_add(1, Ordering::SeqCst);
        self.inner.secrets.put(id, value, expected)
    }
    fn delete(&self, id: &str) -> Result<bool, Error> {
        self.inner.secrets.delete(id)
    }
}

impl Leases for Counting {
    fn try_lease(&self, key: &str, holder: &str, ttl: Duration, note: &str) -> Result<LeaseGrant, Error> {
        self.inner.registry.try_lease(key, holder, ttl, note)
    }
    fn release_lease(&self, key: &str, holder: &str) -> Result<(), Error> {
        self.inner.registry.release_lease(key, holder)
    }
}

impl Registry for Counting {
    fn get(&self, workspace_id: &str) -> Result<Option<RegistryRow>, Error> {
        self.inner.registry.get(workspace_id)
    }
    fn put(&self, row: &RegistryRow) -> Result<(), Error> {
        self.put_many(std::slice::from_ref(row))
    }
    fn list(&self) -> Result<Vec<RegistryRow>, Error> {
        self.inner.registry.list()
    }
    fn put_many(&self, rows: &[RegistryRow]) -> Result<(), Error> {
        self.row_puts.fetch_add(rows.len(), Ordering::SeqCst);
        self.inner.registry.put_many(rows)
    }
}

fn outcomes(reports: &[LineReport]) -> Vec<(usize, LineOutcome)> {
    reports.iter().map(|r| (r.line, r.outcome)).collect()
}

/// Bad lines are reported by number with every bad field, and the good ones around them are imported.
pub fn bad_lines(b: &Backends) {
    let mut missing = token(2, T1);
    missing.as_object_mut().unwrap().remove("scope");
    missing["client_id"] = json!("");
    missing["expires_at"] = json!(17);
    let mut bad_instant = token(3, T1);
    bad_instant["updated_at"] = json!("yesterday");
    bad_instant["workspace_slug"] = json!("a/b");
    let input = format!(
        "{}\n{}\n\nnot json\n[1]\n{}\n{}\n{}\n",
        token(1, T1),
        missing,
        bad_instant,
        json!({"secret_id": 5, "token": "x", "extra": 1}),
        token(4, T1)
    );
    let (s, reports) = import(b, &input);
    assert_eq!(
        outcomes(&reports),
        [
            (1, LineOutcome::Imported),
            (2, LineOutcome::Failed),
            (4, LineOutcome::Failed),
            (5, LineOutcome::Failed),
            (6, LineOutcome::Failed),
            (7, LineOutcome::Failed),
            (8, LineOutcome::Imported)
        ]
    );
    assert_eq!((s.lines, s.imported, s.failed), (7, 2, 5));
    assert_eq!(reports[1].bad_fields, ["expires_at", "scope", "client_id"]);
    assert_eq!(reports[1].workspace_id.as_deref(), Some("org-2"));
    assert_eq!(reports[2].bad_fields, ["<not valid JSON>"]);
    assert_eq!(reports[3].bad_fields, ["<not a JSON object>"]);
    assert_eq!(reports[4].bad_fields, ["updated_at", "workspace_slug"]);
    assert!(reports[4].detail.contains("not an ISO-8601 instant: updated_at"), "{}", reports[4].detail);
    assert_eq!(reports[5].bad_fields, ["secret_id", "extra", "token"]);
    for r in &reports {
        for secret in ["at-", "rt-", "cs-secret"] {
            assert!(!r.detail.contains(secret), "a report shows a value: {r:?}");
        }
    }
    let ids: Vec<_> = b.registry.list().unwrap().into_iter().map(|r| r.workspace_id).collect();
    assert_eq!(ids, ["org-1", "org-4"]);
}

/// A second run of the same input writes nothing: no secret version moves, no row is written.
pub fn rerun_writes_nothing(b: &Backends) {
    let values: Vec<Value> = (0..40).map(|n| token(n, T1)).collect();
    let input = lines(&values);
    let (s, _) = import(b, &input);
    assert_eq!((s.imported, s.secret_writes, s.row_writes), (40, 40, 40));
    let ids: Vec<String> = (0..40).map(|n| format!("{PREFIX}ws-{n:04}")).collect();
    let before = versions(b, &ids);
    let (counting, counted) = Counting::wrap(b);
    let (s, reports) = import(&counted, &input);
    assert_eq!((s.unchanged, s.imported, s.secret_writes, s.row_writes), (40, 0, 0, 0));
    assert!(reports.iter().all(|r| r.outcome == LineOutcome::Unchanged));
    assert_eq!(counting.writes(), (0, 0));
    assert_eq!(versions(b, &ids), before);
}

/// A stored token with a newer `updated_at`, or the same one with other
/// content (a revoke mark), is kept; an older one is replaced.
pub fn newer_is_kept(b: &Backends) {
    import(b, &lines(&[token(1, T2), token(2, T1), token(3, T1)]));
    let mut marked = token(3, T1);
    marked["revoked_at"] = json!(T2);
    b.secrets.put(&format!("{PREFIX}ws-0003"), &marked.to_string(), None).unwrap();
    let (s, reports) = import(b, &lines(&[token(1, T1), token(2, T2), token(3, T1)]));
    assert_eq!(
        outcomes(&reports),
        [(1, LineOutcome::SkippedOlder), (2, LineOutcome::Imported), (3, LineOutcome::SkippedOlder)]
    );
    assert_eq!((s.skipped_older, s.imported, s.failed), (2, 1, 0));
    assert!(reports[0].detail.contains("newer"), "{}", reports[0].detail);
    assert!(reports[2].detail.contains("same updated_at"), "{}", reports[2].detail);
    assert_eq!(stored(b, &format!("{PREFIX}ws-0001")), token(1, T2));
    assert_eq!(stored(b, &format!("{PREFIX}ws-0002")), token(2, T2));
    assert_eq!(stored(b, &format!("{PREFIX}ws-0003")), marked);
}

/// Both line shapes, extra fields kept, and an existing row's status kept
/// unless the line names one.
pub fn shapes_extras_and_status(b: &Backends) {
    let mut extra = token(1, T1);
    extra["webhook_signing_secret"] = json!("whsec");
    extra["future"] = json!({"nested": [1, 2]});
    let wrapped = json!({"secret_id": "custom/ws-2", "token": token(2, T1)});
    let wrapped_no_id = json!({"token": token(3, T1), "status": "revoked", "status_changed_at": T1});
    let (s, _) = import(b, &lines(&[extra.clone(), wrapped, wrapped_no_id]));
    assert_eq!(s.imported, 3);
    assert_eq!(stored(b, &format!("{PREFIX}ws-0001")), extra);
    assert_eq!(stored(b, "custom/ws-2"), token(2, T1));
    let row = |ws: &str| b.registry.get(ws).unwrap().expect("row");
    assert_eq!(row("org-2").secret_id, "custom/ws-2");
    assert_eq!(row("org-2").status, "active");
    assert_eq!(row("org-3").secret_id, format!("{PREFIX}ws-0003"));
    assert_eq!((row("org-3").status.as_str(), row("org-3").status_changed_at.as_deref()), ("revoked", Some(T1)));
    // A bare line does not re-activate the revoked row; a line with a status sets it.
    let (s, _) = import(b, &lines(&[token(3, T1)]));
    assert_eq!(s.unchanged, 1);
    assert_eq!(row("org-3").status, "revoked");
    let (s, _) = import(b, &lines(&[json!({"token": token(3, T1), "status": "active"})]));
    assert_eq!(s.imported, 1);
    assert_eq!((row("org-3").status.as_str(), row("org-3").status_changed_at.as_deref()), ("active", None));
}

/// Export, then import into a fresh store: the same secrets, values and rows.
pub fn round_trip(from: &Backends, to: &Backends) {
    let mut values: Vec<Value> = (0..25).map(|n| token(n, T1)).collect();
    values[3]["extra_field"] = json!(true);
    values.push(json!({"secret_id": "custom-id", "token": token(99, T1), "status": "reauthorization_required",
        "status_reason": "invalid_grant", "status_changed_at": T2}));
    import(from, &lines(&values));
    let mut out = Vec::new();
    let e = bulk::export(from, &mut out, 4, |row, why| panic!("{row:?}: {why}")).unwrap();
    assert_eq!((e.exported, e.problems), (26, 0));
    let text = String::from_utf8(out).unwrap();
    let (s, _) = import(to, &text);
    assert_eq!((s.imported, s.failed), (26, 0));
    assert_eq!(to.registry.list().unwrap(), from.registry.list().unwrap());
    for row in from.registry.list().unwrap() {
        assert_eq!(stored(to, &row.secret_id), stored(from, &row.secret_id), "{}", row.secret_id);
    }
    // Exporting the copy gives the same lines.
    let mut again = Vec::new();
    bulk::export(to, &mut again, 2, |row, why| panic!("{row:?}: {why}")).unwrap();
    assert_eq!(String::from_utf8(again).unwrap(), text);
}

/// A row whose secret is missing is left out of the export and reported.
pub fn export_reports_missing_secrets(b: &Backends) {
    import(b, &lines(&[token(1, T1), token(2, T1)]));
    b.secrets.delete(&format!("{PREFIX}ws-0001")).unwrap();
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let e = bulk::export(b, &mut out, 4, |row, why| problems.push((row.workspace_id.clone(), why.to_owned()))).unwrap();
    assert_eq!((e.exported, e.problems), (1, 1));
    assert_eq!(problems, [("org-1".to_owned(), "its secret does not exist".to_owned())]);
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), 1);
}

/// The store fails line K's write half-way through: every other line is
/// imported, K is reported; the re-run writes K alone and nothing twice.
pub fn store_failure_midway_then_rerun(b: &Backends) {
    let values: Vec<Value> = (0..30).map(|n| token(n, T1)).collect();
    let input = lines(&values);
    let (counting, counted) = Counting::wrap(b);
    *counting.fail_secret.lock().unwrap() = Some(format!("{PREFIX}ws-0017"));
    let (s, reports) = import(&counted, &input);
    assert_eq!((s.imported, s.failed), (29, 1));
    let bad = reports.iter().find(|r| r.outcome == LineOutcome::Failed).unwrap();
    assert_eq!(bad.line, 18);
    assert!(bad.detail.contains("injected write failure"), "{}", bad.detail);
    assert!(b.registry.get("org-17").unwrap().is_none(), "no row for a secret not written");
    *counting.fail_secret.lock().unwrap() = None;
    let before = counting.writes();
    let (s, _) = import(&counted, &input);
    assert_eq!((s.imported, s.unchanged, s.failed), (1, 29, 0));
    let after = counting.writes();
    assert_eq!((after.0 - before.0, after.1 - before.1), (1, 1), "the re-run wrote only line 18");
    let listed: BTreeMap<String, String> =
        b.registry.list().unwrap().into_iter().map(|r| (r.workspace_id, r.secret_id)).collect();
    assert_eq!(listed.len(), 30);
    for n in 0..30 {
        assert_eq!(stored(b, &format!("{PREFIX}ws-{n:04}")), token(n, T1));
    }
}

/// A crash between a batch's secrets and its rows (secrets written, no rows):
/// the re-run writes the rows and no secret.
pub fn secrets_without_rows_then_rerun(b: &Backends) {
    let values: Vec<Value> = (0..10).map(|n| token(n, T1)).collect();
    for v in &values {
        let slug = v["workspace_slug"].as_str().unwrap();
        b.secrets.put(&format!("{PREFIX}{slug}"), &v.to_string(), None).unwrap();
    }
    let (counting, counted) = Counting::wrap(b);
    let (s, reports) = import(&counted, &lines(&values));
    assert_eq!((s.imported, s.secret_writes, s.row_writes), (10, 0, 10));
    assert!(reports.iter().all(|r| r.detail.contains("registry row written (secret already identical)")));
    assert_eq!(counting.writes(), (0, 10));
}
