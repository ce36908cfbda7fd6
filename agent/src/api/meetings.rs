//! `meetings.list` and `meetings.respond` for calendars whose server schedules (RFC 6638): the
//! invitations come from the scheduling inbox and the user's calendars, and an answer is the
//! user's own PARTSTAT written into their copy; the server sends the REPLY (no mail from here).
//!
//! ```text
//!  meetings.list {account}
//!    PROPFIND/GET schedule inbox (§2.2) ─► REQUEST/CANCEL ─┐
//!    mirror: events the user attends, organized by others ─┴─► invite::merge ─► [Invitation]
//!  meetings.respond {account, id: "server:HREF", response, comment?, wait?}
//!    the user's copy (mirror; else made from the inbox message) ─► invite::answer ─► journal PUT
//!      (If-Match; the server turns the new PARTSTAT into a REPLY to the organizer, §3.2.2.1)
//! ```

use std::time::Duration;

use actix::Addr;
use opconnect_actors::dav::DavClient;
use opconnect_actors::hub::Hub;
use opconnect_actors::journal::DavOp;
use opconnect_actors::journal::dav_op::Put;
use opconnect_actors::meetings::{self, Invitation, Response, invite, server};
use opconnect_actors::store::Store;
use opconnect_actors::store::records::{CollectionRecord, ItemRecord};
use opconnect_actors::{AccountSpec, ServiceError};
use opconnect_ipc::rpc::code;
use opconnect_ipc::{Event, RpcError};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use url::Url;

use super::dav_write::{journal, new_href};
use super::ooo::Secrets;
use super::{optional_string, required_string, store_error};

/// Per request to the server; the caller is waiting on the answer.
const TIMEOUT: Duration = Duration::from_secs(15);

/// The prefix of the ids this module answers for.
pub const SOURCE: &str = "server";

/// `meetings.list {account}`: invitations and cancellations that reached the user through the
/// server, newest first; empty where the server does not schedule.
pub async fn list(store: &Store, spec: &AccountSpec, secrets: &Secrets) -> Result<Vec<Invitation>, RpcError> {
    let Some(scheduling) = store.dav_scheduling(&spec.name).map_err(store_error)? else {
        return Ok(Vec::new());
    };
    if !scheduling.schedules() {
        return Ok(Vec::new());
    }
    let me = meetings::my_addresses(spec, Some(&scheduling));
    let inbox_url = parse(scheduling.inbox.as_deref().unwrap_or_default())?;
    let client = client(spec, secrets).await?;
    let messages = server::inbox(&client, &inbox_url).await.map_err(rpc_error)?;
    let from_inbox = messages
        .iter()
        .filter_map(|(href, body)| invite::from_inbox(&format!("{SOURCE}:{href}"), body, &me))
        .collect();
    let mut copies = Vec::new();
    for (_, item) in calendar_items(store, &spec.name)? {
        if let Some(inv) = invite::from_calendar(&format!("{SOURCE}:{}", item.href), &item.body, &me) {
            copies.push(inv);
        }
    }
    Ok(invite::merge(from_inbox, copies))
}

/// `meetings.respond {account, id, response, comment?, wait?}` → `{op, href}`.
pub async fn respond(
    hub: &Addr<Hub>,
    store: &Store,
    events: &broadcast::Sender<Event>,
    spec: &AccountSpec,
    secrets: &Secrets,
    params: &Value,
) -> Result<Value, RpcError> {
    let id = required_string(params, "id")?;
    let href = id
        .strip_prefix(SOURCE)
        .and_then(|h| h.strip_prefix(':'))
        .filter(|h| h.starts_with('/'))
        .ok_or_else(|| RpcError::invalid_params(format!("`{id}` is not an id from meetings.list")))?
        .to_owned();
    let response: Response =
        serde_json::from_value(params.get("response").cloned().unwrap_or(Value::Null))
            .map_err(|_| RpcError::invalid_params("`response` must be accepted, tentative or declined"))?;
    let comment = optional_string(params, "comment")?;
    let scheduling = store.dav_scheduling(&spec.name).map_err(store_error)?;
    let me = meetings::my_addresses(spec, scheduling.as_ref());
    let items = calendar_items(store, &spec.name)?;
    // The id names the user's copy, or an inbox message whose UID the copy carries.
    // `stored`: the copy is on the server (mirrored); else it is made here and created.
    let (col, copy, stored) = match items.iter().find(|(_, i)| i.href == href) {
        Some((col, item)) => (col.clone(), item.clone(), true),
        None => {
            let client = client(spec, secrets).await?;
            let url = client
                .base()
                .join(&href)
                .map_err(|e| RpcError::invalid_params(format!("`{id}`: {e}")))?;
            let (itip, _) = client
                .get(&url)
                .await
                .map_err(rpc_error)?
                .ok_or_else(|| RpcError::new(code::NOT_FOUND, format!("invitation `{id}` is gone")))?;
            let inv = invite::from_inbox(&id, &itip, &me).ok_or_else(|| {
                RpcError::invalid_params(format!("`{id}` is not an invitation to {}", spec.email))
            })?;
            match items
                .iter()
                .find(|(_, i)| i.event.as_ref().is_some_and(|e| e.uid == inv.uid))
            {
                Some((col, item)) => (col.clone(), item.clone(), true),
                None => {
                    // Not in the user's calendar yet: a create (no etag) of the invited event.
                    let col = default_calendar(store, &spec.name)?;
                    let made = ItemRecord {
                        href: new_href(&col.href, &inv.uid, true),
                        body: invite::stored_form(&itip),
                        ..ItemRecord::default()
                    };
                    (col, made, false)
                }
            }
        }
    };
    // The server's current copy and its Schedule-Tag when it can be had (RFC 6638 §3.2.10): the
    // answer then rests on what the organizer last sent, and replies of other attendees that
    // changed only the etag meanwhile cannot make it a conflict. Offline: the mirror's copy.
    let fresh = match stored {
        true => fresh(spec, secrets, &copy).await,
        false => None,
    };
    let (copy, schedule_tag) = match fresh {
        Some(s) => (
            ItemRecord {
                body: s.body,
                etag: s.etag.or(copy.etag.clone()),
                ..copy
            },
            s.schedule_tag,
        ),
        None => (copy, None),
    };
    let body = invite::answer(&copy.body, &me, response, comment.as_deref())
        .map_err(|e| RpcError::invalid_params(e.to_string()))?;
    let put = Put {
        collection: col.href.clone(),
        href: copy.href.clone(),
        body,
        // The copy the user saw: a newer one on the server (the organizer changed the meeting)
        // comes back as 412 and is kept as a conflict rather than answered blindly.
        // A mirrored copy without an etag (the server stored it altered and sent none, RFC 4791
        // §5.3.4) is still an update: `If-Match: *`.
        if_match: match stored {
            true => Some(copy.etag.clone().unwrap_or_else(|| "*".into())),
            false => None,
        },
        schedule_tag,
    };
    let answer = json!({"href": copy.href});
    journal(
        hub,
        store,
        events,
        params,
        spec,
        vec![DavOp::put(true, put)],
        true,
        answer,
    )
    .await
}

