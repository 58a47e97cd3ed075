//! Admin routes that seed and read stores through the host's own backends
//! ([`Backends::open_with`], the `SecretStore` and `Registry` traits), added
//! to the Linear-compatible test server. The Python and Node suites start
//! this server, so none of them knows how a store lays out its data.
//!
//! - `POST /_admin/seed`: writes a stored secret (a stored token, its tokens
//!   minted at this server, or a raw value) and, for a workspace, its
//!   registry row. See [`SeedRequest`].
//! - `GET /_admin/stored?store=&secret_id=[&registry_table=]`: the stored
//!   secret, `{"value": <raw string>|null, "version": ...}`.
//! - `GET /_admin/registry?store=[&registry_table=]`: `{"rows": [...]}`.
//!
//! The store is named by the URI the resolvers take (`file:DIR`, or `aws`
//! with `registry_table`; the table must exist). Stored tokens are the test
//! data of [`linear_oauth_testserver::fixtures::stored_token`].

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use linear_oauth_host::{Backends, Error, RegistryRow};
use linear_oauth_testserver::fixtures::{iso8601, stored_token};
use linear_oauth_testserver::{AdminRequest, AdminRoutes, Handle, DEFAULT_CLIENT_ID};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The routes above, for [`linear_oauth_testserver::TestServer::start_with_routes`].
#[derive(Debug, Default)]
pub struct StoreRoutes;

impl AdminRoutes for StoreRoutes {
    fn handle(&self, server: &Handle, req: &AdminRequest) -> Option<(u16, Value)> {
        let answer = match (req.method.as_str(), req.path.as_str()) {
            ("POST", "seed") => seed(server, &req.body),
            ("GET", "stored") => stored(&req.query),
            ("GET", "registry") => registry(&req.query),
            _ => return None,
        };
        Some(answer.unwrap_or_else(|(status, description)| {
            (status, json!({"error": "invalid_request", "error_description": description}))
        }))
    }
}

type Answer = Result<(u16, Value), (u16, String)>;

/// The body of `POST /_admin/seed`.
///
/// A stored token is written unless `value` is given: the one the old tooling
/// wrote for the default test client, with a live pair minted at this server
/// (or, with `grant_type` `client_credentials`, the app's token and no
/// refresh token), expiring `expires_in_s` from now; then `fields` replace
/// its fields (`null` removes one). A registry row `workspace_id` ->
/// `secret_id` is written with `status` unless `status` is `null`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedRequest {
    pub store: String,
    pub registry_table: Option<String>,
    /// Names the workspace: `workspace_id` defaults to `org-<slug>`,
    /// `secret_id` to `bgagent-linear-oauth-<slug>`.
    pub slug: Option<String>,
    pub workspace_id: Option<String>,
    pub secret_id: Option<String>,
    /// The stored secret exactly as given, instead of a stored token (no row
    /// unless `slug` or `workspace_id` names one).
    pub value: Option<String>,
    /// Seconds until the stored token's `expires_at` (negative: expired).
    #[serde(default = "an_hour")]
    pub expires_in_s: f64,
    /// `client_credentials` mints the app's token instead of a pair.
    pub grant_type: Option<String>,
    /// A registered client; the default test client when absent.
    pub client_id: Option<String>,
    #[serde(default = "read_write")]
    pub scope: String,
    #[serde(default)]
    pub fields: Map<String, Value>,
    #[serde(default = "active")]
    pub status: Option<String>,
}

fn an_hour() -> f64 {
    3600.0
}

fn read_write() -> String {
    "read write".into()
}

fn active() -> Option<String> {
    Some("active".into())
}

fn bad(description: impl Into<String>) -> (u16, String) {
    (400, description.into())
}

fn store_error(e: Error) -> (u16, String) {
    let status = if matches!(e, Error::InvalidInput(_)) { 400 } else { 500 };
    (status, e.to_string())
}

