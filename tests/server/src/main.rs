//! Out-of-process runner for the test server (see `cli`).

fn main() -> std::process::ExitCode {
    linear_oauth_testserver::cli::main("linear-oauth-testserver", None)
}
