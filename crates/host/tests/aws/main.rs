//! The `aws` store against moto (AWS_ENDPOINT_URL). These tests fail, never
//! skip, without one: `make test` starts moto on 127.0.0.1.
#![cfg(feature = "aws")]

mod bulk;
#[path = "../common/mod.rs"]
mod common;
mod old_layout;
mod requests;

use old_layout::unstaged;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use linear_oauth_host::store::{AwsBackend, DeferredRelease, Leases, ObservedReleases, Registry, SecretStore};
use linear_oauth_host::{Backends, Error, FileHints, HintStore, Lifetime, Options, PutOutcome, Resolver, Target};
use linear_oauth_testserver::FaultsPatch;

fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS tests need a moto server: set AWS_ENDPOINT_URL (make test starts one)")
}

fn table() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!("lo-test-{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
}

fn backend(table: &str) -> AwsBackend {
    endpoint();
    let b = AwsBackend::open(table).unwrap();
    b.bootstrap().unwrap();
    b
}

/// Raw SDK clients, to write and read data the way the old tooling did.
fn raw() -> (tokio::runtime::Runtime, aws_sdk_secretsmanager::Client, aws_sdk_dynamodb::Client) {
    endpoint();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let conf = rt.block_on(aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http).load());
    (rt, aws_sdk_secretsmanager::Client::new(&conf), aws_sdk_dynamodb::Client::new(&conf))
}

fn aws_options(server: &linear_oauth_testserver::TestServer, table: &str) -> Options {
    Options { store: "aws".into(), registry_table: Some(table.into()), ..options(server) }
}

#[test]
fn bootstrap_is_idempotent_and_store_uri_opens() {
    let t = table();
    let b = AwsBackend::open(&t).unwrap();
    assert!(b.bootstrap().unwrap(), "created");
    assert!(!b.bootstrap().unwrap(), "already there");
    assert!(Backends::open_with("aws", Some(&t)).is_ok());
    assert!(matches!(Backends::open_with("aws", None), Err(Error::InvalidInput(_))));
}

#[test]
fn old_layout_data_resolves_and_survives_a_refresh() {
    let server = server();
    let t = table();
    let _b = backend(&t);
    let (rt, sm, ddb) = raw();
    let issued = server.issue_tokens(CLIENT_ID, "read write", 86_399);
    let slug = format!("old{}", std::process::id());
    let secret_name = format!("bgagent-linear-oauth-{slug}");
    let value = token_json(&issued.access_token, &issued.refresh_token, &in_secs(20), "org-old", &slug);
    let arn = rt
        .block_on(sm.create_secret().name(&secret_name).secret_string(&value).send())
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let item: HashMap<String, AttributeValue> = [
        ("linear_workspace_id", "org-old"),
        ("workspace_slug", slug.as_str()),
        ("oauth_secret_arn", arn.as_str()),
        ("status", "active"),
        ("installed_via", "old-cli"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), AttributeValue::S(v.to_owned())))
    .collect();
    rt.block_on(ddb.put_item().table_name(&t).set_item(Some(item)).send()).unwrap();

    let r = Resolver::new(aws_options(&server, &t)).unwrap();
    let tok = r.resolve("org-old").unwrap();
    assert_ne!(tok.access_token(), issued.access_token, "expiring: refreshed");
    assert_eq!(tok.secret_id(), arn, "the registry's ARN is the secret id");
    // Read as the old tooling does: unstaged, which Secrets Manager answers with AWSCURRENT.
    let stored = unstaged(&rt, &sm, &secret_name);
    assert_eq!(stored["access_token"], tok.access_token().secret());
    assert_eq!(stored["team_hint"]["kept"], true, "unknown secret fields kept");
    assert!(server.refresh_token_live(stored["refresh_token"].as_str().unwrap()));
    let row = rt
        .block_on(ddb.get_item().table_name(&t).key("linear_workspace_id", AttributeValue::S("org-old".into())).send())
        .unwrap();
    let row = row.item().unwrap();
    assert_eq!(row["installed_via"].as_s().unwrap(), "old-cli");
    assert!(!row.contains_key("lease_holder"), "lease items are separate");
    let listed = r.backends().registry.list().unwrap();
    assert_eq!(listed.len(), 1, "lease items are not workspaces: {listed:?}");
}

