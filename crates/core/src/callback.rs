//! The loopback callback's query string.

use subtle::ConstantTimeEq;

use crate::AuthCode;

/// Why a callback carries no usable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackError {
    /// `state` is missing or is not ours: never exchange the code.
    StateMismatch,
    /// Linear sent `error=...` (for example `access_denied`).
    Denied { error: String, description: Option<String> },
    /// Neither a code nor an error.
    MissingCode,
}

/// Returns the code when `state` matches (compared in constant time).
pub fn parse_callback(query: &str, expected_state: &str) -> Result<AuthCode, CallbackError> {
    let query = query.strip_prefix('?').unwrap_or(query);
    let (mut code, mut state, mut error, mut description) = (None, None, None, None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match &*k {
            "code" => &mut code,
            "state" => &mut state,
            "error" => &mut error,
            "error_description" => &mut description,
            _ => continue,
        };
        slot.get_or_insert_with(|| v.into_owned());
    }
    let state_ok = match state {
        Some(s) if !expected_state.is_empty() => bool::from(s.as_bytes().ct_eq(expected_state.as_bytes())),
        _ => false,
    };
    if !state_ok {
        return Err(CallbackError::StateMismatch);
    }
    if let Some(error) = error {
        return Err(CallbackError::Denied { error, description });
    }
    match code {
        Some(c) if !c.is_empty() => Ok(AuthCode::new(c)),
        _ => Err(CallbackError::MissingCode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_with_matching_state() {
        let code = parse_callback("?code=abc&state=s1", "s1").unwrap();
        assert_eq!(code.secret(), "abc");
    }

    #[test]
    fn state_mismatch_wins_over_everything() {
        assert_eq!(parse_callback("code=abc&state=s2", "s1"), Err(CallbackError::StateMismatch));
        assert_eq!(parse_callback("code=abc", "s1"), Err(CallbackError::StateMismatch));
        assert_eq!(parse_callback("code=abc&state=", ""), Err(CallbackError::StateMismatch));
        assert_eq!(parse_callback("error=access_denied&state=bad", "s1"), Err(CallbackError::StateMismatch));
    }

    #[test]
    fn access_denied() {
        assert_eq!(
            parse_callback("error=access_denied&error_description=User+denied&state=s1", "s1"),
            Err(CallbackError::Denied { error: "access_denied".into(), description: Some("User denied".into()) })
        );
    }

    #[test]
    fn missing_code() {
        assert_eq!(parse_callback("state=s1", "s1"), Err(CallbackError::MissingCode));
        assert_eq!(parse_callback("state=s1&code=", "s1"), Err(CallbackError::MissingCode));
    }
}
