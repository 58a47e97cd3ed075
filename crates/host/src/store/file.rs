//! The embedded default: one JSON file per secret under a private directory.
//!
//! Layout: `secrets/<id>.json` (mode 0600), `registry/<workspace id>.json`
//! (one registry row per file), `leases/<key>.json`, `locks/`; ids and keys
//! are escaped with core's `escape_id`. Writes go to a temp file, are fsynced, renamed over the target and
//! the directory is fsynced, so a crash leaves the old or the new value, never
//! half of one. Read-compare-write sequences hold an OS file lock, which is
//! what makes versions and leases safe across processes. Waits for a lock are
//! bounded: a holder that stopped (SIGSTOP, a frozen Lambda) or hangs on a
//! network file system would otherwise block every caller forever.
//!
//! The store touches only what it owns. It creates its directory (0700) and
//! subdirectories on the first write, never on a read, and never changes the
//! mode of anything: a pre-existing directory that group or others can access
//! is refused, and so is a secret file they can read. The store writes every
//! secret 0600, so such a file was changed by someone else; rather than guess
//! whether exposing it was deliberate, the error names the file and the fix.
//! A stored value is at most [`MAX_SECRET_BYTES`], Secrets Manager's own limit,
//! so a huge file is a clear error instead of exhausting the component's memory.
//!
//! A registry row is one small JSON object, the old DynamoDB item (its
//! `workspace_id`, `workspace_slug`, `oauth_secret_arn`, `status`, optional
//! `status_reason` and `status_changed_at`, and any other attribute, kept
//! through updates): a row read is one open and a row write rewrites that
//! row's file alone, under that row's lock, whatever the number of rows.
//! `list` reads the directory.
//!
//! Stores written before this layout kept every row in one `registry.json`
//! (an object keyed by workspace id). Such a store keeps working: a read
//! prefers a row's own file and falls back to `registry.json` for a row
//! without one. The first row write migrates it: under the `registry` lock
//! it writes each row that has no file yet (under that row's lock, so a
//! concurrent write of the row is never overwritten), then renames
//! `registry.json` to `registry.json.migrated`. A crash half-way leaves some
//! rows in both places, which readers resolve as above, and the next write
//! finishes the job. A process of an older version still writing
//! `registry.json` after the migration would not be seen for rows that have
//! a file: upgrade every process that shares a store together.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{
    lease_decision, now_ms, LeaseGrant, Leases, PutOutcome, Registry, RegistryRow, SecretStore, Versioned, SCAN_PAGE,
};
use crate::{files, Error};

/// Largest stored value: Secrets Manager's limit for a `SecretString`. A
/// stored token is well under 1 KiB.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// Longest file name common file systems take.
const MAX_FILE_NAME: usize = 255;

#[derive(Debug, Clone)]
pub struct FileBackend {
    root: PathBuf,
    /// Set once the directory tree exists and was checked.
    ready: Arc<AtomicBool>,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Store(format!("{what} {}: {e}", path.display()))
}

fn version_of(bytes: &[u8]) -> String {
    files::hex(&Sha256::digest(bytes)[..16])
}

/// How long an operation waits for a lock another process holds. Holders
/// keep one for a read and an fsynced write, milliseconds; a lock held
/// longer belongs to a stopped process or a hung file system.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// `try_lease` waits less, then reports the lease as taken: a busy lease
/// lock means another process is taking or giving back that lease, and the
/// component's lease wait (its backoff, `lease_wait`, and its error when
/// that runs out) covers the rest.
const LEASE_LOCK_WAIT: Duration = Duration::from_millis(250);

/// Holds an exclusive OS lock until dropped.
struct Locked(File);

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// The file name for `key` (a secret id, name or ARN, or a lease or lock
/// key: core's escaping, everything but `[A-Za-z0-9_-]` percent-encoded), or
/// `InvalidInput` when it would be too long.
fn file_name(what: &str, key: &str, ext: &str) -> Result<String, Error> {
    let name = format!("{}{ext}", linear_oauth_core::escape_id(key));
    if name.len() > MAX_FILE_NAME {
        let shown: String = key.chars().take(40).collect();
        return Err(Error::InvalidInput(format!(
            "{what} {shown:?}... is too long for the file store ({} bytes as a file name, at most {MAX_FILE_NAME})",
            name.len()
        )));
    }
    Ok(name)
}