#[test]
fn conditional_writes_and_leases() {
    let b = backend(&table());
    let id = format!("cas-{}", std::process::id());
    let PutOutcome::Written(v1) = SecretStore::put(&b, &id, "one", None).unwrap() else { panic!() };
    assert_eq!(SecretStore::get(&b, &id).unwrap().unwrap().version, v1);
    let PutOutcome::Written(v2) = SecretStore::put(&b, &id, "two", Some(&v1)).unwrap() else { panic!() };
    assert_eq!(SecretStore::put(&b, &id, "stale", Some(&v1)).unwrap(), PutOutcome::Conflict);
    let cur = SecretStore::get(&b, &id).unwrap().unwrap();
    assert_eq!((cur.value.as_str(), cur.version.as_str()), ("two", v2.as_str()));
    let PutOutcome::Written(_) = SecretStore::put(&b, &id, "three", None).unwrap() else { panic!() };
    assert_eq!(SecretStore::get(&b, &id).unwrap().unwrap().value, "three");
    assert!(b.delete(&id).unwrap());
    assert_eq!(SecretStore::get(&b, &id).unwrap(), None);

    assert!(b.try_lease("k", "a", Duration::from_millis(300), "note-a").unwrap().acquired);
    assert!(!b.try_lease("k", "b", Duration::from_secs(5), "").unwrap().acquired);
    assert!(b.try_lease("k", "a", Duration::from_secs(5), "note-a").unwrap().acquired, "re-entrant");
    b.release_lease("k", "b").unwrap();
    assert!(!b.try_lease("k", "b", Duration::from_secs(5), "").unwrap().acquired, "only the holder releases");
    b.release_lease("k", "a").unwrap();
    assert!(b.try_lease("k", "b", Duration::from_millis(200), "note-b").unwrap().acquired);
    std::thread::sleep(Duration::from_millis(300));
    let g = b.try_lease("k", "c", Duration::from_secs(5), "").unwrap();
    assert!(g.acquired);
    assert_eq!(g.previous_note.as_deref(), Some("note-b"), "an expired holder's note is handed over");
    // A release keeps the version its holder wrote for the next taker; one without a write keeps the last.
    assert_eq!(g.written_version, None, "nothing written yet");
    b.finish_lease("k", "c", Some("v7")).unwrap();
    let g = b.try_lease("k", "d", Duration::from_secs(5), "").unwrap();
    assert!(g.acquired && g.previous_note.is_none());
    assert_eq!(g.written_version.as_deref(), Some("v7"));
    b.finish_lease("k", "d", None).unwrap();
    assert_eq!(b.try_lease("k", "e", Duration::from_secs(5), "").unwrap().written_version.as_deref(), Some("v7"));
    b.finish_lease("k", "nobody", Some("v8")).unwrap();
    assert!(!b.try_lease("k", "f", Duration::from_secs(5), "").unwrap().acquired, "only the holder releases");
}

