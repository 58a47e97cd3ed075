//! `linear_oauth._native`: the Python face of `linear-oauth-host`.
//!
//! Only translation lives here: Python arguments to host options, host
//! results to Python objects, host errors to one exception hierarchy (in
//! [`to_py_err`]), host log events to the standard `logging` module. Protocol,
//! schema, caching and refresh decisions stay in the host and its component.
//!
//! GIL discipline: every call that may do I/O runs inside `py.detach`; the
//! cached fast path (a map lookup and a clock comparison in the host) does not
//! bother. Log events raised during a detached call re-attach to reach
//! `logging`, which is safe because no host lock is held across a Python call
//! on the attached side.

use std::collections::HashSet;
use std::sync::Arc;

use linear_oauth_host as host;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyInt, PyString, PyTuple, PyType};

/// `__module__` of every public type: users see `linear_oauth.Resolver`.
const MODULE: &str = "linear_oauth";

// ---------------------------------------------------------------------------
// Exceptions
// ---------------------------------------------------------------------------

/// The exception classes, created once per process at module init: the base
/// class, then one per row of the host's `ERROR_KINDS`, in its order.
struct ErrorTypes {
    base: Py<PyType>,
    kinds: Vec<Py<PyType>>,
}

impl ErrorTypes {
    fn of(&self, e: &host::Error) -> &Py<PyType> {
        let i = host::ERROR_KINDS.iter().position(|k| k == e.kind()).expect("every kind is in the table");
        &self.kinds[i]
    }
}

static ERROR_TYPES: PyOnceLock<ErrorTypes> = PyOnceLock::new();

/// `type(name, bases, namespace)`: plain Python exception classes, so that
/// `InvalidInput` can derive from both `LinearOAuthError` and `ValueError`.
fn new_exception<'py>(
    py: Python<'py>,
    name: &str,
    bases: Bound<'py, PyTuple>,
    doc: &str,
    class_attrs: &[(&str, Bound<'py, PyAny>)],
) -> PyResult<Py<PyType>> {
    let ns = PyDict::new(py);
    ns.set_item("__module__", MODULE)?;
    ns.set_item("__qualname__", name)?;
    ns.set_item("__doc__", doc)?;
    for (k, v) in class_attrs {
        ns.set_item(k, v)?;
    }
    let ty = py.get_type::<PyType>().call1((name, bases, ns))?;
    Ok(ty.cast_into::<PyType>()?.unbind())
}

/// Class attributes and their class-level defaults.
type Attributes<'py> = Vec<(&'static str, Bound<'py, PyAny>)>;

/// What Python adds to a kind's class: attributes (with their class-level
/// defaults, named in the docstring) and, for `InvalidInput`, `ValueError`.
fn python_extras<'py>(py: Python<'py>, code: &str) -> PyResult<(Attributes<'py>, &'static str)> {
    let none = || py.None().into_bound(py);
    let endpoint = || -> PyResult<Attributes<'py>> {
        Ok(vec![("status", 0u16.into_pyobject(py)?.into_any()), ("error", none()), ("description", none())])
    };
    Ok(match code {
        "INVALID_STORED_TOKEN" => (
            vec![("invalid_fields", PyTuple::empty(py).into_any()), ("missing_fields", PyTuple::empty(py).into_any())],
            " `invalid_fields` names them (`missing_fields` is its old name).",
        ),
        "TOKEN_ENDPOINT" => (
            [endpoint()?, vec![("retry_after", none())]].concat(),
            " `status` (HTTP), `error` (OAuth error code or None), `description` (or None), `retry_after` \
             (seconds Linear asked to wait with Retry-After, or None).",
        ),
        "AUTHORIZATION" => (endpoint()?, " `status`, `error`, `description` as for TokenEndpointError."),
        "INVALID_INPUT" => (vec![], " Also a ValueError."),
        _ => (vec![], ""),
    })
}

