//! `Resolver`: the host's resolver with Python's calling conventions.
//!
//! GIL discipline: every call that may do I/O runs inside `py.detach`; the
//! cached fast path does not bother. The fastest path does not even reach
//! the host: each token object handed out is kept per id and handed out
//! again while the host's own rule says the token may be served without
//! asking ([`host::ResolvedToken::servable_now`]). Which tokens a call drops
//! is the host's rule alone: once the host's cache generation moves, the
//! objects whose token the host no longer holds go too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use linear_oauth_host as host;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};

use crate::errors::{no_panic, to_py_err};
use crate::logging::PySink;
use crate::options::options_from_kwargs;
use crate::records::{pyrepr, PyInstalled, PyResolvedToken, PyRevocation, PyWebhookEvent};

/// Resolves Linear access tokens. One instance is meant to be shared by every
/// thread of a process: concurrent resolves of one workspace cause one refresh.
#[pyclass(module = "linear_oauth", name = "Resolver", frozen)]
pub(crate) struct PyResolver {
    inner: host::Resolver,
    /// Token objects handed out, by workspace id and by secret id.
    workspaces: Py<PyDict>,
    secrets: Py<PyDict>,
    /// The host cache's generation when these objects were last checked.
    generation: AtomicU64,
}

type HostCall = fn(&host::Resolver, &str) -> host::Result<Arc<host::ResolvedToken>>;
/// The host's fast path for an id (`cached` or `cached_secret`).
type CachedCall = fn(&host::Resolver, &str) -> Option<Arc<host::ResolvedToken>>;

/// One kind of id: where its objects are kept and the host's two paths.
#[derive(Clone, Copy)]
struct Route {
    secret: bool,
    cached: CachedCall,
    slow: HostCall,
}

impl Route {
    fn target(self, id: &str) -> host::Target<'_> {
        if self.secret {
            host::Target::Secret(id)
        } else {
            host::Target::Workspace(id)
        }
    }
}

const WORKSPACE: Route = Route { secret: false, cached: host::Resolver::cached, slow: host::Resolver::resolve };
const SECRET: Route =
    Route { secret: true, cached: host::Resolver::cached_secret, slow: host::Resolver::resolve_secret };

impl PyResolver {
    fn open(py: Python<'_>, mut options: host::Options) -> PyResult<Self> {
        options.log_sink = Some(Arc::new(PySink));
        let inner = py.detach(move || no_panic(move || host::Resolver::new(options))).map_err(|e| to_py_err(py, e))?;
        Ok(Self {
            inner,
            workspaces: PyDict::new(py).unbind(),
            secrets: PyDict::new(py).unbind(),
            generation: AtomicU64::new(0),
        })
    }

