//! The resolver: registry -> status -> stored token -> refresh when expiring,
//! with caches, in-process single-flight, a cross-process lease and
//! invalid_grant recovery. Every decision lives here; hosts only store things.

use std::cell::RefCell;
use std::time::Duration;

use linear_oauth_core::{
    after_invalid_grant, client_credentials_disabled, client_credentials_form, freshness, is_transient,
    parse_retry_after, parse_token_response, refresh_form, request_slack_ms, retry_delay, write_retry_fits, Attempt,
    EndpointFailure, Freshness, Grant, Recovery, RegistryStatus, Serve, StoredToken,
};

use crate::exports::linear::oauth::resolver::{ResolvedToken, Settings};
use crate::linear::oauth::coordination as coord;
use crate::linear::oauth::log::Level;
use crate::linear::oauth::registry::{self, Row};
use crate::linear::oauth::secret_store::{self, PutOutcome};
use crate::linear::oauth::types::{Error, Lifetime, Target};
use crate::{endpoint_error, http, log_event, now_ms};

thread_local! {
    static SETTINGS: RefCell<Option<Settings>> = const { RefCell::new(None) };
    /// The version the current refresh's write-back stored, for the lease
    /// release to hand on (see `Lease::acquire`).
    static WRITTEN: RefCell<Option<String>> = const { RefCell::new(None) };
    /// When the host's current call began: retries stay inside its deadline.
    static CALL_STARTED_MS: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
    /// The registry row a `resolve` works from, and whether this call has
    /// checked it yet (see `resolve`).
    static ROW_CHECK: RefCell<Option<RowCheck>> = const { RefCell::new(None) };
}

/// Marks the start of a host call (every export that may refresh).
pub fn call_started() {
    CALL_STARTED_MS.with(|c| c.set(now_ms()));
    ROW_CHECK.with(|c| c.borrow_mut().take());
}

/// Where a `resolve` from a remembered registry row stands.
enum RowCheck {
    /// Read as active by an earlier call; not checked in this one yet.
    Unverified(Row),
    /// Checked in this call: read, or confirmed by the lease take.
    Verified,
    /// Read in this call, active, and naming another secret: resolve that one.
    Moved(Row),
}

pub fn init(s: Settings) -> Result<(), Error> {
    let base = url::Url::parse(&s.api_base).map_err(|e| Error::InvalidInput(format!("api base URL: {e}")))?;
    if base.cannot_be_a_base() {
        return Err(Error::InvalidInput("api base URL cannot be a base".into()));
    }
    url::Url::parse(&s.authorize_url).map_err(|e| Error::InvalidInput(format!("authorize URL: {e}")))?;
    // Installs name secrets `<prefix><slug>` (slugs up to 50 characters); a
    // prefix that makes such a name too long would install unresolvable ids.
    if encoded_len(&s.secret_prefix) + 50 > MAX_ID_ENCODED {
        return Err(Error::InvalidInput(format!(
            "secret prefix is too long: {} bytes once escaped, at most {} (ids are at most {MAX_ID_ENCODED}, slugs up to 50)",
            encoded_len(&s.secret_prefix),
            MAX_ID_ENCODED - 50
        )));
    }
    SETTINGS.with(|c| *c.borrow_mut() = Some(s));
    Ok(())
}

pub(crate) fn settings() -> Settings {
    SETTINGS.with(|c| c.borrow().clone()).expect("host calls init before anything else")
}

/// `<api-base>/<path>` without doubling slashes.
pub(crate) fn endpoint(s: &Settings, path: &str) -> String {
    format!("{}/{}", s.api_base.trim_end_matches('/'), path)
}

fn row_key(workspace_id: &str) -> String {
    format!("row:{workspace_id}")
}
/// The last row read as active, kept past `cache-ttl` as a host hint (see
/// `resolve`): in memory in a long-lived host, in a file for the CLI's next
/// process. Ids, slug and status only; never anything secret.
fn known_key(workspace_id: &str) -> String {
    format!("known:{workspace_id}")
}

fn forget_known(workspace_id: &str) {
    coord::remember(&known_key(workspace_id), None);
}
fn token_key(secret_id: &str) -> String {
    format!("tok:{secret_id}")
}
fn workspace_secret_key(workspace_id: &str) -> String {
    format!("ws:{workspace_id}")
}
/// A refreshed token the store would not take: served from memory and
/// written again on later calls, so a rotated refresh token is never lost.
fn unsaved_key(secret_id: &str) -> String {
    format!("unsaved:{secret_id}")
}
/// A transient refresh failure, shared by the callers that follow it.
fn failure_key(secret_id: &str) -> String {
    format!("fail:{secret_id}")
}

/// Longest id accepted, counted as the file store spells it in a file name:
/// each byte outside `[A-Za-z0-9_-]` takes three (percent-encoding). File
/// names are at most 255 bytes and the file store adds at most 21 around an id
/// (`lease-refresh%3A` ... `.lock`), so 200 leaves room; Secrets Manager
/// (names up to 512 characters, ARNs up to 2048) and DynamoDB keys (up to 2048
/// bytes) take every id that passes. Refusing here makes an overlong id
/// invalid input in every store, instead of a store error in one of them.
pub(crate) const MAX_ID_ENCODED: usize = 200;

