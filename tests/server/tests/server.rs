//! Behaviour of the test server over real HTTP on loopback.

mod support;

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use linear_oauth_testserver::{
    ClientConfig, Counters, FailNext, FaultsPatch, GraceMode, Organization, ServerConfig, TestServer,
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URI,
};
use serde_json::{json, Value};
use support::*;

fn start() -> TestServer {
    TestServer::start(ServerConfig::default()).expect("server starts")
}

fn authorize_params() -> Vec<(&'static str, &'static str)> {
    vec![
        ("client_id", DEFAULT_CLIENT_ID),
        ("redirect_uri", DEFAULT_REDIRECT_URI),
        ("response_type", "code"),
        ("scope", "read write"),
        ("state", "st-123"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

/// `authorize_params()` with `key` set to `value` (`None` removes it).
fn authorize_with(key: &'static str, value: Option<&'static str>) -> Vec<(&'static str, &'static str)> {
    let mut params: Vec<_> = authorize_params().into_iter().filter(|(k, _)| *k != key).collect();
    if let Some(v) = value {
        params.push((key, v));
    }
    params
}

fn authorize(addr: SocketAddr, params: &[(&str, &str)]) -> HttpResponse {
    get(addr, &format!("/oauth/authorize?{}", encode_form(params)))
}

/// Query parameters of the redirect a 302 points at.
fn redirect_query(resp: &HttpResponse, expected_base: &str) -> HashMap<String, String> {
    assert_eq!(resp.status, 302, "body: {}", resp.text());
    let location = resp.header("location").expect("Location header");
    assert!(location.starts_with(&format!("{expected_base}?")), "location {location}");
    url::Url::parse(location).expect("absolute Location").query_pairs().into_owned().collect()
}

fn get_code(addr: SocketAddr) -> String {
    let q = redirect_query(&authorize(addr, &authorize_params()), DEFAULT_REDIRECT_URI);
    q["code"].clone()
}

fn exchange(addr: SocketAddr, code: &str, verifier: &str, redirect_uri: &str) -> HttpResponse {
    post_form(
        addr,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect_uri),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ],
    )
}

fn refresh(addr: SocketAddr, refresh_token: &str) -> HttpResponse {
    post_form(
        addr,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ],
    )
}

/// Asserts a successful token response and returns (access, refresh).
fn token_pair(resp: &HttpResponse) -> (String, String) {
    assert_eq!(resp.status, 200, "body: {}", resp.text());
    let v = resp.json();
    let access = v["access_token"].as_str().expect("access_token").to_string();
    let refresh = v["refresh_token"].as_str().expect("refresh_token").to_string();
    assert!(access.starts_with("lin_oauth_"));
    assert!(refresh.starts_with("lin_refresh_"));
    (access, refresh)
}

fn assert_spent_rejected(resp: &HttpResponse) {
    assert_eq!(resp.oauth_error(400, "invalid_grant"), "Token has been expired or revoked.");
}

fn counters_over_http(addr: SocketAddr) -> Counters {
    let resp = get(addr, "/_admin/counters");
    assert_eq!(resp.status, 200);
    serde_json::from_slice(&resp.body).expect("counters JSON")
}

#[test]
fn pkce_vector_is_rfc7636_appendix_b() {
    // RFC 7636 appendix B: verifier dBjf...jXk -> challenge E9Mel...w-cM.
    assert_eq!(s256(VERIFIER), CHALLENGE);
}

#[test]
fn full_authorization_code_flow_with_pkce() {
    let server = start();
    let addr = server.addr();
    let mut params = authorize_params();
    params.push(("actor", "app"));
    let q = redirect_query(&authorize(addr, &params), DEFAULT_REDIRECT_URI);
    assert_eq!(q["state"], "st-123");
    assert!(!q.contains_key("error"));
    let code = &q["code"];

    let resp = exchange(addr, code, VERIFIER, DEFAULT_REDIRECT_URI);
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    let (access, refresh_token) = token_pair(&resp);
    let v = resp.json();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 86399);
    assert_eq!(v["scope"], "read write");
    assert!(refresh_token.len() >= "lin_refresh_".len() + 32, "refresh token has >= 128 bits");
    assert!(server.access_token_live(&access));
    assert!(server.refresh_token_live(&refresh_token));

    let gql = graphql(addr, Some(&access));
    assert_eq!(gql.status, 200);
    assert_eq!(gql.json()["data"]["organization"]["urlKey"], "testws");

    // Codes are one-shot.
    exchange(addr, code, VERIFIER, DEFAULT_REDIRECT_URI).oauth_error(400, "invalid_grant");

    let c = server.counters();
    assert_eq!(c.authorize, 1);
    assert_eq!(c.token_requests, 2);
    assert_eq!(c.token_code_ok, 1);
    assert_eq!(c.invalid_grant, 1);
    assert_eq!(c.graphql, 1);
    assert_eq!(c.last_actor.as_deref(), Some("app"));

    // last_actor follows the latest authorize, absent included.
    authorize(addr, &authorize_params());
    assert_eq!(server.counters().last_actor, None);
}

