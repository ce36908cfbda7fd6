//! `account.discover {email}` (INTERFACE §4, an opconnect addition for the add-in's one-field
//! setup dialog): the same discovery as `opconnect account add`, without a password. The add-in
//! asks before the user has typed one, so each candidate is probed up to the transport and the
//! greeting (or OPTIONS for DAV) only; the login happens on `account add` / `account test`.
//!
//! ```text
//!   {email} ──► SRV/TXT + guesses ──► probes ──► {imap?, smtp?, caldav?, carddav?, sieve?, tried: [...]}
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;

use opconnect_actors::discovery::{self, Discovery, Options};
use opconnect_actors::formats::discovery::Service;
use opconnect_ipc::RpcError;
use opconnect_ipc::rpc::code;
use serde_json::{Map, Value, json};

use super::optional_string;

pub async fn call(method: &str, params: &Value, dns: Option<SocketAddr>) -> Result<Value, RpcError> {
    match method {
        "account.discover" => discover(params, dns).await,
        _ => Err(RpcError::method_not_found(method)),
    }
}

async fn discover(params: &Value, dns: Option<SocketAddr>) -> Result<Value, RpcError> {
    let email = optional_string(params, "email")?
        .ok_or_else(|| RpcError::new(code::INVALID_PARAMS, "`email` is required"))?;
    if opconnect_actors::formats::discovery::email_domain(&email).is_none() {
        return Err(RpcError::new(
            code::INVALID_PARAMS,
            format!("`{email}` is not an email address"),
        ));
    }
    let options = Options {
        dns,
        ..Options::default()
    };
    // Runs on its own task so that a slow probe never holds up the IPC connection's other calls.
    let found =
        tokio::spawn(
            async move { discovery::discover(&email, &BTreeMap::new(), &Service::ALL, &options).await },
        )
        .await
        .map_err(|e| RpcError::internal(format!("discovery stopped: {e}")))?
        .map_err(|e| RpcError::internal(e.to_string()))?;
    Ok(answer(&found))
}

/// `{imap?, smtp?, caldav?, carddav?, sieve?, tried: [{service, url, source, ok, detail, ms}], elapsed_ms}`.
pub fn answer(d: &Discovery) -> Value {
    let mut out = Map::new();
    for (service, url) in &d.found {
        out.insert(service.key().to_owned(), json!(url));
    }
    let tried: Vec<Value> = d
        .tried
        .iter()
        .map(|a| {
            json!({
                "service": a.service.key(), "url": a.url, "source": a.source,
                "ok": a.ok, "detail": a.detail, "ms": a.ms,
            })
        })
        .collect();
    out.insert("tried".into(), Value::Array(tried));
    out.insert("elapsed_ms".into(), json!(d.elapsed_ms));
    if let Some(p) = &d.provider {
        out.insert("provider".into(), json!(p));
    }
    if let Some(hint) = &d.app_password {
        out.insert("app_password".into(), json!(hint));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opconnect_actors::discovery::Attempt;

    #[test]
    fn the_answer_names_services_by_their_config_keys() {
        let d = Discovery {
            found: BTreeMap::from([(Service::CardDav, "http://localhost:5232/".to_owned())]),
            tried: vec![Attempt {
                service: Service::CardDav,
                url: "http://localhost:5232/".into(),
                source: "SRV _carddav._tcp.example.test".into(),
                ok: true,
                detail: "OPTIONS: DAV addressbook".into(),
                auth_failed: false,
                ms: 3,
            }],
            dns_errors: vec![],
            elapsed_ms: 7,
            ..Discovery::default()
        };
        let v = answer(&d);
        assert_eq!(v["carddav"], "http://localhost:5232/");
        assert!(v.get("imap").is_none());
        assert_eq!(v["tried"][0]["service"], "carddav");
        assert_eq!(v["tried"][0]["ok"], true);
    }

    #[tokio::test]
    async fn a_bad_address_is_invalid_params() {
        let e = call("account.discover", &json!({"email": "nobody"}), None)
            .await
            .unwrap_err();
        assert_eq!(e.code, code::INVALID_PARAMS);
        let e = call("account.discover", &json!({}), None).await.unwrap_err();
        assert!(e.message.contains("`email`"), "{}", e.message);
    }
}
