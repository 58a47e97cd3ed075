//! One host call's state, handed down every stage of the resolver by `&mut`:
//! what a function reads or changes shows in its signature.

use linear_oauth_core::ClientSecret;

use crate::exports::linear::oauth::resolver::Settings;
use crate::io::Io;
use crate::linear::oauth::log::Level;
use crate::linear::oauth::metrics::Event;
use crate::linear::oauth::registry::Row;
use crate::settings::ms_i64;

/// Where a `resolve` from a remembered registry row stands.
#[derive(Debug, Clone)]
pub(crate) enum RowCheck {
    /// Read as active by an earlier call; not checked in this one yet.
    Unverified(Row),
    /// Checked in this call: read, or confirmed by the lease take.
    Verified,
    /// Read in this call, active, and naming another secret: resolve that one.
    Moved(Row),
}

/// The context of one host call.
pub(crate) struct Call<'a> {
    pub io: &'a dyn Io,
    /// `init`'s settings, or a variant of them for this call (refresh-ahead).
    pub s: Settings,
    /// When the host's call began: retries stay inside its deadline.
    pub started_ms: i64,
    /// Renew even a fresh token (an operator's refresh, a 401 report, revoke's probe).
    pub force: bool,
    /// The registry row a `resolve` works from, and whether this call has
    /// checked it yet (set in `resolve`, read and confirmed by the lease).
    pub row_check: Option<RowCheck>,
    /// The version the current refresh's write-back stored, for the lease
    /// release to hand on.
    pub written: Option<String>,
    /// This call's lease was taken over from a holder that died (or froze)
    /// mid-refresh: that holder may hold the rotated pair, so an
    /// `invalid_grant` now does not prove the grant dead and is not recorded.
    pub took_over: bool,
    /// Renew with this client secret instead of the stored one, and store
    /// it with the renewed token (`set-client-secret`'s verification). A
    /// refusal is then about this secret: nothing is recorded against the
    /// stored credential.
    pub client_secret: Option<ClientSecret>,
    /// Do not wait for another holder's lease (the sweeper): give up at once
    /// and set `lease_busy`.
    pub no_wait: bool,
    /// With `no_wait`: the refresh did not start because another refresher
    /// held the lease (or this process's lock).
    pub lease_busy: bool,
    /// This call's own request renewed the token and its write-back returned.
    pub renewed_here: bool,
    /// The OAuth error code this call recorded (or found) the credential dead with.
    pub dead_code: Option<&'static str>,
}

impl<'a> Call<'a> {
    /// A host call that starts now.
    pub fn start(io: &'a dyn Io, s: Settings) -> Self {
        let started_ms = io.now_ms();
        Self {
            io,
            s,
            started_ms,
            force: false,
            row_check: None,
            written: None,
            took_over: false,
            client_secret: None,
            no_wait: false,
            lease_busy: false,
            renewed_here: false,
            dead_code: None,
        }
    }

    pub fn now(&self) -> i64 {
        self.io.now_ms()
    }

    pub fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]) {
        self.io.log(level, message, fields);
    }

    /// Counts `e` for the host's metrics.
    pub fn count(&self, e: Event, workspace_id: &str) {
        self.io.count(e, workspace_id);
    }

    /// When the host's current call ends (its deadline traps what runs past it).
    pub fn call_end(&self) -> i64 {
        self.started_ms.saturating_add(ms_i64(self.s.call_deadline_ms))
    }
}
