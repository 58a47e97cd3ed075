//! What to do after `invalid_grant`: another refresher may have rotated first.

use crate::{freshness, parse_instant, Freshness, StoredToken};

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

/// What a would-be refresher may serve instead of refreshing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    /// Fresh: serve it; it may be cached until `refresh_due_ms`.
    Fresh { refresh_due_ms: i64 },
    /// Another refresher's token, inside the threshold but valid for more
    /// than a second: serve it to this caller only, and do not refresh again
    /// (one refresh per waiter otherwise, when Linear issues short tokens).
    DueButValid,
}

/// Whether somebody renewed (or reinstalled) since `seen` was read.
pub fn renewed_since(current: &StoredToken, seen: &StoredToken) -> bool {
    current.lineage() != seen.lineage() || current.access_token != seen.access_token
}

/// Another refresher's token: served while it is valid at all.
pub fn rotated_usable(tok: &StoredToken, now_ms: i64, threshold_ms: u64) -> Option<Serve> {
    if let Freshness::Fresh { refresh_due_ms } = freshness(&tok.expires_at, now_ms, threshold_ms) {
        return Some(Serve::Fresh { refresh_due_ms });
    }
    (parse_instant(&tok.expires_at)? > now_ms + 1000).then_some(Serve::DueButValid)
}

/// Our refresh of `old` into `new` lost a compare-and-swap to a write of
/// `current`. If that writer did not renew (same lineage: it changed other
/// fields, or is an old-style writer putting the same grant back), our
/// refresh goes on top of it, keeping its unknown fields; if it did renew or
/// reinstall, theirs is newer and stays (`None`). A client secret that writer
/// changed (a rotation of the app's secret) stays too.
pub fn merge_after_conflict(old: &StoredToken, new: &StoredToken, current: &StoredToken) -> Option<StoredToken> {
    if current.lineage() != old.lineage() {
        return None;
    }
    let mut merged = new.clone();
    merged.clone_extra_from(current);
    if current.client_secret != old.client_secret {
        merged.client_secret = current.client_secret.clone();
    }
    Some(merged)
}

/// What a would-be refresher may serve, given what is stored `current`ly and
/// what it had `seen` before waiting: another refresher's token, or (unless
/// `force`d) one that is fresh anyway.
pub fn usable_without_refresh(
    current: &StoredToken,
    seen: &StoredToken,
    force: bool,
    now_ms: i64,
    threshold_ms: u64,
) -> Option<Serve> {
    if renewed_since(current, seen) {
        rotated_usable(current, now_ms, threshold_ms)
    } else if force {
        None
    } else {
        match freshness(&current.expires_at, now_ms, threshold_ms) {
            Freshness::Fresh { refresh_due_ms } => Some(Serve::Fresh { refresh_due_ms }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format_instant;

    #[test]
    fn what_a_waiter_serves_instead_of_refreshing() {
        let (now, t): (i64, u64) = (1_000_000_000, 60_000);
        let day = now + 86_400_000;
        let due = Some(Serve::Fresh { refresh_due_ms: day - 60_000 });
        // Nobody renewed: a fresh token is served unless forced; an expiring one is refreshed.
        assert_eq!(usable_without_refresh(&token("r1", day), &token("r1", day), false, now, t), due);
        assert_eq!(usable_without_refresh(&token("r1", day), &token("r1", day), true, now, t), None);
        assert_eq!(usable_without_refresh(&token("r1", now + 30_000), &token("r1", now + 30_000), false, now, t), None);
        // Somebody renewed: theirs, even when forced, and even inside the threshold...
        assert_eq!(usable_without_refresh(&token("r2", day), &token("r1", day), true, now, t), due);
        let short = token("r2", now + 30_000);
        assert_eq!(usable_without_refresh(&short, &token("r1", day), false, now, t), Some(Serve::DueButValid));
        // ...but not when it is about to expire.
        assert_eq!(usable_without_refresh(&token("r2", now + 500), &token("r1", day), false, now, t), None);
        assert!(!renewed_since(&token("r1", day), &token("r1", now)));
    }

    fn token(refresh: &str, expires_ms: i64) -> StoredToken {
        let mut v: serde_json::Value = serde_json::from_str(&crate::stored::tests::sample()).unwrap();
        v["refresh_token"] = refresh.into();
        v["expires_at"] = format_instant(expires_ms).into();
        StoredToken::parse(&v.to_string()).unwrap()
    }

    #[test]
    fn a_lost_write_back_merges_only_onto_the_same_grant() {
        let now = 1_000_000_000;
        let old = token("r1", now + 30_000);
        let new = token("r2", now + 86_400_000);
        // Somebody added a field without renewing: ours goes on top, with their field.
        let mut v: serde_json::Value = serde_json::from_str(&old.to_json()).unwrap();
        v["note"] = "theirs".into();
        let touched = StoredToken::parse(&v.to_string()).unwrap();
        let merged = merge_after_conflict(&old, &new, &touched).expect("same grant");
        assert_eq!(merged.lineage(), "r2");
        assert_eq!(merged.extra()["note"], "theirs");
        // Somebody renewed or reinstalled: theirs stays.
        assert_eq!(merge_after_conflict(&old, &new, &token("r9", now + 86_400_000)), None);
    }

    #[test]
    fn a_lost_write_back_keeps_a_client_secret_rotated_meanwhile() {
        let now = 1_000_000_000;
        let old = token("r1", now + 30_000);
        let new = token("r2", now + 86_400_000);
        let mut rotated = old.clone();
        rotated.client_secret = crate::ClientSecret::new("rotated");
        let merged = merge_after_conflict(&old, &new, &rotated).expect("same grant");
        assert_eq!((merged.lineage(), merged.client_secret.secret()), ("r2", "rotated"));
        // A refresh that itself carries a new secret (a verification) keeps it
        // over an unchanged one.
        let mut verified = new.clone();
        verified.client_secret = crate::ClientSecret::new("verified");
        let merged = merge_after_conflict(&old, &verified, &old).expect("same grant");
        assert_eq!(merged.client_secret.secret(), "verified");
    }

    #[test]
    fn decisions() {
        let now = 1_000_000_000;
        assert_eq!(after_invalid_grant("r1", &token("r1", now + 86_400_000), now, 60_000), Recovery::Reauthorize);
        assert_eq!(after_invalid_grant("r1", &token("r2", now + 86_400_000), now, 60_000), Recovery::UseStored);
        assert_eq!(after_invalid_grant("r1", &token("r2", now + 1_000), now, 60_000), Recovery::RefreshAgain);
    }
}
