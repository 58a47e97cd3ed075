//! The HTTP side: accept loop, routing and handlers.
//!
//! This is plain hyper rather than a router framework because the
//! `drop_next` fault needs a service that can fail a request, which makes
//! hyper close the connection without writing any response.
//!
//! Handlers return `Result<Resp, Resp>` so `?` can bail out with an error
//! response; the size of that `Err` is irrelevant at test-server request rates.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::config::{ClientConfig, FaultsPatch, Organization, Viewer};
use crate::routes::{AdminRequest, AdminRoutes, Handle};
use crate::state::{normalize_scope, GrantError, RevokeResult, State, TokenFault, TokenState};

type Resp = Response<Full<Bytes>>;

/// Request bodies are small forms and JSON; anything bigger is a client bug.
const MAX_BODY: usize = 1 << 20;
/// Size of the `oversize_next` body.
const OVERSIZE_BYTES: usize = 2 << 20;

/// State shared between the accept loop and the owning [`crate::TestServer`],
/// and the admin routes added from outside.
#[derive(Clone)]
pub(crate) struct Shared {
    state: Arc<Mutex<State>>,
    routes: Option<Arc<dyn AdminRoutes>>,
}

impl Shared {
    pub fn new(state: State, routes: Option<Arc<dyn AdminRoutes>>) -> Self {
        Shared { state: Arc::new(Mutex::new(state)), routes }
    }

    /// A handler that panicked mid-update cannot leave the maps unsound,
    /// only odd, so a poisoned lock is still usable for a test server.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The error a service returns to make hyper drop the connection unanswered.
#[derive(Debug)]
pub(crate) struct DroppedConnection;

impl fmt::Display for DroppedConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by drop_next fault")
    }
}

impl std::error::Error for DroppedConnection {}

/// Serves connections until `shutdown` fires (or its sender is dropped).
pub(crate) async fn serve(listener: TcpListener, shared: Shared, mut shutdown: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Typically EMFILE; back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| route(shared.clone(), req));
                    // Errors are expected here: drop faults and clients that
                    // hang up; there is nobody to report them to.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        }
    }
}

async fn route(
    shared: Shared,
    req: Request<Incoming>,
) -> Result<Response<BoxBody<Bytes, Infallible>>, DroppedConnection> {
    let (parts, body) = req.into_parts();
    let query = parts.uri.query().unwrap_or("");
    let (get, post) = (parts.method == Method::GET, parts.method == Method::POST);
    let resp = match parts.uri.path() {
        "/oauth/authorize" if get => either(authorize(&shared, query)),
        // The token endpoint of https://linear.app/developers/oauth-2-0-authentication
        // (authorization_code, refresh_token and client_credentials grants); `drip_ms` slows the
        // network under it, Linear's answer stays the same.
        "/oauth/token" if post => {
            let drip_ms = shared.lock().faults.drip_ms;
            let resp = token(&shared, &parts.headers, body).await?;
            return Ok(if drip_ms > 0 {
                resp.map(|b| Drip::new(b, Duration::from_millis(drip_ms)).boxed())
            } else {
                resp.map(BodyExt::boxed)
            });
        }
        "/oauth/revoke" if post => either(revoke(&shared, &parts.headers, body).await),
        "/graphql" if post => either(graphql(&shared, &parts.headers, body).await),
        "/_admin/counters" if get => json_response(StatusCode::OK, &shared.lock().counters),
        "/_admin/faults" if get => json_response(StatusCode::OK, &shared.lock().faults),
        "/_admin/faults" if post => either(admin_faults(&shared, body).await),
        "/_admin/reset" if post => {
            shared.lock().reset();
            json_response(StatusCode::OK, &json!({"ok": true}))
        }
        "/_admin/clients" if post => either(admin_clients(&shared, body).await),
        "/_admin/issue" if post => either(admin_issue(&shared, body).await),
        "/_admin/org" if get => org_response(&shared),
        // Linear signs deliveries as documented in webhook.rs (https://linear.app/developers/webhooks).
        "/_admin/webhook" if post => either(admin_webhook(body).await),
        "/_admin/org" if post => either(admin_org(&shared, body).await),
        // Linear ends a single access token while its grant lives on (an
        // admin's session reset, a leaked token's revocation; any token "can be
        // revoked at any time", https://linear.app/developers/oauth-2-0-authentication):
        // from then on the API answers 401 and a refresh still works.
        "/_admin/kill-access-token" if post => either(admin_kill_access_token(&shared, body).await),
        "/_admin/refresh-token-status" if get => either(token_status(&shared, query, true)),
        "/_admin/access-token-status" if get => either(token_status(&shared, query, false)),
        "/oauth/authorize"
        | "/oauth/token"
        | "/oauth/revoke"
        | "/graphql"
        | "/_admin/counters"
        | "/_admin/faults"
        | "/_admin/reset"
        | "/_admin/clients"
        | "/_admin/issue"
        | "/_admin/org"
        | "/_admin/webhook"
        | "/_admin/kill-access-token"
        | "/_admin/refresh-token-status"
        | "/_admin/access-token-status" => {
            oauth_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "Method not allowed")
        }
        p if p.starts_with("/_admin/") && shared.routes.is_some() => {
            either(added_route(&shared, &parts.method, p, query, body).await)
        }
        _ => not_found(),
    };
    Ok(resp.map(BodyExt::boxed))
}

