//! The machinery behind [`SETTINGS`](crate::SETTINGS): each option's kind,
//! its spellings in every binding, and the one check per kind that turns what
//! a user gave (text from the environment or a flag, a number from Python or
//! Node) into the field's value, so every host accepts and refuses the same
//! values with the same message.

use std::time::Duration;

use crate::{Error, Lifetime, Options, SETTINGS};

/// The type of a [`Setting`]'s value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    /// A string; `optional` ones default to unset.
    Text { optional: bool },
    /// Seconds (a float); `zero` when zero is a meaningful value (up to 30
    /// days), else more than zero (up to a day).
    Seconds { zero: bool },
    /// A byte count (an integer).
    Bytes,
    /// A count of entries (an integer, at least 1).
    Count,
    /// On or off: a boolean, or text `1`/`true`/`yes`/`on`, `0`/`false`/`no`/`off`.
    Flag,
}

impl SettingKind {
    /// `text`, `seconds` or `bytes`: the kind as the bindings' tables name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Seconds { .. } => "seconds",
            Self::Bytes => "bytes",
            Self::Count => "count",
            Self::Flag => "flag",
        }
    }
}

/// A value as a binding received it: text (environment, CLI flags, Python
/// `str`, JS `string`) or a number (Python `float`/`int`, JS `number`).
#[derive(Debug, Clone, PartialEq)]
pub enum SettingValue {
    Text(String),
    Number(f64),
    Bool(bool),
}

impl From<bool> for SettingValue {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<String> for SettingValue {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<&str> for SettingValue {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

impl From<f64> for SettingValue {
    fn from(n: f64) -> Self {
        Self::Number(n)
    }
}

type Setter = fn(&mut Options, SettingKind, &str, SettingValue) -> Result<(), Error>;

/// One user-facing option: everything a binding needs to read, check and
/// document it. Made by `options!` (see `options.rs`).
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The `Options` field.
    pub field: &'static str,
    pub kind: SettingKind,
    pub env_var: Option<&'static str>,
    pub doc: &'static str,
    pub(crate) set: Setter,
    pub(crate) get: fn(&Options) -> Option<String>,
    pub(crate) check: fn(&Options, SettingKind, &str) -> Result<(), Error>,
}

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
            SettingKind::Seconds { .. } => format!("{}_s", self.field),
            _ => self.field.to_owned(),
        }
    }

    /// Node's option: camelCase, with `Seconds` for seconds.
    pub fn node_name(&self) -> String {
        let camel = camel_case(self.field);
        match self.kind {
            SettingKind::Seconds { .. } => camel + "Seconds",
            _ => camel,
        }
    }

    /// The CLI's global flag, without the dashes (`http-timeout-s`).
    pub fn cli_flag(&self) -> String {
        self.python_name().replace('_', "-")
    }

    /// The default as documentation shows it (`None`: unset).
    pub fn default_text(&self) -> Option<String> {
        // Depends on the environment; see `default_store`.
        if self.field == "store" {
            return Some("file:$XDG_DATA_HOME/linear-oauth".into());
        }
        (self.get)(&Options::default())
    }

    /// Its value in `o` as text (`None`: unset).
    pub fn value(&self, o: &Options) -> Option<String> {
        (self.get)(o)
    }

    /// Sets it in `o`, checked; `label` is the caller's spelling of the
    /// option (`--http-timeout-s`, `httpTimeoutSeconds`, ...), which
    /// messages name. A refused value changes nothing.
    pub fn apply(&self, o: &mut Options, label: &str, value: SettingValue) -> Result<(), Error> {
        (self.set)(o, self.kind, label, value)
    }

    /// The same check for an `Options` built by hand, under the field's name.
    pub(crate) fn check(&self, o: &Options) -> Result<(), Error> {
        (self.check)(o, self.kind, self.field)
    }
}

/// A field type a setting can hold: how a value a user gave becomes one, how
/// it is shown, and how one set by hand is checked.
pub(crate) trait SettingField: Sized {
    fn take(kind: SettingKind, label: &str, value: SettingValue) -> Result<Self, Error>;
    fn show(&self) -> Option<String>;
    fn check(&self, _kind: SettingKind, _label: &str) -> Result<(), Error> {
        Ok(())
    }
}

