//! `linear-oauth setup`: install a workspace (the browser's authorization
//! code flow, or the client_credentials grant) and report it.

use std::io::{IsTerminal, Read};
use std::time::Duration;

use clap::Args;
use linear_oauth_host::{ClientCredentialsParams, InstallParams, Resolver, Target};
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
    /// Print the authorization URL on stderr instead of opening a browser, and
    /// also accept the redirect URL pasted on stdin (a headless install).
    #[arg(long)]
    no_browser: bool,
    /// Seconds to wait for the browser (at most one day).
    #[arg(long, default_value_t = 700.0, allow_negative_numbers = true)]
    timeout: f64,
    /// Also store the workspace's webhook signing secret, read from stdin
    /// (the client secret then comes from LINEAR_OAUTH_CLIENT_SECRET or a prompt).
    #[arg(long, conflicts_with = "client_secret_stdin")]
    webhook_secret_stdin: bool,
    /// Recorded as installed_by_platform_user_id [default: $USER].
    #[arg(long, env = "LINEAR_OAUTH_INSTALLED_BY")]
    installed_by: Option<String>,
}

fn client_secret(from_env: Option<String>, from_stdin: bool) -> Result<String, CliError> {
    match from_env {
        Some(s) => non_empty("the client secret", s),
        None => read_secret(
            "the client secret",
            from_stdin,
            "set LINEAR_OAUTH_CLIENT_SECRET, pass --client-secret-stdin, or run in a terminal",
        ),
    }
}

/// A secret from stdin (`from_stdin`, or whenever stdin is not a terminal
/// and `--...-stdin` was given) or a hidden prompt; never argv, which every
/// user of the machine can read. Trimmed; empty is refused.
pub(crate) fn read_secret(what: &str, from_stdin: bool, how: &str) -> Result<String, CliError> {
    let secret = if from_stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| CliError::Io(format!("reading {what} from stdin: {e}")))?;
        s
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{} (not echoed): ", capitalized(what)))
            .map_err(|e| CliError::Io(format!("reading {what}: {e}")))?
    } else {
        return Err(
            linear_oauth_host::Error::InvalidInput(format!("no {}: {how}", what.trim_start_matches("the "))).into()
        );
    };
    non_empty(what, secret)
}

fn non_empty(what: &str, secret: String) -> Result<String, CliError> {
    let secret = secret.trim().to_owned();
    if secret.is_empty() {
        return Err(linear_oauth_host::Error::InvalidInput(format!("{what} is empty")).into());
    }
    Ok(secret)
}

fn capitalized(what: &str) -> String {
    let what = what.trim_start_matches("the ");
    let mut c = what.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// How to finish an install whose browser is on another machine.
fn headless_help(redirect_uri: &str) -> String {
    let port = url::Url::parse(redirect_uri).ok().and_then(|u| u.port_or_known_default()).unwrap_or(8080);
    format!(
        "No browser here? Either:\n\
         \x20 - forward the callback port from the machine with the browser, then open the URL there:\n\
         \x20     ssh -L {port}:localhost:{port} <this host>\n\
         \x20 - or open the URL anywhere, approve, and paste here the address the browser was sent to\n\
         \x20   (it starts with {redirect_uri}?code=...; the page itself may fail to load), then press Enter\n\
         \x20 - or run `linear-oauth setup` on a machine with a browser against the same store (e.g. --store aws)"
    )
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
    // Read before the install, so a missing one loses nothing.
    let webhook_secret = match args.webhook_secret_stdin {
        true => Some(read_secret("the webhook signing secret", true, "")?),
        false => None,
    };
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
            // stdin is free for a pasted redirect URL unless a secret came from it.
            paste: args.no_browser && !args.client_secret_stdin && !args.webhook_secret_stdin,
        };
        let redirect = params.redirect_uri.clone();
        flow.run(&r, &params, |url| {
            eprintln!("Open this URL to authorize the install:\n{url}");
            if flow.paste {
                eprintln!("{}", headless_help(&redirect));
            }
        })?
    };
    if let Some(value) = webhook_secret {
        r.set_webhook_secret(Some(Target::Secret(&installed.secret_id)), &value.into())?;
    }
    let grant_type = if args.client_credentials { "client_credentials" } else { "authorization_code" };
    if cli.json {
        print_json(&json!({
            "workspace_id": installed.workspace_id, "workspace_name": installed.workspace_name,
            "workspace_slug": installed.workspace_slug, "viewer": { "id": installed.viewer_id, "name": installed.viewer_name, "email": installed.viewer_email },
            "app_user_id": installed.app_user_id,
            "secret_id": installed.secret_id, "scope": installed.scope, "expires_at": installed.expires_at,
            "installed_at": installed.installed_at, "replaced": installed.replaced, "store": r.options().store,
            "grant_type": grant_type, "webhook_secret_stored": args.webhook_secret_stdin,
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
        if args.webhook_secret_stdin {
            println!("  webhooks       signing secret stored in the same secret");
        }
        println!("Get a token with: linear-oauth token --workspace {}", installed.workspace_id);
    }
    Ok(())
}
