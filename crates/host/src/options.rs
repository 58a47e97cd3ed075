//! How a `Resolver` is configured. Every host exposes these same options.

use std::sync::Arc;
use std::time::Duration;

use crate::{Error, LogSink};

/// Resolver options; `Default` is production Linear with the file store.
#[derive(Debug, Clone)]
pub struct Options {
    /// `file:DIR`, `memory:` or `aws`.
    pub store: String,
    /// DynamoDB registry table of the `aws` store.
    pub registry_table: Option<String>,
    /// Token, revoke and GraphQL endpoints hang off this (https, or http on loopback).
    pub api_base: String,
    pub authorize_url: String,
    /// Refresh when `now + threshold >= expires_at`.
    pub refresh_threshold: Duration,
    /// How long registry rows and tokens are served from memory.
    pub cache_ttl: Duration,
    /// Secret names are `<prefix><slug>`.
    pub secret_prefix: String,
    /// Connect timeout and per-phase response timeout of each HTTP request.
    pub http_timeout: Duration,
    /// Lifetime of a cross-process refresh lease whose holder died.
    pub lease_ttl: Duration,
    /// How long a caller waits for another process's refresh.
    pub lease_wait: Duration,
    /// Hard limit on one call into the component.
    pub call_deadline: Duration,
    /// Linear memory cap of one component instance.
    pub max_memory_bytes: usize,
    /// Where log events go; `None` means `tracing`.
    pub log_sink: Option<Arc<dyn LogSink>>,
    /// Whether the process outlives the call (services: yes). A refreshed
    /// token the store refuses is then kept in memory and written later; a
    /// short-lived process (the CLI) instead retries the write longer and
    /// fails with `Error::Store`, so it never reports success over a rotated
    /// refresh token that only its memory holds.
    pub long_lived: bool,
    /// How long a transient refresh failure (429, 5xx, transport) is shared
    /// by the callers that follow, instead of each sending a request; zero
    /// turns it off.
    pub failure_memory: Duration,
    /// How long before the refresh threshold a long-lived resolver starts one
    /// background refresh, so no caller waits for Linear; zero turns it off.
    /// A short-lived host refreshes inline instead, this much earlier.
    pub refresh_ahead: Duration,
}

pub const DEFAULT_API_BASE: &str = "https://api.linear.app";
pub const DEFAULT_AUTHORIZE_URL: &str = "https://linear.app/oauth/authorize";

impl Default for Options {
    fn default() -> Self {
        Self {
            store: default_store(),
            registry_table: None,
            api_base: DEFAULT_API_BASE.into(),
            authorize_url: DEFAULT_AUTHORIZE_URL.into(),
            refresh_threshold: Duration::from_secs(60),
            cache_ttl: Duration::from_secs(60),
            secret_prefix: "bgagent-linear-oauth-".into(),
            // Per phase (connect, first byte, between bytes): at most ~15 s a request.
            http_timeout: Duration::from_secs(5),
            // Outlives one refresh plus write-back, so it only expires when its holder died...
            lease_ttl: Duration::from_secs(25),
            // ...and waiters outlast it, so they can take over from a dead holder.
            lease_wait: Duration::from_secs(30),
            call_deadline: Duration::from_secs(60),
            max_memory_bytes: 64 << 20,
            log_sink: None,
            long_lived: true,
            failure_memory: Duration::from_secs(1),
            refresh_ahead: Duration::from_secs(600),
        }
    }
}

/// `file:` + `$XDG_DATA_HOME/linear-oauth` (or `~/.local/share/linear-oauth`).
pub fn default_store() -> String {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    format!("file:{}", base.join("linear-oauth").display())
}

