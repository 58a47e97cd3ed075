//! ISO-8601 instants as the stored token writes them (`2026-01-02T03:04:05.678Z`).

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Formats Unix milliseconds the way JavaScript's `toISOString` does, which is
/// what the older tooling wrote.
pub fn format_instant(unix_ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Parses RFC 3339; an instant without an offset (as Python's naive
/// `isoformat()` writes) is taken as UTC. `None` when malformed.
pub fn parse_instant(s: &str) -> Option<i64> {
    let s = s.trim();
    let t = OffsetDateTime::parse(s, &Rfc3339).ok().or_else(|| {
        let fmt = time::macros::format_description!(
            version = 2,
            "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
        );
        PrimitiveDateTime::parse(s, &fmt)
            .ok()
            .map(|p| p.assume_offset(UtcOffset::UTC))
    })?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let ms = 1_764_293_881_123;
        let s = format_instant(ms);
        assert_eq!(s, "2025-11-28T01:38:01.123Z");
        assert_eq!(parse_instant(&s), Some(ms));
    }

    #[test]
    fn accepts_offsets_and_naive() {
        assert_eq!(parse_instant("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_instant("1970-01-01T01:00:01+01:00"), Some(1000));
        assert_eq!(parse_instant("1970-01-01T00:00:01.5+00:00"), Some(1500));
        assert_eq!(parse_instant("1970-01-01T00:00:01.250000"), Some(1250));
        assert_eq!(parse_instant("tomorrow"), None);
        assert_eq!(parse_instant(""), None);
    }
}
