//! The embedded default: one JSON file per secret under a private directory.
//!
//! Layout: `secrets/<id>.json` (mode 0600), `registry.json`, `leases/<key>.json`,
//! `locks/`. Writes go to a temp file, are fsynced, renamed over the target and
//! the directory is fsynced, so a crash leaves the old or the new value, never
//! half of one. Read-compare-write sequences hold an OS file lock, which is
//! what makes versions and leases safe across processes.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{lease_decision, now_ms, LeaseGrant, PutOutcome, Registry, RegistryRow, SecretStore, Versioned};
use crate::Error;

/// Secret ids (names or ARNs) become file names: everything but `[A-Za-z0-9_-]` is escaped.
const FILE_NAME: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'-');

#[derive(Debug, Clone)]
pub struct FileBackend {
    root: PathBuf,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Store(format!("{what} {}: {e}", path.display()))
}

fn version_of(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Holds an exclusive OS lock until dropped.
struct Locked(File);

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl FileBackend {
    /// Creates the directory tree (0700) if needed.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let root = dir.as_ref().to_path_buf();
        for sub in ["", "secrets", "leases", "locks"] {
            let p = root.join(sub);
            fs::DirBuilder::new().recursive(true).mode(0o700).create(&p).map_err(|e| io_err("creating", &p, e))?;
        }
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).map_err(|e| io_err("securing", &root, e))?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn secret_path(&self, id: &str) -> PathBuf {
        self.root.join("secrets").join(format!("{}.json", utf8_percent_encode(id, FILE_NAME)))
    }

    fn lease_path(&self, key: &str) -> PathBuf {
        self.root.join("leases").join(format!("{}.json", utf8_percent_encode(key, FILE_NAME)))
    }

    fn lock(&self, name: &str) -> Result<Locked, Error> {
        let path = self.root.join("locks").join(format!("{}.lock", utf8_percent_encode(name, FILE_NAME)));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_err("opening lock", &path, e))?;
        file.lock().map_err(|e| io_err("locking", &path, e))?;
        Ok(Locked(file))
    }

    fn read(path: &Path) -> Result<Option<Vec<u8>>, Error> {
        match fs::read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("reading", path, e)),
        }
    }

    /// temp file (0600) + fsync + rename + fsync of the directory.
    fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
        let dir = path.parent().expect("store paths have a parent");
        let tmp = dir.join(format!(
            ".{}.{}.{:x}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("value"),
            std::process::id(),
            now_ms()
        ));
        let result = (|| {
            let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, path)?;
            File::open(dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(|e| io_err("writing", path, e))
    }

    fn registry_path(&self) -> PathBuf {
        self.root.join("registry.json")
    }

    /// Rows keyed by workspace id, in the old DynamoDB item's field names.
    fn read_registry(&self) -> Result<BTreeMap<String, Value>, Error> {
        let path = self.registry_path();
        match Self::read(&path)? {
            None => Ok(BTreeMap::new()),
            Some(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::Store(format!("registry file {} is not valid JSON: {e}", path.display()))),
        }
    }
}

fn row_from(workspace_id: &str, v: &Value) -> RegistryRow {
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    RegistryRow {
        workspace_id: workspace_id.to_owned(),
        workspace_slug: field("workspace_slug"),
        secret_id: field("oauth_secret_arn"),
        status: field("status"),
    }
}

impl SecretStore for FileBackend {
    fn get(&self, id: &str) -> Result<Option<Versioned>, Error> {
        let Some(bytes) = Self::read(&self.secret_path(id))? else { return Ok(None) };
        let version = version_of(&bytes);
        let value = String::from_utf8(bytes).map_err(|_| Error::Store(format!("secret {id} is not UTF-8")))?;
        Ok(Some(Versioned { value, version }))
    }

    fn put(&self, id: &str, value: &str, expected: Option<&str>) -> Result<PutOutcome, Error> {
        let path = self.secret_path(id);
        let _lock = self.lock(&format!("secret-{id}"))?;
        if let Some(expected) = expected {
            let current = Self::read(&path)?.map(|b| version_of(&b));
            if current.as_deref() != Some(expected) {
                return Ok(PutOutcome::Conflict);
            }
        }
        Self::write_atomic(&path, value.as_bytes())?;
        Ok(PutOutcome::Written(version_of(value.as_bytes())))
    }

    fn delete(&self, id: &str) -> Result<bool, Error> {
        let path = self.secret_path(id);
        let _lock = self.lock(&format!("secret-{id}"))?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("deleting", &path, e)),
        }
    }
}

impl Registry for FileBackend {
    fn get(&self, workspace_id: &str) -> Result<Option<RegistryRow>, Error> {
        Ok(self.read_registry()?.get(workspace_id).map(|v| row_from(workspace_id, v)))
    }

