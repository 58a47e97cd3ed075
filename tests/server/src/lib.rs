//! A Linear-compatible OAuth + GraphQL test server, bound to loopback only.
//!
//! It emulates Linear's authorize, token, revoke and GraphQL endpoints closely
//! enough to exercise an OAuth client without a Linear account, and adds fault
//! knobs and counters that tests drive either through [`TestServer`] or, from
//! other processes, through the HTTP admin API under `/_admin/`.
//!
//! The server runs on its own thread with its own tokio runtime, so it works
//! the same from synchronous tests and from inside another runtime.
//!
//! HTTP surface:
//! - `GET /oauth/authorize`: auto-approves with a 302 to `redirect_uri?code=..&state=..`.
//! - `POST /oauth/token`: `authorization_code` (PKCE S256 required),
//!   `refresh_token` (rotating, one-shot refresh tokens; see [`GraceMode`])
//!   and `client_credentials` (one active token per app, ended by the next
//!   one or by a client secret rotation through `add_client`; 30 days; no
//!   refresh token; [`ClientConfig::client_credentials`] is the app's toggle).
//!   Client auth by form fields or HTTP Basic. All fault knobs act here.
//! - `POST /oauth/revoke`: as Linear documents it
//!   (<https://linear.app/developers/oauth-2-0-authentication>), not RFC 7009:
//!   the access token as `Authorization: Bearer` or `access_token` form field,
//!   or the refresh token as `refresh_token` form field. 200 revoked, 400
//!   unable to revoke (unknown, already revoked, or `token=`), 401 the access
//!   token does not authenticate. Revoking either token ends the whole grant:
//!   every access and refresh token issued in it, across rotations.
//! - `POST /graphql`: answers any query with `viewer` and `organization`.
//!   Access tokens stay valid until they expire or their grant is revoked;
//!   refreshing does not revoke the previous access token.
//! - `/_admin/`: `GET counters`, `GET|POST faults` (`revoke_fail_next` acts on
//!   revoke, the others on token), `POST reset`,
//!   `POST clients`, `POST issue`, `GET|POST org`,
//!   `GET refresh-token-status?token=`, `GET access-token-status?token=`,
//!   `POST webhook` (a signed delivery, see [`webhook::DeliverySpec`]:
//!   `{"body", "signature", "delivery_id", "event"}`),
//!   and whatever [`AdminRoutes`] a runner adds (tests/harness: store seeding).

pub mod cli;
mod config;
pub mod fixtures;
mod http;
mod routes;
mod state;
pub mod webhook;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

pub use routes::{AdminRequest, AdminRoutes, Handle};

pub use config::{
    ClientConfig, Counters, FailNext, Faults, FaultsPatch, GraceMode, IssuedTokens, Organization, ServerConfig, Viewer,
    DEFAULT_CLIENT_CREDENTIALS_EXPIRES_IN, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_EXPIRES_IN,
    DEFAULT_GRACE_WINDOW_S, DEFAULT_REDIRECT_URI,
};

use crate::http::Shared;
use crate::state::{State, TokenState};

/// A running server; dropping it shuts the server down.
pub struct TestServer {
    addr: SocketAddr,
    shared: Shared,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server on an ephemeral port of 127.0.0.1.
    pub fn start(config: ServerConfig) -> std::io::Result<TestServer> {
        Self::start_on(config, 0)
    }

    /// Starts a server on the given port of 127.0.0.1 (0 = ephemeral).
    pub fn start_on(config: ServerConfig, port: u16) -> std::io::Result<TestServer> {
        Self::start_with_routes(config, port, None)
    }

