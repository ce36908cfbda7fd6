//! The Outlook item model over IPC (opconnect additions to INTERFACE §4): `items.changes`,
//! `items.get`, `items.create`, `items.patch`, `items.delete` and `contacts.photo`. Field sets
//! come from `formats::item`; reads come from the mirror and its change feed, writes go through
//! the journal exactly like `calendar.put` (If-Match with the etag the client was handed).
//!
//! ```text
//!   items.changes {cursor} ──store.changes_since──► [{href, etag, class, fields}] + removed
//!                            (≤ limit entries, stops before PAGE_BYTES, `more` + next cursor)
//!   items.patch {href, etag, changes} ──mirror bytes──► formats::item::patch ──► journal PUT
//! ```

use actix::Addr;
use opconnect_actors::AccountSpec;
use opconnect_actors::dav::sync::normalize_href;
use opconnect_actors::formats::item::{self, FieldSet, ItemClass, PatchError};
use opconnect_actors::hub::Hub;
use opconnect_actors::journal::DavOp;
use opconnect_actors::journal::dav_op::{Delete, Put};
use opconnect_actors::store::Store;
use opconnect_actors::store::records::{CollectionRecord, ItemRecord};
use opconnect_ipc::rpc::code;
use opconnect_ipc::{Event, RpcError};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::api::dav_write::{in_book_dialect, journal, new_href};
use crate::api::{known_account, optional_string, required_string, store_error};

/// Entries per page when the client does not say.
pub(crate) const DEFAULT_LIMIT: usize = 200;
/// The most entries a page may ask for.
pub(crate) const MAX_LIMIT: usize = 1000;
/// A page stops before its items reach this many bytes of JSON (it always holds one item).
pub(crate) const PAGE_BYTES: usize = 4 << 20;

pub async fn call(
    hub: &Addr<Hub>,
    store: &Store,
    events: &broadcast::Sender<Event>,
    accounts: &std::collections::BTreeMap<String, AccountSpec>,
    method: &str,
    params: &Value,
) -> Result<Value, RpcError> {
    let account = known_account(hub, params).await?;
    let spec = accounts.get(&account);
    let me = me(store, spec)?;
    let writer = || spec.ok_or_else(|| RpcError::unknown_account(&account));
    match method {
        "items.changes" => changes(store, &account, params, &me),
        "items.get" => {
            let (col, item) = find(store, &account, params, &["calendar", "tasks", "addressbook"])?;
            Ok(item_json(&item, &col.kind, &me))
        }
        "items.create" => create(hub, store, events, writer()?, params).await,
        "items.patch" => patch(hub, store, events, writer()?, params).await,
        "items.delete" => delete(hub, store, events, writer()?, params).await,
        "contacts.photo" => {
            let (_, item) = find(store, &account, params, &["addressbook"])?;
            Ok(match item::photo(&item.body) {
                Some((mime, bytes)) => {
                    use base64::Engine;
                    json!({"mime": mime, "data": base64::engine::general_purpose::STANDARD.encode(bytes)})
                }
                None => Value::Null,
            })
        }
        _ => Err(RpcError::method_not_found(method)),
    }
}

/// `limit` of a paged read: default [`DEFAULT_LIMIT`], 1 to [`MAX_LIMIT`].
pub(crate) fn page_limit(params: &Value) -> Result<usize, RpcError> {
    match params.get("limit") {
        None | Some(Value::Null) => Ok(DEFAULT_LIMIT),
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_LIMIT as u64).contains(&n) => Ok(n as usize),
            _ => Err(RpcError::invalid_params(format!(
                "`limit` must be a number from 1 to {MAX_LIMIT}, not {v}"
            ))),
        },
    }
}

