//! The `aws` store against moto (AWS_ENDPOINT_URL). These tests fail, never
//! skip, without one: `make test` starts moto on 127.0.0.1.
#![cfg(feature = "aws")]

mod common;

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
    assert_ne!(tok.access_token, issued.access_token, "expiring: refreshed");
    assert_eq!(tok.secret_id, arn, "the registry's ARN is the secret id");
    // Read as the old tooling does: unstaged, which Secrets Manager answers with AWSCURRENT.
    let stored = unstaged(&rt, &sm, &secret_name);
    assert_eq!(stored["access_token"], tok.access_token.secret());
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
    assert_eq!(v.as_object().unwrap().len(), 11);

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
                r.resolve(&w).unwrap().access_token.secret().to_owned()
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
    assert_ne!(tok.access_token, s.access, "the caller gets the rotated token");
    assert_eq!(stored(&real, &s.secret_id)["refresh_token"], s.refresh.as_str(), "nothing blanked");
    r.invalidate(&s.workspace_id);
    assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token, tok.access_token, "kept in memory");
    assert_eq!(server.counters().token_refresh, 1);
    failing.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    r.invalidate(&s.workspace_id);
    r.resolve(&s.workspace_id).unwrap();
    let now = stored(&real, &s.secret_id);
    assert_eq!(now["access_token"], tok.access_token.secret(), "written once the store works");
    assert!(server.refresh_token_live(now["refresh_token"].as_str().unwrap()));
}

/// An unstaged `GetSecretValue`, as the old Lambdas and boto3 read: Secrets
/// Manager answers it with the `AWSCURRENT` version.
fn unstaged(rt: &tokio::runtime::Runtime, sm: &aws_sdk_secretsmanager::Client, id: &str) -> serde_json::Value {
    let out = rt.block_on(sm.get_secret_value().secret_id(id).send()).unwrap();
    serde_json::from_str(out.secret_string().unwrap()).unwrap()
}

/// The versions labelled `AWSCURRENT` (Secrets Manager keeps exactly one).
fn current_versions(rt: &tokio::runtime::Runtime, sm: &aws_sdk_secretsmanager::Client, id: &str) -> Vec<String> {
    let out = rt.block_on(sm.list_secret_version_ids().secret_id(id).include_deprecated(true).send()).unwrap();
    out.versions()
        .iter()
        .filter(|v| v.version_stages().iter().any(|s| s == "AWSCURRENT"))
        .map(|v| v.version_id().unwrap().to_owned())
        .collect()
}

