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