fn error_types(py: Python<'_>) -> PyResult<&ErrorTypes> {
    ERROR_TYPES.get_or_try_init(py, || {
        let exception = py.get_type::<pyo3::exceptions::PyException>();
        let base = new_exception(
            py,
            "LinearOAuthError",
            PyTuple::new(py, [exception])?,
            "Base class of every linear_oauth error. `code` is a stable machine-readable name \
             (e.g. 'REVOKED'); messages never contain secrets.",
            &[("code", PyString::new(py, "").into_any())],
        )?;
        let kinds = host::ERROR_KINDS
            .iter()
            .map(|k| {
                let (extra, doc_tail) = python_extras(py, k.code)?;
                let mut attrs = vec![("code", PyString::new(py, k.code).into_any())];
                attrs.extend(extra);
                let mut bases = vec![base.bind(py).clone()];
                if k.code == "INVALID_INPUT" {
                    bases.push(py.get_type::<PyValueError>());
                }
                new_exception(py, k.python_class, PyTuple::new(py, bases)?, &format!("{}{doc_tail}", k.doc), &attrs)
            })
            .collect::<PyResult<_>>()?;
        Ok::<_, PyErr>(ErrorTypes { base, kinds })
    })
}

/// Test hook: the host's error table as `(code, python_class, exit_code)`.
#[pyfunction]
#[pyo3(name = "_error_kinds")]
fn error_kinds() -> Vec<(&'static str, &'static str, u8)> {
    host::ERROR_KINDS.iter().map(|k| (k.code, k.python_class, k.exit_code)).collect()
}

/// The one place where host errors become Python exceptions.
fn to_py_err(py: Python<'_>, e: host::Error) -> PyErr {
    match exception_for(py, &e) {
        Ok(exc) => PyErr::from_value(exc),
        Err(failed) => failed,
    }
}

fn exception_for<'py>(py: Python<'py>, e: &host::Error) -> PyResult<Bound<'py, PyAny>> {
    use host::Error as E;
    let mut attrs: Vec<(&str, Bound<'py, PyAny>)> = Vec::new();
    let mut endpoint = |status: &u16, code: &Option<String>, description: &Option<String>| -> PyResult<()> {
        attrs.push(("status", status.into_pyobject(py)?.into_any()));
        attrs.push(("error", code.as_deref().into_pyobject(py)?.into_any()));
        attrs.push(("description", description.as_deref().into_pyobject(py)?.into_any()));
        Ok(())
    };
    match e {
        E::InvalidStoredToken(fields) => {
            attrs.push(("invalid_fields", PyTuple::new(py, fields)?.into_any()));
            // The old name, kept for callers written against 0.1 betas.
            attrs.push(("missing_fields", PyTuple::new(py, fields)?.into_any()));
        }
        E::TokenEndpoint { status, code, description, retry_after } => {
            endpoint(status, code, description)?;
            attrs.push(("retry_after", retry_after.map(|d| d.as_secs_f64()).into_pyobject(py)?.into_any()));
        }
        E::Authorization { status, code, description } => endpoint(status, code, description)?,
        _ => {}
    }
    let exc = error_types(py)?.of(e).bind(py).call1((e.to_string(),))?;
    for (k, v) in attrs {
        exc.setattr(k, v)?;
    }
    Ok(exc)
}

fn invalid_input(py: Python<'_>, message: String) -> PyErr {
    to_py_err(py, host::Error::InvalidInput(message))
}

// ---------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------

/// Sends host log events to `logging.getLogger("linear_oauth")`, fields in `extra`.
/// `logging` is imported on the first event, not at import or construction.
#[derive(Debug, Clone, Copy)]
struct PySink;

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
fn emit_log(py: Python<'_>, level: &str, message: &str, fields: Vec<(String, String)>) -> PyResult<()> {
    let level = match level {
        "trace" => host::LogLevel::Trace,
        "debug" => host::LogLevel::Debug,
        "info" => host::LogLevel::Info,
        "warn" => host::LogLevel::Warn,
        "error" => host::LogLevel::Error,
        other => return Err(invalid_input(py, format!("unknown log level {other:?}"))),
    };
    PySink.emit(py, level, message, &fields)
}

