//! Token bookkeeping. Everything here is synchronous and runs under one
//! mutex, so each request sees and leaves a consistent state.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{ClientConfig, Counters, Faults, GraceMode, IssuedTokens, Organization, ServerConfig, Viewer};

/// Linear's codes are short-lived; ten minutes is generous for any test.
const CODE_TTL: Duration = Duration::from_secs(600);

pub(crate) const ACCESS_PREFIX: &str = "lin_oauth_";
pub(crate) const REFRESH_PREFIX: &str = "lin_refresh_";

/// 256 random bits, hex encoded.
pub(crate) fn random_token(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    let mut out = String::with_capacity(prefix.len() + 64);
    out.push_str(prefix);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

pub(crate) fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Collapses any whitespace run to one space, so `a+b` and `a  b` grant `a b`.
pub(crate) fn normalize_scope(scope: &str) -> String {
    scope.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The JSON body of a successful token response.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// A failed grant; the HTTP layer maps each to Linear's status and body.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum GrantError {
    InvalidClient,
    InvalidGrant(&'static str),
    /// The app's client-credentials toggle is off.
    ClientCredentialsDisabled,
}

pub(crate) const EXPIRED_OR_REVOKED: &str = "Token has been expired or revoked.";

struct CodeRecord {
    client_id: String,
    redirect_uri: String,
    scope: String,
    challenge: String,
    created: Instant,
    used: bool,
}

/// Identifies one authorization: a code exchange (or admin issue) starts a
/// grant, and every rotation of it stays in the same grant.
type GrantId = u64;

/// An access token; its client is its grant's (no endpoint asks for it).
struct AccessRecord {
    grant: GrantId,
    expires_at: Instant,
    revoked: bool,
}

enum RefreshStatus {
    Live,
    /// Rotated away; `produced` is what the rotation (or the latest grace
    /// replay) returned, kept so `same_pair` can return it again.
    Spent {
        at: Instant,
        produced: TokenResponse,
    },
    Revoked,
}

struct RefreshRecord {
    client_id: String,
    grant: GrantId,
    scope: String,
    status: RefreshStatus,
    /// Access tokens issued with this refresh token; more than one when
    /// `omit_refresh_token` let it be reused.
    access_tokens: Vec<String>,
}

/// `/_admin/*-token-status` answers with these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TokenState {
    Live,
    Expired,
    Spent,
    Revoked,
    Unknown,
}

/// What a revoke request achieved; the HTTP layer maps it to Linear's status.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RevokeResult {
    /// 200.
    Revoked,
    /// 400: unable to revoke (unknown or already revoked).
    Unable,
    /// 401: the presented access token does not authenticate.
    Unauthenticated,
}

/// A fault the token endpoint injects instead of running grant logic.
#[derive(Debug)]
pub(crate) enum TokenFault {
    Drop,
    Fail { status: u16, body: Option<String> },
    Malformed,
    Oversize,
}

pub(crate) struct State {
    config: ServerConfig,
    pub faults: Faults,
    pub counters: Counters,
    clients: HashMap<String, ClientConfig>,
    pub organization: Organization,
    pub viewer: Viewer,
    codes: HashMap<String, CodeRecord>,
    access: HashMap<String, AccessRecord>,
    refresh: HashMap<String, RefreshRecord>,
    next_grant: GrantId,
    /// Each app's one live client-credentials grant.
    client_credentials: HashMap<String, GrantId>,
}

impl State {
    pub fn new(config: ServerConfig) -> Self {
        State {
            faults: Faults::baseline(&config),
            counters: Counters::default(),
            clients: config.clients.iter().map(|c| (c.client_id.clone(), c.clone())).collect(),
            organization: config.organization.clone(),
            viewer: config.viewer.clone(),
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            next_grant: 1,
            client_credentials: HashMap::new(),
            config,
        }
    }

    /// Zeroes counters and restores knobs; tokens, clients and org survive.
    pub fn reset(&mut self) {
        self.counters = Counters::default();
        self.faults = Faults::baseline(&self.config);
    }

    pub fn client(&self, client_id: &str) -> Option<&ClientConfig> {
        self.clients.get(client_id)
    }

    /// The default client for admin issuing: the first configured one.
    pub fn first_client_id(&self) -> Option<String> {
        self.config.clients.first().map(|c| c.client_id.clone()).or_else(|| self.clients.keys().next().cloned())
    }

    /// A changed client secret is a rotation: as at Linear, it ends the
    /// app's client-credentials token.
    pub fn upsert_client(&mut self, client: ClientConfig) {
        let rotated = self.clients.get(&client.client_id).is_some_and(|c| c.client_secret != client.client_secret);
        if rotated {
            if let Some(grant) = self.client_credentials.remove(&client.client_id) {
                self.revoke_grant(grant);
            }
        }
        self.clients.insert(client.client_id.clone(), client);
    }