/// What the old Node resolver did to refresh: POST the stored refresh token,
/// then `PutSecretValue` without stages (which moves `AWSCURRENT`).
fn old_style_refresh(
    server: &linear_oauth_testserver::TestServer,
    rt: &tokio::runtime::Runtime,
    sm: &aws_sdk_secretsmanager::Client,
    id: &str,
) -> serde_json::Value {
    let mut tok = unstaged(rt, sm, id);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("refresh_token", tok["refresh_token"].as_str().unwrap())
        .append_pair("client_id", CLIENT_ID)
        .append_pair("client_secret", CLIENT_SECRET)
        .finish();
    let (status, answer) = post_form(&server.token_url(), &body);
    assert_eq!(status, 200, "the old writer's refresh: {answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    tok["access_token"] = answer["access_token"].clone();
    tok["refresh_token"] = answer["refresh_token"].clone();
    tok["expires_at"] = in_secs(answer["expires_in"].as_i64().unwrap()).into();
    rt.block_on(sm.put_secret_value().secret_id(id).secret_string(tok.to_string()).send()).unwrap();
    tok
}

/// A form POST over a plain loopback connection: (status, body).
fn post_form(url: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let u = url::Url::parse(url).unwrap();
    let mut conn = std::net::TcpStream::connect((u.host_str().unwrap(), u.port().unwrap())).unwrap();
    write!(
        conn,
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        u.path(),
        u.host_str().unwrap(),
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw.split_once("\r\n\r\n").unwrap().1.to_owned())
}

#[test]
fn unstaged_reads_see_every_project_write_back() {
    let server = server();
    let t = table();
    let aws = Arc::new(backend(&t));
    let b = Backends { secrets: aws.clone(), registry: aws.clone() };
    let s = seed(&server, &b, &format!("un{}", std::process::id()), 86_000);
    let (rt, sm, _) = raw();
    let r = Resolver::new(aws_options(&server, &t)).unwrap();
    let mut seen = vec![s.access.clone()];
    for _ in 0..3 {
        let tok = r.force_refresh(Target::Secret(&s.secret_id)).unwrap();
        let read = unstaged(&rt, &sm, &s.secret_id);
        assert_eq!(read["access_token"], tok.access_token.secret(), "an unstaged read sees the write-back");
        assert!(server.refresh_token_live(read["refresh_token"].as_str().unwrap()));
        assert_eq!(current_versions(&rt, &sm, &s.secret_id).len(), 1, "one AWSCURRENT");
        assert!(!seen.iter().any(|s| tok.access_token == *s), "each refresh rotated");
        seen.push(tok.access_token.secret().to_owned());
    }
    // The aside label of the compare-and-swap stays on one version (the latest write), never piles up.
    let versions =
        rt.block_on(sm.list_secret_version_ids().secret_id(&s.secret_id).include_deprecated(true).send()).unwrap();
    let aside: Vec<_> = versions
        .versions()
        .iter()
        .filter(|v| v.version_stages().iter().any(|l| l == "LINEAR_OAUTH_PENDING"))
        .map(|v| v.version_stages().to_vec())
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(aside[0].iter().any(|l| l == "AWSCURRENT"), "on the current version: {aside:?}");
}

#[test]
fn an_old_style_writer_interleaved_with_the_project_loses_no_token() {
    let server = server();
    let t = table();
    let aws = Arc::new(backend(&t));
    let b = Backends { secrets: aws.clone(), registry: aws.clone() };
    let s = seed(&server, &b, &format!("ow{}", std::process::id()), 86_000);
    let (rt, sm, _) = raw();
    let r = Resolver::new(aws_options(&server, &t)).unwrap();
    for round in 0..3 {
        let ours = r.force_refresh(Target::Secret(&s.secret_id)).unwrap();
        assert_eq!(unstaged(&rt, &sm, &s.secret_id)["access_token"], ours.access_token.secret(), "round {round}");
        // The old writer refreshes from what it reads: the project's token.
        let theirs = old_style_refresh(&server, &rt, &sm, &s.secret_id);
        assert_eq!(current_versions(&rt, &sm, &s.secret_id).len(), 1, "one AWSCURRENT after a plain put");
        // The project picks the old writer's token up, and refreshes from it next round.
        r.invalidate(&s.workspace_id);
        assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token, theirs["access_token"].as_str().unwrap());
    }
    let last = unstaged(&rt, &sm, &s.secret_id);
    assert!(server.refresh_token_live(last["refresh_token"].as_str().unwrap()), "the chain is intact");
    assert_eq!(server.counters().invalid_grant, 0, "nobody refreshed with a spent token");
    assert_eq!(last["team_hint"]["kept"], true, "unknown fields survive both writers");
}

/// Runs `before_put` once, just before the project's first write-back.
struct WriteBeforeUs {
    inner: Arc<AwsBackend>,
    before_put: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl std::fmt::Debug for WriteBeforeUs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBeforeUs").finish_non_exhaustive()
    }
}

impl SecretStore for WriteBeforeUs {
    fn get(&self, id: &str) -> Result<Option<linear_oauth_host::Versioned>, Error> {
        SecretStore::get(&*self.inner, id)
    }
    fn put(&self, id: &str, value: &str, expected: Option<&str>) -> Result<PutOutcome, Error> {
        if let Some(hook) = self.before_put.lock().unwrap().take() {
            hook();
        }
        SecretStore::put(&*self.inner, id, value, expected)
    }
    fn delete(&self, id: &str) -> Result<bool, Error> {
        self.inner.delete(id)
    }
}

#[test]
fn an_old_style_write_during_a_refresh_is_not_overwritten() {
    let server = server();
    let t = table();
    let aws = Arc::new(backend(&t));
    let real = Backends { secrets: aws.clone(), registry: aws.clone() };
    let s = seed(&server, &real, &format!("ov{}", std::process::id()), 10);
    // While the project refreshes, an old tool re-installs: a new grant, put without stages.
    let fresh = server.issue_tokens(CLIENT_ID, "read write", 86_399);
    let value = token_json(&fresh.access_token, &fresh.refresh_token, &in_secs(86_399), &s.workspace_id, "ov");
    let id = s.secret_id.clone();
    let hook: Box<dyn FnOnce() + Send> = Box::new(move || {
        let (rt, sm, _) = raw();
        rt.block_on(sm.put_secret_value().secret_id(&id).secret_string(value).send()).unwrap();
    });
    let wrapped = Backends {
        secrets: Arc::new(WriteBeforeUs { inner: aws.clone(), before_put: Mutex::new(Some(hook)) }),
        registry: aws.clone(),
    };
    let r = Resolver::with_backends(aws_options(&server, &t), wrapped).unwrap();
    r.resolve(&s.workspace_id).unwrap();
    let (rt, sm, _) = raw();
    let now = unstaged(&rt, &sm, &s.secret_id);
    assert_eq!(now["access_token"], fresh.access_token.as_str(), "the compare-and-swap kept the newer install");
    assert_eq!(current_versions(&rt, &sm, &s.secret_id).len(), 1);
    assert!(server.refresh_token_live(now["refresh_token"].as_str().unwrap()));
}

