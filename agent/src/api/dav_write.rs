//! Calendar and contact writes (`calendar.put`, `calendar.delete`, `contacts.put`,
//! `contacts.delete`) and conflict resolution (`conflicts.list`, `conflicts.resolve`).
//!
//! A write is checked (the collection exists and is writable, the body parses), journaled with
//! the etag it is based on, applied to the mirror, and replayed by the DAV child with `If-Match`.

use std::collections::BTreeMap;

use actix::Addr;
use opconnect_actors::AccountSpec;
use opconnect_actors::children::dav_replay::{copy_op, current};
use opconnect_actors::dav::sync::normalize_href;
use opconnect_actors::hub::Hub;
use opconnect_actors::journal::DavOp;
use opconnect_actors::journal::dav_op::{Delete, Put};
use opconnect_actors::status::ServiceKind;
use opconnect_actors::store::Store;
use opconnect_actors::store::records::ConflictRecord;
use opconnect_ipc::rpc::code;
use opconnect_ipc::{Event, RpcError};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::api::{known_account, optional_string, required_string, store_error, verdict};

/// `calendar.put` / `contacts.put`.
pub async fn put(
    hub: &Addr<Hub>,
    store: &Store,
    events: &broadcast::Sender<Event>,
    accounts: &BTreeMap<String, AccountSpec>,
    params: &Value,
    calendar: bool,
) -> Result<Value, RpcError> {
    let account = known_account(hub, params).await?;
    let spec = accounts
        .get(&account)
        .ok_or_else(|| RpcError::unknown_account(&account))?;
    let (collection_key, body_key, kinds) = if calendar {
        ("calendar", "ics", &["calendar", "tasks"][..])
    } else {
        ("book", "vcf", &["addressbook"][..])
    };
    let collection = normalize_href(&required_string(params, collection_key)?);
    let record = store
        .dav_collection(&account, &collection)
        .map_err(store_error)?
        .filter(|c| kinds.contains(&c.kind.as_str()))
        .ok_or_else(|| {
            RpcError::new(
                code::NOT_FOUND,
                format!("no {collection_key} `{collection}` in account `{account}`"),
            )
        })?;
    if record.read_only {
        return Err(RpcError::new(
            code::NOT_SUPPORTED,
            format!("`{collection}` is read-only for this account"),
        ));
    }
    let mut body = required_string(params, body_key)?;
    if !calendar {
        body = in_book_dialect(store, &account, &collection, body)?;
    }
    let uid = if calendar {
        opconnect_actors::formats::ical::parse_event(body.as_bytes()).map(|e| e.uid)
    } else {
        opconnect_actors::formats::vcard::parse_contact(body.as_bytes()).map(|c| c.uid)
    }
    .map_err(|e| RpcError::invalid_params(format!("`{body_key}` cannot be read: {e}")))?;
    let href = match optional_string(params, "href")?.map(|h| normalize_href(&h)) {
        Some(href) if href.starts_with(&collection) && href.len() > collection.len() => href,
        Some(href) => {
            return Err(RpcError::invalid_params(format!(
                "`href` {href} is not inside {collection}"
            )));
        }
        None => new_href(&collection, &uid, calendar),
    };
    // The version the client edited: its etag, else the mirror's; none means a new item.
    let if_match = match optional_string(params, "etag")? {
        Some(etag) => Some(etag),
        None => store
            .dav_item(&account, &collection, &href)
            .map_err(store_error)?
            .map(|item| item.etag.unwrap_or_else(|| "*".into())),
    };
    let put = Put {
        collection,
        href: href.clone(),
        body,
        if_match,
        schedule_tag: None,
    };
    let op = DavOp::put(calendar, put);
    journal(
        hub,
        store,
        events,
        params,
        spec,
        vec![op],
        calendar,
        json!({"href": href}),
    )
    .await
}