fn encoded_len(id: &str) -> usize {
    id.bytes().map(|b| if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' { 1 } else { 3 }).sum()
}

pub(crate) fn check_id(what: &str, id: &str) -> Result<(), Error> {
    if id.trim().is_empty() || id.chars().any(char::is_control) {
        return Err(Error::InvalidInput(format!("{what} must be a non-empty printable string")));
    }
    if encoded_len(id) > MAX_ID_ENCODED {
        return Err(Error::InvalidInput(format!(
            "{what} is too long: {} bytes, {} once escaped for a file name (at most {MAX_ID_ENCODED}; \
             each character other than letters, digits, '_' and '-' counts three)",
            id.len(),
            encoded_len(id)
        )));
    }
    Ok(())
}

/// Registry row, status, stored token, refresh if expiring. A warm process
/// whose cached row lapsed (rows are cached for `cache-ttl`, refreshes come
/// hours apart), or a new CLI process whose host kept the hint, starts from
/// the row it remembers instead of reading it: a
/// refresh checks the row in the same request that takes the lease
/// (`take-lease-if-unchanged`), and every other outcome reads it before the
/// caller gets anything, so no answer rests on a row older than the cache
/// ttl. The row's status decides first: a revoked workspace's error is
/// `revoked`, whatever reading or refreshing its secret ended in.
pub fn resolve(workspace_id: &str) -> Result<ResolvedToken, Error> {
    check_id("workspace id", workspace_id)?;
    let remembered = match coord::cache_get(&row_key(workspace_id)) {
        Some(_) => None,
        // Only a corrupt hint names another workspace or a status other
        // than active (only active rows are remembered): no hint then.
        None => coord::recall(&known_key(workspace_id)).and_then(|v| row_from_json(&v)).filter(|row| {
            row.workspace_id == workspace_id && RegistryStatus::parse(&row.status) == RegistryStatus::Active
        }),
    };
    let of_row = |row: &Row, force| resolve_secret_with(&settings(), &row.secret_id, force, Some(workspace_id));
    let Some(row) = remembered else {
        let row = active_row(workspace_id)?;
        return of_row(&row, false);
    };
    ROW_CHECK.with(|c| *c.borrow_mut() = Some(RowCheck::Unverified(row.clone())));
    let result = of_row(&row, false);
    match ROW_CHECK.with(|c| c.borrow_mut().take()) {
        Some(RowCheck::Verified) => result,
        Some(RowCheck::Moved(current)) => of_row(&current, false),
        Some(RowCheck::Unverified(_)) | None => {
            // Read now, unless another call of this process just did (or
            // confirmed it taking the lease) and cached it.
            let current = active_row(workspace_id)?;
            if current.secret_id == row.secret_id {
                result
            } else {
                of_row(&current, false)
            }
        }
    }
}

/// The remembered row of this call's `resolve`, if it has not been checked yet.
fn unverified_row() -> Option<Row> {
    ROW_CHECK.with(|c| match &*c.borrow() {
        Some(RowCheck::Unverified(row)) => Some(row.clone()),
        _ => None,
    })
}

/// Reads the remembered row before a refresh whose lease take could not
/// check it: a revoked or removed workspace ends here, before any token
/// request; a row naming another secret ends this attempt (`resolve` starts
/// over with that secret).
fn verify_row(row: &Row) -> Result<(), Error> {
    let current = read_row(&row.workspace_id).and_then(|r| checked_status(&row.workspace_id, r));
    let (state, result) = match current {
        Ok(current) if current.secret_id != row.secret_id => (
            RowCheck::Moved(current),
            Err(Error::Store(format!("workspace {} now names another secret", row.workspace_id))),
        ),
        Ok(_) => (RowCheck::Verified, Ok(())),
        Err(e) => (RowCheck::Verified, Err(e)),
    };
    ROW_CHECK.with(|c| *c.borrow_mut() = Some(state));
    result
}

/// The lease take confirmed the remembered row: it counts as read now.
fn row_confirmed(s: &Settings, row: &Row) {
    coord::cache_set(&row_key(&row.workspace_id), &row_to_json(row), s.cache_ttl_ms);
    ROW_CHECK.with(|c| *c.borrow_mut() = Some(RowCheck::Verified));
}

/// An operator's refresh: a workspace must be registered and active.
pub fn force_refresh(target: &Target) -> Result<ResolvedToken, Error> {
    match target {
        Target::Workspace(workspace_id) => {
            check_id("workspace id", workspace_id)?;
            let row = active_row(workspace_id)?;
            resolve_secret_with(&settings(), &row.secret_id, true, Some(workspace_id))
        }
        Target::Secret(secret_id) => resolve_secret(secret_id, true),
    }
}

/// A caller's Linear API call with `access_token` got 401. Never a token
/// request unless the stored token is the rejected one.
pub fn report_unauthorized(workspace_id: &str, access_token: &str) -> Result<ResolvedToken, Error> {
    check_id("workspace id", workspace_id)?;
    invalidate(workspace_id);
    let row = active_row(workspace_id)?;
    check_id("secret id", &row.secret_id)?;
    let (current, version) = read_secret(&row.secret_id)?;
    check_usable(&row.secret_id, &current, Some(workspace_id))?;
    let fields = [("workspace_id", workspace_id), ("secret_id", row.secret_id.as_str())];
    if current.access_token.secret() != access_token {
        log_event(Level::Info, "a rejected token is no longer the stored one; serving the stored token", &fields);
        return resolve_secret_with(&settings(), &row.secret_id, false, Some(workspace_id));
    }
    log_event(Level::Warn, "Linear rejected the stored access token; refreshing", &fields);
    refresh_single_flight(&settings(), &row.secret_id, &current, &version, true)
}

/// Refresh-ahead's background call: a refresh when the token is inside
/// `refresh-ahead + threshold` of expiry, with every usual rule.
pub fn refresh_ahead(secret_id: &str) -> Result<ResolvedToken, Error> {
    let s = settings();
    let ahead = Settings {
        refresh_threshold_ms: s.refresh_threshold_ms.saturating_add(s.refresh_ahead_ms),
        refresh_ahead_ms: 0,
        ..s
    };
    resolve_secret_with(&ahead, secret_id, false, None)
}

/// The registry row of an active workspace (cached), or why there is none.
fn active_row(workspace_id: &str) -> Result<Row, Error> {
    let row = match coord::cache_get(&row_key(workspace_id)).and_then(|v| row_from_json(&v)) {
        Some(row) => row,
        None => read_row(workspace_id)?,
    };
    checked_status(workspace_id, row)
}

/// Reads the registry row and caches it for `cache-ttl`; an active one is
/// also remembered until `invalidate`, for `resolve` of a warm process.
fn read_row(workspace_id: &str) -> Result<Row, Error> {
    let s = settings();
    let row = registry::get(workspace_id).map_err(|e| Error::Store(format!("registry read failed: {e}")))?.ok_or_else(
        || {
            forget_known(workspace_id);
            Error::NotRegistered(format!("workspace {workspace_id} is not registered"))
        },
    )?;
    coord::cache_set(&row_key(workspace_id), &row_to_json(&row), s.cache_ttl_ms);
    if RegistryStatus::parse(&row.status) == RegistryStatus::Active {
        coord::remember(&known_key(workspace_id), Some(&row_to_json(&row)));
    } else {
        forget_known(workspace_id);
    }
    Ok(row)
}

/// The row if its workspace is active, else why it does not resolve.
fn checked_status(workspace_id: &str, row: Row) -> Result<Row, Error> {
    match RegistryStatus::parse(&row.status) {
        RegistryStatus::Active => Ok(row),
        RegistryStatus::Revoked => {
            Err(Error::Revoked(format!("workspace {workspace_id} is not active (status {:?})", row.status)))
        }
        RegistryStatus::Unknown(status) => {
            log_event(
                Level::Warn,
                "unknown registry status; treating the workspace as revoked",
                &[("workspace_id", workspace_id), ("status", &status)],
            );
            Err(Error::Revoked(format!("workspace {workspace_id} has unknown status {status:?}")))
        }
    }
}

pub fn resolve_secret(secret_id: &str, force: bool) -> Result<ResolvedToken, Error> {
    resolve_secret_with(&settings(), secret_id, force, None)
}

/// Revoke's probing refresh: a forced refresh that a revoked mark does not
/// stop (revoke marks the secret, and may run again over a marked one).
pub(crate) fn probe_refresh(secret_id: &str) -> Result<ResolvedToken, Error> {
    let s = settings();
    check_id("secret id", secret_id)?;
    let (tok, version) = read_secret(secret_id)?;
    refresh_single_flight(&s, secret_id, &tok, &version, true)
}

/// Whether a stored token may be served or refreshed at all: not when its
/// workspace was revoked (the mark `revoke` leaves on a kept secret, honoured
/// on every path, by secret id too), and not when the registry row of
/// `workspace` led to a token of another workspace (a url key that changed
/// hands): fail closed rather than hand one workspace's token to another.
fn check_usable(secret_id: &str, tok: &StoredToken, workspace: Option<&str>) -> Result<(), Error> {
    if let Some(at) = tok.revoked_at() {
        return Err(Error::Revoked(format!(
            "secret {secret_id} (workspace {}) was revoked at {at}; run the install again to use it",
            tok.workspace_id
        )));
    }
    match workspace {
        Some(w) if w != tok.workspace_id => {
            log_event(
                Level::Error,
                "the registry row of a workspace names a secret that holds another workspace's token; refusing it",
                &[("workspace_id", w), ("secret_id", secret_id), ("stored_workspace_id", &tok.workspace_id)],
            );
            Err(Error::InvalidStoredToken(vec![format!(
                "workspace_id (the secret holds workspace {}, but workspace {w}'s registry row names it)",
                tok.workspace_id
            )]))
        }
        _ => Ok(()),
    }
}

fn resolve_secret_with(
    s: &Settings,
    secret_id: &str,
    force: bool,
    workspace: Option<&str>,
) -> Result<ResolvedToken, Error> {
    check_id("secret id", secret_id)?;
    retry_unsaved(secret_id);
    if !force {
        for key in [unsaved_key(secret_id), token_key(secret_id)] {
            if let Some(tok) = coord::cache_get(&key).and_then(|v| StoredToken::parse(&v).ok()) {
                if let Freshness::Fresh { refresh_due_ms } =
                    freshness(&tok.expires_at, now_ms(), s.refresh_threshold_ms)
                {
                    check_usable(secret_id, &tok, workspace)?;
                    return Ok(resolved(s, secret_id, &tok, refresh_due_ms));
                }
            }
        }
    }
    let (tok, version) = read_secret(secret_id)?;
    check_usable(secret_id, &tok, workspace)?;
    cache_token(s, secret_id, &tok);
    match freshness(&tok.expires_at, now_ms(), s.refresh_threshold_ms) {
        Freshness::Fresh { refresh_due_ms } if !force => Ok(resolved(s, secret_id, &tok, refresh_due_ms)),
        f => {
            if f == Freshness::Malformed {
                log_event(
                    Level::Warn,
                    "stored expires_at is malformed; refreshing",
                    &[("workspace_id", &tok.workspace_id), ("secret_id", secret_id)],
                );
            }
            refresh_single_flight(s, secret_id, &tok, &version, force)
        }
    }
}

pub fn invalidate(workspace_id: &str) {
    if let Some(row) = coord::cache_get(&row_key(workspace_id)).and_then(|v| row_from_json(&v)) {
        coord::cache_remove(&token_key(&row.secret_id));
    }
    // Tokens resolved by secret id alone are found through the stored token's workspace.
    if let Some(secret_id) = coord::cache_get(&workspace_secret_key(workspace_id)) {
        coord::cache_remove(&token_key(&secret_id));
    }
    coord::cache_remove(&row_key(workspace_id));
    forget_known(workspace_id);
}

/// Caches a token, and which secret holds the workspace's token.
fn cache_token(s: &Settings, secret_id: &str, tok: &StoredToken) {
    coord::cache_set(&token_key(secret_id), &tok.to_json(), s.cache_ttl_ms);
    coord::cache_set(&workspace_secret_key(&tok.workspace_id), secret_id, s.cache_ttl_ms);
}

fn invalidate_secret(secret_id: &str, workspace_id: &str) {
    coord::cache_remove(&token_key(secret_id));
    coord::cache_remove(&row_key(workspace_id));
    forget_known(workspace_id);
}

/// Reads the stored token, bypassing every cache.
fn read_secret(secret_id: &str) -> Result<(StoredToken, String), Error> {
    let v = secret_store::get(secret_id)
        .map_err(|e| Error::Store(format!("secret read failed: {e}")))?
        .ok_or_else(|| Error::SecretMissing(format!("secret {secret_id} does not exist")))?;
    let tok = StoredToken::parse(&v.value).map_err(|e| {
        log_event(
            Level::Error,
            "stored token is invalid",
            &[("secret_id", secret_id), ("fields", &e.problems().join(","))],
        );
        Error::InvalidStoredToken(e.problems())
    })?;
    Ok((tok, v.version))
}

fn resolved(s: &Settings, secret_id: &str, tok: &StoredToken, refresh_due_ms: i64) -> ResolvedToken {
    ResolvedToken {
        access_token: tok.access_token.secret().to_owned(),
        scope: tok.scope.clone(),
        workspace_slug: tok.workspace_slug.clone(),
        workspace_id: tok.workspace_id.clone(),
        secret_id: secret_id.to_owned(),
        expires_at: tok.expires_at.clone(),
        serve_until_ms: linear_oauth_core::serve_until(now_ms(), s.cache_ttl_ms, refresh_due_ms),
        refresh_ahead_at_ms: linear_oauth_core::refresh_ahead_at(
            refresh_due_ms,
            linear_oauth_core::parse_instant(&tok.updated_at),
            s.refresh_ahead_ms,
            now_ms(),
        )
        .map_or(u64::MAX, |at| u64::try_from(at).unwrap_or(0)),
    }
}

/// A result the host must not refresh ahead on its own.
fn never_ahead(r: ResolvedToken) -> ResolvedToken {
    ResolvedToken { refresh_ahead_at_ms: u64::MAX, ..r }
}

/// A usable result for `tok`, if it is fresh now.
fn if_fresh(s: &Settings, secret_id: &str, tok: &StoredToken) -> Option<ResolvedToken> {
    match freshness(&tok.expires_at, now_ms(), s.refresh_threshold_ms) {
        Freshness::Fresh { refresh_due_ms } => Some(resolved(s, secret_id, tok, refresh_due_ms)),
        _ => None,
    }
}

/// Core's decision as the host's result.
fn serve(s: &Settings, secret_id: &str, tok: &StoredToken, d: Serve) -> ResolvedToken {
    match d {
        Serve::Fresh { refresh_due_ms } => resolved(s, secret_id, tok, refresh_due_ms),
        // Due now: the host serves it to this caller only, never from its fast
        // path, and does not refresh it ahead either (that is the next caller's).
        Serve::DueButValid => never_ahead(resolved(s, secret_id, tok, now_ms())),
    }
}

/// What a would-be refresher may serve instead of refreshing (see core's
/// `usable_without_refresh`).
fn usable_without_refresh(
    s: &Settings,
    secret_id: &str,
    current: &StoredToken,
    seen: &StoredToken,
    force: bool,
) -> Option<ResolvedToken> {
    linear_oauth_core::usable_without_refresh(current, seen, force, now_ms(), s.refresh_threshold_ms)
        .map(|d| serve(s, secret_id, current, d))
}

/// Releases the in-process lock even on an early return.
struct LockGuard(String);
impl Drop for LockGuard {
    fn drop(&mut self) {
        coord::unlock(&self.0);
    }
}

/// At most one refresh per secret per process; then at most one per store.
/// `seen` is the token read at `seen_version` that made the caller refresh.
/// The renewal entry point for both grants (`post_refresh_once` sends a
/// refresh or a new client-credentials fetch); `force` renews even a fresh
/// token unless somebody else renewed since `seen`.
fn refresh_single_flight(
    s: &Settings,
    secret_id: &str,
    seen: &StoredToken,
    seen_version: &str,
    force: bool,
) -> Result<ResolvedToken, Error> {
    let key = format!("refresh:{secret_id}");
    if let Some(r) = remembered_failure(s, secret_id, seen, force) {
        return r;
    }
    // One wait for this process's lock and the lease together, ending in
    // time for a refresh of our own to fit the call.
    let wait_until = linear_oauth_core::wait_deadline(now_ms(), s.lease_wait_ms, call_end(s), s.http_timeout_ms);
    if !coord::lock(&key, u64::try_from(wait_until.saturating_sub(now_ms())).unwrap_or(0)) {
        return Err(Error::Transport(format!("timed out waiting for this process's refresh of {secret_id}")));
    }
    let _guard = LockGuard(key.clone());
    // Whoever held the lock before us may have refreshed already: its
    // write-back is in this process's cache, no store read needed. (Newer
    // than `seen` only: a slower reader may have cached an older token.)
    if let Some(cached) = coord::cache_get(&token_key(secret_id)).and_then(|v| StoredToken::parse(&v).ok()) {
        let newer =
            linear_oauth_core::parse_instant(&cached.updated_at) > linear_oauth_core::parse_instant(&seen.updated_at);
        if newer {
            if let Some(r) = usable_without_refresh(s, secret_id, &cached, seen, force) {
                return Ok(r);
            }
        }
    }
    // The caller before us failed for a transient reason a moment ago.
    if let Some(r) = remembered_failure(s, secret_id, seen, force) {
        return r;
    }
    let lease = Lease::acquire(s, &key, secret_id, seen, seen_version, force, wait_until)?;
    WRITTEN.with(|w| w.borrow_mut().take());
    let result = match lease {
        Acquired::ByOther(r) => return Ok(r),
        Acquired::Ours { token, version, lease_end_ms } => reserve_space(secret_id, &token)
            .and_then(|()| refresh_now(s, secret_id, *token, version, force, lease_end_ms)),
    };
    let written = WRITTEN.with(|w| w.borrow_mut().take());
    if let Err(e) = registry::release_lease(&key, &s.holder_id, written.as_deref()) {
        log_event(
            Level::Warn,
            "releasing the refresh lease failed; it will expire",
            &[("secret_id", secret_id), ("error", &e)],
        );
    }
    result
}

/// Never spend what cannot be saved: before the refresh token is used, the
/// store must be able to take its successor (twice today's size, plus slack).
fn reserve_space(secret_id: &str, current: &StoredToken) -> Result<(), Error> {
    let bytes = u64::try_from(current.to_json().len()).unwrap_or(u64::MAX).saturating_mul(2).saturating_add(4096);
    secret_store::reserve(secret_id, bytes).map_err(|e| {
        log_event(
            Level::Error,
            "the store cannot take a rotated token; not refreshing",
            &[("workspace_id", &current.workspace_id), ("secret_id", secret_id), ("error", &e)],
        );
        Error::Store(format!("not refreshing {secret_id}: {e}"))
    })
}

enum Acquired {
    /// We hold the lease until at least `lease_end_ms`; the token and
    /// version to refresh from.
    Ours { token: Box<StoredToken>, version: String, lease_end_ms: i64 },
    /// Another process refreshed while we waited.
    ByOther(ResolvedToken),
}

struct Lease;

impl Lease {
    /// Takes the cross-process lease, or waits (with backoff, until
    /// `wait_until`) for its holder's refresh to land in the store.
    fn acquire(
        s: &Settings,
        key: &str,
        secret_id: &str,
        seen: &StoredToken,
        seen_version: &str,
        force: bool,
        wait_until: i64,
    ) -> Result<Acquired, Error> {
        let started = now_ms();
        // A lease taken by a request sent at `asked` lasts at least until this.
        let lease_end = |asked: i64| asked.saturating_add(ms_i64(s.lease_ttl_ms));
        let mut backoff = 20u64;
        // What we are about to do, for whoever finds this lease expired.
        let note = serde_json::json!({
            "refresh_token_sha256": linear_oauth_core::fingerprint(seen.lineage()),
            "started_ms": started,
        })
        .to_string();
        if let Some(row) = unverified_row() {
            // A warm `resolve`: one request checks the remembered row, that the
            // lease is free and that nobody refreshed since our read.
            let asked = now_ms();
            let taken = registry::take_lease_if_unchanged(key, &s.holder_id, s.lease_ttl_ms, &note, seen_version, &row)
                .unwrap_or_else(|e| {
                    // The long way still works (e.g. without IAM's
                    // dynamodb:ConditionCheckItem), at two more requests.
                    log_event(
                        Level::Warn,
                        "taking the refresh lease with the row check failed; reading the row instead",
                        &[("secret_id", secret_id), ("error", &e)],
                    );
                    false
                });
            if taken {
                row_confirmed(s, &row);
                return Ok(Acquired::Ours {
                    token: Box::new(seen.clone()),
                    version: seen_version.to_owned(),
                    lease_end_ms: lease_end(asked),
                });
            }
            verify_row(&row)?;
        }
        loop {
            let asked = now_ms();
            let grant = registry::try_lease(key, &s.holder_id, s.lease_ttl_ms, &note)
                .map_err(|e| Error::Store(format!("refresh lease failed: {e}")))?;
            if let Some(previous) = &grant.previous_note {
                // Its holder died mid-refresh. If Linear had already rotated,
                // refreshing with the stored token replays the original request:
                // inside Linear's grace window that recovers the pair, outside
                // it ends in reauthorization-required; the secret stays intact.
                log_event(
                    Level::Warn,
                    "taking over a refresh lease whose holder died mid-refresh",
                    &[("secret_id", secret_id), ("interrupted", previous)],
                );
            }
            // The last holder wrote the version we read (and none died
            // mid-refresh since): nobody refreshed after our read, so the
            // store holds what we saw. Saves a read per refresh.
            if grant.acquired && grant.previous_note.is_none() && grant.written_version.as_deref() == Some(seen_version)
            {
                return Ok(Acquired::Ours {
                    token: Box::new(seen.clone()),
                    version: seen_version.to_owned(),
                    lease_end_ms: lease_end(asked),
                });
            }
            let read = read_secret(secret_id).and_then(|(current, version)| {
                revoked_meanwhile(secret_id, seen, &current)?;
                Ok((current, version))
            });
            let (current, version) = match read {
                Ok(read) => read,
                Err(e) => {
                    if grant.acquired {
                        let _ = registry::release_lease(key, &s.holder_id, None);
                    }
                    return Err(e);
                }
            };
            if let Some(r) = usable_without_refresh(s, secret_id, &current, seen, force) {
                if grant.acquired {
                    let _ = registry::release_lease(key, &s.holder_id, None);
                }
                cache_token(s, secret_id, &current);
                return Ok(Acquired::ByOther(r));
            }
            if grant.acquired {
                return Ok(Acquired::Ours { token: Box::new(current), version, lease_end_ms: lease_end(asked) });
            }
            let now = now_ms();
            if now >= wait_until {
                let waited = u64::try_from(now - started).unwrap_or(0);
                return Err(Error::Transport(format!(
                    "another process has been refreshing {secret_id} for {waited} ms; try again"
                )));
            }
            std::thread::sleep(Duration::from_millis(backoff.min(u64::try_from(wait_until - now).unwrap_or(0))));
            backoff = (backoff * 2).min(250);
        }
    }
}

enum RefreshFailure {
    InvalidGrant,
    /// Linear answered about the credential, or with garbage: final.
    Other(Error),
    /// A rate limit or outage (429, 5xx, transport) that outlasted the retries.
    Transient(Error),
}

/// When the host's current call ends (its deadline traps what runs past it).
fn call_end(s: &Settings) -> i64 {
    CALL_STARTED_MS.with(std::cell::Cell::get).saturating_add(ms_i64(s.call_deadline_ms))
}

fn ms_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// One refresh request, retried through rate limits and outages as core's
/// [`retry_delay`] decides: never re-sent when it may have reached Linear,
/// and only when the retry, at its slowest, and its write-back end by
/// `end_ms` (the lease's or the call's end, whichever is first).
fn post_refresh(
    s: &Settings,
    tok: &StoredToken,
    end_ms: i64,
) -> Result<linear_oauth_core::TokenResponse, RefreshFailure> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (outcome, error) = match post_refresh_once(s, tok) {
            Ok(resp) => return Ok(resp),
            Err(Sent::InvalidGrant) => return Err(RefreshFailure::InvalidGrant),
            Err(Sent::Failed(outcome, error)) => (outcome, error),
        };
        let jitter = u64::from_le_bytes(crate::random_32()[..8].try_into().unwrap_or_default());
        let slack = request_slack_ms(now_ms(), end_ms, s.http_timeout_ms);
        match slack.and_then(|remaining| retry_delay(attempt, outcome, remaining, jitter)) {
            Some(delay) => {
                log_event(
                    Level::Warn,
                    "the token endpoint is unavailable; retrying",
                    &[
                        ("workspace_id", &tok.workspace_id),
                        ("attempt", &attempt.to_string()),
                        ("delay_ms", &delay.to_string()),
                        ("error", &describe_error(&error)),
                    ],
                );
                std::thread::sleep(Duration::from_millis(delay));
            }
            None if is_transient(outcome) => return Err(RefreshFailure::Transient(error)),
            None => return Err(RefreshFailure::Other(error)),
        }
    }
}