#[test]
fn setup_writes_the_old_layout_and_resolvers_share_one_refresh() {
    let server = server();
    let t = table();
    let _b = backend(&t);
    let r = Resolver::new(aws_options(&server, &t)).unwrap();
    // Install through the host API (the install test plays the browser).
    server.set_faults(FaultsPatch { expires_in: Some(30), ..Default::default() });
    let params = linear_oauth_host::InstallParams {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        redirect_uri: "http://localhost:8080/oauth/callback".into(),
        scopes: vec!["read write".into()],
        actor_app: true,
        prompt_consent: true,
        secret_id: None,
    };
    let pending = r.begin_install(&params).unwrap();
    let location = http_location(&pending.authorize_url);
    let code = r.parse_callback(&pending, &location[location.find('?').unwrap()..]).unwrap();
    let installed = r.complete_install(&params, pending, code, "tester").unwrap();
    let (rt, sm, ddb) = raw();
    let row = rt
        .block_on(
            ddb.get_item()
                .table_name(&t)
                .key("linear_workspace_id", AttributeValue::S(installed.workspace_id.clone()))
                .send(),
        )
        .unwrap();
    let row = row.item().unwrap().clone();
    assert_eq!(row["oauth_secret_arn"].as_s().unwrap(), "bgagent-linear-oauth-testws");
    assert_eq!(row["workspace_slug"].as_s().unwrap(), "testws");
    assert_eq!(row["status"].as_s().unwrap(), "active");
    let secret = rt.block_on(sm.get_secret_value().secret_id("bgagent-linear-oauth-testws").send()).unwrap();
    let v: serde_json::Value = serde_json::from_str(secret.secret_string().unwrap()).unwrap();
    assert_eq!(v.as_object().unwrap().len(), 12, "the eleven fields and the app user's id");
    assert_eq!(v["app_user_id"], installed.viewer_id.as_str());

    // Eight "processes" (separate resolvers) on the expiring token: one refresh.
    server.set_faults(FaultsPatch { expires_in: Some(86_399), latency_ms: Some(100), ..Default::default() });
    let before = server.counters().token_requests;
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (o, b, w) = (aws_options(&server, &t), barrier.clone(), installed.workspace_id.clone());
            std::thread::spawn(move || {
                let r = Resolver::new(o).unwrap();
                b.wait();
                r.resolve(&w).unwrap().access_token().secret().to_owned()
            })
        })
        .collect();
    let tokens: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(server.counters().token_requests - before, 1);
    assert!(tokens.iter().all(|t| *t == tokens[0]));
}

fn http_location(url: &str) -> String {
    linear_oauth_testserver::fixtures::browser_get(url).unwrap().1.expect("authorize redirects")
}

/// Secret writes fail until switched back on; reads go to the real store.
#[derive(Debug)]
struct FailingWrites {
    inner: Arc<AwsBackend>,
    fail: std::sync::atomic::AtomicBool,
}

impl SecretStore for FailingWrites {
    fn get(&self, id: &str) -> Result<Option<linear_oauth_host::Versioned>, Error> {
        SecretStore::get(&*self.inner, id)
    }
    fn put(&self, id: &str, value: &str, expected: Option<&str>) -> Result<PutOutcome, Error> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Store("injected write failure".into()));
        }
        SecretStore::put(&*self.inner, id, value, expected)
    }
    fn delete(&self, id: &str) -> Result<bool, Error> {
        self.inner.delete(id)
    }
}

#[test]
fn a_lease_with_a_far_future_expiry_is_taken_over() {
    let t = table();
    let b = backend(&t);
    let (rt, _sm, ddb) = raw();
    let far = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
        + 10 * 365 * 86_400_000)
        .to_string();
    let item: HashMap<String, AttributeValue> = [
        ("linear_workspace_id", AttributeValue::S("lease#refresh:s1".into())),
        ("lease_holder", AttributeValue::S("someone-else".into())),
        ("lease_expires_ms", AttributeValue::N(far)),
        ("lease_note", AttributeValue::S("{}".into())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    rt.block_on(ddb.put_item().table_name(&t).set_item(Some(item)).send()).unwrap();
    let g = b.try_lease("refresh:s1", "me", Duration::from_secs(25), "{}").unwrap();
    assert!(g.acquired, "a lease ten years ahead must not block refreshes forever");
    // A live lease of normal length (even with a minute of clock skew) still holds.
    let g = b.try_lease("refresh:s1", "third", Duration::from_secs(25), "{}").unwrap();
    assert!(!g.acquired);
}

#[test]
fn write_back_failure_on_aws_keeps_the_rotated_token() {
    let server = server();
    let t = table();
    let aws = Arc::new(backend(&t));
    let real = Backends { secrets: aws.clone(), registry: aws.clone() };
    let s = seed(&server, &real, &format!("wb{}", std::process::id()), 10);
    let failing = Arc::new(FailingWrites { inner: aws.clone(), fail: true.into() });
    let wrapped = Backends { secrets: failing.clone(), registry: aws.clone() };
    let r = Resolver::with_backends(aws_options(&server, &t), wrapped).unwrap();
    let tok = r.resolve(&s.workspace_id).unwrap();
    assert_ne!(tok.access_token(), s.access, "the caller gets the rotated token");
    assert_eq!(stored(&real, &s.secret_id)["refresh_token"], s.refresh.as_str(), "nothing blanked");
    r.invalidate(&s.workspace_id);
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token(), tok.access_token(), "kept in memory");
    assert_eq!(server.counters().token_refresh, 1);
    failing.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    r.invalidate(&s.workspace_id);
    r.resolve(&s.workspace_id).unwrap();
    let now = stored(&real, &s.secret_id);
    assert_eq!(now["access_token"], tok.access_token().secret(), "written once the store works");
    assert!(server.refresh_token_live(now["refresh_token"].as_str().unwrap()));
}

