//! Revoking a grant at Linear, as Linear documents it, not as RFC 7009 does.
//!
//! <https://linear.app/developers/oauth-2-0-authentication> ("Revoke an access
//! token"): `POST https://api.linear.app/oauth/revoke` with the access token as
//! `Authorization: Bearer <token>` (or the `access_token` form field), or the
//! refresh token as the `refresh_token` form field. 200: revoked; 400: unable
//! to revoke (unknown, already revoked, or a body Linear does not read, such as
//! RFC 7009's `token=`); 401: the Bearer token does not authenticate. Revoking
//! either token ends the whole grant.
//!
//! Which request to send next, and what the answers add up to, is a small state
//! machine here so that every decision is tested natively; the component only
//! does the I/O it is told to do.

use crate::{format_instant, parse_instant, RefreshToken, StoredToken};

/// Every revoke request is a form POST, even the Bearer one with an empty body.
pub const REVOKE_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// The body that presents the refresh token. The Bearer form has an empty body.
/// No client credentials: Linear does not ask for them here, and the client
/// secret should not travel where it is not needed.
pub fn revoke_refresh_form(refresh: &RefreshToken) -> String {
    form_urlencoded::Serializer::new(String::new()).append_pair("refresh_token", refresh.secret()).finish()
}

/// Whether the stored access token has not expired yet, so Linear may still
/// accept it as a Bearer credential.
pub fn access_token_unexpired(tok: &StoredToken, now_ms: i64) -> bool {
    parse_instant(&tok.expires_at).is_some_and(|e| e > now_ms)
}

/// The stored token after a revoke: marked revoked (see
/// [`StoredToken::revoked_at`]), so no path serves or refreshes it, not even
/// one that never reads the registry; and due now, so an old reader that
/// ignores the mark asks Linear (which answers `invalid_grant` for a dead
/// grant) instead of serving it. Every other field, unknown ones included, is
/// kept.
pub fn expired_after_revoke(tok: &StoredToken, now_ms: i64) -> StoredToken {
    let mut t = tok.marked_revoked(&format_instant(now_ms));
    t.expires_at = format_instant(now_ms);
    t.updated_at = format_instant(now_ms);
    t
}

/// Which credential a revoke request presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeCredential {
    /// The stored access token, as `Authorization: Bearer`, empty body.
    StoredAccessToken,
    /// The stored refresh token, as the `refresh_token` form field.
    StoredRefreshToken,
    /// The access token the probing refresh just got, as `Authorization: Bearer`.
    RefreshedAccessToken,
}

/// What the probing refresh (a refresh with the stored refresh token, under the
/// resolver's usual lease and write-back) found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    /// `invalid_grant` and nobody else rotated: the grant is dead.
    InvalidGrant,
    /// It worked (the rotated token is written back): the grant is live.
    Refreshed,
    /// Anything else; a short non-secret description.
    Inconclusive(String),
}

/// How a revoke ended at Linear. Messages never contain secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// Linear's revoke endpoint answered 200: the grant is ended.
    Revoked,
    /// Linear did not confirm, but the stored refresh token is refused with
    /// `invalid_grant`: the grant is provably dead.
    AlreadyDead,
    /// Linear answered 400/401 every time and the grant could not be shown
    /// dead (what was tried). Remove the app's authorization in Linear.
    NotConfirmed(String),
    /// A 5xx, 429, unexpected status or transport error (a short reason):
    /// try again later.
    Failed(String),
}

impl RevokeOutcome {
    /// Whether the grant is known to be dead at Linear.
    pub fn confirmed(&self) -> bool {
        matches!(self, Self::Revoked | Self::AlreadyDead)
    }

    /// `revoked`, `already-dead`, `not-confirmed` or `failed`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::AlreadyDead => "already-dead",
            Self::NotConfirmed(_) => "not-confirmed",
            Self::Failed(_) => "failed",
        }
    }

    /// The explanation carried by `NotConfirmed` and `Failed`.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Self::NotConfirmed(m) | Self::Failed(m) => Some(m),
            Self::Revoked | Self::AlreadyDead => None,
        }
    }
}

/// What the component does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeStep {
    /// POST the revoke endpoint presenting this credential.
    Send(RevokeCredential),
    /// Refresh with the stored refresh token and report a [`ProbeResult`].
    Probe,
    Done(RevokeOutcome),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Bearer,
    RefreshForm,
    Probe,
    RefreshedBearer,
    Done,
}