    /// Checks client credentials, counting a failure.
    pub fn authenticate(&mut self, client_id: &str, secret: &str) -> Result<(), GrantError> {
        match self.clients.get(client_id) {
            Some(c) if c.client_secret == secret => Ok(()),
            _ => {
                self.counters.invalid_client += 1;
                Err(GrantError::InvalidClient)
            }
        }
    }

    /// Picks the fault for this token request, if any, and consumes it.
    pub fn take_token_fault(&mut self) -> Option<TokenFault> {
        let f = &mut self.faults;
        let fault = if f.drop_next > 0 {
            f.drop_next -= 1;
            TokenFault::Drop
        } else if let Some(fail) = f.fail_next.as_mut() {
            fail.count = fail.count.saturating_sub(1);
            let fault = TokenFault::Fail { status: fail.status, body: fail.body.clone() };
            if fail.count == 0 {
                f.fail_next = None;
            }
            fault
        } else if f.malformed_next > 0 {
            f.malformed_next -= 1;
            TokenFault::Malformed
        } else if f.oversize_next > 0 {
            f.oversize_next -= 1;
            TokenFault::Oversize
        } else {
            return None;
        };
        self.counters.faults_injected += 1;
        Some(fault)
    }

    /// The scripted failure for this revoke request, if any, consumed.
    pub fn take_revoke_fault(&mut self) -> Option<(u16, Option<String>)> {
        let fail = self.faults.revoke_fail_next.as_mut()?;
        fail.count = fail.count.saturating_sub(1);
        let fault = (fail.status, fail.body.clone());
        if fail.count == 0 {
            self.faults.revoke_fail_next = None;
        }
        self.counters.faults_injected += 1;
        Some(fault)
    }

    pub fn create_code(&mut self, client_id: &str, redirect_uri: &str, scope: &str, challenge: &str) -> String {
        let code = random_token("")[..40].to_string();
        self.codes.insert(
            code.clone(),
            CodeRecord {
                client_id: client_id.into(),
                redirect_uri: redirect_uri.into(),
                scope: scope.into(),
                challenge: challenge.into(),
                created: Instant::now(),
                used: false,
            },
        );
        code
    }