enum Sent {
    InvalidGrant,
    Failed(Attempt, Error),
}

fn post_refresh_once(s: &Settings, tok: &StoredToken) -> Result<linear_oauth_core::TokenResponse, Sent> {
    // The one renewal point for both grants: a refresh for an
    // authorization-code token, a new client_credentials fetch for a
    // client-credentials one (no refresh token; the new token ends the old
    // one everywhere). Callers hold the single flight and the lease.
    let body = match (tok.grant(), &tok.refresh_token) {
        (Grant::AuthorizationCode, Some(refresh)) => refresh_form(refresh, &tok.client_id, &tok.client_secret),
        (Grant::ClientCredentials, _) => client_credentials_form(&tok.scope, &tok.client_id, &tok.client_secret),
        (Grant::AuthorizationCode, None) => unreachable!("parse requires a refresh token for this grant"),
    };
    let resp = http::post_detailed(
        &endpoint(s, "oauth/token"),
        "application/x-www-form-urlencoded",
        body.as_bytes(),
        None,
        s.http_timeout_ms,
    )
    .map_err(|f| match f {
        http::Failure::NotSent(m) => Sent::Failed(Attempt::NotSent, Error::Transport(m)),
        http::Failure::MaybeSent(m) => Sent::Failed(Attempt::MaybeSent, Error::Transport(m)),
    })?;
    let retry_after_ms = resp.retry_after.as_deref().and_then(|v| parse_retry_after(v, now_ms()));
    parse_token_response(resp.status, &resp.body).map_err(|f| {
        if tok.grant() == Grant::AuthorizationCode && f.is_invalid_grant() {
            return Sent::InvalidGrant;
        }
        let secrets = [tok.lineage(), tok.client_secret.secret(), tok.access_token.secret()];
        let refused_client = matches!(&f, EndpointFailure::Error { code: Some(c), .. } if c == "invalid_client");
        let mut error = match tok.grant() {
            Grant::AuthorizationCode => endpoint_error(f, &secrets),
            // Linear refuses the stored client secret (rotated in the app's
            // settings, which also ended the token): nothing stored can get
            // another token, so the workspace must be set up again.
            Grant::ClientCredentials if refused_client => Error::ReauthorizationRequired(format!(
                "Linear refused the stored client credentials of workspace {} (invalid_client; was the client \
                 secret rotated?); run `linear-oauth setup --client-credentials` again with the current secret",
                tok.workspace_id
            )),
            Grant::ClientCredentials => client_credentials_error(f, &secrets),
        };
        if let Error::TokenEndpoint(e) = &mut error {
            e.retry_after_ms = retry_after_ms;
        }
        Sent::Failed(Attempt::Answered { status: resp.status, retry_after_ms }, error)
    })
}

