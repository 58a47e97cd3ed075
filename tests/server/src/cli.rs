//! The out-of-process runner, shared by `linear-oauth-testserver` and
//! tests/harness's `linear-oauth-testharness` (the same server plus store
//! seeding): prints `listening on http://127.0.0.1:PORT` as its first stdout
//! line and serves until killed.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use crate::{AdminRoutes, ClientConfig, GraceMode, ServerConfig, TestServer};

const OPTIONS: &str = "\
  --port N                 port on 127.0.0.1 (default 0 = ephemeral)
  --client-id ID           client id of the registered client
  --client-secret SECRET   client secret of the registered client
  --redirect-uri URI       registered redirect URI (repeatable; replaces the default)
  --grace MODE             none | same_pair | new_pair (default none)
  --grace-window-s N       replay grace window in seconds (default 1800)
  --expires-in N           access token lifetime in seconds (default 86399)
  --no-client-credentials  the client does not allow the client_credentials grant
  -h, --help               show this help";

struct Args {
    port: u16,
    config: ServerConfig,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut port = 0;
    let mut config = ServerConfig::default();
    let mut client = ClientConfig::default();
    let mut redirect_uris = Vec::new();
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg, None),
        };
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let mut value = || inline.clone().or_else(|| args.next()).ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|_| format!("{flag}: not a number: {v:?}"));
        match flag.as_str() {
            "--port" => {
                port = value()?.parse().map_err(|_| format!("{flag}: not a port number"))?;
            }
            "--client-id" => client.client_id = value()?,
            "--client-secret" => client.client_secret = value()?,
            "--redirect-uri" => redirect_uris.push(value()?),
            "--grace" => config.grace = value()?.parse::<GraceMode>()?,
            "--grace-window-s" => config.grace_window_s = number(value()?)?,
            "--expires-in" => config.expires_in = number(value()?)?,
            "--no-client-credentials" => client.client_credentials = false,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !redirect_uris.is_empty() {
        client.redirect_uris = redirect_uris;
    }
    config.clients = vec![client];
    Ok(Some(Args { port, config }))
}

/// Runs the server named `program` from the command line, with `routes`
/// added under `/_admin/`.
pub fn main(program: &str, routes: Option<Arc<dyn AdminRoutes>>) -> ExitCode {
    let usage = format!("usage: {program} [options]\n{OPTIONS}");
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{usage}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{program}: {e}\n{usage}");
            return ExitCode::from(2);
        }
    };
    let server = match TestServer::start_with_routes(args.config, args.port, routes) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("{program}: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    // Tests wait for this exact line, so it must arrive whole and at once.
    if writeln!(stdout, "listening on {}", server.base_url()).and_then(|()| stdout.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    drop(stdout);
    // The server runs on its own thread; this one only keeps it alive.
    loop {
        std::thread::park();
    }
}