/// `calendar.delete` / `contacts.delete`.
pub async fn delete(
    hub: &Addr<Hub>,
    store: &Store,
    events: &broadcast::Sender<Event>,
    accounts: &BTreeMap<String, AccountSpec>,
    params: &Value,
    calendar: bool,
) -> Result<Value, RpcError> {
    let account = known_account(hub, params).await?;
    let spec = accounts
        .get(&account)
        .ok_or_else(|| RpcError::unknown_account(&account))?;
    let href = normalize_href(&required_string(params, "href")?);
    let kinds: &[&str] = if calendar {
        &["calendar", "tasks"]
    } else {
        &["addressbook"]
    };
    let mut found = None;
    for col in store.dav_collections_of(&account, kinds).map_err(store_error)? {
        if href.starts_with(&col.href)
            && let Some(item) = store.dav_item(&account, &col.href, &href).map_err(store_error)?
        {
            if col.read_only {
                return Err(RpcError::new(
                    code::NOT_SUPPORTED,
                    format!("`{}` is read-only for this account", col.href),
                ));
            }
            found = Some((col.href, item));
            break;
        }
    }
    let (collection, item) = found.ok_or_else(|| {
        RpcError::new(
            code::NOT_FOUND,
            format!("no item `{href}` in account `{account}`"),
        )
    })?;
    let if_match = optional_string(params, "etag")?
        .or(item.etag)
        .or_else(|| Some("*".into()));
    let delete = Delete {
        collection,
        href,
        if_match,
    };
    let op = DavOp::delete(calendar, delete);
    journal(hub, store, events, params, spec, vec![op], calendar, json!({})).await
}

/// The href of a new item named after its UID, in the one form hrefs are kept in.
pub(crate) fn new_href(collection: &str, uid: &str, calendar: bool) -> String {
    normalize_href(&format!(
        "{collection}{}.{}",
        file_name(uid),
        if calendar { "ics" } else { "vcf" }
    ))
}

/// Journals the writes (durable first), wakes the DAV child, and waits when asked.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn journal(
    hub: &Addr<Hub>,
    store: &Store,
    events: &broadcast::Sender<Event>,
    params: &Value,
    spec: &AccountSpec,
    ops: Vec<DavOp>,
    calendar: bool,
    mut answer: Value,
) -> Result<Value, RpcError> {
    let account = spec.name.as_str();
    let wait = params.get("wait").and_then(Value::as_bool).unwrap_or(false);
    let verdicts = events.subscribe();
    // A meeting the user organizes tells its attendees by mail (iMIP) where the server does not.
    let (ops, mail) = if calendar {
        super::meetings_mail::outgoing(store, spec, ops)?
    } else {
        let none = ops.iter().map(|_| Vec::new()).collect();
        (ops, none)
    };
    let sends = mail.iter().any(|m| !m.is_empty());
    let (writer, who) = (store.clone(), account.to_owned());
    let id = tokio::task::spawn_blocking(move || {
        let mut last = 0;
        for (op, mail) in ops.iter().zip(&mail) {
            let item = current(op, calendar).map_err(|e| e.to_string())?;
            last = if mail.is_empty() {
                writer.journal_dav(&who, op, item.as_ref())
            } else {
                opconnect_actors::meetings::imip::store::journal_with_mail(
                    &writer,
                    &who,
                    op,
                    item.as_ref(),
                    mail,
                )
            }
            .map_err(|e| e.to_string())?;
        }
        Ok::<u64, String>(last)
    })
    .await
    .map_err(|e| RpcError::internal(e.to_string()))?
    .map_err(store_error)?;
    wake(hub, account, calendar).await;
    if sends {
        super::wake(hub, account, ServiceKind::Imap).await;
    }
    answer["op"] = json!(id);
    if wait {
        verdict(store, verdicts, id, answer).await
    } else {
        Ok(answer)
    }
}

async fn wake(hub: &Addr<Hub>, account: &str, calendar: bool) {
    let kind = if calendar {
        ServiceKind::Caldav
    } else {
        ServiceKind::Carddav
    };
    super::wake(hub, account, kind).await;
}

/// A group card in the dialect the book already uses (vCard 4 KIND or Apple's X- properties).
pub(crate) fn in_book_dialect(
    store: &Store,
    account: &str,
    book: &str,
    vcf: String,
) -> Result<String, RpcError> {
    use opconnect_actors::formats::group;
    if group::dialect_of(&vcf).is_none() {
        return Ok(vcf);
    }
    let items = store.dav_items_of(account, book).map_err(store_error)?;
    let cards: Vec<_> = items.iter().filter_map(|i| i.contact.clone()).collect();
    Ok(
        match group::book_dialect(items.iter().map(|i| i.body.as_str()), &cards) {
            Some(dialect) => group::convert(&vcf, dialect),
            None => vcf,
        },
    )
}