/// A short, secret-free description of an error for a log field.
fn describe_error(e: &Error) -> String {
    match e {
        Error::TokenEndpoint(t) => {
            format!("HTTP {}{}", t.status, t.code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())
        }
        Error::Transport(m) => m.clone(),
        other => format!("{other:?}"),
    }
}

/// Shares a transient failure with the callers that follow for
/// `failure-memory-ms` (or as long as Linear's `Retry-After`, if longer).
fn remember_failure(s: &Settings, secret_id: &str, e: &Error) {
    if s.failure_memory_ms == 0 {
        return;
    }
    let (ttl, json) = match e {
        Error::TokenEndpoint(t) => (
            s.failure_memory_ms.max(t.retry_after_ms.unwrap_or(0)),
            serde_json::json!({"status": t.status, "code": t.code, "description": t.description,
                "retry_after_ms": t.retry_after_ms, "at": now_ms()}),
        ),
        Error::Transport(m) => (s.failure_memory_ms, serde_json::json!({"transport": m})),
        _ => return,
    };
    coord::cache_set(&failure_key(secret_id), &json.to_string(), ttl);
}

/// The remembered failure, if one is fresh: the unexpired token (unless
/// forced), or the error again, with `Retry-After` counted down.
fn remembered_failure(
    s: &Settings,
    secret_id: &str,
    tok: &StoredToken,
    force: bool,
) -> Option<Result<ResolvedToken, Error>> {
    let v: serde_json::Value = serde_json::from_str(&coord::cache_get(&failure_key(secret_id))?).ok()?;
    let e = if let Some(m) = v["transport"].as_str() {
        Error::Transport(m.to_owned())
    } else {
        let elapsed = u64::try_from(now_ms().saturating_sub(v["at"].as_i64().unwrap_or(0))).unwrap_or(0);
        Error::TokenEndpoint(crate::EndpointError {
            status: u16::try_from(v["status"].as_u64()?).ok()?,
            code: v["code"].as_str().map(str::to_owned),
            description: v["description"].as_str().map(str::to_owned),
            retry_after_ms: v["retry_after_ms"].as_u64().map(|r| r.saturating_sub(elapsed)),
        })
    };
    Some(serve_through_outage(s, secret_id, tok, e, force))
}