// ---------------------------------------------------------------------------
// ResolvedToken, LoadInfo
// ---------------------------------------------------------------------------

/// A Linear access token that may be used now. `repr()` never shows the token.
#[pyclass(module = "linear_oauth", name = "ResolvedToken", frozen)]
struct PyResolvedToken(Arc<host::ResolvedToken>);

fn pyrepr(py: Python<'_>, s: &str) -> PyResult<String> {
    Ok(PyString::new(py, s).repr()?.to_str()?.to_owned())
}

#[pymethods]
impl PyResolvedToken {
    /// The bearer token for Linear's API.
    #[getter]
    fn access_token(&self) -> &str {
        self.0.access_token.secret()
    }

    /// Space-separated scopes Linear granted.
    #[getter]
    fn scope(&self) -> &str {
        &self.0.scope
    }

    #[getter]
    fn workspace_slug(&self) -> &str {
        &self.0.workspace_slug
    }

    /// Linear organization id.
    #[getter]
    fn workspace_id(&self) -> &str {
        &self.0.workspace_id
    }

    /// The id of the stored token (secret name or ARN).
    #[getter]
    fn secret_id(&self) -> &str {
        &self.0.secret_id
    }

    /// ISO-8601 UTC instant.
    #[getter]
    fn expires_at(&self) -> &str {
        &self.0.expires_at
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let t = &self.0;
        Ok(format!(
            "ResolvedToken(workspace_id={}, workspace_slug={}, secret_id={}, scope={}, expires_at={}, access_token=<redacted>)",
            pyrepr(py, &t.workspace_id)?,
            pyrepr(py, &t.workspace_slug)?,
            pyrepr(py, &t.secret_id)?,
            pyrepr(py, &t.scope)?,
            pyrepr(py, &t.expires_at)?,
        ))
    }
}

/// How the embedded component was loaded in this process.
#[pyclass(module = "linear_oauth", name = "LoadInfo", frozen)]
struct PyLoadInfo(host::LoadInfo);

#[pymethods]
impl PyLoadInfo {
    /// True when the embedded precompiled component was rejected by this
    /// machine's engine and had to be compiled from wasm (slow first use).
    #[getter]
    fn compiled_fallback(&self) -> bool {
        self.0.compiled_fallback
    }

    /// Seconds spent loading the engine and component.
    #[getter]
    fn load_time_s(&self) -> f64 {
        self.0.load_time.as_secs_f64()
    }

    fn __repr__(&self) -> String {
        let fallback = if self.0.compiled_fallback { "True" } else { "False" };
        format!("LoadInfo(compiled_fallback={fallback}, load_time_s={:.6})", self.0.load_time.as_secs_f64())
    }
}

/// What `Resolver.revoke` did. The workspace is marked revoked whatever the
/// outcome; `confirmed` says whether Linear's side of the grant is known dead.
#[pyclass(module = "linear_oauth", name = "Revocation", frozen)]
struct PyRevocation(host::Revocation);

#[pymethods]
impl PyRevocation {
    #[getter]
    fn workspace_id(&self) -> &str {
        &self.0.workspace_id
    }
    #[getter]
    fn secret_id(&self) -> &str {
        &self.0.secret_id
    }
    /// `"revoked"`, `"already-dead"`, `"not-confirmed"` or `"failed"`.
    #[getter]
    fn outcome(&self) -> &'static str {
        self.0.outcome.label()
    }
    /// True for `revoked` and `already-dead`; otherwise remove the app's
    /// authorization in Linear's workspace settings.
    #[getter]
    fn confirmed(&self) -> bool {
        self.0.outcome.confirmed()
    }
    /// What was tried, for `not-confirmed` and `failed` (never a secret).
    #[getter]
    fn detail(&self) -> Option<&str> {
        self.0.outcome.detail()
    }
    /// The last HTTP status of Linear's revoke endpoint, if it answered.
    #[getter]
    fn linear_status(&self) -> Option<u16> {
        self.0.linear_status
    }
    #[getter]
    fn purged(&self) -> bool {
        self.0.purged
    }
    fn __repr__(&self) -> String {
        format!(
            "Revocation(workspace_id={:?}, secret_id={:?}, outcome={:?}, linear_status={:?}, purged={})",
            self.0.workspace_id,
            self.0.secret_id,
            self.0.outcome.label(),
            self.0.linear_status,
            if self.0.purged { "True" } else { "False" }
        )
    }
}

