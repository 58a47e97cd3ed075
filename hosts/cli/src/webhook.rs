//! `linear-oauth webhook`: store a signing secret, verify a delivery, and act
//! on the lifecycle events (the app removed from a workspace).

use std::io::Read;

use clap::{Args, Subcommand};
use linear_oauth_host::{Resolver, WebhookEvent, MAX_WEBHOOK_BODY};
use serde_json::json;

use crate::error::CliError;
use crate::print_json;
use crate::setup::read_secret;

#[derive(Debug, Subcommand)]
pub(crate) enum WebhookCommand {
    /// Store a webhook signing secret: a workspace's own (in its stored token,
    /// every other field kept) or, with --stack, the stack-wide one. The value
    /// comes from stdin, or a hidden prompt on a terminal; never argv.
    SetSecret(SecretTarget),
    /// Verify a delivery whose raw body is on stdin, exactly as received.
    /// Exit 0 and the event; 17 bad signature, 18 stale timestamp, 19 malformed.
    Verify(Delivery),
    /// Verify, then act on lifecycle events: Linear's OAuthApp `revoked` for
    /// this app marks the workspace revoked. Same exit codes as `verify`.
    Handle(Delivery),
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct SecretTarget {
    /// Linear organization id of a registered workspace.
    #[arg(long)]
    workspace: Option<String>,
    /// Secret id of a stored token.
    #[arg(long)]
    secret: Option<String>,
    /// The stack-wide secret (--webhook-secret-id, LINEAR_OAUTH_WEBHOOK_SECRET_ID),
    /// used for workspaces without their own.
    #[arg(long)]
    stack: bool,
}

#[derive(Debug, Args)]
pub(crate) struct Delivery {
    /// The Linear-Signature header (hex HMAC-SHA256 of the body).
    #[arg(long)]
    signature: String,
    /// The Linear-Delivery header, reported back with the event.
    #[arg(long)]
    delivery: Option<String>,
}

pub(crate) fn run(r: &Resolver, command: &WebhookCommand, json_out: bool) -> Result<(), CliError> {
    match command {
        WebhookCommand::SetSecret(t) => {
            let value = read_secret(
                "the webhook signing secret",
                !std::io::IsTerminal::is_terminal(&std::io::stdin()),
                "pipe it on stdin or run in a terminal",
            )?;
            let target = match (&t.workspace, &t.secret) {
                (Some(w), _) => Some(linear_oauth_host::Target::Workspace(w)),
                (_, Some(s)) => Some(linear_oauth_host::Target::Secret(s)),
                _ => None,
            };
            r.set_webhook_secret(target, &value.into())?;
            let whose = match (&t.workspace, &t.secret) {
                (Some(w), _) => format!("workspace {w}"),
                (_, Some(s)) => format!("secret {s}"),
                _ => format!("the stack ({})", r.options().webhook_secret_id.as_deref().unwrap_or_default()),
            };
            if json_out {
                print_json(&json!({ "stored": true, "for": whose }));
            } else {
                println!("stored the webhook signing secret of {whose}");
            }
        }
        WebhookCommand::Verify(d) => {
            print_event(&r.verify_webhook(&body()?, &d.signature, d.delivery.as_deref())?, json_out)
        }
        WebhookCommand::Handle(d) => {
            print_event(&r.handle_webhook(&body()?, &d.signature, d.delivery.as_deref())?, json_out)
        }
    }
    Ok(())
}

/// The raw body from stdin, refused past 1 MiB without reading further.
fn body() -> Result<Vec<u8>, CliError> {
    let mut body = Vec::new();
    std::io::stdin()
        .take(MAX_WEBHOOK_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| CliError::Io(format!("reading the webhook body from stdin: {e}")))?;
    Ok(body)
}

fn print_event(e: &WebhookEvent, json_out: bool) {
    if json_out {
        let data: serde_json::Value = serde_json::from_str(&e.data).unwrap_or(serde_json::Value::Null);
        print_json(&json!({
            "type": e.kind, "action": e.action, "organization_id": e.organization_id, "webhook_id": e.webhook_id,
            "oauth_client_id": e.oauth_client_id, "delivery_id": e.delivery_id, "created_at": e.created_at,
            "timestamp_ms": e.timestamp_ms, "matched": e.matched.as_str(), "data": data,
            "outcome": e.outcome.as_ref().map(|o| o.as_str()),
        }));
        return;
    }
    let action = e.action.as_deref().map(|a| format!(" {a}")).unwrap_or_default();
    let org = e.organization_id.as_deref().unwrap_or("(no organization)");
    println!("verified {}{action} for {org} with the {} signing secret", e.kind, e.matched.as_str());
    match &e.outcome {
        Some(linear_oauth_host::WebhookOutcome::OtherApp { stored_client_id }) => println!(
            "ignored: the event is about OAuth app {}, this workspace's app is {stored_client_id}",
            e.oauth_client_id.as_deref().unwrap_or_default()
        ),
        Some(o) => println!("app removed from the workspace: {}", o.as_str()),
        None => {}
    }
}
