//! Calendar, task and contact methods (`calendar.*`, `contacts.*`, INTERFACE §4). Reads come from
//! the mirror the DAV pollers fill, never from the network; `calendar.items` with a range expands
//! recurrences locally (RRULE, EXDATE, overrides, time zones).

use actix::Addr;
use opconnect_actors::formats::ical;
use opconnect_actors::hub::Hub;
use opconnect_actors::store::Store;
use opconnect_actors::store::records::{CollectionRecord, ItemRecord, PrincipalRecord};
use opconnect_ipc::RpcError;
use opconnect_ipc::rpc::code;
use serde_json::{Map, Value, json};

use crate::api::{known_account, optional_string, required_string, store_error};

pub async fn call(hub: &Addr<Hub>, store: &Store, method: &str, params: &Value) -> Result<Value, RpcError> {
    match method {
        "calendar.list" => {
            let account = known_account(hub, params).await?;
            let cols = collections(store, &account, &["calendar", "tasks"])?;
            Ok(cols.iter().map(calendar_json).collect())
        }
        "calendar.delegations" => {
            let account = known_account(hub, params).await?;
            delegations(store, &account)
        }
        "calendar.items" => {
            let account = known_account(hub, params).await?;
            calendar_items(store, &account, params)
        }
        "contacts.books" => {
            let account = known_account(hub, params).await?;
            let books = collections(store, &account, &["addressbook"])?;
            Ok(books
                .iter()
                .map(|b| {
                    json!({
                        "href": b.href,
                        "name": b.name.clone().unwrap_or_else(|| last_segment(&b.href)),
                        "read_only": b.read_only,
                        "directory": b.directory,
                    })
                })
                .collect())
        }
        "contacts.items" => {
            let account = known_account(hub, params).await?;
            let book = required_string(params, "book")?;
            let items = items_of(store, &account, &book, &["addressbook"])?;
            Ok(items.iter().map(contact_json).collect())
        }
        _ => Err(RpcError::method_not_found(method)),
    }
}

fn collections(store: &Store, account: &str, kinds: &[&str]) -> Result<Vec<CollectionRecord>, RpcError> {
    store.dav_collections_of(account, kinds).map_err(store_error)
}

/// The items of one collection of the given kinds; an unknown href is code 5.
fn items_of(store: &Store, account: &str, href: &str, kinds: &[&str]) -> Result<Vec<ItemRecord>, RpcError> {
    match store.dav_collection(account, href).map_err(store_error)? {
        Some(c) if kinds.contains(&c.kind.as_str()) => store.dav_items_of(account, href).map_err(store_error),
        _ => Err(RpcError::new(
            code::NOT_FOUND,
            format!("account {account:?} has no {} {href:?}", kinds.join(" or ")),
        )),
    }
}

fn last_segment(href: &str) -> String {
    href.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(href)
        .to_owned()
}

fn calendar_json(c: &CollectionRecord) -> Value {
    let mut v = json!({
        "href": c.href,
        "name": c.name.clone().unwrap_or_else(|| last_segment(&c.href)),
        "components": c.components,
        "kind": c.kind,
        "read_only": c.read_only,
    });
    if let Some(color) = &c.color {
        v["color"] = color.clone().into();
    }
    if let Some(owner) = &c.owner {
        v["owner"] = owner.clone().into();
    }
    if !c.held.is_empty() {
        v["held_removals"] = c.held.len().into();
    }
    v
}

/// `calendar.delegations`: whom the user acts for (with the calendars of theirs in the mirror)
/// and who acts for the user, as last read from the server's calendar-proxy groups. Before the
/// first read the lists are empty; a server without calendar-proxy is code 2.
fn delegations(store: &Store, account: &str) -> Result<Value, RpcError> {
    let Some(record) = store.dav_delegations(account).map_err(store_error)? else {
        return Ok(json!({"read_for": [], "write_for": [], "delegates": []}));
    };
    if !record.supported {
        return Err(RpcError::new(
            code::NOT_SUPPORTED,
            format!("the CalDAV server of account `{account}` publishes no calendar-proxy delegation"),
        ));
    }
    let calendars = collections(store, account, &["calendar", "tasks"])?;
    let person = |p: &PrincipalRecord, with_calendars: bool| {
        let mut v = json!({"principal": p.principal});
        if let Some(name) = &p.name {
            v["name"] = name.clone().into();
        }
        if let Some(email) = &p.email {
            v["email"] = email.clone().into();
        }
        if with_calendars {
            let theirs: Vec<&str> = calendars
                .iter()
                .filter(|c| c.owner.as_deref() == Some(p.principal.as_str()))
                .map(|c| c.href.as_str())
                .collect();
            v["calendars"] = json!(theirs);
        } else {
            v["access"] = p.access.clone().into();
        }
        v
    };
    Ok(json!({
        "read_for": record.read_for.iter().map(|p| person(p, true)).collect::<Vec<_>>(),
        "write_for": record.write_for.iter().map(|p| person(p, true)).collect::<Vec<_>>(),
        "delegates": record.delegates.iter().map(|p| person(p, false)).collect::<Vec<_>>(),
        "checked": record.checked,
    }))
}

