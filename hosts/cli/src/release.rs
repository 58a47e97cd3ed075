//! Refresh-lease releases after the caller has its answer.
//!
//! A refresh ends by giving its lease back (on the aws store one DynamoDB
//! `UpdateItem`) and the caller gains nothing by waiting for it. Closing
//! stdout early would not help: a shell's `T=$(linear-oauth token ...)`, a
//! pipeline and `subprocess.run` all wait for the process to exit, not only
//! for EOF. So the command holds its releases (`DeferredRelease::held`) and,
//! once its output is out, hands them to a detached `linear-oauth
//! release-leases` that talks to the same store, and exits. If that process
//! cannot start, the releases are sent here, as before. If it dies, the
//! leases expire and the next refresher takes over as after a crash (reading
//! the secret again): nothing is lost but a wait.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};

use linear_oauth_host::store::{DeferredRelease, HeldRelease, Registry};
use linear_oauth_host::{Backends, Options, Resolver};

use crate::error::CliError;

/// The releases of this process's resolver, when its store is remote.
#[derive(Default)]
pub struct Releases {
    held: OnceLock<Held>,
}

struct Held {
    deferred: Arc<DeferredRelease>,
    /// The store itself, to send the releases here if no process takes them.
    direct: Arc<dyn Registry>,
    store: String,
    registry_table: Option<String>,
}

impl Releases {
    /// A resolver whose lease releases wait for [`hand_off`](Self::hand_off)
    /// on the aws store (on the file store a release is a local file
    /// operation, cheaper than starting a process).
    pub fn resolver(&self, options: Options) -> Result<Resolver, CliError> {
        let mut backends = Backends::open_with(&options.store, options.registry_table.as_deref())?;
        if options.store == "aws" {
            let deferred = Arc::new(DeferredRelease::held(backends.registry.clone()));
            let held = Held {
                deferred: deferred.clone(),
                direct: backends.registry.clone(),
                store: options.store.clone(),
                registry_table: options.registry_table.clone(),
            };
            backends.registry = deferred;
            let _ = self.held.set(held);
        }
        Ok(Resolver::with_backends(options, backends)?)
    }

    /// Call once the output is written: sends the held releases from a
    /// detached process (or from here when none starts).
    pub fn hand_off(&self) {
        let Some(held) = self.held.get() else { return };
        let leases = held.deferred.take_held();
        if leases.is_empty() {
            return;
        }
        let _ = std::io::stdout().flush();
        if let Err(e) = spawn(&held.store, held.registry_table.as_deref(), &leases) {
            tracing::debug!(target: "linear_oauth", error = %e, "no process to release leases in; releasing here");
            for l in leases {
                if let Err(e) = held.direct.finish_lease(&l.key, &l.holder, l.written_version.as_deref()) {
                    tracing::warn!(target: "linear_oauth", lease = l.key, error = %e, "releasing a refresh lease failed; it will expire");
                }
            }
        }
    }
}

/// Starts `linear-oauth release-leases` in its own process group (a Ctrl-C
/// meant for the caller does not stop it) and does not wait for it.
#[allow(clippy::zombie_processes)] // this process exits next; init reaps the child
fn spawn(store: &str, registry_table: Option<&str>, leases: &[HeldRelease]) -> std::io::Result<()> {
    command(&std::env::current_exe()?, store, registry_table, leases).spawn().map(drop)
}

/// The `release-leases` command line: the store's settings and the leases,
/// and none of the client secret (main takes it out of the environment
/// already; this keeps it out whatever happens to that).
fn command(exe: &std::path::Path, store: &str, registry_table: Option<&str>, leases: &[HeldRelease]) -> Command {
    let list: Vec<_> = leases.iter().map(|l| serde_json::json!([l.key, l.holder, l.written_version])).collect();
    let mut c = Command::new(exe);
    c.arg("release-leases").arg("--leases").arg(serde_json::Value::from(list).to_string()).arg("--store").arg(store);
    if let Some(t) = registry_table {
        c.arg("--registry-table").arg(t);
    }
    c.env_remove(crate::CLIENT_SECRET_ENV);
    // Its warnings may go where ours do, unless a reader waits for that
    // stream's EOF (a pipe: `2>&1` inside `$(...)`), which would wait for it.
    let stderr = if stderr_is_a_pipe() { Stdio::null() } else { Stdio::inherit() };
    c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr).process_group(0);
    c
}

fn stderr_is_a_pipe() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileTypeExt;
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else { return true };
    std::fs::File::from(fd).metadata().map_or(true, |m| m.file_type().is_fifo() || m.file_type().is_socket())
}

/// `release-leases`: sends each release, in order; a failure is logged (the
/// lease then expires) and the others are still sent.
pub fn send(options: &Options, leases: &str) -> Result<(), CliError> {
    let leases: Vec<(String, String, Option<String>)> =
        serde_json::from_str(leases).map_err(|e| linear_oauth_host::Error::InvalidInput(format!("--leases: {e}")))?;
    let registry = Backends::open_with(&options.store, options.registry_table.as_deref())?.registry;
    let mut failed = None;
    for (key, holder, version) in leases {
        if let Err(e) = registry.finish_lease(&key, &holder, version.as_deref()) {
            tracing::warn!(target: "linear_oauth", lease = key, error = %e, "releasing a refresh lease failed; it will expire");
            failed = Some(e);
        }
    }
    failed.map_or(Ok(()), |e| Err(e.into()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_release_process_does_not_inherit_the_client_secret() {
        let c = super::command(std::path::Path::new("linear-oauth"), "aws", Some("table"), &[]);
        let removed = c.get_envs().any(|(k, v)| k == crate::CLIENT_SECRET_ENV && v.is_none());
        assert!(removed, "{:?}", c.get_envs().collect::<Vec<_>>());
    }
}
