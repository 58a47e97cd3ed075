//! The project next to the old Lambdas' and boto3's unstaged reads and
//! writes: no token is lost or overwritten either way.

use super::*;

/// An unstaged `GetSecretValue`, as the old Lambdas and boto3 read: Secrets
/// Manager answers it with the `AWSCURRENT` version.
pub(crate) fn unstaged(
    rt: &tokio::runtime::Runtime,
    sm: &aws_sdk_secretsmanager::Client,
    id: &str,
) -> serde_json::Value {
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
        assert_eq!(read["access_token"], tok.access_token().secret(), "an unstaged read sees the write-back");
        assert!(server.refresh_token_live(read["refresh_token"].as_str().unwrap()));
        assert_eq!(current_versions(&rt, &sm, &s.secret_id).len(), 1, "one AWSCURRENT");
        assert!(!seen.iter().any(|s| tok.access_token() == *s), "each refresh rotated");
        seen.push(tok.access_token().secret().to_owned());
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
        assert_eq!(unstaged(&rt, &sm, &s.secret_id)["access_token"], ours.access_token().secret(), "round {round}");
        // The old writer refreshes from what it reads: the project's token.
        let theirs = old_style_refresh(&server, &rt, &sm, &s.secret_id);
        assert_eq!(current_versions(&rt, &sm, &s.secret_id).len(), 1, "one AWSCURRENT after a plain put");
        // The project picks the old writer's token up, and refreshes from it next round.
        r.invalidate(&s.workspace_id);
        assert_eq!(r.resolve(&s.workspace_id).unwrap().access_token(), theirs["access_token"].as_str().unwrap());
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
