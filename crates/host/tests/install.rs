//! Installing a workspace through the host API, the test playing the browser.

mod common;

use common::*;
use linear_oauth_host::{Error, InstallParams};
use linear_oauth_testserver::fixtures;

fn browser_get(url: &str) -> (u16, Option<String>) {
    fixtures::browser_get(url).unwrap()
}

fn params() -> InstallParams {
    InstallParams {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        redirect_uri: "http://localhost:8080/oauth/callback".into(),
        scopes: vec!["read,write".into(), "app:assignable app:mentionable".into()],
        actor_app: true,
        prompt_consent: true,
        secret_id: None,
    }
}

#[test]
fn full_install_then_resolve() {
    let server = server();
    let b = memory();
    let r = resolver_with(&server, &b, None);
    let p = params();
    let pending = r.begin_install(&p).unwrap();
    assert!(
        pending.authorize_url.contains("scope=read+write+app%3Aassignable+app%3Amentionable"),
        "{}",
        pending.authorize_url
    );
    let debug = format!("{pending:?}");
    assert!(debug.contains("code_verifier: [redacted]"), "the PKCE verifier stays out of Debug: {debug}");
    let (status, location) = browser_get(&pending.authorize_url);
    assert_eq!(status, 302);
    let location = location.unwrap();
    assert_eq!(server.counters().last_actor.as_deref(), Some("app"));
    let query = &location[location.find('?').unwrap()..];
    let code = r.parse_callback(&pending, query).unwrap();
    assert!(!format!("{code:?}").contains(&query[6..12]));
    let installed = r.complete_install(&p, pending, code, "platform-user-9").unwrap();
    assert_eq!(installed.workspace_slug, "testws");
    assert_eq!(installed.secret_id, "bgagent-linear-oauth-testws");
    assert!(!installed.replaced);
    assert_eq!(installed.scope, "read write app:assignable app:mentionable");
    let stored = stored(&b, &installed.secret_id);
    assert_eq!(stored["installed_by_platform_user_id"], "platform-user-9");
    assert_eq!(stored["client_secret"], CLIENT_SECRET);
    let t = r.resolve(&installed.workspace_id).unwrap();
    assert_eq!(t.access_token(), stored["access_token"].as_str().unwrap());

    // Installing again updates the same secret and row.
    let pending = r.begin_install(&p).unwrap();
    let (_, location) = browser_get(&pending.authorize_url);
    let location = location.unwrap();
    let code = r.parse_callback(&pending, &location[location.find('?').unwrap()..]).unwrap();
    let again = r.complete_install(&p, pending, code, "platform-user-9").unwrap();
    assert!(again.replaced);
    assert_ne!(
        r.resolve(&installed.workspace_id).unwrap().access_token(),
        t.access_token(),
        "cache dropped on reinstall"
    );
    assert_eq!(b.registry.list().unwrap().len(), 1);
}

#[test]
fn callback_failures() {
    let server = server();
    let b = memory();
    let r = resolver_with(&server, &b, None);
    let pending = r.begin_install(&params()).unwrap();
    let err = r.parse_callback(&pending, "code=abc&state=forged").unwrap_err();
    assert!(matches!(&err, Error::Authorization { code: Some(c), .. } if c == "state_mismatch"), "{err:?}");
    let q = format!("error=access_denied&error_description=nope&state={}", pending.state());
    let err = r.parse_callback(&pending, &q).unwrap_err();
    assert!(matches!(&err, Error::Authorization { code: Some(c), .. } if c == "access_denied"), "{err:?}");
}

#[test]
fn bad_code_or_client_is_a_typed_error_and_writes_nothing() {
    let server = server();
    let b = memory();
    let r = resolver_with(&server, &b, None);
    let p = params();
    let pending = r.begin_install(&p).unwrap();
    let code = r.parse_callback(&pending, &format!("code=made-up&state={}", pending.state())).unwrap();
    let err = r.complete_install(&p, pending, code, "u").unwrap_err();
    assert!(matches!(&err, Error::TokenEndpoint { status: 400, code: Some(c), .. } if c == "invalid_grant"), "{err:?}");
    assert!(b.registry.list().unwrap().is_empty());

    let mut bad = params();
    bad.scopes = vec!["admin".into()];
    assert!(matches!(r.begin_install(&bad), Err(Error::InvalidInput(_))));
    bad.scopes = vec![];
    assert!(matches!(r.begin_install(&bad), Err(Error::InvalidInput(_))));
    let mut no_actor = params();
    no_actor.actor_app = false;
    let pending = r.begin_install(&no_actor).unwrap();
    assert!(!pending.authorize_url.contains("actor="));
}

/// Issue 22, section 4: `prompt=consent` by default (off on request), and
/// with `actor=app` the viewer's id stored as `app_user_id`, shown by
/// `inspect`; an install without `actor=app` stores none.
#[test]
fn prompt_consent_and_the_app_user_id() {
    let server = server();
    let b = memory();
    let r = resolver_with(&server, &b, None);
    let install = |p: &InstallParams| {
        let pending = r.begin_install(p).unwrap();
        let (status, location) = browser_get(&pending.authorize_url);
        assert_eq!(status, 302);
        let location = location.unwrap();
        let code = r.parse_callback(&pending, &location[location.find('?').unwrap()..]).unwrap();
        (pending.authorize_url.clone(), r.complete_install(p, pending, code, "u").unwrap())
    };
    let (url, installed) = install(&params());
    assert!(url.contains("prompt=consent"), "{url}");
    assert_eq!(server.counters().last_prompt.as_deref(), Some("consent"));
    assert_eq!(installed.app_user_id.as_deref(), Some(installed.viewer_id.as_str()));
    assert_eq!(stored(&b, &installed.secret_id)["app_user_id"], installed.viewer_id.as_str());
    let shown = r.inspect(linear_oauth_host::Target::Workspace(&installed.workspace_id)).unwrap();
    assert!(shown.fields.contains(&("app_user_id".into(), installed.viewer_id.clone())), "{:?}", shown.fields);
    assert!(shown.invalid_fields.is_empty());

    let plain = InstallParams { actor_app: false, prompt_consent: false, ..params() };
    let (url, again) = install(&plain);
    assert!(!url.contains("prompt="), "{url}");
    assert_eq!(server.counters().last_prompt, None);
    assert_eq!(again.app_user_id, None);
    assert!(stored(&b, &again.secret_id).get("app_user_id").is_none(), "the viewer is not an app user");
}

/// Linear's agents page: `admin` cannot be requested with `actor=app`. The
/// component refuses before any request; the test server refuses it too.
#[test]
fn admin_with_actor_app_is_refused_by_both() {
    let server = server();
    let b = memory();
    let r = resolver_with(&server, &b, None);
    let admin = InstallParams { scopes: vec!["read admin".into()], ..params() };
    assert!(matches!(r.begin_install(&admin), Err(Error::InvalidInput(m)) if m.contains("admin")));
    let pending = r.begin_install(&InstallParams { actor_app: false, ..admin }).unwrap();
    let (status, _) = browser_get(&format!("{}&actor=app", pending.authorize_url));
    assert_eq!(status, 400, "the test server refuses admin with actor=app");
    assert_eq!(server.counters().token_code_ok, 0);
}