    fn put(&self, row: &RegistryRow) -> Result<(), Error> {
        let _lock = self.lock("registry")?;
        let mut rows = self.read_registry()?;
        let entry = rows.entry(row.workspace_id.clone()).or_insert_with(|| json!({}));
        if !entry.is_object() {
            *entry = json!({});
        }
        // Unknown attributes of an existing row survive the update.
        let obj = entry.as_object_mut().expect("made an object above");
        obj.insert("workspace_slug".into(), row.workspace_slug.clone().into());
        obj.insert("oauth_secret_arn".into(), row.secret_id.clone().into());
        obj.insert("status".into(), row.status.clone().into());
        let bytes = serde_json::to_vec_pretty(&rows).expect("JSON values serialize");
        Self::write_atomic(&self.registry_path(), &bytes)
    }

    fn list(&self) -> Result<Vec<RegistryRow>, Error> {
        let mut rows: Vec<_> = self.read_registry()?.iter().map(|(k, v)| row_from(k, v)).collect();
        rows.sort_by(|a, b| a.workspace_slug.cmp(&b.workspace_slug));
        Ok(rows)
    }

    fn try_lease(&self, key: &str, holder: &str, ttl: Duration, note: &str) -> Result<LeaseGrant, Error> {
        let path = self.lease_path(key);
        let _lock = self.lock(&format!("lease-{key}"))?;
        let current: Option<Value> = Self::read(&path)?.and_then(|b| serde_json::from_slice(&b).ok());
        let now = now_ms();
        let fields = current.as_ref().map(|v| {
            (
                v.get("holder").and_then(Value::as_str).unwrap_or_default(),
                v.get("expires_ms").and_then(Value::as_u64).unwrap_or(0),
                v.get("note").and_then(Value::as_str).unwrap_or_default(),
            )
        });
        let Some(grant) = lease_decision(fields, holder, now) else {
            return Ok(LeaseGrant { acquired: false, previous_note: None });
        };
        let expires_ms = now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        let lease = json!({ "holder": holder, "expires_ms": expires_ms, "note": note });
        Self::write_atomic(&path, lease.to_string().as_bytes())?;
        Ok(grant)
    }

    fn release_lease(&self, key: &str, holder: &str) -> Result<(), Error> {
        let path = self.lease_path(key);
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
    fn conditional_put_and_modes() {
        let dir = tmp();
        let b = FileBackend::open(&dir).unwrap();
        assert_eq!(SecretStore::get(&b, "arn:aws:x/y").unwrap(), None);
        let PutOutcome::Written(v1) = SecretStore::put(&b, "arn:aws:x/y", "one", None).unwrap() else { panic!() };
        assert_eq!(SecretStore::put(&b, "arn:aws:x/y", "two", Some("stale")).unwrap(), PutOutcome::Conflict);
        let PutOutcome::Written(v2) = SecretStore::put(&b, "arn:aws:x/y", "two", Some(&v1)).unwrap() else { panic!() };
        let got = SecretStore::get(&b, "arn:aws:x/y").unwrap().unwrap();
        assert_eq!((got.value.as_str(), got.version), ("two", v2));
        let meta = fs::metadata(b.secret_path("arn:aws:x/y")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert!(b.delete("arn:aws:x/y").unwrap());
        assert!(!b.delete("arn:aws:x/y").unwrap());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn registry_keeps_unknown_attributes() {
        let dir = tmp();
        let b = FileBackend::open(&dir).unwrap();
        fs::write(dir.join("registry.json"), r#"{"org":{"workspace_slug":"acme","oauth_secret_arn":"s","status":"active","team":"x"}}"#).unwrap();
        let mut row = Registry::get(&b, "org").unwrap().unwrap();
        row.status = "revoked".into();
        Registry::put(&b, &row).unwrap();
        let raw: Value = serde_json::from_slice(&fs::read(dir.join("registry.json")).unwrap()).unwrap();
        assert_eq!(raw["org"]["team"], "x");
        assert_eq!(raw["org"]["status"], "revoked");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn leases_expire_and_report_the_dead_holders_note() {
        let dir = tmp();
        let b = FileBackend::open(&dir).unwrap();
        assert!(b.try_lease("k", "a", Duration::from_millis(40), "note-a").unwrap().acquired);
        assert!(!b.try_lease("k", "b", Duration::from_secs(5), "").unwrap().acquired);
        std::thread::sleep(Duration::from_millis(60));
        let g = b.try_lease("k", "b", Duration::from_secs(5), "").unwrap();
        assert_eq!(g, LeaseGrant { acquired: true, previous_note: Some("note-a".into()) });
        b.release_lease("k", "a").unwrap(); // not a's any more: no effect
        assert!(!b.try_lease("k", "a", Duration::from_secs(5), "").unwrap().acquired);
        b.release_lease("k", "b").unwrap();
        assert!(b.try_lease("k", "a", Duration::from_secs(5), "").unwrap().acquired);
        fs::remove_dir_all(dir).unwrap();
    }
}
