//! Time budgets of a refresh, as pure arithmetic over the settings.
//!
//! Linear spends a refresh token the moment it processes the request that
//! carries it. That request must therefore end inside the refresher's lease
//! (once the lease ends, a waiter takes it over and sends the same refresh
//! token) and leave the call time to save the answer (the host's call
//! deadline traps whatever runs past it, the write-back and the only copy
//! of the rotated token included). Times are Unix milliseconds.

/// The host ends every request after this many `http-timeout`s (connect,
/// first byte and body each get one): the longest a request can take.
pub const REQUEST_PHASES: u64 = 3;

/// Kept free after the last token request for saving its answer: a store
/// write (after a conflict, a read and a second write) and the lease
/// release, on a store having a slow moment.
pub const WRITE_BACK_RESERVE_MS: u64 = 2_000;

/// Left at the end of a call for what follows a failed write-back (keeping
/// the token in memory, logging, releasing the lease).
pub const AFTER_WRITE_MS: u64 = 500;

/// The longest one request can take: the host's hard end.
pub fn worst_request_ms(http_timeout_ms: u64) -> u64 {
    http_timeout_ms.saturating_mul(REQUEST_PHASES)
}

/// What a token request needs once sent: the longest request, then the
/// write-back. A lease and a call must each last at least this long.
pub fn request_needs_ms(http_timeout_ms: u64) -> u64 {
    worst_request_ms(http_timeout_ms).saturating_add(WRITE_BACK_RESERVE_MS)
}

/// How long one may still wait at `now_ms` before sending a token request
/// that must end, its answer saved, by `end_ms` (the earlier of the lease's
/// and the call's end); `None` when not even a request sent now could.
pub fn request_slack_ms(now_ms: i64, end_ms: i64, http_timeout_ms: u64) -> Option<u64> {
    let needs = i64::try_from(request_needs_ms(http_timeout_ms)).unwrap_or(i64::MAX);
    u64::try_from(end_ms.saturating_sub(now_ms).saturating_sub(needs)).ok()
}

/// Until when a caller may wait for somebody else's refresh (this
/// process's lock, then the lease): `lease_wait_ms` from `now_ms`, but never
/// so long that a refresh of its own would no longer fit before
/// `call_end_ms`. May lie in the past: then there is no time to wait.
pub fn wait_deadline(now_ms: i64, lease_wait_ms: u64, call_end_ms: i64, http_timeout_ms: u64) -> i64 {
    let needs = i64::try_from(request_needs_ms(http_timeout_ms)).unwrap_or(i64::MAX);
    let wait = i64::try_from(lease_wait_ms).unwrap_or(i64::MAX);
    now_ms.saturating_add(wait).min(call_end_ms.saturating_sub(needs))
}

/// Whether one more write of a refreshed token may start after waiting
/// `delay_ms`: an attempt as slow as the last one (`last_attempt_ms`) must
/// end, with [`AFTER_WRITE_MS`] to spare, before `call_end_ms`. A write cut
/// off by the call deadline would lose the token a failed one keeps.
pub fn write_retry_fits(now_ms: i64, delay_ms: u64, last_attempt_ms: u64, call_end_ms: i64) -> bool {
    let needs = delay_ms.saturating_add(last_attempt_ms).saturating_add(AFTER_WRITE_MS);
    now_ms.saturating_add(i64::try_from(needs).unwrap_or(i64::MAX)) <= call_end_ms
}

/// Why a combination of timings cannot hold; hosts name their options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetConflict {
    /// The lease ends before a request sent right after taking it could,
    /// with its write-back: another process would send the same refresh token.
    LeaseTooShort { needs_ms: u64 },
    /// The call ends before one request and its write-back could: the call
    /// deadline would trap the write-back of a rotated token.
    CallTooShort { needs_ms: u64 },
}

