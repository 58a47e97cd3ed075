//! Where the component's structured log lines go.

use std::fmt;

use crate::bindings;
use wasmtime::component::HasData;

/// Severity, as the WIT `log.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// A level name no binding knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLogLevel(pub String);

impl fmt::Display for UnknownLogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown log level {:?}", self.0)
    }
}

impl From<UnknownLogLevel> for crate::Error {
    fn from(e: UnknownLogLevel) -> Self {
        Self::InvalidInput(e.to_string())
    }
}

/// `trace`, `debug`, `info`, `warn` or `error`, as every binding spells them.
impl std::str::FromStr for LogLevel {
    type Err = UnknownLogLevel;

    fn from_str(s: &str) -> Result<Self, UnknownLogLevel> {
        [Self::Trace, Self::Debug, Self::Info, Self::Warn, Self::Error]
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| UnknownLogLevel(s.to_owned()))
    }
}

/// Receives one structured event. Field values never carry secrets.
pub trait LogSink: Send + Sync + fmt::Debug {
    fn log(&self, level: LogLevel, message: &str, fields: &[(String, String)]);
}

/// The default sink: `tracing` events with target `linear_oauth`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingSink;

impl LogSink for TracingSink {
    fn log(&self, level: LogLevel, message: &str, fields: &[(String, String)]) {
        let fields = fields.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
        match level {
            LogLevel::Trace => tracing::trace!(target: "linear_oauth", %fields, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "linear_oauth", %fields, "{message}"),
            LogLevel::Info => tracing::info!(target: "linear_oauth", %fields, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "linear_oauth", %fields, "{message}"),
            LogLevel::Error => tracing::error!(target: "linear_oauth", %fields, "{message}"),
        }
    }
}

/// What the `log` import needs of an instance's state: its sink.
pub(crate) struct LogView<'a>(pub &'a dyn LogSink);

/// `HasData` for `add_to_linker`: the import sees a [`LogView`].
pub(crate) struct Log;

impl HasData for Log {
    type Data<'a> = LogView<'a>;
}

/// The component's `log` import: events go to the resolver's sink.
impl bindings::log::Host for LogView<'_> {
    fn log(&mut self, level: bindings::log::Level, message: String, fields: Vec<(String, String)>) {
        use bindings::log::Level as L;
        let level = match level {
            L::Trace => LogLevel::Trace,
            L::Debug => LogLevel::Debug,
            L::Info => LogLevel::Info,
            L::Warn => LogLevel::Warn,
            L::Error => LogLevel::Error,
        };
        self.0.log(level, &message, &fields);
    }
}
