//! What the file store and the hint file share: replacing a file whole, and
//! hex for digests and random ids.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Replaces `path` with `bytes` through a temp file (0600) renamed over it,
/// so a reader sees the old or the new file, never half of one. `durable`
/// also fsyncs the file and the directory, so a crash leaves one or the
/// other too. The temp name keeps at most 64 bytes of the target's, so it
/// fits wherever the target's fits; pid, time and a counter keep it unique.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("value");
    let tmp = path.with_file_name(format!(
        ".{}.{}.{:x}.{}.tmp",
        &name[..name.len().min(64)],
        std::process::id(),
        crate::store::now_ms(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|f| commit(f, &tmp, path, bytes, durable));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes `bytes` into `f` (the file at `from`), cuts it to length and
/// renames it over `path`; `durable` fsyncs the file before and the
/// directory after.
pub(crate) fn commit(mut f: File, from: &Path, path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    f.write_all(bytes)?;
    f.set_len(bytes.len() as u64)?;
    if durable {
        f.sync_all()?;
    }
    fs::rename(from, path)?;
    if durable {
        File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()?;
    }
    Ok(())
}