impl Options {
    /// Reads `LINEAR_OAUTH_STORE`, `LINEAR_OAUTH_REGISTRY_TABLE`, `LINEAR_OAUTH_API_BASE`,
    /// `LINEAR_OAUTH_AUTHORIZE_URL`, and the seconds-valued `LINEAR_OAUTH_REFRESH_THRESHOLD_S`,
    /// `LINEAR_OAUTH_CACHE_TTL_S`, `LINEAR_OAUTH_HTTP_TIMEOUT_S`, `LINEAR_OAUTH_LEASE_TTL_S`,
    /// `LINEAR_OAUTH_LEASE_WAIT_S`, `LINEAR_OAUTH_FAILURE_MEMORY_S`, `LINEAR_OAUTH_REFRESH_AHEAD_S` over the defaults. Seconds go through
    /// [`DurationOption::from_secs`], so a bad value is `InvalidInput`, never a panic.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// `from_env` over any lookup (tests must not mutate the process environment).
    fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let mut o = Self::default();
        let var = |k: &str| lookup(k).filter(|v| !v.is_empty());
        if let Some(v) = var("LINEAR_OAUTH_STORE") {
            o.store = v;
        }
        if let Some(v) = var("LINEAR_OAUTH_REGISTRY_TABLE") {
            o.registry_table = Some(v);
        }
        if let Some(v) = var("LINEAR_OAUTH_API_BASE") {
            o.api_base = v;
        }
        if let Some(v) = var("LINEAR_OAUTH_AUTHORIZE_URL") {
            o.authorize_url = v;
        }
        for opt in DurationOption::ALL {
            let Some(k) = opt.env_var() else { continue };
            let Some(v) = var(k) else { continue };
            // A non-number gets the same message as an out-of-range one.
            let secs = v.trim().parse::<f64>().unwrap_or(f64::NAN);
            let d = opt
                .from_secs(k, secs)
                .map_err(|_| Error::InvalidInput(format!("{k} {}, got {v:?}", opt.range_text())))?;
            *opt.field_mut(&mut o) = d;
        }
        Ok(o)
    }

    /// Seconds for the option named `name` (its environment variable, such as
    /// `LINEAR_OAUTH_HTTP_TIMEOUT_S`, or its field name, such as `http_timeout`),
    /// checked against that option's range. For hosts whose callers spell the
    /// option differently, [`DurationOption::from_secs`] takes the spelling.
    pub fn duration_from_secs(name: &str, secs: f64) -> Result<Duration, Error> {
        let opt = DurationOption::ALL
            .into_iter()
            .find(|o| o.env_var() == Some(name) || o.field() == name)
            .ok_or_else(|| Error::InvalidInput(format!("{name} is not a duration option")))?;
        opt.from_secs(name, secs)
    }

    /// The checks every host applies, for callers that build `Options` by hand;
    /// `Resolver::new` and `Resolver::with_backends` call it.
    pub fn validate(&self) -> Result<(), Error> {
        for opt in DurationOption::ALL {
            opt.check(opt.field(), *opt.field_ref(self))?;
        }
        if self.max_memory_bytes < MIN_MEMORY_BYTES {
            return Err(Error::InvalidInput(format!(
                "max_memory_bytes must be at least {MIN_MEMORY_BYTES} (the component needs a few MiB), got {}",
                self.max_memory_bytes
            )));
        }
        Ok(())
    }
}

/// Below this the component cannot even be instantiated.
const MIN_MEMORY_BYTES: usize = 4 << 20;

const DAY: Duration = Duration::from_secs(86_400);
const MONTH: Duration = Duration::from_secs(30 * 86_400);

/// A seconds-valued setting and its range. Every host converts user input
/// through [`DurationOption::from_secs`], so env, CLI flags, Python and Node
/// accept and refuse the same values with the same message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationOption {
    /// Zero means "refresh only once expired". `0..=30 days`.
    RefreshThreshold,
    /// Zero turns the caches off. `0..=30 days`.
    CacheTtl,
    /// `(0, 1 day]`: zero would fail every request.
    HttpTimeout,
    /// `(0, 1 day]`: zero would make every lease expired on arrival.
    LeaseTtl,
    /// `(0, 1 day]`: zero would turn every concurrent refresh into an error.
    LeaseWait,
    /// `(0, 1 day]`: zero would trap every call.
    CallDeadline,
    /// Zero turns the memory off. `0..=30 days`.
    FailureMemory,
    /// Zero turns refresh-ahead off. `0..=30 days`.
    RefreshAhead,
}

impl DurationOption {
    pub const ALL: [Self; 8] = [
        Self::RefreshThreshold,
        Self::CacheTtl,
        Self::HttpTimeout,
        Self::LeaseTtl,
        Self::LeaseWait,
        Self::CallDeadline,
        Self::FailureMemory,
        Self::RefreshAhead,
    ];