/// After a transient failure: the stored token while it has not actually
/// expired (an outage shorter than its life stays invisible), else the error.
/// A forced refresh or a 401 report gets the error: the token is unwanted.
fn serve_through_outage(
    s: &Settings,
    secret_id: &str,
    tok: &StoredToken,
    e: Error,
    force: bool,
) -> Result<ResolvedToken, Error> {
    let now = now_ms();
    let expires = linear_oauth_core::parse_instant(&tok.expires_at).unwrap_or(i64::MIN);
    // A second of margin: the caller still has to send it.
    if force || expires <= now.saturating_add(1000) {
        invalidate_secret(secret_id, &tok.workspace_id);
        return Err(e);
    }
    log_event(
        Level::Warn,
        "token refresh failed for a transient reason; serving the unexpired stored token",
        &[
            ("workspace_id", &tok.workspace_id),
            ("secret_id", secret_id),
            ("expires_at", &tok.expires_at),
            ("error", &describe_error(&e)),
        ],
    );
    // Served from the host's memory only until the failure memory lapses.
    let until = now.saturating_add(ms_i64(s.failure_memory_ms.max(1))).min(expires - 1000);
    Ok(never_ahead(resolved(s, secret_id, tok, until)))
}

/// A failed client_credentials request as hosts see it; a disabled grant
/// names the Linear setting that turns it on.
pub(crate) fn client_credentials_error(f: EndpointFailure, secrets: &[&str]) -> Error {
    if !client_credentials_disabled(&f) {
        return endpoint_error(f, secrets);
    }
    let EndpointFailure::Error { status, code, description } = f.redacted(secrets) else {
        unreachable!("a disabled grant is an error answer")
    };
    let linear = description.map(|d| format!(" (Linear: \"{d}\")")).unwrap_or_default();
    Error::TokenEndpoint(crate::EndpointError {
        status,
        code,
        retry_after_ms: None,
        description: Some(format!(
            "the Linear app does not allow the client credentials grant{linear}; enable \"Client credentials\" \
             in the app's settings in Linear (Settings > API > OAuth applications > the app), then retry"
        )),
    })
}