fn text(label: &str, value: SettingValue) -> Result<String, Error> {
    match value {
        SettingValue::Text(s) => Ok(s),
        SettingValue::Number(_) => Err(Error::InvalidInput(format!("{label} must be a string, got a number"))),
        SettingValue::Bool(_) => Err(Error::InvalidInput(format!("{label} must be a string, got a boolean"))),
    }
}

/// On/off options (`metrics_emf`).
impl SettingField for bool {
    fn take(_: SettingKind, label: &str, value: SettingValue) -> Result<Self, Error> {
        match value {
            SettingValue::Bool(b) => Ok(b),
            SettingValue::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(Error::InvalidInput(format!("{label} must be true or false (or 1 or 0), got {t:?}"))),
            },
            SettingValue::Number(n) => Err(Error::InvalidInput(format!("{label} must be true or false, got {n}"))),
        }
    }
    fn show(&self) -> Option<String> {
        Some(self.to_string())
    }
}

impl SettingField for String {
    fn take(_: SettingKind, label: &str, value: SettingValue) -> Result<Self, Error> {
        text(label, value)
    }
    fn show(&self) -> Option<String> {
        Some(self.clone())
    }
}

impl SettingField for Option<String> {
    fn take(_: SettingKind, label: &str, value: SettingValue) -> Result<Self, Error> {
        text(label, value).map(Some)
    }
    fn show(&self) -> Option<String> {
        self.clone()
    }
}

impl SettingField for Option<Lifetime> {
    fn take(_: SettingKind, label: &str, value: SettingValue) -> Result<Self, Error> {
        Lifetime::parse(label, &text(label, value)?).map(Some)
    }
    fn show(&self) -> Option<String> {
        self.map(|l| l.as_str().to_owned())
    }
}

/// A number, or text that should be one; with how to quote what was given
/// (text as typed: a non-number gets the same message as an out-of-range one).
fn number(value: &SettingValue) -> (f64, String) {
    match value {
        SettingValue::Number(n) => (*n, n.to_string()),
        SettingValue::Bool(b) => (f64::NAN, b.to_string()),
        SettingValue::Text(raw) => (raw.trim().parse().unwrap_or(f64::NAN), format!("{raw:?}")),
    }
}

impl SettingField for Duration {
    fn take(kind: SettingKind, label: &str, value: SettingValue) -> Result<Self, Error> {
        let SettingKind::Seconds { zero } = kind else { return Err(not_a(label, "duration")) };
        let (secs, given) = number(&value);
        seconds_or(label, secs, zero, max_seconds(zero), &given)
    }
    fn show(&self) -> Option<String> {
        Some(format_seconds(*self))
    }
    fn check(&self, kind: SettingKind, label: &str) -> Result<(), Error> {
        let SettingKind::Seconds { zero } = kind else { return Ok(()) };
        if (self.is_zero() && !zero) || *self > max_seconds(zero) {
            let range = range_text(zero, max_seconds(zero));
            return Err(Error::InvalidInput(format!("{label} {range}, got {} s", self.as_secs_f64())));
        }
        Ok(())
    }
}