/// Refuses a directory that group or others can reach.
fn check_private_dir(path: &Path) -> Result<(), Error> {
    let meta = fs::metadata(path).map_err(|e| io_err("reading", path, e))?;
    if !meta.is_dir() {
        return Err(Error::Store(format!("store path {} exists and is not a directory", path.display())));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Error::Store(format!(
            "store directory {} is accessible by group or others (mode {mode:o}); refusing to keep tokens there. \
             Fix: chmod 700 {}, or use another store directory",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

/// Creates `path` 0700; `false` when it already existed.
fn create_private_dir(path: &Path) -> Result<bool, Error> {
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io_err("creating", path, e)),
    }
}

impl FileBackend {
    /// Checks an existing directory; a missing one is created on the first write.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let root = dir.as_ref().to_path_buf();
        match fs::metadata(&root) {
            Ok(_) => check_private_dir(&root)?,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("reading", &root, e)),
        }
        Ok(Self { root, ready: Arc::default() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates what the store owns before its first write: the directory
    /// (0700; missing parents get the usual modes) and its subdirectories.
    /// Nothing that already exists has its mode changed.
    fn ensure_dirs(&self) -> Result<(), Error> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Some(parent) = self.root.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| io_err("creating", parent, e))?;
        }
        if !create_private_dir(&self.root)? {
            check_private_dir(&self.root)?;
        }
        for sub in ["secrets", "registry", "leases", "locks"] {
            create_private_dir(&self.root.join(sub))?;
        }
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    fn secret_path(&self, id: &str) -> Result<PathBuf, Error> {
        Ok(self.root.join("secrets").join(file_name("secret id", id, ".json")?))
    }

    fn lease_path(&self, key: &str) -> Result<PathBuf, Error> {
        Ok(self.root.join("leases").join(file_name("lease key", key, ".json")?))
    }

    /// The lock `name`, waiting at most [`LOCK_WAIT`] for another holder.
    fn lock(&self, name: &str) -> Result<Locked, Error> {
        let (locked, path) = self.lock_within(name, LOCK_WAIT)?;
        locked.ok_or_else(|| {
            Error::Store(format!(
                "lock {} has been held by another process for over {} s (stopped, or on a hung file system?); try again",
                path.display(),
                LOCK_WAIT.as_secs_f64()
            ))
        })
    }

    /// Polls for the lock `name` with backoff; `None` once `wait` has passed.
    fn lock_within(&self, name: &str, wait: Duration) -> Result<(Option<Locked>, PathBuf), Error> {
        let path = self.root.join("locks").join(file_name("lock", name, ".lock")?);
        self.ensure_dirs()?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_err("opening lock", &path, e))?;
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok((Some(Locked(file)), path)),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => return Err(io_err("locking", &path, e)),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok((None, path));
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    fn read(path: &Path) -> Result<Option<Vec<u8>>, Error> {
        match fs::read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("reading", path, e)),
        }
    }

    /// A secret file, refused when others can read it or it is too large.
    fn read_secret(path: &Path) -> Result<Option<Vec<u8>>, Error> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("reading", path, e)),
        };
        let meta = file.metadata().map_err(|e| io_err("reading", path, e))?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(Error::Store(format!(
                "secret file {} is readable by group or others (mode {mode:o}); refusing to use it. \
                 Fix: chmod 600 {}, and rotate the token if others may have read it",
                path.display(),
                path.display()
            )));
        }
        let too_large = || {
            Error::Store(format!(
                "secret file {} is larger than {MAX_SECRET_BYTES} bytes; a stored token is far smaller",
                path.display()
            ))
        };
        if meta.len() > MAX_SECRET_BYTES as u64 {
            return Err(too_large());
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(MAX_SECRET_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(|e| io_err("reading", path, e))?;
        if bytes.len() > MAX_SECRET_BYTES {
            return Err(too_large());
        }
        Ok(Some(bytes))
    }

    /// temp file (0600) + fsync + rename + fsync of the directory.
    fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
        files::write_atomic(path, bytes, true).map_err(|e| io_err("writing", path, e))
    }

    /// The reserved file, overwritten in place (its blocks are allocated, so
    /// this needs no new space), then committed like a temp file.
    fn write_through(reserved: &Path, path: &Path, bytes: &[u8]) -> Result<(), Error> {
        OpenOptions::new()
            .write(true)
            .truncate(false)
            .open(reserved)
            .and_then(|f| files::commit(f, reserved, path, bytes, true))
            .map_err(|e| io_err("writing", path, e))
    }

    /// The single-file registry of stores written before the per-row layout.
    fn legacy_registry_path(&self) -> PathBuf {
        self.root.join("registry.json")
    }

    fn row_path(&self, workspace_id: &str) -> Result<PathBuf, Error> {
        Ok(self.root.join("registry").join(file_name("workspace id", workspace_id, ".json")?))
    }

    /// The rows of `registry.json`, keyed by workspace id; `None` when there
    /// is none (never was, or migrated).
    fn read_legacy_registry(&self) -> Result<Option<BTreeMap<String, Value>>, Error> {
        let path = self.legacy_registry_path();
        match Self::read(&path)? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::Store(format!("registry file {} is not valid JSON: {e}", path.display()))),
        }
    }

    /// `f(workspace id, stored row)` for each row file, in directory order.
    fn each_row_file(&self, f: &mut dyn FnMut(String, Value) -> Result<(), Error>) -> Result<(), Error> {
        let dir = self.root.join("registry");
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("reading", &dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_err("reading", &dir, e))?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")).filter(|n| !n.starts_with('.')) else {
                continue; // a temp file, or not the store's
            };
            let Some(id) = unescape_name(id) else { continue };
            if let Some(v) = Self::read_row_file(&entry.path())? {
                f(id, v)?;
            }
        }
        Ok(())
    }

    /// One row's file, parsed.
    fn read_row_file(path: &Path) -> Result<Option<Value>, Error> {
        match Self::read(path)? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::Store(format!("registry row file {} is not valid JSON: {e}", path.display()))),
        }
    }

    /// The stored object of a row: its own file, else its entry in a
    /// `registry.json` not migrated yet.
    fn stored_row(&self, workspace_id: &str) -> Result<Option<Value>, Error> {
        let path = self.row_path(workspace_id)?;
        if let Some(v) = Self::read_row_file(&path)? {
            return Ok(Some(v));
        }
        match self.read_legacy_registry()? {
            Some(mut rows) => Ok(rows.remove(workspace_id)),
            // Migrated between the two reads: the row's file was written first.
            None => Self::read_row_file(&path),
        }
    }

    /// Moves the rows of `registry.json` into their own files (see the
    /// module's documentation). Another process migrating already: nothing
    /// to do here, as writes and reads work during a migration.
    fn migrate_legacy_registry(&self) -> Result<(), Error> {
        let (Some(_lock), _) = self.lock_within("registry", Duration::ZERO)? else { return Ok(()) };
        let Some(rows) = self.read_legacy_registry()? else { return Ok(()) };
        let rows: Vec<(String, Value)> = rows.into_iter().collect();
        // Each row is an fsynced write; many at once share the file system's commits.
        in_parallel(&rows, |(workspace_id, value)| {
            let path = self.row_path(workspace_id)?;
            let _row_lock = self.lock(&format!("row-{workspace_id}"))?;
            if path.exists() {
                return Ok(()); // written since: newer than registry.json's
            }
            let mut value = value.clone();
            if let Some(obj) = value.as_object_mut() {
                obj.insert("workspace_id".into(), workspace_id.clone().into());
            }
            Self::write_atomic(&path, &serde_json::to_vec(&value).expect("JSON values serialize"))
        })?;
        let legacy = self.legacy_registry_path();
        let done = self.root.join("registry.json.migrated");
        fs::rename(&legacy, &done)
            .and_then(|()| File::open(&self.root)?.sync_all())
            .map_err(|e| io_err("renaming migrated registry", &legacy, e))
    }
}

