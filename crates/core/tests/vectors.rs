//! The shared JSON vectors in `tests/vectors/`, which every host's tests run too.

use linear_oauth_core::{parse_callback, parse_token_response, CallbackError, EndpointFailure, StoredToken};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/../../tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn stored_tokens() {
    let v = load("stored_tokens.json");
    for case in v["vectors"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let result = StoredToken::parse(case["value"].as_str().unwrap());
        if case["valid"].as_bool().unwrap() {
            let t = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            let again = StoredToken::parse(&t.to_json()).unwrap();
            assert_eq!(again, t, "{name}: round trip");
        } else {
            let want: Vec<String> = serde_json::from_value(case["bad_fields"].clone()).unwrap();
            assert_eq!(result.unwrap_err().problems(), want, "{name}");
        }
    }
}

#[test]
fn token_responses() {
    let v = load("token_responses.json");
    for case in v["vectors"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let status = case["status"].as_u64().unwrap() as u16;
        let expect = &case["expect"];
        match parse_token_response(status, case["body"].as_str().unwrap().as_bytes()) {
            Ok(t) => {
                assert!(expect["ok"].as_bool().unwrap(), "{name}: parsed but should fail");
                assert_eq!(t.expires_in, expect["expires_in"].as_u64().unwrap(), "{name}");
                assert_eq!(t.scope.as_deref(), expect["scope"].as_str(), "{name}");
                assert_eq!(t.refresh_token.is_some(), expect["has_refresh_token"].as_bool().unwrap(), "{name}");
            }
            Err(f) => {
                assert!(!expect["ok"].as_bool().unwrap(), "{name}: failed but should parse");
                match (&f, expect["kind"].as_str().unwrap()) {
                    (EndpointFailure::Malformed(_), "malformed") => {}
                    (EndpointFailure::Error { status: s, code, description }, "endpoint") => {
                        assert_eq!(*s, status);
                        assert_eq!(code.as_deref(), expect["code"].as_str(), "{name}");
                        assert_eq!(description.as_deref(), expect["description"].as_str(), "{name}");
                        assert_eq!(f.is_invalid_grant(), expect["invalid_grant"].as_bool().unwrap(), "{name}");
                    }
                    (f, kind) => panic!("{name}: got {f:?}, want {kind}"),
                }
            }
        }
    }
}

#[test]
fn callback_queries() {
    let v = load("callback_queries.json");
    let state = v["expected_state"].as_str().unwrap();
    for case in v["vectors"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let expect = &case["expect"];
        match (parse_callback(case["query"].as_str().unwrap(), state), expect["kind"].as_str()) {
            (Ok(code), None) => assert_eq!(code.secret(), expect["code"].as_str().unwrap(), "{name}"),
            (Err(CallbackError::StateMismatch), Some("state_mismatch"))
            | (Err(CallbackError::MissingCode), Some("missing_code")) => {}
            (Err(CallbackError::Denied { error, description }), Some("denied")) => {
                assert_eq!(Some(error.as_str()), expect["error"].as_str(), "{name}");
                assert_eq!(description.as_deref(), expect["description"].as_str(), "{name}");
            }
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}
