//! Property tests for core's parsers: the inputs come from Linear, from stores
//! other tools wrote, or from a browser, so they must hold for every input,
//! not only the examples in the unit tests and the shared vectors.

use linear_oauth_core::{
    claimed_organization, format_instant, freshness, normalize_scopes, parse_callback, parse_instant,
    parse_token_response, redact, verify_webhook, AccessToken, AuthorizeRequest, CallbackError, EndpointFailure,
    SchemaError, Signature, SigningSecret, StoredToken, TokenResponse, FIELDS, MAX_EXPIRES_IN_S, MAX_INSTANT_MS,
    MAX_TOKEN_LEN, MIN_INSTANT_MS,
};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value};

/// Modest case count so the suite stays fast; no regression files written.
fn config() -> Config {
    Config { cases: 256, failure_persistence: None, ..Config::default() }
}

/// Small arbitrary JSON values (unknown stored fields, odd token fields).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        // Short decimals: serde_json (without `float_roundtrip`) may be one
        // ULP off on extreme floats, which is its limit, not this crate's.
        (any::<i32>(), 0i32..6).prop_map(|(m, e)| Value::from(f64::from(m) / 10f64.powi(e))),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A non-blank string: what the stored-token schema accepts.
fn field_value() -> impl Strategy<Value = String> {
    ".{1,24}".prop_filter("blank", |s| !s.trim().is_empty())
}

/// Unknown fields: names that are not one of the eleven.
fn extras() -> impl Strategy<Value = Vec<(String, Value)>> {
    prop::collection::btree_map("[a-z_]{1,16}", json_value(), 0..4)
        .prop_map(|m| m.into_iter().filter(|(k, _)| !FIELDS.contains(&k.as_str())).collect())
}

/// One stored field's state for the "report every bad field" property.
#[derive(Debug, Clone)]
enum FieldState {
    Good(String),
    Missing,
    Blank(String),
    NotString(Value),
}

fn field_state() -> impl Strategy<Value = FieldState> {
    prop_oneof![
        4 => field_value().prop_map(FieldState::Good),
        1 => Just(FieldState::Missing),
        1 => "[ \t\n]{0,3}".prop_map(FieldState::Blank),
        1 => json_value().prop_filter("a string", |v| !v.is_string()).prop_map(FieldState::NotString),
    ]
}

/// RFC 6750 b64token.
fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._~+/-]{1,64}={0,2}"
}

/// A character no token may contain.
fn forbidden_char() -> impl Strategy<Value = char> {
    any::<char>().prop_filter("token char", |c| !(c.is_ascii_alphanumeric() || "-._~+/=".contains(*c)))
}

// ------------------------------------------------------------ spellings

fn hex_case(s: &str, lower: bool) -> String {
    // Lower-cases only the two hex digits after each '%'.
    let mut out = String::new();
    let mut pending = 0;
    for c in s.chars() {
        if pending > 0 {
            out.push(if lower { c.to_ascii_lowercase() } else { c });
            pending -= 1;
        } else {
            pending = if c == '%' { 2 } else { 0 };
            out.push(c);
        }
    }
    out
}

/// JSON with every non-printable or non-ASCII character as `\uXXXX`
/// (Python's `json.dumps` default), hex in either case.
fn json_ascii(s: &str, upper: bool) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&if upper { format!("\\u{u:04X}") } else { format!("\\u{u:04x}") });
                }
            }
        }
    }
    out
}

/// Every spelling a server is known to echo a secret in.
fn spellings(secret: &str) -> Vec<String> {
    let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let form20 = form.replace('+', "%20");
    let every_byte: String = secret.bytes().map(|b| format!("%{b:02X}")).collect();
    let json = serde_json::to_string(secret).unwrap();
    let json = json[1..json.len() - 1].to_owned();
    vec![
        secret.to_owned(),
        hex_case(&form, true),
        form.clone(),
        hex_case(&form20, true),
        form20,
        hex_case(&every_byte, true),
        every_byte,
        json.replace('/', "\\/"),
        json,
        json_ascii(secret, false),
        json_ascii(secret, true),
    ]
}

/// Secrets with awkward characters, never `[` or `]`, which the marker
/// `[redacted]` is made of (a secret built from the marker's own characters
/// could reappear across it).
fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9+/=&%\\\\\" ~!*'().,;:?#@$^{}<>|`\t\n\u{1}\u{e9}\u{1F600}_-]{4,24}"
}