/// Threads writing rows at once (a migration, a bulk import's batch).
const ROW_WRITERS: usize = 16;

/// Runs `f` on every item from up to [`ROW_WRITERS`] threads; the first error.
fn in_parallel<T: Sync>(items: &[T], f: impl Fn(&T) -> Result<(), Error> + Sync) -> Result<(), Error> {
    if items.len() <= 1 {
        return items.iter().try_for_each(&f);
    }
    let chunk = items.len().div_ceil(ROW_WRITERS);
    std::thread::scope(|scope| {
        let workers: Vec<_> = items.chunks(chunk).map(|part| scope.spawn(|| part.iter().try_for_each(&f))).collect();
        workers.into_iter().try_for_each(|w| w.join().expect("a row writer panicked"))
    })
}

/// The workspace id a row file is named for (the inverse of `escape_id`);
/// `None` for a name the store did not write.
fn unescape_name(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `secrets/.<hex sha256 of the file name>.reserve`: hidden, one per secret
/// (a prefix of the name would let two secrets share one, and a write of one
/// would rename its bytes onto the other), and short enough for any file system.
///
/// Reservations named the old way (`.<first 64 bytes of the name>.reserve`)
/// are not cleaned up: they exist only if a process died between reserving
/// and writing, are never read again, hold at most [`MAX_SECRET_BYTES`] of
/// zeros, and deleting one could pull it from under a process of the old
/// version still writing through it.
fn reservation_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.as_encoded_bytes()).unwrap_or(b"value");
    let hash = files::hex(&Sha256::digest(name));
    path.with_file_name(format!(".{hash}.reserve"))
}

fn row_from(workspace_id: &str, v: &Value) -> RegistryRow {
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    RegistryRow {
        workspace_id: workspace_id.to_owned(),
        workspace_slug: field("workspace_slug"),
        secret_id: field("oauth_secret_arn"),
        status: field("status"),
        status_reason: v.get("status_reason").and_then(Value::as_str).map(str::to_owned),
        status_changed_at: v.get("status_changed_at").and_then(Value::as_str).map(str::to_owned),
    }
}

impl SecretStore for FileBackend {
    fn get(&self, id: &str) -> Result<Option<Versioned>, Error> {
        let Some(bytes) = Self::read_secret(&self.secret_path(id)?)? else { return Ok(None) };
        let version = version_of(&bytes);
        let value = String::from_utf8(bytes).map_err(|_| Error::Store(format!("secret {id} is not UTF-8")))?;
        Ok(Some(Versioned { value, version }))
    }

    fn put(&self, id: &str, value: &str, expected: Option<&str>) -> Result<PutOutcome, Error> {
        let path = self.secret_path(id)?;
        if value.len() > MAX_SECRET_BYTES {
            return Err(Error::Store(format!(
                "secret {id} would be {} bytes; the store keeps at most {MAX_SECRET_BYTES}",
                value.len()
            )));
        }
        let _lock = self.lock(&format!("secret-{id}"))?;
        if let Some(expected) = expected {
            let current = Self::read_secret(&path)?.map(|b| version_of(&b));
            if current.as_deref() != Some(expected) {
                return Ok(PutOutcome::Conflict);
            }
        }
        let reserved = reservation_path(&path);
        if reserved.exists() {
            Self::write_through(&reserved, &path, value.as_bytes())?;
        } else {
            Self::write_atomic(&path, value.as_bytes())?;
        }
        Ok(PutOutcome::Written(version_of(value.as_bytes())))
    }

    /// Allocates `bytes` in a 0600 file next to the secret (written with
    /// zeros, so the blocks exist and a full disk shows now, not after the
    /// refresh token was spent). `put` then writes through it.
    fn reserve(&self, id: &str, bytes: u64) -> Result<(), Error> {
        let path = self.secret_path(id)?;
        let bytes = bytes.min(MAX_SECRET_BYTES as u64);
        self.ensure_dirs()?;
        let _lock = self.lock(&format!("secret-{id}"))?;
        let reserved = reservation_path(&path);
        let result = (|| {
            let mut f = OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(&reserved)?;
            let have = f.metadata()?.len();
            if have < bytes {
                f.seek(std::io::SeekFrom::Start(have))?;
                f.write_all(&vec![0u8; (bytes - have) as usize])?;
                f.sync_all()?;
            }
            Ok(())
        })();
        result.map_err(|e: std::io::Error| {
            let _ = fs::remove_file(&reserved);
            Error::Store(format!(
                "cannot reserve {bytes} bytes for the rotated token of {id} in {}: {e}; not refreshing, the stored token is untouched",
                self.root.display()
            ))
        })
    }

