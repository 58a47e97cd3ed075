//! `linear-oauth setup`: install a workspace (the browser's authorization
//! code flow, or the client_credentials grant) and report it.

use std::io::{IsTerminal, Read};
use std::time::Duration;

use clap::Args;
use linear_oauth_host::{ClientCredentialsParams, InstallParams, Resolver};
use serde_json::json;

use crate::error::CliError;
use crate::{callback, options, print_json, Cli};

#[derive(Debug, Args)]
pub(crate) struct SetupArgs {
    /// OAuth client id of the Linear app.
    #[arg(long, env = "LINEAR_OAUTH_CLIENT_ID")]
    client_id: String,
    /// Read the client secret from stdin (else LINEAR_OAUTH_CLIENT_SECRET, else a hidden prompt).
    #[arg(long)]
    client_secret_stdin: bool,
    /// Must byte-match the redirect URI configured in the Linear app.
    #[arg(long, default_value = callback::DEFAULT_REDIRECT_URI)]
    redirect_uri: String,
    /// Space- or comma-separated; sent space-separated.
    #[arg(long, default_value = "read write app:assignable app:mentionable")]
    scopes: String,
    /// Leave out actor=app (for diagnosing app settings).
    #[arg(long)]
    no_actor_app: bool,
    /// Leave out prompt=consent, which makes Linear show the consent screen
    /// even when this browser already authorized the app (so one browser
    /// session can install several workspaces in a row).
    #[arg(long)]
    no_prompt_consent: bool,
    /// Store the token in this secret instead of <secret prefix><url key>
    /// (for a workspace whose url key's secret holds another workspace).
    #[arg(long, value_name = "NAME")]
    secret_id: Option<String>,
    /// No browser: fetch the app's token with Linear's client_credentials grant
    /// (enable "Client credentials" in the Linear app's settings first). The
    /// token has no refresh token; resolvers fetch a new one when it expires.
    #[arg(long, conflicts_with_all = ["no_actor_app", "no_prompt_consent", "no_browser", "redirect_uri", "timeout"])]
    client_credentials: bool,
    /// Print the authorization URL on stderr instead of opening a browser.
    #[arg(long)]
    no_browser: bool,
    /// Seconds to wait for the browser (at most one day).
    #[arg(long, default_value_t = 700.0, allow_negative_numbers = true)]
    timeout: f64,
    /// Recorded as installed_by_platform_user_id [default: $USER].
    #[arg(long, env = "LINEAR_OAUTH_INSTALLED_BY")]
    installed_by: Option<String>,
}

fn client_secret(from_env: Option<String>, from_stdin: bool) -> Result<String, CliError> {
    let secret = if let Some(s) = from_env {
        s
    } else if from_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::Io(format!("reading the client secret from stdin: {e}")))?;
        s
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Linear client secret (not echoed): ")
            .map_err(|e| CliError::Io(format!("reading the client secret: {e}")))?
    } else {
        return Err(linear_oauth_host::Error::InvalidInput(
            "no client secret: set LINEAR_OAUTH_CLIENT_SECRET, pass --client-secret-stdin, or run in a terminal".into(),
        )
        .into());
    };
    let secret = secret.trim().to_owned();
    if secret.is_empty() {
        return Err(linear_oauth_host::Error::InvalidInput("the client secret is empty".into()).into());
    }
    Ok(secret)
}

/// The longest `setup --timeout`.
const MAX_SETUP_TIMEOUT: Duration = Duration::from_secs(86_400);

pub(crate) fn setup(cli: &Cli, args: &SetupArgs, env_secret: Option<String>) -> Result<(), CliError> {
    let timeout = linear_oauth_host::checked_seconds("--timeout", args.timeout, false, MAX_SETUP_TIMEOUT)?;
    let r = Resolver::new(options(cli)?)?;
    let installed_by = args
        .installed_by
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "linear-oauth-cli".into());
    let client_secret = client_secret(env_secret, args.client_secret_stdin)?;
    let installed = if args.client_credentials {
        let params = ClientCredentialsParams {
            client_id: args.client_id.clone(),
            client_secret: client_secret.into(),
            scopes: vec![args.scopes.clone()],
            secret_id: args.secret_id.clone(),
        };
        r.install_client_credentials(&params, &installed_by)?
    } else {
        let params = InstallParams {
            client_id: args.client_id.clone(),
            client_secret: client_secret.into(),
            redirect_uri: args.redirect_uri.clone(),
            scopes: vec![args.scopes.clone()],
            actor_app: !args.no_actor_app,
            prompt_consent: !args.no_prompt_consent,
            secret_id: args.secret_id.clone(),
        };
        let flow = callback::Flow {
            timeout,
            open_browser: !args.no_browser,
            spinner: std::io::stderr().is_terminal() && !cli.json,
            installed_by,
        };
        flow.run(&r, &params, |url| eprintln!("Open this URL to authorize the install:\n{url}"))?
    };
    let grant_type = if args.client_credentials { "client_credentials" } else { "authorization_code" };
    if cli.json {
        print_json(&json!({
            "workspace_id": installed.workspace_id, "workspace_name": installed.workspace_name,
            "workspace_slug": installed.workspace_slug, "viewer": { "id": installed.viewer_id, "name": installed.viewer_name, "email": installed.viewer_email },
            "app_user_id": installed.app_user_id,
            "secret_id": installed.secret_id, "scope": installed.scope, "expires_at": installed.expires_at,
            "installed_at": installed.installed_at, "replaced": installed.replaced, "store": r.options().store,
            "grant_type": grant_type,
        }));
    } else {
        println!(
            "{} Linear workspace {:?} ({}, id {})",
            if installed.replaced { "Updated" } else { "Installed" },
            installed.workspace_name,
            installed.workspace_slug,
            installed.workspace_id
        );
        if args.client_credentials {
            println!("  grant          client credentials (app token; fetched anew when it expires)");
            println!("  app user       {} <{}>", installed.viewer_name, installed.viewer_email);
        } else {
            println!("  authorized by  {} <{}>", installed.viewer_name, installed.viewer_email);
        }
        if let Some(id) = &installed.app_user_id {
            println!("  app user id    {id}");
        }
        println!("  scopes         {}", installed.scope);
        println!("  secret         {} in {}", installed.secret_id, r.options().store);
        println!("  token expires  {}", installed.expires_at);
        println!("Get a token with: linear-oauth token --workspace {}", installed.workspace_id);
    }
    Ok(())
}