    /// The `Options` field it sets.
    pub fn field(self) -> &'static str {
        match self {
            Self::RefreshThreshold => "refresh_threshold",
            Self::CacheTtl => "cache_ttl",
            Self::HttpTimeout => "http_timeout",
            Self::LeaseTtl => "lease_ttl",
            Self::LeaseWait => "lease_wait",
            Self::CallDeadline => "call_deadline",
            Self::FailureMemory => "failure_memory",
            Self::RefreshAhead => "refresh_ahead",
        }
    }

    /// The environment variable `Options::from_env` reads it from, if any.
    pub fn env_var(self) -> Option<&'static str> {
        match self {
            Self::RefreshThreshold => Some("LINEAR_OAUTH_REFRESH_THRESHOLD_S"),
            Self::CacheTtl => Some("LINEAR_OAUTH_CACHE_TTL_S"),
            Self::HttpTimeout => Some("LINEAR_OAUTH_HTTP_TIMEOUT_S"),
            Self::LeaseTtl => Some("LINEAR_OAUTH_LEASE_TTL_S"),
            Self::LeaseWait => Some("LINEAR_OAUTH_LEASE_WAIT_S"),
            Self::CallDeadline => None,
            Self::FailureMemory => Some("LINEAR_OAUTH_FAILURE_MEMORY_S"),
            Self::RefreshAhead => Some("LINEAR_OAUTH_REFRESH_AHEAD_S"),
        }
    }

    /// Whether zero is a meaningful value.
    pub fn allows_zero(self) -> bool {
        matches!(self, Self::RefreshThreshold | Self::CacheTtl | Self::FailureMemory | Self::RefreshAhead)
    }

    /// The largest value accepted.
    pub fn max(self) -> Duration {
        if self.allows_zero() {
            MONTH
        } else {
            DAY
        }
    }

    fn range_text(self) -> String {
        range_text(self.allows_zero(), self.max())
    }

    /// `secs` as a `Duration` if it is in range; `label` is how the caller
    /// spelled the option (`http_timeout_s`, `httpTimeoutSeconds`, ...).
    pub fn from_secs(self, label: &str, secs: f64) -> Result<Duration, Error> {
        checked_seconds(label, secs, self.allows_zero(), self.max())
    }

    /// The same check for a `Duration` already built.
    pub fn check(self, label: &str, d: Duration) -> Result<(), Error> {
        if (d.is_zero() && !self.allows_zero()) || d > self.max() {
            return Err(Error::InvalidInput(format!("{label} {}, got {} s", self.range_text(), d.as_secs_f64())));
        }
        Ok(())
    }

    fn field_ref(self, o: &Options) -> &Duration {
        match self {
            Self::RefreshThreshold => &o.refresh_threshold,
            Self::CacheTtl => &o.cache_ttl,
            Self::HttpTimeout => &o.http_timeout,
            Self::LeaseTtl => &o.lease_ttl,
            Self::LeaseWait => &o.lease_wait,
            Self::CallDeadline => &o.call_deadline,
            Self::FailureMemory => &o.failure_memory,
            Self::RefreshAhead => &o.refresh_ahead,
        }
    }

    fn field_mut(self, o: &mut Options) -> &mut Duration {
        match self {
            Self::RefreshThreshold => &mut o.refresh_threshold,
            Self::CacheTtl => &mut o.cache_ttl,
            Self::HttpTimeout => &mut o.http_timeout,
            Self::LeaseTtl => &mut o.lease_ttl,
            Self::LeaseWait => &mut o.lease_wait,
            Self::CallDeadline => &mut o.call_deadline,
            Self::FailureMemory => &mut o.failure_memory,
            Self::RefreshAhead => &mut o.refresh_ahead,
        }
    }
}

fn range_text(allow_zero: bool, max: Duration) -> String {
    let lower = if allow_zero { ">= 0" } else { "> 0" };
    format!("must be a number of seconds {lower} and <= {}", max.as_secs())
}