/// Refresh with the lease held, recovering once from invalid_grant.
fn refresh_now(
    s: &Settings,
    secret_id: &str,
    tok: StoredToken,
    version: String,
    force: bool,
    lease_end_ms: i64,
) -> Result<ResolvedToken, Error> {
    let fields = [("workspace_id", tok.workspace_id.as_str()), ("secret_id", secret_id)];
    let end = lease_end_ms.min(call_end(s));
    match post_refresh(s, &tok, end) {
        Ok(resp) => write_back(s, secret_id, &tok, &tok.refreshed(&resp, now_ms()), &version),
        Err(RefreshFailure::Transient(e)) => {
            remember_failure(s, secret_id, &e);
            serve_through_outage(s, secret_id, &tok, e, force)
        }
        Err(RefreshFailure::Other(e)) => {
            invalidate_secret(secret_id, &tok.workspace_id);
            log_event(Level::Error, "token refresh failed", &fields);
            Err(e)
        }
        Err(RefreshFailure::InvalidGrant) => {
            let (reread, version2) = read_secret(secret_id)?;
            revoked_meanwhile(secret_id, &tok, &reread)?;
            match after_invalid_grant(tok.lineage(), &reread, now_ms(), s.refresh_threshold_ms) {
                Recovery::UseStored => {
                    log_event(
                        Level::Info,
                        "refresh token was rotated by another refresher; using the stored token",
                        &fields,
                    );
                    cache_token(s, secret_id, &reread);
                    if_fresh(s, secret_id, &reread)
                        .ok_or_else(|| Error::Transport("stored token expired meanwhile".into()))
                }
                // A second request, under the same lease: only if it fits.
                Recovery::RefreshAgain if request_slack_ms(now_ms(), end, s.http_timeout_ms).is_none() => {
                    let e = Error::Transport(format!(
                        "the token of {secret_id} was rotated elsewhere and is due again, but too little of the \
                         refresh lease or call is left to refresh it once more; try again"
                    ));
                    serve_through_outage(s, secret_id, &reread, e, force)
                }
                Recovery::RefreshAgain => match post_refresh(s, &reread, end) {
                    Ok(resp) => write_back(s, secret_id, &reread, &reread.refreshed(&resp, now_ms()), &version2),
                    Err(RefreshFailure::InvalidGrant) => Err(reauthorize(secret_id, &reread.workspace_id)),
                    Err(RefreshFailure::Transient(e)) => {
                        remember_failure(s, secret_id, &e);
                        serve_through_outage(s, secret_id, &reread, e, force)
                    }
                    Err(RefreshFailure::Other(e)) => {
                        invalidate_secret(secret_id, &reread.workspace_id);
                        Err(e)
                    }
                },
                Recovery::Reauthorize => Err(reauthorize(secret_id, &tok.workspace_id)),
            }
        }
    }
}

