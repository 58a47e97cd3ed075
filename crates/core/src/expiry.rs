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

#[cfg(test)]
mod tests {
    use super::*;

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