/// Byte counts (`max_memory_bytes`) and entry counts (`cache_max_entries`).
impl SettingField for usize {
    fn take(kind: SettingKind, label: &str, value: SettingValue) -> Result<Self, Error> {
        match kind {
            SettingKind::Bytes => {}
            SettingKind::Count => {
                let (n, given) = number(&value);
                return whole_count(n)
                    .filter(|c| (1..=MAX_ENTRIES).contains(c))
                    .ok_or_else(|| count_error(label, &given));
            }
            _ => return Err(not_a(label, "byte count")),
        }
        let (n, given) = number(&value);
        let whole = n.is_finite() && n.fract() == 0.0 && n >= 0.0 && n <= MAX_MEMORY_BYTES as f64;
        if !whole {
            return Err(Error::InvalidInput(format!(
                "{label} must be a whole number of bytes from {MIN_MEMORY_BYTES} to {MAX_MEMORY_BYTES}, got {given}"
            )));
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let bytes = n as usize;
        check_memory(label, bytes, &given)?;
        Ok(bytes)
    }
    fn show(&self) -> Option<String> {
        Some(self.to_string())
    }
    fn check(&self, kind: SettingKind, label: &str) -> Result<(), Error> {
        match kind {
            SettingKind::Count if !(1..=MAX_ENTRIES).contains(self) => Err(count_error(label, &self.to_string())),
            SettingKind::Count => Ok(()),
            _ => check_memory(label, *self, &self.to_string()),
        }
    }
}

/// `n` if it is a whole number a `usize` holds.
fn whole_count(n: f64) -> Option<usize> {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (n.is_finite() && n.fract() == 0.0 && n >= 0.0 && n <= MAX_ENTRIES as f64).then_some(n as usize)
}

fn count_error(label: &str, given: &str) -> Error {
    Error::InvalidInput(format!("{label} must be a whole number from 1 to {MAX_ENTRIES}, got {given}"))
}

fn check_memory(label: &str, bytes: usize, given: &str) -> Result<(), Error> {
    if !(MIN_MEMORY_BYTES..=MAX_MEMORY_BYTES).contains(&bytes) {
        return Err(Error::InvalidInput(format!(
            "{label} must be from {MIN_MEMORY_BYTES} (the component needs a few MiB) to {MAX_MEMORY_BYTES}, got {given}"
        )));
    }
    Ok(())
}

fn not_a(label: &str, what: &str) -> Error {
    Error::InvalidInput(format!("{label} is not a {what} option"))
}

/// Far above any fleet (`cache_max_entries`).
const MAX_ENTRIES: usize = 10_000_000;

/// Below this the component cannot even be instantiated.
const MIN_MEMORY_BYTES: usize = 4 << 20;
/// Far above what a token needs; below what a 32-bit host could map.
const MAX_MEMORY_BYTES: usize = 1 << 30;

const DAY: Duration = Duration::from_secs(86_400);
const MONTH: Duration = Duration::from_secs(30 * 86_400);

/// Options where zero means something (off, or "only once expired") go up
/// to 30 days; the others, which zero would break, up to a day.
fn max_seconds(zero: bool) -> Duration {
    if zero {
        MONTH
    } else {
        DAY
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
    seconds_or(label, secs, allow_zero, max, &secs.to_string())
}

/// [`checked_seconds`], quoting the value as `given`.
fn seconds_or(label: &str, secs: f64, allow_zero: bool, max: Duration, given: &str) -> Result<Duration, Error> {
    let ok = secs.is_finite() && secs >= 0.0 && (allow_zero || secs > 0.0) && secs <= max.as_secs_f64();
    let d = ok.then(|| Duration::try_from_secs_f64(secs).ok()).flatten();
    // A positive value below a nanosecond would round to zero.
    match d {
        Some(d) if allow_zero || !d.is_zero() => Ok(d),
        _ => Err(Error::InvalidInput(format!("{label} {}, got {given}", range_text(allow_zero, max)))),
    }
}

/// `http_timeout` -> `httpTimeout`.
pub fn camel_case(snake: &str) -> String {
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
pub(crate) fn format_seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(name: &str, secs: f64) -> Result<Duration, Error> {
        let s = Setting::find(name).unwrap();
        let mut o = Options::default();
        s.apply(&mut o, name, secs.into())?;
        Ok(Duration::from_secs_f64(s.value(&o).unwrap().parse().unwrap()))
    }

    #[test]
    fn seconds_refuses_overflow_nan_negative_and_zero_where_meaningless() {
        for bad in [1e20, 1e300, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, -1.0, -0.0001, 86_400.5, 1e-12] {
            let e = seconds("LINEAR_OAUTH_HTTP_TIMEOUT_S", bad).unwrap_err();
            let Error::InvalidInput(m) = e else { panic!("{bad}: {e:?}") };
            assert!(m.contains("LINEAR_OAUTH_HTTP_TIMEOUT_S") && m.contains("> 0 and <= 86400"), "{m}");
        }
        assert!(seconds("http_timeout", 0.0).is_err());
        assert_eq!(seconds("http_timeout", 2.5).unwrap(), Duration::from_millis(2500));
        assert_eq!(seconds("LINEAR_OAUTH_CACHE_TTL_S", 0.0).unwrap(), Duration::ZERO);
        assert_eq!(seconds("refresh_threshold", 0.0).unwrap(), Duration::ZERO);
        assert_eq!(seconds("cache_ttl", 30.0 * 86_400.0).unwrap(), MONTH);
        assert!(seconds("cache_ttl", 30.0 * 86_400.0 + 1.0).is_err());
        for zero_is_meaningless in ["lease_ttl", "LINEAR_OAUTH_LEASE_WAIT_S", "call_deadline"] {
            assert!(seconds(zero_is_meaningless, 0.0).is_err(), "{zero_is_meaningless}");
        }
        let e = Options::default().set("nope", 1.0).unwrap_err();
        assert!(matches!(&e, Error::InvalidInput(m) if m.contains("nope")), "{e:?}");
        let e = seconds("leaseTtlSeconds", 1e300).unwrap_err();
        assert!(e.to_string().contains("leaseTtlSeconds"), "{e}");
    }

    #[test]
    fn binding_spellings() {
        let http = Setting::find("http_timeout").unwrap();
        assert_eq!(http.python_name(), "http_timeout_s");
        assert_eq!(http.node_name(), "httpTimeoutSeconds");
        assert_eq!(http.cli_flag(), "http-timeout-s");
        assert_eq!(http.default_text().as_deref(), Some("5"));
        assert_eq!(http.kind.name(), "seconds");
        assert_eq!(Setting::find("refreshThresholdSeconds").unwrap().field, "refresh_threshold");
        let table = Setting::find("LINEAR_OAUTH_REGISTRY_TABLE").unwrap();
        assert_eq!(
            (table.node_name(), table.cli_flag(), table.default_text(), table.kind.name()),
            ("registryTable".into(), "registry-table".into(), None, "text")
        );
        assert_eq!(Setting::find("maxMemoryBytes").unwrap().python_name(), "max_memory_bytes");
        assert_eq!(
            Setting::find("secret_prefix").unwrap().default_text().as_deref(),
            Some(linear_oauth_core::DEFAULT_SECRET_PREFIX)
        );
        assert_eq!(Setting::find("lease_wait").unwrap().default_text().as_deref(), Some("30"));
        let mut o = Options::default();
        o.set("cacheTtlSeconds", 7.0).unwrap();
        assert_eq!(o.cache_ttl, Duration::from_secs(7));
        assert_eq!(camel_case("max_memory_bytes"), "maxMemoryBytes");
    }

    #[test]
    fn flags_take_booleans_and_their_usual_spellings() {
        let mut o = Options::default();
        assert!(!o.metrics_emf);
        o.set("LINEAR_OAUTH_METRICS_EMF", "1").unwrap();
        assert!(o.metrics_emf);
        o.set("metricsEmf", false).unwrap();
        assert!(!o.metrics_emf);
        o.set("metrics_emf", "On").unwrap();
        assert!(o.metrics_emf);
        for bad in [SettingValue::from("maybe"), SettingValue::from(1.0)] {
            let e = o.set("metricsByWorkspace", bad).unwrap_err();
            assert!(matches!(&e, Error::InvalidInput(m) if m.contains("metricsByWorkspace")), "{e:?}");
        }
        assert_eq!(Setting::find("metrics_emf").unwrap().default_text().as_deref(), Some("false"));
    }

    #[test]
    fn counts_are_whole_numbers_from_one() {
        let mut o = Options::default();
        o.set("LINEAR_OAUTH_CACHE_MAX_ENTRIES", "250").unwrap();
        assert_eq!(o.cache_max_entries, 250);
        for bad in ["0", "-1", "2.5", "1e9", "many", ""] {
            let e = o.set("LINEAR_OAUTH_CACHE_MAX_ENTRIES", bad).unwrap_err();
            let Error::InvalidInput(m) = &e else { panic!("{bad}: {e:?}") };
            assert!(m.contains("LINEAR_OAUTH_CACHE_MAX_ENTRIES") && m.contains("from 1 to 10000000"), "{m}");
        }
        assert_eq!(o.cache_max_entries, 250, "a refused value changes nothing");
        o.set("cacheMaxEntries", 9.0).unwrap();
        assert_eq!(o.cache_max_entries, 9);
    }

    /// Every setting reads and writes its own field, has an environment
    /// variable and one doc line, and every spelling names one setting.
    #[test]
    fn every_setting_reads_and_writes_its_own_field() {
        for s in &SETTINGS {
            let mut o = Options::default();
            let value: SettingValue = match s.kind {
                SettingKind::Text { .. } if s.field == "lifetime" => "invocation".into(),
                SettingKind::Text { .. } => format!("set-{}", s.field).into(),
                SettingKind::Seconds { .. } => 7.5.into(),
                SettingKind::Bytes => 8_388_608.0.into(),
                SettingKind::Count => 77.0.into(),
                SettingKind::Flag => "true".into(),
            };
            s.apply(&mut o, s.field, value.clone()).unwrap();
            let shown = s.value(&o).unwrap();
            assert_eq!(SettingValue::from(shown.as_str()), value.clone().into_text(), "{}", s.field);
            let changed: Vec<_> =
                SETTINGS.iter().filter(|t| t.value(&o) != t.default_text()).map(|t| t.field).collect();
            let expected: &[&str] = if s.field == "store" { &["store"] } else { &["store", s.field] };
            assert_eq!(changed, expected, "{} sets only its own field", s.field);
            assert_eq!(s.default_text().is_none(), s.kind == SettingKind::Text { optional: true }, "{}", s.field);
            assert!(!s.doc.is_empty() && !s.doc.starts_with(' '), "{}", s.field);
            for name in [s.field.to_owned(), s.python_name(), s.node_name(), s.env_var.unwrap().to_owned()] {
                assert_eq!(Setting::find(&name).map(|f| f.field), Some(s.field), "{name} names another setting");
            }
        }
    }

    impl SettingValue {
        fn into_text(self) -> Self {
            match self {
                Self::Number(n) => Self::Text(n.to_string()),
                t => t,
            }
        }
    }

    #[test]
    fn numbers_are_checked_for_every_kind() {
        let mut o = Options::default();
        let bytes = Setting::find("max_memory_bytes").unwrap();
        bytes.apply(&mut o, "maxMemoryBytes", 8_388_608.0.into()).unwrap();
        assert_eq!(o.max_memory_bytes, 8 << 20);
        for bad in [-1.0, 1.5, 1e300, f64::NAN, 1024.0] {
            let e = bytes.apply(&mut o, "maxMemoryBytes", bad.into()).unwrap_err();
            assert!(matches!(&e, Error::InvalidInput(m) if m.contains("maxMemoryBytes")), "{bad}: {e:?}");
        }
        assert_eq!(o.max_memory_bytes, 8 << 20, "a refused value changes nothing");
        let store = Setting::find("store").unwrap();
        assert!(store.apply(&mut o, "store", 1.0.into()).is_err());
        store.apply(&mut o, "LINEAR_OAUTH_STORE", "memory:".into()).unwrap();
        assert_eq!(o.store, "memory:");
        let e = bytes.apply(&mut o, "LINEAR_OAUTH_MAX_MEMORY_BYTES", "lots".into()).unwrap_err();
        assert!(e.to_string().contains(r#"got "lots""#), "{e}");
        let e = bytes.apply(&mut o, "--max-memory-bytes", "1000".into()).unwrap_err();
        assert!(e.to_string().contains(r#"--max-memory-bytes must be from 4194304"#), "{e}");
        assert!(e.to_string().ends_with(r#"got "1000""#), "{e}");
    }
}
