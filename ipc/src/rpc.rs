//! JSON-RPC 2.0 messages as opconnect speaks them (<https://www.jsonrpc.org/specification>).
//!
//! Section numbers below are the specification's. Deviations, deliberately kept small:
//! - Batches (§6) are not supported: an array gets one `-32600` answer.
//! - `"params": null` is read as absent (`{}`); §4.2 only allows an object or an array.
//! - Events are server-to-client notifications (§4.1) with method `event` (INTERFACE §4).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// The IPC protocol version reported by `hello` (INTERFACE §4, "protocol version 1").
pub const PROTOCOL_VERSION: u32 = 1;

/// §4: "jsonrpc … MUST be exactly "2.0"".
pub const JSONRPC_VERSION: &str = "2.0";

/// Method of the notifications that carry events (INTERFACE §4).
pub const EVENT_METHOD: &str = "event";

/// Method the server answers itself; it is never passed to the `Service`.
pub const SUBSCRIBE_METHOD: &str = "subscribe";

/// Error codes: §5.1 for the negative ones, INTERFACE §4 for the application's own.
pub mod code {
    /// §5.1: invalid JSON was received.
    pub const PARSE_ERROR: i64 = -32700;
    /// §5.1: the JSON sent is not a valid Request object (also: a frame over the size limit).
    pub const INVALID_REQUEST: i64 = -32600;
    /// §5.1: the method does not exist.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// §5.1: invalid method parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// §5.1: internal JSON-RPC error.
    pub const INTERNAL_ERROR: i64 = -32603;
    pub const UNKNOWN_ACCOUNT: i64 = 1;
    pub const NOT_SUPPORTED: i64 = 2;
    pub const AUTH_FAILED: i64 = 3;
    pub const UNREACHABLE: i64 = 4;
    pub const NOT_FOUND: i64 = 5;
    pub const CONFLICT: i64 = 6;
}

/// §5.1 Error object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, msg: impl Into<String>) -> Self {
        Self {
            code,
            message: msg.into(),
            data: None,
        }
    }

    /// Attaches §5.1's optional `data` member.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn parse_error(msg: impl Into<String>) -> Self {
        Self::new(code::PARSE_ERROR, msg)
    }

    pub fn invalid_request(msg: impl Into<String>) -> Self {
        Self::new(code::INVALID_REQUEST, msg)
    }

    pub fn invalid_params(msg: impl Into<String>) -> Self {
        Self::new(code::INVALID_PARAMS, msg)
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::new(code::METHOD_NOT_FOUND, format!("unknown method '{method}'"))
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(code::INTERNAL_ERROR, msg)
    }

    pub fn unknown_account(name: &str) -> Self {
        Self::new(code::UNKNOWN_ACCOUNT, format!("unknown account '{name}'"))
    }
}

/// §4 Request object. `id: None` (the member absent) makes it a notification (§4.1), which is
/// never answered; `"id": null` is kept as `Some(Value::Null)` and is answered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Request {
    pub jsonrpc: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub id: Option<Value>,
    pub method: String,
    #[serde(default = "empty_object")]
    pub params: Value,
}

impl Request {
    pub fn new(id: impl Into<Value>, method: impl Into<String>, params: Value) -> Self {
        Self {
            jsonrpc: JSONRPC_VERSION.into(),
            id: Some(id.into()),
            method: method.into(),
            params,
        }
    }

    /// §4.1: a request without `id`.
    pub fn notification(method: impl Into<String>, params: Value) -> Self {
        Self {
            jsonrpc: JSONRPC_VERSION.into(),
            id: None,
            method: method.into(),
            params,
        }
    }

    pub fn is_notification(&self) -> bool {
        self.id.is_none()
    }
}

/// §5 Response object: exactly one of `result` and `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawResponse", into = "RawResponse")]
pub struct Response {
    /// The request's id; `null` when it could not be determined (§5).
    pub id: Value,
    pub outcome: Result<Value, RpcError>,
}

