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