#[test]
fn an_invocation_releases_its_lease_before_the_call_returns() {
    let server = server();
    let t = table();
    let aws = Arc::new(backend(&t));
    let real = Backends { secrets: aws.clone(), registry: aws.clone() };
    let s = seed(&server, &real, &format!("inv{}", std::process::id()), 10);
    let invocation =
        Resolver::new(Options { lifetime: Some(Lifetime::Invocation), ..aws_options(&server, &t) }).unwrap();
    // Only a process that outlives the call may send the release later.
    assert!(!format!("{:?}", invocation.backends().registry).contains("DeferredRelease"));
    let long_lived =
        Resolver::new(Options { lifetime: Some(Lifetime::LongLived), ..aws_options(&server, &t) }).unwrap();
    assert!(format!("{:?}", long_lived.backends().registry).contains("DeferredRelease"));

    let tok = invocation.resolve(&s.workspace_id).unwrap();
    assert_ne!(tok.access_token(), s.access);
    // The moment the call returned, the lease is free for anyone else.
    let key = format!("refresh:{}", s.secret_id);
    assert!(aws.try_lease(&key, "another-process", Duration::from_secs(25), "{}").unwrap().acquired);
}

/// A resolver on the aws store made and used inside a Tokio runtime (an async
/// service, a `#[tokio::test]`). `AwsBackend::open` used to `block_on` the SDK
/// configuration on the caller's thread, which panics there ("Cannot start a
/// runtime from within a runtime"), and dropping its runtime there panicked too.
#[test]
fn a_resolver_on_the_aws_store_opens_resolves_and_drops_inside_a_tokio_runtime() {
    let server = server();
    let t = table();
    let aws = Arc::new(backend(&t));
    let s = seed(&server, &Backends { secrets: aws.clone(), registry: aws }, &format!("rt{}", std::process::id()), 10);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let token = rt.block_on(async {
        let r = Resolver::new(aws_options(&server, &t)).unwrap();
        let token = r.resolve(&s.workspace_id).unwrap().access_token().secret().to_owned();
        drop(r);
        token
    });
    assert_ne!(token, s.access, "expiring: refreshed inside the runtime");
    assert_eq!(server.counters().token_refresh, 1);
}

/// Secrets Manager answers a write to a secret scheduled for deletion with
/// `InvalidRequestException`: a store error that says so, never a conflict
/// (which would send the writer round a re-read and retry that cannot succeed).
/// moto lets such writes through; `tests/moto_serial.py` refuses them as AWS
/// documents, and without the fix the refused stage move was `Conflict`.
#[test]
fn a_write_to_a_secret_scheduled_for_deletion_is_a_store_error_not_a_conflict() {
    let t = table();
    let b = backend(&t);
    let (rt, sm, _) = raw();
    let id = format!("lo-deleting-{}", std::process::id());
    let PutOutcome::Written(v) = SecretStore::put(&b, &id, "one", None).unwrap() else { panic!("written") };
    rt.block_on(sm.delete_secret().secret_id(&id).recovery_window_in_days(7).send()).unwrap();
    for expected in [Some(v.as_str()), None] {
        let e = SecretStore::put(&b, &id, "two", expected).unwrap_err();
        let Error::Store(m) = &e else { panic!("{e:?}") };
        assert!(m.contains("scheduled for deletion") && m.contains("restore-secret"), "{m}");
    }
}

fn deleted_date(rt: &tokio::runtime::Runtime, sm: &aws_sdk_secretsmanager::Client, id: &str) -> Option<String> {
    let out = rt.block_on(sm.describe_secret().secret_id(id).send()).unwrap();
    out.deleted_date().map(|d| d.to_string())
}