#[test]
fn authorize_takes_prompt_consent_and_refuses_admin_with_actor_app() {
    let server = start();
    let addr = server.addr();
    let mut params = authorize_params();
    params.push(("prompt", "consent"));
    redirect_query(&authorize(addr, &params), DEFAULT_REDIRECT_URI);
    assert_eq!(server.counters().last_prompt.as_deref(), Some("consent"));
    authorize(addr, &authorize_params());
    assert_eq!(server.counters().last_prompt, None);

    // admin with actor=app: refused, no code issued.
    let mut admin_app = authorize_params();
    admin_app.retain(|(k, _)| *k != "scope");
    admin_app.extend([("scope", "read admin"), ("actor", "app")]);
    let d = authorize(addr, &admin_app).oauth_error(400, "invalid_scope");
    assert!(d.contains("admin"), "{d}");
    // admin without actor=app is fine.
    admin_app.retain(|(k, _)| *k != "actor");
    assert!(redirect_query(&authorize(addr, &admin_app), DEFAULT_REDIRECT_URI).contains_key("code"));
}

#[test]
fn code_exchange_failures() {
    let server = start();
    let addr = server.addr();

    // Wrong verifier.
    let code = get_code(addr);
    let d = exchange(addr, &code, "wrong-verifier-wrong-verifier-wrong-verifier", DEFAULT_REDIRECT_URI)
        .oauth_error(400, "invalid_grant");
    assert!(d.contains("PKCE"), "{d}");
    // Redirect mismatch.
    exchange(addr, &code, VERIFIER, "http://localhost:8080/oauth/callback/").oauth_error(400, "invalid_grant");
    // Unknown code.
    exchange(addr, "nope", VERIFIER, DEFAULT_REDIRECT_URI).oauth_error(400, "invalid_grant");
    // Failed attempts did not burn the code.
    token_pair(&exchange(addr, &code, VERIFIER, DEFAULT_REDIRECT_URI));

    // Bad client: wrong secret, unknown id.
    let code = get_code(addr);
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", VERIFIER),
        ("redirect_uri", DEFAULT_REDIRECT_URI),
    ];
    let mut wrong_secret = base.to_vec();
    wrong_secret.extend([("client_id", DEFAULT_CLIENT_ID), ("client_secret", "nope")]);
    post_form(addr, "/oauth/token", &wrong_secret).oauth_error(401, "invalid_client");
    let mut unknown = base.to_vec();
    unknown.extend([("client_id", "who"), ("client_secret", DEFAULT_CLIENT_SECRET)]);
    post_form(addr, "/oauth/token", &unknown).oauth_error(401, "invalid_client");
    assert_eq!(server.counters().invalid_client, 2);

    // HTTP Basic client authentication works too.
    let auth = basic(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET);
    token_pair(&post_form_with(addr, "/oauth/token", &base, &[("Authorization", &auth)]));

    // Missing parameter, unsupported grant, wrong content type, repeated param.
    post_form(addr, "/oauth/token", &base[1..]).oauth_error(400, "invalid_request");
    let d = post_form(
        addr,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ],
    )
    .oauth_error(400, "invalid_request");
    assert!(d.contains("code"), "{d}");
    post_form(
        addr,
        "/oauth/token",
        &[("grant_type", "password"), ("client_id", DEFAULT_CLIENT_ID), ("client_secret", DEFAULT_CLIENT_SECRET)],
    )
    .oauth_error(400, "unsupported_grant_type");
    request(
        addr,
        "POST",
        "/oauth/token",
        &[("Content-Type", "application/json")],
        b"{\"grant_type\":\"refresh_token\"}",
    )
    .oauth_error(400, "invalid_request");
    post_form(addr, "/oauth/token", &[("grant_type", "refresh_token"), ("grant_type", "refresh_token")])
        .oauth_error(400, "invalid_request");
}

#[test]
fn authorize_validation() {
    let server = start();
    let addr = server.addr();

    let d = authorize(addr, &authorize_with("client_id", Some("unknown"))).oauth_error(400, "invalid_client");
    assert_eq!(d, "Invalid client_id");
    let d = authorize(addr, &authorize_with("redirect_uri", Some("http://localhost:8080/oauth/callback/")))
        .oauth_error(400, "invalid_request");
    assert_eq!(d, "Invalid redirect_uri");
    let d = authorize(addr, &authorize_with("redirect_uri", None)).oauth_error(400, "invalid_request");
    assert_eq!(d, "Invalid redirect_uri");
    // Linear's misleading answer to comma-separated scopes.
    let d = authorize(addr, &authorize_with("scope", Some("read,write"))).oauth_error(400, "invalid_request");
    assert_eq!(d, "Invalid redirect_uri");
    authorize(addr, &authorize_with("response_type", Some("token"))).oauth_error(400, "unsupported_response_type");
    authorize(addr, &authorize_with("code_challenge", None)).oauth_error(400, "invalid_request");
    authorize(addr, &authorize_with("code_challenge_method", Some("plain"))).oauth_error(400, "invalid_request");
    authorize(addr, &authorize_with("code_challenge_method", None)).oauth_error(400, "invalid_request");
    assert_eq!(server.counters().authorize, 8);
    assert_eq!(server.counters().invalid_client, 1);

    // Denial redirects with access_denied and the state, then stops.
    server.set_faults(FaultsPatch { deny_next_authorize: Some(1), ..Default::default() });
    let q = redirect_query(&authorize(addr, &authorize_params()), DEFAULT_REDIRECT_URI);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-123");
    assert!(q.contains_key("error_description"));
    assert!(!q.contains_key("code"));
    let q = redirect_query(&authorize(addr, &authorize_params()), DEFAULT_REDIRECT_URI);
    assert!(q.contains_key("code"));
    assert_eq!(server.counters().faults_injected, 1);
}