proptest! {
    #![proptest_config(config())]

    // ------------------------------------------------------------ webhooks

    /// Any bytes and any header: a typed refusal or an event, never a panic,
    /// and no message quoting the secret or the header.
    #[test]
    fn webhook_input_never_panics(body in prop::collection::vec(any::<u8>(), 0..300), header in ".{0,70}", key in secret()) {
        let now = 1_800_000_000_000;
        let _ = claimed_organization(&body);
        if let Ok(sig) = Signature::parse(&header) {
            if let Err(e) = verify_webhook(&body, &sig, &SigningSecret::new(key.clone()), "stack", now, 60_000) {
                prop_assert!(!e.to_string().contains(&key));
            }
        } else if header.trim().len() > 8 {
            prop_assert!(!Signature::parse(&header).unwrap_err().to_string().contains(header.trim()));
        }
    }

    /// A body signed with the key verifies exactly as signed; one flipped byte never does.
    #[test]
    fn webhook_signature_binds_every_byte(data in json_value(), key in secret(), flip in any::<prop::sample::Index>()) {
        let now = 1_800_000_000_000_i64;
        let body = serde_json::json!({"type": "Issue", "webhookTimestamp": now, "data": data}).to_string().into_bytes();
        let sig = Signature::parse(&Signature::sign(&body, key.as_bytes())).unwrap();
        let secret = SigningSecret::new(key);
        let e = verify_webhook(&body, &sig, &secret, "stack", now, 60_000).unwrap();
        prop_assert_eq!(serde_json::from_str::<Value>(&e.data).unwrap(), serde_json::from_slice::<Value>(&body).unwrap()["data"].clone());
        let mut tampered = body.clone();
        let i = flip.index(tampered.len());
        tampered[i] ^= 0x20;
        prop_assert!(verify_webhook(&tampered, &sig, &secret, "stack", now, 60_000).is_err());
    }

    // ------------------------------------------------------- stored token

    #[test]
    fn stored_round_trip_keeps_every_field(values in prop::collection::vec(field_value(), 11), extra in extras()) {
        let mut map = Map::new();
        for (f, v) in FIELDS.iter().zip(&values) {
            map.insert((*f).to_owned(), Value::from(v.as_str()));
        }
        for (k, v) in &extra {
            map.insert(k.clone(), v.clone());
        }
        let t = StoredToken::parse(&Value::Object(map.clone()).to_string()).unwrap();
        prop_assert_eq!(t.access_token.secret(), values[0].as_str());
        prop_assert_eq!(t.refresh_token.as_ref().unwrap().secret(), values[1].as_str());
        prop_assert_eq!(t.client_secret.secret(), values[5].as_str());
        prop_assert_eq!(&t.installed_by_platform_user_id, &values[10]);
        let written: Value = serde_json::from_str(&t.to_json()).unwrap();
        let written = written.as_object().unwrap();
        prop_assert_eq!(written.len(), map.len());
        for (k, v) in &map {
            prop_assert_eq!(written.get(k), Some(v), "{}", k);
        }
        prop_assert_eq!(StoredToken::parse(&t.to_json()).unwrap(), t);
    }

    #[test]
    fn stored_reports_exactly_the_bad_fields(
        states in prop::collection::vec(field_state(), 11),
        extra in extras(),
        order in Just((0..11).collect::<Vec<usize>>()).prop_shuffle(),
    ) {
        let mut map = Map::new();
        for i in order {
            let v = match &states[i] {
                FieldState::Good(s) | FieldState::Blank(s) => Value::from(s.as_str()),
                FieldState::NotString(v) => v.clone(),
                FieldState::Missing => continue,
            };
            map.insert(FIELDS[i].to_owned(), v);
        }
        for (k, v) in extra {
            map.insert(k, v);
        }
        let want: Vec<String> = FIELDS
            .iter()
            .zip(&states)
            .filter(|(_, s)| !matches!(s, FieldState::Good(_)))
            .map(|(f, _)| (*f).to_owned())
            .collect();
        match StoredToken::parse(&Value::Object(map).to_string()) {
            Ok(_) => prop_assert!(want.is_empty()),
            Err(e) => {
                prop_assert_eq!(e.fields(), want.clone());
                prop_assert_eq!(e.problems(), want.clone());
                prop_assert_eq!(e, SchemaError::Fields(want));
            }
        }
    }

    #[test]
    fn stored_non_objects_are_named_as_such(s in ".{0,64}", v in json_value()) {
        match serde_json::from_str::<Value>(&s) {
            Err(_) => prop_assert_eq!(StoredToken::parse(&s), Err(SchemaError::NotJson)),
            Ok(Value::Object(_)) => prop_assert!(!matches!(StoredToken::parse(&s), Err(SchemaError::NotJson | SchemaError::NotAnObject))),
            Ok(_) => prop_assert_eq!(StoredToken::parse(&s), Err(SchemaError::NotAnObject)),
        }
        if !v.is_object() {
            prop_assert_eq!(StoredToken::parse(&v.to_string()), Err(SchemaError::NotAnObject));
        }
        // A truncated object is never mistaken for one with missing fields.
        let full = Value::Object(FIELDS.iter().map(|f| ((*f).to_owned(), Value::from("x"))).collect()).to_string();
        let cut = s.len() % (full.len() - 1);
        prop_assert_eq!(StoredToken::parse(&full[..cut]), Err(SchemaError::NotJson));
    }

    // ------------------------------------------------------- token response

    #[test]
    fn token_response_never_panics_on_bytes(status in any::<u16>(), body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_token_response(status, &body);
    }

    #[test]
    fn token_response_never_panics_on_odd_fields(
        fields in prop::collection::btree_map(
            prop::sample::select(vec!["access_token", "refresh_token", "expires_in", "scope", "token_type", "error"]),
            json_value(),
            0..6,
        ),
        status in prop::sample::select(vec![200u16, 201, 400, 401, 500]),
    ) {
        let body = Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()).to_string();
        if let Ok(t) = parse_token_response(status, body.as_bytes()) {
            prop_assert!((1..=MAX_EXPIRES_IN_S).contains(&t.expires_in));
        }
    }

    #[test]
    fn valid_token_responses_round_trip(
        access in token(),
        refresh in prop::option::of(token()),
        expires_in in 1..=MAX_EXPIRES_IN_S,
        as_string in any::<bool>(),
        words in prop::collection::vec("[a-z:]{1,12}", 0..5),
        seps in prop::collection::vec(prop::sample::select(vec![" ", ",", ", ", "  "]), 5),
        scope_as_array in any::<bool>(),
        now in 0i64..=4_102_444_800_000, // up to 2100
    ) {
        let mut v = serde_json::json!({ "access_token": access, "token_type": "Bearer" });
        v["expires_in"] = if as_string { Value::from(expires_in.to_string()) } else { Value::from(expires_in) };
        if let Some(r) = &refresh {
            v["refresh_token"] = Value::from(r.as_str());
        }
        if scope_as_array {
            v["scope"] = Value::from(words.clone());
        } else {
            let joined: String = words.iter().zip(&seps).map(|(w, s)| format!("{w}{s}")).collect();
            v["scope"] = Value::from(joined);
        }
        let t = parse_token_response(200, v.to_string().as_bytes()).unwrap();
        prop_assert_eq!(t.access_token.secret(), access.as_str());
        prop_assert_eq!(t.refresh_token.as_ref().map(|r| r.secret()), refresh.as_deref());
        prop_assert_eq!(t.expires_in, expires_in);
        let want_scope = (!words.is_empty()).then(|| words.join(" "));
        prop_assert_eq!(t.scope.clone(), want_scope);
        let expires_in_ms = i64::try_from(expires_in).unwrap() * 1000;
        prop_assert_eq!(parse_instant(&t.expires_at(now)), Some(now + expires_in_ms));
    }

    #[test]
    fn tokens_with_forbidden_characters_are_rejected(
        good in token(),
        bad in forbidden_char(),
        at in any::<prop::sample::Index>(),
        which in prop::sample::select(vec!["access_token", "refresh_token"]),
    ) {
        let mut chars: Vec<char> = good.chars().collect();
        chars.insert(at.index(chars.len() + 1), bad);
        let tainted: String = chars.into_iter().collect();
        let mut v = serde_json::json!({ "access_token": "a", "refresh_token": "r", "expires_in": 3600 });
        v[which] = Value::from(tainted.as_str());
        let r = parse_token_response(200, v.to_string().as_bytes());
        let Err(EndpointFailure::Malformed(m)) = r else {
            return Err(TestCaseError::fail(format!("{which}={tainted:?} accepted")));
        };
        prop_assert!(!m.contains(&tainted));
    }

    #[test]
    fn padding_only_at_the_end_and_length_bounded(good in token(), tail in "[A-Za-z0-9]{1,4}", extra in 1usize..64) {
        let mid = serde_json::json!({ "access_token": format!("{good}={tail}"), "expires_in": 60 });
        prop_assert!(parse_token_response(200, mid.to_string().as_bytes()).is_err());
        let long = serde_json::json!({ "access_token": "a".repeat(MAX_TOKEN_LEN + extra), "expires_in": 60 });
        prop_assert!(parse_token_response(200, long.to_string().as_bytes()).is_err());
    }

    #[test]
    fn expires_in_is_a_positive_bounded_integer(n in any::<i64>(), f in any::<f64>(), u in any::<u64>()) {
        let parse = |e: Value| parse_token_response(200, serde_json::json!({"access_token": "a", "expires_in": e}).to_string().as_bytes());
        let in_range = |x: i128| (1..=i128::from(MAX_EXPIRES_IN_S)).contains(&x);
        prop_assert_eq!(parse(Value::from(n)).is_ok(), in_range(i128::from(n)));
        prop_assert_eq!(parse(Value::from(u)).is_ok(), in_range(i128::from(u)));
        prop_assert_eq!(parse(Value::from(n.to_string())).is_ok(), in_range(i128::from(n)));
        // Every float spelling is refused, integral or not (Linear sends integers).
        if f.is_finite() {
            let body = format!(r#"{{"access_token":"a","expires_in":{f:?}}}"#);
            prop_assert!(parse_token_response(200, body.as_bytes()).is_err(), "{}", body);
        }
    }

    // ------------------------------------------------------- callback query

    #[test]
    fn callback_never_panics(query in ".{0,128}", state in ".{0,16}") {
        let _ = parse_callback(&query, &state);
    }

    #[test]
    fn callback_state_mismatch_never_yields_a_code(
        pairs in prop::collection::vec(
            (prop::sample::select(vec!["code", "state", "error", "error_description", "x"]), ".{0,12}"),
            0..6,
        ),
        expected in ".{1,12}",
        plant in any::<bool>(),
    ) {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if plant {
            q.append_pair("state", &expected);
        }
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        let query = q.finish();
        let first_state = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "state").map(|(_, v)| v.into_owned());
        let result = parse_callback(&query, &expected);
        if first_state.as_deref() != Some(expected.as_str()) {
            prop_assert_eq!(result, Err(CallbackError::StateMismatch));
        } else if let Ok(code) = result {
            let first_code = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "code").map(|(_, v)| v.into_owned());
            prop_assert_eq!(Some(code.secret().to_owned()), first_code);
        }
    }

    #[test]
    fn callback_with_our_state_gives_the_code(code in ".{1,40}", state in ".{1,40}", leading_q in any::<bool>()) {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("code", &code).append_pair("state", &state);
        let query = format!("{}{}", if leading_q { "?" } else { "" }, q.finish());
        let got = parse_callback(&query, &state).unwrap();
        prop_assert_eq!(got.secret(), code.as_str());
    }

    // ------------------------------------------------------- authorize URL

    #[test]
    fn authorize_url_has_every_parameter(
        inputs in prop::collection::vec("[a-z:]{1,10}([ ,]{1,3}[a-z:]{1,10}){0,3}", 1..4),
        client_id in ".{1,20}",
        port in 1u16..,
        path in "[a-z/]{0,12}",
        state in ".{1,44}",
        challenge in "[A-Za-z0-9_-]{43}",
        actor_app in any::<bool>(),
        prompt_consent in any::<bool>(),
    ) {
        let scopes = normalize_scopes(&inputs);
        let redirect_uri = format!("http://localhost:{port}/{path}");
        let req = AuthorizeRequest {
            authorize_url: "https://linear.app/oauth/authorize",
            client_id: &client_id,
            redirect_uri: &redirect_uri,
            scopes: &scopes,
            state: &state,
            code_challenge: &challenge,
            actor_app,
            prompt_consent,
        };
        let url = url::Url::parse(&req.url().unwrap()).unwrap();
        let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let one = |k: &str| {
            let found: Vec<&String> = q.iter().filter(|(n, _)| n == k).map(|(_, v)| v).collect();
            (found.len() == 1).then(|| found[0].clone())
        };
        prop_assert_eq!(one("client_id"), Some(client_id.clone()));
        prop_assert_eq!(one("redirect_uri"), Some(redirect_uri.clone()));
        prop_assert_eq!(one("response_type"), Some("code".to_owned()));
        prop_assert_eq!(one("state"), Some(state.clone()));
        prop_assert_eq!(one("code_challenge"), Some(challenge.clone()));
        prop_assert_eq!(one("code_challenge_method"), Some("S256".to_owned()));
        prop_assert_eq!(one("actor").is_some(), actor_app);
        prop_assert_eq!(one("prompt"), prompt_consent.then(|| "consent".to_owned()));
        let scope = one("scope").unwrap();
        prop_assert!(!scope.contains(',') && !scope.contains("  "), "{}", scope);
        let want: Vec<&str> = inputs.iter().flat_map(|s| s.split([' ', ','])).filter(|w| !w.is_empty()).collect();
        prop_assert_eq!(scope.split(' ').collect::<Vec<_>>(), want);
    }

    // ------------------------------------------------------- expiry arithmetic

    #[test]
    fn freshness_is_monotone_in_now(exp in any::<i64>(), a in any::<i64>(), b in any::<i64>(), threshold in any::<u64>()) {
        let expires_at = format_instant(exp);
        let (early, late) = (a.min(b), a.max(b));
        if freshness(&expires_at, early, threshold).needs_refresh() {
            prop_assert!(freshness(&expires_at, late, threshold).needs_refresh());
        }
    }

    #[test]
    fn expiry_arithmetic_never_panics_and_never_wraps(now in any::<i64>(), expires_in in any::<u64>()) {
        let t = TokenResponse {
            access_token: AccessToken::new("a"),
            token_type: None,
            expires_in,
            scope: None,
            refresh_token: None,
        };
        let at = parse_instant(&t.expires_at(now)).unwrap();
        let want = i128::from(now) + i128::from(expires_in) * 1000;
        let clamped = want.clamp(i128::from(MIN_INSTANT_MS), i128::from(MAX_INSTANT_MS));
        prop_assert_eq!(i128::from(at), clamped);
    }

    #[test]
    fn instants_round_trip_or_clamp(ms in any::<i64>()) {
        prop_assert_eq!(parse_instant(&format_instant(ms)), Some(ms.clamp(MIN_INSTANT_MS, MAX_INSTANT_MS)));
    }

    // ------------------------------------------------------- redaction

    #[test]
    fn no_spelling_of_a_secret_survives(
        secrets in prop::collection::vec(secret(), 1..4),
        noise in prop::collection::vec(".{0,8}", 12),
    ) {
        let all: Vec<(usize, String)> = secrets
            .iter()
            .enumerate()
            .flat_map(|(i, s)| spellings(s).into_iter().map(move |sp| (i, sp)))
            .collect();
        let mut text = String::new();
        for (k, (_, spelled)) in all.iter().enumerate() {
            text.push_str(&noise[k % noise.len()]);
            text.push_str(spelled);
        }
        let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let out = redact(&text, &refs);
        for (i, spelled) in &all {
            prop_assert!(!out.contains(spelled.as_str()), "secret {} survives as {:?} in {:?}", i, spelled, out);
        }
        prop_assert!(out.contains("[redacted]"));
        // The same through the error path hosts see.
        let e = EndpointFailure::Error { status: 400, code: Some(text.clone()), description: Some(text.clone()) }.redacted(&refs);
        let EndpointFailure::Error { code, description, .. } = e else { unreachable!() };
        prop_assert_eq!(code.as_deref(), Some(out.as_str()));
        prop_assert_eq!(description.as_deref(), Some(out.as_str()));
    }

    #[test]
    fn text_without_secrets_is_unchanged(
        secret in secret().prop_filter("only noise characters", |s| s.chars().any(|c| !c.is_ascii_lowercase() && c != ' ')),
        text in "[a-z ]{0,80}",
    ) {
        prop_assert_eq!(redact(&text, &[&secret]), text);
    }

    #[test]
    fn redact_never_panics(text in ".{0,64}", secrets in prop::collection::vec(".{0,8}", 0..3)) {
        let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let _ = redact(&text, &refs);
    }
}
