//! The `aws` store's secret half: stored tokens in Secrets Manager, each
//! write a compare-and-swap on the `AWSCURRENT` label.

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;

use super::{store_err, AwsBackend, PENDING_STAGE};
use crate::store::{PutOutcome, SecretDeletion, SecretStore, Versioned};
use crate::Error;

/// Secrets Manager's error for an operation the secret's state forbids,
/// above all a secret scheduled for deletion.
const INVALID_REQUEST: &str = "InvalidRequestException";

/// An operation the secret's state refuses: no lost race, so nothing to retry
/// or re-read; the operator has to act.
fn refused_by_state(id: &str, op: &str) -> Error {
    Error::Store(format!(
        "Secrets Manager refused {op} on secret {id} ({INVALID_REQUEST}): it is scheduled for deletion or otherwise \
         unusable; restore it (aws secretsmanager restore-secret --secret-id {id}) or install the workspace again"
    ))
}

/// What a refused move of `AWSCURRENT` means for a compare-and-swap: another
/// version is current (`InvalidParameterException`: a conflict, the caller
/// re-reads), or the secret cannot be written at all (`InvalidRequestException`,
/// e.g. scheduled for deletion: a store error). `None` for anything else.
fn stage_refusal(id: &str, code: Option<&str>) -> Option<Result<PutOutcome, Error>> {
    match code? {
        "InvalidParameterException" => Some(Ok(PutOutcome::Conflict)),
        INVALID_REQUEST => Some(Err(refused_by_state(id, "UpdateSecretVersionStage"))),
        _ => None,
    }
}

impl AwsBackend {
    /// The `AWSCURRENT` version and its value; `None` when there is no secret.
    async fn current(&self, id: &str) -> Result<Option<Versioned>, Error> {
        match self.secrets.get_secret_value().secret_id(id).version_stage("AWSCURRENT").send().await {
            Ok(out) => {
                let value =
                    out.secret_string().ok_or_else(|| Error::Store(format!("secret {id} has no string value")))?;
                Ok(Some(Versioned {
                    value: value.to_owned(),
                    version: out.version_id().unwrap_or_default().to_owned(),
                }))
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(None),
            // Scheduled for deletion (a purge): gone, as in the other stores.
            Err(e) if e.code() == Some(INVALID_REQUEST) => Ok(None),
            Err(e) => Err(store_err("get-secret-value", e)),
        }
    }

    /// Compare-and-swap in the fewest calls Secrets Manager allows (two; it
    /// has no conditional put): store the value as a new version labelled
    /// aside, then move `AWSCURRENT` to it only from `expected` (Secrets
    /// Manager refuses the move when `AWSCURRENT` sits on another version).
    ///
    /// The aside label stays on the version after the move, on purpose:
    /// removing it would be a third call per write, and it cannot pile up,
    /// since a label sits on one version at a time and the next `PutSecretValue`
    /// with it takes it off this one. Readers ask for `AWSCURRENT` (or for
    /// nothing, which Secrets Manager answers the same way), never for it.
    async fn swap(&self, id: &str, value: &str, expected: &str) -> Result<PutOutcome, Error> {
        let staged = self
            .secrets
            .put_secret_value()
            .secret_id(id)
            .secret_string(value)
            .version_stages(PENDING_STAGE)
            .send()
            .await
            .map_err(|e| match e.code() {
                Some(INVALID_REQUEST) => refused_by_state(id, "PutSecretValue"),
                _ => store_err("put-secret-value", e),
            })?;
        let new_version = staged.version_id().unwrap_or_default().to_owned();
        match self
            .secrets
            .update_secret_version_stage()
            .secret_id(id)
            .version_stage("AWSCURRENT")
            .move_to_version_id(&new_version)
            .remove_from_version_id(expected)
            .send()
            .await
        {
            Ok(_) => Ok(PutOutcome::Written(new_version)),
            Err(e) => match stage_refusal(id, e.code()) {
                Some(outcome) => outcome,
                None => Err(store_err("update-secret-version-stage", e)),
            },
        }
    }
}

impl SecretStore for AwsBackend {
    fn get(&self, id: &str) -> Result<Option<Versioned>, Error> {
        self.block(self.current(id))
    }

    fn put(&self, id: &str, value: &str, expected: Option<&str>) -> Result<PutOutcome, Error> {
        self.block(async {
            if let Some(expected) = expected {
                return self.swap(id, value, expected).await;
            }
            // Unconditional (an install): create, or swap over whatever is current.
            for _ in 0..5 {
                match self.current(id).await? {
                    None => match self.secrets.create_secret().name(id).secret_string(value).send().await {
                        Ok(out) => return Ok(PutOutcome::Written(out.version_id().unwrap_or_default().to_owned())),
                        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_exists_exception()) => continue,
                        Err(e) if e.code() == Some(INVALID_REQUEST) => {
                            return Err(refused_by_state(id, "CreateSecret"))
                        }
                        Err(e) => return Err(store_err("create-secret", e)),
                    },
                    Some(current) => {
                        if let PutOutcome::Written(v) = self.swap(id, value, &current.version).await? {
                            return Ok(PutOutcome::Written(v));
                        }
                    }
                }
            }
            Err(Error::Store(format!("secret {id} kept changing while being written")))
        })
    }

    /// Schedules the deletion with this backend's recovery window (see
    /// [`SecretDeletion`]), or deletes at once when configured so.
    fn delete(&self, id: &str) -> Result<bool, Error> {
        self.block(async {
            let request = self.secrets.delete_secret().secret_id(id);
            let request = match self.deletion {
                SecretDeletion::RecoveryWindow(days) => request.recovery_window_in_days(i64::from(days)),
                SecretDeletion::Immediate => request.force_delete_without_recovery(true),
            };
            match request.send().await {
                Ok(_) => Ok(true),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(false),
                // Already scheduled for deletion: nothing more to delete.
                Err(e) if e.code() == Some(INVALID_REQUEST) => Ok(false),
                Err(e) => Err(store_err("delete-secret", e)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `InvalidRequestException` (e.g. a secret scheduled for deletion) was a
    /// conflict, so the caller re-read and retried a write that cannot succeed.
    #[test]
    fn a_refused_stage_move_is_a_conflict_only_when_another_version_is_current() {
        assert!(matches!(stage_refusal("s", Some("InvalidParameterException")), Some(Ok(PutOutcome::Conflict))));
        let Some(Err(Error::Store(m))) = stage_refusal("s", Some("InvalidRequestException")) else { panic!() };
        assert!(m.contains("scheduled for deletion") && m.contains("restore-secret --secret-id s"), "{m}");
        assert!(stage_refusal("s", Some("ThrottlingException")).is_none());
        assert!(stage_refusal("s", None).is_none());
    }
}