/// A revoke marked the secret after `seen` was read: whatever was under way
/// stops. (A `seen` already marked is revoke's own probe.)
fn revoked_meanwhile(secret_id: &str, seen: &StoredToken, current: &StoredToken) -> Result<(), Error> {
    if seen.revoked_at().is_none() && current.revoked_at().is_some() {
        invalidate_secret(secret_id, &current.workspace_id);
        return check_usable(secret_id, current, None);
    }
    Ok(())
}

fn reauthorize(secret_id: &str, workspace_id: &str) -> Error {
    invalidate_secret(secret_id, workspace_id);
    log_event(
        Level::Error,
        "refresh token is spent or revoked; the workspace must be installed again",
        &[("workspace_id", workspace_id), ("secret_id", secret_id)],
    );
    Error::ReauthorizationRequired(format!(
        "the refresh token for workspace {workspace_id} is expired or revoked; run the install again"
    ))
}

/// Persists a refreshed token; never loses it silently. Returns the token to
/// serve, or (in a short-lived host) `store` when the write kept failing.
fn write_back(
    s: &Settings,
    secret_id: &str,
    old: &StoredToken,
    new: &StoredToken,
    version: &str,
) -> Result<ResolvedToken, Error> {
    let result = match put_with_retry(s, secret_id, new, Some(version)) {
        Ok(PutOutcome::Written(_)) => Ok(()),
        Ok(PutOutcome::Conflict) => merge_after_conflict(s, secret_id, old, new),
        Err(e) => Err(WriteFailure::Failed(e)),
    };
    let refresh_due = match freshness(&new.expires_at, now_ms(), s.refresh_threshold_ms) {
        Freshness::Fresh { refresh_due_ms } => refresh_due_ms,
        _ => now_ms(),
    };
    match result {
        Ok(()) => {
            cache_token(s, secret_id, new);
            log_event(
                Level::Info,
                match new.grant() {
                    Grant::AuthorizationCode => "refreshed Linear access token",
                    Grant::ClientCredentials => "fetched a new client-credentials token",
                },
                &[
                    ("workspace_id", &new.workspace_id),
                    ("workspace_slug", &new.workspace_slug),
                    ("expires_at", &new.expires_at),
                ],
            );
        }
        Err(WriteFailure::Revoked(e)) => {
            log_event(
                Level::Warn,
                "the workspace was revoked while its token was refreshed; dropping the refreshed token",
                &[("workspace_id", &new.workspace_id), ("secret_id", secret_id)],
            );
            return Err(e);
        }
        Err(WriteFailure::Failed(e)) if s.lifetime == Lifetime::Command => {
            invalidate_secret(secret_id, &new.workspace_id);
            log_event(
                Level::Error,
                "refreshed token could not be written back; the rotated refresh token is lost with this process",
                &[("workspace_id", &new.workspace_id), ("secret_id", secret_id), ("error", &e)],
            );
            return Err(Error::Store(format!(
                "Linear rotated the token of workspace {} but it could not be saved ({e}); the stored refresh token is now spent, \
                 so the workspace may need re-authorization (run the install again) once the store is writable",
                new.workspace_id
            )));
        }
        Err(WriteFailure::Failed(e)) => {
            // Kept either way: a thawed invocation process writes it on its
            // next call like a service does.
            coord::cache_set(&unsaved_key(secret_id), &new.to_json(), u64::MAX);
            log_event(
                Level::Error,
                if s.lifetime == Lifetime::Invocation {
                    "refreshed token could not be written back within the call; the stored refresh token is now \
                     spent and the rotated one is only in this process's memory: if the process is frozen for good \
                     the workspace must be installed again"
                } else {
                    "refreshed token could not be written back; keeping it in memory and retrying on later calls"
                },
                &[("workspace_id", &new.workspace_id), ("secret_id", secret_id), ("error", &e)],
            );
        }
    }
    Ok(resolved(s, secret_id, new, refresh_due))
}