/// How one answer of the revoke endpoint counts.
enum Answer {
    Revoked,
    Unauthenticated,
    Refused,
    Failed(String),
}

fn classify(answer: &Result<u16, String>) -> Answer {
    match answer {
        Ok(200..=299) => Answer::Revoked,
        Ok(401) => Answer::Unauthenticated,
        // 408 and 429 say "not now", not "no".
        Ok(s @ 400..=499) if *s != 408 && *s != 429 => Answer::Refused,
        Ok(s) => Answer::Failed(format!("the revoke endpoint answered HTTP {s}")),
        Err(e) => Answer::Failed(format!("the revoke endpoint could not be reached: {e}")),
    }
}

/// The revoke procedure: the access token as Bearer while it is unexpired,
/// else (or after a 401) the refresh token; when Linear refuses, a probing
/// refresh decides between "already dead" and "live" (then one more Bearer
/// revoke with the fresh access token).
#[derive(Debug, Clone)]
pub struct RevokePlan {
    stage: Stage,
    /// A client-credentials token has none: its access token is the whole
    /// credential, so Linear refusing it proves the stored credential dead.
    has_refresh: bool,
    /// What each attempt got, for the not-confirmed message.
    seen: Vec<String>,
}

impl RevokePlan {
    /// The plan for a readable stored token, and its first step.
    /// Without a refresh token (client credentials) an expired access token
    /// is already dead and nothing is sent.
    pub fn start(tok: &StoredToken, now_ms: i64) -> (Self, RevokeStep) {
        let has_refresh = tok.refresh_token.is_some();
        let mut plan = Self { stage: Stage::Bearer, has_refresh, seen: Vec::new() };
        let step = if access_token_unexpired(tok, now_ms) {
            RevokeStep::Send(RevokeCredential::StoredAccessToken)
        } else if has_refresh {
            plan.stage = Stage::RefreshForm;
            RevokeStep::Send(RevokeCredential::StoredRefreshToken)
        } else {
            plan.done(RevokeOutcome::AlreadyDead)
        };
        (plan, step)
    }

    /// Feeds the revoke endpoint's answer: an HTTP status, or a transport error
    /// (which must not contain secrets).
    pub fn on_revoke_answer(&mut self, answer: Result<u16, String>) -> RevokeStep {
        let what = match self.stage {
            Stage::Bearer => "the access token",
            Stage::RefreshForm => "the refresh token",
            Stage::RefreshedBearer => "the refreshed access token",
            Stage::Probe | Stage::Done => return self.done(RevokeOutcome::Failed("revoke answer out of turn".into())),
        };
        if let Ok(s) = &answer {
            self.seen.push(format!("{s} to {what}"));
        }
        match (self.stage, classify(&answer)) {
            (_, Answer::Revoked) => self.done(RevokeOutcome::Revoked),
            (_, Answer::Failed(reason)) => self.done(RevokeOutcome::Failed(reason)),
            // No refresh token: nothing else can renew this credential, and
            // Linear no longer takes it.
            (Stage::Bearer, _) if !self.has_refresh => self.done(RevokeOutcome::AlreadyDead),
            (Stage::Bearer, Answer::Unauthenticated) => {
                self.stage = Stage::RefreshForm;
                RevokeStep::Send(RevokeCredential::StoredRefreshToken)
            }
            (Stage::RefreshedBearer, _) => {
                let msg = format!(
                    "the grant is live (a refresh succeeded) but Linear answered {}",
                    self.seen.join(", then ")
                );
                self.done(RevokeOutcome::NotConfirmed(msg))
            }
            _ => {
                self.stage = Stage::Probe;
                RevokeStep::Probe
            }
        }
    }

    /// Feeds what the probing refresh found.
    pub fn on_probe(&mut self, result: ProbeResult) -> RevokeStep {
        if self.stage != Stage::Probe {
            return self.done(RevokeOutcome::Failed("probe result out of turn".into()));
        }
        match result {
            ProbeResult::InvalidGrant => self.done(RevokeOutcome::AlreadyDead),
            ProbeResult::Refreshed => {
                self.stage = Stage::RefreshedBearer;
                RevokeStep::Send(RevokeCredential::RefreshedAccessToken)
            }
            ProbeResult::Inconclusive(why) => {
                let msg = format!(
                    "Linear answered {}, and a refresh with the stored refresh token did not show the grant dead ({why})",
                    self.seen.join(", then ")
                );
                self.done(RevokeOutcome::NotConfirmed(msg))
            }
        }
    }

