//! Installing a workspace: PKCE, the authorization URL, the callback, the code
//! exchange, the GraphQL identity query, and the first stored token.

use linear_oauth_core::{
    client_credentials_form, code_exchange_form, normalize_scopes, parse_callback as core_parse_callback,
    parse_identity, parse_token_response, secret_name, AuthCode, AuthorizeRequest, CallbackError, ClientSecret, Grant,
    InstallRecord, PkcePair, PkceVerifier, State, StoredToken, TokenResponse, IDENTITY_QUERY,
};

use crate::cache::invalidate;
use crate::exports::linear::oauth::install::{ClientCredentialsParams, InstallParams, Installed, Pending};
use crate::exports::linear::oauth::resolver::Settings;
use crate::io::Imports;
use crate::keys::{check_id, named_workspace};
use crate::linear::oauth::log::Level;
use crate::linear::oauth::registry::{self, Row};
use crate::linear::oauth::secret_store;
use crate::linear::oauth::types::{EndpointError, Error};
use crate::request::client_credentials_error;
use crate::settings::{endpoint, settings};
use crate::{endpoint_error, http, log_event, now_ms, random_32};

fn scopes(p: &InstallParams) -> Result<Vec<String>, Error> {
    let scopes = normalize_scopes(&p.scopes);
    if scopes.is_empty() {
        return Err(Error::InvalidInput("at least one scope is required".into()));
    }
    if p.actor_app && scopes.iter().any(|s| s == "admin") {
        return Err(Error::InvalidInput(
            "the admin scope cannot be combined with actor=app; drop admin or use --no-actor-app".into(),
        ));
    }
    Ok(scopes)
}

/// An operator-chosen secret name must be one every store can hold.
fn check_secret_choice(secret_id: Option<&str>) -> Result<(), Error> {
    secret_id.map_or(Ok(()), |id| check_id("secret id", id))
}

fn check_params(p: &InstallParams) -> Result<(), Error> {
    if p.client_id.trim().is_empty() {
        return Err(Error::InvalidInput("client id is empty".into()));
    }
    if p.client_secret.trim().is_empty() {
        return Err(Error::InvalidInput("client secret is empty".into()));
    }
    url::Url::parse(&p.redirect_uri).map_err(|e| Error::InvalidInput(format!("redirect URI is not a URL: {e}")))?;
    Ok(())
}

pub fn begin(p: &InstallParams) -> Result<Pending, Error> {
    check_params(p)?;
    check_secret_choice(p.secret_id.as_deref())?;
    let scopes = scopes(p)?;
    let s = settings();
    let pkce = PkcePair::from_random(random_32());
    let state = State::from_random(random_32());
    let authorize_url = AuthorizeRequest {
        authorize_url: &s.authorize_url,
        client_id: &p.client_id,
        redirect_uri: &p.redirect_uri,
        scopes: &scopes,
        state: &state.0,
        code_challenge: &pkce.challenge,
        actor_app: p.actor_app,
        prompt_consent: p.prompt_consent,
    }
    .url()
    .map_err(Error::InvalidInput)?;
    Ok(Pending { authorize_url, state: state.0, code_verifier: pkce.verifier.into_secret() })
}

pub fn parse_callback(query: &str, expected_state: &str) -> Result<String, Error> {
    core_parse_callback(query, expected_state).map(AuthCode::into_secret).map_err(|e| match e {
        CallbackError::StateMismatch => Error::Authorization(EndpointError {
            status: 400,
            code: Some("state_mismatch".into()),
            description: Some("the callback's state is not the one this install sent; the code was not used".into()),
            retry_after_ms: None,
        }),
        CallbackError::Denied { error, description } => {
            Error::Authorization(EndpointError { status: 400, code: Some(error), description, retry_after_ms: None })
        }
        CallbackError::MissingCode => Error::InvalidInput("the callback has neither a code nor an error".into()),
    })
}

pub fn complete(p: &InstallParams, code: String, verifier: String, installed_by: &str) -> Result<Installed, Error> {
    check_params(p)?;
    check_secret_choice(p.secret_id.as_deref())?;
    let scopes = scopes(p)?.join(" ");
    let s = settings();
    let client_secret = ClientSecret::new(p.client_secret.clone());
    let secrets = [p.client_secret.as_str(), code.as_str(), verifier.as_str()];
    let form = code_exchange_form(
        &AuthCode::new(code.clone()),
        &PkceVerifier::new(verifier.clone()),
        &p.redirect_uri,
        &p.client_id,
        &client_secret,
    );
    let resp = post_token_form(&s, &form)?;
    let token = parse_token_response(resp.status, &resp.body).map_err(|f| endpoint_error(f, &secrets))?;
    let rec = Record {
        client_id: &p.client_id,
        client_secret: &client_secret,
        installed_by,
        requested_scope: &scopes,
        grant: Grant::AuthorizationCode,
        secret_id: p.secret_id.as_deref(),
        actor_app: p.actor_app,
    };
    identify_and_store(&s, &token, &rec)
}

/// One POST of an install's form to Linear's token endpoint. An install is
/// interactive, so a failure is reported, not retried.
fn post_token_form(s: &Settings, form: &str) -> Result<http::Response, Error> {
    http::post(
        &endpoint(s, "oauth/token"),
        "application/x-www-form-urlencoded",
        form.as_bytes(),
        None,
        s.http_timeout_ms,
    )
    .map_err(Error::Transport)
}

