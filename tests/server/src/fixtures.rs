//! Test data shared by every Rust test that seeds a store directly: a stored
//! token as the old tooling wrote it, and ISO-8601 instants.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `2026-01-01T00:00:00.000Z` for Unix milliseconds (civil-from-days).
pub fn iso8601(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_ms.rem_euclid(1000)
    )
}

/// The instant `secs` from now (negative: in the past).
pub fn iso8601_in(secs: i64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as i64;
    iso8601(now + secs * 1000)
}

/// An 11-field stored token for the default test client, plus one unknown
/// field (`team_hint`) that every write must preserve.
pub fn stored_token(access: &str, refresh: &str, expires_at: &str, workspace_id: &str, slug: &str) -> serde_json::Value {
    serde_json::json!({
        "access_token": access,
        "refresh_token": refresh,
        "expires_at": expires_at,
        "scope": "read write",
        "client_id": crate::DEFAULT_CLIENT_ID,
        "client_secret": crate::DEFAULT_CLIENT_SECRET,
        "workspace_id": workspace_id,
        "workspace_slug": slug,
        "installed_at": "2026-01-01T00:00:00.000Z",
        "updated_at": "2026-01-01T00:00:00.000Z",
        "installed_by_platform_user_id": "platform-user-1",
        "team_hint": {"kept": true}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_764_293_881_123), "2025-11-28T01:38:01.123Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
