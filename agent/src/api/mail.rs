//! Mail methods (`mail.*`, INTERFACE §4): folders and messages from the mirror, bodies on demand
//! through the account's IMAP child, watch/unwatch for per-folder listeners, and writes, which
//! are journaled (durable before the answer) and replayed by the IMAP child.

use actix::Addr;
use base64::Engine as _;
use opconnect_actors::ServiceError;
use opconnect_actors::hub::{Hub, HubError, ToAccount};
use opconnect_actors::journal::MailOp;
use opconnect_actors::status::ServiceKind;
use opconnect_actors::store::Store;
use opconnect_actors::supervise::ChildCommand;
use opconnect_ipc::rpc::code;
use opconnect_ipc::{Event, RpcError};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::{known_account, mailbox, optional_string, required_string, store_error};

/// `mail.messages` answers at most this many at once; page with `after_uid`.
const MAX_PAGE: usize = 5000;
/// The largest part of a message one `mail.fetch` answer carries: base64 grows it by 4/3 and the
/// frame limit is 16 MiB (INTERFACE §4), so 12 MiB leaves room for the JSON around it.
pub const MAX_FETCH_PART: usize = 12 << 20;

pub async fn call(
    hub: &Addr<Hub>,
    store: &Store,
    events: &broadcast::Sender<Event>,
    method: &str,
    params: &Value,
) -> Result<Value, RpcError> {
    if let Some(op) = write_op(method, params)? {
        return write(hub, store, events, params, op).await;
    }
    match method {
        "mail.folders" => folders(hub, store, params).await,
        "mail.messages" => messages(hub, store, params).await,
        "mail.fetch" => fetch(hub, store, params).await,
        "mail.watch" => watch(hub, params, true).await,
        "mail.unwatch" => watch(hub, params, false).await,
        "mail.acl.get" => acl_get(hub, params).await,
        _ => Err(RpcError::method_not_found(method)),
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
    let raw = super::ask(hub, account, ServiceKind::Imap, |reply| ChildCommand::FetchBody {
        folder,
        uid,
        reply,
    })
    .await?;
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

/// The operation a write method asks for, checked without the server; `None` for reads.
fn write_op(method: &str, params: &Value) -> Result<Option<MailOp>, RpcError> {
    let s = |key: &str| required_string(params, key);
    let uids = || -> Result<Vec<u32>, RpcError> {
        let list = params
            .get("uids")
            .and_then(Value::as_array)
            .ok_or_else(|| RpcError::invalid_params("`uids` must be an array of message UIDs"))?;
        list.iter()
            .map(|u| {
                u.as_u64()
                    .filter(|u| *u > 0 && *u <= u32::MAX as u64)
                    .map(|u| u as u32)
            })
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| RpcError::invalid_params("`uids` must hold UIDs from 1 to 4294967295"))
    };
    let strings = |key: &str| -> Result<Vec<String>, RpcError> {
        match params.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| RpcError::invalid_params(format!("`{key}` must be an array of strings"))),
            Some(_) => Err(RpcError::invalid_params(format!(
                "`{key}` must be an array of strings"
            ))),
        }
    };
    let op = match method {
        "mail.flag" => MailOp::Flag {
            folder: s("folder")?,
            uids: uids()?,
            add: strings("add")?,
            remove: strings("remove")?,
            uidvalidity: None,
            message_ids: Vec::new(),
        },
        "mail.move" | "mail.copy" => {
            let (folder, uids, to) = (s("folder")?, uids()?, s("to")?);
            if method == "mail.move" {
                MailOp::Move {
                    folder,
                    uids,
                    to,
                    uidvalidity: None,
                    message_ids: Vec::new(),
                }
            } else {
                MailOp::Copy {
                    folder,
                    uids,
                    to,
                    uidvalidity: None,
                    message_ids: Vec::new(),
                }
            }
        }
        "mail.delete" => MailOp::Delete {
            folder: s("folder")?,
            uids: uids()?,
            uidvalidity: None,
            message_ids: Vec::new(),
        },
        "mail.append" => {
            let raw = s("raw")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&raw)
                .map_err(|e| RpcError::invalid_params(format!("`raw` is not base64: {e}")))?;
            let message_id = opconnect_actors::imap::headers::summarize(&bytes).message_id;
            MailOp::Append {
                folder: s("folder")?,
                raw,
                flags: strings("flags")?,
                message_id,
            }
        }
        "mail.folder.create" => MailOp::FolderCreate { path: s("path")? },
        "mail.folder.rename" => MailOp::FolderRename {
            path: s("path")?,
            to: s("to")?,
        },
        "mail.folder.delete" => MailOp::FolderDelete { path: s("path")? },
        "mail.folder.copy" => MailOp::FolderCopy {
            path: s("path")?,
            to: s("to")?,
            done: Vec::new(),
        },
        "mail.acl.set" => MailOp::AclSet {
            folder: s("folder")?,
            identifier: s("identifier")?,
            // Empty rights remove the identifier's entry (DELETEACL).
            rights: optional_string(params, "rights")?.unwrap_or_default(),
        },
        _ => return Ok(None),
    };
    op.validate().map_err(|e| RpcError::invalid_params(e.0))?;
    Ok(Some(op))
}