/// A safe file name for a UID (RFC 4791 §5.3.2 leaves the resource name to the client).
fn file_name(uid: &str) -> String {
    uid.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `conflicts.list`.
pub fn list(store: &Store) -> Result<Value, RpcError> {
    let conflicts = store.conflicts_all().map_err(store_error)?;
    Ok(conflicts
        .into_iter()
        .map(|c| {
            json!({"id": c.id, "account": c.account, "kind": c.kind, "summary": c.summary,
                        "local": c.local, "server": c.server, "detected": c.detected})
        })
        .collect())
}

/// `conflicts.resolve {id, keep: server|local|both}`: journals the writes that make the server
/// hold the chosen version(s), and drops the record, in one transaction.
pub async fn resolve(hub: &Addr<Hub>, store: &Store, params: &Value) -> Result<Value, RpcError> {
    let id = params
        .get("id")
        .and_then(Value::as_u64)
        .ok_or_else(|| RpcError::invalid_params("`id` must be a conflict id"))?;
    let keep = required_string(params, "keep")?;
    let conflict = store
        .conflict(id)
        .map_err(store_error)?
        .ok_or_else(|| RpcError::new(code::NOT_FOUND, format!("no conflict {id}")))?;
    let writes = plan(store, &conflict, &keep)?;
    let calendar = conflict.kind == "calendar";
    let with_items: Vec<(DavOp, Option<_>)> = writes
        .into_iter()
        .map(|op| {
            let item = current(&op, calendar).ok().flatten();
            (op, item)
        })
        .collect();
    let ids = store
        .resolve_conflict(&conflict, &with_items)
        .map_err(store_error)?;
    wake(hub, &conflict.account, calendar).await;
    Ok(json!({"ops": ids}))
}

/// The writes that carry out `keep`, given which version the policy put in effect.
fn plan(store: &Store, c: &ConflictRecord, keep: &str) -> Result<Vec<DavOp>, RpcError> {
    let calendar = c.kind == "calendar";
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let href = text(&c.local, "href").unwrap_or_default();
    let collection = text(&c.local, "collection").unwrap_or_default();
    let applied = text(&c.server, "applied").unwrap_or_else(|| "server".into());
    let copy_href = text(&c.local, "copy_href");
    // Based on whatever the mirror holds now, whichever version that is.
    let now = store
        .dav_item(&c.account, &collection, &href)
        .map_err(store_error)?;
    let if_match = now.as_ref().map(|i| i.etag.clone().unwrap_or_else(|| "*".into()));
    let make_put = |body: String| {
        let put = Put {
            collection: collection.clone(),
            href: href.clone(),
            body,
            if_match: if_match.clone(),
            schedule_tag: None,
        };
        DavOp::put(calendar, put)
    };
    let make_delete = |h: String, m: Option<String>| {
        let d = Delete {
            collection: collection.clone(),
            href: h,
            if_match: m.or_else(|| Some("*".into())),
        };
        DavOp::delete(calendar, d)
    };
    let version = |side: &Value| -> Option<DavOp> {
        match text(side, "body") {
            Some(body) => Some(make_put(body)),
            None => now.as_ref().map(|_| make_delete(href.clone(), if_match.clone())),
        }
    };
    let drop_copy = || copy_href.clone().map(|h| make_delete(h, None));
    let mut writes = Vec::new();
    match (keep, applied.as_str()) {
        ("server", "server") | ("local", "local") | ("both", "both") => {}
        ("server", _) => writes.extend(version(&c.server).into_iter().chain(drop_copy())),
        ("local", _) => writes.extend(version(&c.local).into_iter().chain(drop_copy())),
        ("both", "server") => {
            if let Some(body) = text(&c.local, "body") {
                writes.push(copy_op(&make_put(body.clone()), &body, calendar));
            }
        }
        ("both", _) => {
            writes.extend(version(&c.server));
            if let Some(body) = text(&c.local, "body") {
                writes.push(copy_op(&make_put(body.clone()), &body, calendar));
            }
        }
        (other, _) => {
            return Err(RpcError::invalid_params(format!(
                "`keep` must be server, local or both, not `{other}`"
            )));
        }
    }
    Ok(writes)
}