/// A body sent one byte at a time, `every` apart (the `drip_ms` fault).
struct Drip {
    data: Bytes,
    every: Duration,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Drip {
    fn new(body: Full<Bytes>, every: Duration) -> Self {
        // `Full` holds its bytes in one frame, ready at once.
        let data = full_bytes(body);
        Drip { data, every, wait: None }
    }
}

/// The bytes of a `Full` body, which never waits.
fn full_bytes(mut body: Full<Bytes>) -> Bytes {
    let waker = std::task::Waker::noop();
    let mut cx = Context::from_waker(waker);
    match Pin::new(&mut body).poll_frame(&mut cx) {
        Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    }
}

impl Body for Drip {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.data.is_empty() {
            return Poll::Ready(None);
        }
        if let Some(wait) = self.wait.as_mut() {
            if wait.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        let every = self.every;
        self.wait = Some(Box::pin(tokio::time::sleep(every)));
        let byte = self.data.split_to(1);
        Poll::Ready(Some(Ok(Frame::data(byte))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.len() as u64)
    }
}

// ---------------------------------------------------------------- authorize

fn authorize(shared: &Shared, query: &str) -> Result<Resp, Resp> {
    let mut st = shared.lock();
    st.counters.authorize += 1;
    let params = parse_params(query.as_bytes())?;
    st.counters.last_actor = params.get("actor").cloned();
    // `prompt=consent` (https://linear.app/developers/oauth-2-0-authentication):
    // shows the consent screen even when the browser session already
    // authorized the app, for installing into several workspaces in a row.
    // The consent screen is not emulated; the value is recorded.
    st.counters.last_prompt = params.get("prompt").cloned();
    let param = |name: &str| params.get(name).map(String::as_str).unwrap_or("");

    let client_id = param("client_id");
    let Some(client) = st.client(client_id) else {
        st.counters.invalid_client += 1;
        return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_client", "Invalid client_id"));
    };
    let redirect_uri = param("redirect_uri");
    let invalid_redirect = || oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Invalid redirect_uri");
    if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
        return Err(invalid_redirect());
    }
    // Real Linear answers a comma-separated scope with this misleading error.
    let scope = param("scope");
    if scope.contains(',') {
        return Err(invalid_redirect());
    }
    let scope = normalize_scope(scope);
    if scope.is_empty() {
        return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", "Missing scope"));
    }
    // Linear's agents page (https://linear.app/developers/agents): "integrations
    // using the actor=app mode are not able to also request admin scope".
    if param("actor") == "app" && scope.split(' ').any(|s| s == "admin") {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The admin scope cannot be requested with actor=app",
        ));
    }
    if param("response_type") != "code" {
        return Err(oauth_error(StatusCode::BAD_REQUEST, "unsupported_response_type", "response_type must be code"));
    }
    let challenge = param("code_challenge");
    if challenge.is_empty() {
        return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Missing code_challenge"));
    }
    if param("code_challenge_method") != "S256" {
        return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "code_challenge_method must be S256"));
    }
    let mut location = url::Url::parse(redirect_uri).map_err(|_| invalid_redirect())?;
    {
        let mut q = location.query_pairs_mut();
        if st.faults.deny_next_authorize > 0 {
            st.faults.deny_next_authorize -= 1;
            st.counters.faults_injected += 1;
            q.append_pair("error", "access_denied");
            q.append_pair("error_description", "The user denied the authorization request");
        } else {
            let code = st.create_code(client_id, redirect_uri, &scope, challenge);
            q.append_pair("code", &code);
        }
        if let Some(state) = params.get("state") {
            q.append_pair("state", state);
        }
    }
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::FOUND;
    let location = HeaderValue::from_str(location.as_str()).map_err(|_| invalid_redirect())?;
    resp.headers_mut().insert(header::LOCATION, location);
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

