//! How a `Resolver` is configured. [`SETTINGS`] lists every option a user
//! sets (name, environment variable, kind, range, doc) once; `from_env`, the
//! CLI's global flags, Python's keyword arguments and Node's options object
//! are read through it, and the bindings' type stubs are checked against it.
//! Log levels are each binding's own (Node `logLevel`, Python's `logging`
//! level, the CLI's `--verbose`); the log sink and the hint store are set by
//! the host program, not by its users.

use std::sync::Arc;
use std::time::Duration;

use crate::{Error, HintStore, LogSink, SecretDeletion};

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
    /// Lifetime of a cross-process refresh lease whose holder died. At least
    /// 3 x `http_timeout` + 2 s: a request may take 3 x `http_timeout`, and its
    /// answer is saved inside the lease (see [`Options::validate`]).
    pub lease_ttl: Duration,
    /// How long a caller waits for another process's refresh; less when the
    /// call could not fit a refresh of its own after waiting that long.
    pub lease_wait: Duration,
    /// Hard limit on one call into the component; at least 3 x
    /// `http_timeout` + 2 s, like `lease_ttl`.
    pub call_deadline: Duration,
    /// Linear memory cap of one component instance.
    pub max_memory_bytes: usize,
    /// Most calls inside component instances at once (each holds one
    /// instance); more callers queue. Cache hits never take one. Default
    /// [`default_max_instances`]. Set by the host program, not a [`SETTINGS`] entry.
    pub max_instances: usize,
    /// Where log events go; `None` means `tracing`.
    pub log_sink: Option<Arc<dyn LogSink>>,
    /// Where the component keeps non-secret hints between calls; `None`
    /// means this resolver's memory. A host whose process ends with the call
    /// (the CLI) passes a [`FileHints`](crate::FileHints), so its next
    /// process can take the warm refresh route.
    pub hints: Option<Arc<dyn HintStore>>,
    /// How long the process outlives a call; `None` detects it (see
    /// [`Lifetime::detect`]).
    pub lifetime: Option<Lifetime>,
    /// How long a transient refresh failure (429, 5xx, transport) is shared
    /// by the callers that follow, instead of each sending a request; zero
    /// turns it off.
    pub failure_memory: Duration,
    /// How long before the refresh threshold a long-lived resolver starts one
    /// background refresh, so no caller waits for Linear; zero turns it off.
    /// A short-lived host refreshes inline instead, this much earlier.
    pub refresh_ahead: Duration,
    /// How a purge (`revoke` with `purge`) deletes the secret in the `aws`
    /// store: a 7-day recovery window by default. Set by the host program
    /// (the CLI's `revoke` flags), not a [`SETTINGS`] entry.
    pub secret_deletion: SecretDeletion,
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
            secret_prefix: linear_oauth_core::DEFAULT_SECRET_PREFIX.into(),
            // Per phase (connect, first byte, between bytes): at most ~15 s a request.
            http_timeout: Duration::from_secs(5),
            // Outlives one refresh plus write-back, so it only expires when its holder died...
            lease_ttl: Duration::from_secs(25),
            // ...and waiters outlast it, so they can take over from a dead holder.
            lease_wait: Duration::from_secs(30),
            call_deadline: Duration::from_secs(60),
            max_memory_bytes: 64 << 20,
            max_instances: default_max_instances(),
            log_sink: None,
            hints: None,
            lifetime: None,
            failure_memory: Duration::from_secs(1),
            refresh_ahead: Duration::from_secs(600),
            secret_deletion: SecretDeletion::default(),
        }
    }
}

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
                setting.parse_into(&mut o, k, &v)?;
            }
        }
        Ok(o)
    }

    /// Seconds for the option named `name` in any spelling [`Setting::find`]
    /// knows, checked against that option's range.
    pub fn duration_from_secs(name: &str, secs: f64) -> Result<Duration, Error> {
        match Setting::find(name).map(|s| s.kind) {
            Some(SettingKind::Seconds(opt)) => opt.from_secs(name, secs),
            _ => Err(Error::InvalidInput(format!("{name} is not a duration option"))),
        }
    }

    /// The checks every host applies, for callers that build `Options` by hand;
    /// `Resolver::new` and `Resolver::with_backends` call it.
    pub fn validate(&self) -> Result<(), Error> {
        for opt in DurationOption::ALL {
            opt.check(opt.field(), *opt.field_ref(self))?;
        }
        if self.max_instances == 0 {
            return Err(Error::InvalidInput("max_instances must be at least 1".into()));
        }
        check_memory("max_memory_bytes", self.max_memory_bytes)?;
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
                DurationOption::LeaseTtl.field(),
                self.lease_ttl,
                "a lease that ends first lets another process send the same refresh token",
            ),
            BudgetConflict::CallTooShort { .. } => (
                DurationOption::CallDeadline.field(),
                self.call_deadline,
                "a call that ends first cuts off the write-back and loses the rotated refresh token",
            ),
        };
        let (BudgetConflict::LeaseTooShort { needs_ms } | BudgetConflict::CallTooShort { needs_ms }) = conflict;
        let http = DurationOption::HttpTimeout.field();
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

