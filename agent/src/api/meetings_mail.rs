//! Meetings over mail (iMIP, RFC 6047) for accounts whose calendar server does not schedule:
//! the sends a calendar write causes, `meetings.list` / `meetings.respond` with `source:"mail"`,
//! and the REPLY, REQUEST and CANCEL messages that arrive in INBOX, applied to the user's calendar.
//!
//! ```text
//!  calendar write ─► outgoing(): REQUEST/CANCEL ─┐ one txn with the DAV write; the IMAP child
//!  meetings.respond ─► PARTSTAT put + REPLY ─────┘ submits each mail.send exactly once
//!  `mail.new` in INBOX, meetings.list ─► scan ─┬► REPLY: organizer's copy gets that PARTSTAT
//!                                              ├► REQUEST, higher SEQUENCE: replaces the copy
//!                                              └► CANCEL: the user's copy gets STATUS:CANCELLED
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::Addr;
use opconnect_actors::AccountSpec;
use opconnect_actors::formats::itip;
use opconnect_actors::hub::Hub;
use opconnect_actors::journal::dav_op::Put;
use opconnect_actors::journal::{DavOp, MailOp};
use opconnect_actors::meetings::imip::{self, store as imip_store};
use opconnect_actors::meetings::{Delivery, Invitation, Response};
use opconnect_actors::status::ServiceKind;
use opconnect_actors::store::Store;
use opconnect_actors::supervise::ChildCommand;
use opconnect_ipc::rpc::code;
use opconnect_ipc::{Event, RpcError};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::api::{optional_string, required_string, store_error, verdict, wake};

/// INBOX messages looked at, newest first.
const SCAN: usize = 200;

/// The user's address when the account sends its meetings' mail itself.
fn imip_user(store: &Store, spec: &AccountSpec) -> Option<String> {
    let account = spec.name.as_str();
    match opconnect_actors::meetings::delivery(store, spec) {
        Ok(Some(Delivery::Imip)) => Some(spec.email.clone()),
        Ok(Some(_)) => None,
        // The CalDAV child has not asked the server yet (a new account, not yet online): no
        // mail, rather than a second invitation beside a scheduling server's.
        Ok(None) => {
            tracing::info!(
                account,
                "iMIP: the server's scheduling is not known yet; no meeting mail"
            );
            None
        }
        Err(e) => {
            tracing::warn!(account, error = %e, "iMIP: the server's scheduling is unreadable; no meeting mail");
            None
        }
    }
}

/// Inside a runtime, starts applying arrived replies, updates and cancellations when new mail
/// reaches INBOX.
pub fn start(
    hub: &Addr<Hub>,
    store: &Store,
    events: &broadcast::Sender<Event>,
    specs: &Arc<BTreeMap<String, AccountSpec>>,
) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    let (hub, store, specs, mut rx) = (hub.clone(), store.clone(), specs.clone(), events.subscribe());
    tokio::spawn(async move {
        loop {
            let event = match rx.recv().await {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let Some(spec) = event
                .data
                .get("account")
                .and_then(Value::as_str)
                .and_then(|a| specs.get(a))
            else {
                continue;
            };
            let account = spec.name.as_str();
            // New mail in INBOX only: what was there before the agent started is read when
            // `meetings.list` is called or the next message arrives, so that starting an agent
            // on a large mailbox fetches nothing it was not asked for.
            let inbox = event.data.get("folder").and_then(Value::as_str) == Some("INBOX");
            if event.topic == "mail.new"
                && inbox
                && let Some(user) = imip_user(&store, spec)
                && let Err(e) = apply_arrived(&hub, &store, account, &user).await
            {
                tracing::warn!(account, "iMIP: {}", e.message);
            }
        }
    });
}

/// The iMIP sends of `ops` (calendar writes by the user), with put bodies whose SEQUENCE was
/// raised for a significant change; one list of sends per operation.
pub(crate) fn outgoing(
    store: &Store,
    spec: &AccountSpec,
    ops: Vec<DavOp>,
) -> Result<(Vec<DavOp>, Vec<Vec<MailOp>>), RpcError> {
    let account = spec.name.as_str();
    let Some(user) = imip_user(store, spec) else {
        let none = ops.iter().map(|_| Vec::new()).collect();
        return Ok((ops, none));
    };
    let now = imip::now();
    let mut out = Vec::new();
    let mut sends = Vec::new();
    for op in ops {
        let previous = store
            .dav_item(account, op.collection(), op.href())
            .map_err(store_error)?
            .map(|i| i.body);
        match op {
            DavOp::CalendarPut(mut put) => {
                let (body, mail) = imip::on_put(&user, previous.as_deref(), &put.body, now);
                put.body = body;
                out.push(DavOp::CalendarPut(put));
                sends.push(mail);
            }
            DavOp::CalendarDelete(delete) => {
                let mail = previous
                    .map(|p| imip::on_delete(&user, &p, now))
                    .unwrap_or_default();
                out.push(DavOp::CalendarDelete(delete));
                sends.push(mail);
            }
            other => {
                out.push(other);
                sends.push(Vec::new());
            }
        }
    }
    Ok((out, sends))
}