    fn delete(&self, id: &str) -> Result<bool, Error> {
        let path = self.secret_path(id)?;
        if !path.exists() {
            return Ok(false);
        }
        let _lock = self.lock(&format!("secret-{id}"))?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("deleting", &path, e)),
        }
    }
}

impl Registry for FileBackend {
    /// One open of the row's file (and, in a store not migrated yet, a read
    /// of `registry.json` for a row without one).
    fn get(&self, workspace_id: &str) -> Result<Option<RegistryRow>, Error> {
        Ok(self.stored_row(workspace_id)?.map(|v| row_from(workspace_id, &v)))
    }

    /// A locked read, update and rewrite of this row's file alone.
    fn put(&self, row: &RegistryRow) -> Result<(), Error> {
        let path = self.row_path(&row.workspace_id)?;
        self.ensure_dirs()?;
        if self.legacy_registry_path().exists() {
            self.migrate_legacy_registry()?;
        }
        let _lock = self.lock(&format!("row-{}", row.workspace_id))?;
        let mut stored = self.stored_row(&row.workspace_id)?.filter(Value::is_object).unwrap_or_else(|| json!({}));
        // Unknown attributes of an existing row survive the update.
        let obj = stored.as_object_mut().expect("an object");
        obj.insert("workspace_id".into(), row.workspace_id.clone().into());
        obj.insert("workspace_slug".into(), row.workspace_slug.clone().into());
        obj.insert("oauth_secret_arn".into(), row.secret_id.clone().into());
        obj.insert("status".into(), row.status.clone().into());
        for (k, v) in [("status_reason", &row.status_reason), ("status_changed_at", &row.status_changed_at)] {
            match v {
                Some(v) => obj.insert(k.into(), v.clone().into()),
                None => obj.remove(k),
            };
        }
        let bytes = serde_json::to_vec(&stored).expect("JSON values serialize");
        Self::write_atomic(&path, &bytes)
    }

    /// Each row as `put` would, several at once: each is its own file.
    fn put_many(&self, rows: &[RegistryRow]) -> Result<(), Error> {
        in_parallel(rows, |row| Registry::put(self, row))
    }

    /// `registry.json` first (not migrated yet), then the row files, which
    /// win: a migration between the two reads is seen by one or the other.
    fn list(&self) -> Result<Vec<RegistryRow>, Error> {
        let mut stored = self.read_legacy_registry()?.unwrap_or_default();
        self.each_row_file(&mut |id, v| {
            stored.insert(id, v);
            Ok(())
        })?;
        let mut rows: Vec<_> = stored.iter().map(|(k, v)| row_from(k, v)).collect();
        rows.sort_by(|a, b| a.workspace_slug.cmp(&b.workspace_slug));
        Ok(rows)
    }

    /// Row files a page at a time; a store not migrated yet (its rows still
    /// in `registry.json`, read whole anyway) is listed as one page.
    fn scan(&self, page: &mut dyn FnMut(Vec<RegistryRow>) -> Result<(), Error>) -> Result<(), Error> {
        if self.legacy_registry_path().exists() {
            return page(self.list()?);
        }
        let mut rows = Vec::with_capacity(SCAN_PAGE);
        self.each_row_file(&mut |id, v| {
            rows.push(row_from(&id, &v));
            if rows.len() < SCAN_PAGE {
                return Ok(());
            }
            rows.sort_by(|a, b| a.workspace_slug.cmp(&b.workspace_slug));
            page(std::mem::replace(&mut rows, Vec::with_capacity(SCAN_PAGE)))
        })?;
        rows.sort_by(|a, b| a.workspace_slug.cmp(&b.workspace_slug));
        if rows.is_empty() {
            Ok(())
        } else {
            page(rows)
        }
    }
}

impl Leases for FileBackend {
    fn try_lease(&self, key: &str, holder: &str, ttl: Duration, note: &str) -> Result<LeaseGrant, Error> {
        let path = self.lease_path(key)?;
        let (Some(_lock), _) = self.lock_within(&format!("lease-{key}"), LEASE_LOCK_WAIT)? else {
            return Ok(LeaseGrant { acquired: false, previous_note: None, written_version: None });
        };
        let current: Option<Value> = Self::read(&path)?.and_then(|b| serde_json::from_slice(&b).ok());
        let now = now_ms();
        let fields = current.as_ref().map(|v| {
            (
                v.get("holder").and_then(Value::as_str).unwrap_or_default(),
                v.get("expires_ms").and_then(Value::as_u64).unwrap_or(0),
                v.get("note").and_then(Value::as_str).unwrap_or_default(),
            )
        });
        let Some(grant) = lease_decision(fields, holder, now, ttl) else {
            return Ok(LeaseGrant { acquired: false, previous_note: None, written_version: None });
        };
        let expires_ms = now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        let lease = json!({ "holder": holder, "expires_ms": expires_ms, "note": note });
        Self::write_atomic(&path, lease.to_string().as_bytes())?;
        Ok(grant)
    }