/// The bytes `value` takes in an answer, without building the text.
pub(crate) fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// A collection of the account of one of `kinds` (code 5 otherwise).
fn collection(
    store: &Store,
    account: &str,
    href: &str,
    kinds: &[&str],
) -> Result<CollectionRecord, RpcError> {
    store
        .dav_collection(account, href)
        .map_err(store_error)?
        .filter(|c| kinds.contains(&c.kind.as_str()) && !c.directory)
        .ok_or_else(|| {
            RpcError::new(
                code::NOT_FOUND,
                format!("account `{account}` has no {} `{href}`", kinds.join(" or ")),
            )
        })
}

/// `items.changes {account, collection, cursor?, limit?}`.
fn changes(store: &Store, account: &str, params: &Value, me: &[String]) -> Result<Value, RpcError> {
    let href = normalize_href(&required_string(params, "collection")?);
    let col = collection(store, account, &href, &["calendar", "tasks", "addressbook"])?;
    let cursor = optional_string(params, "cursor")?;
    let limit = page_limit(params)?;
    let page = store
        .changes_since(account, &href, cursor.as_deref(), limit)
        .map_err(store_error)?;
    let mut items = Vec::new();
    let mut removed = Vec::new();
    let mut bytes = 0usize;
    let mut taken = 0usize;
    for entry in &page.entries {
        let (value, size) = match &entry.item {
            Some(item) => {
                let v = item_json(item, &col.kind, me);
                let size = json_len(&v);
                (Some(v), size)
            }
            None => (None, entry.href.len() + 3),
        };
        if taken > 0 && bytes + size > PAGE_BYTES {
            break;
        }
        bytes += size + 1;
        taken += 1;
        match value {
            Some(v) => items.push(v),
            None => removed.push(Value::String(entry.href.clone())),
        }
    }
    let more = page.more || taken < page.entries.len();
    Ok(json!({
        "items": items,
        "removed": removed,
        "cursor": page.cursor_after(taken),
        "more": more,
        "reset": page.reset,
    }))
}

/// The Outlook class of a mirrored item in a collection of `kind`.
pub(crate) fn class_of(item: &ItemRecord, kind: &str) -> Option<ItemClass> {
    if kind == "addressbook" {
        return Some(match &item.contact {
            Some(c) => ItemClass::of_contact_kind(&c.kind),
            None => {
                let upper = item.body.to_ascii_uppercase();
                if upper.contains("KIND:GROUP") {
                    ItemClass::DistList
                } else {
                    ItemClass::Contact
                }
            }
        });
    }
    match &item.event {
        Some(e) => ItemClass::of_component(&e.component),
        None if item.body.contains("BEGIN:VTODO") && !item.body.contains("BEGIN:VEVENT") => {
            Some(ItemClass::Task)
        }
        None => Some(ItemClass::Appointment),
    }
}

/// `{href, etag, class, fields}`, or `{href, etag, class, error}` for an item the model cannot read.
pub(crate) fn item_json(item: &ItemRecord, kind: &str, me: &[String]) -> Value {
    let class = class_of(item, kind);
    let mut v = json!({
        "href": item.href,
        "etag": item.etag,
        "class": class.map(ItemClass::as_str).unwrap_or("appointment"),
    });
    let fields = match (&item.error, class) {
        (Some(error), _) => Err(error.clone()),
        (None, None) => Err(format!(
            "a {} is not an Outlook item",
            item.event
                .as_ref()
                .map(|e| e.component.as_str())
                .unwrap_or("component")
        )),
        (None, Some(class)) => item::read(class, &item.body).map(|mut f| {
            if class == ItemClass::Appointment {
                item::appointment::received(&mut f, me);
            }
            f
        }),
    };
    match fields {
        Ok(fields) => v["fields"] = Value::Object(fields),
        Err(error) => v["error"] = error.into(),
    }
    v
}

/// The user's calendar user addresses, for `MeetingStatus` (who organizes a meeting).
fn me(store: &Store, spec: Option<&AccountSpec>) -> Result<Vec<String>, RpcError> {
    let Some(spec) = spec else {
        return Ok(Vec::new());
    };
    let scheduling = store.dav_scheduling(&spec.name).map_err(store_error)?;
    Ok(opconnect_actors::meetings::my_addresses(
        spec,
        scheduling.as_ref(),
    ))
}