/// Below this the component cannot even be instantiated.
const MIN_MEMORY_BYTES: usize = 4 << 20;

const DAY: Duration = Duration::from_secs(86_400);
const MONTH: Duration = Duration::from_secs(30 * 86_400);

/// Declares [`DurationOption`]: one line per seconds option (variant,
/// `Options` field, whether zero means something, and why), from which its
/// list and field accessors come.
macro_rules! duration_options {
    ($($(#[doc = $doc:literal])* $variant:ident => $field:ident, zero: $zero:literal;)*) => {
        /// A seconds-valued setting and its range. Every host converts user input
        /// through [`DurationOption::from_secs`], so env, CLI flags, Python and Node
        /// accept and refuse the same values with the same message.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum DurationOption {
            $($(#[doc = $doc])* $variant,)*
        }

        impl DurationOption {
            pub const ALL: [Self; [$(stringify!($variant)),*].len()] = [$(Self::$variant),*];

            /// The `Options` field it sets.
            pub const fn field(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($field),)*
                }
            }

            /// Whether zero is a meaningful value.
            pub fn allows_zero(self) -> bool {
                match self {
                    $(Self::$variant => $zero,)*
                }
            }

            fn field_ref(self, o: &Options) -> &Duration {
                match self {
                    $(Self::$variant => &o.$field,)*
                }
            }

            fn field_mut(self, o: &mut Options) -> &mut Duration {
                match self {
                    $(Self::$variant => &mut o.$field,)*
                }
            }
        }
    };
}

duration_options! {
    /// Zero means "refresh only once expired". `0..=30 days`.
    RefreshThreshold => refresh_threshold, zero: true;
    /// Zero turns the caches off. `0..=30 days`.
    CacheTtl => cache_ttl, zero: true;
    /// `(0, 1 day]`: zero would fail every request.
    HttpTimeout => http_timeout, zero: false;
    /// `(0, 1 day]`: zero would make every lease expired on arrival.
    LeaseTtl => lease_ttl, zero: false;
    /// `(0, 1 day]`: zero would turn every concurrent refresh into an error.
    LeaseWait => lease_wait, zero: false;
    /// `(0, 1 day]`: zero would trap every call.
    CallDeadline => call_deadline, zero: false;
    /// Zero turns the memory off. `0..=30 days`.
    FailureMemory => failure_memory, zero: true;
    /// Zero turns refresh-ahead off. `0..=30 days`.
    RefreshAhead => refresh_ahead, zero: true;
}

impl DurationOption {
    /// Its value in `Options::default()`.
    pub fn default_value(self) -> Duration {
        *self.field_ref(&Options::default())
    }

    /// Sets it in `o`, unchecked (see [`Self::from_secs`]).
    pub fn set(self, o: &mut Options, d: Duration) {
        *self.field_mut(o) = d;
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

/// The type of a [`Setting`]'s value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    /// A string; `optional` ones default to unset.
    Text { optional: bool },
    /// Seconds (a float), checked by the [`DurationOption`].
    Seconds(DurationOption),
    /// A byte count (an integer).
    Bytes,
}

/// One user-facing option: everything a binding needs to read, check and
/// document it.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The `Options` field.
    pub field: &'static str,
    pub kind: SettingKind,
    pub env_var: Option<&'static str>,
    pub doc: &'static str,
}

/// Every user-facing option, in the order bindings list them.
pub const SETTINGS: [Setting; 15] = {
    use SettingKind::{Bytes, Seconds, Text};
    const fn text(field: &'static str, env_var: &'static str, doc: &'static str, optional: bool) -> Setting {
        Setting { field, kind: Text { optional }, env_var: Some(env_var), doc }
    }
    const fn seconds(opt: DurationOption, env_var: Option<&'static str>, doc: &'static str) -> Setting {
        Setting { field: opt.field(), kind: Seconds(opt), env_var, doc }
    }
    [
        text("store", "LINEAR_OAUTH_STORE", "where tokens and the registry live: file:DIR, memory: or aws", false),
        text("registry_table", "LINEAR_OAUTH_REGISTRY_TABLE", "DynamoDB registry table of the aws store", true),
        text("api_base", "LINEAR_OAUTH_API_BASE", "Linear API base (token, revoke and GraphQL endpoints)", false),
        text("authorize_url", "LINEAR_OAUTH_AUTHORIZE_URL", "Linear's authorization page", false),
        text("secret_prefix", "LINEAR_OAUTH_SECRET_PREFIX", "secret names are <prefix><workspace slug>", false),
        seconds(
            DurationOption::RefreshThreshold,
            Some("LINEAR_OAUTH_REFRESH_THRESHOLD_S"),
            "refresh when this close to expiry",
        ),
        seconds(
            DurationOption::CacheTtl,
            Some("LINEAR_OAUTH_CACHE_TTL_S"),
            "serve rows and tokens from memory this long",
        ),
        seconds(
            DurationOption::HttpTimeout,
            Some("LINEAR_OAUTH_HTTP_TIMEOUT_S"),
            "connect timeout and per-phase response timeout of each HTTP request",
        ),
        seconds(
            DurationOption::LeaseTtl,
            Some("LINEAR_OAUTH_LEASE_TTL_S"),
            "life of a cross-process refresh lease whose holder died; at least 3 x http timeout + 2 s",
        ),
        seconds(
            DurationOption::LeaseWait,
            Some("LINEAR_OAUTH_LEASE_WAIT_S"),
            "how long a caller waits for another process's refresh",
        ),
        seconds(
            DurationOption::CallDeadline,
            Some("LINEAR_OAUTH_CALL_DEADLINE_S"),
            "hard limit on one call into the component; at least 3 x http timeout + 2 s",
        ),
        seconds(
            DurationOption::FailureMemory,
            Some("LINEAR_OAUTH_FAILURE_MEMORY_S"),
            "how long a transient refresh failure is shared by later callers; 0 turns it off",
        ),
        seconds(
            DurationOption::RefreshAhead,
            Some("LINEAR_OAUTH_REFRESH_AHEAD_S"),
            "refresh this long before the threshold in the background; 0 turns it off",
        ),
        Setting {
            field: "max_memory_bytes",
            kind: Bytes,
            env_var: Some("LINEAR_OAUTH_MAX_MEMORY_BYTES"),
            doc: "linear memory cap of one component instance",
        },
        text(
            "lifetime",
            "LINEAR_OAUTH_LIFETIME",
            "long-lived (a service) or invocation (AWS Lambda: nothing runs after a call returns); unset: \
             invocation when AWS_LAMBDA_FUNCTION_NAME or AWS_LAMBDA_RUNTIME_API is set, else long-lived \
             (the CLI is always a command)",
            true,
        ),
    ]
};

impl Setting {
    /// The one named `name` in any binding's spelling (`http_timeout`,
    /// `http_timeout_s`, `httpTimeoutSeconds`, `LINEAR_OAUTH_HTTP_TIMEOUT_S`).
    pub fn find(name: &str) -> Option<&'static Setting> {
        SETTINGS
            .iter()
            .find(|s| s.field == name || s.python_name() == name || s.node_name() == name || s.env_var == Some(name))
    }

    /// Python's keyword argument: the field, with `_s` for seconds.
    pub fn python_name(&self) -> String {
        match self.kind {
            SettingKind::Seconds(_) => format!("{}_s", self.field),
            _ => self.field.to_owned(),
        }
    }

    /// Node's option: camelCase, with `Seconds` for seconds.
    pub fn node_name(&self) -> String {
        let camel = camel_case(self.field);
        match self.kind {
            SettingKind::Seconds(_) => camel + "Seconds",
            _ => camel,
        }
    }

    /// The CLI's global flag, without the dashes (`http-timeout-s`).
    pub fn cli_flag(&self) -> String {
        self.python_name().replace('_', "-")
    }

    /// The default as documentation shows it (`None`: unset).
    pub fn default_text(&self) -> Option<String> {
        let d = Options::default();
        match self.kind {
            // Depends on the environment; see `default_store`.
            SettingKind::Text { .. } if self.field == "store" => Some("file:$XDG_DATA_HOME/linear-oauth".into()),
            SettingKind::Text { .. } => self.text_value(&d),
            SettingKind::Seconds(opt) => Some(format_seconds(opt.default_value())),
            SettingKind::Bytes => Some(d.max_memory_bytes.to_string()),
        }
    }

    fn text_value(&self, o: &Options) -> Option<String> {
        match self.field {
            "store" => Some(o.store.clone()),
            "registry_table" => o.registry_table.clone(),
            "api_base" => Some(o.api_base.clone()),
            "authorize_url" => Some(o.authorize_url.clone()),
            "secret_prefix" => Some(o.secret_prefix.clone()),
            "lifetime" => o.lifetime.map(|l| l.as_str().to_owned()),
            other => unreachable!("{other} is not a text setting"),
        }
    }

    /// Sets a text setting; `label` is the caller's spelling of it (only
    /// `lifetime` can refuse a value).
    pub fn set_text(&self, o: &mut Options, label: &str, value: String) -> Result<(), Error> {
        match self.field {
            "store" => o.store = value,
            "registry_table" => o.registry_table = Some(value),
            "api_base" => o.api_base = value,
            "authorize_url" => o.authorize_url = value,
            "secret_prefix" => o.secret_prefix = value,
            "lifetime" => o.lifetime = Some(Lifetime::parse(label, &value)?),
            other => unreachable!("{other} is not a text setting"),
        }
        Ok(())
    }

    /// Sets it from seconds or bytes as a binding received them, checked;
    /// `label` is the caller's spelling of the option.
    pub fn set_number(&self, o: &mut Options, label: &str, value: f64) -> Result<(), Error> {
        match self.kind {
            SettingKind::Seconds(opt) => opt.set(o, opt.from_secs(label, value)?),
            SettingKind::Bytes => {
                let ok = value.is_finite() && value.fract() == 0.0 && value >= 0.0 && value <= MAX_MEMORY_BYTES as f64;
                if !ok {
                    return Err(Error::InvalidInput(format!(
                        "{label} must be a whole number of bytes from {MIN_MEMORY_BYTES} to {MAX_MEMORY_BYTES}, got {value}"
                    )));
                }
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let bytes = value as usize;
                check_memory(label, bytes)?;
                o.max_memory_bytes = bytes;
            }
            SettingKind::Text { .. } => {
                return Err(Error::InvalidInput(format!("{label} must be a string, got a number")));
            }
        }
        Ok(())
    }

    /// Sets it from text (an environment variable or a CLI flag).
    pub fn parse_into(&self, o: &mut Options, label: &str, raw: &str) -> Result<(), Error> {
        if let SettingKind::Text { .. } = self.kind {
            return self.set_text(o, label, raw.to_owned());
        }
        // A non-number gets the same message as an out-of-range one.
        let n = raw.trim().parse::<f64>().unwrap_or(f64::NAN);
        self.set_number(o, label, n).map_err(|e| match e {
            Error::InvalidInput(m) => {
                Error::InvalidInput(format!("{}, got {raw:?}", m.rsplit_once(", got ").map_or(m.as_str(), |(h, _)| h)))
            }
            other => other,
        })
    }
}

