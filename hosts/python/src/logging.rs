//! Host log events to the standard `logging` module.

use std::collections::HashSet;

use linear_oauth_host as host;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};

use crate::errors::to_py_err;

/// Sends host log events to `logging.getLogger("linear_oauth")`, fields in `extra`.
/// `logging` is imported on the first event, not at import or construction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PySink;

/// The logger and the names `extra` may not use, looked up once per process.
struct Logging {
    logger: Py<PyAny>,
    /// Attribute names of a `LogRecord` (plus the two `makeRecord` refuses).
    reserved: HashSet<String>,
}

static LOGGING: PyOnceLock<Logging> = PyOnceLock::new();

/// Prefix for a field whose name a `LogRecord` already uses.
const CLASH_PREFIX: &str = "linear_oauth_";

fn python_level(level: host::LogLevel) -> u8 {
    match level {
        host::LogLevel::Trace => 5,
        host::LogLevel::Debug => 10,
        host::LogLevel::Info => 20,
        host::LogLevel::Warn => 30,
        host::LogLevel::Error => 40,
    }
}

fn logging(py: Python<'_>) -> PyResult<&Logging> {
    LOGGING.get_or_try_init(py, || {
        let logging = py.import("logging")?;
        let logger = logging.call_method1("getLogger", ("linear_oauth",))?.unbind();
        let record = logging.getattr("LogRecord")?.call1(("", 0, "", 0, "", PyTuple::empty(py), py.None()))?;
        let names: Vec<String> = record.getattr("__dict__")?.cast_into::<PyDict>()?.keys().extract()?;
        let mut reserved: HashSet<String> = names.into_iter().collect();
        reserved.extend(["message".to_owned(), "asctime".to_owned()]);
        Ok::<_, PyErr>(Logging { logger, reserved })
    })
}

impl PySink {
    fn emit(self, py: Python<'_>, level: host::LogLevel, message: &str, fields: &[(String, String)]) -> PyResult<()> {
        let Logging { logger, reserved } = logging(py)?;
        let level = python_level(level);
        let logger = logger.bind(py);
        if !logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
            return Ok(());
        }
        let extra = PyDict::new(py);
        for (k, v) in fields {
            if reserved.contains(k) || k.starts_with(CLASH_PREFIX) {
                extra.set_item(format!("{CLASH_PREFIX}{k}"), v)?;
            } else {
                extra.set_item(k, v)?;
            }
        }
        let kwargs = PyDict::new(py);
        kwargs.set_item("extra", extra)?;
        logger.call_method("log", (level, message), Some(&kwargs))?;
        Ok(())
    }
}

impl host::LogSink for PySink {
    fn log(&self, level: host::LogLevel, message: &str, fields: &[(String, String)]) {
        // During interpreter shutdown there is nobody left to tell.
        let _ = Python::try_attach(|py| {
            if let Err(e) = self.emit(py, level, message, fields) {
                e.write_unraisable(py, None);
            }
        });
    }
}

/// Test hook: one event through the same sink the resolver uses.
#[pyfunction]
#[pyo3(name = "_emit_log")]
pub(crate) fn emit_log(py: Python<'_>, level: &str, message: &str, fields: Vec<(String, String)>) -> PyResult<()> {
    let level: host::LogLevel = level.parse().map_err(|e: host::UnknownLogLevel| to_py_err(py, e.into()))?;
    PySink.emit(py, level, message, &fields)
}
