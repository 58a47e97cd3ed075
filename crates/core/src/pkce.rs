//! PKCE S256 (RFC 7636) and the CSRF `state`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::PkceVerifier;

/// `BASE64URL(SHA256(verifier))` without padding.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A short, non-reversible tag for a secret (first 4 bytes of SHA-256, hex),
/// so two copies can be compared in logs and `inspect` without showing either.
pub fn fingerprint(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// A verifier and its S256 challenge.
#[derive(Debug)]
pub struct PkcePair {
    pub verifier: PkceVerifier,
    pub challenge: String,
}

impl PkcePair {
    /// From 32 random bytes: a 43-character verifier (RFC 7636 section 4.1).
    pub fn from_random(bytes: [u8; 32]) -> Self {
        let verifier = URL_SAFE_NO_PAD.encode(bytes);
        let challenge = pkce_challenge(&verifier);
        Self { verifier: PkceVerifier::new(verifier), challenge }
    }
}

/// The `state` parameter: 256 random bits, base64url.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State(pub String);

impl State {
    pub fn from_random(bytes: [u8; 32]) -> Self {
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        // The appendix's verifier comes from these octets.
        let octets = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77, 105, 214, 191,
            240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let pair = PkcePair::from_random(octets);
        assert_eq!(pair.verifier.secret(), "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(pair.challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn fingerprints_are_short_and_stable() {
        assert_eq!(fingerprint("abc"), "ba7816bf");
        assert_ne!(fingerprint("abd"), fingerprint("abc"));
    }

    #[test]
    fn verifier_length_and_state_entropy() {
        let pair = PkcePair::from_random([7; 32]);
        assert_eq!(pair.verifier.secret().len(), 43);
        assert_eq!(State::from_random([1; 32]).0.len(), 43);
    }
}