    /// [`Self::start_on`], answering `routes` too under `/_admin/`.
    pub fn start_with_routes(
        config: ServerConfig,
        port: u16,
        routes: Option<Arc<dyn AdminRoutes>>,
    ) -> std::io::Result<TestServer> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Shared::new(State::new(config), routes);
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let server_shared = shared.clone();
        // The runtime is built and dropped on the server thread, because
        // dropping a runtime inside another runtime's context panics.
        let thread =
            std::thread::Builder::new().name(format!("linear-oauth-testserver:{}", addr.port())).spawn(move || {
                let setup = tokio::runtime::Builder::new_current_thread().enable_all().build().and_then(|rt| {
                    let listener = {
                        let _guard = rt.enter();
                        tokio::net::TcpListener::from_std(listener)?
                    };
                    Ok((rt, listener))
                });
                match setup {
                    Ok((rt, listener)) => {
                        let _ = ready_tx.send(Ok(()));
                        rt.block_on(http::serve(listener, server_shared, shutdown_rx));
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(TestServer { addr, shared, shutdown: Some(shutdown_tx), thread: Some(thread) }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(std::io::Error::other("test server thread exited during startup"))
            }
        }
    }

    /// The bound address (always 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn authorize_url(&self) -> String {
        format!("{}/oauth/authorize", self.base_url())
    }

    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.base_url())
    }

    pub fn revoke_url(&self) -> String {
        format!("{}/oauth/revoke", self.base_url())
    }

    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.base_url())
    }

    pub fn counters(&self) -> Counters {
        self.shared.lock().counters.clone()
    }

    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.clone()
    }

    /// Merges the patch into the current knobs, like `POST /_admin/faults`.
    ///
    /// # Panics
    /// If `fail_next.status` is not a valid HTTP status (a test bug).
    pub fn set_faults(&self, f: FaultsPatch) {
        if let Err(e) = self.shared.lock().faults.apply(f) {
            panic!("TestServer::set_faults: {e}");
        }
    }

    /// Adds or replaces (by `client_id`) a registered client.
    pub fn add_client(&self, c: ClientConfig) {
        self.shared.lock().upsert_client(c);
    }

    /// Mints a live token pair without the OAuth dance, for seeding stores.
    /// `scope` is space-separated.
    ///
    /// # Panics
    /// If `client_id` is not registered (a test bug: the tokens could never
    /// be refreshed).
    pub fn issue_tokens(&self, client_id: &str, scope: &str, expires_in: u64) -> IssuedTokens {
        self.handle()
            .issue_tokens(client_id, scope, expires_in)
            .unwrap_or_else(|e| panic!("TestServer::issue_tokens: {e}"))
    }

    /// Mints the app's client-credentials token without a token request (no
    /// refresh token), revoking its previous one as Linear does.
    ///
    /// # Panics
    /// If `client_id` is not registered (a test bug).
    pub fn issue_client_credentials(&self, client_id: &str, scope: &str, expires_in: u64) -> IssuedTokens {
        self.handle()
            .issue_client_credentials(client_id, scope, expires_in)
            .unwrap_or_else(|e| panic!("TestServer::issue_client_credentials: {e}"))
    }

    fn handle(&self) -> Handle {
        Handle(self.shared.clone())
    }

    /// Turns the app's client-credentials toggle on or off.
    ///
    /// # Panics
    /// If `client_id` is not registered (a test bug).
    pub fn set_client_credentials(&self, client_id: &str, enabled: bool) {
        let mut st = self.shared.lock();
        let mut c = st.client(client_id).cloned().expect("TestServer::set_client_credentials: unknown client_id");
        c.client_credentials = enabled;
        st.upsert_client(c);
    }

    /// Whether the refresh token would be accepted (not spent, not revoked).
    pub fn refresh_token_live(&self, t: &str) -> bool {
        self.shared.lock().refresh_state(t) == TokenState::Live
    }

    /// Whether the access token would be accepted (not revoked, not expired).
    pub fn access_token_live(&self, t: &str) -> bool {
        self.shared.lock().access_state(t) == TokenState::Live
    }

    /// That access token alone stops authenticating (`POST
    /// /_admin/kill-access-token`); `false` if it was never issued.
    pub fn kill_access_token(&self, t: &str) -> bool {
        self.shared.lock().kill_access_token(t)
    }

    /// Ends the grant `token` (an access or refresh token, live or not)
    /// belongs to, out of band, as removing the app's authorization in
    /// Linear's settings does. `false` if the token is unknown.
    pub fn revoke_grant(&self, token: &str) -> bool {
        self.shared.lock().revoke_grant_of(token)
    }

    pub fn set_organization(&self, org: Organization) {
        self.shared.lock().organization = org;
    }

    pub fn set_viewer(&self, viewer: Viewer) {
        self.shared.lock().viewer = viewer;
    }

    /// Zeroes counters and restores the knobs to the configured values.
    /// Tokens, clients and the organization are kept.
    pub fn reset(&self) {
        self.shared.lock().reset();
    }
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer").field("base_url", &self.base_url()).finish_non_exhaustive()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