    /// The authorization_code grant, client already authenticated.
    pub fn exchange_code(
        &mut self,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<TokenResponse, GrantError> {
        let result = self.check_code(client_id, code, redirect_uri, verifier);
        match result {
            Ok(scope) => {
                if let Some(rec) = self.codes.get_mut(code) {
                    rec.used = true;
                }
                self.counters.token_code_ok += 1;
                let expires_in = self.faults.expires_in;
                let grant = self.new_grant();
                Ok(self.mint_pair(client_id, grant, &scope, expires_in))
            }
            Err(e) => {
                self.counters.invalid_grant += 1;
                Err(e)
            }
        }
    }

    fn check_code(
        &self,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<String, GrantError> {
        let rec = self.codes.get(code).ok_or(GrantError::InvalidGrant("Invalid authorization code"))?;
        if rec.used {
            return Err(GrantError::InvalidGrant("Authorization code has already been used"));
        }
        if rec.created.elapsed() >= CODE_TTL {
            return Err(GrantError::InvalidGrant("Authorization code has expired"));
        }
        if rec.client_id != client_id {
            return Err(GrantError::InvalidGrant("Authorization code was issued to another client"));
        }
        if rec.redirect_uri != redirect_uri {
            return Err(GrantError::InvalidGrant("redirect_uri does not match the authorization request"));
        }
        if pkce_s256(verifier) != rec.challenge {
            return Err(GrantError::InvalidGrant("PKCE verification failed"));
        }
        Ok(rec.scope.clone())
    }

    /// The refresh_token grant, client already authenticated.
    pub fn refresh(&mut self, client_id: &str, presented: &str) -> Result<TokenResponse, GrantError> {
        let result = self.refresh_inner(client_id, presented);
        match &result {
            Ok(_) => self.counters.token_refresh_ok += 1,
            Err(_) => self.counters.invalid_grant += 1,
        }
        result
    }

    fn refresh_inner(&mut self, client_id: &str, presented: &str) -> Result<TokenResponse, GrantError> {
        let denied = GrantError::InvalidGrant(EXPIRED_OR_REVOKED);
        // Snapshot the record so the arms below may mutate the store.
        let (grant, scope, status) = match self.refresh.get(presented) {
            Some(rec) if rec.client_id == client_id => {
                let status = match &rec.status {
                    RefreshStatus::Live => RefreshStatus::Live,
                    RefreshStatus::Revoked => RefreshStatus::Revoked,
                    RefreshStatus::Spent { at, produced } => {
                        RefreshStatus::Spent { at: *at, produced: produced.clone() }
                    }
                };
                (rec.grant, rec.scope.clone(), status)
            }
            _ => return Err(denied),
        };
        let expires_in = self.faults.expires_in;
        match status {
            RefreshStatus::Revoked => Err(denied),
            RefreshStatus::Live if self.faults.omit_refresh_token => {
                // Without a new refresh token the client must keep using the
                // old one, so it is not spent.
                let access = self.mint_access(grant, Some(presented), expires_in);
                Ok(TokenResponse { access_token: access, token_type: "Bearer", expires_in, scope, refresh_token: None })
            }
            RefreshStatus::Live => {
                let pair = self.mint_pair(client_id, grant, &scope, expires_in);
                self.set_status(presented, RefreshStatus::Spent { at: Instant::now(), produced: pair.clone() });
                Ok(pair)
            }
            RefreshStatus::Spent { at, produced } => {
                let window = Duration::from_secs(self.faults.grace_window_s);
                if at.elapsed() >= window {
                    return Err(denied);
                }
                match self.faults.grace {
                    GraceMode::None => Err(denied),
                    GraceMode::SamePair => Ok(produced),
                    GraceMode::NewPair => {
                        // Only the newest pair may stay live.
                        if let Some(old) = &produced.refresh_token {
                            self.revoke_refresh(old);
                        }
                        self.revoke_access_only(&produced.access_token);
                        let pair = self.mint_pair(client_id, grant, &scope, expires_in);
                        self.set_status(presented, RefreshStatus::Spent { at, produced: pair.clone() });
                        Ok(pair)
                    }
                }
            }
        }
    }

    /// The client_credentials grant, client already authenticated: an
    /// app-actor token, no refresh token, and the app's previous
    /// client-credentials token revoked (one active token per app).
    pub fn client_credentials(&mut self, client_id: &str, scope: &str) -> Result<TokenResponse, GrantError> {
        if !self.clients.get(client_id).is_some_and(|c| c.client_credentials) {
            return Err(GrantError::ClientCredentialsDisabled);
        }
        let expires_in = self.faults.client_credentials_expires_in;
        let resp = self.issue_client_credentials(client_id, scope, expires_in);
        self.counters.token_client_credentials_ok += 1;
        Ok(resp)
    }

    /// Mints a client-credentials token, ending the app's previous one.
    pub fn issue_client_credentials(&mut self, client_id: &str, scope: &str, expires_in: u64) -> TokenResponse {
        if let Some(previous) = self.client_credentials.remove(client_id) {
            self.revoke_grant(previous);
        }
        let grant = self.new_grant();
        self.client_credentials.insert(client_id.to_owned(), grant);
        let access_token = self.mint_access(grant, None, expires_in);
        TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in,
            scope: normalize_scope(scope),
            refresh_token: None,
        }
    }

    fn set_status(&mut self, refresh: &str, status: RefreshStatus) {
        if let Some(rec) = self.refresh.get_mut(refresh) {
            rec.status = status;
        }
    }

    fn new_grant(&mut self) -> GrantId {
        self.next_grant += 1;
        self.next_grant
    }

    fn mint_access(&mut self, grant: GrantId, refresh: Option<&str>, expires_in: u64) -> String {
        let token = random_token(ACCESS_PREFIX);
        let now = Instant::now();
        // Saturate rather than overflow on absurd expires_in values.
        let expires_at =
            now.checked_add(Duration::from_secs(expires_in)).unwrap_or(now + Duration::from_secs(u32::MAX.into()));
        self.access.insert(token.clone(), AccessRecord { grant, expires_at, revoked: false });
        if let Some(rec) = refresh.and_then(|r| self.refresh.get_mut(r)) {
            rec.access_tokens.push(token.clone());
        }
        token
    }

    fn mint_pair(&mut self, client_id: &str, grant: GrantId, scope: &str, expires_in: u64) -> TokenResponse {
        let refresh = random_token(REFRESH_PREFIX);
        self.refresh.insert(
            refresh.clone(),
            RefreshRecord {
                client_id: client_id.into(),
                grant,
                scope: scope.into(),
                status: RefreshStatus::Live,
                access_tokens: Vec::new(),
            },
        );
        let access = self.mint_access(grant, Some(&refresh), expires_in);
        TokenResponse {
            access_token: access,
            token_type: "Bearer",
            expires_in,
            scope: scope.into(),
            refresh_token: Some(refresh),
        }
    }

    /// [`Self::issue_client_credentials`] as the admin API shows it (no refresh token).
    pub fn issue_app_token(&mut self, client_id: &str, scope: &str, expires_in: u64) -> IssuedTokens {
        let t = self.issue_client_credentials(client_id, scope, expires_in);
        IssuedTokens { access_token: t.access_token, refresh_token: String::new(), expires_in, scope: t.scope }
    }

    pub fn issue(&mut self, client_id: &str, scope: &str, expires_in: u64) -> IssuedTokens {
        let scope = normalize_scope(scope);
        let grant = self.new_grant();
        let pair = self.mint_pair(client_id, grant, &scope, expires_in);
        IssuedTokens {
            access_token: pair.access_token,
            refresh_token: pair.refresh_token.unwrap_or_default(),
            expires_in,
            scope,
        }
    }

    pub fn access_state(&self, token: &str) -> TokenState {
        match self.access.get(token) {
            None => TokenState::Unknown,
            Some(a) if a.revoked => TokenState::Revoked,
            Some(a) if Instant::now() >= a.expires_at => TokenState::Expired,
            Some(_) => TokenState::Live,
        }
    }

    pub fn refresh_state(&self, token: &str) -> TokenState {
        match self.refresh.get(token).map(|r| &r.status) {
            None => TokenState::Unknown,
            Some(RefreshStatus::Live) => TokenState::Live,
            Some(RefreshStatus::Spent { .. }) => TokenState::Spent,
            Some(RefreshStatus::Revoked) => TokenState::Revoked,
        }
    }

    /// Linear's revoke with an access token (Bearer header or `access_token`
    /// form field): ends the token's whole grant. `Unauthenticated` when the
    /// token is unknown, expired or revoked, as Linear answers 401 then.
    pub fn revoke_by_access(&mut self, token: &str) -> RevokeResult {
        if self.access_state(token) != TokenState::Live {
            return RevokeResult::Unauthenticated;
        }
        let grant = self.access[token].grant;
        self.revoke_grant(grant);
        RevokeResult::Revoked
    }

    /// Linear's revoke with the `refresh_token` form field: ends the whole
    /// grant. Only a live refresh token does; an unknown, revoked or spent
    /// (rotated away) one cannot be revoked (400), the stricter reading of
    /// Linear's "unable to revoke".
    pub fn revoke_by_refresh(&mut self, token: &str) -> RevokeResult {
        match self.refresh.get(token) {
            Some(r) if matches!(r.status, RefreshStatus::Live) => {
                let grant = r.grant;
                self.revoke_grant(grant);
                RevokeResult::Revoked
            }
            _ => RevokeResult::Unable,
        }
    }

    /// Out-of-band revoke of whatever grant `token` belongs to.
    pub fn revoke_grant_of(&mut self, token: &str) -> bool {
        let grant = self.access.get(token).map(|a| a.grant).or_else(|| self.refresh.get(token).map(|r| r.grant));
        grant.map(|g| self.revoke_grant(g)).is_some()
    }

    /// Every access and refresh token ever issued in `grant`, across
    /// rotations, stops working.
    fn revoke_grant(&mut self, grant: GrantId) {
        for a in self.access.values_mut().filter(|a| a.grant == grant) {
            a.revoked = true;
        }
        for r in self.refresh.values_mut().filter(|r| r.grant == grant) {
            r.status = RefreshStatus::Revoked;
        }
    }

    /// One access token stops working, its grant does not (the admin
    /// `kill-access-token` route); false for a token never issued.
    pub fn kill_access_token(&mut self, token: &str) -> bool {
        let known = self.access.contains_key(token);
        self.revoke_access_only(token);
        known
    }

    /// One access token, not its grant (the grace replay's superseded pair).
    fn revoke_access_only(&mut self, token: &str) {
        if let Some(rec) = self.access.get_mut(token) {
            rec.revoked = true;
        }
    }

    /// One refresh token and the access tokens issued with it, not its grant
    /// (the grace replay's superseded pair).
    fn revoke_refresh(&mut self, token: &str) {
        let Some(rec) = self.refresh.get_mut(token) else {
            return;
        };
        rec.status = RefreshStatus::Revoked;
        let access = rec.access_tokens.clone();
        for a in access {
            if let Some(a) = self.access.get_mut(&a) {
                a.revoked = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn tokens_are_prefixed_and_unique() {
        let a = random_token(ACCESS_PREFIX);
        let b = random_token(ACCESS_PREFIX);
        assert!(a.starts_with("lin_oauth_") && a.len() == 10 + 64);
        assert_ne!(a, b);
        assert!(random_token(REFRESH_PREFIX).starts_with("lin_refresh_"));
    }

    #[test]
    fn scope_is_normalized() {
        assert_eq!(normalize_scope("  read   write "), "read write");
    }
}
