//! Hints: small non-secret values the component asks the host to keep across
//! calls and, where the host can, across processes (WIT `coordination.recall`
//! / `remember`). Today that is the registry row a workspace was last read
//! with, so a refresh can check it in the request that takes the lease
//! instead of reading it first. The host never interprets a hint; the
//! component checks every hint before an answer rests on it, so a stale,
//! lost or corrupt hint costs requests, never correctness.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// Where hints live. Neither method fails: an unkept hint is only a lost
/// shortcut.
pub trait HintStore: Send + Sync + fmt::Debug {
    fn recall(&self, key: &str) -> Option<String>;
    /// `Some` keeps `value` under `key`, `None` forgets it.
    fn remember(&self, key: &str, value: Option<&str>);
}

/// Hints for the life of the process: a long-lived host's default. At most
/// `max` of them: past it the oldest go (a lost hint costs a request).
#[derive(Debug)]
pub struct MemoryHints {
    kept: Mutex<Kept>,
    max: usize,
}

/// Each hint with the order it was kept in, and how many were kept so far.
/// (Boxed strings: no spare capacity, and 16 bytes less per entry than
/// `String`s, for a hint per workspace of a fleet.)
#[derive(Debug, Default)]
struct Kept {
    map: HashMap<Box<str>, (Box<str>, u64)>,
    count: u64,
}

impl MemoryHints {
    pub fn new(max: usize) -> Self {
        Self { kept: Mutex::default(), max: max.max(1) }
    }

    pub fn len(&self) -> usize {
        self.kept.lock().unwrap().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryHints {
    /// As many as the default `cache_max_entries`.
    fn default() -> Self {
        Self::new(crate::Options::default().cache_max_entries)
    }
}

impl HintStore for MemoryHints {
    fn recall(&self, key: &str) -> Option<String> {
        self.kept.lock().unwrap().map.get(key).map(|(v, _)| v.to_string())
    }
    fn remember(&self, key: &str, value: Option<&str>) {
        let kept = &mut *self.kept.lock().unwrap();
        match value {
            Some(v) => {
                kept.count += 1;
                kept.map.insert(key.into(), (v.into(), kept.count));
                if kept.map.len() > self.max {
                    crate::bound::trim(&mut kept.map, self.max - self.max / 8, |_, (_, order)| Some(*order));
                }
            }
            None => {
                kept.map.remove(key);
            }
        }
    }
}

/// Hints in one small JSON file per store identity, for a host whose process
/// ends with each call (the CLI). The file is `0600` in a directory created
/// `0700`, replaced whole by a rename (a reader sees the old or the new file,
/// never half of one). What this process remembered is also kept in memory
/// and recalled from there (the component recalls a row on every call that
/// needs it, and marks the rows it read: see its `cached_row`); what it did
/// not is read from the file on each `recall`. Two processes writing at once
/// may lose one's update: a lost hint. A missing, unreadable, oversized or
/// corrupt file is no hints.
#[derive(Debug, Clone)]
pub struct FileHints {
    path: PathBuf,
    identity: String,
    /// This process's own hints (`None`: forgotten), shared by clones.
    own: std::sync::Arc<Mutex<HashMap<String, Option<String>>>>,
}

/// A hint file above this is not read (a row is ~150 bytes).
const MAX_FILE_BYTES: u64 = 256 << 10;
/// New keys beyond this are not kept (updates and removals still are).
const MAX_HINTS: usize = 1000;

impl FileHints {
    /// Hints for the store named by `identity` (e.g. the store and its
    /// registry table) in `dir`, which is created `0700` when first written.
    pub fn new(dir: impl Into<PathBuf>, identity: &str) -> Self {
        let name = crate::files::hex(&Sha256::digest(identity.as_bytes())[..8]);
        Self {
            path: dir.into().join(format!("hints-{name}.json")),
            identity: identity.to_owned(),
            own: std::sync::Arc::default(),
        }
    }

    /// The file the hints are kept in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> BTreeMap<String, String> {
        let read = || -> Option<BTreeMap<String, String>> {
            let f = std::fs::File::open(&self.path).ok()?;
            if f.metadata().ok()?.len() > MAX_FILE_BYTES {
                return None;
            }
            let v: serde_json::Value = serde_json::from_reader(std::io::BufReader::new(f)).ok()?;
            // The same digest for another store is a collision: not ours.
            if v.get("identity")?.as_str()? != self.identity {
                return None;
            }
            v.get("hints")?.as_object()?.iter().map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect()
        };
        read().unwrap_or_default()
    }

    fn store(&self, hints: &BTreeMap<String, String>) -> std::io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        let body = serde_json::json!({ "identity": self.identity, "hints": hints }).to_string();
        // A hint is only a shortcut: not worth an fsync.
        crate::files::write_atomic(&self.path, body.as_bytes(), false)
    }
}