/// Loads the engine and component if needed and tells how that went.
#[pyfunction]
fn load_info(py: Python<'_>) -> PyResult<PyLoadInfo> {
    py.detach(host::Resolver::load_info).map(PyLoadInfo).map_err(|e| to_py_err(py, e))
}

// ---------------------------------------------------------------------------
// Resolver
// ---------------------------------------------------------------------------

/// Resolves Linear access tokens. One instance is meant to be shared by every
/// thread of a process: concurrent resolves of one workspace cause one refresh.
#[pyclass(module = "linear_oauth", name = "Resolver", frozen)]
struct PyResolver {
    inner: host::Resolver,
}

/// Test hook: the host's options table as Python keywords: (name, kind,
/// default as text or None).
#[pyfunction]
#[pyo3(name = "_settings")]
fn settings() -> Vec<(String, &'static str, Option<String>)> {
    host::SETTINGS.iter().map(|s| (s.python_name(), kind_name(s.kind), s.default_text())).collect()
}

fn kind_name(kind: host::SettingKind) -> &'static str {
    match kind {
        host::SettingKind::Text { .. } => "text",
        host::SettingKind::Seconds(_) => "seconds",
        host::SettingKind::Bytes => "bytes",
    }
}

/// Keyword arguments over the defaults, each through the host's table and
/// its one validator (under the keyword's name). `None` means the default.
fn options_from_kwargs(py: Python<'_>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<host::Options> {
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
        match setting.kind {
            host::SettingKind::Text { .. } => {
                let text = value.extract().map_err(|_| wrong_type("a str"))?;
                setting.set_text(&mut options, &name, text).map_err(|e| to_py_err(py, e))?;
            }
            host::SettingKind::Seconds(_) => {
                let secs: f64 = value.extract().map_err(|_| wrong_type("a number of seconds"))?;
                setting.set_number(&mut options, &name, secs).map_err(|e| to_py_err(py, e))?;
            }
            host::SettingKind::Bytes => {
                if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
                    return Err(wrong_type("an int"));
                }
                // Out-of-range ints (even beyond 64 bits) get the table's message.
                let n: f64 = value.extract()?;
                setting.set_number(&mut options, &name, n).map_err(|e| to_py_err(py, e))?;
            }
        }
    }
    Ok(options)
}

/// A panic in the host becomes `InternalError` (an `Exception`), never a
/// `PanicException` (a `BaseException` that `except Exception` misses).
fn no_panic<T>(f: impl FnOnce() -> host::Result<T>) -> host::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(host::Error::Internal("the resolver panicked; this is a bug".into())))
}

/// What an install wrote (no secrets): the workspace, the app user GraphQL
/// named, the secret id and the token's scope and expiry.
#[pyclass(module = "linear_oauth", name = "Installed", frozen)]
struct PyInstalled(host::Installed);

