//! AWS requests on the caller's path, counted per operation, and the
//! remembered registry row a warm or CLI resolve checks instead of reading.

use super::*;

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
        assert_eq!(unstaged_value(&s.secret_id)["access_token"], tok.access_token().secret());
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
    assert_eq!(unstaged_value(&s.secret_id)["access_token"], tok.access_token().secret());
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
        assert_eq!(unstaged_value(&s.secret_id)["access_token"], tok.access_token().secret());
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
        ..Default::default()
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
    assert_eq!(tok.secret_id(), moved.secret_id);
    assert_eq!(tok.access_token(), moved.access, "the new secret's fresh token");
    assert_eq!(server.counters().token_requests, posts, "the old secret is not refreshed");
    assert!(lease_free(&e.secret_id), "nothing left held on the old secret");
    // The next call starts from the row it followed: the fresh token, no POST.
    assert_eq!(next().resolve(&e.workspace_id).unwrap().access_token(), moved.access);

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