/// The collection and mirrored item named by `params.href` (code 5 if there is none).
fn find(
    store: &Store,
    account: &str,
    params: &Value,
    kinds: &[&str],
) -> Result<(CollectionRecord, ItemRecord), RpcError> {
    let href = normalize_href(&required_string(params, "href")?);
    let mut cols = store.dav_collections_of(account, kinds).map_err(store_error)?;
    // The deepest collection first, should one be nested in another.
    cols.sort_by_key(|c| std::cmp::Reverse(c.href.len()));
    for col in cols {
        if href.starts_with(&col.href)
            && let Some(item) = store.dav_item(account, &col.href, &href).map_err(store_error)?
        {
            return Ok((col, item));
        }
    }
    Err(RpcError::new(
        code::NOT_FOUND,
        format!("no item `{href}` in account `{account}`"),
    ))
}

fn writable(col: &CollectionRecord) -> Result<(), RpcError> {
    if col.read_only {
        return Err(RpcError::new(
            code::NOT_SUPPORTED,
            format!("`{}` is read-only for this account", col.href),
        ));
    }
    Ok(())
}

/// What the caller does about a refused patch: fix a field (-32602) or write raw data (2).
fn patch_error(e: PatchError) -> RpcError {
    match e {
        PatchError::Field { ref field, .. } => {
            let field = field.clone();
            RpcError::invalid_params(e.to_string()).with_data(json!({"field": field}))
        }
        PatchError::Unfaithful(_) | PatchError::Unreadable(_) => {
            RpcError::new(code::NOT_SUPPORTED, e.to_string())
        }
    }
}

fn field_set(params: &Value, key: &str) -> Result<FieldSet, RpcError> {
    match params.get(key) {
        Some(Value::Object(map)) => Ok(map.clone()),
        _ => Err(RpcError::invalid_params(format!(
            "`{key}` must be an object of fields"
        ))),
    }
}

/// `items.create {account, collection, class, fields, wait?}` → `{op, href, uid}`.
async fn create(
    hub: &Addr<Hub>,
    store: &Store,
    events: &broadcast::Sender<Event>,
    spec: &AccountSpec,
    params: &Value,
) -> Result<Value, RpcError> {
    let account = spec.name.as_str();
    let class_name = required_string(params, "class")?;
    let class = ItemClass::parse(&class_name)
        .filter(|c| *c != ItemClass::Note)
        .ok_or_else(|| {
            RpcError::invalid_params(format!(
                "`class` must be appointment, task, contact or distlist (notes: notes.put), not `{class_name}`"
            ))
        })?;
    let calendar = matches!(class, ItemClass::Appointment | ItemClass::Task);
    let kinds: &[&str] = if calendar {
        &["calendar", "tasks"]
    } else {
        &["addressbook"]
    };
    let href = normalize_href(&required_string(params, "collection")?);
    let col = collection(store, account, &href, kinds)?;
    writable(&col)?;
    let fields = field_set(params, "fields")?;
    // A client may choose the UID (`GlobalUid`, as Outlook's GlobalAppointmentID), so that a
    // create repeated after a lost answer names the same resource instead of making a second one.
    let uid = match fields.get("GlobalUid").and_then(Value::as_str).map(str::trim) {
        Some(u) if !u.is_empty() && u.len() <= 255 && !u.chars().any(char::is_control) => u.to_owned(),
        _ => item::new_uid(),
    };
    let item_href = new_href(&col.href, &uid, calendar);
    if store
        .dav_item(account, &col.href, &item_href)
        .map_err(store_error)?
        .is_some()
    {
        // Already created (the first answer was lost): nothing new to write.
        return Ok(json!({"op": null, "href": item_href, "uid": uid, "exists": true}));
    }
    let mut body = item::create(class, &uid, &fields).map_err(patch_error)?;
    if class == ItemClass::DistList {
        body = in_book_dialect(store, account, &col.href, body)?;
    }
    let put = Put {
        collection: col.href,
        href: item_href.clone(),
        body,
        if_match: None,
        schedule_tag: None,
    };
    let answer = json!({"href": item_href, "uid": uid});
    journal(
        hub,
        store,
        events,
        params,
        spec,
        vec![DavOp::put(calendar, put)],
        calendar,
        answer,
    )
    .await
}

