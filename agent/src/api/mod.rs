//! The IPC methods of protocol version 1 (INTERFACE §4). Agent methods are answered here by asking
//! the hub; mail methods live in `mail`, calendar and contact methods in `dav`. Reads come straight
//! from the store; writes and live operations go through the hub to the account's actors.
//! Method names and error codes are a contract with the Outlook add-in.

mod dav;
mod mail;

use actix::Addr;
use futures::FutureExt;
use futures::future::BoxFuture;
use opconnect_actors::hub::{Action, Control, GetStatus, Hub, HubError};
use opconnect_actors::store::Store;
use opconnect_ipc::rpc::code;
use opconnect_ipc::{Event, PROTOCOL_VERSION, RpcError, Service};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// The agent's IPC service: a handle on the hub and the event stream.
pub struct AgentApi {
    hub: Addr<Hub>,
    store: Store,
    events: broadcast::Sender<Event>,
}

impl AgentApi {
    pub fn new(hub: Addr<Hub>, store: Store, events: broadcast::Sender<Event>) -> Self {
        AgentApi { hub, store, events }
    }
}

impl Service for AgentApi {
    fn call(&self, method: String, params: Value) -> BoxFuture<'static, Result<Value, RpcError>> {
        let hub = self.hub.clone();
        let store = self.store.clone();
        let events = self.events.clone();
        async move {
            match method.as_str() {
                "hello" => Ok(json!({
                    "agent": concat!("opconnect ", env!("CARGO_PKG_VERSION")),
                    "protocol": PROTOCOL_VERSION,
                })),
                "status" => {
                    let report = hub.send(GetStatus).await.map_err(mailbox)?;
                    serde_json::to_value(report).map_err(|e| RpcError::internal(e.to_string()))
                }
                "pause" => control(&hub, Action::Pause, &params).await,
                "resume" => control(&hub, Action::Resume, &params).await,
                "sync" => control(&hub, Action::Sync, &params).await,
                "ops" => ops(&store, &params),
                m if m.starts_with("mail.") => mail::call(&hub, &store, &events, m, &params).await,
                m if m.starts_with("calendar.") || m.starts_with("contacts.") || m == "gal.search" => {
                    dav::call(&hub, &store, m, &params).await
                }
                _ => Err(RpcError::method_not_found(&method)),
            }
        }
        .boxed()
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}

async fn control(hub: &Addr<Hub>, action: Action, params: &Value) -> Result<Value, RpcError> {
    let account = optional_string(params, "account")?;
    hub.send(Control { action, account })
        .await
        .map_err(mailbox)?
        .map_err(|e| match e {
            HubError::UnknownAccount(name) => RpcError::unknown_account(&name),
        })?;
    Ok(json!({}))
}

/// `params.key` as a string if present; anything else is -32602 naming the key.
/// `ops {account?}`: the pending operations, oldest first (binary content left out).
fn ops(store: &Store, params: &Value) -> Result<Value, RpcError> {
    let account = optional_string(params, "account")?;
    let entries = store
        .journal_pending(account.as_deref())
        .map_err(|e| RpcError::internal(format!("journal: {e}")))?;
    Ok(Value::Array(
        entries
            .into_iter()
            .map(|e| {
                let mut op = e.op;
                if let Some(map) = op.as_object_mut() {
                    map.remove("raw");
                }
                json!({"op": e.id, "account": e.account, "created": e.created, "attempts": e.attempts,
                       "last_error": e.last_error, "detail": op,
                       "kind": op.get("kind").cloned().unwrap_or(Value::Null)})
            })
            .collect(),
    ))
}

pub(crate) fn optional_string(params: &Value, key: &str) -> Result<Option<String>, RpcError> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(RpcError::new(
            code::INVALID_PARAMS,
            format!("`{key}` must be a string, not {other}"),
        )),
    }
}

pub(crate) fn mailbox(e: actix::MailboxError) -> RpcError {
    RpcError::internal(format!("the engine is not answering: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_checked_by_name() {
        assert_eq!(optional_string(&json!({}), "account").unwrap(), None);
        assert_eq!(
            optional_string(&json!({"account": "work"}), "account")
                .unwrap()
                .as_deref(),
            Some("work")
        );
        let e = optional_string(&json!({"account": 5}), "account").unwrap_err();
        assert_eq!(e.code, code::INVALID_PARAMS);
        assert!(e.message.contains("`account`"));
    }
}
