//! Routes under `/_admin/` that another crate adds.
//!
//! The server cannot depend on the host crate (the host's tests depend on the
//! server), yet the Python and Node suites must seed stores through the host's
//! own backends rather than write the store layout themselves. So the server
//! takes extra admin routes from outside: tests/harness plugs in the ones
//! that seed and read stores.

use std::collections::HashMap;
use std::fmt;

use crate::config::IssuedTokens;
use crate::http::Shared;

/// One request to an added route.
#[derive(Debug)]
pub struct AdminRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path after `/_admin/`, as in `seed`.
    pub path: String,
    /// Query parameters, decoded.
    pub query: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// Extra `/_admin/` routes. The built-in routes win over added ones.
pub trait AdminRoutes: Send + Sync + 'static {
    /// The answer's status and JSON body, or `None` when `req` is not one of
    /// these routes (the server then answers 404). Runs on a blocking thread,
    /// so it may wait on I/O.
    fn handle(&self, server: &Handle, req: &AdminRequest) -> Option<(u16, serde_json::Value)>;
}

/// What an added route may do to the running server: mint tokens as
/// `POST /_admin/issue` does, and look up a registered client.
#[derive(Clone)]
pub struct Handle(pub(crate) Shared);

impl Handle {
    /// A live token pair for a registered client.
    pub fn issue_tokens(&self, client_id: &str, scope: &str, expires_in: u64) -> Result<IssuedTokens, String> {
        let mut st = self.0.lock();
        st.client(client_id).ok_or_else(|| format!("unknown client_id {client_id:?}"))?;
        Ok(st.issue(client_id, scope, expires_in))
    }

    /// The app's client-credentials token (no refresh token), ending its
    /// previous one as Linear does.
    pub fn issue_client_credentials(
        &self,
        client_id: &str,
        scope: &str,
        expires_in: u64,
    ) -> Result<IssuedTokens, String> {
        let mut st = self.0.lock();
        st.client(client_id).ok_or_else(|| format!("unknown client_id {client_id:?}"))?;
        Ok(st.issue_app_token(client_id, scope, expires_in))
    }

    /// The secret of a registered client.
    pub fn client_secret(&self, client_id: &str) -> Option<String> {
        self.0.lock().client(client_id).map(|c| c.client_secret.clone())
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}