/// `revoke --purge --force` deleted the secret with no recovery window. It now
/// schedules the deletion (7 days by default), so a mistaken purge can be
/// restored; `SecretDeletion::Immediate` still deletes at once.
#[test]
fn a_purge_on_aws_keeps_the_secret_restorable_unless_told_otherwise() {
    use linear_oauth_host::{RevokeOutcome, SecretDeletion};
    let server = server();
    let t = table();
    let aws = Arc::new(backend(&t));
    let backends = Backends { secrets: aws.clone(), registry: aws };
    let (rt, sm, _) = raw();
    let pid = std::process::id();
    let kept = seed(&server, &backends, &format!("pk{pid}"), 3600);
    let gone = seed(&server, &backends, &format!("pg{pid}"), 3600);

    let r = Resolver::new(aws_options(&server, &t)).unwrap();
    assert_eq!(r.options().secret_deletion, SecretDeletion::RecoveryWindow(7), "the default");
    let rev = r.revoke(&kept.workspace_id, true, true).unwrap();
    assert_eq!((rev.outcome, rev.purged), (RevokeOutcome::Revoked, true));
    assert!(deleted_date(&rt, &sm, &kept.secret_id).is_some(), "scheduled for deletion");
    assert!(matches!(r.resolve_secret(&kept.secret_id), Err(Error::SecretMissing(_))), "gone for resolvers");
    rt.block_on(sm.restore_secret().secret_id(&kept.secret_id).send()).unwrap();
    assert_eq!(unstaged(&rt, &sm, &kept.secret_id)["access_token"], kept.access.as_str(), "restored intact");

    let o = Options { secret_deletion: SecretDeletion::Immediate, ..aws_options(&server, &t) };
    let rev = Resolver::new(o).unwrap().revoke(&gone.workspace_id, true, true).unwrap();
    assert!(rev.purged);
    let e = rt.block_on(sm.describe_secret().secret_id(&gone.secret_id).send()).unwrap_err();
    assert!(e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()), "gone at once");
    assert!(matches!(SecretDeletion::window(6), Err(Error::InvalidInput(_))));
    assert!(matches!(SecretDeletion::window(31), Err(Error::InvalidInput(_))));
}

/// `scan` follows `LastEvaluatedKey` across pages (here 7 items a page, as
/// DynamoDB's `Limit` makes them; in AWS a page is up to 1 MB): every row
/// once, no lease item, and an error from a page ends the scan.
#[test]
fn scan_follows_last_evaluated_key_across_pages() {
    let t = table();
    let b = backend(&t).with_scan_page_items(7);
    for i in 0..25 {
        linear_oauth_host::store::Registry::put(
            &b,
            &linear_oauth_host::RegistryRow {
                workspace_id: format!("org-{i:02}"),
                workspace_slug: format!("slug-{i:02}"),
                secret_id: format!("secret-{i:02}"),
                status: "active".into(),
                ..Default::default()
            },
        )
        .unwrap();
    }
    // Lease items share the table; a page may hold only those (then none is handed over).
    for i in 0..3 {
        b.try_lease(&format!("refresh:secret-{i:02}"), "me", Duration::from_secs(60), "{}").unwrap();
    }
    let before = b.requests().get("DynamoDB_20120810.Scan").copied().unwrap_or(0);
    let mut pages = Vec::new();
    b.scan(&mut |page| {
        pages.push(page.into_iter().map(|r| r.workspace_id).collect::<Vec<_>>());
        Ok(())
    })
    .unwrap();
    let scans = b.requests().get("DynamoDB_20120810.Scan").copied().unwrap_or(0) - before;
    assert!(scans >= 4, "28 items at 7 a page take at least 4 Scan requests, sent {scans}");
    assert!(pages.len() >= 4 && pages.iter().all(|p| !p.is_empty() && p.len() <= 7), "{pages:?}");
    let mut ids: Vec<String> = pages.concat();
    ids.sort();
    assert_eq!(ids, (0..25).map(|i| format!("org-{i:02}")).collect::<Vec<_>>(), "every row once, no lease");
    // An error from a page stops the scan there.
    let mut seen = 0;
    let e = b
        .scan(&mut |_| {
            seen += 1;
            Err(Error::Store("enough".into()))
        })
        .unwrap_err();
    assert!(matches!(&e, Error::Store(m) if m == "enough"), "{e:?}");
    assert_eq!(seen, 1);
}