// -------------------------------------------------------------------- token

async fn token(shared: &Shared, headers: &HeaderMap, body: Incoming) -> Result<Resp, DroppedConnection> {
    let (fault, latency, post_grant_delay, retry_after) = {
        let mut st = shared.lock();
        st.counters.token_requests += 1;
        (st.take_token_fault(), st.faults.latency_ms, st.faults.post_grant_delay_ms, st.faults.fail_retry_after.clone())
    };
    // Read the body even for faults so the client has finished sending when
    // the fault strikes.
    let body = read_body(body).await;
    sleep_ms(latency).await;
    match fault {
        None => {
            // The grant (and any rotation) happens now, whatever becomes of the answer.
            let resp = either(token_grant(shared, headers, body));
            sleep_ms(post_grant_delay).await;
            Ok(resp)
        }
        Some(TokenFault::Drop) => Err(DroppedConnection),
        Some(TokenFault::Fail { status, body }) => {
            let mut resp = scripted_failure(status, body);
            // A rate limit or outage answer may say when to come back
            // (RFC 9110 section 10.2.3, Retry-After: delay-seconds or an
            // HTTP-date). Linear's rate-limiting page
            // (https://linear.app/developers/rate-limiting) documents 429s
            // for the API; for the token endpoint it documents no header, so
            // tests opt in with `fail_retry_after`.
            if !retry_after.is_empty() {
                if let Ok(v) = HeaderValue::from_str(&retry_after) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            Ok(resp)
        }
        Some(TokenFault::Malformed) => {
            Ok(raw_response(StatusCode::OK, "application/json", r#"{"access_token": "x"#.to_string()))
        }
        Some(TokenFault::Oversize) => {
            let mut body = String::with_capacity(OVERSIZE_BYTES + 256);
            body.push_str(
                r#"{"access_token":"lin_oauth_oversize","token_type":"Bearer","expires_in":86399,"scope":"read","refresh_token":"lin_refresh_oversize","padding":""#,
            );
            body.extend(std::iter::repeat_n('A', OVERSIZE_BYTES));
            body.push_str("\"}");
            Ok(raw_response(StatusCode::OK, "application/json", body))
        }
    }
}

fn token_grant(shared: &Shared, headers: &HeaderMap, body: Result<Bytes, Resp>) -> Result<Resp, Resp> {
    let body = body?;
    require_form(headers)?;
    let params = parse_params(&body)?;
    let grant_type = required(&params, "grant_type")?;
    if !["authorization_code", "refresh_token", "client_credentials"].contains(&grant_type) {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code, refresh_token or client_credentials",
        ));
    }
    if grant_type == "refresh_token" {
        shared.lock().counters.token_refresh += 1;
    }
    if grant_type == "client_credentials" {
        shared.lock().counters.token_client_credentials += 1;
    }
    let credentials = client_credentials(shared, headers, &params)?;
    let result = if grant_type == "client_credentials" {
        // Linear's "Client credentials tokens"
        // (https://linear.app/developers/oauth-2-0-authentication): opt-in per
        // app; `scope` required; client authentication by Basic or body
        // fields; an app-actor token for the app's workspace valid 30 days
        // (`expires_in` 2591999) and no refresh token. Only one such token is
        // active per app: issuing one revokes the previous one everywhere.
        // With the toggle off Linear answers `{"error":"Error",
        // "error_description":"Client does not support the client_credentials
        // grant type"}`.
        let scope = required(&params, "scope")?;
        let mut st = shared.lock();
        st.authenticate(&credentials.0, &credentials.1).and_then(|()| st.client_credentials(&credentials.0, scope))
    } else if grant_type == "authorization_code" {
        let code = required(&params, "code")?;
        let redirect_uri = required(&params, "redirect_uri")?;
        let verifier = required(&params, "code_verifier")?;
        let mut st = shared.lock();
        st.authenticate(&credentials.0, &credentials.1)
            .and_then(|()| st.exchange_code(&credentials.0, code, redirect_uri, verifier))
    } else {
        let refresh_token = required(&params, "refresh_token")?;
        let mut st = shared.lock();
        st.authenticate(&credentials.0, &credentials.1).and_then(|()| st.refresh(&credentials.0, refresh_token))
    };
    match result {
        Ok(tokens) => Ok(json_response(StatusCode::OK, &tokens)),
        Err(e) => Err(grant_error(e)),
    }
}

/// The answer of a `fail_next` / `revoke_fail_next` fault.
fn scripted_failure(status: u16, body: Option<String>) -> Resp {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = body.unwrap_or_else(|| r#"{"error":"server_error"}"#.to_string());
    let content_type = if serde_json::from_str::<serde_json::Value>(&body).is_ok() {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    raw_response(status, content_type, body)
}

fn grant_error(e: GrantError) -> Resp {
    match e {
        GrantError::InvalidClient => invalid_client(),
        GrantError::InvalidGrant(desc) => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", desc),
        GrantError::ClientCredentialsDisabled => {
            oauth_error(StatusCode::BAD_REQUEST, "Error", "Client does not support the client_credentials grant type")
        }
    }
}

fn invalid_client() -> Resp {
    oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Client authentication failed")
}

/// HTTP Basic wins over form fields when both are present.
fn client_credentials(
    shared: &Shared,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<(String, String), Resp> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let bad = || {
            shared.lock().counters.invalid_client += 1;
            invalid_client()
        };
        let value = auth.to_str().map_err(|_| bad())?;
        let (scheme, encoded) = value.split_once(' ').ok_or_else(bad)?;
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
            let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
            return Ok((id.to_string(), secret.to_string()));
        }
    }
    let id = required(params, "client_id")?;
    let secret = required(params, "client_secret")?;
    Ok((id.to_string(), secret.to_string()))
}

// ------------------------------------------------------------------- revoke

/// Linear's revoke exactly as <https://linear.app/developers/oauth-2-0-authentication>
/// documents it ("Revoke an access token"), which is not RFC 7009:
/// - the access token as `Authorization: Bearer <token>` or as the
///   `access_token` form field, or the refresh token as the `refresh_token`
///   form field; no client authentication is asked for;
/// - 200: revoked; 400: unable to revoke (unknown or already revoked, and any
///   body without those fields, such as RFC 7009's `token=&token_type_hint=`);
///   401: the presented access token does not authenticate.
///
/// Revoking either token ends the whole grant: every access and refresh token
/// issued in it, across rotations, stops working (`State::revoke_grant`).
/// `revoke_fail_next` answers before any of this.
async fn revoke(shared: &Shared, headers: &HeaderMap, body: Incoming) -> Result<Resp, Resp> {
    let fault = {
        let mut st = shared.lock();
        st.counters.revoke += 1;
        st.take_revoke_fault()
    };
    let body = read_body(body).await?;
    if let Some((status, body)) = fault {
        return Ok(scripted_failure(status, body));
    }
    // A Bearer revoke may come with no body at all.
    let params = if body.iter().all(u8::is_ascii_whitespace) {
        HashMap::new()
    } else {
        require_form(headers)?;
        parse_params(&body)?
    };
    // Only the Bearer scheme presents a token; Basic client credentials, as
    // RFC 7009 clients send them, are not read.
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_string());
    let access = bearer.or_else(|| params.get("access_token").cloned());
    let mut st = shared.lock();
    let result = match (access, params.get("refresh_token")) {
        (Some(token), _) => st.revoke_by_access(&token),
        (None, Some(token)) => st.revoke_by_refresh(token),
        (None, None) => RevokeResult::Unable,
    };
    match result {
        RevokeResult::Revoked => Ok(raw_response(StatusCode::OK, "application/json", "{}".to_string())),
        RevokeResult::Unable => Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Unable to revoke token")),
        RevokeResult::Unauthenticated => {
            Err(oauth_error(StatusCode::UNAUTHORIZED, "invalid_token", "Unable to authenticate with the given token"))
        }
    }
}