impl Response {
    pub fn result(id: Value, result: Value) -> Self {
        Self {
            id,
            outcome: Ok(result),
        }
    }

    pub fn error(id: Value, error: RpcError) -> Self {
        Self {
            id,
            outcome: Err(error),
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct RawResponse {
    jsonrpc: String,
    #[serde(default)]
    id: Value,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<RpcError>,
}

impl TryFrom<RawResponse> for Response {
    type Error = String;
    fn try_from(raw: RawResponse) -> Result<Self, String> {
        let outcome = match (raw.result, raw.error) {
            (Some(result), None) => Ok(result),
            (None, Some(error)) => Err(error),
            _ => {
                return Err("a response has exactly one of 'result' and 'error' (JSON-RPC 2.0 §5)".into());
            }
        };
        Ok(Self { id: raw.id, outcome })
    }
}

impl From<Response> for RawResponse {
    fn from(r: Response) -> Self {
        let (result, error) = match r.outcome {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e)),
        };
        Self {
            jsonrpc: JSONRPC_VERSION.into(),
            id: r.id,
            result,
            error,
        }
    }
}

/// An event the agent emits; pushed as
/// `{"jsonrpc":"2.0","method":"event","params":{"topic":"state", ...data}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub topic: String,
    #[serde(flatten)]
    pub data: Map<String, Value>,
}

impl Event {
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            data: Map::new(),
        }
    }

    /// Adds one member to the event's data (`"topic"` is reserved and ignored).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let key = key.into();
        if key != "topic" {
            self.data.insert(key, value.into());
        }
        self
    }

    /// Whether a subscription to `topics` receives this event (see [`topic_matches`]).
    pub fn matches(&self, topics: &[String]) -> bool {
        topics.is_empty() || topics.iter().any(|t| topic_matches(t, &self.topic))
    }

    /// The §4.1 notification that carries this event. A `topic` key inside `data` cannot
    /// shadow the real topic, and never produces a duplicate key.
    pub fn to_notification(&self) -> Value {
        let mut params = Map::with_capacity(self.data.len() + 1);
        params.insert("topic".into(), Value::String(self.topic.clone()));
        for (k, v) in &self.data {
            if k != "topic" {
                params.insert(k.clone(), v.clone());
            }
        }
        serde_json::json!({ "jsonrpc": JSONRPC_VERSION, "method": EVENT_METHOD, "params": params })
    }
}

/// A subscription to `filter` receives `topic` when they are equal or `topic` is below it:
/// `"mail"` matches `"mail"` and `"mail.new"`, not `"mailbox"`.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    match topic.strip_prefix(filter) {
        Some(rest) => rest.is_empty() || rest.starts_with('.'),
        None => false,
    }
}

/// What a client receives: an answer to one of its calls, or an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Response(Response),
    Event(Event),
    /// Valid JSON that is neither (another notification, say); clients skip it.
    Other(Value),
}

impl Incoming {
    pub fn from_value(value: Value) -> Self {
        if value.get("method").and_then(Value::as_str) == Some(EVENT_METHOD)
            && let Some(params) = value.get("params")
            && let Ok(event) = Event::deserialize(params)
        {
            return Self::Event(event);
        }
        if value.get("method").is_none()
            && let Ok(response) = Response::deserialize(&value)
        {
            return Self::Response(response);
        }
        Self::Other(value)
    }
}

/// Why a frame is not a request the server can run, and how to answer it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The error answer to send (its id is `null` unless the request's id was readable).
    pub response: Response,
    /// §5.1 parse errors leave the stream's state unknown: the server closes the connection.
    pub fatal: bool,
}

