//! Registry row status: fail closed.

/// The status of a workspace whose stored credential Linear provably
/// refused (`invalid_grant` after the re-read, or a refused client secret):
/// recorded once, with the time and the OAuth error code, so no process and
/// no cold start sends the dead credential again. Readers that do not know
/// it see a status other than `active` and fail closed. A new install
/// (`setup`) of the workspace writes `active` again.
pub const REAUTHORIZATION_REQUIRED: &str = "reauthorization_required";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryStatus {
    Active,
    /// `revoked`, or missing/empty.
    Revoked,
    /// [`REAUTHORIZATION_REQUIRED`]: the workspace must be installed again.
    ReauthorizationRequired,
    /// Any other value: treated as revoked, and worth a warning.
    Unknown(String),
}

impl RegistryStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "active" => Self::Active,
            "revoked" | "" => Self::Revoked,
            REAUTHORIZATION_REQUIRED => Self::ReauthorizationRequired,
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
        assert_eq!(RegistryStatus::parse("reauthorization_required"), RegistryStatus::ReauthorizationRequired);
        assert_eq!(RegistryStatus::parse("ACTIVE"), RegistryStatus::Unknown("ACTIVE".into()));
    }
}
