//! What to do after `invalid_grant`: another refresher may have rotated first.

use crate::{freshness, StoredToken};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Someone else refreshed and the stored token is good: use it.
    UseStored,
    /// Someone else rotated but the stored token is expiring too: refresh once more with it.
    RefreshAgain,
    /// Nobody rotated: our refresh token is dead.
    Reauthorize,
}

/// Decides from a re-read that bypassed every cache.
pub fn after_invalid_grant(
    spent_refresh_token: &str,
    reread: &StoredToken,
    now_ms: i64,
    threshold_ms: u64,
) -> Recovery {
    if reread.lineage() == spent_refresh_token {
        Recovery::Reauthorize
    } else if freshness(&reread.expires_at, now_ms, threshold_ms).needs_refresh() {
        Recovery::RefreshAgain
    } else {
        Recovery::UseStored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format_instant;

    fn token(refresh: &str, expires_ms: i64) -> StoredToken {
        let mut v: serde_json::Value = serde_json::from_str(&crate::stored::tests::sample()).unwrap();
        v["refresh_token"] = refresh.into();
        v["expires_at"] = format_instant(expires_ms).into();
        StoredToken::parse(&v.to_string()).unwrap()
    }

    #[test]
    fn decisions() {
        let now = 1_000_000_000;
        assert_eq!(after_invalid_grant("r1", &token("r1", now + 86_400_000), now, 60_000), Recovery::Reauthorize);
        assert_eq!(after_invalid_grant("r1", &token("r2", now + 86_400_000), now, 60_000), Recovery::UseStored);
        assert_eq!(after_invalid_grant("r1", &token("r2", now + 1_000), now, 60_000), Recovery::RefreshAgain);
    }
}