/// The one seconds check: finite, not NaN, not negative, zero only where
/// allowed, at most `max`. Out of range is `InvalidInput` naming `label` and
/// the range; nothing here can panic (`Duration::from_secs_f64` would on
/// overflow).
pub fn checked_seconds(label: &str, secs: f64, allow_zero: bool, max: Duration) -> Result<Duration, Error> {
    let ok = secs.is_finite() && secs >= 0.0 && (allow_zero || secs > 0.0) && secs <= max.as_secs_f64();
    let d = ok.then(|| Duration::try_from_secs_f64(secs).ok()).flatten();
    // A positive value below a nanosecond would round to zero.
    match d {
        Some(d) if allow_zero || !d.is_zero() => Ok(d),
        _ => Err(Error::InvalidInput(format!("{label} {}, got {secs}", range_text(allow_zero, max)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_refuses_overflow_nan_negative_and_zero_where_meaningless() {
        for bad in [1e20, 1e300, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, -1.0, -0.0001, 86_400.5, 1e-12] {
            let e = Options::duration_from_secs("LINEAR_OAUTH_HTTP_TIMEOUT_S", bad).unwrap_err();
            let Error::InvalidInput(m) = e else { panic!("{bad}: {e:?}") };
            assert!(m.contains("LINEAR_OAUTH_HTTP_TIMEOUT_S") && m.contains("> 0 and <= 86400"), "{m}");
        }
        assert!(Options::duration_from_secs("http_timeout", 0.0).is_err());
        assert_eq!(Options::duration_from_secs("http_timeout", 2.5).unwrap(), Duration::from_millis(2500));
        assert_eq!(Options::duration_from_secs("LINEAR_OAUTH_CACHE_TTL_S", 0.0).unwrap(), Duration::ZERO);
        assert_eq!(Options::duration_from_secs("refresh_threshold", 0.0).unwrap(), Duration::ZERO);
        assert_eq!(Options::duration_from_secs("cache_ttl", 30.0 * 86_400.0).unwrap(), MONTH);
        assert!(Options::duration_from_secs("cache_ttl", 30.0 * 86_400.0 + 1.0).is_err());
        for zero_is_meaningless in ["lease_ttl", "LINEAR_OAUTH_LEASE_WAIT_S", "call_deadline"] {
            assert!(Options::duration_from_secs(zero_is_meaningless, 0.0).is_err(), "{zero_is_meaningless}");
        }
        assert!(matches!(Options::duration_from_secs("nope", 1.0), Err(Error::InvalidInput(_))));
        let e = DurationOption::LeaseTtl.from_secs("leaseTtlSeconds", 1e300).unwrap_err();
        assert!(e.to_string().contains("leaseTtlSeconds"), "{e}");
    }

    #[test]
    fn validate_applies_the_same_ranges_to_hand_built_options() {
        Options::default().validate().unwrap();
        let bad = [
            Options { http_timeout: Duration::ZERO, ..Options::default() },
            Options { lease_ttl: Duration::ZERO, ..Options::default() },
            Options { call_deadline: Duration::MAX, ..Options::default() },
            Options { refresh_threshold: Duration::from_secs(31 * 86_400), ..Options::default() },
            Options { max_memory_bytes: 0, ..Options::default() },
        ];
        for o in bad {
            assert!(matches!(o.validate(), Err(Error::InvalidInput(_))), "{o:?}");
        }
        let e = Options { http_timeout: Duration::ZERO, ..Options::default() }.validate().unwrap_err();
        assert!(e.to_string().contains("http_timeout"), "{e}");
        Options { cache_ttl: Duration::ZERO, refresh_threshold: Duration::ZERO, ..Options::default() }
            .validate()
            .unwrap();
    }

    #[test]
    fn from_env_refuses_bad_seconds_without_panicking() {
        let k = "LINEAR_OAUTH_HTTP_TIMEOUT_S";
        let env = |pairs: &[(&'static str, &'static str)]| {
            let pairs = pairs.to_vec();
            move |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
        };
        for (v, ok) in [
            ("1e20", false),
            ("1e300", false),
            ("0", false),
            ("nan", false),
            ("soon", false),
            ("-3", false),
            ("2.5", true),
        ] {
            let r = std::panic::catch_unwind(|| Options::from_vars(env(&[(k, v)]))).expect("from_env panicked");
            match r {
                Ok(o) => {
                    assert!(ok, "{v} accepted");
                    assert_eq!(o.http_timeout, Duration::from_millis(2500));
                }
                Err(Error::InvalidInput(m)) => {
                    assert!(!ok, "{v} refused: {m}");
                    assert!(m.contains(k) && m.contains(v), "{m}");
                }
                Err(e) => panic!("{v}: {e:?}"),
            }
        }
        assert_eq!(Options::from_vars(env(&[("LINEAR_OAUTH_CACHE_TTL_S", "0")])).unwrap().cache_ttl, Duration::ZERO);
        let e = Options::from_vars(env(&[("LINEAR_OAUTH_LEASE_TTL_S", "1e300")])).unwrap_err();
        assert!(matches!(&e, Error::InvalidInput(m) if m.contains("LINEAR_OAUTH_LEASE_TTL_S")), "{e:?}");
    }
}