/// Reads one frame's payload as a §4 Request. Never panics (see the fuzz test).
///
/// - not UTF-8, not JSON → `-32700`, fatal;
/// - JSON that is not a Request object (an array, a wrong `jsonrpc`, a `method` that is not a
///   string, `params` that is neither object nor array, an `id` that is not a string, number or
///   null) → `-32600`, answered even without an `id` (as in §7's examples), not fatal.
pub fn decode_request(payload: &[u8]) -> Result<Request, Rejection> {
    let reject = |id: Value, error: RpcError, fatal: bool| Rejection {
        response: Response::error(id, error),
        fatal,
    };
    let text = std::str::from_utf8(payload).map_err(|e| {
        reject(
            Value::Null,
            RpcError::parse_error(format!("request is not valid UTF-8: {e}")),
            true,
        )
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        reject(
            Value::Null,
            RpcError::parse_error(format!("request is not valid JSON: {e}")),
            true,
        )
    })?;
    let mut obj = match value {
        Value::Object(obj) => obj,
        Value::Array(_) => {
            return Err(reject(
                Value::Null,
                RpcError::invalid_request("batch requests are not supported"),
                false,
            ));
        }
        _ => {
            return Err(reject(
                Value::Null,
                RpcError::invalid_request("a request must be a JSON object"),
                false,
            ));
        }
    };
    let id = match obj.remove("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id),
        Some(_) => {
            return Err(reject(
                Value::Null,
                RpcError::invalid_request("'id' must be a string, a number or null"),
                false,
            ));
        }
    };
    let answer_id = id.clone().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some(JSONRPC_VERSION) {
        return Err(reject(
            answer_id,
            RpcError::invalid_request("'jsonrpc' must be \"2.0\""),
            false,
        ));
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        _ => {
            return Err(reject(
                answer_id,
                RpcError::invalid_request("'method' must be a string"),
                false,
            ));
        }
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => empty_object(),
        Some(p @ (Value::Object(_) | Value::Array(_))) => p,
        Some(_) => {
            return Err(reject(
                answer_id,
                RpcError::invalid_request("'params' must be an object or an array"),
                false,
            ));
        }
    };
    Ok(Request {
        jsonrpc: JSONRPC_VERSION.into(),
        id,
        method,
        params,
    })
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// Tells "member absent" (`None`, via `#[serde(default)]`) from "member is null" (`Some(Null)`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rejected(payload: &str) -> Rejection {
        decode_request(payload.as_bytes()).unwrap_err()
    }

    #[test]
    fn decodes_a_request() {
        let r = decode_request(br#"{"jsonrpc":"2.0","id":1,"method":"status","params":{"a":1}}"#).unwrap();
        assert_eq!(r, Request::new(1, "status", json!({"a": 1})));
        let r = decode_request(br#"{"jsonrpc":"2.0","id":"x","method":"status"}"#).unwrap();
        assert_eq!(r.params, json!({}));
        assert_eq!(r.id, Some(json!("x")));
    }

    #[test]
    fn notification_and_null_id_differ() {
        assert!(
            decode_request(br#"{"jsonrpc":"2.0","method":"m"}"#)
                .unwrap()
                .is_notification()
        );
        let r = decode_request(br#"{"jsonrpc":"2.0","id":null,"method":"m"}"#).unwrap();
        assert_eq!(r.id, Some(Value::Null));
        let r: Request = serde_json::from_str(r#"{"jsonrpc":"2.0","id":null,"method":"m"}"#).unwrap();
        assert_eq!(r.id, Some(Value::Null));
        let r: Request = serde_json::from_str(r#"{"jsonrpc":"2.0","method":"m"}"#).unwrap();
        assert_eq!((r.id, r.params), (None, json!({})));
    }

    #[test]
    fn parse_errors_are_fatal() {
        for bad in [&b"\xff\xfe"[..], b"{", b"", b"nul"] {
            let r = decode_request(bad).unwrap_err();
            assert!(r.fatal);
            assert_eq!(r.response.id, Value::Null);
            assert_eq!(r.response.outcome.unwrap_err().code, code::PARSE_ERROR);
        }
    }

    #[test]
    fn invalid_requests_keep_the_connection() {
        let cases = [
            (r#"[]"#, Value::Null),
            (r#"[{"jsonrpc":"2.0","id":1,"method":"m"}]"#, Value::Null),
            (r#"42"#, Value::Null),
            (r#"{"jsonrpc":"2.0","method":1,"params":"bar"}"#, Value::Null),
            (r#"{"jsonrpc":"1.0","id":7,"method":"m"}"#, json!(7)),
            (r#"{"id":7,"method":"m"}"#, json!(7)),
            (r#"{"jsonrpc":"2.0","id":{"a":1},"method":"m"}"#, Value::Null),
            (
                r#"{"jsonrpc":"2.0","id":"k","method":"m","params":3}"#,
                json!("k"),
            ),
        ];
        for (payload, id) in cases {
            let r = rejected(payload);
            assert!(!r.fatal, "{payload}");
            assert_eq!(r.response.id, id, "{payload}");
            assert_eq!(
                r.response.outcome.unwrap_err().code,
                code::INVALID_REQUEST,
                "{payload}"
            );
        }
    }

    #[test]
    fn response_wire_format() {
        let ok = Response::result(json!(1), json!({"x": true}));
        assert_eq!(
            serde_json::to_value(&ok).unwrap(),
            json!({"jsonrpc":"2.0","id":1,"result":{"x":true}})
        );
        let err = Response::error(json!(2), RpcError::method_not_found("nope"));
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            json!({"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"unknown method 'nope'"}})
        );
        let null_result: Response =
            serde_json::from_value(json!({"jsonrpc":"2.0","id":3,"result":null})).unwrap();
        assert_eq!(null_result.outcome, Ok(Value::Null));
        assert!(serde_json::from_value::<Response>(json!({"jsonrpc":"2.0","id":3})).is_err());
    }

    #[test]
    fn event_wire_format() {
        let e = Event::new("mail.new")
            .with("account", "work")
            .with("count", 3)
            .with("topic", "evil");
        assert_eq!(
            e.to_notification(),
            json!({"jsonrpc":"2.0","method":"event","params":{"topic":"mail.new","account":"work","count":3}})
        );
        let back = Incoming::from_value(e.to_notification());
        assert_eq!(back, Incoming::Event(e));
        // A `topic` smuggled into data by hand still cannot shadow or duplicate the real one.
        let mut sneaky = Event::new("state");
        sneaky.data.insert("topic".into(), json!("other"));
        let text = serde_json::to_string(&sneaky.to_notification()).unwrap();
        assert_eq!(text.matches("\"topic\"").count(), 1);
        assert!(text.contains("\"topic\":\"state\""));
    }

    #[test]
    fn incoming_classification() {
        let r = Incoming::from_value(json!({"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}));
        assert_eq!(
            r,
            Incoming::Response(Response::error(json!(1), RpcError::new(1, "m")))
        );
        assert!(matches!(
            Incoming::from_value(json!({"jsonrpc":"2.0","method":"other"})),
            Incoming::Other(_)
        ));
        assert!(matches!(Incoming::from_value(json!([1])), Incoming::Other(_)));
    }

    #[test]
    fn topic_filter() {
        assert!(topic_matches("mail", "mail"));
        assert!(topic_matches("mail", "mail.new"));
        assert!(topic_matches("mail.new", "mail.new"));
        assert!(!topic_matches("mail", "mailbox"));
        assert!(!topic_matches("mail.new", "mail"));
        assert!(!topic_matches("state", "mail.new"));
        let e = Event::new("calendar.changed");
        assert!(e.matches(&[]));
        assert!(e.matches(&["mail".into(), "calendar".into()]));
        assert!(!e.matches(&["mail".into()]));
    }

    #[test]
    fn error_constructors_and_display() {
        assert_eq!(RpcError::unknown_account("home").code, code::UNKNOWN_ACCOUNT);
        assert_eq!(RpcError::invalid_params("x").code, code::INVALID_PARAMS);
        let e = RpcError::new(code::NOT_FOUND, "no such message").with_data(json!({"uid": 4}));
        assert_eq!(e.to_string(), "no such message (code 5)");
        assert_eq!(serde_json::to_value(&e).unwrap()["data"], json!({"uid": 4}));
    }
}
