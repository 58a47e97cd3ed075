//! The renewal request to Linear's token endpoint, and its retries through
//! rate limits and outages. Callers hold the single flight and the lease.

use linear_oauth_core::{
    client_credentials_disabled, client_credentials_form, is_transient, parse_retry_after, parse_token_response,
    refresh_form, request_slack_ms, retry_delay, Attempt, EndpointFailure, Grant, StoredToken, TokenResponse,
};

use crate::call::Call;
use crate::endpoint_error;
use crate::http::Failure;
use crate::linear::oauth::log::Level;
use crate::linear::oauth::metrics::Event;
use crate::linear::oauth::types::{EndpointError, Error};
use crate::outage::describe_error;
use crate::settings::endpoint;

/// How a renewal request ended without a token.
pub(crate) enum RefreshFailure {
    InvalidGrant,
    /// Linear answered about the credential, or with garbage: final.
    Other(Error),
    /// A rate limit or outage (429, 5xx, transport) that outlasted the retries.
    Transient(Error),
}

/// One refresh request, retried through rate limits and outages as core's
/// [`retry_delay`] decides: never re-sent when it may have reached Linear,
/// and only when the retry, at its slowest, and its write-back end by
/// `end_ms` (the lease's or the call's end, whichever is first).
pub(crate) fn post_refresh(cx: &Call<'_>, tok: &StoredToken, end_ms: i64) -> Result<TokenResponse, RefreshFailure> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (outcome, error) = match post_refresh_once(cx, tok) {
            Ok(resp) => return Ok(resp),
            Err(Sent::InvalidGrant) => return Err(RefreshFailure::InvalidGrant),
            Err(Sent::Failed(outcome, error)) => (outcome, error),
        };
        if matches!(outcome, Attempt::Answered { status: 429, .. }) {
            cx.count(Event::RateLimited, &tok.workspace_id);
        }
        let jitter = u64::from_le_bytes(cx.io.random_32()[..8].try_into().unwrap_or_default());
        let slack = request_slack_ms(cx.now(), end_ms, cx.s.http_timeout_ms);
        match slack.and_then(|remaining| retry_delay(attempt, outcome, remaining, jitter)) {
            Some(delay) => {
                cx.log(
                    Level::Warn,
                    "the token endpoint is unavailable; retrying",
                    &[
                        ("workspace_id", &tok.workspace_id),
                        ("attempt", &attempt.to_string()),
                        ("delay_ms", &delay.to_string()),
                        ("error", &describe_error(&error)),
                    ],
                );
                cx.io.sleep_ms(delay);
            }
            None if is_transient(outcome) => return Err(RefreshFailure::Transient(error)),
            None => return Err(RefreshFailure::Other(error)),
        }
    }
}

enum Sent {
    InvalidGrant,
    Failed(Attempt, Error),
}

fn post_refresh_once(cx: &Call<'_>, tok: &StoredToken) -> Result<TokenResponse, Sent> {
    // The one renewal point for both grants: a refresh for an
    // authorization-code token, a new client_credentials fetch for a
    // client-credentials one (no refresh token; the new token ends the old
    // one everywhere).
    let client_secret = cx.client_secret.as_ref().unwrap_or(&tok.client_secret);
    let body = match (tok.grant(), &tok.refresh_token) {
        (Grant::AuthorizationCode, Some(refresh)) => refresh_form(refresh, &tok.client_id, client_secret),
        (Grant::ClientCredentials, _) => client_credentials_form(&tok.scope, &tok.client_id, client_secret),
        (Grant::AuthorizationCode, None) => unreachable!("parse requires a refresh token for this grant"),
    };
    let resp = cx
        .io
        .post(
            &endpoint(&cx.s, "oauth/token"),
            "application/x-www-form-urlencoded",
            body.as_bytes(),
            None,
            cx.s.http_timeout_ms,
        )
        .map_err(|f| match f {
            Failure::NotSent(m) => Sent::Failed(Attempt::NotSent, Error::Transport(m)),
            Failure::MaybeSent(m) => Sent::Failed(Attempt::MaybeSent, Error::Transport(m)),
        })?;
    let retry_after_ms = resp.retry_after.as_deref().and_then(|v| parse_retry_after(v, cx.now()));
    parse_token_response(resp.status, &resp.body).map_err(|f| {
        if tok.grant() == Grant::AuthorizationCode && f.is_invalid_grant() {
            return Sent::InvalidGrant;
        }
        let secrets = [tok.lineage(), tok.client_secret.secret(), client_secret.secret(), tok.access_token.secret()];
        let refused_client = matches!(&f, EndpointFailure::Error { code: Some(c), .. } if c == "invalid_client");
        let mut error = match tok.grant() {
            Grant::AuthorizationCode => endpoint_error(f, &secrets),
            // Linear refuses the stored client secret (rotated in the app's
            // settings, which also ended the token): nothing stored can get
            // another token, so the workspace must be set up again.
            // (A secret being verified is not the stored one: its refusal
            // is the endpoint's answer, and says nothing about the stored one.)
            Grant::ClientCredentials if refused_client && cx.client_secret.is_none() => {
                Error::ReauthorizationRequired(format!(
                    "Linear refused the stored client credentials of workspace {} (invalid_client; was the client \
                 secret rotated?); run `linear-oauth setup --client-credentials` again with the current secret",
                    tok.workspace_id
                ))
            }
            Grant::ClientCredentials => client_credentials_error(f, &secrets),
        };
        if let Error::TokenEndpoint(e) = &mut error {
            e.retry_after_ms = retry_after_ms;
        }
        Sent::Failed(Attempt::Answered { status: resp.status, retry_after_ms }, error)
    })
}

/// A failed client_credentials request as hosts see it; a disabled grant
/// names the Linear setting that turns it on.
pub(crate) fn client_credentials_error(f: EndpointFailure, secrets: &[&str]) -> Error {
    if !client_credentials_disabled(&f) {
        return endpoint_error(f, secrets);
    }
    let EndpointFailure::Error { status, code, description } = f.redacted(secrets) else {
        unreachable!("a disabled grant is an error answer")
    };
    let linear = description.map(|d| format!(" (Linear: \"{d}\")")).unwrap_or_default();
    Error::TokenEndpoint(EndpointError {
        status,
        code,
        retry_after_ms: None,
        description: Some(format!(
            "the Linear app does not allow the client credentials grant{linear}; enable \"Client credentials\" \
             in the app's settings in Linear (Settings > API > OAuth applications > the app), then retry"
        )),
    })
}
