//! Notes (`notes.list`, `notes.put`, `notes.delete`, INTERFACE §4): messages in the IMAP folder
//! `Notes`, compatible with Apple's notes over IMAP. An edit appends the new version and deletes
//! the old one, through the journal like every mail write; the folder is created on first use.
//! With `wait: true` the answer comes once the server confirmed every one of those steps.

use actix::Addr;
use opconnect_actors::AccountSpec;
use opconnect_actors::formats::{item, note};
use opconnect_actors::hub::Hub;
use opconnect_actors::journal::MailOp;
use opconnect_actors::status::ServiceKind;
use opconnect_actors::store::Store;
use opconnect_ipc::rpc::code;
use opconnect_ipc::{Event, RpcError};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::api::{optional_string, required_string, store_error};

const FOLDER: &str = "Notes";

/// The account's notes folder as the server spells it, if it exists yet.
fn folder(store: &Store, account: &str) -> Result<Option<String>, RpcError> {
    Ok(store
        .folders(account)
        .map_err(store_error)?
        .into_iter()
        .find(|f| f.path.eq_ignore_ascii_case(FOLDER))
        .map(|f| f.path))
}

/// Every note with its mirror UID (bodies are prefetched by the IMAP child for this folder).
fn notes(store: &Store, account: &str) -> Result<Vec<(u32, note::Note)>, RpcError> {
    let Some(path) = folder(store, account)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for m in store
        .messages(account, &path, 0, usize::MAX)
        .map_err(store_error)?
    {
        if let Some(raw) = store.body(account, &path, m.uid).map_err(store_error)?
            && let Some(n) = note::parse(&raw, &m.uid.to_string())
        {
            out.push((m.uid, n));
        }
    }
    Ok(out)
}

pub fn list(store: &Store, account: &str) -> Result<Value, RpcError> {
    Ok(notes(store, account)?
        .into_iter()
        .map(|(_, n)| {
            // The note field set (item model), read from the note's text; null if it cannot be.
            let fields = item::read(item::ItemClass::Note, &n.body).ok();
            json!({"id": n.id, "subject": n.subject, "body": n.body, "format": n.format, "modified": n.modified,
                   "fields": fields})
        })
        .collect())
}

pub async fn put(
    hub: &Addr<Hub>,
    store: &Store,
    events: &broadcast::Sender<Event>,
    spec: &AccountSpec,
    params: &Value,
) -> Result<Value, RpcError> {
    let subject = required_string(params, "subject")?;
    let body = required_string(params, "body")?;
    let now = std::time::SystemTime::now();
    let stamp = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let id = match optional_string(params, "id")? {
        Some(id) if id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !id.is_empty() => id,
        Some(_) => {
            return Err(RpcError::invalid_params(
                "`id` may hold letters, digits and '-' only",
            ));
        }
        None => new_id(),
    };
    let date = httpdate(now);
    let raw = note::build(&id, &subject, &body, &spec.email, &date, &stamp.to_string());
    let old: Vec<u32> = notes(store, &spec.name)?
        .into_iter()
        .filter(|(_, n)| n.id == id)
        .map(|(uid, _)| uid)
        .collect();
    let mut ops = Vec::new();
    let path = match folder(store, &spec.name)? {
        Some(path) => path,
        None => {
            ops.push(MailOp::FolderCreate { path: FOLDER.into() });
            FOLDER.into()
        }
    };
    ops.push(MailOp::Append {
        folder: path.clone(),
        raw: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &raw),
        flags: vec!["\\Seen".into()],
        message_id: opconnect_actors::imap::headers::summarize(&raw).message_id,
    });
    if !old.is_empty() {
        ops.push(MailOp::Delete {
            folder: path,
            uids: old,
            uidvalidity: None,
            message_ids: Vec::new(),
        });
    }
    journal(hub, store, events, params, &spec.name, ops, json!({"id": id})).await
}

pub async fn delete(
    hub: &Addr<Hub>,
    store: &Store,
    events: &broadcast::Sender<Event>,
    account: &str,
    params: &Value,
) -> Result<Value, RpcError> {
    let id = required_string(params, "id")?;
    let uids: Vec<u32> = notes(store, account)?
        .into_iter()
        .filter(|(_, n)| n.id == id)
        .map(|(uid, _)| uid)
        .collect();
    let path = folder(store, account)?;
    let (Some(path), false) = (path, uids.is_empty()) else {
        return Err(RpcError::new(
            code::NOT_FOUND,
            format!("no note `{id}` in account `{account}`"),
        ));
    };
    let ops = vec![MailOp::Delete {
        folder: path,
        uids,
        uidvalidity: None,
        message_ids: Vec::new(),
    }];
    journal(hub, store, events, params, account, ops, json!({})).await
}

/// Journals the operations in order (each durable before the next), wakes the IMAP child, and
/// with `wait: true` waits until the server confirmed all of them. `answer` gets `op`, the last.
async fn journal(
    hub: &Addr<Hub>,
    store: &Store,
    events: &broadcast::Sender<Event>,
    params: &Value,
    account: &str,
    ops: Vec<MailOp>,
    mut answer: Value,
) -> Result<Value, RpcError> {
    let wait = params.get("wait").and_then(Value::as_bool).unwrap_or(false);
    // Subscribe before the child can finish, so no verdict slips past.
    let verdicts = events.subscribe();
    let (writer, who) = (store.clone(), account.to_owned());
    let ids = tokio::task::spawn_blocking(move || {
        ops.into_iter()
            .map(|op| writer.journal_mail(&who, op).map_err(|e| e.to_string()))
            .collect::<Result<Vec<u64>, String>>()
    })
    .await
    .map_err(|e| RpcError::internal(e.to_string()))?
    .map_err(store_error)?;
    crate::api::wake(hub, account, ServiceKind::Imap).await;
    answer["op"] = json!(ids.last().copied().unwrap_or_default());
    if wait {
        crate::api::verdict_all(store, verdicts, &ids, answer).await
    } else {
        Ok(answer)
    }
}

/// A random UUID-shaped id (RFC 9562 §5.4 layout), like the ones Apple's notes carry.
fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let random = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.finish()
    };
    let (a, b) = (random(), random());
    format!(
        "{:08X}-{:04X}-4{:03X}-{:04X}-{:012X}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// RFC 5322 §3.3 date in UTC.
fn httpdate(t: std::time::SystemTime) -> String {
    let rfc3339 = humantime::format_rfc3339_seconds(t).to_string();
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d) = (&rfc3339[0..4], &rfc3339[5..7], &rfc3339[8..10]);
    let month = months[m.parse::<usize>().unwrap_or(1).clamp(1, 12) - 1];
    format!(
        "{weekday}, {} {month} {y} {} +0000",
        d.trim_start_matches('0'),
        &rfc3339[11..19]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_shaped_and_distinct() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert!(a.split('-').map(str::len).eq([8, 4, 4, 4, 12]), "{a}");
    }

    #[test]
    fn dates_are_rfc_5322() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_428_000);
        assert_eq!(httpdate(t), "Mon, 23 Nov 2026 10:00:00 +0000"); // checked with Python's datetime
    }
}
