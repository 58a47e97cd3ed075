//! Retrying a token request through rate limits and outages: pure decisions.
//!
//! A refresh spends its refresh token the moment Linear processes it, so a
//! request is sent again only when it provably did not reach Linear (refused
//! before sending) or Linear said it did nothing (429, 502, 503, 504). A
//! timeout after sending, or a 500, may hide a processed grant: the caller
//! must re-read the store instead of replaying (docs/SPEC.md, "Transient
//! refresh failures").

use time::format_description::well_known::Rfc2822;
use time::OffsetDateTime;

/// Attempts per refresh, the first included.
pub const MAX_ATTEMPTS: u32 = 3;

/// First backoff step; doubles per attempt, with jitter in its upper half.
pub const BACKOFF_BASE_MS: u64 = 200;

/// Longest `Retry-After` taken at its word (a day); longer values are capped.
const MAX_RETRY_AFTER_MS: u64 = 86_400_000;

/// How one attempt at the token endpoint ended, as far as retrying cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// An HTTP error answer, with `Retry-After` already turned into ms from now.
    Answered { status: u16, retry_after_ms: Option<u64> },
    /// Failed before the request could reach the server (connection refused,
    /// connect timeout, name resolution, egress denied).
    NotSent,
    /// Failed once the request may have reached the server (timeout or reset
    /// while waiting for the answer).
    MaybeSent,
}

/// Whether a failure is an outage or rate limit rather than an answer about
/// the credential: a refresh that failed so may leave an unexpired token in
/// service, and is remembered briefly so a burst shares it.
pub fn is_transient(a: Attempt) -> bool {
    match a {
        Attempt::Answered { status, .. } => status == 429 || status >= 500,
        Attempt::NotSent | Attempt::MaybeSent => true,
    }
}

/// After attempt number `attempt` (1-based) ended in `a`, how long to wait
/// before sending the same request again; `None` to stop. `remaining_ms` is
/// how long the caller may still wait before sending it (see
/// [`request_slack_ms`](crate::request_slack_ms)); `jitter` is any random number.
pub fn retry_delay(attempt: u32, a: Attempt, remaining_ms: u64, jitter: u64) -> Option<u64> {
    if attempt >= MAX_ATTEMPTS {
        return None;
    }
    let step = BACKOFF_BASE_MS.saturating_mul(1 << (attempt - 1).min(16));
    let backoff = step / 2 + jitter % (step / 2 + 1);
    let delay = match a {
        Attempt::Answered { status: 429, retry_after_ms } => retry_after_ms.unwrap_or(backoff),
        Attempt::Answered { status: 502..=504, retry_after_ms } => retry_after_ms.unwrap_or(backoff),
        Attempt::NotSent => backoff,
        // A 500 or an unanswered request may have rotated the refresh token.
        Attempt::Answered { .. } | Attempt::MaybeSent => return None,
    };
    (delay <= remaining_ms).then_some(delay)
}

/// `Retry-After` (RFC 9110 section 10.2.3): delay-seconds or an HTTP-date,
/// as milliseconds from `now_ms`. A date in the past is 0; garbage is `None`.
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<u64> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = v.parse().unwrap_or(u64::MAX);
        return Some(secs.saturating_mul(1000).min(MAX_RETRY_AFTER_MS));
    }
    // IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) is an RFC 2822 date.
    let at = OffsetDateTime::parse(v, &Rfc2822).ok()?;
    let at_ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()?;
    Some(u64::try_from(at_ms.saturating_sub(now_ms)).unwrap_or(0).min(MAX_RETRY_AFTER_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIG: u64 = 60_000;

    fn answered(status: u16, retry_after_ms: Option<u64>) -> Attempt {
        Attempt::Answered { status, retry_after_ms }
    }

    #[test]
    fn outages_are_retried_with_growing_jittered_backoff() {
        for status in [502, 503, 504] {
            let d1 = retry_delay(1, answered(status, None), BIG, 0).unwrap();
            let d1_max = retry_delay(1, answered(status, None), BIG, BACKOFF_BASE_MS / 2).unwrap();
            let d2 = retry_delay(2, answered(status, None), BIG, 0).unwrap();
            assert_eq!((d1, d1_max, d2), (100, 200, 200), "{status}");
        }
        assert_eq!(retry_delay(1, Attempt::NotSent, BIG, 7), Some(107));
    }

    #[test]
    fn at_most_three_attempts() {
        assert!(retry_delay(2, answered(503, None), BIG, 0).is_some());
        assert_eq!(retry_delay(3, answered(503, None), BIG, 0), None);
        assert_eq!(retry_delay(3, Attempt::NotSent, BIG, 0), None);
    }

    #[test]
    fn retry_after_is_honoured_but_never_past_the_budget() {
        assert_eq!(retry_delay(1, answered(429, Some(1500)), BIG, 0), Some(1500));
        assert_eq!(retry_delay(1, answered(503, Some(2000)), BIG, 0), Some(2000));
        assert_eq!(retry_delay(1, answered(429, Some(1500)), 1000, 0), None);
        assert_eq!(retry_delay(1, answered(429, None), 1000, 0), Some(100));
    }

    #[test]
    fn a_request_that_may_have_been_processed_is_never_resent() {
        assert_eq!(retry_delay(1, answered(500, None), BIG, 0), None);
        assert_eq!(retry_delay(1, Attempt::MaybeSent, BIG, 0), None);
        assert_eq!(retry_delay(1, answered(400, None), BIG, 0), None);
        assert_eq!(retry_delay(1, answered(401, None), BIG, 0), None);
    }

    #[test]
    fn transient_failures() {
        assert!(is_transient(answered(429, None)));
        assert!(is_transient(answered(500, None)));
        assert!(is_transient(answered(503, None)));
        assert!(is_transient(Attempt::NotSent));
        assert!(is_transient(Attempt::MaybeSent));
        assert!(!is_transient(answered(400, None)));
        assert!(!is_transient(answered(401, None)));
    }

    #[test]
    fn retry_after_spellings() {
        let now = 784_111_777_000; // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("120", now), Some(120_000));
        assert_eq!(parse_retry_after(" 0 ", now), Some(0));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:40 GMT", now), Some(3000));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now), Some(0));
        assert_eq!(parse_retry_after("99999999999999999999", now), Some(MAX_RETRY_AFTER_MS));
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }
}