impl HintStore for FileHints {
    fn recall(&self, key: &str) -> Option<String> {
        if let Some(own) = self.own.lock().unwrap().get(key) {
            return own.clone();
        }
        self.load().remove(key)
    }

    fn remember(&self, key: &str, value: Option<&str>) {
        self.own.lock().unwrap().insert(key.to_owned(), value.map(str::to_owned));
        let mut hints = self.load();
        let changed = match value {
            Some(v) if hints.get(key).map(String::as_str) == Some(v) => false,
            Some(_) if !hints.contains_key(key) && hints.len() >= MAX_HINTS => false,
            Some(v) => {
                hints.insert(key.to_owned(), v.to_owned());
                true
            }
            None => hints.remove(key).is_some(),
        };
        if changed {
            if let Err(e) = self.store(&hints) {
                tracing::debug!(target: "linear_oauth", path = %self.path.display(), error = %e, "could not keep a hint");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lo-hints-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn file_hints_outlive_the_object_and_stay_private() {
        let dir = temp_dir("keep").join("linear-oauth");
        let a = FileHints::new(&dir, "aws\ntable-a");
        assert_eq!(a.recall("k"), None, "no file yet: no hint");
        a.remember("k", Some("v1"));
        // Another "process": a new object on the same file.
        let again = FileHints::new(&dir, "aws\ntable-a");
        assert_eq!(again.recall("k").as_deref(), Some("v1"));
        assert_eq!(FileHints::new(&dir, "aws\ntable-b").recall("k"), None, "another store has its own file");
        again.remember("k", Some("v2"));
        again.remember("other", Some("x"));
        assert_eq!(a.recall("k").as_deref(), Some("v1"), "a process recalls what it remembered itself");
        assert_eq!(FileHints::new(&dir, "aws\ntable-a").recall("k").as_deref(), Some("v2"), "the file has the last");
        a.remember("k", None);
        assert_eq!(a.recall("k"), None);
        let later = FileHints::new(&dir, "aws\ntable-a");
        assert_eq!(later.recall("k"), None);
        assert_eq!(later.recall("other").as_deref(), Some("x"));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(a.path()), 0o600);
        assert_eq!(mode(&dir), 0o700);
        let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(Result::ok).collect();
        assert_eq!(leftovers.len(), 1, "only the hint file: no temp files left");
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_bad_file_is_no_hints_and_never_an_error() {
        let dir = temp_dir("bad");
        let h = FileHints::new(&dir, "aws\nt");
        std::fs::create_dir_all(&dir).unwrap();
        for bad in [
            "not json".to_owned(),
            r#"{"identity":"aws\nt","hints":{"k":7}}"#.to_owned(),
            r#"{"identity":"someone else","hints":{"k":"v"}}"#.to_owned(),
            r#"{"hints":{"k":"v"}}"#.to_owned(),
            format!(r#"{{"identity":"aws\nt","hints":{{"k":"{}"}}}}"#, "x".repeat(300 << 10)),
        ] {
            std::fs::write(h.path(), &bad).unwrap();
            assert_eq!(h.recall("k"), None, "{}", &bad[..bad.len().min(60)]);
        }
        // A corrupt file is replaced by the next remember.
        h.remember("k", Some("v"));
        assert_eq!(h.recall("k").as_deref(), Some("v"));
        // Unreadable (a directory where the file should be), unwritable: no hint, no panic.
        std::fs::remove_file(h.path()).unwrap();
        std::fs::create_dir(h.path()).unwrap();
        let other = FileHints::new(&dir, "aws\nt");
        assert_eq!(other.recall("k"), None);
        other.remember("k", Some("v2"));
        assert_eq!(FileHints::new(&dir, "aws\nt").recall("k"), None, "not kept in the file");
        assert_eq!(other.recall("k").as_deref(), Some("v2"), "only by the process that remembered it");
        std::fs::remove_dir_all(&dir).unwrap();
        // A directory that cannot be created: nothing kept, nothing raised.
        let nowhere = FileHints::new("/proc/self/no-such-dir/linear-oauth", "aws\nt");
        nowhere.remember("k", Some("v"));
        assert_eq!(FileHints::new("/proc/self/no-such-dir/linear-oauth", "aws\nt").recall("k"), None);
    }

    #[test]
    fn memory_hints_keep_and_forget() {
        let m = MemoryHints::default();
        m.remember("k", Some("v"));
        assert_eq!(m.recall("k").as_deref(), Some("v"));
        m.remember("k", None);
        assert_eq!(m.recall("k"), None);
    }

    #[test]
    fn memory_hints_keep_the_newest_up_to_their_bound() {
        let m = MemoryHints::new(80);
        for i in 0..1000 {
            m.remember(&format!("known:{i}"), Some("row"));
            assert!(m.len() <= 80);
        }
        assert_eq!(m.recall("known:999").as_deref(), Some("row"));
        assert_eq!(m.recall("known:0"), None);
    }
}