/// `items.patch {account, href, etag, changes, wait?}` → `{op}`.
async fn patch(
    hub: &Addr<Hub>,
    store: &Store,
    events: &broadcast::Sender<Event>,
    spec: &AccountSpec,
    params: &Value,
) -> Result<Value, RpcError> {
    let account = spec.name.as_str();
    let (col, item) = find(store, account, params, &["calendar", "tasks", "addressbook"])?;
    writable(&col)?;
    let etag = required_string(params, "etag")?;
    let changes = field_set(params, "changes")?;
    let class = class_of(&item, &col.kind).ok_or_else(|| {
        RpcError::new(
            code::NOT_SUPPORTED,
            format!("`{}` is not an Outlook item", item.href),
        )
    })?;
    let body = item::patch(class, &item.body, &changes).map_err(patch_error)?;
    let calendar = col.kind != "addressbook";
    let put = Put {
        collection: col.href,
        href: item.href.clone(),
        body,
        // The version the client was handed: if the server has moved on, its 412 is a conflict.
        if_match: Some(etag),
        schedule_tag: None,
    };
    let answer = json!({"href": item.href});
    journal(
        hub,
        store,
        events,
        params,
        spec,
        vec![DavOp::put(calendar, put)],
        calendar,
        answer,
    )
    .await
}

/// `items.delete {account, href, etag?, wait?}` → `{op}`.
async fn delete(
    hub: &Addr<Hub>,
    store: &Store,
    events: &broadcast::Sender<Event>,
    spec: &AccountSpec,
    params: &Value,
) -> Result<Value, RpcError> {
    let account = spec.name.as_str();
    let (col, item) = find(store, account, params, &["calendar", "tasks", "addressbook"])?;
    writable(&col)?;
    let if_match = optional_string(params, "etag")?
        .or(item.etag)
        .or_else(|| Some("*".into()));
    let calendar = col.kind != "addressbook";
    let op = DavOp::delete(
        calendar,
        Delete {
            collection: col.href,
            href: item.href,
            if_match,
        },
    );
    journal(hub, store, events, params, spec, vec![op], calendar, json!({})).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_sizes() {
        assert_eq!(page_limit(&json!({})).unwrap(), DEFAULT_LIMIT);
        assert_eq!(page_limit(&json!({"limit": 5})).unwrap(), 5);
        for bad in [json!({"limit": 0}), json!({"limit": 1001}), json!({"limit": "x"})] {
            assert_eq!(page_limit(&bad).unwrap_err().code, code::INVALID_PARAMS);
        }
        let v = json!({"a": "é\"", "b": [1, 2]});
        assert_eq!(json_len(&v), serde_json::to_vec(&v).unwrap().len());
    }

    #[test]
    fn classes_follow_the_component_and_the_card_kind() {
        let todo = ItemRecord::parsed(
            "/c/",
            "/c/t.ics",
            None,
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:t\r\nSUMMARY:T\r\nEND:VTODO\r\nEND:VCALENDAR\r\n".into(),
            true,
        );
        assert_eq!(class_of(&todo, "calendar"), Some(ItemClass::Task));
        let group = ItemRecord::parsed(
            "/b/",
            "/b/g.vcf",
            None,
            "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:g\r\nFN:G\r\nKIND:group\r\nEND:VCARD\r\n".into(),
            false,
        );
        assert_eq!(class_of(&group, "addressbook"), Some(ItemClass::DistList));
        let v = item_json(&todo, "calendar", &[]);
        assert_eq!(v["class"], "task");
        assert!(v.get("fields").is_some() || v.get("error").is_some());
    }
}