/// The server's copy of `copy` (body, etag, Schedule-Tag), if it exists there and answers now.
async fn fresh(
    spec: &AccountSpec,
    secrets: &Secrets,
    copy: &ItemRecord,
) -> Option<opconnect_actors::dav::client::Scheduled> {
    let client = client(spec, secrets).await.ok()?;
    let url = client.base().join(&copy.href).ok()?;
    match client.get_scheduled(&url).await {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!(error = %e, href = %copy.href, "answering from the mirror's copy");
            None
        }
    }
}

/// Every item of the account's writable event calendars, with its collection (a calendar of
/// someone who made the user their write proxy counts too: the user may answer there).
fn calendar_items(store: &Store, account: &str) -> Result<Vec<(CollectionRecord, ItemRecord)>, RpcError> {
    let mut out = Vec::new();
    for col in store
        .dav_collections_of(account, &["calendar"])
        .map_err(store_error)?
        .into_iter()
        .filter(|c| !c.read_only)
    {
        for item in store.dav_items_of(account, &col.href).map_err(store_error)? {
            out.push((col.clone(), item));
        }
    }
    Ok(out)
}

/// Where a copy made from an invitation goes: the user's first writable VEVENT calendar.
fn default_calendar(store: &Store, account: &str) -> Result<CollectionRecord, RpcError> {
    store
        .dav_collections_of(account, &["calendar"])
        .map_err(store_error)?
        .into_iter()
        .find(|c| !c.read_only && c.components.iter().any(|x| x.eq_ignore_ascii_case("VEVENT")))
        .ok_or_else(|| {
            RpcError::new(
                code::NOT_FOUND,
                format!("account `{account}` has no writable calendar"),
            )
        })
}

async fn client(spec: &AccountSpec, secrets: &Secrets) -> Result<DavClient, RpcError> {
    let endpoint = spec.caldav.clone().ok_or_else(|| {
        RpcError::new(
            code::NOT_SUPPORTED,
            format!("account `{}` has no caldav server", spec.name),
        )
    })?;
    let secret = secrets
        .get(&spec.name)
        .cloned()
        .ok_or_else(|| RpcError::internal(format!("account `{}` has no password source", spec.name)))?;
    let password = tokio::task::spawn_blocking(move || secret.password())
        .await
        .map_err(|e| RpcError::internal(format!("password lookup failed: {e}")))?
        .map_err(|e| rpc_error(ServiceError::Config(format!("password: {e}"))))?;
    let tls = opconnect_actors::net::tls::client_config(spec.tls_ca.as_deref()).map_err(rpc_error)?;
    // Credentials go to the configured origin only: an inbox the principal put on another host
    // is read without them (and the server refuses), never with them unasked.
    DavClient::new(&endpoint, &spec.username, password, tls, TIMEOUT).map_err(rpc_error)
}

fn parse(url: &str) -> Result<Url, RpcError> {
    Url::parse(url).map_err(|e| RpcError::internal(format!("stored inbox URL `{url}`: {e}")))
}

fn rpc_error(e: ServiceError) -> RpcError {
    let code = match &e {
        ServiceError::Transient { .. } | ServiceError::Tls(_) => code::UNREACHABLE,
        ServiceError::Auth(_) => code::AUTH_FAILED,
        ServiceError::Unsupported(_) => code::NOT_SUPPORTED,
        ServiceError::NotFound(_) => code::NOT_FOUND,
        ServiceError::Config(_) => code::INVALID_PARAMS,
        ServiceError::Protocol(_) => code::INTERNAL_ERROR,
    };
    RpcError::new(code, format!("meetings: {e}"))
}