    fn held<'py>(&self, py: Python<'py>, route: Route) -> &Bound<'py, PyDict> {
        if route.secret {
            self.secrets.bind(py)
        } else {
            self.workspaces.bind(py)
        }
    }

    /// After the host dropped tokens (its generation moved): drops the
    /// objects of tokens it no longer holds. Others keep their identity.
    fn follow_host(&self, py: Python<'_>) -> PyResult<()> {
        let generation = self.inner.generation();
        if self.generation.load(Ordering::Acquire) == generation {
            return Ok(());
        }
        for route in [WORKSPACE, SECRET] {
            let held = self.held(py, route);
            let mut gone = Vec::new();
            for (id, obj) in held.iter() {
                let (key, obj) = (id.cast::<PyString>()?.to_str()?, obj.cast_into::<PyResolvedToken>()?);
                if !self.inner.holds(route.target(key), obj.get().token.serial()) {
                    gone.push(id);
                }
            }
            for id in gone {
                held.del_item(id)?;
            }
        }
        // Only once swept: a thread that reads it skips a sweep it may skip.
        self.generation.store(generation, Ordering::Release);
        Ok(())
    }

    /// The token if it may be served without I/O (with the GIL: no I/O): the
    /// object handed out before while the host would serve it, else the
    /// host's fast path. A panic is `InternalError`.
    fn fast<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyString>,
        route: Route,
    ) -> PyResult<Option<Bound<'py, PyResolvedToken>>> {
        self.follow_host(py)?;
        let held = self.held(py, route);
        let before = match held.get_item(id)? {
            Some(obj) => Some(obj.cast_into::<PyResolvedToken>()?),
            None => None,
        };
        if let Some(obj) = &before {
            if obj.get().token.servable_now() {
                self.inner.count_cached_resolves(1);
                return Ok(before);
            }
        }
        let key = id.to_str()?;
        let Some(token) = no_panic(|| Ok((route.cached)(&self.inner, key))).map_err(|e| to_py_err(py, e))? else {
            return Ok(None);
        };
        if let Some(obj) = before.filter(|o| Arc::ptr_eq(&o.get().token, &token)) {
            return Ok(Some(obj));
        }
        self.keep(py, id, route, token).map(Some)
    }

    /// A new object for `token`, kept under `id` while the host holds the
    /// token.
    fn keep<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyString>,
        route: Route,
        token: Arc<host::ResolvedToken>,
    ) -> PyResult<Bound<'py, PyResolvedToken>> {
        let target = route.target(id.to_str()?);
        let obj = Bound::new(py, PyResolvedToken::new(token.clone()))?;
        let held = self.held(py, route);
        held.set_item(id, &obj)?;
        // Checked after the insert: a drop before it is seen here, one
        // after it moves the generation, and the next `follow_host` sweeps.
        if !self.inner.holds(target, token.serial()) {
            held.del_item(id)?;
        }
        Ok(obj)
    }

    /// The cached token, or one host call with the GIL released.
    fn call<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyString>,
        route: Route,
    ) -> PyResult<Bound<'py, PyResolvedToken>> {
        if let Some(t) = self.fast(py, id, route)? {
            return Ok(t);
        }
        let key = id.to_str()?;
        let token = self.blocking(py, || (route.slow)(&self.inner, key))?;
        self.keep(py, id, route, token)
    }

    /// A host call that may do I/O, with the GIL released.
    fn blocking<T: Send>(&self, py: Python<'_>, f: impl FnOnce() -> host::Result<T> + Send) -> PyResult<T> {
        py.detach(|| no_panic(f)).map_err(|e| to_py_err(py, e))
    }

    /// An `asyncio.Future` on the running loop. A cached token completes it
    /// at once (awaiting it does not even yield to the loop); anything else
    /// runs on a thread of its own, so a slow refresh never occupies a shared
    /// executor that resolves of other workspaces need.
    fn call_async<'py>(&self, py: Python<'py>, id: &Bound<'py, PyString>, route: Route) -> PyResult<Bound<'py, PyAny>> {
        static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let event_loop = GET_RUNNING_LOOP.import(py, "asyncio", "get_running_loop")?.call0()?;
        let future = event_loop.call_method0("create_future")?;
        if let Some(t) = self.fast(py, id, route)? {
            future.call_method1("set_result", (t,))?;
            return Ok(future);
        }
        let inner = self.inner.clone();
        let id = id.to_str()?.to_owned();
        on_thread(py, event_loop, future, move || (route.slow)(&inner, &id), token_to_py)
    }

    /// Any other host call as an `asyncio.Future` on the running loop, on a
    /// thread of its own (as `call_async` does for an uncached resolve).
    fn spawn_async<'py, T: 'static>(
        &self,
        py: Python<'py>,
        f: impl FnOnce(&host::Resolver) -> host::Result<T> + Send + 'static,
        to_py: for<'a> fn(Python<'a>, T) -> PyResult<Bound<'a, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let event_loop = GET_RUNNING_LOOP.import(py, "asyncio", "get_running_loop")?.call0()?;
        let future = event_loop.call_method0("create_future")?;
        let inner = self.inner.clone();
        on_thread(py, event_loop, future, move || f(&inner), to_py)
    }

    /// `verify_webhook` or `handle_webhook` as an `asyncio.Future`, on a thread of its own.
    fn webhook_async<'py>(
        &self,
        py: Python<'py>,
        body: &[u8],
        signature: &str,
        delivery_id: Option<&str>,
        call: WebhookCall,
    ) -> PyResult<Bound<'py, PyAny>> {
        static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let event_loop = GET_RUNNING_LOOP.import(py, "asyncio", "get_running_loop")?.call0()?;
        let future = event_loop.call_method0("create_future")?;
        let inner = self.inner.clone();
        let (body, signature, delivery_id) = (body.to_vec(), signature.to_owned(), delivery_id.map(str::to_owned));
        on_thread(
            py,
            event_loop,
            future,
            move || call(&inner, &body, &signature, delivery_id.as_deref()),
            |py, e| Ok(Bound::new(py, PyWebhookEvent::from(e))?.into_any()),
        )
    }
}

