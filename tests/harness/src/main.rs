//! `linear-oauth-testharness`: the test server's runner with the store
//! routes of this crate added; the Python and Node suites start it.

use std::sync::Arc;

fn main() -> std::process::ExitCode {
    let routes = Arc::new(linear_oauth_testharness::StoreRoutes);
    linear_oauth_testserver::cli::main("linear-oauth-testharness", Some(routes))
}
