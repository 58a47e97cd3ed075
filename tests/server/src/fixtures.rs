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
pub fn stored_token(
    access: &str,
    refresh: &str,
    expires_at: &str,
    workspace_id: &str,
    slug: &str,
) -> serde_json::Value {
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

/// What a browser sees for one GET: the status and the `Location` header.
/// Redirects are not followed, so a test can play each leg of an install.
pub fn browser_get(url: &str) -> std::io::Result<(u16, Option<String>)> {
    use std::io::{Error, ErrorKind, Read, Write};
    let bad = |m: String| Error::new(ErrorKind::InvalidInput, m);
    let u = url::Url::parse(url).map_err(|e| bad(format!("{url}: {e}")))?;
    let addr = format!("{}:{}", u.host_str().unwrap_or("127.0.0.1"), u.port_or_known_default().unwrap_or(80));
    let target = &u[url::Position::BeforePath..];
    let mut s = std::net::TcpStream::connect(&addr)?;
    write!(s, "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out.get(9..12).and_then(|s| s.parse().ok()).ok_or_else(|| bad("no HTTP status line".into()))?;
    let location = out.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("location")).map(|(_, v)| v.trim().to_owned())
    });
    Ok((status, location))
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
