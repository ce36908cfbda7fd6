//! Mail methods (`mail.*`, INTERFACE §4): folders and messages from the mirror, bodies on demand
//! through the account's IMAP child, watch/unwatch for per-folder listeners.

use actix::Addr;
use base64::Engine as _;
use opconnect_actors::ServiceError;
use opconnect_actors::hub::{Hub, HubError, ToAccount};
use opconnect_actors::status::ServiceKind;
use opconnect_actors::store::Store;
use opconnect_actors::supervise::ChildCommand;
use opconnect_ipc::RpcError;
use opconnect_ipc::rpc::code;
use serde_json::{Value, json};

use super::{mailbox, optional_string};

/// `mail.messages` answers at most this many at once; page with `after_uid`.
const MAX_PAGE: usize = 5000;
/// The largest part of a message one `mail.fetch` answer carries: base64 grows it by 4/3 and the
/// frame limit is 16 MiB (INTERFACE §4), so 12 MiB leaves room for the JSON around it.
pub const MAX_FETCH_PART: usize = 12 << 20;

pub async fn call(hub: &Addr<Hub>, store: &Store, method: &str, params: &Value) -> Result<Value, RpcError> {
    match method {
        "mail.folders" => folders(hub, store, params).await,
        "mail.messages" => messages(hub, store, params).await,
        "mail.fetch" => fetch(hub, store, params).await,
        "mail.watch" => watch(hub, params, true).await,
        "mail.unwatch" => watch(hub, params, false).await,
        _ => Err(RpcError::method_not_found(method)),
    }
}

fn required_string(params: &Value, key: &str) -> Result<String, RpcError> {
    optional_string(params, key)?.ok_or_else(|| RpcError::invalid_params(format!("`{key}` is required")))
}

fn store_error(e: impl std::fmt::Display) -> RpcError {
    RpcError::internal(format!("mirror: {e}"))
}

/// Checks the account exists (code 1 otherwise) by asking the hub for its status.
async fn known_account(hub: &Addr<Hub>, params: &Value) -> Result<String, RpcError> {
    let account = required_string(params, "account")?;
    let status = hub
        .send(opconnect_actors::hub::GetStatus)
        .await
        .map_err(mailbox)?;
    if status.accounts.iter().any(|a| a.name == account) {
        Ok(account)
    } else {
        Err(RpcError::unknown_account(&account))
    }
}

async fn folders(hub: &Addr<Hub>, store: &Store, params: &Value) -> Result<Value, RpcError> {
    let account = known_account(hub, params).await?;
    let folders = store.folders(&account).map_err(store_error)?;
    Ok(Value::Array(
        folders
            .into_iter()
            .map(|f| {
                let mut v = json!({
                    "path": f.path, "delimiter": f.delimiter, "namespace": f.namespace,
                    "subscribed": f.subscribed, "total": f.total, "unseen": f.unseen,
                });
                if let Some(su) = f.special_use {
                    v["special_use"] = json!(su);
                }
                if let Some(rights) = f.rights {
                    v["rights"] = json!(rights);
                }
                v
            })
            .collect(),
    ))
}

async fn messages(hub: &Addr<Hub>, store: &Store, params: &Value) -> Result<Value, RpcError> {
    let account = known_account(hub, params).await?;
    let folder = required_string(params, "folder")?;
    let after_uid = optional_u64(params, "after_uid")?
        .unwrap_or(0)
        .min(u32::MAX as u64) as u32;
    let limit = optional_u64(params, "limit")?
        .map(|l| l as usize)
        .unwrap_or(MAX_PAGE)
        .min(MAX_PAGE);
    let record = store
        .folder(&account, &folder)
        .map_err(store_error)?
        .ok_or_else(|| {
            RpcError::new(
                code::NOT_FOUND,
                format!("no folder `{folder}` in account `{account}`"),
            )
        })?;
    let messages = store
        .messages(&account, &folder, after_uid, limit)
        .map_err(store_error)?;
    Ok(json!({
        "uidvalidity": record.uidvalidity,
        "messages": messages.into_iter().map(|m| json!({
            "uid": m.uid, "flags": m.flags, "subject": m.subject, "from": m.from, "to": m.to,
            "date": m.date.or(m.internal_date), "size": m.size, "message_id": m.message_id,
        })).collect::<Vec<_>>(),
    }))
}