#[test]
fn refresh_rotates_and_spent_tokens_are_rejected() {
    let server = start();
    let addr = server.addr();
    let seeded = server.issue_tokens(DEFAULT_CLIENT_ID, "read write", 3600);

    let resp = refresh(addr, &seeded.refresh_token);
    let (access2, refresh2) = token_pair(&resp);
    assert_eq!(resp.json()["scope"], "read write");
    assert_ne!(access2, seeded.access_token);
    assert_ne!(refresh2, seeded.refresh_token);
    assert!(!server.refresh_token_live(&seeded.refresh_token));
    assert!(server.refresh_token_live(&refresh2));
    assert!(server.access_token_live(&access2));

    assert_spent_rejected(&refresh(addr, &seeded.refresh_token));
    assert_spent_rejected(&refresh(addr, "lin_refresh_unknown"));
    // The rejected replay did not disturb the live child.
    token_pair(&refresh(addr, &refresh2));

    // A refresh token only works for the client it was issued to.
    server.add_client(ClientConfig::new("other", "other-secret", ["http://127.0.0.1:1/cb"]));
    let other = server.issue_tokens("other", "read", 3600);
    assert_spent_rejected(&refresh(addr, &other.refresh_token));
    assert!(server.refresh_token_live(&other.refresh_token));

    let c = server.counters();
    assert_eq!(c.token_refresh, 5);
    assert_eq!(c.token_refresh_ok, 2);
    assert_eq!(c.invalid_grant, 3);
}

#[test]
fn grace_same_pair_replays_the_identical_pair() {
    let server = start();
    let addr = server.addr();
    server.set_faults(FaultsPatch { grace: Some(GraceMode::SamePair), ..Default::default() });
    let seeded = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);

    let first = token_pair(&refresh(addr, &seeded.refresh_token));
    let replay = token_pair(&refresh(addr, &seeded.refresh_token));
    assert_eq!(first, replay);
    assert!(server.refresh_token_live(&first.1));
    assert!(server.access_token_live(&first.0));
    assert_eq!(server.counters().token_refresh_ok, 2);

    // Outside the window the replay is rejected.
    server.set_faults(FaultsPatch { grace_window_s: Some(0), ..Default::default() });
    assert_spent_rejected(&refresh(addr, &seeded.refresh_token));
}

#[test]
fn grace_new_pair_mints_fresh_and_kills_the_previous_child() {
    let server = start();
    let addr = server.addr();
    server.set_faults(FaultsPatch { grace: Some(GraceMode::NewPair), ..Default::default() });
    let seeded = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);

    let first = token_pair(&refresh(addr, &seeded.refresh_token));
    let second = token_pair(&refresh(addr, &seeded.refresh_token));
    assert_ne!(first, second);
    assert!(!server.refresh_token_live(&first.1));
    assert!(!server.access_token_live(&first.0));
    assert!(server.refresh_token_live(&second.1));
    assert!(server.access_token_live(&second.0));
    assert_spent_rejected(&refresh(addr, &first.1));

    let third = token_pair(&refresh(addr, &seeded.refresh_token));
    assert!(!server.refresh_token_live(&second.1));
    assert!(server.refresh_token_live(&third.1));

    server.set_faults(FaultsPatch { grace_window_s: Some(0), ..Default::default() });
    assert_spent_rejected(&refresh(addr, &seeded.refresh_token));
    assert!(server.refresh_token_live(&third.1));
}

#[test]
fn grace_none_is_the_default() {
    let server = start();
    assert_eq!(server.faults().grace, GraceMode::None);
    let seeded = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    token_pair(&refresh(server.addr(), &seeded.refresh_token));
    assert_spent_rejected(&refresh(server.addr(), &seeded.refresh_token));
}

#[test]
fn omit_refresh_token_keeps_the_presented_token_live() {
    let server = start();
    let addr = server.addr();
    server.set_faults(FaultsPatch { omit_refresh_token: Some(true), ..Default::default() });
    let seeded = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);

    for _ in 0..2 {
        let resp = refresh(addr, &seeded.refresh_token);
        assert_eq!(resp.status, 200, "{}", resp.text());
        let v = resp.json();
        assert!(v.get("refresh_token").is_none(), "{v}");
        let access = v["access_token"].as_str().unwrap();
        assert!(access.starts_with("lin_oauth_"));
        assert!(server.access_token_live(access));
        assert!(server.refresh_token_live(&seeded.refresh_token));
    }

    // Back to rotation.
    server.set_faults(FaultsPatch { omit_refresh_token: Some(false), ..Default::default() });
    token_pair(&refresh(addr, &seeded.refresh_token));
    assert!(!server.refresh_token_live(&seeded.refresh_token));
}

#[test]
fn expires_in_knob_and_expired_access_tokens() {
    let server = start();
    let addr = server.addr();
    server.set_faults(FaultsPatch { expires_in: Some(120), ..Default::default() });
    let seeded = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 0);
    assert!(!server.access_token_live(&seeded.access_token));
    assert_eq!(graphql(addr, Some(&seeded.access_token)).status, 401);
    // An expired access token does not stop its refresh token.
    let resp = refresh(addr, &seeded.refresh_token);
    token_pair(&resp);
    assert_eq!(resp.json()["expires_in"], 120);

    let status = get(addr, &format!("/_admin/access-token-status?token={}", seeded.access_token)).json();
    assert_eq!(status, json!({"live": false, "state": "expired"}));
}

