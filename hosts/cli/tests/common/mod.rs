//! What the CLI's test files share: the binary run against a Linear-compatible
//! test server, with a file store and a cache directory of its own.

#![allow(dead_code)] // each test file uses its own part

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use linear_oauth_testserver::{ClientConfig, ServerConfig, TestServer};

pub const BIN: &str = env!("CARGO_BIN_EXE_linear-oauth");
/// Where an install of the test server's workspace (`testws`) keeps its token.
pub const STORED_SECRET: &str = "secrets/bgagent-linear-oauth-testws.json";

pub struct Env {
    pub server: TestServer,
    pub dir: PathBuf,
    /// A loopback redirect URI on a free port, registered for the client.
    pub redirect: String,
}

impl Env {
    /// A test server that knows the app `client_id`, and an empty store.
    pub fn new(client_id: &str, client_secret: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let server = TestServer::start(ServerConfig::default()).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let redirect = format!("http://127.0.0.1:{port}/oauth/callback");
        server.add_client(ClientConfig::new(client_id, client_secret, [redirect.clone()]));
        let dir =
            std::env::temp_dir().join(format!("lo-cli-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        let _ = std::fs::remove_dir_all(&dir);
        Self { server, dir, redirect }
    }

    /// The binary on this store and server; no client secret unless the
    /// caller adds one.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("LINEAR_OAUTH_STORE", format!("file:{}", self.dir.display()))
            .env("LINEAR_OAUTH_API_BASE", self.server.base_url())
            .env("LINEAR_OAUTH_AUTHORIZE_URL", self.server.authorize_url())
            .env("XDG_CACHE_HOME", self.dir.join("cache"))
            .env_remove("LINEAR_OAUTH_CLIENT_SECRET")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// `token --workspace ID --unauthorized` with `rejected` on stdin.
    pub fn report_unauthorized(&self, workspace_id: &str, rejected: &str) -> Output {
        self.report_unauthorized_of("--workspace", workspace_id, rejected)
    }

    /// `token <flag> ID --unauthorized` (`--workspace` or `--secret`) with
    /// `rejected` on stdin.
    pub fn report_unauthorized_of(&self, flag: &str, id: &str, rejected: &str) -> Output {
        let mut child = self
            .cmd(&["token", flag, id, "--unauthorized"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(format!("{rejected}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// The stored token of the `testws` workspace.
    pub fn stored(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.dir.join(STORED_SECRET)).unwrap()).unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// stdout and stderr as text.
pub fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}