/// A token handed to an `asyncio.Future`.
fn token_to_py(py: Python<'_>, t: Arc<host::ResolvedToken>) -> PyResult<Bound<'_, PyAny>> {
    Ok(Bound::new(py, PyResolvedToken::new(t))?.into_any())
}

type WebhookCall = fn(&host::Resolver, &[u8], &str, Option<&str>) -> host::Result<host::WebhookEvent>;

/// Runs `f` on a thread of its own and completes `future` on `event_loop`
/// with its result, converted by `to_py`.
fn on_thread<'py, T: 'static>(
    py: Python<'py>,
    event_loop: Bound<'py, PyAny>,
    future: Bound<'py, PyAny>,
    f: impl FnOnce() -> host::Result<T> + Send + 'static,
    to_py: for<'a> fn(Python<'a>, T) -> PyResult<Bound<'a, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let (loop_ref, future_ref) = (event_loop.unbind(), future.clone().unbind());
    std::thread::Builder::new()
        .name("linear-oauth-async".into())
        .spawn(move || {
            // A panic here would leave the future pending forever.
            let result = no_panic(f);
            let _ = Python::try_attach(|py| {
                let value = match result {
                    Ok(t) => to_py(py, t).map(|v| (true, v)),
                    Err(e) => Ok((false, to_py_err(py, e).into_value(py).into_bound(py).into_any())),
                };
                if let Err(e) = value.and_then(|(ok, v)| deliver(py, loop_ref.bind(py), future_ref.bind(py), ok, v)) {
                    e.write_unraisable(py, None);
                }
            });
        })
        .map_err(|e| to_py_err(py, host::Error::Internal(format!("starting a resolver thread: {e}"))))?;
    Ok(future)
}

