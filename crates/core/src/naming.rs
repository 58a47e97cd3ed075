//! Secret names and workspace slugs.

pub const DEFAULT_SECRET_PREFIX: &str = "bgagent-linear-oauth-";

/// A Linear `urlKey` as this project accepts it: `[A-Za-z0-9_-]{4,50}`.
pub fn validate_slug(slug: &str) -> Result<(), String> {
    let ok_chars = slug.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if (4..=50).contains(&slug.len()) && ok_chars {
        Ok(())
    } else {
        Err(format!("workspace slug {slug:?} must match [A-Za-z0-9_-]{{4,50}}"))
    }
}

pub fn secret_name(prefix: &str, slug: &str) -> Result<String, String> {
    validate_slug(slug)?;
    Ok(format!("{prefix}{slug}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(secret_name(DEFAULT_SECRET_PREFIX, "acme").unwrap(), "bgagent-linear-oauth-acme");
        assert!(validate_slug("a_b-C9").is_ok());
        assert!(validate_slug("abc").is_err());
        assert!(validate_slug(&"a".repeat(51)).is_err());
        assert!(validate_slug("acme/../x").is_err());
        assert!(validate_slug("acmé").is_err());
    }
}
