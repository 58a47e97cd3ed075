//! When a token must be refreshed.

use crate::parse_instant;

/// What a caller may do with a stored token right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Usable; refresh becomes due at `refresh_due_ms` (expiry minus threshold).
    Fresh { refresh_due_ms: i64 },
    /// `now + threshold >= expires_at`.
    Expiring,
    /// `expires_at` does not parse; treated as expiring (and worth a warning).
    Malformed,
}

impl Freshness {
    pub fn needs_refresh(self) -> bool {
        !matches!(self, Self::Fresh { .. })
    }
}

pub fn freshness(expires_at: &str, now_ms: i64, threshold_ms: u64) -> Freshness {
    let Some(exp) = parse_instant(expires_at) else {
        return Freshness::Malformed;
    };
    let due = exp.saturating_sub(i64::try_from(threshold_ms).unwrap_or(i64::MAX));
    if now_ms >= due {
        Freshness::Expiring
    } else {
        Freshness::Fresh { refresh_due_ms: due }
    }
}

/// Until when a host may hand out a token without asking the component
/// again: the cache TTL, but never past the token's refresh point.
pub fn serve_until(now_ms: i64, cache_ttl_ms: u64, refresh_due_ms: i64) -> u64 {
    let ttl_end = now_ms.saturating_add(i64::try_from(cache_ttl_ms).unwrap_or(i64::MAX));
    u64::try_from(ttl_end.min(refresh_due_ms)).unwrap_or(0)
}

/// When a long-lived host should start a background refresh of a token due
/// at `refresh_due_ms`: `ahead_ms` earlier, but never in its first half
/// between `updated_ms` (its refresh) and due, so a token whose whole life
/// fits in the window is not refreshed again and again. `None` when
/// refresh-ahead is off or the token is due already (the caller refreshes
/// inline).
pub fn refresh_ahead_at(refresh_due_ms: i64, updated_ms: Option<i64>, ahead_ms: u64, now_ms: i64) -> Option<i64> {
    if ahead_ms == 0 || refresh_due_ms <= now_ms {
        return None;
    }
    let ahead = refresh_due_ms.saturating_sub(i64::try_from(ahead_ms).unwrap_or(i64::MAX));
    let half_life = updated_ms.filter(|u| *u < refresh_due_ms).map(|u| u + (refresh_due_ms - u) / 2);
    Some(ahead.max(half_life.unwrap_or(i64::MIN)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_until_the_ttl_or_the_refresh_point() {
        assert_eq!(serve_until(1_000, 30_000, 1_000_000), 31_000, "the TTL ends first");
        assert_eq!(serve_until(1_000, 30_000, 5_000), 5_000, "the refresh point comes first");
        assert_eq!(serve_until(1_000, u64::MAX, 5_000), 5_000, "no overflow");
        assert_eq!(serve_until(1_000, 30_000, -5), 0, "a due token is not served from a cache");
    }

    #[test]
    fn refresh_ahead_window() {
        let (h, m): (i64, i64) = (3_600_000, 60_000);
        let w = 10 * 60_000u64;
        // A 24 h token: 10 min before the refresh point.
        assert_eq!(refresh_ahead_at(24 * h - m, Some(0), w, 0), Some(24 * h - 11 * m));
        // Off, or due already: none.
        assert_eq!(refresh_ahead_at(24 * h, Some(0), 0, 0), None);
        assert_eq!(refresh_ahead_at(1000, Some(0), w, 1000), None);
        // A token whose whole life fits in the window: not before half of it.
        assert_eq!(refresh_ahead_at(4 * m, Some(0), w, 0), Some(2 * m));
        // Unknown refresh time: the window alone.
        assert_eq!(refresh_ahead_at(24 * h, None, w, 0), Some(24 * h - 10 * m));
    }

    #[test]
    fn threshold_boundary() {
        let exp = "1970-01-01T00:02:00Z"; // 120 000 ms
        assert_eq!(freshness(exp, 59_999, 60_000), Freshness::Fresh { refresh_due_ms: 60_000 });
        assert_eq!(freshness(exp, 60_000, 60_000), Freshness::Expiring);
        assert_eq!(freshness(exp, 200_000, 60_000), Freshness::Expiring);
        assert_eq!(freshness(exp, 100_000, 0), Freshness::Fresh { refresh_due_ms: 120_000 });
    }

    #[test]
    fn malformed_counts_as_expiring() {
        assert_eq!(freshness("soon", 0, 60_000), Freshness::Malformed);
        assert!(freshness("soon", 0, 60_000).needs_refresh());
    }
}