/// Requests sent between two snapshots of the counter, by operation.
fn sent(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(op, n)| {
            (
                op.trim_start_matches("secretsmanager.").trim_start_matches("DynamoDB_20120810.").to_owned(),
                n - before.get(op).copied().unwrap_or(0),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn ops(list: &[(&str, u64)]) -> BTreeMap<String, u64> {
    list.iter().map(|(op, n)| ((*op).to_owned(), *n)).collect()
}

/// Polls until `f` holds (a release landing on a worker thread).
fn eventually(what: &str, f: impl Fn() -> bool) {
    let t = std::time::Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The AWS requests of a refresh on the caller's critical path (sent before
/// it has its token), per path, counted at the SDK (every attempt) so the
/// numbers cannot creep back up. What each request buys:
/// - GetItem, the registry row: the secret's name derives from the slug, not
///   the workspace id, and only an `active` row resolves. A cold process has
///   no other source for either; a warm one checks the row it remembers in
///   the request that takes the lease instead.
/// - GetSecretValue: the refresh token lives only in the secret, and another
///   process may have refreshed it already (then nothing else is sent).
/// - UpdateItem (or TransactWriteItems, warm), taking the lease: one POST per
///   expiry across processes; the lease item also says whether anybody
///   refreshed since the read (no second GetSecretValue) and whether a holder
///   died mid-refresh (crash takeover).
/// - PutSecretValue + UpdateSecretVersionStage: the compare-and-swap write-
///   back. Secrets Manager has no conditional put; the new version goes in
///   aside and `AWSCURRENT` moves to it only from the version read, which
///   also stops an overwrite of writers that take no lease (the old tooling,
///   a holder presumed dead).
/// - UpdateItem, the release: after the caller has its token, in every host.
///
/// So: by secret id 4; by workspace id 4 in a warm process, 5 in a cold one,
/// the fifth being the row read. The CLI (a new process per command) is cold
/// the first time in a cache directory; it keeps the row it read as a hint in
/// a file there, so later commands take the warm route: 4.
#[test]
fn a_refresh_sends_few_aws_requests() {
    let server = server();
    let t = table();
    let aws = Arc::new(backend(&t));
    let b = Backends { secrets: aws.clone(), registry: aws.clone() };
    let s = seed(&server, &b, &format!("rq{}", std::process::id()), 10);
    // Every refresh stores a token that is due again (30 s < the 60 s threshold).
    server.set_faults(FaultsPatch { expires_in: Some(30), ..Default::default() });
    let cold = ops(&[
        ("GetItem", 1),                  // registry row
        ("GetSecretValue", 1),           // stored token: expiring
        ("UpdateItem", 1),               // take the lease (it says nobody refreshed since the read)
        ("PutSecretValue", 1),           // the new version, labelled aside
        ("UpdateSecretVersionStage", 1), // AWSCURRENT moves to it only from the version read
    ]);

    let warm = ops(&[
        ("GetSecretValue", 1),
        ("TransactWriteItems", 1), // the lease, if the remembered row is still active and names this secret
        ("PutSecretValue", 1),
        ("UpdateSecretVersionStage", 1),
    ]);

    // The CLI: a new process by workspace id, its releases held until the
    // caller has the token (hosts/cli hands them to a process that outlives
    // it), its hints in a file in `cache` (hosts/cli: ~/.cache/linear-oauth).
    let cli = |cache: Option<&std::path::Path>| {
        let held = Arc::new(DeferredRelease::held(aws.clone()));
        let backends = Backends { secrets: aws.clone(), registry: held.clone() };
        let hints = cache.map(|d| Arc::new(FileHints::new(d, &t)) as Arc<dyn HintStore>);
        let o = Options { lifetime: Some(Lifetime::Command), hints, ..aws_options(&server, &t) };
        let r = Resolver::with_backends(o, backends).unwrap();
        let before = aws.requests();
        let tok = r.resolve(&s.workspace_id).unwrap();
        let critical = sent(&before, &aws.requests());
        held.finish_pending();
        assert_eq!(unstaged_value(&s.secret_id)["access_token"], tok.access_token.secret());
        (critical, sent(&before, &aws.requests()))
    };
    // The first refresh in a table finds no lease item yet, so it reads the secret again.
    let (first, _) = cli(None);
    let mut first_expected = cold.clone();
    *first_expected.get_mut("GetSecretValue").unwrap() += 1;
    assert_eq!(first, first_expected, "the first refresh of a secret");
    let (critical, all) = cli(None);
    assert_eq!(critical, cold, "the CLI without a hint file: 5 before the caller has its token");
    assert_eq!(all.get("UpdateItem"), Some(&2), "and the release afterwards");
    let cache = std::env::temp_dir().join(format!("lo-aws-hints-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let (critical, _) = cli(Some(&cache));
    assert_eq!(critical, cold, "the CLI's first refresh in a fresh cache directory: 5");
    for run in 0..2 {
        let (critical, all) = cli(Some(&cache));
        assert_eq!(critical, warm, "a later CLI refresh takes the warm route (run {run}): 4");
        assert_eq!(all.get("UpdateItem"), Some(&1), "and the release afterwards (run {run})");
    }
    let file = std::fs::read_to_string(FileHints::new(&cache, &t).path()).unwrap();
    assert!(file.contains(&s.secret_id), "the hint names the row: {file}");
    let stored = unstaged_value(&s.secret_id);
    for field in ["access_token", "refresh_token", "client_secret"] {
        let value = stored[field].as_str().unwrap();
        assert!(!file.contains(value), "{field} in the hint file");
    }
    assert!(!file.contains(&s.refresh) && !file.contains(&s.access) && !file.contains(CLIENT_SECRET));
    std::fs::remove_dir_all(&cache).unwrap();

    // Long-lived hosts: the release goes to a worker thread (gated here).
    let gated = |rx: std::sync::mpsc::Receiver<()>| {
        let rx = Mutex::new(rx);
        Backends {
            secrets: aws.clone(),
            // Holds each release until the test opens the gate (one per message),
            // so what was sent before the caller got its token counts exactly.
            registry: Arc::new(DeferredRelease::new(Arc::new(ObservedReleases {
                inner: aws.clone(),
                before_release: move |_: &str| {
                    let _ = rx.lock().unwrap().recv();
                },
            }))),
        }
    };
    let released = |before: &BTreeMap<String, u64>, n| {
        eventually("the release", || sent(before, &aws.requests()).get("UpdateItem") == Some(&n));
    };
    // By secret id (the agent's path): no registry row at all.
    let (open, rx) = std::sync::mpsc::channel();
    let r = Resolver::with_backends(aws_options(&server, &t), gated(rx)).unwrap();
    let before = aws.requests();
    let tok = r.resolve_secret(&s.secret_id).unwrap();
    let mut by_secret = cold.clone();
    by_secret.remove("GetItem");
    assert_eq!(sent(&before, &aws.requests()), by_secret, "by secret id");
    open.send(()).unwrap();
    released(&before, 2);
    assert_eq!(unstaged_value(&s.secret_id)["access_token"], tok.access_token.secret());
    drop(r);

    // By workspace id: the first resolve of a process reads the row; later
    // ones (rows cached for cache_ttl, refreshes hours apart) check the row
    // they remember in the transaction that takes the lease.
    let (open, rx) = std::sync::mpsc::channel();
    let ttl = Duration::from_millis(100);
    let r = Resolver::with_backends(Options { cache_ttl: ttl, ..aws_options(&server, &t) }, gated(rx)).unwrap();
    let before = aws.requests();
    r.resolve(&s.workspace_id).unwrap();
    assert_eq!(sent(&before, &aws.requests()), cold, "cold, by workspace id");
    open.send(()).unwrap();
    released(&before, 2);
    for round in 0..2 {
        std::thread::sleep(ttl + Duration::from_millis(20)); // the row cache lapses
        let before = aws.requests();
        let tok = r.resolve(&s.workspace_id).unwrap();
        assert_eq!(sent(&before, &aws.requests()), warm, "warm, by workspace id (round {round})");
        open.send(()).unwrap();
        released(&before, 1);
        assert_eq!(unstaged_value(&s.secret_id)["access_token"], tok.access_token.secret());
    }
    assert_eq!(server.counters().invalid_grant, 0);
}

/// `inspect --workspace` reads one registry item, not the whole table.
#[test]
fn inspect_by_workspace_reads_one_row() {
    let server = server();
    let t = table();
    let aws = Arc::new(backend(&t));
    let b = Backends { secrets: aws.clone(), registry: aws.clone() };
    let s = seed(&server, &b, &format!("in{}", std::process::id()), 3600);
    let r = Resolver::with_backends(aws_options(&server, &t), b.clone()).unwrap();
    for target in [Target::Workspace(&s.workspace_id), Target::Secret(&s.secret_id)] {
        let before = aws.requests();
        let i = r.inspect(target).unwrap();
        assert_eq!(i.registry.map(|row| row.workspace_id), Some(s.workspace_id.clone()));
        assert_eq!(sent(&before, &aws.requests()), ops(&[("GetItem", 1), ("GetSecretValue", 1)]), "{target:?}");
    }
}

/// A warm process resolving by workspace id does not read the row before a
/// refresh, yet never serves a workspace whose row is no longer active, and
/// reports it as revoked (not as the invalid_grant or missing secret its
/// refresh would otherwise end in); a row naming another secret is followed.
#[test]
fn a_warm_resolve_checks_the_row_it_remembers() {
    remembered_row_cases(Route::Warm);
}

/// The same for the CLI: each command a new process, the remembered row a
/// hint in a file that outlives it, so the hint may be days old.
#[test]
fn a_cli_resolve_checks_the_row_its_hint_file_names() {
    remembered_row_cases(Route::Cli);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// One long-lived resolver whose row cache lapses between calls.
    Warm,
    /// A new short-lived resolver per call, hints in a file.
    Cli,
}

fn remembered_row_cases(route: Route) {
    let server = server();
    let t = table();
    let aws = Arc::new(backend(&t));
    let b = Backends { secrets: aws.clone(), registry: aws.clone() };
    server.set_faults(FaultsPatch { expires_in: Some(30), ..Default::default() });
    let ttl = Duration::from_millis(50);
    let warm = Resolver::with_backends(Options { cache_ttl: ttl, ..aws_options(&server, &t) }, b.clone()).unwrap();
    let cache = std::env::temp_dir().join(format!("lo-aws-row-hints-{}-{t}", std::process::id()));
    // The resolver of the next call: the warm one once its row cache lapsed,
    // or a new CLI "process" on the hint file.
    let next = || match route {
        Route::Warm => {
            std::thread::sleep(ttl + Duration::from_millis(20));
            warm.clone()
        }
        Route::Cli => {
            let hints: Arc<dyn HintStore> = Arc::new(FileHints::new(&cache, &t));
            let o = Options { lifetime: Some(Lifetime::Command), hints: Some(hints), ..aws_options(&server, &t) };
            Resolver::with_backends(o, b.clone()).unwrap()
        }
    };
    let lease_free = |secret_id: &str| {
        let free =
            aws.try_lease(&format!("refresh:{secret_id}"), "probe", Duration::from_secs(5), "").unwrap().acquired;
        aws.release_lease(&format!("refresh:{secret_id}"), "probe").unwrap();
        free
    };
    let tag = match route {
        Route::Warm => "w",
        Route::Cli => "c",
    };

    // Another tool flips the status; the grant is alive and the secret untouched.
    let a = seed(&server, &b, &format!("{tag}a{}", std::process::id()), 10);
    next().resolve(&a.workspace_id).unwrap();
    let row = |s: &Seeded, status: &str| linear_oauth_host::RegistryRow {
        workspace_id: s.workspace_id.clone(),
        workspace_slug: s.secret_id.trim_start_matches("bgagent-linear-oauth-").into(),
        secret_id: s.secret_id.clone(),
        status: status.into(),
    };
    Registry::put(&*aws, &row(&a, "revoked")).unwrap();
    let posts = server.counters().token_requests;
    let r = next();
    let before = aws.requests();
    assert!(matches!(r.resolve(&a.workspace_id), Err(Error::Revoked(_))));
    assert_eq!(server.counters().token_requests, posts, "no refresh of a revoked workspace");
    let tried = sent(&before, &aws.requests());
    assert_eq!(tried.get("TransactWriteItems"), Some(&1), "the remembered row was used: {tried:?}");
    assert_eq!(tried.get("GetItem"), Some(&1), "then read: {tried:?}");
    eventually("the lease free", || lease_free(&a.secret_id));
    // Active again: resolves again.
    Registry::put(&*aws, &row(&a, "active")).unwrap();
    next().resolve(&a.workspace_id).unwrap();

    // Revoked through the project with the secret purged: revoked, not secret-missing.
    let c = seed(&server, &b, &format!("{tag}c{}", std::process::id()), 10);
    next().resolve(&c.workspace_id).unwrap();
    let admin = Resolver::new(aws_options(&server, &t)).unwrap();
    assert!(admin.revoke(&c.workspace_id, true, true).unwrap().purged);
    assert!(matches!(next().resolve(&c.workspace_id), Err(Error::Revoked(_))));

    // Revoked at Linear (the grant is dead) and the status flipped, secret kept:
    // the refresh is never sent, so no reauthorization-required either.
    let d = seed(&server, &b, &format!("{tag}d{}", std::process::id()), 10);
    next().resolve(&d.workspace_id).unwrap();
    let stored: serde_json::Value =
        serde_json::from_str(&SecretStore::get(&*aws, &d.secret_id).unwrap().unwrap().value).unwrap();
    assert!(server.revoke_grant(stored["refresh_token"].as_str().unwrap()));
    Registry::put(&*aws, &row(&d, "revoked")).unwrap();
    assert!(matches!(next().resolve(&d.workspace_id), Err(Error::Revoked(_))));

    // Installed again under another secret: the row is followed.
    let e = seed(&server, &b, &format!("{tag}e{}", std::process::id()), 10);
    next().resolve(&e.workspace_id).unwrap();
    let moved = seed(&server, &b, &format!("{tag}m{}", std::process::id()), 86_000);
    // A reinstall writes the workspace's own id into its new secret (a
    // secret of another workspace would fail closed).
    let mut v: serde_json::Value =
        serde_json::from_str(&SecretStore::get(&*aws, &moved.secret_id).unwrap().unwrap().value).unwrap();
    v["workspace_id"] = e.workspace_id.clone().into();
    SecretStore::put(&*aws, &moved.secret_id, &v.to_string(), None).unwrap();
    Registry::put(
        &*aws,
        &linear_oauth_host::RegistryRow { workspace_id: e.workspace_id.clone(), ..row(&moved, "active") },
    )
    .unwrap();
    let posts = server.counters().token_requests;
    let tok = next().resolve(&e.workspace_id).unwrap();
    assert_eq!(tok.secret_id, moved.secret_id);
    assert_eq!(tok.access_token, moved.access, "the new secret's fresh token");
    assert_eq!(server.counters().token_requests, posts, "the old secret is not refreshed");
    assert!(lease_free(&e.secret_id), "nothing left held on the old secret");
    // The next call starts from the row it followed: the fresh token, no POST.
    assert_eq!(next().resolve(&e.workspace_id).unwrap().access_token, moved.access);

    // The row deleted (an operator cleaned up): not registered, as cold.
    let f = seed(&server, &b, &format!("{tag}f{}", std::process::id()), 10);
    next().resolve(&f.workspace_id).unwrap();
    delete_row(&t, &f.workspace_id);
    let posts = server.counters().token_requests;
    assert!(matches!(next().resolve(&f.workspace_id), Err(Error::NotRegistered(_))));
    assert_eq!(server.counters().token_requests, posts, "no refresh of an unregistered workspace");
    if route == Route::Cli {
        let file = std::fs::read_to_string(FileHints::new(&cache, &t).path()).unwrap();
        assert!(!file.contains(&f.workspace_id), "a deleted row's hint is forgotten: {file}");
        assert!(!file.contains(&d.workspace_id), "a revoked row's hint is forgotten: {file}");
        assert!(file.contains(&moved.secret_id), "the followed row is remembered: {file}");
        let _ = std::fs::remove_dir_all(&cache);
    }
}

fn delete_row(table: &str, workspace_id: &str) {
    let (rt, _, ddb) = raw();
    rt.block_on(
        ddb.delete_item().table_name(table).key("linear_workspace_id", AttributeValue::S(workspace_id.into())).send(),
    )
    .unwrap();
}

fn unstaged_value(id: &str) -> serde_json::Value {
    let (rt, sm, _) = raw();
    unstaged(&rt, &sm, id)
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
    assert_ne!(tok.access_token, s.access);
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
        let token = r.resolve(&s.workspace_id).unwrap().access_token.secret().to_owned();
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