/// An iTIP message that arrived in INBOX.
struct Arrived {
    key: String,
    method: String,
    ics: String,
}

/// The iTIP messages among the newest INBOX messages, newest first. Bodies come from the mirror
/// or are fetched once (and kept there).
async fn scan(hub: &Addr<Hub>, store: &Store, account: &str) -> Result<Vec<Arrived>, RpcError> {
    let Some(folder) = store.folder(account, "INBOX").map_err(store_error)? else {
        return Ok(Vec::new());
    };
    let uidvalidity = folder.uidvalidity.unwrap_or(0);
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .messages(account, "INBOX", after, 1000)
            .map_err(store_error)?;
        let Some(last) = page.last() else { break };
        after = last.uid;
        all.extend(page.into_iter().map(|m| m.uid));
    }
    all.sort_unstable_by(|a, b| b.cmp(a));
    all.truncate(SCAN);
    let mut out = Vec::new();
    for uid in all {
        let key = format!("INBOX:{uidvalidity}:{uid}");
        let not_itip = format!("none:{key}");
        if imip_store::applied(store, account, &not_itip).map_err(store_error)? {
            continue;
        }
        let raw = match store.body(account, "INBOX", uid).map_err(store_error)? {
            Some(raw) => raw,
            None => {
                let fetched = crate::api::ask(hub, account.to_owned(), ServiceKind::Imap, |reply| {
                    ChildCommand::FetchBody {
                        folder: "INBOX".into(),
                        uid,
                        reply,
                    }
                })
                .await;
                // Expunged meanwhile, or the server away: the next scan looks again.
                let Ok(raw) = fetched else { continue };
                let _ = store.put_body(account, "INBOX", uid, &raw);
                raw
            }
        };
        match itip::calendar_part(&raw) {
            Some((method, ics)) => out.push(Arrived { key, method, ics }),
            None => imip_store::mark_applied(store, account, &not_itip).map_err(store_error)?,
        }
    }
    Ok(out)
}

/// Applies arrived REPLYs (the organizer's copy gets the attendee's PARTSTAT), updates (a REQUEST
/// with a higher SEQUENCE replaces the user's copy) and CANCELs (the user's copy gets
/// STATUS:CANCELLED), each once, through patch writes that keep every other line.
async fn apply_arrived(hub: &Addr<Hub>, store: &Store, account: &str, user: &str) -> Result<(), RpcError> {
    let mut wrote = false;
    // Oldest first: a later answer, update or cancellation wins over an earlier one.
    for arrived in scan(hub, store, account).await?.into_iter().rev() {
        if !matches!(arrived.method.as_str(), "REQUEST" | "REPLY" | "CANCEL")
            || imip_store::applied(store, account, &arrived.key).map_err(store_error)?
        {
            continue;
        }
        let Some(m) = itip::meeting(&arrived.ics) else {
            imip_store::mark_applied(store, account, &arrived.key).map_err(store_error)?;
            continue;
        };
        let copy = imip_store::find_uid(store, account, &m.uid).map_err(store_error)?;
        let stored = copy.as_ref().and_then(|c| itip::meeting(&c.body));
        let body = match (arrived.method.as_str(), &copy, &stored) {
            // RFC 5546 §3.2.3: a reply to an older revision no longer speaks for the meeting.
            ("REPLY", Some(copy), Some(s)) if s.organized_by(user) && m.sequence >= s.sequence => m
                .attendees
                .first()
                .map(|a| itip::with_partstat(&copy.body, &a.address, &a.partstat)),
            // An update of a meeting the user has a copy of (RFC 5546 §3.2.2.1): the new
            // revision replaces it.
            ("REQUEST", Some(_), Some(s))
                if !s.organized_by(user)
                    && m.organized_by(s.organizer.as_deref().unwrap_or(""))
                    && m.sequence > s.sequence =>
            {
                Some(imip::stored_copy(&arrived.ics))
            }
            ("CANCEL", Some(copy), Some(s))
                if !s.organized_by(user) && m.organized_by(s.organizer.as_deref().unwrap_or("")) =>
            {
                Some(itip::cancelled(&copy.body))
            }
            _ => None,
        };
        if let (Some(copy), Some(body)) = (copy, body)
            && body != copy.body
        {
            let put = DavOp::put(
                true,
                Put {
                    collection: copy.collection.clone(),
                    href: copy.href.clone(),
                    body,
                    if_match: copy.etag.clone().or_else(|| Some("*".into())),
                    schedule_tag: None,
                },
            );
            journal(store, account, put, Vec::new()).await?;
            wrote = true;
        }
        imip_store::mark_applied(store, account, &arrived.key).map_err(store_error)?;
    }
    if wrote {
        wake(hub, account, ServiceKind::Caldav).await;
    }
    Ok(())
}