#[test]
fn a_killed_access_token_gets_401_and_its_refresh_token_still_works() {
    let server = start();
    let addr = server.addr();
    let seeded = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    assert_eq!(graphql(addr, Some(&seeded.access_token)).status, 200);
    let resp = post_json(addr, "/_admin/kill-access-token", &json!({"token": seeded.access_token}));
    assert_eq!(resp.json(), json!({"killed": true}));
    assert_eq!(graphql(addr, Some(&seeded.access_token)).status, 401);
    let fresh = token_pair(&refresh(addr, &seeded.refresh_token));
    assert_eq!(graphql(addr, Some(&fresh.0)).status, 200);
    assert_eq!(
        post_json(addr, "/_admin/kill-access-token", &json!({"token": "nope"})).json(),
        json!({"killed": false})
    );
    // graphql_unauthorized_next: the next N requests get 401 whatever the token.
    server.set_faults(FaultsPatch { graphql_unauthorized_next: Some(2), ..Default::default() });
    assert_eq!(graphql(addr, Some(&fresh.0)).status, 401);
    assert_eq!(graphql(addr, Some(&fresh.0)).status, 401);
    assert_eq!(graphql(addr, Some(&fresh.0)).status, 200);
    assert_eq!(server.counters().graphql, 6);
}

#[test]
fn graphql_requires_a_live_bearer_token() {
    let server = start();
    let addr = server.addr();
    let expected_error = json!({"errors": [{
        "message": "Authentication required, not authenticated",
        "extensions": {"code": "AUTHENTICATION_ERROR"},
    }]});
    for token in [None, Some("lin_oauth_bogus")] {
        let resp = graphql(addr, token);
        assert_eq!(resp.status, 401);
        assert_eq!(resp.json(), expected_error);
    }
    let seeded = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    // Not a bearer scheme.
    let resp = request(
        addr,
        "POST",
        "/graphql",
        &[("Authorization", &seeded.access_token)],
        br#"{"query":"{ viewer { id } }"}"#,
    );
    assert_eq!(resp.status, 401);

    let resp = graphql(addr, Some(&seeded.access_token));
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.json(),
        json!({"data": {
            "viewer": {"id": "0f1e2d3c-4b5a-4697-8877-665544332211", "name": "Test User", "email": "test.user@example.com"},
            "organization": {"id": "5a1d3f2e-8c4b-4e6f-9a7d-2b3c4d5e6f70", "name": "Test Workspace", "urlKey": "testws"},
        }})
    );
    // A body without a query is a 400, not an auth failure.
    let auth = format!("Bearer {}", seeded.access_token);
    let resp = request(addr, "POST", "/graphql", &[("Authorization", &auth)], b"not json");
    assert_eq!(resp.status, 400);

    // The org/viewer are changeable over HTTP and from Rust.
    let resp =
        post_json(addr, "/_admin/org", &json!({"organization": {"id": "org-2", "name": "Other", "urlKey": "other"}}));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(graphql(addr, Some(&seeded.access_token)).json()["data"]["organization"]["urlKey"], "other");
    server.set_organization(Organization { id: "org-3".into(), name: "Third".into(), url_key: "third".into() });
    assert_eq!(graphql(addr, Some(&seeded.access_token)).json()["data"]["organization"]["id"], "org-3");
    assert_eq!(graphql(addr, Some(&seeded.access_token)).json()["data"]["viewer"]["name"], "Test User");
    assert_eq!(server.counters().graphql, 8);
}

/// `POST /oauth/revoke` with the access token as a Bearer header and no body.
fn revoke_bearer(addr: SocketAddr, access_token: &str) -> HttpResponse {
    let auth = format!("Bearer {access_token}");
    request(addr, "POST", "/oauth/revoke", &[("Authorization", &auth)], b"")
}

/// Every way of using a token of the grant fails: GraphQL 401, refresh
/// `invalid_grant`, both tokens reported revoked.
fn assert_grant_dead(server: &TestServer, access: &str, refresh_token: &str) {
    let addr = server.addr();
    assert!(!server.access_token_live(access));
    assert!(!server.refresh_token_live(refresh_token));
    assert_eq!(graphql(addr, Some(access)).status, 401);
    assert_spent_rejected(&refresh(addr, refresh_token));
}

// Linear's revoke: https://linear.app/developers/oauth-2-0-authentication

#[test]
fn revoke_with_a_bearer_access_token_ends_the_grant() {
    let server = start();
    let addr = server.addr();
    let a = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    let other = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    let resp = revoke_bearer(addr, &a.access_token);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_grant_dead(&server, &a.access_token, &a.refresh_token);
    assert!(
        server.access_token_live(&other.access_token) && server.refresh_token_live(&other.refresh_token),
        "another grant is untouched"
    );
    // The revoked token no longer authenticates.
    revoke_bearer(addr, &a.access_token).oauth_error(401, "invalid_token");
    // Form content type with an empty body is fine too.
    let b = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    let auth = format!("Bearer {}", b.access_token);
    assert_eq!(post_form_with(addr, "/oauth/revoke", &[], &[("Authorization", &auth)]).status, 200);
    assert_grant_dead(&server, &b.access_token, &b.refresh_token);
}