/// Hands a finished call back to its event loop, unless the loop is gone.
fn deliver(
    py: Python<'_>,
    event_loop: &Bound<'_, PyAny>,
    future: &Bound<'_, PyAny>,
    ok: bool,
    value: Bound<'_, PyAny>,
) -> PyResult<()> {
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
pub(crate) fn complete_future(future: &Bound<'_, PyAny>, ok: bool, value: &Bound<'_, PyAny>) -> PyResult<()> {
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
    fn resolve<'py>(
        &self,
        py: Python<'py>,
        workspace_id: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyResolvedToken>> {
        self.call(py, workspace_id, WORKSPACE)
    }

    /// The same from the stored token's id, without the registry.
    fn resolve_secret<'py>(
        &self,
        py: Python<'py>,
        secret_id: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyResolvedToken>> {
        self.call(py, secret_id, SECRET)
    }

    /// `await`able twin of `resolve`; needs a running event loop.
    fn resolve_async<'py>(&self, py: Python<'py>, workspace_id: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
        self.call_async(py, workspace_id, WORKSPACE)
    }

    /// `await`able twin of `resolve_secret`; needs a running event loop.
    fn resolve_secret_async<'py>(
        &self,
        py: Python<'py>,
        secret_id: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.call_async(py, secret_id, SECRET)
    }

    /// A Linear API call with `access_token` got 401: a token to retry with.
    /// The stored one when it is another token (no request to Linear), else
    /// a refresh under the usual single flight and lease.
    fn report_unauthorized(&self, py: Python<'_>, workspace_id: &str, access_token: &str) -> PyResult<PyResolvedToken> {
        let t = self.blocking(py, || self.inner.report_unauthorized(workspace_id, access_token))?;
        Ok(PyResolvedToken::new(t))
    }

    /// `report_unauthorized` for a token resolved by secret id (same rule).
    fn report_unauthorized_secret(
        &self,
        py: Python<'_>,
        secret_id: &str,
        access_token: &str,
    ) -> PyResult<PyResolvedToken> {
        let t = self.blocking(py, || self.inner.report_unauthorized_secret(secret_id, access_token))?;
        Ok(PyResolvedToken::new(t))
    }

    /// `await`able twin of `report_unauthorized`.
    fn report_unauthorized_async<'py>(
        &self,
        py: Python<'py>,
        workspace_id: String,
        access_token: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.spawn_async(py, move |r| r.report_unauthorized(&workspace_id, &access_token), token_to_py)
    }

    /// `await`able twin of `report_unauthorized_secret`.
    fn report_unauthorized_secret_async<'py>(
        &self,
        py: Python<'py>,
        secret_id: String,
        access_token: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.spawn_async(py, move |r| r.report_unauthorized_secret(&secret_id, &access_token), token_to_py)
    }

    /// Refreshes now even if the stored token is fresh (same coordination).
    fn force_refresh(&self, py: Python<'_>, secret_id: &str) -> PyResult<PyResolvedToken> {
        let t = self.blocking(py, || self.inner.force_refresh(host::Target::Secret(secret_id)))?;
        Ok(PyResolvedToken::new(t))
    }

    /// `await`able twin of `force_refresh`.
    fn force_refresh_async<'py>(&self, py: Python<'py>, secret_id: String) -> PyResult<Bound<'py, PyAny>> {
        self.spawn_async(py, move |r| r.force_refresh(host::Target::Secret(&secret_id)), token_to_py)
    }

    /// Revokes the workspace's grant at Linear and marks it revoked here.
    /// `purge` deletes the stored secret, only once Linear's side is known
    /// dead unless `force`.
    #[pyo3(signature = (workspace_id, *, purge = false, force = false))]
    fn revoke(&self, py: Python<'_>, workspace_id: &str, purge: bool, force: bool) -> PyResult<PyRevocation> {
        self.blocking(py, || self.inner.revoke(workspace_id, purge, force)).map(PyRevocation::from)
    }

    /// `await`able twin of `revoke`.
    #[pyo3(signature = (workspace_id, *, purge = false, force = false))]
    fn revoke_async<'py>(
        &self,
        py: Python<'py>,
        workspace_id: String,
        purge: bool,
        force: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.spawn_async(
            py,
            move |r| r.revoke(&workspace_id, purge, force),
            |py, v| Ok(Bound::new(py, PyRevocation::from(v))?.into_any()),
        )
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
        self.blocking(py, || self.inner.install_client_credentials(&params, installed_by)).map(PyInstalled::from)
    }

    /// `await`able twin of `install_client_credentials`.
    #[pyo3(signature = (client_id, client_secret, scopes, *, installed_by))]
    fn install_client_credentials_async<'py>(
        &self,
        py: Python<'py>,
        client_id: String,
        client_secret: String,
        scopes: Vec<String>,
        installed_by: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params =
            host::ClientCredentialsParams { client_id, client_secret: client_secret.into(), scopes, secret_id: None };
        self.spawn_async(
            py,
            move |r| r.install_client_credentials(&params, &installed_by),
            |py, v| Ok(Bound::new(py, PyInstalled::from(v))?.into_any()),
        )
    }

    /// The cached token for a workspace if it may be served without any I/O, else None.
    fn cached<'py>(
        &self,
        py: Python<'py>,
        workspace_id: &Bound<'py, PyString>,
    ) -> PyResult<Option<Bound<'py, PyResolvedToken>>> {
        self.fast(py, workspace_id, WORKSPACE)
    }

    /// The cached token for a secret id if it may be served without any I/O, else None.
    fn cached_secret<'py>(
        &self,
        py: Python<'py>,
        secret_id: &Bound<'py, PyString>,
    ) -> PyResult<Option<Bound<'py, PyResolvedToken>>> {
        self.fast(py, secret_id, SECRET)
    }

    /// Checks a Linear webhook delivery: `signature` (the `Linear-Signature`
    /// header) over the exact `body` bytes, then the replay window.
    #[pyo3(signature = (body, signature, delivery_id = None))]
    fn verify_webhook(
        &self,
        py: Python<'_>,
        body: &[u8],
        signature: &str,
        delivery_id: Option<&str>,
    ) -> PyResult<PyWebhookEvent> {
        // With the secret cached it is a few microseconds of CPU: not worth releasing the GIL.
        let result = match self.inner.verify_webhook_cached(body, signature, delivery_id) {
            Some(r) => r.map_err(|e| to_py_err(py, e)),
            None => self.blocking(py, || self.inner.verify_webhook(body, signature, delivery_id)),
        };
        result.map(PyWebhookEvent::from)
    }

    /// `verify_webhook`, then acts on lifecycle events (the app removed from
    /// a workspace marks it revoked); other events come back untouched.
    #[pyo3(signature = (body, signature, delivery_id = None))]
    fn handle_webhook(
        &self,
        py: Python<'_>,
        body: &[u8],
        signature: &str,
        delivery_id: Option<&str>,
    ) -> PyResult<PyWebhookEvent> {
        self.blocking(py, || self.inner.handle_webhook(body, signature, delivery_id)).map(PyWebhookEvent::from)
    }

    #[pyo3(signature = (body, signature, delivery_id = None))]
    fn verify_webhook_async<'py>(
        &self,
        py: Python<'py>,
        body: &[u8],
        signature: &str,
        delivery_id: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.webhook_async(py, body, signature, delivery_id, host::Resolver::verify_webhook)
    }

    #[pyo3(signature = (body, signature, delivery_id = None))]
    fn handle_webhook_async<'py>(
        &self,
        py: Python<'py>,
        body: &[u8],
        signature: &str,
        delivery_id: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.webhook_async(py, body, signature, delivery_id, host::Resolver::handle_webhook)
    }

    /// Stores a webhook signing secret: a workspace's own (by `workspace_id`
    /// or `secret_id`) or, with neither, the stack-wide one.
    #[pyo3(signature = (value, *, workspace_id = None, secret_id = None))]
    fn set_webhook_secret(
        &self,
        py: Python<'_>,
        value: &str,
        workspace_id: Option<&str>,
        secret_id: Option<&str>,
    ) -> PyResult<()> {
        let target = match (workspace_id, secret_id) {
            (Some(_), Some(_)) => {
                return Err(to_py_err(py, host::Error::InvalidInput("pass workspace_id or secret_id, not both".into())))
            }
            (Some(w), None) => Some(host::Target::Workspace(w)),
            (None, Some(s)) => Some(host::Target::Secret(s)),
            (None, None) => None,
        };
        let value = host::SecretString::new(value);
        self.blocking(py, || self.inner.set_webhook_secret(target, &value))
    }

    /// `await`able twin of `set_webhook_secret`.
    #[pyo3(signature = (value, *, workspace_id = None, secret_id = None))]
    fn set_webhook_secret_async<'py>(
        &self,
        py: Python<'py>,
        value: &str,
        workspace_id: Option<String>,
        secret_id: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if workspace_id.is_some() && secret_id.is_some() {
            return Err(to_py_err(py, host::Error::InvalidInput("pass workspace_id or secret_id, not both".into())));
        }
        let value = host::SecretString::new(value);
        self.spawn_async(
            py,
            move |r| {
                let target = match (&workspace_id, &secret_id) {
                    (Some(w), _) => Some(host::Target::Workspace(w)),
                    (_, Some(s)) => Some(host::Target::Secret(s)),
                    (None, None) => None,
                };
                r.set_webhook_secret(target, &value)
            },
            |py, ()| Ok(py.None().into_bound(py)),
        )
    }

    /// Every metric of the host's table since this resolver was made: each
    /// counter by name, and `refresh_latency_ms` as `{count, sum_ms, min_ms,
    /// max_ms, buckets: [{le_ms, count}]}` (`le_ms` None: slower than all).
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = self.inner.metrics();
        let out = PyDict::new(py);
        for (name, value) in m.counters() {
            out.set_item(name, value)?;
        }
        let t = &m.refresh_latency;
        let timing = PyDict::new(py);
        timing.set_item("count", t.count)?;
        timing.set_item("sum_ms", t.sum_ms)?;
        timing.set_item("min_ms", t.min_ms)?;
        timing.set_item("max_ms", t.max_ms)?;
        let buckets = t
            .buckets
            .iter()
            .map(|(le, n)| {
                let b = PyDict::new(py);
                b.set_item("le_ms", le)?;
                b.set_item("count", n)?;
                Ok(b)
            })
            .collect::<PyResult<Vec<_>>>()?;
        timing.set_item("buckets", buckets)?;
        out.set_item(host::REFRESH_LATENCY, timing)?;
        Ok(out)
    }

    /// With `metrics_emf` on: one EMF line of the resolve counts since the
    /// last flush (a Lambda handler calls it before returning).
    fn flush_metrics(&self, py: Python<'_>) -> PyResult<()> {
        self.blocking(py, || {
            self.inner.flush_metrics();
            Ok(())
        })
    }

    /// Forgets everything cached about this workspace.
    fn invalidate(&self, py: Python<'_>, workspace_id: &str) -> PyResult<()> {
        self.blocking(py, || {
            self.inner.invalidate(workspace_id);
            Ok(())
        })
    }

    /// `await`able twin of `invalidate`.
    fn invalidate_async<'py>(&self, py: Python<'py>, workspace_id: String) -> PyResult<Bound<'py, PyAny>> {
        self.spawn_async(
            py,
            move |r| {
                r.invalidate(&workspace_id);
                Ok(())
            },
            |py, ()| Ok(py.None().into_bound(py)),
        )
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
