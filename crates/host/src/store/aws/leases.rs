//! Refresh leases in the registry table: an item keyed `lease#<key>`, taken
//! with a conditional write (free, expired, or ours), released keeping the
//! secret version the refresh wrote, and taken in one transaction with a
//! check of the registry row when nothing changed since (see the module
//! above for the layout).

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, ReturnValue, TransactWriteItem, Update};

use super::{attr, s, store_err, AwsBackend, KEY, LEASE_PREFIX, WRITTEN};
use crate::store::{now_ms, LeaseGrant, Leases, RegistryRow, LEASE_CLOCK_SKEW_MS};
use crate::Error;

impl Leases for AwsBackend {
    fn try_lease(&self, key: &str, holder: &str, ttl: Duration, note: &str) -> Result<LeaseGrant, Error> {
        let now = now_ms();
        let expires = now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        // A lease ending further ahead than its ttl plus any plausible clock
        // skew between machines is corrupt (a clock jump, a bad write): taken
        // over, instead of blocking every refresh until that far instant.
        let far = expires.saturating_add(LEASE_CLOCK_SKEW_MS);
        self.block(async {
            let result = self
                .ddb
                .update_item()
                .table_name(&self.table)
                .key(KEY, s(format!("{LEASE_PREFIX}{key}")))
                .update_expression("SET lease_holder = :holder, lease_expires_ms = :expires, lease_note = :note")
                .condition_expression(
                    "attribute_not_exists(lease_holder) OR lease_expires_ms <= :now OR lease_expires_ms > :far OR lease_holder = :holder",
                )
                .expression_attribute_values(":holder", s(holder))
                .expression_attribute_values(":expires", AttributeValue::N(expires.to_string()))
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .expression_attribute_values(":far", AttributeValue::N(far.to_string()))
                .expression_attribute_values(":note", s(note))
                .return_values(ReturnValue::AllOld)
                .send()
                .await;
            match result {
                Ok(out) => {
                    let old = out.attributes();
                    let previous_note = old
                        .filter(|o| attr(o, "lease_holder") != holder)
                        .map(|o| attr(o, "lease_note"))
                        .filter(|n| !n.is_empty());
                    let written_version = old.map(|o| attr(o, WRITTEN)).filter(|v| !v.is_empty());
                    Ok(LeaseGrant { acquired: true, previous_note, written_version })
                }
                Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                    Ok(LeaseGrant { acquired: false, previous_note: None, written_version: None })
                }
                Err(e) => Err(store_err("update-item (lease)", e)),
            }
        })
    }

    /// One `TransactWriteItems`: the lease update (free, and its last holder
    /// wrote `seen_version`) and a `ConditionCheck` that the registry item is
    /// still active and points at the same secret. Both hold or nothing is
    /// written. Transactions return no old image, so the conditions say all
    /// the taker needs: nobody died holding the lease and nobody refreshed.
    fn take_lease_if_unchanged(
        &self,
        key: &str,
        holder: &str,
        ttl: Duration,
        note: &str,
        seen_version: &str,
        row: &RegistryRow,
    ) -> Result<bool, Error> {
        let expires = now_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        let lease = Update::builder()
            .table_name(&self.table)
            .key(KEY, s(format!("{LEASE_PREFIX}{key}")))
            .update_expression("SET lease_holder = :holder, lease_expires_ms = :expires, lease_note = :note")
            .condition_expression(format!("attribute_not_exists(lease_holder) AND {WRITTEN} = :seen"))
            .expression_attribute_values(":holder", s(holder))
            .expression_attribute_values(":expires", AttributeValue::N(expires.to_string()))
            .expression_attribute_values(":note", s(note))
            .expression_attribute_values(":seen", s(seen_version))
            .build()
            .map_err(|e| store_err("transact-write-items (lease)", e))?;
        let registry = ConditionCheck::builder()
            .table_name(&self.table)
            .key(KEY, s(&row.workspace_id))
            .condition_expression("#status = :active AND oauth_secret_arn = :secret")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":secret", s(&row.secret_id))
            .build()
            .map_err(|e| store_err("transact-write-items (registry)", e))?;
        self.block(async {
            let result = self
                .ddb
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(lease).build())
                .transact_items(TransactWriteItem::builder().condition_check(registry).build())
                .send()
                .await;
            match result {
                Ok(_) => Ok(true),
                // A condition failed, or another transaction touched the items: the long way.
                Err(e)
                    if e.as_service_error().is_some_and(|e| {
                        e.is_transaction_canceled_exception() || e.is_transaction_in_progress_exception()
                    }) =>
                {
                    Ok(false)
                }
                Err(e) => Err(store_err("transact-write-items (lease)", e)),
            }
        })
    }

    fn release_lease(&self, key: &str, holder: &str) -> Result<(), Error> {
        self.finish_lease(key, holder, None)
    }

    /// One conditional `UpdateItem` that frees the lease and (given a
    /// version) records it; the item stays, so the next taker learns the
    /// version from the `UpdateItem` that takes the lease.
    fn finish_lease(&self, key: &str, holder: &str, written_version: Option<&str>) -> Result<(), Error> {
        self.block(async {
            let mut update = self
                .ddb
                .update_item()
                .table_name(&self.table)
                .key(KEY, s(format!("{LEASE_PREFIX}{key}")))
                .condition_expression("lease_holder = :holder")
                .expression_attribute_values(":holder", s(holder));
            update = match written_version {
                Some(v) => update
                    .update_expression(format!("REMOVE lease_holder, lease_expires_ms, lease_note SET {WRITTEN} = :v"))
                    .expression_attribute_values(":v", s(v)),
                None => update.update_expression("REMOVE lease_holder, lease_expires_ms, lease_note"),
            };
            match update.send().await {
                Ok(_) => Ok(()),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
                Err(e) => Err(store_err("update-item (lease release)", e)),
            }
        })
    }
}