    fn done(&mut self, outcome: RevokeOutcome) -> RevokeStep {
        self.stage = Stage::Done;
        RevokeStep::Done(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stored::tests::sample;

    const NOW: i64 = 1_700_000_000_000;

    fn token(expires_ms: i64) -> StoredToken {
        let mut v: serde_json::Value = serde_json::from_str(&sample()).unwrap();
        v["expires_at"] = format_instant(expires_ms).into();
        StoredToken::parse(&v.to_string()).unwrap()
    }

    fn send(c: RevokeCredential) -> RevokeStep {
        RevokeStep::Send(c)
    }

    #[test]
    fn refresh_form_is_linears_field_not_rfc7009() {
        let f = revoke_refresh_form(&RefreshToken::new("lin_refresh_a+b/="));
        assert_eq!(f, "refresh_token=lin_refresh_a%2Bb%2F%3D");
        assert!(!f.contains("token_type_hint") && !f.starts_with("token="));
    }

    #[test]
    fn unexpired_access_token_goes_first_as_bearer() {
        let (_, step) = RevokePlan::start(&token(NOW + 60_000), NOW);
        assert_eq!(step, send(RevokeCredential::StoredAccessToken));
        let (_, step) = RevokePlan::start(&token(NOW), NOW);
        assert_eq!(step, send(RevokeCredential::StoredRefreshToken), "expired at exactly now");
        let mut bad = token(NOW + 60_000);
        bad.expires_at = "soon".into();
        assert_eq!(RevokePlan::start(&bad, NOW).1, send(RevokeCredential::StoredRefreshToken));
    }

    #[test]
    fn bearer_200_is_revoked() {
        let (mut p, _) = RevokePlan::start(&token(NOW + 60_000), NOW);
        assert_eq!(p.on_revoke_answer(Ok(200)), RevokeStep::Done(RevokeOutcome::Revoked));
    }

    #[test]
    fn bearer_401_falls_back_to_the_refresh_token_once() {
        let (mut p, _) = RevokePlan::start(&token(NOW + 60_000), NOW);
        assert_eq!(p.on_revoke_answer(Ok(401)), send(RevokeCredential::StoredRefreshToken));
        assert_eq!(p.on_revoke_answer(Ok(200)), RevokeStep::Done(RevokeOutcome::Revoked));

        let (mut p, _) = RevokePlan::start(&token(NOW + 60_000), NOW);
        p.on_revoke_answer(Ok(401));
        assert_eq!(p.on_revoke_answer(Ok(401)), RevokeStep::Probe, "no second fallback");
    }

    #[test]
    fn refused_then_invalid_grant_is_already_dead() {
        let (mut p, _) = RevokePlan::start(&token(NOW - 1), NOW);
        assert_eq!(p.on_revoke_answer(Ok(400)), RevokeStep::Probe);
        assert_eq!(p.on_probe(ProbeResult::InvalidGrant), RevokeStep::Done(RevokeOutcome::AlreadyDead));
        assert!(RevokeOutcome::AlreadyDead.confirmed());

        // A 400 to the Bearer token probes directly: only a 401 means "try the other token".
        let (mut p, _) = RevokePlan::start(&token(NOW + 60_000), NOW);
        assert_eq!(p.on_revoke_answer(Ok(400)), RevokeStep::Probe);
    }

    #[test]
    fn a_live_grant_is_revoked_with_the_refreshed_token() {
        let (mut p, _) = RevokePlan::start(&token(NOW + 60_000), NOW);
        p.on_revoke_answer(Ok(400));
        assert_eq!(p.on_probe(ProbeResult::Refreshed), send(RevokeCredential::RefreshedAccessToken));
        assert_eq!(p.on_revoke_answer(Ok(200)), RevokeStep::Done(RevokeOutcome::Revoked));

        let (mut p, _) = RevokePlan::start(&token(NOW + 60_000), NOW);
        p.on_revoke_answer(Ok(400));
        p.on_probe(ProbeResult::Refreshed);
        let RevokeStep::Done(RevokeOutcome::NotConfirmed(m)) = p.on_revoke_answer(Ok(400)) else { panic!() };
        assert!(m.contains("400 to the access token, then 400 to the refreshed access token"), "{m}");
        assert!(!RevokeOutcome::NotConfirmed(m).confirmed());
    }

    #[test]
    fn inconclusive_probe_is_not_confirmed() {
        let (mut p, _) = RevokePlan::start(&token(NOW + 60_000), NOW);
        p.on_revoke_answer(Ok(401));
        p.on_revoke_answer(Ok(400));
        let RevokeStep::Done(RevokeOutcome::NotConfirmed(m)) = p.on_probe(ProbeResult::Inconclusive("HTTP 503".into()))
        else {
            panic!()
        };
        assert!(m.contains("401 to the access token, then 400 to the refresh token") && m.contains("HTTP 503"), "{m}");
    }

    #[test]
    fn server_errors_and_transport_fail_at_any_step() {
        for answer in [Ok(500), Ok(503), Ok(429), Ok(408), Ok(302), Err("connection refused".to_owned())] {
            let (mut p, _) = RevokePlan::start(&token(NOW + 60_000), NOW);
            let RevokeStep::Done(RevokeOutcome::Failed(m)) = p.on_revoke_answer(answer.clone()) else {
                panic!("{answer:?}")
            };
            assert!(m.contains("revoke endpoint"), "{m}");
            let (mut p, _) = RevokePlan::start(&token(NOW + 60_000), NOW);
            p.on_revoke_answer(Ok(401));
            assert!(matches!(p.on_revoke_answer(answer), RevokeStep::Done(RevokeOutcome::Failed(_))));
        }
        let (mut p, _) = RevokePlan::start(&token(NOW + 60_000), NOW);
        p.on_revoke_answer(Ok(400));
        p.on_probe(ProbeResult::Refreshed);
        assert!(matches!(p.on_revoke_answer(Ok(502)), RevokeStep::Done(RevokeOutcome::Failed(_))));
        assert!(!RevokeOutcome::Failed(String::new()).confirmed());
    }

    #[test]
    fn answers_out_of_turn_fail_instead_of_looping() {
        let (mut p, _) = RevokePlan::start(&token(NOW + 60_000), NOW);
        assert!(matches!(p.on_probe(ProbeResult::InvalidGrant), RevokeStep::Done(RevokeOutcome::Failed(_))));
        let (mut p, _) = RevokePlan::start(&token(NOW + 60_000), NOW);
        p.on_revoke_answer(Ok(200));
        assert!(matches!(p.on_revoke_answer(Ok(200)), RevokeStep::Done(RevokeOutcome::Failed(_))));
    }

    #[test]
    fn client_credentials_tokens_are_revoked_with_their_access_token_only() {
        let cc = |expires_ms: i64| {
            let mut v: serde_json::Value = serde_json::from_str(&sample()).unwrap();
            v.as_object_mut().unwrap().remove("refresh_token");
            v["grant_type"] = "client_credentials".into();
            v["expires_at"] = format_instant(expires_ms).into();
            StoredToken::parse(&v.to_string()).unwrap()
        };
        let (mut p, step) = RevokePlan::start(&cc(NOW + 60_000), NOW);
        assert_eq!(step, send(RevokeCredential::StoredAccessToken));
        assert_eq!(p.on_revoke_answer(Ok(200)), RevokeStep::Done(RevokeOutcome::Revoked));
        for refused in [400, 401] {
            let (mut p, _) = RevokePlan::start(&cc(NOW + 60_000), NOW);
            assert_eq!(p.on_revoke_answer(Ok(refused)), RevokeStep::Done(RevokeOutcome::AlreadyDead), "{refused}");
        }
        let (mut p, _) = RevokePlan::start(&cc(NOW + 60_000), NOW);
        assert!(matches!(p.on_revoke_answer(Ok(503)), RevokeStep::Done(RevokeOutcome::Failed(_))));
        assert_eq!(RevokePlan::start(&cc(NOW), NOW).1, RevokeStep::Done(RevokeOutcome::AlreadyDead));
    }

    #[test]
    fn expired_after_revoke_keeps_everything_else() {
        let t = token(NOW + 3_600_000);
        let e = expired_after_revoke(&t, NOW);
        assert!(!access_token_unexpired(&e, NOW));
        assert_eq!(e.expires_at, format_instant(NOW));
        assert_eq!(e.updated_at, format_instant(NOW));
        assert_eq!(e.revoked_at(), Some(format_instant(NOW).as_str()));
        assert_eq!(t.revoked_at(), None);
        assert_eq!((&e.access_token, &e.refresh_token), (&t.access_token, &t.refresh_token));
        assert_eq!(e.marked_revoked("x").extra().len(), t.extra().len() + 1, "only the mark was added");
    }
}
