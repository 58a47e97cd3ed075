//! `linear_oauth._native`: the Python face of `linear-oauth-host`.
//!
//! Only translation lives here: Python arguments to host options
//! (`options`), host results to Python objects (`records`), host errors to
//! one exception hierarchy (`errors`), host log events to the standard
//! `logging` module (`logging`), and the resolver's calls with Python's
//! calling conventions: the GIL released around I/O, asyncio futures
//! (`resolver`). Protocol, schema, caching and refresh decisions stay in the
//! host and its component.

mod errors;
mod logging;
mod options;
mod records;
mod resolver;

use pyo3::prelude::*;

/// `__module__` of every public type: users see `linear_oauth.Resolver`.
const MODULE: &str = "linear_oauth";

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<resolver::PyResolver>()?;
    m.add_class::<records::PyResolvedToken>()?;
    m.add_class::<records::PyLoadInfo>()?;
    m.add_class::<records::PyRevocation>()?;
    m.add_class::<records::PyInstalled>()?;
    m.add_class::<records::PyWebhookEvent>()?;
    m.add_function(wrap_pyfunction!(records::load_info, m)?)?;
    // Private helpers: attributes of the module, but not in its `__all__`.
    m.setattr("_emit_log", wrap_pyfunction!(logging::emit_log, m)?)?;
    m.setattr("_complete_future", wrap_pyfunction!(resolver::complete_future, m)?)?;
    m.setattr("_error_kinds", wrap_pyfunction!(errors::error_kinds, m)?)?;
    m.setattr("_settings", wrap_pyfunction!(options::settings, m)?)?;
    m.setattr("_metrics_table", wrap_pyfunction!(options::metrics_table, m)?)?;
    errors::add_to(m)
}
