//! How a `Resolver` is configured. [`options!`] below declares every option
//! once: its field, type, default and one doc, and for the options users set
//! its kind and environment variable. From that come [`Options`], its
//! `Default`, and [`SETTINGS`], through which `from_env`, the CLI's global
//! flags, Python's keyword arguments and Node's options object are read (and
//! the bindings' type stubs checked). Log levels are each binding's own (Node
//! `logLevel`, Python's `logging` level, the CLI's `--verbose`).

use std::sync::Arc;
use std::time::Duration;

use crate::settings::{format_seconds, Setting, SettingField, SettingKind, SettingValue};
use crate::{EmfSink, Error, HintStore, LogSink, SecretDeletion};

/// Declares [`Options`] (user settings first, then what only the host
/// program sets), its `Default`, and [`SETTINGS`]: one entry per option,
/// `doc field: Type = default, kind, "ENV_VAR";` for a setting and
/// `doc field: Type = default;` for the host's own.
macro_rules! options {
    (
        settings {
            $($(#[doc = $doc:literal])+ $field:ident: $ty:ty = $default:expr, $kind:expr, $env:literal;)*
        }
        host {
            $($(#[doc = $hdoc:literal])+ $hfield:ident: $hty:ty = $hdefault:expr;)*
        }
    ) => {
        /// Resolver options; `Default` is production Linear with the file store.
        #[derive(Debug, Clone)]
        pub struct Options {
            $($(#[doc = $doc])+ pub $field: $ty,)*
            $($(#[doc = $hdoc])+ pub $hfield: $hty,)*
        }

        impl Default for Options {
            fn default() -> Self {
                Self { $($field: $default,)* $($hfield: $hdefault,)* }
            }
        }

        /// Every user-facing option, in the order bindings list them.
        pub const SETTINGS: [Setting; [$(stringify!($field)),*].len()] = {
            use SettingKind::*;
            [$(Setting {
                field: stringify!($field),
                kind: $kind,
                env_var: Some($env),
                doc: concat!($($doc),+).trim_ascii_start(),
                set: |o, kind, label, value| {
                    o.$field = <$ty as SettingField>::take(kind, label, value)?;
                    Ok(())
                },
                get: |o| SettingField::show(&o.$field),
                check: |o, kind, label| SettingField::check(&o.$field, kind, label),
            },)*]
        };
    };
}

options! {
    settings {
        /// where tokens and the registry live: file:DIR, memory: or aws
        store: String = default_store(), Text { optional: false }, "LINEAR_OAUTH_STORE";
        /// DynamoDB registry table of the aws store
        registry_table: Option<String> = None, Text { optional: true }, "LINEAR_OAUTH_REGISTRY_TABLE";
        /// Linear API base (token, revoke and GraphQL endpoints)
        // https, or http on loopback only (see `http.rs`).
        api_base: String = DEFAULT_API_BASE.into(), Text { optional: false }, "LINEAR_OAUTH_API_BASE";
        /// Linear's authorization page
        authorize_url: String = DEFAULT_AUTHORIZE_URL.into(), Text { optional: false }, "LINEAR_OAUTH_AUTHORIZE_URL";
        /// secret names are <prefix><workspace slug>
        secret_prefix: String = linear_oauth_core::DEFAULT_SECRET_PREFIX.into(), Text { optional: false },
            "LINEAR_OAUTH_SECRET_PREFIX";
        /// refresh when this close to expiry
        // `now + threshold >= expires_at`; zero: only once expired.
        refresh_threshold: Duration = Duration::from_secs(60), Seconds { zero: true },
            "LINEAR_OAUTH_REFRESH_THRESHOLD_S";
        /// serve rows and tokens from memory this long
        cache_ttl: Duration = Duration::from_secs(60), Seconds { zero: true }, "LINEAR_OAUTH_CACHE_TTL_S";
        /// connect timeout and per-phase response timeout of each HTTP request
        // Per phase (connect, first byte, between bytes): at most ~15 s a request.
        http_timeout: Duration = Duration::from_secs(5), Seconds { zero: false }, "LINEAR_OAUTH_HTTP_TIMEOUT_S";
        /// life of a cross-process refresh lease whose holder died; at least 3 x http timeout + 2 s
        // A request may take 3 x `http_timeout`, and its answer is saved inside
        // the lease (see `check_budgets`): it only expires when its holder died...
        lease_ttl: Duration = Duration::from_secs(25), Seconds { zero: false }, "LINEAR_OAUTH_LEASE_TTL_S";
        /// how long a caller waits for another process's refresh
        // ...and waiters outlast it, so they can take over from a dead holder
        // (less when the call could not fit a refresh of its own after waiting).
        lease_wait: Duration = Duration::from_secs(30), Seconds { zero: false }, "LINEAR_OAUTH_LEASE_WAIT_S";
        /// hard limit on one call into the component; at least 3 x http timeout + 2 s
        call_deadline: Duration = Duration::from_secs(60), Seconds { zero: false }, "LINEAR_OAUTH_CALL_DEADLINE_S";
        /// how long a transient refresh failure is shared by later callers; 0 turns it off
        // 429, 5xx and transport failures: the callers that follow share the
        // answer instead of each sending a request.
        failure_memory: Duration = Duration::from_secs(1), Seconds { zero: true }, "LINEAR_OAUTH_FAILURE_MEMORY_S";
        /// refresh this long before the threshold in the background; 0 turns it off
        // So no caller of a long-lived resolver waits for Linear; a short-lived
        // host refreshes inline instead, this much earlier.
        refresh_ahead: Duration = Duration::from_secs(600), Seconds { zero: true }, "LINEAR_OAUTH_REFRESH_AHEAD_S";
        /// linear memory cap of one component instance
        max_memory_bytes: usize = 64 << 20, Bytes, "LINEAR_OAUTH_MAX_MEMORY_BYTES";
        /// most tokens a resolver keeps for its fast path (the oldest go first), and registry rows it remembers
        // Per process: a Lambda that sees 100,000 workspaces keeps at most
        // this many (an evicted one costs one call into the component).
        cache_max_entries: usize = 10_000, Count, "LINEAR_OAUTH_CACHE_MAX_ENTRIES";
        /// secret holding the stack-wide webhook signing secret, for workspaces without their own
        // Its value is the signing secret itself, or a JSON object with
        // `webhook_signing_secret`; `linear-oauth webhook set-secret --stack` writes it.
        webhook_secret_id: Option<String> = None, Text { optional: true }, "LINEAR_OAUTH_WEBHOOK_SECRET_ID";
        /// how far a webhook's webhookTimestamp may be from now (Linear suggests 60 s)
        webhook_window: Duration = Duration::from_millis(linear_oauth_core::DEFAULT_WEBHOOK_WINDOW_MS),
            Seconds { zero: false }, "LINEAR_OAUTH_WEBHOOK_WINDOW_S";
        /// long-lived (a service) or invocation (AWS Lambda: nothing runs after a call returns); unset:
        /// invocation when AWS_LAMBDA_FUNCTION_NAME or AWS_LAMBDA_RUNTIME_API is set, else long-lived
        /// (the CLI is always a command)
        // `None` detects it (see [`Lifetime::detect`]).
        lifetime: Option<Lifetime> = None, Text { optional: true }, "LINEAR_OAUTH_LIFETIME";
        /// write CloudWatch Embedded Metric Format lines to stdout (one per call that refreshed, and on flush_metrics)
        // Off by default: a line costs log ingestion. See `metrics.rs`.
        metrics_emf: bool = false, Flag, "LINEAR_OAUTH_METRICS_EMF";
        /// CloudWatch namespace of the EMF metrics
        metrics_namespace: String = "LinearOAuth".into(), Text { optional: false }, "LINEAR_OAUTH_METRICS_NAMESPACE";
        /// add a WorkspaceId dimension to EMF refresh lines (one line per workspace; a metric per workspace costs)
        metrics_by_workspace: bool = false, Flag, "LINEAR_OAUTH_METRICS_BY_WORKSPACE";
    }
    host {
        /// Most calls inside component instances at once (each holds one
        /// instance); more callers queue. Cache hits never take one. Default
        /// [`default_max_instances`].
        max_instances: usize = default_max_instances();
        /// Where log events go; `None` means `tracing`.
        log_sink: Option<Arc<dyn LogSink>> = None;
        /// Where the component keeps non-secret hints between calls; `None`
        /// means this resolver's memory. A host whose process ends with the call
        /// (the CLI) passes a [`FileHints`](crate::FileHints), so its next
        /// process can take the warm refresh route.
        hints: Option<Arc<dyn HintStore>> = None;
        /// How a purge (`revoke` with `purge`) deletes the secret in the `aws`
        /// store: a 7-day recovery window by default (the CLI's `revoke` flags).
        secret_deletion: SecretDeletion = SecretDeletion::default();
        /// Where EMF lines go when `metrics_emf` is on; `None` means stdout.
        emf_sink: Option<Arc<dyn EmfSink>> = None;
    }
}

pub const DEFAULT_API_BASE: &str = "https://api.linear.app";
pub const DEFAULT_AUTHORIZE_URL: &str = "https://linear.app/oauth/authorize";

/// Eight instances per core, from 16 to 64. An uncached call mostly waits on
/// the store or Linear (a refresh: hundreds of ms), not the CPU, so the bound
/// is about memory: an instance costs about 100 KiB resident in practice
/// (`pool_rss` example) but may grow to `max_memory_bytes`. 16 let a small
/// Lambda or a 2-core worker refresh 16 workspaces at once.
pub fn default_max_instances() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 8).clamp(16, 64)
}
/// `file:` + `$XDG_DATA_HOME/linear-oauth` (or `~/.local/share/linear-oauth`).
/// With neither variable set it names `./linear-oauth`, which
/// [`Options::check_store`] refuses to open.
pub fn default_store() -> String {
    let base = default_store_base().unwrap_or_else(|| std::path::PathBuf::from("."));
    format!("file:{}", base.join("linear-oauth").display())
}

fn default_store_base() -> Option<std::path::PathBuf> {
    let var = |k| std::env::var_os(k).filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
    var("XDG_DATA_HOME").or_else(|| var("HOME").map(|h| h.join(".local/share")))
}

/// How long a host's process outlives the calls it serves. It decides what
/// may happen after a call returns: background refreshes, deferred lease
/// releases, and where a refreshed token the store refused waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// A service: refresh-ahead in the background, lease releases off the
    /// caller's path, an unsaved token kept in memory for later calls.
    LongLived,
    /// An invocation environment (AWS Lambda): the process may be frozen as
    /// soon as a call returns and never thawed, so nothing that can rotate
    /// or write a credential outlives the call that started it:
    /// refresh-ahead refreshes inline, leases are released before the call
    /// returns, a write-back is retried within the call and a failure is
    /// logged at error (the caller still gets the rotated token).
    Invocation,
    /// A command that exits after its output (the CLI; not a user setting):
    /// as `Invocation`, but a write-back that keeps failing fails the call.
    Command,
}

/// The variables AWS Lambda sets in every function's environment.
pub const INVOCATION_ENV_VARS: [&str; 2] = ["AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_RUNTIME_API"];

impl Lifetime {
    /// The value a user may set, as spelled in options and variables.
    pub fn parse(label: &str, raw: &str) -> Result<Self, Error> {
        match raw.trim() {
            "long-lived" => Ok(Self::LongLived),
            "invocation" => Ok(Self::Invocation),
            other => Err(Error::InvalidInput(format!(
                "{label} must be \"long-lived\" or \"invocation\" (or unset to detect it), got {other:?}"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LongLived => "long-lived",
            Self::Invocation => "invocation",
            Self::Command => "command",
        }
    }

    /// `Invocation` when an AWS Lambda variable is set (the one that is
    /// named second), else `LongLived`.
    pub fn detect() -> (Self, Option<&'static str>) {
        Self::detect_in(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()))
    }

    fn detect_in(is_set: impl Fn(&str) -> bool) -> (Self, Option<&'static str>) {
        match INVOCATION_ENV_VARS.into_iter().find(|k| is_set(k)) {
            Some(var) => (Self::Invocation, Some(var)),
            None => (Self::LongLived, None),
        }
    }
}

impl Options {
    /// Every [`SETTINGS`] entry's environment variable (`LINEAR_OAUTH_*`) over
    /// the defaults; empty variables are ignored. A bad value is
    /// `InvalidInput` naming the variable, never a panic.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// `from_env` over any lookup (tests must not mutate the process environment).
    fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let mut o = Self::default();
        for setting in SETTINGS {
            let Some(k) = setting.env_var else { continue };
            if let Some(v) = lookup(k).filter(|v| !v.is_empty()) {
                setting.apply(&mut o, k, v.into())?;
            }
        }
        Ok(o)
    }

    /// Sets the option named `name` in any spelling [`Setting::find`] knows
    /// (`http_timeout_s`, `httpTimeoutSeconds`, ...), checked, under that
    /// name in messages: what every binding does with each option it is given.
    pub fn set(&mut self, name: &str, value: impl Into<SettingValue>) -> Result<(), Error> {
        let setting = Setting::find(name).ok_or_else(|| Error::InvalidInput(format!("unknown option {name:?}")))?;
        setting.apply(self, name, value.into())
    }

    /// The checks every host applies, for callers that build `Options` by hand;
    /// `Resolver::new` and `Resolver::with_backends` call it.
    pub fn validate(&self) -> Result<(), Error> {
        for s in &SETTINGS {
            s.check(self)?;
        }
        if self.max_instances == 0 {
            return Err(Error::InvalidInput("max_instances must be at least 1".into()));
        }
        if self.registry_table.is_some() && self.store != "aws" {
            return Err(Error::InvalidInput(format!(
                "registry_table (LINEAR_OAUTH_REGISTRY_TABLE) is only read by the aws store, but the store is {:?}; \
                 set store (LINEAR_OAUTH_STORE) to aws, or unset the table",
                self.store
            )));
        }
        self.check_budgets()
    }

    /// The lifetime in force, and the variable it was detected from (none
    /// when set explicitly or when no invocation variable is set).
    pub fn effective_lifetime(&self) -> (Lifetime, Option<&'static str>) {
        match self.lifetime {
            Some(l) => (l, None),
            None => Lifetime::detect(),
        }
    }

    /// Before opening `store` by name: the default file store is refused
    /// where it cannot be what the user meant. In an invocation environment
    /// a file store lives and dies with one instance (every cold start would
    /// reinstall nothing and find nothing); without `HOME` or
    /// `XDG_DATA_HOME` it would land in whatever directory the process
    /// started in. (A store named explicitly is never refused here, unless
    /// it is spelled exactly as the default.)
    pub fn check_store(&self) -> Result<(), Error> {
        if self.store != default_store() {
            return Ok(());
        }
        let fix = "set store (LINEAR_OAUTH_STORE) explicitly: aws (with LINEAR_OAUTH_REGISTRY_TABLE) or file:DIR";
        if let (Lifetime::Invocation, why) = self.effective_lifetime() {
            let why = why.map_or_else(|| "lifetime is invocation".to_owned(), |v| format!("{v} is set"));
            return Err(Error::InvalidInput(format!(
                "no store was chosen in an invocation environment ({why}), where the default file store {} would be \
                 private to one instance and lost with it; {fix}",
                self.store
            )));
        }
        if default_store_base().is_none() {
            return Err(Error::InvalidInput(format!(
                "no store was chosen and neither HOME nor XDG_DATA_HOME is set, so there is no default file store; {fix}"
            )));
        }
        Ok(())
    }

    /// Refuses timings under which a refresh cannot hold (core's
    /// `check_budgets`): a token request may take 3 x `http_timeout` (the
    /// host ends it there) and its answer must still be saved inside the
    /// lease and the call.
    fn check_budgets(&self) -> Result<(), Error> {
        use crate::pool::ms;
        use linear_oauth_core::{check_budgets, BudgetConflict, REQUEST_PHASES, WRITE_BACK_RESERVE_MS};
        let Err(conflict) = check_budgets(ms(self.http_timeout), ms(self.lease_ttl), ms(self.call_deadline)) else {
            return Ok(());
        };
        let (field, value, why) = match conflict {
            BudgetConflict::LeaseTooShort { .. } => (
                "lease_ttl",
                self.lease_ttl,
                "a lease that ends first lets another process send the same refresh token",
            ),
            BudgetConflict::CallTooShort { .. } => (
                "call_deadline",
                self.call_deadline,
                "a call that ends first cuts off the write-back and loses the rotated refresh token",
            ),
        };
        let (BudgetConflict::LeaseTooShort { needs_ms } | BudgetConflict::CallTooShort { needs_ms }) = conflict;
        let http = "http_timeout";
        Err(Error::InvalidInput(format!(
            "{field} ({} s) must be at least {REQUEST_PHASES} x {http} ({} s) + {} s for the write-back = {} s: \
             a token request may take {REQUEST_PHASES} x {http}, and {why}; raise {field} or lower {http}",
            format_seconds(value),
            format_seconds(self.http_timeout),
            format_seconds(Duration::from_millis(WRITE_BACK_RESERVE_MS)),
            format_seconds(Duration::from_millis(needs_ms)),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A token request may take 3 x http_timeout; the lease and the call
    /// must each outlast it and its write-back (issue 20: a retry ran past
    /// the lease and a waiter sent the same refresh token).
    #[test]
    fn timings_under_which_a_refresh_cannot_hold_are_refused_naming_both_options() {
        let secs = Duration::from_secs;
        let d = Options::default();
        d.validate().unwrap();
        assert_eq!(
            (d.http_timeout, d.lease_ttl, d.call_deadline, d.lease_wait),
            (secs(5), secs(25), secs(60), secs(30))
        );
        // Exactly enough: 3 x 5 s + 2 s.
        Options { lease_ttl: secs(17), call_deadline: secs(17), ..Options::default() }.validate().unwrap();
        let cases = [
            (Options { lease_ttl: secs(14), ..Options::default() }, "lease_ttl (14 s)"),
            (Options { lease_ttl: Duration::from_millis(16_999), ..Options::default() }, "lease_ttl (16.999 s)"),
            (Options { http_timeout: secs(8), ..Options::default() }, "lease_ttl (25 s)"),
            (Options { call_deadline: secs(16), ..Options::default() }, "call_deadline (16 s)"),
        ];
        for (o, named) in cases {
            let e = o.validate().unwrap_err();
            let Error::InvalidInput(m) = &e else { panic!("{o:?}: {e:?}") };
            assert!(m.starts_with(named) && m.contains("http_timeout"), "{m}");
        }
        let e = Options { lease_ttl: secs(10), ..Options::default() }.validate().unwrap_err();
        let full = "lease_ttl (10 s) must be at least 3 x http_timeout (5 s) + 2 s for the write-back = 17 s: ";
        assert!(matches!(&e, Error::InvalidInput(m) if m.starts_with(full)), "{e}");
    }

    #[test]
    fn lifetime_is_detected_from_lambda_variables_or_set() {
        assert_eq!(Lifetime::detect_in(|_| false), (Lifetime::LongLived, None));
        assert_eq!(
            Lifetime::detect_in(|k| k == "AWS_LAMBDA_RUNTIME_API"),
            (Lifetime::Invocation, Some("AWS_LAMBDA_RUNTIME_API"))
        );
        assert_eq!(Lifetime::detect_in(|_| true).1, Some("AWS_LAMBDA_FUNCTION_NAME"));
        let env = |k: &str| (k == "LINEAR_OAUTH_LIFETIME").then(|| "invocation".to_owned());
        let o = Options::from_vars(env).unwrap();
        assert_eq!(o.effective_lifetime(), (Lifetime::Invocation, None));
        let e = Options::from_vars(|k| (k == "LINEAR_OAUTH_LIFETIME").then(|| "command".to_owned())).unwrap_err();
        assert!(e.to_string().contains("LINEAR_OAUTH_LIFETIME") && e.to_string().contains("long-lived"), "{e}");
    }

    #[test]
    fn misconfigured_stores_are_invalid_input_naming_the_option() {
        let aws_table =
            |store: &str| Options { store: store.into(), registry_table: Some("t".into()), ..Options::default() };
        aws_table("aws").validate().unwrap();
        for store in ["memory:", "file:/tmp/x"] {
            let e = aws_table(store).validate().unwrap_err();
            assert!(matches!(&e, Error::InvalidInput(m) if m.contains("LINEAR_OAUTH_REGISTRY_TABLE")), "{e:?}");
        }
        // The default file store in an invocation environment; an explicit one is fine.
        let invocation = Options { lifetime: Some(Lifetime::Invocation), ..Options::default() };
        let e = invocation.check_store().unwrap_err();
        assert!(matches!(&e, Error::InvalidInput(m) if m.contains("LINEAR_OAUTH_STORE")), "{e:?}");
        Options { store: "memory:".into(), ..invocation }.check_store().unwrap();
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
