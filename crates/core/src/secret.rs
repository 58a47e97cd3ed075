//! Secret strings that cannot leak through `Debug` or `Display`.

use std::fmt;

macro_rules! secret_string {
    ($(#[$meta:meta])* $name:ident $(, $derive:ident)*) => {
        $(#[$meta])*
        #[derive(PartialEq, Eq $(, $derive)*)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            /// The secret itself; every call site is a place where it may leak.
            pub fn secret(&self) -> &str {
                &self.0
            }
            pub fn into_secret(self) -> String {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_string!(
    /// A Linear access token.
    AccessToken, Clone
);
secret_string!(
    /// A Linear refresh token: rotates on every use and is one-shot.
    RefreshToken, Clone
);
secret_string!(
    /// The OAuth app's client secret.
    ClientSecret, Clone
);
secret_string!(
    /// A Linear webhook signing secret (HMAC key of `Linear-Signature`).
    SigningSecret, Clone
);
secret_string!(
    /// An authorization code from the install callback.
    AuthCode
);
secret_string!(
    /// A PKCE code verifier. Not `Clone`: it is used exactly once.
    PkceVerifier
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let t = AccessToken::new("lin_oauth_canary");
        assert_eq!(format!("{t:?}"), "AccessToken([redacted])");
        let v = PkceVerifier::new("verifier-canary");
        assert!(!format!("{v:?}").contains("canary"));
        assert_eq!(t.secret(), "lin_oauth_canary");
    }
}
