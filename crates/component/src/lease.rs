//! The cross-process refresh lease: taken, or waited on until its holder's
//! refresh lands in the store.

use linear_oauth_core::StoredToken;

use crate::cache::cache_token;
use crate::call::Call;
use crate::exports::linear::oauth::resolver::ResolvedToken;
use crate::linear::oauth::log::Level;
use crate::linear::oauth::metrics::Event;
use crate::linear::oauth::types::Error;
use crate::rows::{row_confirmed, unverified_row, verify_row};
use crate::settings::ms_i64;
use crate::token::{read_secret, revoked_meanwhile, usable_without_refresh};

/// The first wait between lease polls (doubling to 250 ms): a call that
/// sleeps this long has started waiting, and counts one lease wait.
const FIRST_BACKOFF_MS: u64 = 20;

pub(crate) enum Acquired {
    /// We hold the lease until at least `lease_end_ms`; the token and
    /// version to refresh from.
    Ours { token: Box<StoredToken>, version: String, lease_end_ms: i64 },
    /// Another process refreshed while we waited.
    ByOther(ResolvedToken),
}

/// Takes the cross-process lease `key`, or waits (with backoff, until
/// `wait_until`) for its holder's refresh to land in the store. `seen` is
/// the token read at `seen_version` that made the caller refresh.
pub(crate) fn acquire(
    cx: &mut Call<'_>,
    key: &str,
    secret_id: &str,
    seen: &StoredToken,
    seen_version: &str,
    wait_until: i64,
) -> Result<Acquired, Error> {
    let started = cx.now();
    let (holder, ttl_ms) = (cx.s.holder_id.clone(), cx.s.lease_ttl_ms);
    // A lease taken by a request sent at `asked` lasts at least until this.
    let ours = |token: StoredToken, version: &str, asked: i64| Acquired::Ours {
        token: Box::new(token),
        version: version.to_owned(),
        lease_end_ms: asked.saturating_add(ms_i64(ttl_ms)),
    };
    let mut backoff = FIRST_BACKOFF_MS;
    // What we are about to do, for whoever finds this lease expired.
    let note = serde_json::json!({
        "refresh_token_sha256": linear_oauth_core::fingerprint(seen.lineage()),
        "started_ms": started,
    })
    .to_string();
    if let Some(row) = unverified_row(cx) {
        // A warm `resolve`: one request checks the remembered row, that the
        // lease is free and that nobody refreshed since our read.
        let asked = cx.now();
        let taken =
            cx.io.take_lease_if_unchanged(key, &holder, ttl_ms, &note, seen_version, &row).unwrap_or_else(|e| {
                // The long way still works (e.g. without IAM's
                // dynamodb:ConditionCheckItem), at two more requests.
                cx.log(
                    Level::Warn,
                    "taking the refresh lease with the row check failed; reading the row instead",
                    &[("secret_id", secret_id), ("error", &e)],
                );
                false
            });
        if taken {
            row_confirmed(cx, &row);
            return Ok(ours(seen.clone(), seen_version, asked));
        }
        verify_row(cx, &row)?;
    }
    loop {
        let asked = cx.now();
        let grant = cx
            .io
            .try_lease(key, &holder, ttl_ms, &note)
            .map_err(|e| Error::Store(format!("refresh lease failed: {e}")))?;
        if let Some(previous) = &grant.previous_note {
            cx.took_over = true;
            cx.count(Event::LeaseTakeover, &seen.workspace_id);
            // Its holder died mid-refresh. If Linear had already rotated,
            // refreshing with the stored token replays the original request:
            // inside Linear's grace window that recovers the pair, outside
            // it ends in reauthorization-required; the secret stays intact.
            cx.log(
                Level::Warn,
                "taking over a refresh lease whose holder died mid-refresh",
                &[("secret_id", secret_id), ("interrupted", previous)],
            );
        }
        // The last holder wrote the version we read (and none died
        // mid-refresh since): nobody refreshed after our read, so the
        // store holds what we saw. Saves a read per refresh.
        if grant.acquired && grant.previous_note.is_none() && grant.written_version.as_deref() == Some(seen_version) {
            return Ok(ours(seen.clone(), seen_version, asked));
        }
        let give_back = || {
            if grant.acquired {
                let _ = cx.io.release_lease(key, &holder, None);
            }
        };
        let read = read_secret(cx, secret_id).and_then(|(current, version)| {
            revoked_meanwhile(cx, secret_id, seen, &current)?;
            Ok((current, version))
        });
        let (current, version) = read.inspect_err(|_| give_back())?;
        if let Some(r) = usable_without_refresh(cx, secret_id, &current, seen) {
            give_back();
            cache_token(cx, secret_id, &current);
            return Ok(Acquired::ByOther(r));
        }
        if grant.acquired {
            return Ok(ours(current, &version, asked));
        }
        if cx.no_wait {
            cx.lease_busy = true;
            return Err(Error::Transport(format!("another process is refreshing {secret_id}; not waiting")));
        }
        let now = cx.now();
        if now >= wait_until {
            let waited = u64::try_from(now - started).unwrap_or(0);
            return Err(Error::Transport(format!(
                "another process has been refreshing {secret_id} for {waited} ms; try again"
            )));
        }
        if backoff == FIRST_BACKOFF_MS {
            cx.count(Event::LeaseWait, &seen.workspace_id);
        }
        cx.io.sleep_ms(backoff.min(u64::try_from(wait_until - now).unwrap_or(0)));
        backoff = (backoff * 2).min(250);
    }
}
