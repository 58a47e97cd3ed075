//! Host calls that may do I/O, on the libuv pool: one generic task that
//! settles on the JS thread, and one [`Job`] per kind of call.

use std::fmt;
use std::sync::Arc;

use linear_oauth_host::{ClientCredentialsParams, ResolvedToken, Resolver as HostResolver, SecretString, Target};
use napi::bindgen_prelude::*;
use napi::ScopedTask;

use crate::errors::{js_error, no_panic};
use crate::records::{Installed, Revocation, WebhookEvent};
use crate::tokens::token_fields;
use crate::{Hooks, HostResult};

/// What one task does: the blocking host call, then (on the JS thread) its
/// result as JS.
pub trait Job: Send + fmt::Debug {
    type Output: Send + 'static;
    type JsValue<'t>: ToNapiValue + TypeName;

    fn run(&self, resolver: &HostResolver) -> HostResult<Self::Output>;

    fn settle<'t>(&self, env: &'t Env, output: Self::Output) -> Result<Self::JsValue<'t>>;
}

/// One blocking host call on the libuv pool; settles on the JS thread.
#[derive(Debug)]
pub struct Task<J> {
    pub(crate) job: J,
    pub(crate) resolver: HostResolver,
    pub(crate) hooks: Arc<Hooks>,
}

impl<'t, J: Job> ScopedTask<'t> for Task<J> {
    type Output = HostResult<J::Output>;
    type JsValue = J::JsValue<'t>;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(no_panic(|| self.job.run(&self.resolver)))
    }

    fn resolve(&mut self, env: &'t Env, output: Self::Output) -> Result<Self::JsValue> {
        let output = output.map_err(|e| js_error(env, &self.hooks, &e))?;
        self.job.settle(env, output)
    }
}

/// A call that answers with a token.
#[derive(Debug)]
pub enum Op {
    Resolve(String),
    ResolveSecret(String),
    ForceRefresh(String),
    /// Workspace id and the rejected access token.
    ReportUnauthorized(String, RejectedToken),
    /// Secret id and the rejected access token.
    ReportUnauthorizedSecret(String, RejectedToken),
}

/// An access token Linear rejected; still a secret, so `Debug` hides it.
pub struct RejectedToken(pub(crate) String);

impl fmt::Debug for RejectedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RejectedToken([redacted])")
    }
}

impl Job for Op {
    type Output = Arc<ResolvedToken>;
    /// The token's fields (see [`token_fields`]).
    type JsValue<'t> = Array<'t>;

    fn run(&self, r: &HostResolver) -> HostResult<Self::Output> {
        match self {
            Op::Resolve(id) => r.resolve(id),
            Op::ResolveSecret(id) => r.resolve_secret(id),
            Op::ForceRefresh(id) => r.force_refresh(Target::Secret(id)),
            Op::ReportUnauthorized(id, token) => r.report_unauthorized(id, &token.0),
            Op::ReportUnauthorizedSecret(id, token) => r.report_unauthorized_secret(id, &token.0),
        }
    }

    fn settle<'t>(&self, env: &'t Env, token: Self::Output) -> Result<Array<'t>> {
        token_fields(env, &token)
    }
}

/// `revoke` (it talks to Linear and may probe a refresh).
#[derive(Debug)]
pub struct Revoke {
    pub(crate) workspace_id: String,
    pub(crate) purge: bool,
    pub(crate) force: bool,
}

impl Job for Revoke {
    type Output = linear_oauth_host::Revocation;
    type JsValue<'t> = Revocation;

    fn run(&self, r: &HostResolver) -> HostResult<Self::Output> {
        r.revoke(&self.workspace_id, self.purge, self.force)
    }

    fn settle(&self, _: &Env, r: Self::Output) -> Result<Revocation> {
        Ok(r.into())
    }
}

/// `installClientCredentials` (it talks to Linear).
#[derive(Debug)]
pub struct Install {
    pub(crate) params: ClientCredentialsParams,
    pub(crate) installed_by: String,
}

impl Job for Install {
    type Output = linear_oauth_host::Installed;
    type JsValue<'t> = Installed;

    fn run(&self, r: &HostResolver) -> HostResult<Self::Output> {
        r.install_client_credentials(&self.params, &self.installed_by)
    }

    fn settle(&self, _: &Env, i: Self::Output) -> Result<Installed> {
        Ok(i.into())
    }
}

/// `verifyWebhook` past the cached path, and `handleWebhook`.
#[derive(Debug)]
pub struct Webhook {
    pub(crate) body: Vec<u8>,
    pub(crate) signature: String,
    pub(crate) delivery_id: Option<String>,
    pub(crate) handle: bool,
}

impl Job for Webhook {
    type Output = linear_oauth_host::WebhookEvent;
    type JsValue<'t> = WebhookEvent;

    fn run(&self, r: &HostResolver) -> HostResult<Self::Output> {
        let call = if self.handle { HostResolver::handle_webhook } else { HostResolver::verify_webhook };
        call(r, &self.body, &self.signature, self.delivery_id.as_deref())
    }

    fn settle(&self, _: &Env, e: Self::Output) -> Result<WebhookEvent> {
        Ok(e.into())
    }
}

/// `setWebhookSecret`: a workspace's (by id or secret id) or the stack-wide one.
#[derive(Debug)]
pub struct SetWebhookSecret {
    pub(crate) workspace_id: Option<String>,
    pub(crate) secret_id: Option<String>,
    pub(crate) value: SecretString,
}

impl Job for SetWebhookSecret {
    type Output = ();
    type JsValue<'t> = ();

    fn run(&self, r: &HostResolver) -> HostResult<()> {
        let target = match (&self.workspace_id, &self.secret_id) {
            (Some(w), _) => Some(Target::Workspace(w)),
            (None, Some(s)) => Some(Target::Secret(s)),
            (None, None) => None,
        };
        r.set_webhook_secret(target, &self.value)
    }

    fn settle(&self, _: &Env, (): ()) -> Result<()> {
        Ok(())
    }
}