/// Journals `op` (durable before the answer, invariant 1), tells the IMAP child, and with
/// `wait: true` waits for the server's verdict.
async fn write(
    hub: &Addr<Hub>,
    store: &Store,
    events: &broadcast::Sender<Event>,
    params: &Value,
    op: MailOp,
) -> Result<Value, RpcError> {
    let account = known_account(hub, params).await?;
    let wait = params.get("wait").and_then(Value::as_bool).unwrap_or(false);
    if let MailOp::Flag { folder, .. }
    | MailOp::Move { folder, .. }
    | MailOp::Copy { folder, .. }
    | MailOp::Delete { folder, .. } = &op
        && store.folder(&account, folder).map_err(store_error)?.is_none()
    {
        return Err(RpcError::new(
            code::NOT_FOUND,
            format!("no folder `{folder}` in account `{account}`"),
        ));
    }
    check_rights(store, &account, &op)?;
    // Subscribe before the child can finish, so the verdict cannot slip past.
    let verdicts = events.subscribe();
    let journal = store.clone();
    let who = account.clone();
    let id = tokio::task::spawn_blocking(move || journal.journal_mail(&who, op))
        .await
        .map_err(|e| RpcError::internal(e.to_string()))?
        .map_err(store_error)?;
    // The op is durable now; telling the child is best effort (it replays on every start too).
    super::wake(hub, &account, ServiceKind::Imap).await;
    if !wait {
        return Ok(json!({"op": id}));
    }
    super::verdict(store, verdicts, id, json!({"op": id})).await
}

/// `mail.send {account, raw}`: checked (sender, recipients), given a Message-ID if it has none
/// (so it can never be sent twice), journaled, then submitted and filed in Sent by replay.
pub async fn send(
    hub: &Addr<Hub>,
    store: &Store,
    events: &broadcast::Sender<Event>,
    params: &Value,
) -> Result<Value, RpcError> {
    let raw = required_string(params, "raw")?;
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(&raw)
        .map_err(|e| RpcError::invalid_params(format!("`raw` is not base64: {e}")))?;
    opconnect_actors::smtp::addressing(&bytes)
        .map_err(|e| RpcError::invalid_params(format!("`raw`: {e}")))?;
    let message_id = match opconnect_actors::imap::headers::summarize(&bytes).message_id {
        Some(id) => id,
        None => {
            let id = format!("<{:032x}@opconnect.invalid>", rand_id());
            let mut with_id = format!("Message-ID: {id}\r\n").into_bytes();
            with_id.append(&mut bytes);
            bytes = with_id;
            id
        }
    };
    let op = MailOp::Send {
        raw: base64::engine::general_purpose::STANDARD.encode(&bytes),
        message_id: Some(message_id.clone()),
        submitted: false,
    };
    let mut answer = write(hub, store, events, params, op).await?;
    answer["message_id"] = json!(message_id);
    Ok(answer)
}

fn rand_id() -> u128 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    nanos ^ ((std::process::id() as u128) << 96)
}

/// Refuses, before journaling, a write the folder's owner did not allow (RFC 4314 §4: which
/// rights each command needs). Folders without recorded rights are the user's own.
fn check_rights(store: &Store, account: &str, op: &MailOp) -> Result<(), RpcError> {
    use opconnect_actors::imap::acl::allows;
    let needs: Vec<(&str, String)> = match op {
        MailOp::Flag {
            folder, add, remove, ..
        } => {
            let mut letters = String::new();
            for flag in add.iter().chain(remove) {
                letters.push(match flag.to_ascii_lowercase().as_str() {
                    "\\seen" => 's',
                    "\\deleted" => 't',
                    _ => 'w',
                });
            }
            vec![(folder.as_str(), letters)]
        }
        MailOp::Delete { folder, .. } => vec![(folder.as_str(), "te".into())],
        MailOp::Move { folder, to, .. } => vec![(folder.as_str(), "te".into()), (to.as_str(), "i".into())],
        MailOp::Copy { to, .. } | MailOp::Append { folder: to, .. } => vec![(to.as_str(), "i".into())],
        MailOp::FolderRename { path, .. } | MailOp::FolderDelete { path } => {
            vec![(path.as_str(), "x".into())]
        }
        MailOp::AclSet { folder, .. } => vec![(folder.as_str(), "a".into())],
        MailOp::FolderCopy { path, .. } => vec![(path.as_str(), "lr".into())],
        MailOp::FolderCreate { .. } | MailOp::Send { .. } => Vec::new(),
    };
    for (folder, letters) in needs {
        let Some(record) = store.folder(account, folder).map_err(store_error)? else {
            continue;
        };
        if let Some(rights) = record.rights
            && !allows(&rights, &letters)
        {
            return Err(RpcError::new(
                code::NOT_SUPPORTED,
                format!(
                    "your rights on `{folder}` are `{rights}`: this needs `{letters}` (RFC 4314), so it was not saved"
                ),
            ));
        }
    }
    Ok(())
}

/// `mail.acl.get {account, folder}` → `[{identifier, rights}]`, from the server now.
async fn acl_get(hub: &Addr<Hub>, params: &Value) -> Result<Value, RpcError> {
    let account = required_string(params, "account")?;
    let folder = required_string(params, "folder")?;
    let entries = super::ask(hub, account, ServiceKind::Imap, |reply| ChildCommand::AclGet {
        folder,
        reply,
    })
    .await?;
    Ok(entries
        .into_iter()
        .map(|e| json!({"identifier": e.identifier, "rights": e.rights}))
        .collect())
}
