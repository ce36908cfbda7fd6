//! Fuzz-style property tests for the request decoder (`rpc::decode_request`): arbitrary bytes,
//! arbitrary JSON, and mutations of valid requests never panic, and the verdict always agrees
//! with an independent reading of JSON-RPC 2.0 §4.

use opconnect_ipc::rpc::{Request, Response, decode_request};
use opconnect_ipc::{RpcError, code};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A request object whose members are sometimes right, sometimes wrong, sometimes missing.
fn mutated_request() -> impl Strategy<Value = Value> {
    let jsonrpc = prop_oneof![3 => Just(Some(json!("2.0"))), 1 => Just(None), 1 => any_json().prop_map(Some)];
    let id = prop_oneof![
        2 => any::<i64>().prop_map(|i| Some(json!(i))),
        2 => "[a-z0-9-]{0,10}".prop_map(|s| Some(json!(s))),
        1 => Just(Some(Value::Null)),
        1 => Just(None),
        1 => any_json().prop_map(Some),
    ];
    let method = prop_oneof![3 => "[a-z.]{1,16}".prop_map(|m| Some(json!(m))), 1 => Just(None), 1 => any_json().prop_map(Some)];
    let params = prop_oneof![
        2 => Just(None),
        2 => any_json().prop_map(|v| Some(json!({ "v": v }))),
        1 => prop::collection::vec(any_json(), 0..3).prop_map(|v| Some(Value::Array(v))),
        1 => any_json().prop_map(Some),
    ];
    (jsonrpc, id, method, params).prop_map(|(jsonrpc, id, method, params)| {
        let mut obj = Map::new();
        for (key, value) in [
            ("jsonrpc", jsonrpc),
            ("id", id),
            ("method", method),
            ("params", params),
        ] {
            if let Some(value) = value {
                obj.insert(key.to_owned(), value);
            }
        }
        Value::Object(obj)
    })
}

/// §4, read independently of the decoder: is `value` a valid request object?
fn oracle(value: &Value) -> bool {
    let Some(obj) = value.as_object() else {
        return false;
    };
    obj.get("jsonrpc") == Some(&json!("2.0"))
        && obj.get("method").is_some_and(Value::is_string)
        && obj
            .get("id")
            .is_none_or(|id| id.is_string() || id.is_number() || id.is_null())
        && obj
            .get("params")
            .is_none_or(|p| p.is_object() || p.is_array() || p.is_null())
}

fn check_against_oracle(value: &Value) -> Result<(), TestCaseError> {
    let bytes = serde_json::to_vec(value).unwrap();
    // Compare with what the text says (a subnormal float may not survive print-and-parse).
    let value = &serde_json::from_slice::<Value>(&bytes).unwrap();
    match decode_request(&bytes) {
        Ok(request) => {
            prop_assert!(oracle(value), "accepted an invalid request: {value}");
            prop_assert_eq!(Some(&Value::String(request.method.clone())), value.get("method"));
            prop_assert_eq!(request.id.as_ref(), value.get("id"));
            prop_assert!(request.params.is_object() || request.params.is_array());
        }
        Err(rejection) => {
            prop_assert!(!oracle(value), "rejected a valid request: {value}");
            prop_assert!(!rejection.fatal, "valid JSON must not close the connection");
            let error = rejection.response.outcome.clone().unwrap_err();
            prop_assert_eq!(error.code, code::INVALID_REQUEST);
            // The answer must itself be a valid §5 response.
            let wire = serde_json::to_value(&rejection.response).unwrap();
            prop_assert_eq!(
                serde_json::from_value::<Response>(wire).unwrap(),
                rejection.response
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        match decode_request(&bytes) {
            Ok(request) => prop_assert!(request.params.is_object() || request.params.is_array()),
            Err(rejection) => {
                let code = rejection.response.outcome.unwrap_err().code;
                let is_json = serde_json::from_slice::<Value>(&bytes).is_ok();
                prop_assert_eq!(rejection.fatal, !is_json);
                prop_assert_eq!(code, if is_json { code::INVALID_REQUEST } else { code::PARSE_ERROR });
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = decode_request(text.as_bytes());
    }

    #[test]
    fn arbitrary_json_agrees_with_the_spec(value in any_json()) {
        check_against_oracle(&value)?;
    }

    #[test]
    fn mutated_requests_agree_with_the_spec(value in mutated_request()) {
        check_against_oracle(&value)?;
    }

    #[test]
    fn valid_requests_round_trip(id in any::<u32>(), method in "[a-z][a-z.]{0,20}", params in any_json()) {
        let params = json!({ "p": params });
        let request = Request::new(id, method, params);
        let bytes = serde_json::to_vec(&request).unwrap();
        let request: Request = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(decode_request(&bytes).unwrap(), request);
    }

    #[test]
    fn truncated_requests_are_parse_errors(cut in 0usize..60) {
        let bytes = serde_json::to_vec(&Request::new(1, "mail.fetch", json!({"uid": 4}))).unwrap();
        prop_assume!(cut < bytes.len());
        let rejection = decode_request(&bytes[..cut]).unwrap_err();
        prop_assert!(rejection.fatal);
        prop_assert_eq!(rejection.response.outcome.unwrap_err().code, code::PARSE_ERROR);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let rejection = decode_request(deep.as_bytes()).unwrap_err();
    assert!(rejection.fatal);
    let wrapped = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{{"a":{}1{}}}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    assert!(decode_request(wrapped.as_bytes()).is_err());
    assert_eq!(RpcError::parse_error("x").code, code::PARSE_ERROR);
}