async fn fetch(hub: &Addr<Hub>, store: &Store, params: &Value) -> Result<Value, RpcError> {
    let account = required_string(params, "account")?;
    let folder = required_string(params, "folder")?;
    let uid = optional_u64(params, "uid")?
        .filter(|u| *u > 0 && *u <= u32::MAX as u64)
        .ok_or_else(|| RpcError::invalid_params("`uid` must be a message UID (1 to 4294967295)"))?
        as u32;
    let offset = optional_u64(params, "offset")?.map(|o| o as usize);
    let length = optional_u64(params, "length")?.map(|l| l as usize);
    if let Some(raw) = store.body(&account, &folder, uid).map_err(store_error)? {
        return part(&raw, offset, length);
    }
    let (reply, answer) = tokio::sync::oneshot::channel();
    hub.send(ToAccount {
        account: account.clone(),
        kind: ServiceKind::Imap,
        command: ChildCommand::FetchBody { folder, uid, reply },
    })
    .await
    .map_err(mailbox)?
    .map_err(|HubError::UnknownAccount(name)| RpcError::unknown_account(&name))?;
    let raw = answer
        .await
        .map_err(|_| RpcError::new(code::UNREACHABLE, "the IMAP connection went away"))?
        .map_err(service_error)?;
    part(&raw, offset, length)
}

/// The whole message, or with `offset`/`length` (opconnect's extension) a part of it, so that a
/// message larger than one IPC frame can still be read. `size` is always the whole size.
fn part(raw: &[u8], offset: Option<usize>, length: Option<usize>) -> Result<Value, RpcError> {
    let start = offset.unwrap_or(0).min(raw.len());
    let wanted = length.unwrap_or(raw.len() - start);
    if wanted > MAX_FETCH_PART {
        return Err(RpcError::new(
            code::INVALID_PARAMS,
            format!(
                "the message is {} bytes, more than one answer carries; fetch it in parts with \
                 `offset` and `length` of at most {MAX_FETCH_PART} bytes",
                raw.len()
            ),
        ));
    }
    let end = start.saturating_add(wanted).min(raw.len());
    Ok(json!({
        "raw": base64::engine::general_purpose::STANDARD.encode(&raw[start..end]),
        "size": raw.len(),
        "offset": start,
    }))
}

async fn watch(hub: &Addr<Hub>, params: &Value, on: bool) -> Result<Value, RpcError> {
    let account = required_string(params, "account")?;
    let folder = required_string(params, "folder")?;
    let command = if on {
        ChildCommand::Watch(folder)
    } else {
        ChildCommand::Unwatch(folder)
    };
    hub.send(ToAccount {
        account,
        kind: ServiceKind::Imap,
        command,
    })
    .await
    .map_err(mailbox)?
    .map_err(|HubError::UnknownAccount(name)| RpcError::unknown_account(&name))?;
    Ok(json!({}))
}

/// Maps an engine error to INTERFACE §4's codes.
pub fn service_error(e: ServiceError) -> RpcError {
    let code = match &e {
        ServiceError::Transient { .. } => code::UNREACHABLE,
        ServiceError::Auth(_) => code::AUTH_FAILED,
        ServiceError::NotFound(_) => code::NOT_FOUND,
        ServiceError::Unsupported(_) => code::NOT_SUPPORTED,
        _ => code::INTERNAL_ERROR,
    };
    RpcError::new(code, e.to_string())
}

fn optional_u64(params: &Value, key: &str) -> Result<Option<u64>, RpcError> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            RpcError::invalid_params(format!("`{key}` must be a non-negative integer, not {v}"))
        }),
    }
}