// ------------------------------------------------------------------ graphql

/// Linear's GraphQL API (https://linear.app/developers/graphql): a request
/// whose Bearer token is not live (unknown, expired, revoked) gets HTTP 401
/// with an `AUTHENTICATION_ERROR` error, which is what a caller's 401 retry
/// reacts to.
async fn graphql(shared: &Shared, headers: &HeaderMap, body: Incoming) -> Result<Resp, Resp> {
    let (latency, reject) = {
        let mut st = shared.lock();
        st.counters.graphql += 1;
        let reject = st.faults.graphql_unauthorized_next > 0;
        if reject {
            st.faults.graphql_unauthorized_next -= 1;
            st.counters.faults_injected += 1;
        }
        (st.faults.graphql_latency_ms, reject)
    };
    let body = read_body(body).await;
    sleep_ms(latency).await;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let authenticated = !reject && token.is_some_and(|t| shared.lock().access_state(t) == TokenState::Live);
    if !authenticated {
        return Err(json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"errors": [{
                "message": "Authentication required, not authenticated",
                "extensions": {"code": "AUTHENTICATION_ERROR"},
            }]}),
        ));
    }
    let body = body?;
    let has_query = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .is_some_and(|v| v.get("query").is_some_and(serde_json::Value::is_string));
    if !has_query {
        return Err(json_response(
            StatusCode::BAD_REQUEST,
            &json!({"errors": [{
                "message": "Body must be JSON with a query string",
                "extensions": {"code": "BAD_USER_INPUT"},
            }]}),
        ));
    }
    // Every query gets the same answer: enough for "who am I" checks.
    let st = shared.lock();
    Ok(json_response(
        StatusCode::OK,
        &json!({"data": {
            "viewer": {"id": st.viewer.id, "name": st.viewer.name, "email": st.viewer.email},
            "organization": {
                "id": st.organization.id,
                "name": st.organization.name,
                "urlKey": st.organization.url_key,
            },
        }}),
    ))
}

