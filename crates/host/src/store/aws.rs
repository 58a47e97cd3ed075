//! The `aws` store: stored tokens in Secrets Manager, the workspace registry
//! and refresh leases in DynamoDB — the existing deployment's layout, read and
//! written unchanged.
//!
//! - Secret `bgagent-linear-oauth-<slug>` holds the token JSON; its version is
//!   the Secrets Manager `VersionId` labelled `AWSCURRENT`.
//! - Registry items are keyed by `linear_workspace_id` (S) with
//!   `workspace_slug`, `oauth_secret_arn`, `status`; other attributes survive.
//! - A refresh lease is an item keyed `lease#<key>` in the same table, taken
//!   with a conditional write (free, expired, or ours) so every process using
//!   the table agrees on one refresher. Releasing it keeps the item with the
//!   secret version the refresh wrote (`secret_version`), so the next taker
//!   learns from the take itself whether the secret changed since it read it.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use super::{Registry, RegistryRow, SecretDeletion};
use crate::Error;

mod leases;
mod secrets;

const KEY: &str = "linear_workspace_id";
const LEASE_PREFIX: &str = "lease#";
/// Lease item attribute: the secret version its last holder wrote.
const WRITTEN: &str = "secret_version";
/// The staging label a new version carries until it is made current.
const PENDING_STAGE: &str = "LINEAR_OAUTH_PENDING";

pub struct AwsBackend {
    /// Always `Some` until dropped (see `Drop`).
    rt: Option<tokio::runtime::Runtime>,
    secrets: aws_sdk_secretsmanager::Client,
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    requests: RequestCounter,
    deletion: SecretDeletion,
    /// `Limit` of each `Scan` request (None: DynamoDB's 1 MB page).
    scan_page_items: Option<i32>,
}

/// Counts the requests this backend sends, by operation (`X-Amz-Target`,
/// e.g. `secretsmanager.GetSecretValue`), every attempt included: each one
/// is a network round trip in AWS, and tests and the benchmark hold the
/// refresh path to a number of them.
#[derive(Debug, Clone, Default)]
struct RequestCounter(Arc<Mutex<BTreeMap<String, u64>>>);

impl aws_sdk_secretsmanager::config::Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "linear-oauth request counter"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_secretsmanager::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_secretsmanager::config::RuntimeComponents,
        _: &mut aws_sdk_secretsmanager::config::ConfigBag,
    ) -> Result<(), aws_sdk_secretsmanager::error::BoxError> {
        let op = context.request().headers().get("x-amz-target").unwrap_or("unknown").to_owned();
        *self.0.lock().unwrap_or_else(|e| e.into_inner()).entry(op).or_default() += 1;
        Ok(())
    }
}

impl std::fmt::Debug for AwsBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsBackend").field("table", &self.table).finish_non_exhaustive()
    }
}

/// `rt.block_on(f)`, on a plain thread when the caller is inside a Tokio
/// runtime already (an async program, a `#[tokio::test]`), where `block_on`
/// panics ("Cannot start a runtime from within a runtime").
fn block_on<F: Future + Send>(rt: &tokio::runtime::Runtime, f: F) -> F::Output
where
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|scope| {
            scope.spawn(|| rt.block_on(f)).join().unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    } else {
        rt.block_on(f)
    }
}

impl Drop for AwsBackend {
    /// Dropping a runtime inside another one panics; there it is shut down
    /// without waiting (nothing of ours runs on it between calls).
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                rt.shutdown_background();
            }
        }
    }
}