/// Refuses timings under which a refresh cannot end inside its lease or
/// its call (see [`request_needs_ms`]).
pub fn check_budgets(http_timeout_ms: u64, lease_ttl_ms: u64, call_deadline_ms: u64) -> Result<(), BudgetConflict> {
    let needs_ms = request_needs_ms(http_timeout_ms);
    if lease_ttl_ms < needs_ms {
        return Err(BudgetConflict::LeaseTooShort { needs_ms });
    }
    if call_deadline_ms < needs_ms {
        return Err(BudgetConflict::CallTooShort { needs_ms });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HTTP: u64 = 5_000;

    #[test]
    fn a_request_needs_three_timeouts_and_the_write_back() {
        assert_eq!(worst_request_ms(HTTP), 15_000);
        assert_eq!(request_needs_ms(HTTP), 17_000);
        assert_eq!(request_needs_ms(u64::MAX), u64::MAX);
    }

    /// The case: a 503 with `Retry-After: 14` right after taking a
    /// 25 s lease. Two timeouts (the old allowance) would let the retry
    /// start; its worst case ends past the lease.
    #[test]
    fn a_retry_starts_only_if_its_worst_case_and_write_back_end_inside_the_lease() {
        let (taken, lease_end) = (0, 25_000);
        let now = taken + 100;
        let slack = request_slack_ms(now, lease_end, HTTP).unwrap();
        assert_eq!(slack, 7_900);
        assert!(14_000 > slack, "Retry-After 14 s does not fit");
        assert!(now + 14_000 + i64::try_from(worst_request_ms(HTTP)).unwrap() > lease_end);
        // A request sent at the last moment that fits ends with 2 s to save it.
        let last = now + i64::try_from(slack).unwrap();
        assert_eq!(request_slack_ms(last, lease_end, HTTP), Some(0));
        assert_eq!(lease_end - (last + 15_000), 2_000);
        assert_eq!(request_slack_ms(last + 1, lease_end, HTTP), None);
        assert_eq!(request_slack_ms(lease_end + 1, lease_end, HTTP), None);
        assert_eq!(request_slack_ms(i64::MIN, i64::MAX, u64::MAX), Some(0), "saturates, never wraps");
    }

    #[test]
    fn waiting_stops_in_time_for_a_refresh_of_our_own() {
        // Defaults: a 30 s wait fits a 60 s call with 17 s to refresh.
        assert_eq!(wait_deadline(1_000, 30_000, 61_000, HTTP), 31_000);
        // A call that could wait but not refresh afterwards waits less.
        assert_eq!(wait_deadline(1_000, 30_000, 41_000, HTTP), 24_000);
        // No time left: the deadline has passed already.
        assert!(wait_deadline(1_000, 30_000, 10_000, HTTP) < 1_000);
        assert_eq!(wait_deadline(0, u64::MAX, i64::MAX, 0), i64::MAX - 2_000);
    }

    #[test]
    fn a_write_is_retried_only_if_one_as_slow_as_the_last_ends_before_the_call() {
        let end = 10_000;
        assert!(write_retry_fits(0, 200, 1_000, end));
        assert!(write_retry_fits(8_000, 0, 1_500, end));
        assert!(!write_retry_fits(8_001, 0, 1_500, end));
        assert!(write_retry_fits(7_000, 500, 2_000, end), "exactly in time");
        assert!(!write_retry_fits(7_001, 500, 2_000, end));
        assert!(!write_retry_fits(0, u64::MAX, 0, end));
    }

    #[test]
    fn timings_that_cannot_hold_are_named() {
        assert_eq!(check_budgets(5_000, 25_000, 60_000), Ok(()), "the defaults hold");
        assert_eq!(check_budgets(5_000, 17_000, 17_000), Ok(()), "exactly enough");
        assert_eq!(check_budgets(5_000, 16_999, 60_000), Err(BudgetConflict::LeaseTooShort { needs_ms: 17_000 }));
        assert_eq!(check_budgets(5_000, 10_000, 60_000), Err(BudgetConflict::LeaseTooShort { needs_ms: 17_000 }));
        assert_eq!(check_budgets(5_000, 25_000, 16_000), Err(BudgetConflict::CallTooShort { needs_ms: 17_000 }));
        assert_eq!(check_budgets(300, 2_900, 2_900), Ok(()));
    }
}