#[pymethods]
impl PyInstalled {
    #[getter]
    fn workspace_id(&self) -> &str {
        &self.0.workspace_id
    }
    #[getter]
    fn workspace_name(&self) -> &str {
        &self.0.workspace_name
    }
    #[getter]
    fn workspace_slug(&self) -> &str {
        &self.0.workspace_slug
    }
    #[getter]
    fn viewer_id(&self) -> &str {
        &self.0.viewer_id
    }
    #[getter]
    fn viewer_name(&self) -> &str {
        &self.0.viewer_name
    }
    #[getter]
    fn viewer_email(&self) -> &str {
        &self.0.viewer_email
    }
    #[getter]
    fn secret_id(&self) -> &str {
        &self.0.secret_id
    }
    #[getter]
    fn scope(&self) -> &str {
        &self.0.scope
    }
    #[getter]
    fn expires_at(&self) -> &str {
        &self.0.expires_at
    }
    #[getter]
    fn installed_at(&self) -> &str {
        &self.0.installed_at
    }
    /// A secret for this workspace existed and was replaced.
    #[getter]
    fn replaced(&self) -> bool {
        self.0.replaced
    }
    fn __repr__(&self) -> String {
        format!(
            "Installed(workspace_id={:?}, workspace_slug={:?}, secret_id={:?}, scope={:?}, expires_at={:?})",
            self.0.workspace_id, self.0.workspace_slug, self.0.secret_id, self.0.scope, self.0.expires_at
        )
    }
}

type HostCall = fn(&host::Resolver, &str) -> host::Result<Arc<host::ResolvedToken>>;
/// The host's fast path for an id (`cached`, `cached_secret`, or none).
type CachedCall = fn(&host::Resolver, &str) -> Option<Arc<host::ResolvedToken>>;

fn uncached(_: &host::Resolver, _: &str) -> Option<Arc<host::ResolvedToken>> {
    None
}

impl PyResolver {
    fn open(py: Python<'_>, mut options: host::Options) -> PyResult<Self> {
        options.log_sink = Some(Arc::new(PySink));
        let inner = py.detach(move || no_panic(move || host::Resolver::new(options))).map_err(|e| to_py_err(py, e))?;
        Ok(Self { inner })
    }

    /// The host's fast path (with the GIL: no I/O), else one host call with
    /// the GIL released; a panic in either is `InternalError`.
    fn fast(&self, py: Python<'_>, id: &str, cached: CachedCall) -> PyResult<Option<Arc<host::ResolvedToken>>> {
        no_panic(|| Ok(cached(&self.inner, id))).map_err(|e| to_py_err(py, e))
    }

    /// The cached token, or one host call with the GIL released.
    fn call(&self, py: Python<'_>, id: &str, cached: CachedCall, slow: HostCall) -> PyResult<PyResolvedToken> {
        if let Some(t) = self.fast(py, id, cached)? {
            return Ok(PyResolvedToken(t));
        }
        py.detach(|| no_panic(|| slow(&self.inner, id))).map(PyResolvedToken).map_err(|e| to_py_err(py, e))
    }

    /// An `asyncio.Future` on the running loop. A cached token completes it
    /// at once (awaiting it does not even yield to the loop); anything else
    /// runs on a thread of its own, so a slow refresh never occupies a shared
    /// executor that resolves of other workspaces need.
    fn call_async<'py>(
        &self,
        py: Python<'py>,
        id: &str,
        cached: CachedCall,
        slow: HostCall,
    ) -> PyResult<Bound<'py, PyAny>> {
        static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let event_loop = GET_RUNNING_LOOP.import(py, "asyncio", "get_running_loop")?.call0()?;
        let future = event_loop.call_method0("create_future")?;
        if let Some(t) = self.fast(py, id, cached)? {
            future.call_method1("set_result", (PyResolvedToken(t),))?;
            return Ok(future);
        }
        let inner = self.inner.clone();
        let id = id.to_owned();
        let (loop_ref, future_ref) = (event_loop.unbind(), future.clone().unbind());
        std::thread::Builder::new()
            .name("linear-oauth-async".into())
            .spawn(move || {
                // A panic here would leave the future pending forever.
                let result = no_panic(|| slow(&inner, &id));
                let _ = Python::try_attach(|py| {
                    if let Err(e) = deliver(py, loop_ref.bind(py), future_ref.bind(py), result) {
                        e.write_unraisable(py, None);
                    }
                });
            })
            .map_err(|e| to_py_err(py, host::Error::Internal(format!("starting a resolver thread: {e}"))))?;
        Ok(future)
    }
}