// -------------------------------------------------------------------- admin

async fn admin_faults(shared: &Shared, body: Incoming) -> Result<Resp, Resp> {
    let patch: FaultsPatch = read_json(body).await?;
    let mut st = shared.lock();
    st.faults.apply(patch).map_err(|e| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e))?;
    Ok(json_response(StatusCode::OK, &st.faults))
}

async fn admin_clients(shared: &Shared, body: Incoming) -> Result<Resp, Resp> {
    let client: ClientConfig = read_json(body).await?;
    if client.client_id.is_empty() {
        return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "client_id is empty"));
    }
    shared.lock().upsert_client(client);
    Ok(json_response(StatusCode::OK, &json!({"ok": true})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct IssueRequest {
    client_id: Option<String>,
    scope: Option<String>,
    expires_in: Option<u64>,
    /// `client_credentials` mints the app's one client-credentials token
    /// (no refresh token); absent or `authorization_code`, a token pair.
    grant_type: Option<String>,
}

async fn admin_issue(shared: &Shared, body: Incoming) -> Result<Resp, Resp> {
    let body = read_body(body).await?;
    let req: IssueRequest =
        if body.iter().all(u8::is_ascii_whitespace) { IssueRequest::default() } else { parse_json(&body)? };
    let mut st = shared.lock();
    let client_id = match req.client_id {
        Some(id) => id,
        None => st
            .first_client_id()
            .ok_or_else(|| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "No client is registered"))?,
    };
    if st.client(&client_id).is_none() {
        return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_client", "Unknown client_id"));
    }
    let scope = req.scope.as_deref().unwrap_or("read");
    let tokens = match req.grant_type.as_deref() {
        None | Some("authorization_code") => {
            let expires_in = req.expires_in.unwrap_or(st.faults.expires_in);
            st.issue(&client_id, scope, expires_in)
        }
        Some("client_credentials") => {
            let expires_in = req.expires_in.unwrap_or(st.faults.client_credentials_expires_in);
            st.issue_app_token(&client_id, scope, expires_in)
        }
        Some(_) => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be authorization_code or client_credentials",
            ))
        }
    };
    Ok(json_response(StatusCode::OK, &tokens))
}

async fn admin_webhook(body: Incoming) -> Result<Resp, Resp> {
    let spec: crate::webhook::DeliverySpec = read_json(body).await?;
    let delivery =
        crate::webhook::deliver(&spec).map_err(|e| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e))?;
    Ok(json_response(StatusCode::OK, &delivery))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgPatch {
    organization: Option<Organization>,
    viewer: Option<Viewer>,
}

