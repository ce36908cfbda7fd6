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
use opconnect_actors::dav::sync::normalize_href;

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
            let book = normalize_href(&required_string(params, "book")?);
            listing(store, &account, &book, &["addressbook"], params, |item| {
                vec![contact_json(item)]
            })
        }
        _ => Err(RpcError::method_not_found(method)),
    }
}

fn collections(store: &Store, account: &str, kinds: &[&str]) -> Result<Vec<CollectionRecord>, RpcError> {
    store.dav_collections_of(account, kinds).map_err(store_error)
}

/// The largest answer without paging: the frame limit less room for the JSON-RPC envelope.
const WHOLE_ANSWER_BYTES: usize = opconnect_ipc::MAX_FRAME - (64 << 10);
/// Cursors of `calendar.items` / `contacts.items` pages: the last href answered, behind a tag
/// (clients treat the whole string as opaque).
const CURSOR_TAG: &str = "after:";

/// The items of a collection rendered by `render` (one item may give several values, e.g. the
/// occurrences of a series). Without `limit`/`cursor` the answer is the array of INTERFACE §4,
/// or -32602 with `data.page: true` when it would not fit in a frame; with either, one page
/// `{items, more, cursor}` of at most `limit` items (default 200, at most 1000) that stops
/// before [`PAGE_BYTES`](crate::api::items::PAGE_BYTES). An unknown collection is code 5.
fn listing(
    store: &Store,
    account: &str,
    href: &str,
    kinds: &[&str],
    params: &Value,
    render: impl Fn(&ItemRecord) -> Vec<Value>,
) -> Result<Value, RpcError> {
    use crate::api::items::{PAGE_BYTES, json_len, page_limit};
    match store.dav_collection(account, href).map_err(store_error)? {
        Some(c) if kinds.contains(&c.kind.as_str()) => {}
        _ => {
            return Err(RpcError::new(
                code::NOT_FOUND,
                format!("account {account:?} has no {} {href:?}", kinds.join(" or ")),
            ));
        }
    }
    let paged = params.get("limit").is_some_and(|v| !v.is_null())
        || params.get("cursor").is_some_and(|v| !v.is_null());
    if !paged {
        let items = store.dav_items_of(account, href).map_err(store_error)?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for item in &items {
            for v in render(item) {
                bytes += json_len(&v) + 1;
                if bytes > WHOLE_ANSWER_BYTES {
                    return Err(RpcError::invalid_params(format!(
                        "the answer would exceed the {} MiB frame limit: ask again with `limit` (and then \
                         each answer's `cursor`) to read {href} page by page",
                        opconnect_ipc::MAX_FRAME >> 20
                    ))
                    .with_data(json!({"page": true})));
                }
                out.push(v);
            }
        }
        return Ok(Value::Array(out));
    }
    let limit = page_limit(params)?;
    let after = match optional_string(params, "cursor")? {
        None => None,
        Some(c) => Some(
            c.strip_prefix(CURSOR_TAG)
                .map(str::to_owned)
                .ok_or_else(|| RpcError::invalid_params("`cursor` is not one this method handed out"))?,
        ),
    };
    let (items, mut more) = store
        .dav_items_after(account, href, after.as_deref(), limit)
        .map_err(store_error)?;
    let mut out = Vec::new();
    let mut bytes = 0usize;
    let mut last = after;
    for (i, item) in items.iter().enumerate() {
        let values = render(item);
        let size: usize = values.iter().map(|v| json_len(v) + 1).sum();
        if i > 0 && bytes + size > PAGE_BYTES {
            more = true;
            break;
        }
        bytes += size;
        out.extend(values);
        last = Some(item.href.clone());
    }
    Ok(json!({
        "items": out,
        "more": more,
        "cursor": last.map(|h| format!("{CURSOR_TAG}{h}")),
    }))
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
    let calendar = normalize_href(&calendar);
    listing(
        store,
        account,
        &calendar,
        &["calendar", "tasks"],
        params,
        |item| calendar_values(item, start, end),
    )
}

/// One item of `calendar.items`: itself, or with a range its occurrences in that range.
fn calendar_values(
    item: &ItemRecord,
    start: Option<ical::UtcTime>,
    end: Option<ical::UtcTime>,
) -> Vec<Value> {
    let mut out = Vec::new();
    {
        let base = event_json(item);
        let (Some(fields), true) = (&item.event, start.is_some() || end.is_some()) else {
            out.push(Value::Object(base));
            return out;
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
    out
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