    fn release_lease(&self, key: &str, holder: &str) -> Result<(), Error> {
        let path = self.lease_path(key)?;
        if !path.exists() {
            return Ok(());
        }
        let _lock = self.lock(&format!("lease-{key}"))?;
        let current: Option<Value> = Self::read(&path)?.and_then(|b| serde_json::from_slice(&b).ok());
        if current.as_ref().and_then(|v| v.get("holder")).and_then(Value::as_str) == Some(holder) {
            fs::remove_file(&path).map_err(|e| io_err("removing lease", &path, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("lo-file-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn a_reservation_holds_the_space_and_the_next_put_writes_through_it() {
        let dir = tmp();
        let b = FileBackend::open(dir.to_str().unwrap()).unwrap();
        let secrets: &dyn SecretStore = &b;
        secrets.put("s1", "old", None).unwrap();
        secrets.reserve("s1", 4096).unwrap();
        let reserved = reservation_path(&b.secret_path("s1").unwrap());
        let meta = fs::metadata(&reserved).unwrap();
        assert!(meta.len() >= 4096, "{}", meta.len());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // Reserving again reuses it; a refresh that never wrote leaves the secret alone.
        secrets.reserve("s1", 100).unwrap();
        assert_eq!(secrets.get("s1").unwrap().unwrap().value, "old");
        let v = secrets.get("s1").unwrap().unwrap().version;
        assert!(matches!(secrets.put("s1", "new", Some(&v)).unwrap(), PutOutcome::Written(_)));
        assert_eq!(secrets.get("s1").unwrap().unwrap().value, "new", "written through the reservation, cut to length");
        assert!(!reserved.exists(), "the reservation became the secret");
        assert_eq!(fs::metadata(b.secret_path("s1").unwrap()).unwrap().permissions().mode() & 0o777, 0o600);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Names alike in their first 64 escaped bytes used to share one
    /// reservation: a put of one renamed the other's reserved file onto itself.
    #[test]
    fn secrets_sharing_a_long_name_prefix_get_their_own_reservation() {
        let dir = tmp();
        let b = FileBackend::open(&dir).unwrap();
        let secrets: &dyn SecretStore = &b;
        let (a, c) = (format!("{}-a", "x".repeat(70)), format!("{}-c", "x".repeat(70)));
        secrets.put(&a, "a-old", None).unwrap();
        secrets.put(&c, "c-old", None).unwrap();
        let reserved_a = reservation_path(&b.secret_path(&a).unwrap());
        assert_ne!(reserved_a, reservation_path(&b.secret_path(&c).unwrap()));
        secrets.reserve(&a, 4096).unwrap();
        let v = secrets.get(&c).unwrap().unwrap().version;
        assert!(matches!(secrets.put(&c, "c-new", Some(&v)).unwrap(), PutOutcome::Written(_)));
        assert!(reserved_a.exists(), "another secret's write took this one's reservation");
        assert_eq!(secrets.get(&a).unwrap().unwrap().value, "a-old");
        let name = reserved_a.file_name().unwrap().to_str().unwrap();
        assert_eq!(name.len(), ".".len() + 64 + ".reserve".len(), "{name}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn conditional_put_and_modes() {
        let dir = tmp();
        let b = FileBackend::open(&dir).unwrap();
        assert_eq!(SecretStore::get(&b, "arn:aws:x/y").unwrap(), None);
        let PutOutcome::Written(v1) = SecretStore::put(&b, "arn:aws:x/y", "one", None).unwrap() else { panic!() };
        assert_eq!(SecretStore::put(&b, "arn:aws:x/y", "two", Some("stale")).unwrap(), PutOutcome::Conflict);
        let PutOutcome::Written(v2) = SecretStore::put(&b, "arn:aws:x/y", "two", Some(&v1)).unwrap() else { panic!() };
        let got = SecretStore::get(&b, "arn:aws:x/y").unwrap().unwrap();
        assert_eq!((got.value.as_str(), got.version), ("two", v2));
        let meta = fs::metadata(b.secret_path("arn:aws:x/y").unwrap()).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert!(b.delete("arn:aws:x/y").unwrap());
        assert!(!b.delete("arn:aws:x/y").unwrap());
        fs::remove_dir_all(dir).unwrap();
    }

    fn raw_row(dir: &Path, id: &str) -> Value {
        let path = dir.join("registry").join(format!("{}.json", linear_oauth_core::escape_id(id)));
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }

    fn row(id: &str, slug: &str, status: &str) -> RegistryRow {
        RegistryRow {
            workspace_id: id.into(),
            workspace_slug: slug.into(),
            secret_id: format!("secret-{slug}"),
            status: status.into(),
            ..RegistryRow::default()
        }
    }

    #[test]
    fn registry_keeps_unknown_attributes() {
        let dir = tmp();
        fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        let b = FileBackend::open(&dir).unwrap();
        fs::write(
            dir.join("registry.json"),
            r#"{"org":{"workspace_slug":"acme","oauth_secret_arn":"s","status":"active","team":"x"}}"#,
        )
        .unwrap();
        let mut row = Registry::get(&b, "org").unwrap().unwrap();
        row.status = "revoked".into();
        Registry::put(&b, &row).unwrap();
        let raw = raw_row(&dir, "org");
        assert_eq!(raw["team"], "x");
        assert_eq!(raw["status"], "revoked");
        // A dead credential's reason and time are kept; an active row clears them.
        row.status = "reauthorization_required".into();
        row.status_reason = Some("invalid_grant".into());
        row.status_changed_at = Some("2026-01-01T00:00:00.000Z".into());
        Registry::put(&b, &row).unwrap();
        assert_eq!(Registry::get(&b, "org").unwrap().unwrap(), row);
        Registry::put(
            &b,
            &RegistryRow { status: "active".into(), status_reason: None, status_changed_at: None, ..row },
        )
        .unwrap();
        assert_eq!(
            raw_row(&dir, "org"),
            json!({"workspace_id":"org","workspace_slug":"acme","oauth_secret_arn":"s","status":"active","team":"x"})
        );
        fs::remove_dir_all(dir).unwrap();
    }

    /// `registry.json` as the single-file layout wrote it (pretty, keyed by
    /// workspace id, other attributes kept).
    fn write_legacy_registry(dir: &Path, rows: &[(&str, &str, &str)]) -> BTreeMap<String, Value> {
        let map: BTreeMap<String, Value> = rows
            .iter()
            .map(|(id, slug, status)| {
                let v = json!({"workspace_slug": slug, "oauth_secret_arn": format!("secret-{slug}"), "status": status, "team": format!("t-{slug}")});
                (id.to_string(), v)
            })
            .collect();
        fs::DirBuilder::new().mode(0o700).recursive(true).create(dir).unwrap();
        fs::write(dir.join("registry.json"), serde_json::to_vec_pretty(&map).unwrap()).unwrap();
        map
    }

    #[test]
    fn a_single_file_registry_is_read_and_the_first_write_migrates_it_losing_nothing() {
        let dir = tmp();
        let legacy = write_legacy_registry(
            &dir,
            &[("org-a", "acme", "active"), ("org/b c", "beta", "revoked"), ("org-c", "corp", "active")],
        );
        let b = FileBackend::open(&dir).unwrap();
        let before = Registry::list(&b).unwrap();
        assert_eq!(before.iter().map(|r| r.workspace_slug.as_str()).collect::<Vec<_>>(), ["acme", "beta", "corp"]);
        assert_eq!(Registry::get(&b, "org/b c").unwrap().unwrap(), row("org/b c", "beta", "revoked"));
        assert!(!dir.join("registry").exists(), "a read migrated");

        Registry::put(&b, &row("org-new", "delta", "active")).unwrap();
        assert!(!dir.join("registry.json").exists());
        let kept: BTreeMap<String, Value> =
            serde_json::from_slice(&fs::read(dir.join("registry.json.migrated")).unwrap()).unwrap();
        assert_eq!(kept, legacy, "the old file is kept, renamed");
        for (id, v) in &legacy {
            let mut want = v.clone();
            want["workspace_id"] = id.as_str().into();
            assert_eq!(raw_row(&dir, id), want, "{id}: every attribute moved");
            assert_eq!(mode(&dir.join("registry").join(format!("{}.json", linear_oauth_core::escape_id(id)))), 0o600);
        }
        let mut after = before.clone();
        after.push(row("org-new", "delta", "active"));
        assert_eq!(Registry::list(&b).unwrap(), after);
        assert_eq!(mode(&dir.join("registry")), 0o700);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// `scan` hands over every row once, in pages of at most `SCAN_PAGE`,
    /// each sorted by slug; an unmigrated `registry.json` is one page.
    #[test]
    fn scan_pages_hold_every_row_once() {
        let dir = tmp();
        let b = FileBackend::open(&dir).unwrap();
        let n = SCAN_PAGE * 2 + 345;
        let rows: Vec<_> = (0..n).map(|i| row(&format!("org-{i}"), &format!("ws-{i:05}"), "active")).collect();
        Registry::put_many(&b, &rows).unwrap();
        let mut pages = Vec::new();
        b.scan(&mut |page| {
            pages.push(page);
            Ok(())
        })
        .unwrap();
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [SCAN_PAGE, SCAN_PAGE, 345]);
        for page in &pages {
            assert!(page.windows(2).all(|w| w[0].workspace_slug <= w[1].workspace_slug), "each page sorted");
        }
        let mut seen: Vec<_> = pages.into_iter().flatten().collect();
        seen.sort_by(|a, b| a.workspace_slug.cmp(&b.workspace_slug));
        assert_eq!(seen, rows);
        // A page's error stops the scan and is the scan's error.
        let mut calls = 0;
        let err = b.scan(&mut |_| {
            calls += 1;
            Err(Error::Store("stop".into()))
        });
        assert!(matches!(err, Err(Error::Store(m)) if m == "stop"));
        assert_eq!(calls, 1);
        fs::remove_dir_all(&dir).unwrap();

        let dir = tmp();
        write_legacy_registry(&dir, &[("org-a", "acme", "active"), ("org-b", "beta", "revoked")]);
        let b = FileBackend::open(&dir).unwrap();
        let mut pages = Vec::new();
        b.scan(&mut |page| {
            pages.push(page);
            Ok(())
        })
        .unwrap();
        assert_eq!(pages, [vec![row("org-a", "acme", "active"), row("org-b", "beta", "revoked")]]);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A migration that crashed after some rows: their files win over
    /// `registry.json`, the others come from it, and the next write finishes.
    #[test]
    fn a_half_done_migration_loses_nothing() {
        let dir = tmp();
        write_legacy_registry(&dir, &[("a", "acme", "active"), ("b", "beta", "active")]);
        let b = FileBackend::open(&dir).unwrap();
        fs::DirBuilder::new().mode(0o700).create(dir.join("registry")).unwrap();
        fs::write(
            dir.join("registry").join("a.json"),
            json!({"workspace_id":"a","workspace_slug":"acme","oauth_secret_arn":"secret-acme","status":"revoked"})
                .to_string(),
        )
        .unwrap();
        let want = vec![row("a", "acme", "revoked"), row("b", "beta", "active")];
        assert_eq!(Registry::list(&b).unwrap(), want);
        assert_eq!(Registry::get(&b, "a").unwrap().unwrap(), want[0]);
        assert_eq!(Registry::get(&b, "b").unwrap().unwrap(), want[1]);
        Registry::put(&b, &row("c", "corp", "active")).unwrap();
        assert!(!dir.join("registry.json").exists());
        assert_eq!(raw_row(&dir, "a")["status"], "revoked", "the newer row file was not overwritten");
        assert_eq!(raw_row(&dir, "b")["team"], "t-beta");
        assert_eq!(Registry::list(&b).unwrap().len(), 3);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_row_read_does_not_parse_other_rows() {
        let dir = tmp();
        let b = FileBackend::open(&dir).unwrap();
        Registry::put(&b, &row("good", "acme", "active")).unwrap();
        Registry::put(&b, &row("bad", "beta", "active")).unwrap();
        let bad = dir.join("registry").join("bad.json");
        fs::write(&bad, "{not json").unwrap();
        assert_eq!(Registry::get(&b, "good").unwrap().unwrap(), row("good", "acme", "active"));
        Registry::put(&b, &row("good", "acme", "revoked")).unwrap();
        assert_eq!(Registry::get(&b, "good").unwrap().unwrap().status, "revoked");
        for err in [Registry::get(&b, "bad").unwrap_err(), Registry::list(&b).unwrap_err()] {
            assert!(matches!(&err, Error::Store(m) if m.contains(&bad.display().to_string())), "{err:?}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Threads with their own store handles (their own lock files, as
    /// separate processes have) write different rows and the same row, while
    /// one of them migrates a single-file registry: nothing is lost.
    #[test]
    fn concurrent_writers_during_a_migration_lose_nothing() {
        let dir = tmp();
        let legacy: Vec<(String, String)> = (0..200).map(|i| (format!("old-{i:03}"), format!("o{i:03}"))).collect();
        let refs: Vec<(&str, &str, &str)> = legacy.iter().map(|(id, s)| (id.as_str(), s.as_str(), "active")).collect();
        write_legacy_registry(&dir, &refs);
        let threads = 4;
        std::thread::scope(|scope| {
            for t in 0..threads {
                let dir = &dir;
                scope.spawn(move || {
                    let b = FileBackend::open(dir).unwrap();
                    for i in 0..50 {
                        Registry::put(&b, &row(&format!("new-{t}-{i:02}"), &format!("n{t}{i:02}"), "active")).unwrap();
                        // Each thread revokes its own quarter of the old rows.
                        let n = t * 50 + i;
                        Registry::put(&b, &row(&format!("old-{n:03}"), &format!("o{n:03}"), "revoked")).unwrap();
                    }
                });
            }
        });
        assert!(!dir.join("registry.json").exists());
        let b = FileBackend::open(&dir).unwrap();
        let rows = Registry::list(&b).unwrap();
        assert_eq!(rows.len(), 200 + threads * 50);
        for r in &rows {
            assert_eq!(r.status, if r.workspace_id.starts_with("old-") { "revoked" } else { "active" }, "{r:?}");
        }
        for (id, _) in &legacy {
            assert!(raw_row(&dir, id)["team"].is_string(), "{id} lost its other attributes");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn row_file_names_round_trip() {
        for id in ["org", "refresh:a b.c/é", "%41", "a-b_c"] {
            assert_eq!(unescape_name(&linear_oauth_core::escape_id(id)).as_deref(), Some(id));
        }
        assert_eq!(unescape_name("bad%4"), None);
        assert_eq!(unescape_name("%FF"), None);
    }

    #[test]
    fn leases_expire_and_report_the_dead_holders_note() {
        let dir = tmp();
        let b = FileBackend::open(&dir).unwrap();
        assert!(b.try_lease("k", "a", Duration::from_millis(40), "note-a").unwrap().acquired);
        assert!(!b.try_lease("k", "b", Duration::from_secs(5), "").unwrap().acquired);
        std::thread::sleep(Duration::from_millis(60));
        let g = b.try_lease("k", "b", Duration::from_secs(5), "").unwrap();
        assert_eq!(g, LeaseGrant { acquired: true, previous_note: Some("note-a".into()), written_version: None });
        b.release_lease("k", "a").unwrap(); // not a's any more: no effect
        assert!(!b.try_lease("k", "a", Duration::from_secs(5), "").unwrap().acquired);
        b.release_lease("k", "b").unwrap();
        assert!(b.try_lease("k", "a", Duration::from_secs(5), "").unwrap().acquired);
        fs::remove_dir_all(dir).unwrap();
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn an_existing_directory_others_can_reach_is_refused_and_left_alone() {
        for m in [0o1777, 0o755, 0o750, 0o701] {
            let dir = tmp();
            fs::create_dir(&dir).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(m)).unwrap();
            let err = FileBackend::open(&dir).unwrap_err();
            let Error::Store(msg) = &err else { panic!("{err:?}") };
            assert!(msg.contains(&dir.display().to_string()) && msg.contains("chmod 700"), "{msg}");
            assert_eq!(mode(&dir), m, "mode untouched");
            assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "nothing created");
            fs::remove_dir_all(&dir).unwrap();
        }
        let dir = tmp();
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        let b = FileBackend::open(&dir).unwrap();
        SecretStore::put(&b, "s", "v", None).unwrap();
        assert_eq!(mode(&dir), 0o700);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlinked_store_directory_is_checked_not_changed() {
        let target = tmp();
        fs::create_dir(&target).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o777)).unwrap();
        let link = tmp();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(FileBackend::open(&link), Err(Error::Store(_))));
        assert_eq!(mode(&target), 0o777, "the symlink's target keeps its mode");
        fs::remove_file(&link).unwrap();
        fs::remove_dir_all(&target).unwrap();
    }

    #[test]
    fn reads_create_nothing_and_the_first_write_creates_a_private_tree() {
        let dir = tmp();
        let b = FileBackend::open(&dir).unwrap();
        assert_eq!(Registry::list(&b).unwrap(), vec![]);
        assert_eq!(Registry::get(&b, "org").unwrap(), None);
        assert_eq!(SecretStore::get(&b, "s").unwrap(), None);
        assert!(!b.delete("s").unwrap());
        b.release_lease("refresh:s", "me").unwrap();
        assert!(!dir.exists(), "a read created {}", dir.display());

        SecretStore::put(&b, "s", "v", None).unwrap();
        for sub in ["", "secrets", "registry", "leases", "locks"] {
            assert_eq!(mode(&dir.join(sub)) & 0o077, 0, "{sub}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_secret_file_others_can_read_is_refused() {
        let dir = tmp();
        let b = FileBackend::open(&dir).unwrap();
        SecretStore::put(&b, "s", "v", None).unwrap();
        let path = b.secret_path("s").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = SecretStore::get(&b, "s").unwrap_err();
        let Error::Store(msg) = &err else { panic!("{err:?}") };
        assert!(msg.contains(&path.display().to_string()) && msg.contains("chmod 600"), "{msg}");
        assert_eq!(mode(&path), 0o644, "not re-permissioned");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(SecretStore::get(&b, "s").unwrap().unwrap().value, "v");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn values_beyond_the_bound_are_refused_on_write_and_read() {
        let dir = tmp();
        let b = FileBackend::open(&dir).unwrap();
        let at_limit = "x".repeat(MAX_SECRET_BYTES);
        SecretStore::put(&b, "ok", &at_limit, None).unwrap();
        assert_eq!(SecretStore::get(&b, "ok").unwrap().unwrap().value.len(), MAX_SECRET_BYTES);
        let err = SecretStore::put(&b, "big", &format!("{at_limit}x"), None).unwrap_err();
        assert!(matches!(&err, Error::Store(m) if m.contains("65536")), "{err:?}");
        assert_eq!(SecretStore::get(&b, "big").unwrap(), None, "nothing written");

        // A 100 MB file (sparse, so the test stays cheap) is refused unread.
        let path = b.secret_path("huge").unwrap();
        let f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).unwrap();
        f.set_len(100 << 20).unwrap();
        let err = SecretStore::get(&b, "huge").unwrap_err();
        assert!(matches!(&err, Error::Store(m) if m.contains("larger than 65536")), "{err:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ids_too_long_for_a_file_name_are_invalid_input() {
        let dir = tmp();
        let b = FileBackend::open(&dir).unwrap();
        for id in ["a".repeat(251), ":".repeat(84)] {
            assert!(matches!(SecretStore::get(&b, &id), Err(Error::InvalidInput(_))), "{id}");
            assert!(matches!(SecretStore::put(&b, &id, "v", None), Err(Error::InvalidInput(_))), "{id}");
            assert!(matches!(b.try_lease(&id, "me", Duration::from_secs(1), ""), Err(Error::InvalidInput(_))), "{id}");
        }
        SecretStore::put(&b, &"a".repeat(243), "v", None).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A lock held by a process that stopped (here: another open file, which
    /// `flock` treats like another process) delays operations boundedly:
    /// `try_lease` finds the lease taken, writes fail with a store error.
    #[test]
    fn a_lock_held_elsewhere_is_waited_for_boundedly() {
        let dir = tmp();
        let b = FileBackend::open(&dir).unwrap();
        SecretStore::put(&b, "s", "v", None).unwrap();
        let held = [b.lock("lease-k").unwrap(), b.lock("secret-s").unwrap()];
        let (tx, rx) = std::sync::mpsc::channel();
        let b2 = b.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let lease = b2.try_lease("k", "me", Duration::from_secs(5), "");
            let put = SecretStore::put(&b2, "s", "w", None);
            let _ = tx.send((lease, put, started.elapsed()));
        });
        let (lease, put, took) =
            rx.recv_timeout(Duration::from_secs(15)).expect("the store waits without bound for a lock held elsewhere");
        assert!(!lease.unwrap().acquired, "a busy lease lock is a taken lease");
        let err = put.unwrap_err();
        assert!(matches!(&err, Error::Store(m) if m.contains("held by another process")), "{err:?}");
        assert!(took >= LEASE_LOCK_WAIT + LOCK_WAIT, "{took:?}");
        assert_eq!(SecretStore::get(&b, "s").unwrap().unwrap().value, "v", "nothing written");
        drop(held);
        assert!(b.try_lease("k", "me", Duration::from_secs(5), "").unwrap().acquired);
        assert!(matches!(SecretStore::put(&b, "s", "w", None).unwrap(), PutOutcome::Written(_)));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lease_expiring_beyond_its_ttl_is_taken_over() {
        let dir = tmp();
        let b = FileBackend::open(&dir).unwrap();
        assert!(b.try_lease("k", "a", Duration::from_secs(25), "").unwrap().acquired);
        for expires in [u64::MAX, now_ms() + 365 * 86_400_000] {
            let lease = json!({ "holder": "ghost", "expires_ms": expires, "note": "n" });
            fs::write(b.lease_path("k").unwrap(), lease.to_string()).unwrap();
            let g = b.try_lease("k", "b", Duration::from_secs(25), "").unwrap();
            assert_eq!(g, LeaseGrant { acquired: true, previous_note: Some("n".into()), written_version: None });
        }
        assert!(!b.try_lease("k", "c", Duration::from_secs(25), "").unwrap().acquired, "b's lease is live");
        fs::remove_dir_all(&dir).unwrap();
    }
}
