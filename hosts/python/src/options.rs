//! Keyword arguments to host options, through the host's table.

use linear_oauth_host as host;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt};

use crate::errors::to_py_err;

/// Test hook: the host's options table as Python keywords: (name, kind,
/// default as text or None).
#[pyfunction]
#[pyo3(name = "_settings")]
pub(crate) fn settings() -> Vec<(String, &'static str, Option<String>)> {
    host::SETTINGS.iter().map(|s| (s.python_name(), s.kind.name(), s.default_text())).collect()
}

/// Test hook: the host's metrics table: (name, kind, unit, help).
#[pyfunction]
#[pyo3(name = "_metrics_table")]
pub(crate) fn metrics_table() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    host::METRICS
        .iter()
        .map(|m| {
            let kind = if m.kind == host::MetricKind::Counter { "counter" } else { "timing" };
            (m.name, kind, m.unit, m.help)
        })
        .collect()
}

/// Keyword arguments over the defaults, each through the host's table and
/// its one validator (under the keyword's name). `None` means the default.
pub(crate) fn options_from_kwargs(py: Python<'_>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<host::Options> {
    let mut options = host::Options::default();
    for (key, value) in kwargs.into_iter().flatten() {
        let name: String = key.extract()?;
        let setting = host::SETTINGS
            .iter()
            .find(|s| s.python_name() == name)
            .ok_or_else(|| PyTypeError::new_err(format!("Resolver() got an unexpected keyword argument '{name}'")))?;
        if value.is_none() {
            continue;
        }
        let wrong_type = |want: &str| PyTypeError::new_err(format!("{name} must be {want}"));
        let value = match setting.kind {
            host::SettingKind::Text { .. } => {
                host::SettingValue::Text(value.extract().map_err(|_| wrong_type("a str"))?)
            }
            host::SettingKind::Seconds { .. } => {
                host::SettingValue::Number(value.extract().map_err(|_| wrong_type("a number of seconds"))?)
            }
            host::SettingKind::Flag => {
                if !value.is_instance_of::<PyBool>() {
                    return Err(wrong_type("a bool"));
                }
                host::SettingValue::Bool(value.extract()?)
            }
            host::SettingKind::Bytes | host::SettingKind::Count => {
                if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
                    return Err(wrong_type("an int"));
                }
                // Out-of-range ints (even beyond 64 bits) get the table's message.
                host::SettingValue::Number(value.extract()?)
            }
        };
        options.set(&name, value).map_err(|e| to_py_err(py, e))?;
    }
    Ok(options)
}
