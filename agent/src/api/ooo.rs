//! `ooo.get` and `ooo.set` (INTERFACE §4): out-of-office over ManageSieve (RFC 5804) with a Sieve
//! vacation (RFC 5230). These talk to the server at once, not through the journal: an answer
//! is only useful when it is the server's, so an unreachable server is code 4.
//!
//! ```text
//!  ooo.get {account}                                   ─► {enabled, subject, body, start?, end?}
//!  ooo.set {account, enabled, subject?, body?, start?, end?} ─► {}
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use opconnect_actors::account::SharedSecretSource;
use opconnect_actors::sieve::{SieveClient, script, vacation};
use opconnect_actors::{AccountSpec, ServiceError};
use opconnect_ipc::RpcError;
use opconnect_ipc::rpc::code;
use serde_json::{Map, Value, json};

use super::{optional_string, required_string};

/// The password source of each account, by name.
pub type Secrets = Arc<BTreeMap<String, SharedSecretSource>>;

/// Per step of the ManageSieve exchange; the caller is waiting on it.
const TIMEOUT: Duration = Duration::from_secs(15);

pub async fn call(
    method: &str,
    params: &Value,
    accounts: &BTreeMap<String, AccountSpec>,
    secrets: &Secrets,
) -> Result<Value, RpcError> {
    let name = required_string(params, "account")?;
    let spec = accounts
        .get(&name)
        .ok_or_else(|| RpcError::unknown_account(&name))?;
    let Some(endpoint) = spec.sieve.clone() else {
        return Err(RpcError::new(
            code::NOT_SUPPORTED,
            format!("account `{name}` has no sieve server, so out-of-office cannot be set from here"),
        ));
    };
    let change = match method {
        "ooo.get" => None,
        "ooo.set" => Some(change_from(params)?),
        _ => return Err(RpcError::method_not_found(method)),
    };
    let secret = secrets
        .get(&name)
        .cloned()
        .ok_or_else(|| RpcError::internal(format!("account `{name}` has no password source")))?;
    let spec = spec.clone();
    // Its own task: a slow server never holds up the IPC connection's other calls.
    tokio::spawn(async move {
        let password = tokio::task::spawn_blocking(move || secret.password())
            .await
            .map_err(|e| RpcError::internal(format!("password lookup failed: {e}")))?
            .map_err(|e| rpc_error(ServiceError::Config(format!("password: {e}"))))?;
        let tls = spec.tls().map_err(rpc_error)?;
        let mut client = SieveClient::connect(&endpoint, tls, &spec.username, &password, TIMEOUT)
            .await
            .map_err(rpc_error)?;
        let answer = match change {
            None => vacation::get(&mut client).await.map(|v| answer(&v)),
            Some(change) => vacation::set(&mut client, change, std::slice::from_ref(&spec.email))
                .await
                .map(|()| json!({})),
        };
        client.logout().await;
        answer.map_err(rpc_error)
    })
    .await
    .map_err(|e| RpcError::internal(format!("out-of-office stopped: {e}")))?
}

/// `{enabled, subject, body, start?, end?}`.
fn answer(v: &script::Vacation) -> Value {
    let mut out = Map::new();
    out.insert("enabled".into(), json!(v.enabled));
    out.insert("subject".into(), json!(v.subject));
    out.insert("body".into(), json!(v.body));
    if let Some(start) = v.start {
        out.insert("start".into(), json!(script::format_time(start)));
    }
    if let Some(end) = v.end {
        out.insert("end".into(), json!(script::format_time(end)));
    }
    Value::Object(out)
}

/// The parameters of `ooo.set`; times are RFC 3339 or `YYYY-MM-DD`.
fn change_from(params: &Value) -> Result<vacation::Change, RpcError> {
    let enabled = params
        .get("enabled")
        .and_then(Value::as_bool)
        .ok_or_else(|| RpcError::invalid_params("`enabled` is required and must be true or false"))?;
    let time = |key: &str| -> Result<_, RpcError> {
        optional_string(params, key)?
            .map(|t| {
                script::parse_time(&t).ok_or_else(|| {
                    RpcError::invalid_params(format!(
                        "`{key}` must be an RFC 3339 time or YYYY-MM-DD, not `{t}`"
                    ))
                })
            })
            .transpose()
    };
    Ok(vacation::Change {
        enabled,
        subject: optional_string(params, "subject")?,
        body: optional_string(params, "body")?,
        start: time("start")?,
        end: time("end")?,
    })
}

/// A ManageSieve failure as an INTERFACE §4 error code.
fn rpc_error(e: ServiceError) -> RpcError {
    let code = match &e {
        ServiceError::Transient { .. } | ServiceError::Tls(_) => code::UNREACHABLE,
        ServiceError::Auth(_) => code::AUTH_FAILED,
        ServiceError::Unsupported(_) => code::NOT_SUPPORTED,
        ServiceError::NotFound(_) => code::NOT_FOUND,
        ServiceError::Config(_) => code::INVALID_PARAMS,
        ServiceError::Protocol(_) => code::INTERNAL_ERROR,
    };
    RpcError::new(code, format!("out-of-office: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_parameters_are_checked() {
        let c = change_from(&json!({"enabled": true, "subject": "Away", "start": "2026-07-01"})).unwrap();
        assert!(c.enabled);
        assert_eq!(c.subject.as_deref(), Some("Away"));
        assert_eq!(c.body, None);
        assert_eq!(script::format_time(c.start.unwrap()), "2026-07-01T00:00:00Z");
        assert_eq!(change_from(&json!({})).unwrap_err().code, code::INVALID_PARAMS);
        assert_eq!(
            change_from(&json!({"enabled": false, "end": "soon"}))
                .unwrap_err()
                .code,
            code::INVALID_PARAMS
        );
    }

    #[test]
    fn errors_map_to_interface_codes() {
        assert_eq!(rpc_error(ServiceError::transient("down")).code, code::UNREACHABLE);
        assert_eq!(rpc_error(ServiceError::Auth("no".into())).code, code::AUTH_FAILED);
        assert_eq!(
            rpc_error(ServiceError::Unsupported("x".into())).code,
            code::NOT_SUPPORTED
        );
        let a = answer(&script::Vacation {
            enabled: true,
            subject: "s".into(),
            ..Default::default()
        });
        assert_eq!(a, json!({"enabled": true, "subject": "s", "body": ""}));
    }
}
