//! `linear-oauth status`: each workspace's health (from its registry row,
//! with the reason and time a non-active status carries), its token's expiry
//! and scope, and its last refresh (`updated_at`) — from `inspect`, which
//! shows secrets only as fingerprints, so nothing here can print one.

use linear_oauth_host::{RegistryRow, Resolver, Target, REAUTHORIZATION_REQUIRED};
use serde_json::json;

use crate::error::CliError;

/// One workspace as `status` shows it.
struct Status {
    row: RegistryRow,
    expires_at: Option<String>,
    expires_in_ms: Option<i64>,
    scope: Option<String>,
    updated_at: Option<String>,
    /// Why the stored token could not be read (a purged secret, a store error).
    unreadable: Option<String>,
}

impl Status {
    fn of(r: &Resolver, row: RegistryRow) -> Self {
        match r.inspect(Target::Workspace(&row.workspace_id)) {
            Ok(i) => {
                let field = |n: &str| i.fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
                Self {
                    expires_at: field("expires_at"),
                    scope: field("scope"),
                    updated_at: field("updated_at"),
                    expires_in_ms: i.expires_in_ms,
                    unreadable: (!i.invalid_fields.is_empty())
                        .then(|| format!("invalid stored token: {}", i.invalid_fields.join(", "))),
                    row,
                }
            }
            Err(e) => Self {
                expires_at: None,
                expires_in_ms: None,
                scope: None,
                updated_at: None,
                unreadable: Some(e.to_string()),
                row,
            },
        }
    }

    /// The registry status in words.
    fn health(&self) -> &str {
        match self.row.status.as_str() {
            REAUTHORIZATION_REQUIRED => "reauthorization required",
            s => s,
        }
    }

    /// The reason and time of a status other than `active`, where recorded.
    fn detail(&self) -> Option<String> {
        if self.row.status == "active" {
            return None;
        }
        let reason = self.row.status_reason.as_deref().map(|r| format!("reason {r}"));
        let when = self.row.status_changed_at.as_deref().map(|t| format!("since {t}"));
        let parts: Vec<String> = reason.into_iter().chain(when).collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    fn expiry(&self) -> String {
        match (&self.expires_at, self.expires_in_ms) {
            (Some(at), Some(ms)) if ms < 0 => format!("{at} (expired {} ago)", crate::human_duration(-ms)),
            (Some(at), Some(ms)) => format!("{at} (in {})", crate::human_duration(ms)),
            (Some(at), None) => at.clone(),
            (None, _) => "-".to_owned(),
        }
    }

    fn json(&self) -> serde_json::Value {
        let mut v = json!({
            "workspace_id": self.row.workspace_id, "workspace_slug": self.row.workspace_slug,
            "secret_id": self.row.secret_id, "health": self.row.status,
            "status_reason": self.row.status_reason, "status_changed_at": self.row.status_changed_at,
            "expires_at": self.expires_at, "expires_in_s": self.expires_in_ms.map(|ms| ms / 1000),
            "scope": self.scope, "last_refresh": self.updated_at, "unreadable": self.unreadable,
        });
        if self.row.status == REAUTHORIZATION_REQUIRED {
            v["fix"] = json!(crate::reinstall_fix(&self.row));
        }
        v
    }
}

pub fn run(r: &Resolver, workspace: Option<&str>, json: bool) -> Result<(), CliError> {
    let mut rows = r.backends().registry.list()?;
    if let Some(id) = workspace {
        rows.retain(|row| row.workspace_id == id);
        if rows.is_empty() {
            // The host's own error for an unknown workspace (exit 3).
            r.inspect(Target::Workspace(id))?;
        }
    }
    let all: Vec<Status> = rows.into_iter().map(|row| Status::of(r, row)).collect();
    if json {
        let v = match (workspace, all.first()) {
            (Some(_), Some(s)) => s.json(),
            _ => json!(all.iter().map(Status::json).collect::<Vec<_>>()),
        };
        crate::print_json(&v);
        return Ok(());
    }
    match (workspace, all.first()) {
        (Some(_), Some(s)) => {
            println!("workspace     {} ({})", s.row.workspace_id, s.row.workspace_slug);
            println!("secret        {}", s.row.secret_id);
            match s.detail() {
                Some(d) => println!("health        {} ({d})", s.health()),
                None => println!("health        {}", s.health()),
            }
            println!("expires       {}", s.expiry());
            println!("scope         {}", s.scope.as_deref().unwrap_or("-"));
            println!("last refresh  {}", s.updated_at.as_deref().unwrap_or("-"));
            if let Some(u) = &s.unreadable {
                println!("token         unreadable: {u}");
            }
            if s.row.status == REAUTHORIZATION_REQUIRED {
                println!("fix           {}", crate::reinstall_fix(&s.row));
            }
        }
        _ if all.is_empty() => println!("no workspaces registered in {}", r.options().store),
        _ => {
            println!(
                "{:<20} {:<38} {:<26} {:<42} {:<24} SCOPE",
                "SLUG", "WORKSPACE ID", "HEALTH", "EXPIRES", "LAST REFRESH"
            );
            for s in &all {
                println!(
                    "{:<20} {:<38} {:<26} {:<42} {:<24} {}",
                    s.row.workspace_slug,
                    s.row.workspace_id,
                    s.health(),
                    s.expiry(),
                    s.updated_at.as_deref().unwrap_or("-"),
                    s.scope.as_deref().unwrap_or("-")
                );
            }
            for s in &all {
                if let Some(d) = s.detail() {
                    println!("{}: {} ({d})", s.row.workspace_slug, s.health());
                }
                if let Some(u) = &s.unreadable {
                    println!("{}: token unreadable: {u}", s.row.workspace_slug);
                }
                if s.row.status == REAUTHORIZATION_REQUIRED {
                    println!("{}: fix: {}", s.row.workspace_slug, crate::reinstall_fix(&s.row));
                }
            }
        }
    }
    Ok(())
}