/// Hands a finished call back to its event loop, unless the loop is gone.
fn deliver(
    py: Python<'_>,
    event_loop: &Bound<'_, PyAny>,
    future: &Bound<'_, PyAny>,
    result: host::Result<Arc<host::ResolvedToken>>,
) -> PyResult<()> {
    let (ok, value) = match result {
        Ok(t) => (true, Bound::new(py, PyResolvedToken(t))?.into_any()),
        Err(e) => (false, to_py_err(py, e).into_value(py).into_bound(py).into_any()),
    };
    if event_loop.call_method0("is_closed")?.is_truthy()? {
        return Ok(());
    }
    let complete = wrap_pyfunction!(complete_future, py)?;
    match event_loop.call_method1("call_soon_threadsafe", (complete, future, ok, value)) {
        // Closed between the check and the call: the awaiting task is gone too.
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyRuntimeError>(py) => Ok(()),
        other => other.map(drop),
    }
}

/// Runs on the event loop: completes the future unless it was cancelled.
#[pyfunction]
#[pyo3(name = "_complete_future")]
fn complete_future(future: &Bound<'_, PyAny>, ok: bool, value: &Bound<'_, PyAny>) -> PyResult<()> {
    if future.call_method0("done")?.is_truthy()? {
        return Ok(());
    }
    let method = if ok { "set_result" } else { "set_exception" };
    future.call_method1(method, (value,))?;
    Ok(())
}

#[pymethods]
impl PyResolver {
    /// Every option is keyword-only (see `linear_oauth_host::SETTINGS`);
    /// `None` means the host default.
    #[new]
    #[pyo3(signature = (**options))]
    fn new(py: Python<'_>, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let options = options_from_kwargs(py, options)?;
        Self::open(py, options)
    }

    /// Options from the `LINEAR_OAUTH_*` environment variables over the
    /// defaults, exactly as the CLI reads them (`linear_oauth_host::Options::from_env`).
    #[staticmethod]
    fn from_env(py: Python<'_>) -> PyResult<Self> {
        let options = host::Options::from_env().map_err(|e| to_py_err(py, e))?;
        Self::open(py, options)
    }

    /// Registry row -> status -> stored token -> refresh if expiring.
    fn resolve(&self, py: Python<'_>, workspace_id: &str) -> PyResult<PyResolvedToken> {
        self.call(py, workspace_id, host::Resolver::cached, host::Resolver::resolve)
    }

    /// The same from the stored token's id, without the registry.
    fn resolve_secret(&self, py: Python<'_>, secret_id: &str) -> PyResult<PyResolvedToken> {
        self.call(py, secret_id, host::Resolver::cached_secret, host::Resolver::resolve_secret)
    }