fn store_err(op: &str, e: impl std::error::Error) -> Error {
    Error::Store(format!("{op}: {}", DisplayErrorContext(e)))
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn attr(item: &HashMap<String, AttributeValue>, k: &str) -> String {
    item.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

fn opt_attr(item: &HashMap<String, AttributeValue>, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}

/// A registry item as a row (`workspace_id` from the key or the caller).
fn row_of(workspace_id: String, item: &HashMap<String, AttributeValue>) -> RegistryRow {
    RegistryRow {
        workspace_id,
        workspace_slug: attr(item, "workspace_slug"),
        secret_id: attr(item, "oauth_secret_arn"),
        status: attr(item, "status"),
        status_reason: opt_attr(item, "status_reason"),
        status_changed_at: opt_attr(item, "status_changed_at"),
    }
}

impl AwsBackend {
    /// Default credential chain and region; `AWS_ENDPOINT_URL` is honoured.
    pub fn open(registry_table: &str) -> Result<Self, Error> {
        if registry_table.trim().is_empty() {
            return Err(Error::InvalidInput(
                "the aws store needs a registry table (--registry-table or LINEAR_OAUTH_REGISTRY_TABLE)".into(),
            ));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("linear-oauth-aws")
            .enable_all()
            .build()
            .map_err(|e| Error::Store(format!("starting the AWS runtime: {e}")))?;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(10))
            .build();
        let conf = block_on(
            &rt,
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .http_client(http)
                .timeout_config(timeouts)
                .load(),
        );
        let requests = RequestCounter::default();
        let secrets = aws_sdk_secretsmanager::config::Builder::from(&conf).interceptor(requests.clone()).build();
        let ddb = aws_sdk_dynamodb::config::Builder::from(&conf).interceptor(requests.clone()).build();
        Ok(Self {
            secrets: aws_sdk_secretsmanager::Client::from_conf(secrets),
            ddb: aws_sdk_dynamodb::Client::from_conf(ddb),
            rt: Some(rt),
            table: registry_table.to_owned(),
            requests,
            deletion: SecretDeletion::default(),
            scan_page_items: None,
        })
    }

    /// How `delete` (a purge) removes a secret; a recovery window by default.
    pub fn with_deletion(mut self, deletion: SecretDeletion) -> Self {
        self.deletion = deletion;
        self
    }

    /// Items each `Scan` request evaluates (its `Limit`) instead of
    /// DynamoDB's 1 MB page: smaller pages for `scan`'s callers.
    pub fn with_scan_page_items(mut self, items: i32) -> Self {
        self.scan_page_items = Some(items);
        self
    }

    /// Requests sent so far, by operation (`X-Amz-Target`); every retry counts.
    pub fn requests(&self) -> BTreeMap<String, u64> {
        self.requests.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs an SDK future to completion from synchronous code.
    fn block<F: Future + Send>(&self, f: F) -> F::Output
    where
        F::Output: Send,
    {
        block_on(self.rt.as_ref().expect("the runtime lives until drop"), f)
    }

    /// Creates the registry table (on-demand billing) and waits until it is active.
    pub fn bootstrap(&self) -> Result<bool, Error> {
        self.block(async {
            let key = AttributeDefinition::builder()
                .attribute_name(KEY)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| store_err("create-table", e))?;
            let schema = KeySchemaElement::builder()
                .attribute_name(KEY)
                .key_type(KeyType::Hash)
                .build()
                .map_err(|e| store_err("create-table", e))?;
            let created = match self
                .ddb
                .create_table()
                .table_name(&self.table)
                .attribute_definitions(key)
                .key_schema(schema)
                .billing_mode(BillingMode::PayPerRequest)
                .send()
                .await
            {
                Ok(_) => true,
                Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => false,
                Err(e) => return Err(store_err("create-table", e)),
            };
            for _ in 0..120 {
                let d = self
                    .ddb
                    .describe_table()
                    .table_name(&self.table)
                    .send()
                    .await
                    .map_err(|e| store_err("describe-table", e))?;
                if d.table().and_then(|t| t.table_status()).map(|s| s.as_str() == "ACTIVE").unwrap_or(false) {
                    return Ok(created);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(Error::Store(format!("table {} did not become active", self.table)))
        })
    }
}

impl Registry for AwsBackend {
    fn get(&self, workspace_id: &str) -> Result<Option<RegistryRow>, Error> {
        if workspace_id.starts_with(LEASE_PREFIX) {
            return Ok(None);
        }
        self.block(async {
            let out = self
                .ddb
                .get_item()
                .table_name(&self.table)
                .key(KEY, s(workspace_id))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| store_err("get-item", e))?;
            Ok(out.item().map(|item| row_of(workspace_id.to_owned(), item)))
        })
    }

    fn put(&self, row: &RegistryRow) -> Result<(), Error> {
        self.block(async {
            // Other attributes of the item survive; the optional two are set
            // or removed (an active row written by setup clears them).
            let mut set = vec!["workspace_slug = :slug, oauth_secret_arn = :arn, #status = :status".to_owned()];
            let mut remove = Vec::new();
            let mut req = self
                .ddb
                .update_item()
                .table_name(&self.table)
                .key(KEY, s(&row.workspace_id))
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":slug", s(&row.workspace_slug))
                .expression_attribute_values(":arn", s(&row.secret_id))
                .expression_attribute_values(":status", s(&row.status));
            for (name, placeholder, value) in [
                ("status_reason", ":reason", &row.status_reason),
                ("status_changed_at", ":changed", &row.status_changed_at),
            ] {
                match value {
                    Some(v) => {
                        set.push(format!("{name} = {placeholder}"));
                        req = req.expression_attribute_values(placeholder, s(v));
                    }
                    None => remove.push(name),
                }
            }
            let mut expression = format!("SET {}", set.join(", "));
            if !remove.is_empty() {
                expression += &format!(" REMOVE {}", remove.join(", "));
            }
            req.update_expression(expression).send().await.map_err(|e| store_err("update-item", e))?;
            Ok(())
        })
    }

    fn list(&self) -> Result<Vec<RegistryRow>, Error> {
        let mut rows = Vec::new();
        self.scan(&mut |page| {
            rows.extend(page);
            Ok(())
        })?;
        rows.sort_by(|a, b| a.workspace_slug.cmp(&b.workspace_slug));
        Ok(rows)
    }

    /// One `Scan` page (up to 1 MB of items) at a time, following
    /// `LastEvaluatedKey`; lease items are filtered out by DynamoDB.
    fn scan(&self, page: &mut dyn FnMut(Vec<RegistryRow>) -> Result<(), Error>) -> Result<(), Error> {
        let mut start = None;
        loop {
            let out = self.block(
                self.ddb
                    .scan()
                    .table_name(&self.table)
                    .filter_expression("NOT begins_with(linear_workspace_id, :lease)")
                    .expression_attribute_values(":lease", s(LEASE_PREFIX))
                    .set_exclusive_start_key(start)
                    .set_limit(self.scan_page_items)
                    .send(),
            );
            let out = out.map_err(|e| store_err("scan", e))?;
            let mut rows: Vec<_> = out.items().iter().map(|item| row_of(attr(item, KEY), item)).collect();
            rows.sort_by(|a, b| a.workspace_slug.cmp(&b.workspace_slug));
            start = out.last_evaluated_key().cloned();
            if !rows.is_empty() {
                page(rows)?;
            }
            if start.is_none() {
                return Ok(());
            }
        }
    }
}
