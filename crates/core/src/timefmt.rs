//! ISO-8601 instants as the stored token writes them (`2026-01-02T03:04:05.678Z`).

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// 0000-01-01T00:00:00.000Z: the first instant with a four-digit RFC 3339 year.
pub const MIN_INSTANT_MS: i64 = -62_167_219_200_000;
/// 9999-12-31T23:59:59.999Z: the last one.
pub const MAX_INSTANT_MS: i64 = 253_402_300_799_999;

/// Formats Unix milliseconds the way JavaScript's `toISOString` does, which is
/// what the older tooling wrote. Out-of-range instants are clamped to years
/// 0000..=9999 (never wrapped to 1970: a far-future expiry must stay far
/// future), so the result always parses back.
pub fn format_instant(unix_ms: i64) -> String {
    let ms = unix_ms.clamp(MIN_INSTANT_MS, MAX_INSTANT_MS);
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
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
        PrimitiveDateTime::parse(s, &fmt).ok().map(|p| p.assume_offset(UtcOffset::UTC))
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
    fn out_of_range_clamps_instead_of_1970() {
        assert_eq!(format_instant(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_instant(i64::MIN), "0000-01-01T00:00:00.000Z");
        assert_eq!(parse_instant(&format_instant(i64::MAX)), Some(MAX_INSTANT_MS));
        assert_eq!(parse_instant(&format_instant(i64::MIN)), Some(MIN_INSTANT_MS));
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
