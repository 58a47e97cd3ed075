//! The debug builds' panic hook, with which the Python and Node suites test
//! that a panic in the host reaches their callers as an internal error.

/// The environment variable of [`test_panic`].
pub const TEST_PANIC_ENV: &str = "LINEAR_OAUTH_TEST_PANIC_ID";

/// Test hook, compiled into debug builds only (release and dist builds, what
/// ships, have no `debug_assertions`, so there it is nothing): when
/// [`TEST_PANIC_ENV`] is `ENTRY:ID`, the entry point `ENTRY` (`new`,
/// `resolve`, `resolve_secret`, `cached`, `cached_secret`, `invalidate`)
/// called with `ID` (for `new`, the `store` option) panics inside the host,
/// so the Python and Node layers can test that a panic reaches their caller
/// as an internal error.
#[cfg(debug_assertions)]
pub(crate) fn test_panic(entry: &str, id: &str) {
    if std::env::var_os(TEST_PANIC_ENV).is_some_and(|v| v.as_encoded_bytes() == format!("{entry}:{id}").as_bytes()) {
        panic!("{TEST_PANIC_ENV} names {entry}:{id}: a test-only panic");
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn test_panic(_: &str, _: &str) {}

/// The environment variable of [`import_wrote_secret`].
pub const TEST_IMPORT_ABORT_ENV: &str = "LINEAR_OAUTH_TEST_IMPORT_ABORT_AFTER";

/// Test hook, debug builds only (as [`test_panic`]): when
/// [`TEST_IMPORT_ABORT_ENV`] is `N`, the process aborts right after the
/// import's `N`th secret write, before the batch's registry rows: the crash
/// a re-run has to finish without losing or duplicating anything.
#[cfg(debug_assertions)]
pub(crate) fn import_wrote_secret() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static WRITES: AtomicUsize = AtomicUsize::new(0);
    let Some(limit) = std::env::var(TEST_IMPORT_ABORT_ENV).ok().and_then(|v| v.parse::<usize>().ok()) else {
        return;
    };
    if WRITES.fetch_add(1, Ordering::SeqCst) + 1 >= limit {
        eprintln!("{TEST_IMPORT_ABORT_ENV}={limit}: aborting after {limit} secret writes (a test-only crash)");
        std::process::abort();
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn import_wrote_secret() {}