    /// `await`able twin of `resolve`; needs a running event loop.
    fn resolve_async<'py>(&self, py: Python<'py>, workspace_id: &str) -> PyResult<Bound<'py, PyAny>> {
        self.call_async(py, workspace_id, host::Resolver::cached, host::Resolver::resolve)
    }

    /// `await`able twin of `resolve_secret`; needs a running event loop.
    fn resolve_secret_async<'py>(&self, py: Python<'py>, secret_id: &str) -> PyResult<Bound<'py, PyAny>> {
        self.call_async(py, secret_id, host::Resolver::cached_secret, host::Resolver::resolve_secret)
    }

    /// A Linear API call with `access_token` got 401: a token to retry with.
    /// The stored one when it is another token (no request to Linear), else
    /// a refresh under the usual single flight and lease.
    fn report_unauthorized(&self, py: Python<'_>, workspace_id: &str, access_token: &str) -> PyResult<PyResolvedToken> {
        py.detach(|| no_panic(|| self.inner.report_unauthorized(workspace_id, access_token)))
            .map(PyResolvedToken)
            .map_err(|e| to_py_err(py, e))
    }

    /// Refreshes now even if the stored token is fresh (same coordination).
    fn force_refresh(&self, py: Python<'_>, secret_id: &str) -> PyResult<PyResolvedToken> {
        self.call(py, secret_id, uncached, |r, id| r.force_refresh(host::Target::Secret(id)))
    }

    /// Revokes the workspace's grant at Linear and marks it revoked here.
    /// `purge` deletes the stored secret, only once Linear's side is known
    /// dead unless `force`.
    #[pyo3(signature = (workspace_id, *, purge = false, force = false))]
    fn revoke(&self, py: Python<'_>, workspace_id: &str, purge: bool, force: bool) -> PyResult<PyRevocation> {
        py.detach(|| no_panic(|| self.inner.revoke(workspace_id, purge, force)))
            .map(PyRevocation)
            .map_err(|e| to_py_err(py, e))
    }

    /// Installs a workspace with Linear's client_credentials grant (no
    /// browser; the app must allow the grant). Resolves later fetch a new
    /// token instead of refreshing.
    #[pyo3(signature = (client_id, client_secret, scopes, *, installed_by))]
    fn install_client_credentials(
        &self,
        py: Python<'_>,
        client_id: String,
        client_secret: String,
        scopes: Vec<String>,
        installed_by: &str,
    ) -> PyResult<PyInstalled> {
        let params =
            host::ClientCredentialsParams { client_id, client_secret: client_secret.into(), scopes, secret_id: None };
        py.detach(|| no_panic(|| self.inner.install_client_credentials(&params, installed_by)))
            .map(PyInstalled)
            .map_err(|e| to_py_err(py, e))
    }

    /// The cached token for a workspace if it may be served without any I/O, else None.
    fn cached(&self, py: Python<'_>, workspace_id: &str) -> PyResult<Option<PyResolvedToken>> {
        Ok(self.fast(py, workspace_id, host::Resolver::cached)?.map(PyResolvedToken))
    }

    /// The cached token for a secret id if it may be served without any I/O, else None.
    fn cached_secret(&self, py: Python<'_>, secret_id: &str) -> PyResult<Option<PyResolvedToken>> {
        Ok(self.fast(py, secret_id, host::Resolver::cached_secret)?.map(PyResolvedToken))
    }

    /// Forgets everything cached about this workspace.
    fn invalidate(&self, py: Python<'_>, workspace_id: &str) -> PyResult<()> {
        py.detach(|| {
            no_panic(|| {
                self.inner.invalidate(workspace_id);
                Ok(())
            })
        })
        .map_err(|e| to_py_err(py, e))
    }

    /// The store this resolver reads (`file:DIR` or `memory:`).
    #[getter]
    fn store(&self) -> &str {
        &self.inner.options().store
    }

    #[getter]
    fn api_base(&self) -> &str {
        &self.inner.options().api_base
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let o = self.inner.options();
        Ok(format!("Resolver(store={}, api_base={})", pyrepr(py, &o.store)?, pyrepr(py, &o.api_base)?))
    }
}

// ---------------------------------------------------------------------------
// Module
// ---------------------------------------------------------------------------

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyResolver>()?;
    m.add_class::<PyResolvedToken>()?;
    m.add_class::<PyLoadInfo>()?;
    m.add_class::<PyRevocation>()?;
    m.add_class::<PyInstalled>()?;
    m.add_function(wrap_pyfunction!(load_info, m)?)?;
    // Private helpers: attributes of the module, but not in its `__all__`.
    m.setattr("_emit_log", wrap_pyfunction!(emit_log, m)?)?;
    m.setattr("_complete_future", wrap_pyfunction!(complete_future, m)?)?;
    m.setattr("_error_kinds", wrap_pyfunction!(error_kinds, m)?)?;
    m.setattr("_settings", wrap_pyfunction!(settings, m)?)?;
    let t = error_types(py)?;
    m.add("LinearOAuthError", t.base.clone_ref(py))?;
    for (kind, ty) in host::ERROR_KINDS.iter().zip(&t.kinds) {
        m.add(kind.python_class, ty.clone_ref(py))?;
    }
    Ok(())
}