async fn admin_org(shared: &Shared, body: Incoming) -> Result<Resp, Resp> {
    let patch: OrgPatch = read_json(body).await?;
    {
        let mut st = shared.lock();
        if let Some(org) = patch.organization {
            st.organization = org;
        }
        if let Some(viewer) = patch.viewer {
            st.viewer = viewer;
        }
    }
    Ok(org_response(shared))
}

/// `{"token": "..."}`: that access token stops authenticating (its grant and
/// refresh token stay live). `killed` is false for a token never issued.
async fn admin_kill_access_token(shared: &Shared, body: Incoming) -> Result<Resp, Resp> {
    #[derive(Deserialize)]
    struct Kill {
        token: String,
    }
    let Kill { token } = read_json(body).await?;
    let killed = shared.lock().kill_access_token(&token);
    Ok(json_response(StatusCode::OK, &json!({"killed": killed})))
}

fn org_response(shared: &Shared) -> Resp {
    let st = shared.lock();
    json_response(StatusCode::OK, &json!({"organization": st.organization, "viewer": st.viewer}))
}

fn token_status(shared: &Shared, query: &str, refresh: bool) -> Result<Resp, Resp> {
    let params = parse_params(query.as_bytes())?;
    let token = required(&params, "token")?;
    let st = shared.lock();
    let state = if refresh { st.refresh_state(token) } else { st.access_state(token) };
    Ok(json_response(StatusCode::OK, &json!({"live": state == TokenState::Live, "state": state})))
}

/// A route of [`Shared::routes`], run on a blocking thread (it may do I/O).
async fn added_route(shared: &Shared, method: &Method, path: &str, query: &str, body: Incoming) -> Result<Resp, Resp> {
    let Some(routes) = shared.routes.clone() else { return Err(not_found()) };
    let req = AdminRequest {
        method: method.as_str().to_owned(),
        path: path.strip_prefix("/_admin/").unwrap_or(path).to_owned(),
        query: parse_params(query.as_bytes())?,
        body: read_body(body).await?.to_vec(),
    };
    let handle = Handle(shared.clone());
    let answer = tokio::task::spawn_blocking(move || routes.handle(&handle, &req))
        .await
        .map_err(|_| oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "The admin route panicked"))?;
    let (status, body) = answer.ok_or_else(not_found)?;
    Ok(json_response(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &body))
}

// ------------------------------------------------------------------ helpers

fn not_found() -> Resp {
    oauth_error(StatusCode::NOT_FOUND, "not_found", "No such endpoint")
}

fn either(r: Result<Resp, Resp>) -> Resp {
    r.unwrap_or_else(|e| e)
}

async fn sleep_ms(ms: u64) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

async fn read_body(body: Incoming) -> Result<Bytes, Resp> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => {
            Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Request body unreadable or larger than 1 MiB"))
        }
    }
}

async fn read_json<T: DeserializeOwned>(body: Incoming) -> Result<T, Resp> {
    parse_json(&read_body(body).await?)
}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Resp> {
    serde_json::from_slice(body)
        .map_err(|e| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &format!("Bad JSON: {e}")))
}

fn require_form(headers: &HeaderMap) -> Result<(), Resp> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if is_form {
        Ok(())
    } else {
        Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        ))
    }
}

/// Form or query parameters. RFC 6749 forbids repeating a parameter, and a
/// repeat is more likely a client bug than intent, so it is rejected.
fn parse_params(input: &[u8]) -> Result<HashMap<String, String>, Resp> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(input) {
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("Parameter {k} given more than once"),
            ));
        }
    }
    Ok(out)
}

fn required<'a>(params: &'a HashMap<String, String>, name: &str) -> Result<&'a str, Resp> {
    match params.get(name).map(String::as_str) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &format!("Missing {name}"))),
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Resp {
    json_response(status, &json!({"error": error, "error_description": description}))
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Resp {
    // Serializing our own plain structs cannot fail.
    let body = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_string());
    raw_response(status, "application/json", body)
}

fn raw_response(status: StatusCode, content_type: &'static str, body: String) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Token responses must not be cached (RFC 6749 5.1); harmless elsewhere.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}
