//! The browser leg: the authorization URL.

use url::Url;

/// `admin` is left out on purpose: Linear refuses it together with `actor=app`.
pub const DEFAULT_SCOPES: &[&str] = &["read", "write", "app:assignable", "app:mentionable"];

/// Splits user input on whitespace and commas. Linear wants scopes
/// space-separated and answers a comma-separated list with a misleading
/// "Invalid redirect_uri", so commas never reach it.
pub fn normalize_scopes<S: AsRef<str>>(scopes: &[S]) -> Vec<String> {
    scopes
        .iter()
        .flat_map(|s| s.as_ref().split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Everything the authorization URL carries.
#[derive(Debug)]
pub struct AuthorizeRequest<'a> {
    pub authorize_url: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a [String],
    pub state: &'a str,
    pub code_challenge: &'a str,
    pub actor_app: bool,
    /// `prompt=consent`: Linear shows the consent screen even when this
    /// browser session already authorized the app, so one operator can
    /// install into several workspaces in a row (Linear's OAuth page
    /// documents it for exactly that).
    pub prompt_consent: bool,
}

impl AuthorizeRequest<'_> {
    pub fn url(&self) -> Result<String, String> {
        let mut url = Url::parse(self.authorize_url).map_err(|e| format!("authorize URL is not a URL: {e}"))?;
        if self.client_id.is_empty() {
            return Err("client id is empty".into());
        }
        Url::parse(self.redirect_uri).map_err(|e| format!("redirect URI is not a URL: {e}"))?;
        if self.scopes.is_empty() {
            return Err("no scopes requested".into());
        }
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", self.client_id)
                .append_pair("redirect_uri", self.redirect_uri)
                .append_pair("response_type", "code")
                .append_pair("scope", &self.scopes.join(" "))
                .append_pair("state", self.state)
                .append_pair("code_challenge", self.code_challenge)
                .append_pair("code_challenge_method", "S256");
            if self.actor_app {
                q.append_pair("actor", "app");
            }
            if self.prompt_consent {
                q.append_pair("prompt", "consent");
            }
        }
        Ok(url.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(url: &str) -> Vec<(String, String)> {
        Url::parse(url).unwrap().query_pairs().into_owned().collect()
    }

    #[test]
    fn url_has_every_parameter_and_space_separated_scopes() {
        let scopes = normalize_scopes(DEFAULT_SCOPES);
        let req = AuthorizeRequest {
            authorize_url: "https://linear.app/oauth/authorize",
            client_id: "cid",
            redirect_uri: "http://localhost:8080/oauth/callback",
            scopes: &scopes,
            state: "st",
            code_challenge: "ch",
            actor_app: true,
            prompt_consent: true,
        };
        let url = req.url().unwrap();
        assert!(url.starts_with("https://linear.app/oauth/authorize?"));
        assert!(!url.contains("%2C"), "no commas: {url}");
        let q = query(&url);
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("scope").unwrap(), "read write app:assignable app:mentionable");
        assert_eq!(get("redirect_uri").unwrap(), "http://localhost:8080/oauth/callback");
        assert_eq!(get("response_type").unwrap(), "code");
        assert_eq!(get("code_challenge_method").unwrap(), "S256");
        assert_eq!(get("code_challenge").unwrap(), "ch");
        assert_eq!(get("state").unwrap(), "st");
        assert_eq!(get("actor").unwrap(), "app");
        assert_eq!(get("prompt").unwrap(), "consent");

        let no_actor = AuthorizeRequest { actor_app: false, ..req };
        assert!(query(&no_actor.url().unwrap()).iter().all(|(k, _)| k != "actor"));
        let no_prompt = AuthorizeRequest { prompt_consent: false, ..req };
        assert!(query(&no_prompt.url().unwrap()).iter().all(|(k, _)| k != "prompt"));
    }

    #[test]
    fn scopes_are_split_on_commas_and_spaces() {
        assert_eq!(
            normalize_scopes(&["read,write", " app:assignable  x "]),
            vec!["read", "write", "app:assignable", "x"]
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let scopes = vec!["read".to_string()];
        let mut req = AuthorizeRequest {
            authorize_url: "not a url",
            client_id: "cid",
            redirect_uri: "http://localhost/cb",
            scopes: &scopes,
            state: "s",
            code_challenge: "c",
            actor_app: true,
            prompt_consent: true,
        };
        assert!(req.url().is_err());
        req.authorize_url = "https://linear.app/oauth/authorize";
        req.client_id = "";
        assert!(req.url().is_err());
    }
}
