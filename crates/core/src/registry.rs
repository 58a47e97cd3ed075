//! Registry row status: fail closed.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryStatus {
    Active,
    /// `revoked`, or missing/empty.
    Revoked,
    /// Any other value: treated as revoked, and worth a warning.
    Unknown(String),
}

impl RegistryStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "active" => Self::Active,
            "revoked" | "" => Self::Revoked,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_active_resolves() {
        assert_eq!(RegistryStatus::parse("active"), RegistryStatus::Active);
        assert_eq!(RegistryStatus::parse(""), RegistryStatus::Revoked);
        assert_eq!(RegistryStatus::parse("ACTIVE"), RegistryStatus::Unknown("ACTIVE".into()));
    }
}