fn camel_case(snake: &str) -> String {
    let mut out = String::new();
    for (i, part) in snake.split('_').enumerate() {
        let mut chars = part.chars();
        match (i, chars.next()) {
            (0, Some(c)) => out.push(c),
            (_, Some(c)) => out.push(c.to_ascii_uppercase()),
            (_, None) => {}
        }
        out.extend(chars);
    }
    out
}

/// `60`, `0.5`: seconds as a user would type them.
fn format_seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        s.to_string()
    }
}

/// Far above what a token needs; below what a 32-bit host could map.
const MAX_MEMORY_BYTES: usize = 1 << 30;

fn check_memory(label: &str, bytes: usize) -> Result<(), Error> {
    if !(MIN_MEMORY_BYTES..=MAX_MEMORY_BYTES).contains(&bytes) {
        return Err(Error::InvalidInput(format!(
            "{label} must be from {MIN_MEMORY_BYTES} (the component needs a few MiB) to {MAX_MEMORY_BYTES}, got {bytes}"
        )));
    }
    Ok(())
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
    fn binding_spellings() {
        let http = Setting::find("http_timeout").unwrap();
        assert_eq!(http.python_name(), "http_timeout_s");
        assert_eq!(http.node_name(), "httpTimeoutSeconds");
        assert_eq!(http.cli_flag(), "http-timeout-s");
        assert_eq!(http.default_text().as_deref(), Some("5"));
        assert_eq!(Setting::find("refreshThresholdSeconds").unwrap().field, "refresh_threshold");
        let table = Setting::find("LINEAR_OAUTH_REGISTRY_TABLE").unwrap();
        assert_eq!(
            (table.node_name(), table.cli_flag(), table.default_text()),
            ("registryTable".into(), "registry-table".into(), None)
        );
        assert_eq!(Setting::find("maxMemoryBytes").unwrap().python_name(), "max_memory_bytes");
        assert_eq!(
            Setting::find("secret_prefix").unwrap().default_text().as_deref(),
            Some(linear_oauth_core::DEFAULT_SECRET_PREFIX)
        );
        assert_eq!(DurationOption::LeaseWait.default_value(), Duration::from_secs(30));
        let mut o = Options::default();
        DurationOption::CacheTtl.set(&mut o, Duration::from_secs(7));
        assert_eq!(o.cache_ttl, Duration::from_secs(7));
    }

    /// Every `Options` field a user sets is in the table once, with an
    /// environment variable, and every spelling names one setting.
    #[test]
    fn the_table_covers_every_user_option_once() {
        let fields: Vec<_> = SETTINGS.iter().map(|s| s.field).collect();
        let debug = format!("{:?}", Options::default());
        for field in debug.split(&['{', ',', ' '][..]).filter_map(|p| p.strip_suffix(':')) {
            let set_by_host = ["log_sink", "hints", "max_instances", "secret_deletion"].contains(&field);
            assert_eq!(fields.contains(&field), !set_by_host, "{field}");
        }
        for opt in DurationOption::ALL {
            assert_eq!(fields.iter().filter(|f| **f == opt.field()).count(), 1, "{opt:?}");
        }
        // Every text setting reads and writes its own field.
        for s in SETTINGS.iter().filter(|s| matches!(s.kind, SettingKind::Text { .. })) {
            let mut o = Options::default();
            let value = if s.field == "lifetime" { "invocation".to_owned() } else { format!("set-{}", s.field) };
            s.set_text(&mut o, s.field, value.clone()).unwrap();
            assert_eq!(s.text_value(&o), Some(value));
            assert_eq!(s.default_text().is_none(), s.kind == SettingKind::Text { optional: true }, "{}", s.field);
        }
        for s in SETTINGS {
            for name in [s.field.to_owned(), s.python_name(), s.node_name(), s.env_var.unwrap().to_owned()] {
                assert_eq!(Setting::find(&name).map(|f| f.field), Some(s.field), "{name} names another setting");
            }
        }
    }

    #[test]
    fn numbers_are_checked_for_every_kind() {
        let mut o = Options::default();
        let bytes = Setting::find("max_memory_bytes").unwrap();
        bytes.set_number(&mut o, "maxMemoryBytes", 8_388_608.0).unwrap();
        assert_eq!(o.max_memory_bytes, 8 << 20);
        for bad in [-1.0, 1.5, 1e300, f64::NAN, 1024.0] {
            let e = bytes.set_number(&mut o, "maxMemoryBytes", bad).unwrap_err();
            assert!(matches!(&e, Error::InvalidInput(m) if m.contains("maxMemoryBytes")), "{bad}: {e:?}");
        }
        assert_eq!(o.max_memory_bytes, 8 << 20, "a refused value changes nothing");
        let store = Setting::find("store").unwrap();
        assert!(store.set_number(&mut o, "store", 1.0).is_err());
        store.parse_into(&mut o, "LINEAR_OAUTH_STORE", "memory:").unwrap();
        assert_eq!(o.store, "memory:");
        let e = bytes.parse_into(&mut o, "LINEAR_OAUTH_MAX_MEMORY_BYTES", "lots").unwrap_err();
        assert!(e.to_string().contains(r#"got "lots""#), "{e}");
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