/// Why a refreshed token was not written.
enum WriteFailure {
    /// A revoke marked the secret meanwhile: the token is dropped.
    Revoked(Error),
    /// The store kept failing or changing.
    Failed(String),
}

/// Somebody wrote the secret while we refreshed: core's
/// `merge_after_conflict` decides whether ours goes on top of theirs.
fn merge_after_conflict(
    s: &Settings,
    secret_id: &str,
    old: &StoredToken,
    new: &StoredToken,
) -> Result<(), WriteFailure> {
    let (current, version) = read_secret(secret_id).map_err(|e| WriteFailure::Failed(format!("{e:?}")))?;
    revoked_meanwhile(secret_id, old, &current).map_err(WriteFailure::Revoked)?;
    let Some(merged) = linear_oauth_core::merge_after_conflict(old, new, &current) else {
        return Ok(());
    };
    match put_with_retry(s, secret_id, &merged, Some(&version)).map_err(WriteFailure::Failed)? {
        PutOutcome::Written(_) => Ok(()),
        PutOutcome::Conflict => Err(WriteFailure::Failed("the secret kept changing during write-back".into())),
    }
}

/// Waits (ms) before each write attempt. A long-lived host has a later call
/// to retry on; an invocation or a command has only this call, so it keeps
/// trying for about 5 s. Either stops early rather than run into the call
/// deadline, whose trap would drop the token a failed write keeps in memory.
const WRITE_RETRY: &[u64] = &[0, 50, 200, 500];
const WRITE_RETRY_SHORT_LIVED: &[u64] = &[0, 50, 200, 500, 1000, 1500, 2000];

fn put_with_retry(
    s: &Settings,
    secret_id: &str,
    tok: &StoredToken,
    version: Option<&str>,
) -> Result<PutOutcome, String> {
    let json = tok.to_json();
    let mut last = String::new();
    let mut last_took = 0;
    let patience = if s.lifetime == Lifetime::LongLived { WRITE_RETRY } else { WRITE_RETRY_SHORT_LIVED };
    for (i, &delay) in patience.iter().enumerate() {
        if i > 0 && !write_retry_fits(now_ms(), delay, last_took, call_end(s)) {
            last = format!("{last} (no time left in the call to try again)");
            break;
        }
        std::thread::sleep(Duration::from_millis(delay));
        let started = now_ms();
        match secret_store::put(secret_id, &json, version) {
            Ok(o) => {
                if let PutOutcome::Written(v) = &o {
                    WRITTEN.with(|w| *w.borrow_mut() = Some(v.clone()));
                }
                return Ok(o);
            }
            Err(e) => last = e,
        }
        last_took = u64::try_from(now_ms().saturating_sub(started)).unwrap_or(0);
    }
    Err(format!("secret write failed: {last}"))
}

/// Writes a token that an earlier call could not persist, unless the store
/// has meanwhile received a newer write of its own.
fn retry_unsaved(secret_id: &str) {
    let Some(unsaved) = coord::cache_get(&unsaved_key(secret_id)).and_then(|v| StoredToken::parse(&v).ok()) else {
        return;
    };
    let Ok((current, version)) = read_secret(secret_id) else { return };
    if revoked_meanwhile(secret_id, &unsaved, &current).is_err() {
        coord::cache_remove(&unsaved_key(secret_id));
        return;
    }
    let newer =
        linear_oauth_core::parse_instant(&current.updated_at) > linear_oauth_core::parse_instant(&unsaved.updated_at);
    if newer || matches!(secret_store::put(secret_id, &unsaved.to_json(), Some(&version)), Ok(PutOutcome::Written(_))) {
        coord::cache_remove(&unsaved_key(secret_id));
        if !newer {
            log_event(Level::Info, "wrote back a refreshed token kept in memory", &[("secret_id", secret_id)]);
        }
    }
}

/// The `workspace_id` a stored value names, even when other fields are bad.
pub(crate) fn named_workspace(value: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(value).ok()?;
    v.get("workspace_id")?.as_str().filter(|w| !w.is_empty()).map(str::to_owned)
}

fn row_to_json(r: &Row) -> String {
    serde_json::json!([r.workspace_id, r.workspace_slug, r.secret_id, r.status]).to_string()
}

fn row_from_json(s: &str) -> Option<Row> {
    let v: Vec<String> = serde_json::from_str(s).ok()?;
    let [workspace_id, workspace_slug, secret_id, status]: [String; 4] = v.try_into().ok()?;
    Some(Row { workspace_id, workspace_slug, secret_id, status })
}