#[test]
fn revoke_with_the_access_token_form_field_ends_the_grant() {
    let server = start();
    let addr = server.addr();
    let a = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    let resp = post_form(addr, "/oauth/revoke", &[("access_token", &a.access_token)]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_grant_dead(&server, &a.access_token, &a.refresh_token);
    post_form(addr, "/oauth/revoke", &[("access_token", &a.access_token)]).oauth_error(401, "invalid_token");
}

#[test]
fn revoke_with_the_refresh_token_form_field_ends_the_grant() {
    let server = start();
    let addr = server.addr();
    let a = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    let resp = post_form(addr, "/oauth/revoke", &[("refresh_token", &a.refresh_token)]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_grant_dead(&server, &a.access_token, &a.refresh_token);
    // Already revoked: unable to revoke.
    post_form(addr, "/oauth/revoke", &[("refresh_token", &a.refresh_token)]).oauth_error(400, "invalid_request");
    post_form(addr, "/oauth/revoke", &[("refresh_token", "lin_refresh_nope")]).oauth_error(400, "invalid_request");
}

#[test]
fn rfc7009_token_bodies_are_refused_and_revoke_nothing() {
    let server = start();
    let addr = server.addr();
    let a = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    for (token, hint) in [(&a.access_token, "access_token"), (&a.refresh_token, "refresh_token")] {
        post_form(
            addr,
            "/oauth/revoke",
            &[
                ("token", token),
                ("token_type_hint", hint),
                ("client_id", DEFAULT_CLIENT_ID),
                ("client_secret", DEFAULT_CLIENT_SECRET),
            ],
        )
        .oauth_error(400, "invalid_request");
        // Client credentials as HTTP Basic are not a Bearer token either.
        let auth = basic(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET);
        post_form_with(addr, "/oauth/revoke", &[("token", token)], &[("Authorization", &auth)])
            .oauth_error(400, "invalid_request");
    }
    request(addr, "POST", "/oauth/revoke", &[], b"").oauth_error(400, "invalid_request");
    assert!(server.access_token_live(&a.access_token) && server.refresh_token_live(&a.refresh_token));
    assert_eq!(graphql(addr, Some(&a.access_token)).status, 200);
    assert_eq!(server.counters().revoke, 5);
}

#[test]
fn a_bearer_token_that_does_not_authenticate_gets_401() {
    let server = start();
    let addr = server.addr();
    revoke_bearer(addr, "lin_oauth_nope").oauth_error(401, "invalid_token");
    let expired = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 0);
    revoke_bearer(addr, &expired.access_token).oauth_error(401, "invalid_token");
    // The refresh token of that grant is still live and still revokes it.
    assert!(server.refresh_token_live(&expired.refresh_token));
    let resp = post_form(addr, "/oauth/revoke", &[("refresh_token", &expired.refresh_token)]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(!server.refresh_token_live(&expired.refresh_token));
}

#[test]
fn revoking_a_rotated_refresh_token_kills_every_leg_of_the_grant() {
    let server = start();
    let addr = server.addr();
    let first = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    let (access2, refresh2) = token_pair(&refresh(addr, &first.refresh_token));
    let (access3, refresh3) = token_pair(&refresh(addr, &refresh2));
    // Access tokens of earlier legs are still live before the revoke.
    assert_eq!(graphql(addr, Some(&first.access_token)).status, 200);
    assert_eq!(graphql(addr, Some(&access2)).status, 200);
    // A spent refresh token is not one Linear can revoke with.
    post_form(addr, "/oauth/revoke", &[("refresh_token", &first.refresh_token)]).oauth_error(400, "invalid_request");
    assert!(server.refresh_token_live(&refresh3));

    let resp = post_form(addr, "/oauth/revoke", &[("refresh_token", &refresh3)]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    for access in [&first.access_token, &access2, &access3] {
        assert!(!server.access_token_live(access));
        assert_eq!(graphql(addr, Some(access)).status, 401);
    }
    for refresh_token in [&first.refresh_token, &refresh2, &refresh3] {
        assert_spent_rejected(&refresh(addr, refresh_token));
    }

    // Out of band (the app removed in Linear's settings), through any token.
    let o = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    let (o_access2, _) = token_pair(&refresh(addr, &o.refresh_token));
    assert!(server.revoke_grant(&o.refresh_token));
    assert!(!server.access_token_live(&o_access2));
    assert!(!server.revoke_grant("lin_oauth_unknown"));

    // The same through the first leg's access token, on a fresh grant.
    let g = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    let (_, g_refresh2) = token_pair(&refresh(addr, &g.refresh_token));
    assert_eq!(revoke_bearer(addr, &g.access_token).status, 200);
    assert_spent_rejected(&refresh(addr, &g_refresh2));
}

#[test]
fn revoke_fail_next_answers_first_and_revokes_nothing() {
    let server = start();
    let addr = server.addr();
    let a = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    server.set_faults(FaultsPatch {
        revoke_fail_next: Some(FailNext { count: 2, status: 503, body: None }),
        ..Default::default()
    });
    // The token endpoint is not affected by the revoke knob.
    let b = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    token_pair(&refresh(addr, &b.refresh_token));
    for _ in 0..2 {
        let resp = revoke_bearer(addr, &a.access_token);
        assert_eq!(resp.status, 503);
        assert_eq!(resp.json(), json!({"error": "server_error"}));
        assert!(server.access_token_live(&a.access_token));
    }
    assert_eq!(server.faults().revoke_fail_next, None);
    assert_eq!(revoke_bearer(addr, &a.access_token).status, 200);
    let c = server.counters();
    assert_eq!((c.revoke, c.faults_injected), (3, 2));
    post_json(addr, "/_admin/faults", &json!({"revoke_fail_next": {"count": 1, "status": 42}}))
        .oauth_error(400, "invalid_request");
}

#[test]
fn fail_next_answers_with_the_scripted_status_without_touching_state() {
    let server = start();
    let addr = server.addr();
    let seeded = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    server.set_faults(FaultsPatch {
        fail_next: Some(FailNext { count: 2, status: 503, body: None }),
        ..Default::default()
    });
    for _ in 0..2 {
        let resp = refresh(addr, &seeded.refresh_token);
        assert_eq!(resp.status, 503);
        assert_eq!(resp.json(), json!({"error": "server_error"}));
        assert!(server.refresh_token_live(&seeded.refresh_token));
    }
    // Custom non-JSON body.
    server.set_faults(FaultsPatch {
        fail_next: Some(FailNext { count: 1, status: 502, body: Some("<html>bad gateway</html>".into()) }),
        ..Default::default()
    });
    let resp = refresh(addr, &seeded.refresh_token);
    assert_eq!(resp.status, 502);
    assert_eq!(resp.text(), "<html>bad gateway</html>");
    assert!(resp.header("content-type").unwrap().starts_with("text/plain"));

    token_pair(&refresh(addr, &seeded.refresh_token));
    let c = server.counters();
    assert_eq!(c.token_requests, 4);
    assert_eq!(c.faults_injected, 3);
    assert_eq!(c.token_refresh, 1, "faulted requests never reach grant logic");
    assert_eq!(c.token_refresh_ok, 1);
}

#[test]
fn malformed_next_returns_truncated_json() {
    let server = start();
    let addr = server.addr();
    let seeded = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    server.set_faults(FaultsPatch { malformed_next: Some(1), ..Default::default() });
    let resp = refresh(addr, &seeded.refresh_token);
    assert_eq!(resp.status, 200);
    assert!(resp.text().starts_with(r#"{"access_token": "x"#));
    assert!(serde_json::from_slice::<Value>(&resp.body).is_err());
    assert!(server.refresh_token_live(&seeded.refresh_token));
    token_pair(&refresh(addr, &seeded.refresh_token));
    assert_eq!(server.counters().faults_injected, 1);
}

#[test]
fn oversize_next_returns_a_two_mebibyte_body() {
    let server = start();
    let addr = server.addr();
    let seeded = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    server.set_faults(FaultsPatch { oversize_next: Some(1), ..Default::default() });
    let resp = refresh(addr, &seeded.refresh_token);
    assert_eq!(resp.status, 200);
    assert!(resp.body.len() >= 2 << 20, "{} bytes", resp.body.len());
    assert!(resp.json().is_object());
    assert!(server.refresh_token_live(&seeded.refresh_token));
    token_pair(&refresh(addr, &seeded.refresh_token));
}

#[test]
fn drop_next_closes_the_connection_without_a_response() {
    let server = start();
    let addr = server.addr();
    let seeded = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    server.set_faults(FaultsPatch { drop_next: Some(2), ..Default::default() });
    let req = form_request(
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &seeded.refresh_token),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
        ],
        &[],
    );
    for _ in 0..2 {
        match send_raw(addr, &req) {
            // EOF before a single byte of response.
            Ok(bytes) => assert!(bytes.is_empty(), "got a response: {:?}", String::from_utf8_lossy(&bytes)),
            Err(e) => assert!(
                matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe),
                "unexpected error kind {e:?}"
            ),
        }
    }
    assert!(server.refresh_token_live(&seeded.refresh_token));
    token_pair(&parse_response(&send_raw(addr, &req).expect("third request answered")));
    let c = server.counters();
    assert_eq!(c.token_requests, 3);
    assert_eq!(c.faults_injected, 2);
}

#[test]
fn latency_knobs_delay_answers() {
    let server = start();
    let addr = server.addr();
    let seeded = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    server.set_faults(FaultsPatch { latency_ms: Some(300), graphql_latency_ms: Some(200), ..Default::default() });

    let t = Instant::now();
    token_pair(&refresh(addr, &seeded.refresh_token));
    assert!(t.elapsed() >= Duration::from_millis(300), "{:?}", t.elapsed());

    let t = Instant::now();
    assert_eq!(graphql(addr, Some(&seeded.access_token)).status, 200);
    assert!(t.elapsed() >= Duration::from_millis(200), "{:?}", t.elapsed());

    // Latency stacks with faults.
    server.set_faults(FaultsPatch { latency_ms: Some(150), drop_next: Some(1), ..Default::default() });
    let t = Instant::now();
    let _ = send_raw(addr, &form_request("/oauth/token", &[("grant_type", "refresh_token")], &[]));
    assert!(t.elapsed() >= Duration::from_millis(150), "{:?}", t.elapsed());

    server.reset();
    let t = Instant::now();
    assert_eq!(graphql(addr, Some(&seeded.access_token)).status, 200);
    assert!(t.elapsed() < Duration::from_millis(150), "reset clears latency: {:?}", t.elapsed());
}

#[test]
fn admin_api_over_http() {
    let server = start();
    let addr = server.addr();

    // Faults: merge, reject typos and bad statuses.
    let resp = post_json(addr, "/_admin/faults", &json!({"latency_ms": 5, "grace": "new_pair"}));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = post_json(addr, "/_admin/faults", &json!({"fail_next": {"count": 1, "status": 500}}));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let faults = get(addr, "/_admin/faults").json();
    assert_eq!(faults["latency_ms"], 5);
    assert_eq!(faults["grace"], "new_pair");
    assert_eq!(faults["fail_next"]["count"], 1);
    post_json(addr, "/_admin/faults", &json!({"latncy_ms": 5})).oauth_error(400, "invalid_request");
    post_json(addr, "/_admin/faults", &json!({"fail_next": {"count": 1, "status": 42}}))
        .oauth_error(400, "invalid_request");
    post_json(addr, "/_admin/faults", &json!({"grace": "sometimes"})).oauth_error(400, "invalid_request");

    // Reset clears faults and counters.
    assert_eq!(post_json(addr, "/_admin/reset", &json!({})).status, 200);
    assert_eq!(server.faults().grace, GraceMode::None);
    assert_eq!(server.faults().fail_next, None);

    // Register a dynamic loopback client and run the flow with it.
    let redirect = "http://127.0.0.1:45678/callback";
    let resp = post_json(
        addr,
        "/_admin/clients",
        &json!({"client_id": "dyn", "client_secret": "dyn-secret", "redirect_uris": [redirect]}),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = authorize(
        addr,
        &[
            ("client_id", "dyn"),
            ("redirect_uri", redirect),
            ("response_type", "code"),
            ("scope", "read"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    );
    let q = redirect_query(&resp, redirect);
    assert!(!q.contains_key("state"), "no state requested, none echoed");
    let resp = post_form(
        addr,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("code_verifier", VERIFIER),
            ("redirect_uri", redirect),
            ("client_id", "dyn"),
            ("client_secret", "dyn-secret"),
        ],
    );
    token_pair(&resp);

    // Issue, then the status endpoints.
    let issued = post_json(addr, "/_admin/issue", &json!({"scope": "read write", "expires_in": 60})).json();
    assert_eq!(issued["expires_in"], 60);
    assert_eq!(issued["scope"], "read write");
    let access = issued["access_token"].as_str().unwrap();
    let refresh_token = issued["refresh_token"].as_str().unwrap();
    let status = |kind: &str, token: &str| get(addr, &format!("/_admin/{kind}-token-status?token={token}")).json();
    assert_eq!(status("access", access)["live"], true);
    assert_eq!(status("refresh", refresh_token), json!({"live": true, "state": "live"}));
    token_pair(&refresh(addr, refresh_token));
    assert_eq!(status("refresh", refresh_token), json!({"live": false, "state": "spent"}));
    assert_eq!(status("refresh", "lin_refresh_x"), json!({"live": false, "state": "unknown"}));
    post_json(addr, "/_admin/issue", &json!({"client_id": "nobody"})).oauth_error(400, "invalid_client");
    let default_issue = request(addr, "POST", "/_admin/issue", &[], b"");
    assert_eq!(default_issue.status, 200);
    assert_eq!(default_issue.json()["scope"], "read");

    // Counters over HTTP match the Rust view; reset keeps tokens.
    let c = counters_over_http(addr);
    assert_eq!(c, server.counters());
    assert_eq!(c.authorize, 1);
    assert_eq!(c.token_code_ok, 1);
    assert_eq!(c.token_refresh_ok, 1);
    assert_eq!(post_json(addr, "/_admin/reset", &json!({})).status, 200);
    assert_eq!(counters_over_http(addr), Counters::default());
    assert!(server.access_token_live(access));

    // Unknown paths and wrong methods.
    assert_eq!(get(addr, "/nope").status, 404);
    assert_eq!(get(addr, "/oauth/token").status, 405);
}

#[test]
fn debug_output_does_not_leak_tokens() {
    let server = start();
    let issued = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    let text = format!("{server:?} {issued:?} {:?}", ClientConfig::default());
    assert!(!text.contains(&issued.access_token));
    assert!(!text.contains(&issued.refresh_token));
    assert!(!text.contains(DEFAULT_CLIENT_SECRET));
    assert!(text.contains(&server.base_url()));
}

#[test]
fn urls_point_at_loopback() {
    let server = start();
    assert!(server.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(server.authorize_url(), format!("{}/oauth/authorize", server.base_url()));
    assert!(server.addr().ip().is_loopback());
}

#[tokio::test(flavor = "current_thread")]
async fn works_inside_a_tokio_runtime() {
    let server = start();
    let addr = server.addr();
    let seeded = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    let refresh_token = seeded.refresh_token.clone();
    // Our blocking client must leave this runtime's only thread free.
    let resp = tokio::task::spawn_blocking(move || refresh(addr, &refresh_token)).await.unwrap();
    token_pair(&resp);
    assert_eq!(server.counters().token_refresh_ok, 1);
    drop(server); // Dropping inside a runtime must not panic.
    assert!(std::net::TcpStream::connect(addr).is_err(), "server stopped listening");
}

#[test]
fn binary_prints_its_address_and_serves() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let mut child = Command::new(env!("CARGO_BIN_EXE_linear-oauth-testserver"))
        .args(["--client-id", "cli-id", "--client-secret", "cli-secret"])
        .args(["--redirect-uri", "http://127.0.0.1:9/a", "--redirect-uri=http://127.0.0.1:9/b"])
        .args(["--grace", "same_pair", "--expires-in", "77"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn binary");
    // Kill the child even if an assertion below fails.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let _guard = Kill(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("first line");
    let url = line.trim_end().strip_prefix("listening on http://").expect("listening line");
    let addr: SocketAddr = url.parse().expect("address");
    assert!(addr.ip().is_loopback());

    let faults = get(addr, "/_admin/faults").json();
    assert_eq!(faults["grace"], "same_pair");
    assert_eq!(faults["expires_in"], 77);
    let q = redirect_query(
        &authorize(
            addr,
            &[
                ("client_id", "cli-id"),
                ("redirect_uri", "http://127.0.0.1:9/b"),
                ("response_type", "code"),
                ("scope", "read"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        ),
        "http://127.0.0.1:9/b",
    );
    assert!(q.contains_key("code"));
    // The default client was replaced.
    authorize(addr, &authorize_params()).oauth_error(400, "invalid_client");
}

#[test]
fn binary_rejects_bad_flags() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_linear-oauth-testserver"))
        .args(["--grace", "sometimes"])
        .output()
        .expect("run binary");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn drip_sends_token_bodies_a_byte_at_a_time_until_reset() {
    let server = start();
    let addr = server.addr();
    let seeded = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    server.set_faults(FaultsPatch { drip_ms: Some(5), ..Default::default() });
    assert_eq!(server.faults().drip_ms, 5);

    // The answer is Linear's usual one, only slow: one gap per body byte.
    let t = Instant::now();
    let resp = refresh(addr, &seeded.refresh_token);
    let (access, refresh_token) = token_pair(&resp);
    assert!(!access.is_empty() && !refresh_token.is_empty());
    let len = resp.body.len() as u32;
    assert!(len > 100, "{len}");
    assert!(t.elapsed() >= Duration::from_millis(5) * (len - 1), "{:?} for {len} bytes", t.elapsed());

    server.reset();
    let seeded = server.issue_tokens(DEFAULT_CLIENT_ID, "read", 3600);
    let t = Instant::now();
    token_pair(&refresh(addr, &seeded.refresh_token));
    assert!(t.elapsed() < Duration::from_millis(5) * (len / 2), "reset clears drip: {:?}", t.elapsed());
}

// Linear's client_credentials grant: https://linear.app/developers/oauth-2-0-authentication
// ("Client credentials tokens").

fn client_credentials(addr: SocketAddr, scope: Option<&str>) -> HttpResponse {
    let mut params = vec![
        ("grant_type", "client_credentials"),
        ("client_id", DEFAULT_CLIENT_ID),
        ("client_secret", DEFAULT_CLIENT_SECRET),
    ];
    if let Some(s) = scope {
        params.push(("scope", s));
    }
    post_form(addr, "/oauth/token", &params)
}

#[test]
fn client_credentials_one_active_token_per_app_thirty_days_no_refresh_token() {
    let server = start();
    let first = client_credentials(server.addr(), Some("read write"));
    assert_eq!(first.status, 200, "{}", first.text());
    let first = first.json();
    assert_eq!(first["expires_in"], 2_591_999);
    assert_eq!(first["scope"], "read write");
    assert!(first.get("refresh_token").is_none(), "{first}");
    let first = first["access_token"].as_str().unwrap().to_owned();
    assert_eq!(graphql(server.addr(), Some(&first)).status, 200);

    // Basic client authentication works too; the new token ends the old one.
    let second = post_form_with(
        server.addr(),
        "/oauth/token",
        &[("grant_type", "client_credentials"), ("scope", "read")],
        &[("Authorization", &basic(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET))],
    );
    assert_eq!(second.status, 200, "{}", second.text());
    let second = second.json()["access_token"].as_str().unwrap().to_owned();
    assert!(!server.access_token_live(&first));
    assert_eq!(graphql(server.addr(), Some(&first)).status, 401);
    assert!(server.access_token_live(&second));
    let c = server.counters();
    assert_eq!((c.token_client_credentials, c.token_client_credentials_ok), (2, 2));

    // Scope is required; a bad secret is invalid_client.
    assert_eq!(client_credentials(server.addr(), None).status, 400);
    let bad = post_form(
        server.addr(),
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", "x"),
        ],
    );
    assert_eq!(bad.status, 401);
    assert!(server.access_token_live(&second), "a refused request revokes nothing");
}

#[test]
fn client_credentials_disabled_answers_as_linear_does() {
    let server = start();
    let live = server.issue_client_credentials(DEFAULT_CLIENT_ID, "read", 3600);
    assert!(live.refresh_token.is_empty());
    server.set_client_credentials(DEFAULT_CLIENT_ID, false);
    let r = client_credentials(server.addr(), Some("read"));
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"error": "Error", "error_description": "Client does not support the client_credentials grant type"})
    );
    assert!(server.access_token_live(&live.access_token));
    // The admin API's toggle is the client's field.
    let c = ClientConfig { client_credentials: true, ..ClientConfig::default() };
    let before_rotation = server.issue_client_credentials(DEFAULT_CLIENT_ID, "read", 3600);
    assert_eq!(post_json(server.addr(), "/_admin/clients", &serde_json::to_value(&c).unwrap()).status, 200);
    assert_eq!(client_credentials(server.addr(), Some("read")).status, 200);
    assert!(!server.access_token_live(&before_rotation.access_token), "superseded by the new one");
    // Rotating the client secret ends the app's client-credentials token.
    let live = server.issue_client_credentials(DEFAULT_CLIENT_ID, "read", 3600);
    server.add_client(ClientConfig { client_secret: "rotated".into(), ..ClientConfig::default() });
    assert!(!server.access_token_live(&live.access_token));
    server.add_client(ClientConfig::default());
    let issued = post_json(server.addr(), "/_admin/issue", &json!({"grant_type": "client_credentials"})).json();
    assert!(issued.get("refresh_token").is_none() && issued["expires_in"] == 2_591_999, "{issued}");
}

#[test]
fn client_credentials_token_is_revoked_with_bearer() {
    let server = start();
    let t = server.issue_client_credentials(DEFAULT_CLIENT_ID, "read", 3600);
    assert_eq!(revoke_bearer(server.addr(), &t.access_token).status, 200);
    assert!(!server.access_token_live(&t.access_token));
    assert_eq!(revoke_bearer(server.addr(), &t.access_token).status, 401);
}
