//! The linear-oauth WASI component: drives `linear-oauth-core` and does every
//! bit of I/O through the world's imports, so the host decides what it may reach.

// wit-bindgen's generated glue is `unsafe`; this crate writes none by hand.
#![allow(unsafe_code)]

mod admin;
mod cache;
mod call;
mod fleet;
mod health;
mod http;
mod install;
mod io;
mod keys;
mod lease;
mod outage;
mod refresh;
mod request;
mod resolve;
mod rows;
mod settings;
mod token;
mod webhook;
mod write_back;

#[cfg(test)]
mod tests;

wit_bindgen::generate!({
    world: "linear-oauth",
    path: "../../wit",
    generate_all,
});

use exports::linear::oauth::{
    admin as admin_api, install as install_api, resolver as resolver_api, webhook as webhook_api,
};
use linear::oauth::log::{log, Level};
use linear::oauth::types::{EndpointError, Error, Target};

struct Component;

export!(Component);

impl resolver_api::Guest for Component {
    fn init(s: resolver_api::Settings) -> Result<(), Error> {
        settings::init(s)
    }
    fn resolve(workspace_id: String) -> Result<resolver_api::ResolvedToken, Error> {
        resolve::resolve(&mut call(), &workspace_id)
    }
    fn resolve_secret(secret_id: String) -> Result<resolver_api::ResolvedToken, Error> {
        resolve::resolve_secret(&mut call(), &secret_id)
    }
    fn force_refresh(target: Target) -> Result<resolver_api::ResolvedToken, Error> {
        resolve::force_refresh(&mut call(), &target)
    }
    fn report_unauthorized(target: Target, access_token: String) -> Result<resolver_api::ResolvedToken, Error> {
        resolve::report_unauthorized(&mut call(), &target, &access_token)
    }
    fn refresh_ahead(secret_id: String) -> Result<resolver_api::ResolvedToken, Error> {
        resolve::refresh_ahead(&mut call(), &secret_id)
    }
    fn invalidate(workspace_id: String) {
        cache::invalidate(&io::Imports, &workspace_id);
    }
}

/// The context of a host call that starts now, over the world's imports.
fn call() -> call::Call<'static> {
    call::Call::start(&io::Imports, settings::settings())
}

impl install_api::Guest for Component {
    fn begin(p: install_api::InstallParams) -> Result<install_api::Pending, Error> {
        install::begin(&p)
    }
    fn parse_callback(query: String, expected_state: String) -> Result<String, Error> {
        install::parse_callback(&query, &expected_state)
    }
    fn complete(
        p: install_api::InstallParams,
        code: String,
        code_verifier: String,
        installed_by: String,
    ) -> Result<install_api::Installed, Error> {
        install::complete(&p, code, code_verifier, &installed_by)
    }
    fn install_client_credentials(
        p: install_api::ClientCredentialsParams,
        installed_by: String,
    ) -> Result<install_api::Installed, Error> {
        install::install_client_credentials(&p, &installed_by)
    }
}

impl admin_api::Guest for Component {
    fn inspect(target: Target) -> Result<admin_api::Inspection, Error> {
        admin::inspect(&target)
    }
    fn revoke(workspace_id: String, purge: bool, force: bool) -> Result<admin_api::Revocation, Error> {
        admin::revoke(&workspace_id, purge, force)
    }
    fn sweep_one(workspace_id: String, ahead_ms: u64) -> Result<admin_api::SweepOutcome, Error> {
        fleet::sweep_one(&mut call(), &workspace_id, ahead_ms)
    }
    fn set_client_secret(
        workspace_id: String,
        client_id: String,
        new_secret: String,
        mode: admin_api::RotateMode,
    ) -> Result<admin_api::RotateOutcome, Error> {
        fleet::set_client_secret(&mut call(), &workspace_id, &client_id, &new_secret, mode)
    }
}

impl webhook_api::Guest for Component {
    fn get_signing_key(organization_id: Option<String>, fresh: bool) -> Result<Option<webhook_api::SigningKey>, Error> {
        webhook::signing_key(&call(), organization_id.as_deref(), fresh)
    }
    fn app_revoked(organization_id: String, oauth_client_id: String) -> Result<webhook_api::AppRevokedOutcome, Error> {
        webhook::app_revoked(&call(), &organization_id, &oauth_client_id)
    }
    fn set_signing_secret(target: Option<Target>, value: String) -> Result<(), Error> {
        webhook::set_signing_secret(&call(), target.as_ref(), &value)
    }
}

/// One structured log line; callers pass only non-secret fields.
fn log_event(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    log(level, message, &fields);
}

fn now_ms() -> i64 {
    let t = wasi::clocks::wall_clock::now();
    i64::try_from(t.seconds).unwrap_or(i64::MAX / 1000) * 1000 + i64::from(t.nanoseconds / 1_000_000)
}

fn random_32() -> [u8; 32] {
    let bytes = wasi::random::random::get_random_bytes(32);
    let mut out = [0u8; 32];
    out.copy_from_slice(&bytes[..32]);
    out
}

/// Turns a token-endpoint failure into the error hosts see, scrubbing any of
/// the request's `secrets` that the server echoed back.
fn endpoint_error(f: linear_oauth_core::EndpointFailure, secrets: &[&str]) -> Error {
    match f.redacted(secrets) {
        linear_oauth_core::EndpointFailure::Error { status, code, description } => {
            Error::TokenEndpoint(EndpointError { status, code, description, retry_after_ms: None })
        }
        linear_oauth_core::EndpointFailure::Malformed(m) => Error::Transport(m),
    }
}
