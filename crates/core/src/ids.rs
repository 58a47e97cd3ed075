//! Which secret ids and workspace ids every store can hold, and how the file
//! store spells one in a file name. One rule, so an id the component accepts
//! is one the file store can name.

use std::fmt::Write as _;

/// Longest id accepted, counted as the file store spells it in a file name
/// ([`escape_id`]: each byte outside `[A-Za-z0-9_-]` takes three). File
/// names are at most 255 bytes and the file store adds at most 21 around an id
/// (`lease-refresh%3A` ... `.lock`), so 200 leaves room; Secrets Manager
/// (names up to 512 characters, ARNs up to 2048) and DynamoDB keys (up to 2048
/// bytes) take every id that passes. Refusing in the component makes an
/// overlong id invalid input in every store, instead of a store error in one.
pub const MAX_ID_ENCODED: usize = 200;

/// Whether a byte stands for itself in a file name.
fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// `id` as a file name: every byte outside `[A-Za-z0-9_-]` percent-encoded
/// (`%3A`, upper-case hex), so names, ARNs and lease keys map one-to-one onto
/// names no file system misreads.
pub fn escape_id(id: &str) -> String {
    let mut out = String::with_capacity(encoded_len(id));
    for b in id.bytes() {
        if plain(b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The length of [`escape_id`]`(id)`, without building it.
pub fn encoded_len(id: &str) -> usize {
    id.bytes().map(|b| if plain(b) { 1 } else { 3 }).sum()
}

/// Why an id is refused; `what` names it for the caller ("secret id").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} must be a non-empty printable string")]
    Unprintable { what: &'static str },
    #[error(
        "{what} is too long: {len} bytes, {encoded} once escaped for a file name (at most {MAX_ID_ENCODED}; \
         each character other than letters, digits, '_' and '-' counts three)"
    )]
    TooLong { what: &'static str, len: usize, encoded: usize },
}

/// An id every store can hold: printable, non-empty, and at most
/// [`MAX_ID_ENCODED`] bytes once escaped.
pub fn check_id(what: &'static str, id: &str) -> Result<(), IdError> {
    if id.trim().is_empty() || id.chars().any(char::is_control) {
        return Err(IdError::Unprintable { what });
    }
    let encoded = encoded_len(id);
    if encoded > MAX_ID_ENCODED {
        return Err(IdError::TooLong { what, len: id.len(), encoded });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_the_safe_bytes_and_percent_encodes_the_rest() {
        assert_eq!(escape_id("bgagent-linear-oauth-acme_1"), "bgagent-linear-oauth-acme_1");
        assert_eq!(escape_id("refresh:a b.c/é"), "refresh%3Aa%20b%2Ec%2F%C3%A9");
        for id in ["", "x", "refresh:a b.c/é", "arn:aws:secretsmanager:eu-west-1:1:secret:x"] {
            assert_eq!(escape_id(id).len(), encoded_len(id), "{id}");
        }
    }

    #[test]
    fn ids_are_printable_and_bounded_once_escaped() {
        assert_eq!(check_id("secret id", " "), Err(IdError::Unprintable { what: "secret id" }));
        assert_eq!(check_id("secret id", "a\nb"), Err(IdError::Unprintable { what: "secret id" }));
        assert_eq!(check_id("secret id", &"a".repeat(MAX_ID_ENCODED)), Ok(()));
        let long = ":".repeat(67);
        assert_eq!(
            check_id("workspace id", &long),
            Err(IdError::TooLong { what: "workspace id", len: 67, encoded: 201 })
        );
        assert_eq!(
            check_id("workspace id", &long).unwrap_err().to_string(),
            "workspace id is too long: 67 bytes, 201 once escaped for a file name (at most 200; each character \
             other than letters, digits, '_' and '-' counts three)"
        );
        assert_eq!(
            check_id("secret id", "").unwrap_err().to_string(),
            "secret id must be a non-empty printable string"
        );
    }
}
