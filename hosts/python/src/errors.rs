//! Host errors as one Python exception hierarchy: a class per row of the
//! host's `ERROR_KINDS`, and each error's attributes set from `Error::attrs`.

use linear_oauth_host as host;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};

use crate::MODULE;

/// The exception classes, created once per process at module init: the base
/// class, then one per row of the host's `ERROR_KINDS`, in its order.
pub(crate) struct ErrorTypes {
    pub(crate) base: Py<PyType>,
    pub(crate) kinds: Vec<Py<PyType>>,
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

/// An attribute value as Python shows it (lists are tuples).
fn to_py<'py>(py: Python<'py>, v: host::Attr) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        host::Attr::None => py.None().into_bound(py),
        host::Attr::Int(n) => n.into_pyobject(py)?.into_any(),
        host::Attr::Float(x) => x.into_pyobject(py)?.into_any(),
        host::Attr::Str(s) => PyString::new(py, &s).into_any(),
        host::Attr::List(items) => PyTuple::new(py, items)?.into_any(),
    })
}

/// `(name, value)` pairs for Python.
fn attributes<'py>(py: Python<'py>, e: &host::Error) -> PyResult<Vec<(&'static str, Bound<'py, PyAny>)>> {
    e.attrs().into_iter().map(|(k, v)| Ok((k, to_py(py, v)?))).collect()
}

pub(crate) fn error_types(py: Python<'_>) -> PyResult<&ErrorTypes> {
    ERROR_TYPES.get_or_try_init(py, || {
        let base = new_exception(
            py,
            "LinearOAuthError",
            PyTuple::new(py, [py.get_type::<PyException>()])?,
            "Base class of every linear_oauth error. `code` is a stable machine-readable name \
             (e.g. 'REVOKED'); messages never contain secrets.",
            &[("code", PyString::new(py, "").into_any())],
        )?;
        let kinds = host::ERROR_KINDS
            .iter()
            .zip(host::Error::each_kind())
            .map(|(k, blank)| {
                // The class-level defaults are an empty error's attributes.
                let mut attrs = vec![("code", PyString::new(py, k.code).into_any())];
                attrs.extend(attributes(py, &blank)?);
                let mut bases = vec![base.bind(py).clone()];
                let mut doc = k.doc.to_owned();
                if matches!(blank, host::Error::InvalidInput(_)) {
                    bases.push(py.get_type::<PyValueError>());
                    doc.push_str(" Also a ValueError.");
                }
                new_exception(py, k.python_class, PyTuple::new(py, bases)?, &doc, &attrs)
            })
            .collect::<PyResult<_>>()?;
        Ok::<_, PyErr>(ErrorTypes { base, kinds })
    })
}

/// Test hook: the host's error table as `(code, python_class, exit_code)`.
#[pyfunction]
#[pyo3(name = "_error_kinds")]
pub(crate) fn error_kinds() -> Vec<(&'static str, &'static str, u8)> {
    host::ERROR_KINDS.iter().map(|k| (k.code, k.python_class, k.exit_code)).collect()
}

/// The one place where host errors become Python exceptions.
pub(crate) fn to_py_err(py: Python<'_>, e: host::Error) -> PyErr {
    match exception_for(py, &e) {
        Ok(exc) => PyErr::from_value(exc),
        Err(failed) => failed,
    }
}

fn exception_for<'py>(py: Python<'py>, e: &host::Error) -> PyResult<Bound<'py, PyAny>> {
    let exc = error_types(py)?.of(e).bind(py).call1((e.to_string(),))?;
    for (k, v) in attributes(py, e)? {
        exc.setattr(k, v)?;
    }
    Ok(exc)
}

/// A panic in the host becomes `InternalError` (an `Exception`), never a
/// `PanicException` (a `BaseException` that `except Exception` misses).
pub(crate) fn no_panic<T>(f: impl FnOnce() -> host::Result<T>) -> host::Result<T> {
    host::no_panic("the resolver panicked; this is a bug", f)
}

/// Registers the base class and one class per kind on the module.
pub(crate) fn add_to(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let t = error_types(py)?;
    m.add("LinearOAuthError", t.base.clone_ref(py))?;
    for (kind, ty) in host::ERROR_KINDS.iter().zip(&t.kinds) {
        m.add(kind.python_class, ty.clone_ref(py))?;
    }
    Ok(())
}