/// `calendar.items`: every item, or with `start`/`end` the occurrences in that range.
fn calendar_items(store: &Store, account: &str, params: &Value) -> Result<Value, RpcError> {
    let calendar = required_string(params, "calendar")?;
    let bound = |key: &str| -> Result<Option<ical::UtcTime>, RpcError> {
        optional_string(params, key)?
            .map(|t| ical::parse_bound(&t).map_err(|e| RpcError::invalid_params(format!("`{key}`: {e}"))))
            .transpose()
    };
    let (start, end) = (bound("start")?, bound("end")?);
    let items = items_of(store, account, &calendar, &["calendar", "tasks"])?;
    let mut out = Vec::new();
    for item in &items {
        let base = event_json(item);
        let (Some(fields), true) = (&item.event, start.is_some() || end.is_some()) else {
            out.push(Value::Object(base));
            continue;
        };
        let from = start.unwrap_or(ical::RANGE_MIN);
        let to = end.unwrap_or(ical::RANGE_MAX);
        match ical::instances(item.body.as_bytes(), from, to) {
            Ok(instances) if instances.is_empty() => {
                // RFC 4791 §9.9: a VTODO without DTSTART and DUE matches every range.
                if fields.component == "VTODO" && fields.start.is_none() && fields.due.is_none() {
                    out.push(Value::Object(base));
                }
            }
            Ok(instances) => {
                for i in instances {
                    let mut v = base.clone();
                    v.insert("start".into(), i.start.into());
                    v.insert("end".into(), i.end.into());
                    if let Some(s) = i.summary {
                        v.insert("summary".into(), s.into());
                    }
                    if fields.recurring {
                        v.insert("overridden".into(), i.overridden.into());
                    }
                    out.push(Value::Object(v));
                }
            }
            Err(e) => {
                let mut v = base;
                v.insert("error".into(), e.into());
                out.push(Value::Object(v));
            }
        }
    }
    Ok(Value::Array(out))
}

fn event_json(item: &ItemRecord) -> Map<String, Value> {
    let mut v = Map::new();
    v.insert("href".into(), item.href.clone().into());
    v.insert("etag".into(), item.etag.clone().into());
    match &item.event {
        Some(e) => {
            v.insert("uid".into(), e.uid.clone().into());
            v.insert("component".into(), e.component.clone().into());
            v.insert("summary".into(), e.summary.clone().into());
            for (key, when) in [("start", &e.start), ("end", &e.end), ("due", &e.due)] {
                if let Some(w) = when {
                    v.insert(key.into(), w.value.clone().into());
                    if let Some(tz) = &w.tzid {
                        v.insert(format!("{key}_tz"), tz.clone().into());
                    }
                    if key != "end" && w.all_day {
                        v.insert("all_day".into(), true.into());
                    }
                }
            }
            v.insert("recurring".into(), e.recurring.into());
            if !e.warnings.is_empty() {
                v.insert("warnings".into(), e.warnings.clone().into());
            }
        }
        None => {
            v.insert("uid".into(), Value::Null);
            v.insert("recurring".into(), false.into());
        }
    }
    if let Some(err) = &item.error {
        v.insert("error".into(), err.clone().into());
    }
    v.insert("ics".into(), item.body.clone().into());
    v
}

fn contact_json(item: &ItemRecord) -> Value {
    let mut v = json!({ "href": item.href, "etag": item.etag, "vcf": item.body });
    match &item.contact {
        Some(c) => {
            v["uid"] = c.uid.clone().into();
            v["kind"] = c.kind.clone().into();
            v["name"] = c.name.clone().into();
            v["emails"] = c.emails.clone().into();
            v["version"] = c.version.clone().into();
            if c.kind == "group" {
                v["members"] = c.members.clone().into();
            }
        }
        None => {
            v["uid"] = Value::Null;
            v["error"] = item.error.clone().into();
        }
    }
    v
}