/// Journals a DAV write and its sends in one transaction (off the async thread).
async fn journal(store: &Store, account: &str, op: DavOp, mail: Vec<MailOp>) -> Result<u64, RpcError> {
    let (writer, who) = (store.clone(), account.to_owned());
    tokio::task::spawn_blocking(move || {
        let item = opconnect_actors::children::dav_replay::current(&op, true).map_err(|e| e.to_string())?;
        imip_store::journal_with_mail(&writer, &who, &op, item.as_ref(), &mail).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| RpcError::internal(e.to_string()))?
    .map_err(store_error)
}

/// `meetings.list {account}` (mail part): invitations and cancellations that arrived in INBOX
/// for the user (not their own meetings), newest first, with the user's PARTSTAT as it stands.
pub async fn list(hub: &Addr<Hub>, store: &Store, spec: &AccountSpec) -> Result<Vec<Invitation>, RpcError> {
    let account = spec.name.as_str();
    let Some(user) = imip_user(store, spec) else {
        return Ok(Vec::new());
    };
    // What arrived since the last sync counts before the list is read.
    apply_arrived(hub, store, account, &user).await?;
    let mut out = Vec::new();
    for arrived in scan(hub, store, account).await? {
        if !matches!(arrived.method.as_str(), "REQUEST" | "CANCEL") {
            continue;
        }
        let Some(m) = itip::meeting(&arrived.ics) else {
            continue;
        };
        if m.organized_by(&user) {
            continue;
        }
        let copy = imip_store::find_uid(store, account, &m.uid).map_err(store_error)?;
        let partstat = copy
            .as_ref()
            .and_then(|c| itip::meeting(&c.body))
            .and_then(|c| c.partstat_of(&user).map(str::to_owned));
        let id = format!("mail:{}", arrived.key);
        out.extend(imip::invitation(
            id,
            &arrived.method,
            &arrived.ics,
            &user,
            partstat.as_deref(),
        ));
    }
    Ok(out)
}

/// `meetings.respond {account, id: "mail:…", response, comment?, wait?}`: the user's PARTSTAT in
/// their copy (made from the invitation in the first writable calendar when absent) and a REPLY
/// to the organizer, journaled together → `{op, href}` (op: the calendar write).
pub async fn respond(
    hub: &Addr<Hub>,
    store: &Store,
    events: &broadcast::Sender<Event>,
    spec: &AccountSpec,
    params: &Value,
) -> Result<Value, RpcError> {
    let account = spec.name.as_str();
    let user = imip_user(store, spec).ok_or_else(|| {
        RpcError::new(
            code::NOT_SUPPORTED,
            format!("account `{account}` cannot answer by mail (it needs smtp, imap and an email address)"),
        )
    })?;
    let id = required_string(params, "id")?;
    let response: Response =
        serde_json::from_value(params.get("response").cloned().unwrap_or(Value::Null))
            .map_err(|_| RpcError::invalid_params("`response` must be accepted, tentative or declined"))?;
    let comment = optional_string(params, "comment")?;
    let key = id
        .strip_prefix("mail:")
        .ok_or_else(|| RpcError::invalid_params(format!("`{id}` is not an invitation that came by mail")))?;
    let arrived = scan(hub, store, account)
        .await?
        .into_iter()
        .find(|a| a.key == key && a.method == "REQUEST")
        .ok_or_else(|| RpcError::new(code::NOT_FOUND, format!("no invitation `{id}` in INBOX")))?;
    let m =
        itip::meeting(&arrived.ics).ok_or_else(|| RpcError::invalid_params("the invitation has no UID"))?;
    let partstat = response.partstat();
    let put = match imip_store::find_uid(store, account, &m.uid).map_err(store_error)? {
        Some(copy) => Put {
            body: itip::with_partstat(&copy.body, &user, partstat),
            if_match: copy.etag.clone().or_else(|| Some("*".into())),
            schedule_tag: None,
            collection: copy.collection,
            href: copy.href,
        },
        None => {
            let calendar = store
                .dav_collections_of(account, &["calendar"])
                .map_err(store_error)?
                .into_iter()
                .find(|c| !c.read_only)
                .ok_or_else(|| {
                    RpcError::new(
                        code::NOT_FOUND,
                        format!("account `{account}` has no writable calendar"),
                    )
                })?;
            Put {
                body: itip::with_partstat(&imip::stored_copy(&arrived.ics), &user, partstat),
                if_match: None,
                schedule_tag: None,
                href: crate::api::dav_write::new_href(&calendar.href, &m.uid, true),
                collection: calendar.href,
            }
        }
    };
    let href = put.href.clone();
    let reply = imip::reply(&user, &arrived.ics, partstat, comment.as_deref(), imip::now())
        .ok_or_else(|| RpcError::invalid_params("the invitation names no organizer to reply to"))?;
    let verdicts = events.subscribe();
    let op = journal(store, account, DavOp::put(true, put), vec![reply]).await?;
    wake(hub, account, ServiceKind::Caldav).await;
    wake(hub, account, ServiceKind::Imap).await;
    let answer = json!({"op": op, "href": href});
    if params.get("wait").and_then(Value::as_bool).unwrap_or(false) {
        verdict(store, verdicts, op, answer).await
    } else {
        Ok(answer)
    }
}
