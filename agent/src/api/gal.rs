//! `gal.search {account, query, limit?}` (INTERFACE §4): the global address list, searched on the
//! server with `addressbook-query` in the directory collections it publishes. Never a download
//! of the whole directory. No directory → code 2; offline → code 4.

use actix::Addr;
use opconnect_actors::hub::Hub;
use opconnect_actors::status::ServiceKind;
use opconnect_actors::store::Store;
use opconnect_actors::supervise::ChildCommand;
use opconnect_ipc::RpcError;
use opconnect_ipc::rpc::code;
use serde_json::{Value, json};

use crate::api::{known_account, required_string, store_error};

/// Answers carry at most this many entries.
const MAX_LIMIT: u64 = 500;

pub async fn search(hub: &Addr<Hub>, store: &Store, params: &Value) -> Result<Value, RpcError> {
    let account = known_account(hub, params).await?;
    let query = required_string(params, "query")?;
    if query.trim().chars().count() < 2 {
        return Err(RpcError::invalid_params("`query` needs at least two characters"));
    }
    let limit = params
        .get("limit")
        .and_then(Value::as_u64)
        .unwrap_or(50)
        .clamp(1, MAX_LIMIT) as usize;
    let has_directory = store
        .dav_collections_of(&account, &["addressbook"])
        .map_err(store_error)?
        .iter()
        .any(|b| b.directory);
    if !has_directory {
        return Err(RpcError::new(
            code::NOT_SUPPORTED,
            format!("the server of account `{account}` publishes no directory (global address list)"),
        ));
    }
    let entries = crate::api::ask(hub, account, ServiceKind::Carddav, |reply| {
        ChildCommand::GalSearch { query, limit, reply }
    })
    .await?;
    Ok(entries
        .into_iter()
        .map(|e| json!({"name": e.name, "emails": e.emails, "kind": e.kind, "href": e.href}))
        .collect())
}
