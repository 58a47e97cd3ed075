//! The records the resolver hands back: tokens, revocations, installs, load info.

use std::sync::Arc;

use linear_oauth_host as host;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyString;

use crate::errors::to_py_err;

/// A Linear access token that may be used now. `repr()` never shows the token.
#[pyclass(module = "linear_oauth", name = "ResolvedToken", frozen)]
pub(crate) struct PyResolvedToken {
    /// `access_token`'s string, made on its first access and reused after
    /// (by every later access, and every cached resolve that hands this
    /// object out again). Not before, and the other attributes are made on
    /// each access: a resolver of a fleet keeps one object per workspace,
    /// and callers read little but the access token.
    access_token: PyOnceLock<Py<PyString>>,
    /// The host's token this object shows: its serve window, and which
    /// token it is (the resolver hands the same object back while the host
    /// serves the same token).
    pub(crate) token: Arc<host::ResolvedToken>,
}

impl PyResolvedToken {
    pub(crate) fn new(token: Arc<host::ResolvedToken>) -> Self {
        Self { access_token: PyOnceLock::new(), token }
    }
}

/// An ISO-8601 UTC instant (`...Z`, as the component writes them) as an
/// aware `datetime` with tzinfo UTC, read by Python's own parser.
fn utc_datetime<'py>(py: Python<'py>, iso: &str) -> PyResult<Bound<'py, PyAny>> {
    static DATETIME: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    static UTC: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let dt = DATETIME.import(py, "datetime", "datetime")?.call_method1("fromisoformat", (iso,))?;
    dt.call_method1("astimezone", (UTC.import(py, "datetime", "UTC")?,))
}

pub(crate) fn pyrepr(py: Python<'_>, s: &str) -> PyResult<String> {
    Ok(PyString::new(py, s).repr()?.to_str()?.to_owned())
}

#[pymethods]
impl PyResolvedToken {
    /// The bearer token for Linear's API.
    #[getter]
    fn access_token<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        let token =
            self.access_token.get_or_init(py, || PyString::new(py, self.token.access_token().secret()).unbind());
        token.bind(py).clone()
    }

    /// Space-separated scopes Linear granted.
    #[getter]
    fn scope<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, self.token.scope())
    }

    #[getter]
    fn workspace_slug<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, self.token.workspace_slug())
    }

    /// Linear organization id.
    #[getter]
    fn workspace_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, self.token.workspace_id())
    }

    /// The id of the stored token (secret name or ARN).
    #[getter]
    fn secret_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, self.token.secret_id())
    }

    /// ISO-8601 UTC instant.
    #[getter]
    fn expires_at<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        PyString::new(py, self.token.expires_at())
    }

    /// `expires_at` as an aware `datetime` in UTC.
    #[getter]
    fn expires_at_datetime<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        utc_datetime(py, self.token.expires_at())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let t = &self.token;
        Ok(format!(
            "ResolvedToken(workspace_id={}, workspace_slug={}, secret_id={}, scope={}, expires_at={}, access_token=<redacted>)",
            pyrepr(py, t.workspace_id())?,
            pyrepr(py, t.workspace_slug())?,
            pyrepr(py, t.secret_id())?,
            pyrepr(py, t.scope())?,
            pyrepr(py, t.expires_at())?,
        ))
    }
}

/// How the embedded component was loaded in this process.
#[pyclass(module = "linear_oauth", name = "LoadInfo", frozen, get_all)]
pub(crate) struct PyLoadInfo {
    /// True when the embedded precompiled component was rejected by this
    /// machine's engine and had to be compiled from wasm (slow first use).
    compiled_fallback: bool,
    /// Seconds spent loading the engine and component.
    load_time_s: f64,
}

#[pymethods]
impl PyLoadInfo {
    fn __repr__(&self) -> String {
        let fallback = if self.compiled_fallback { "True" } else { "False" };
        format!("LoadInfo(compiled_fallback={fallback}, load_time_s={:.6})", self.load_time_s)
    }
}

/// Loads the engine and component if needed and tells how that went.
#[pyfunction]
pub(crate) fn load_info(py: Python<'_>) -> PyResult<PyLoadInfo> {
    let info = py.detach(host::Resolver::load_info).map_err(|e| to_py_err(py, e))?;
    Ok(PyLoadInfo { compiled_fallback: info.compiled_fallback, load_time_s: info.load_time.as_secs_f64() })
}

/// What `Resolver.revoke` did. The workspace is marked revoked whatever the
/// outcome; `confirmed` says whether Linear's side of the grant is known dead.
#[pyclass(module = "linear_oauth", name = "Revocation", frozen, get_all)]
pub(crate) struct PyRevocation {
    workspace_id: String,
    secret_id: String,
    /// `"revoked"`, `"already-dead"`, `"not-confirmed"` or `"failed"`.
    outcome: String,
    /// True for `revoked` and `already-dead`; otherwise remove the app's
    /// authorization in Linear's workspace settings.
    confirmed: bool,
    /// What was tried, for `not-confirmed` and `failed` (never a secret).
    detail: Option<String>,
    /// The last HTTP status of Linear's revoke endpoint, if it answered.
    linear_status: Option<u16>,
    purged: bool,
}