/// Linear's client_credentials grant: no browser, no refresh token; the token
/// is renewed later by fetching another with the stored client credentials.
pub fn install_client_credentials(p: &ClientCredentialsParams, installed_by: &str) -> Result<Installed, Error> {
    if p.client_id.trim().is_empty() {
        return Err(Error::InvalidInput("client id is empty".into()));
    }
    if p.client_secret.trim().is_empty() {
        return Err(Error::InvalidInput("client secret is empty".into()));
    }
    let scopes = normalize_scopes(&p.scopes);
    if scopes.is_empty() {
        return Err(Error::InvalidInput("at least one scope is required".into()));
    }
    check_secret_choice(p.secret_id.as_deref())?;
    let scopes = scopes.join(" ");
    let s = settings();
    let client_secret = ClientSecret::new(p.client_secret.clone());
    let form = client_credentials_form(&scopes, &p.client_id, &client_secret);
    let resp = post_token_form(&s, &form)?;
    let token = parse_token_response(resp.status, &resp.body)
        .map_err(|f| client_credentials_error(f, &[p.client_secret.as_str()]))?;
    let rec = Record {
        client_id: &p.client_id,
        client_secret: &client_secret,
        installed_by,
        requested_scope: &scopes,
        grant: Grant::ClientCredentials,
        secret_id: p.secret_id.as_deref(),
        // A client-credentials token is the app's own: its viewer is the
        // app user as well.
        actor_app: true,
    };
    identify_and_store(&s, &token, &rec)
}

/// What both installs know before asking GraphQL who the token belongs to.
struct Record<'a> {
    client_id: &'a str,
    client_secret: &'a ClientSecret,
    installed_by: &'a str,
    requested_scope: &'a str,
    grant: Grant,
    /// The operator's choice of secret name, instead of `<prefix><slug>`.
    secret_id: Option<&'a str>,
    /// The token acts as the app: GraphQL's viewer is the app user.
    actor_app: bool,
}

/// GraphQL identity, then the secret and the registry row.
fn identify_and_store(s: &Settings, token: &TokenResponse, r: &Record<'_>) -> Result<Installed, Error> {
    let gql = http::post(
        &endpoint(s, "graphql"),
        "application/json",
        IDENTITY_QUERY.as_bytes(),
        Some(token.access_token.secret()),
        s.http_timeout_ms,
    )
    .map_err(Error::Transport)?;
    if !(200..300).contains(&gql.status) {
        return Err(Error::TokenEndpoint(EndpointError {
            status: gql.status,
            code: None,
            description: Some("GraphQL identity query failed".into()),
            retry_after_ms: None,
        }));
    }
    let id = parse_identity(&gql.body).map_err(Error::Transport)?;
    let secret_id = match r.secret_id {
        Some(chosen) => chosen.to_owned(),
        None => secret_name(&s.secret_prefix, &id.workspace_slug).map_err(Error::InvalidInput)?,
    };

    let previous = secret_store::get(&secret_id).map_err(|e| Error::Store(format!("secret read failed: {e}")))?;
    if let Some(other) = previous.as_ref().and_then(|v| named_workspace(&v.value)).filter(|w| *w != id.workspace_id) {
        log_event(
            Level::Error,
            "refusing to overwrite another workspace's secret",
            &[("secret_id", &secret_id), ("stored_workspace_id", &other), ("workspace_id", &id.workspace_id)],
        );
        return Err(Error::InvalidInput(format!(
            "secret {secret_id} holds the token of workspace {other}, but Linear installed workspace {} (url key {:?}; \
             a url key can change hands); nothing was written. Choose another secret name for this workspace \
             (`linear-oauth setup --secret-id NAME`), or revoke workspace {other} first if it is really gone",
            id.workspace_id, id.workspace_slug
        )));
    }
    let previous_token = previous.as_ref().and_then(|v| StoredToken::parse(&v.value).ok());
    let app_user_id = r.actor_app.then(|| id.viewer_id.clone());
    let rec = InstallRecord {
        client_id: r.client_id,
        client_secret: r.client_secret,
        workspace_id: &id.workspace_id,
        workspace_slug: &id.workspace_slug,
        installed_by: r.installed_by,
        requested_scope: r.requested_scope,
        grant: r.grant,
        app_user_id: app_user_id.as_deref(),
    };
    let stored = StoredToken::installed(token, &rec, previous_token.as_ref(), now_ms())
        .map_err(|e| Error::InvalidStoredToken(e.problems()))?;
    secret_store::put(&secret_id, &stored.to_json(), None)
        .map_err(|e| Error::Store(format!("secret write failed: {e}")))?;
    registry::put(&Row {
        workspace_id: id.workspace_id.clone(),
        workspace_slug: id.workspace_slug.clone(),
        secret_id: secret_id.clone(),
        status: "active".into(),
        // A new install clears a recorded dead credential.
        status_reason: None,
        status_changed_at: None,
    })
    .map_err(|e| Error::Store(format!("registry write failed: {e}")))?;
    invalidate(&Imports, &id.workspace_id);
    let grant = match r.grant {
        Grant::AuthorizationCode => "authorization_code",
        Grant::ClientCredentials => "client_credentials",
    };
    log_event(
        Level::Info,
        "installed Linear workspace",
        &[
            ("workspace_id", &id.workspace_id),
            ("workspace_slug", &id.workspace_slug),
            ("secret_id", &secret_id),
            ("grant_type", grant),
        ],
    );
    Ok(Installed {
        workspace_id: id.workspace_id,
        workspace_name: id.workspace_name,
        workspace_slug: id.workspace_slug,
        viewer_id: id.viewer_id,
        viewer_name: id.viewer_name,
        viewer_email: id.viewer_email,
        app_user_id,
        secret_id,
        scope: stored.scope.clone(),
        expires_at: stored.expires_at.clone(),
        installed_at: stored.installed_at.clone(),
        replaced: previous.is_some(),
    })
}