fn open(store: &str, registry_table: Option<&str>) -> Result<Backends, (u16, String)> {
    if store == "memory:" {
        return Err(bad("memory: lives inside one process; seed a file: or aws store"));
    }
    Backends::open_with(store, registry_table).map_err(store_error)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn seed(server: &Handle, body: &[u8]) -> Answer {
    let req: SeedRequest = serde_json::from_slice(body).map_err(|e| bad(format!("Bad JSON: {e}")))?;
    let backends = open(&req.store, req.registry_table.as_deref())?;
    let workspace_id = req.workspace_id.clone().or_else(|| req.slug.as_ref().map(|s| format!("org-{s}")));
    let secret_id = req
        .secret_id
        .clone()
        .or_else(|| req.slug.as_ref().map(|s| format!("bgagent-linear-oauth-{s}")))
        .ok_or_else(|| bad("name the secret: slug or secret_id"))?;
    let value = match &req.value {
        Some(v) => v.clone(),
        None => stored_token_for(server, &req, workspace_id.as_deref().unwrap_or_default())?.to_string(),
    };
    backends.secrets.put(&secret_id, &value, None).map_err(store_error)?;
    if let (Some(workspace_id), Some(status)) = (&workspace_id, &req.status) {
        let row = RegistryRow {
            workspace_id: workspace_id.clone(),
            workspace_slug: req.slug.clone().unwrap_or_default(),
            secret_id: secret_id.clone(),
            status: status.clone(),
            ..Default::default()
        };
        backends.registry.put(&row).map_err(store_error)?;
    }
    let stored: Value = serde_json::from_str(&value).unwrap_or(Value::Null);
    let field = |k: &str| stored.get(k).cloned().unwrap_or(Value::Null);
    Ok((
        200,
        json!({
            "workspace_id": workspace_id,
            "slug": req.slug,
            "secret_id": secret_id,
            "access_token": field("access_token"),
            "refresh_token": field("refresh_token"),
            "expires_at": field("expires_at"),
        }),
    ))
}

/// The stored token a seed request describes, its tokens minted now.
fn stored_token_for(server: &Handle, req: &SeedRequest, workspace_id: &str) -> Result<Value, (u16, String)> {
    let slug = req.slug.as_deref().ok_or_else(|| bad("a stored token needs a slug (or give value)"))?;
    let client_id = req.client_id.as_deref().unwrap_or(DEFAULT_CLIENT_ID);
    let client_credentials = match req.grant_type.as_deref() {
        None | Some("authorization_code") => false,
        Some("client_credentials") => true,
        Some(other) => return Err(bad(format!("unknown grant_type {other:?}"))),
    };
    // Linear's lifetimes: the stored `expires_at` is what the test is about.
    let minted = if client_credentials {
        server.issue_client_credentials(client_id, &req.scope, 2_591_999)
    } else {
        server.issue_tokens(client_id, &req.scope, 86_399)
    }
    .map_err(bad)?;
    let expires_at = iso8601(now_ms() + (req.expires_in_s * 1000.0) as i64);
    let mut token = stored_token(&minted.access_token, &minted.refresh_token, &expires_at, workspace_id, slug);
    let obj = token.as_object_mut().expect("a stored token is an object");
    obj.insert("scope".into(), Value::String(minted.scope));
    if client_id != DEFAULT_CLIENT_ID {
        let secret = server.client_secret(client_id).ok_or_else(|| bad(format!("unknown client_id {client_id:?}")))?;
        obj.insert("client_id".into(), client_id.into());
        obj.insert("client_secret".into(), secret.into());
    }
    if client_credentials {
        obj.remove("refresh_token");
        obj.insert("grant_type".into(), "client_credentials".into());
    }
    for (k, v) in &req.fields {
        if v.is_null() {
            obj.remove(k);
        } else {
            obj.insert(k.clone(), v.clone());
        }
    }
    Ok(token)
}

fn param<'a>(query: &'a HashMap<String, String>, name: &str) -> Result<&'a str, (u16, String)> {
    query.get(name).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| bad(format!("Missing {name}")))
}

fn open_from(query: &HashMap<String, String>) -> Result<Backends, (u16, String)> {
    open(param(query, "store")?, query.get("registry_table").map(String::as_str))
}

fn stored(query: &HashMap<String, String>) -> Answer {
    let backends = open_from(query)?;
    let got = backends.secrets.get(param(query, "secret_id")?).map_err(store_error)?;
    Ok((200, json!({"value": got.as_ref().map(|v| &v.value), "version": got.as_ref().map(|v| &v.version)})))
}

fn registry(query: &HashMap<String, String>) -> Answer {
    let rows = open_from(query)?.registry.list().map_err(store_error)?;
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "workspace_id": r.workspace_id,
                "workspace_slug": r.workspace_slug,
                "secret_id": r.secret_id,
                "status": r.status,
            })
        })
        .collect();
    Ok((200, json!({ "rows": rows })))
}