impl From<host::Revocation> for PyRevocation {
    fn from(r: host::Revocation) -> Self {
        Self {
            outcome: r.outcome.label().to_owned(),
            confirmed: r.outcome.confirmed(),
            detail: r.outcome.detail().map(str::to_owned),
            workspace_id: r.workspace_id,
            secret_id: r.secret_id,
            linear_status: r.linear_status,
            purged: r.purged,
        }
    }
}

#[pymethods]
impl PyRevocation {
    fn __repr__(&self) -> String {
        format!(
            "Revocation(workspace_id={:?}, secret_id={:?}, outcome={:?}, linear_status={:?}, purged={})",
            self.workspace_id,
            self.secret_id,
            self.outcome,
            self.linear_status,
            if self.purged { "True" } else { "False" }
        )
    }
}

/// What an install wrote (no secrets): the workspace, the app user GraphQL
/// named, the secret id and the token's scope and expiry.
#[pyclass(module = "linear_oauth", name = "Installed", frozen, get_all)]
pub(crate) struct PyInstalled {
    workspace_id: String,
    workspace_name: String,
    workspace_slug: String,
    viewer_id: String,
    viewer_name: String,
    viewer_email: String,
    /// The app user's id (the viewer, for an app-actor token), also stored
    /// as `app_user_id`.
    app_user_id: Option<String>,
    secret_id: String,
    scope: String,
    expires_at: String,
    installed_at: String,
    /// A secret for this workspace existed and was replaced.
    replaced: bool,
}

impl From<host::Installed> for PyInstalled {
    fn from(i: host::Installed) -> Self {
        let host::Installed {
            workspace_id,
            workspace_name,
            workspace_slug,
            viewer_id,
            viewer_name,
            viewer_email,
            app_user_id,
            secret_id,
            scope,
            expires_at,
            installed_at,
            replaced,
        } = i;
        Self {
            workspace_id,
            workspace_name,
            workspace_slug,
            viewer_id,
            viewer_name,
            viewer_email,
            app_user_id,
            secret_id,
            scope,
            expires_at,
            installed_at,
            replaced,
        }
    }
}

#[pymethods]
impl PyInstalled {
    /// `expires_at` as an aware `datetime` in UTC.
    #[getter]
    fn expires_at_datetime<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        utc_datetime(py, &self.expires_at)
    }

    fn __repr__(&self) -> String {
        format!(
            "Installed(workspace_id={:?}, workspace_slug={:?}, secret_id={:?}, scope={:?}, expires_at={:?})",
            self.workspace_id, self.workspace_slug, self.secret_id, self.scope, self.expires_at
        )
    }
}

/// A verified Linear webhook delivery. `data` is the payload's `data` as
/// JSON text, exactly as received (`json.loads` it).
#[pyclass(module = "linear_oauth", name = "WebhookEvent", frozen, get_all)]
pub(crate) struct PyWebhookEvent {
    /// `Issue`, `Comment`, `OAuthApp`, ...
    #[pyo3(name = "type")]
    kind: String,
    action: Option<String>,
    organization_id: Option<String>,
    webhook_id: Option<String>,
    /// `oauthClientId`, on `OAuthApp` events.
    oauth_client_id: Option<String>,
    /// The `Linear-Delivery` header, when passed.
    delivery_id: Option<String>,
    created_at: Option<String>,
    /// `webhookTimestamp`, Unix milliseconds.
    timestamp_ms: i64,
    /// Whose signing secret matched: `"workspace"` or `"stack"`.
    matched: &'static str,
    data: String,
    /// What `handle_webhook` did: `"revoked"`, `"already-revoked"`,
    /// `"other-app"`, `"not-registered"`; `None` for events it does not act on.
    outcome: Option<&'static str>,
}

impl From<host::WebhookEvent> for PyWebhookEvent {
    fn from(e: host::WebhookEvent) -> Self {
        Self {
            outcome: e.outcome.as_ref().map(host::WebhookOutcome::as_str),
            matched: e.matched.as_str(),
            kind: e.kind,
            action: e.action,
            organization_id: e.organization_id,
            webhook_id: e.webhook_id,
            oauth_client_id: e.oauth_client_id,
            delivery_id: e.delivery_id,
            created_at: e.created_at,
            timestamp_ms: e.timestamp_ms,
            data: e.data,
        }
    }
}

#[pymethods]
impl PyWebhookEvent {
    fn __repr__(&self) -> String {
        format!(
            "WebhookEvent(type={:?}, action={:?}, organization_id={:?}, delivery_id={:?}, matched={:?}, outcome={:?})",
            self.kind, self.action, self.organization_id, self.delivery_id, self.matched, self.outcome
        )
    }
}
