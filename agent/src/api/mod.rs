//! The IPC methods of protocol version 1 (INTERFACE §4). Agent methods are answered here by asking
//! the hub; mail methods live in `mail`, calendar and contact methods in `dav`, `account.discover`
//! in `account`. Reads come straight from the store; writes and live operations go through the
//! hub to the account's actors.
//! Method names and error codes are a contract with the Outlook add-in.

mod account;
mod dav;
mod dav_write;
mod freebusy;
mod gal;
mod items;
mod mail;
mod meetings;
mod meetings_mail;
mod notes;
mod ooo;

use actix::Addr;
use futures::FutureExt;
use futures::future::BoxFuture;
use opconnect_actors::AccountSpec;
use opconnect_actors::hub::{Action, Control, GetStatus, Hub, HubError};
use opconnect_actors::store::Store;
use opconnect_ipc::rpc::code;
use opconnect_ipc::{Event, PROTOCOL_VERSION, RpcError, Service};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// The agent's IPC service: a handle on the hub and the event stream.
pub struct AgentApi {
    hub: Addr<Hub>,
    store: Store,
    events: broadcast::Sender<Event>,
    /// `[agent] dns`, for `account.discover`.
    dns: Option<std::net::SocketAddr>,
    /// Which services each account has, to refuse what it cannot do before journaling.
    accounts: std::sync::Arc<std::collections::BTreeMap<String, AccountSpec>>,
    /// Password sources by account, for calls that talk to a server directly (`ooo.*`).
    secrets: ooo::Secrets,
}

impl AgentApi {
    pub fn new(
        hub: Addr<Hub>,
        store: Store,
        events: broadcast::Sender<Event>,
        accounts: Vec<AccountSpec>,
    ) -> Self {
        let accounts = std::sync::Arc::new(accounts.into_iter().map(|a| (a.name.clone(), a)).collect());
        meetings_mail::start(&hub, &store, &events, &accounts);
        AgentApi {
            hub,
            store,
            events,
            dns: None,
            accounts,
            secrets: Default::default(),
        }
    }

    /// The accounts' password sources, for `ooo.get` / `ooo.set`.
    pub fn with_secrets(
        mut self,
        secrets: std::collections::BTreeMap<String, opconnect_actors::account::SharedSecretSource>,
    ) -> Self {
        self.secrets = std::sync::Arc::new(secrets);
        self
    }

    /// The DNS server `account.discover` asks instead of the system's.
    pub fn with_dns(mut self, dns: Option<std::net::SocketAddr>) -> Self {
        self.dns = dns;
        self
    }
}

impl Service for AgentApi {
    fn call(&self, method: String, params: Value) -> BoxFuture<'static, Result<Value, RpcError>> {
        let hub = self.hub.clone();
        let store = self.store.clone();
        let dns = self.dns;
        let events = self.events.clone();
        let accounts = self.accounts.clone();
        let secrets = self.secrets.clone();
        async move {
            match method.as_str() {
                "hello" => Ok(json!({
                    "agent": concat!("opconnect ", env!("CARGO_PKG_VERSION")),
                    "protocol": PROTOCOL_VERSION,
                })),
                "status" => {
                    let report = hub.send(GetStatus).await.map_err(mailbox)?;
                    serde_json::to_value(report).map_err(|e| RpcError::internal(e.to_string()))
                }
                "pause" => control(&hub, Action::Pause, &params).await,
                "resume" => control(&hub, Action::Resume, &params).await,
                "sync" => control(&hub, Action::Sync, &params).await,
                "ops" => ops(&store, &params),
                "ops.retry" => ops_retry(&hub, &store, &params).await,
                "report" => crate::report::ipc(&params, &store).await,
                "notes.list" => {
                    let name = known_account(&hub, &params).await?;
                    notes::list(&store, &name)
                }
                "notes.put" | "notes.delete" => {
                    let name = known_account(&hub, &params).await?;
                    let spec = accounts.get(&name).ok_or_else(|| RpcError::unknown_account(&name))?;
                    if spec.imap.is_none() {
                        return Err(RpcError::new(code::NOT_SUPPORTED, format!("account `{name}` has no imap server for notes")));
                    }
                    if method == "notes.put" {
                        notes::put(&hub, &store, &events, spec, &params).await
                    } else {
                        notes::delete(&hub, &store, &events, &name, &params).await
                    }
                }
                "mail.send" => {
                    let name = known_account(&hub, &params).await?;
                    let spec = accounts.get(&name).ok_or_else(|| RpcError::unknown_account(&name))?;
                    if spec.smtp.is_none() || spec.imap.is_none() {
                        return Err(RpcError::new(
                            code::NOT_SUPPORTED,
                            format!("account `{name}` needs both an smtp and an imap server to send (the copy goes to Sent)"),
                        ));
                    }
                    mail::send(&hub, &store, &events, &params).await
                }
                "meetings.list" | "meetings.respond" => {
                    let name = known_account(&hub, &params).await?;
                    let spec = accounts.get(&name).ok_or_else(|| RpcError::unknown_account(&name))?;
                    // Two sources (MEETINGS.md): the scheduling inbox (`server:` ids) and INBOX mail
                    // (`mail:` ids); each answers empty where the account's delivery is the other.
                    if method == "meetings.list" {
                        let mut list = meetings::list(&store, spec, &secrets).await?;
                        list.extend(meetings_mail::list(&hub, &store, spec).await?);
                        serde_json::to_value(list).map_err(|e| RpcError::internal(e.to_string()))
                    } else if optional_string(&params, "id")?.is_some_and(|id| id.starts_with("mail:")) {
                        meetings_mail::respond(&hub, &store, &events, spec, &params).await
                    } else {
                        meetings::respond(&hub, &store, &events, spec, &secrets, &params).await
                    }
                }
                m if m.starts_with("ooo.") => ooo::call(m, &params, &accounts, &secrets).await,
                m if m.starts_with("account.") => account::call(m, &params, dns).await,
                m if m.starts_with("mail.") => mail::call(&hub, &store, &events, m, &params).await,
                "calendar.put" => dav_write::put(&hub, &store, &events, &accounts, &params, true).await,
                "contacts.put" => dav_write::put(&hub, &store, &events, &accounts, &params, false).await,
                "calendar.delete" => dav_write::delete(&hub, &store, &events, &accounts, &params, true).await,
                "contacts.delete" => dav_write::delete(&hub, &store, &events, &accounts, &params, false).await,
                "conflicts.list" => dav_write::list(&store),
                "calendar.freebusy" => freebusy::call(&hub, &params).await,
                "gal.search" => gal::search(&hub, &store, &params).await,
                "conflicts.resolve" => dav_write::resolve(&hub, &store, &params).await,
                m if m.starts_with("items.") || m == "contacts.photo" => {
                    items::call(&hub, &store, &events, &accounts, m, &params).await
                }
                m if m.starts_with("calendar.") || m.starts_with("contacts.") || m == "gal.search" => {
                    dav::call(&hub, &store, m, &params).await
                }
                _ => Err(RpcError::method_not_found(&method)),
            }
        }
        .boxed()
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}

async fn control(hub: &Addr<Hub>, action: Action, params: &Value) -> Result<Value, RpcError> {
    let account = optional_string(params, "account")?;
    hub.send(Control { action, account })
        .await
        .map_err(mailbox)?
        .map_err(|e| match e {
            HubError::UnknownAccount(name) => RpcError::unknown_account(&name),
        })?;
    Ok(json!({}))
}

/// `params.key` as a string if present; anything else is -32602 naming the key.
/// `ops {account?}`: the pending operations, oldest first (binary content left out).
fn ops(store: &Store, params: &Value) -> Result<Value, RpcError> {
    let account = optional_string(params, "account")?;
    let entries = store
        .journal_pending(account.as_deref())
        .map_err(|e| RpcError::internal(format!("journal: {e}")))?;
    Ok(Value::Array(
        entries
            .into_iter()
            .map(|e| {
                let mut op = e.op;
                if let Some(map) = op.as_object_mut() {
                    map.remove("raw");
                }
                json!({"op": e.id, "account": e.account, "created": e.created, "attempts": e.attempts,
                       "last_error": e.last_error, "detail": op,
                       "parked": e.attempts >= opconnect_actors::journal::MAX_ATTEMPTS,
                       "kind": op.get("kind").cloned().unwrap_or(Value::Null)})
            })
            .collect(),
    ))
}

/// `ops.retry {op}`: a parked operation gets a fresh attempt budget and replay runs now
/// (code -32602 for an id that is not in the journal).
async fn ops_retry(hub: &Addr<Hub>, store: &Store, params: &Value) -> Result<Value, RpcError> {
    let id = params
        .get("op")
        .and_then(Value::as_u64)
        .ok_or_else(|| RpcError::invalid_params("`op` must be an operation id from `ops`"))?;
    if !store
        .journal_retry(id)
        .map_err(|e| RpcError::internal(format!("journal: {e}")))?
    {
        return Err(RpcError::invalid_params(format!(
            "no operation {id} in the journal"
        )));
    }
    control(hub, Action::Sync, &json!({})).await?;
    Ok(json!({"op": id}))
}

/// How long `wait: true` waits for the server before answering that the write stays queued.
const WAIT_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// `wait: true`: the server's verdict on operation `id` (`op.done` → `answer`; `op.failed` → the
/// refusal; nothing within the limit → code 4, the operation stays queued).
pub(crate) async fn verdict(
    store: &Store,
    verdicts: broadcast::Receiver<Event>,
    id: u64,
    answer: Value,
) -> Result<Value, RpcError> {
    verdict_all(store, verdicts, &[id], answer).await
}

/// `wait: true` for a write journaled as several operations (`notes.put`: create the folder,
/// append, delete the old version): the answer once the server confirmed every one of them, or
/// the first refusal. Only `op.done` and `op.failed` are verdicts: progress events of a long
/// operation (`mail.folder.copy.progress`) carry its id too and are not an answer.
/// When the event stream lagged (a verdict may be among the events skipped), the journal answers
/// instead: an operation no longer in it is done, one set aside after its last attempt failed.
pub(crate) async fn verdict_all(
    store: &Store,
    mut verdicts: broadcast::Receiver<Event>,
    ids: &[u64],
    answer: Value,
) -> Result<Value, RpcError> {
    let mut pending: Vec<u64> = ids.to_vec();
    let mut answer = answer;
    let last = ids.last().copied().unwrap_or_default();
    let outcome = tokio::time::timeout(WAIT_LIMIT, async {
        while !pending.is_empty() {
            let event = match verdicts.recv().await {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if let Some(failed) = settled_by_journal(store, &mut pending) {
                        return Err(Some(failed));
                    }
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return Err(None),
            };
            let Some(id) = event.data.get("op").and_then(Value::as_u64) else {
                continue;
            };
            if !pending.contains(&id) {
                continue;
            }
            match event.topic.as_str() {
                "op.done" => {
                    pending.retain(|p| *p != id);
                    if let Some(conflict) = event.data.get("conflict") {
                        answer["conflict"] = conflict.clone();
                    }
                }
                "op.failed" => return Err(Some((id, event))),
                _ => continue,
            }
        }
        Ok(())
    })
    .await;
    match outcome {
        Ok(Ok(())) => Ok(answer),
        Ok(Err(Some((id, event)))) => Err(RpcError::new(
            // No INTERFACE code fits a server's refusal better; the message and `data.op` say what to do.
            code::INTERNAL_ERROR,
            format!(
                "the server refused operation {id}: {} (it stays in the journal)",
                event
                    .data
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
            ),
        )
        .with_data(json!({"op": id}))),
        _ => Err(RpcError::new(
            code::UNREACHABLE,
            format!("operation {last} is saved but the server has not confirmed it yet; it will be replayed"),
        )
        .with_data(json!({"op": last}))),
    }
}

/// Hands `account`'s `kind` child its replay: a write was journaled for it.
pub(crate) async fn wake(hub: &Addr<Hub>, account: &str, kind: opconnect_actors::status::ServiceKind) {
    let _ = hub
        .send(opconnect_actors::hub::ToAccount {
            account: account.to_owned(),
            kind,
            command: opconnect_actors::supervise::ChildCommand::Replay,
        })
        .await;
}

/// After a lag: drops from `pending` the operations the journal no longer holds (done), and
/// answers the first one that was set aside after a failure as its `op.failed` event.
fn settled_by_journal(store: &Store, pending: &mut Vec<u64>) -> Option<(u64, Event)> {
    // On a store error the events that follow may still answer; the limit bounds the wait.
    let entries = store.journal_pending(None).ok()?;
    pending.retain(|id| entries.iter().any(|e| e.id == *id));
    let failed = entries
        .iter()
        .find(|e| pending.contains(&e.id) && e.attempts >= opconnect_actors::journal::MAX_ATTEMPTS);
    failed.map(|e| {
        let error = e.last_error.clone().unwrap_or_else(|| "set aside".to_owned());
        (
            e.id,
            Event::new("op.failed").with("op", e.id).with("error", error),
        )
    })
}

/// Asks one service child of `account` something that needs the server now and waits for the
/// answer: unknown account → 1, no such service → 2, offline or dropped → 4 (INTERFACE §4).
pub(crate) async fn ask<T: Send + 'static>(
    hub: &Addr<Hub>,
    account: String,
    kind: opconnect_actors::status::ServiceKind,
    command: impl FnOnce(
        tokio::sync::oneshot::Sender<Result<T, opconnect_actors::ServiceError>>,
    ) -> opconnect_actors::supervise::ChildCommand,
) -> Result<T, RpcError> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    hub.send(opconnect_actors::hub::ToAccount {
        account,
        kind,
        command: command(reply),
    })
    .await
    .map_err(mailbox)?
    .map_err(|HubError::UnknownAccount(name)| RpcError::unknown_account(&name))?;
    bounded(answer, kind)
        .await?
        .map_err(|_| {
            RpcError::new(
                code::UNREACHABLE,
                format!("the {} connection went away", kind.as_str()),
            )
        })?
        .map_err(mail::service_error)
}

/// The longest `ask` waits for a child: the child's own timeouts (connect, command) answer
/// sooner; this bounds what they cannot see (a command queued behind a long sync).
const ASK_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// `answer`, or code 4 when the child has not answered within `ASK_LIMIT`.
async fn bounded<T>(
    answer: tokio::sync::oneshot::Receiver<T>,
    kind: opconnect_actors::status::ServiceKind,
) -> Result<Result<T, tokio::sync::oneshot::error::RecvError>, RpcError> {
    tokio::time::timeout(ASK_LIMIT, answer).await.map_err(|_| {
        RpcError::new(
            code::UNREACHABLE,
            format!(
                "the {} server has not answered within {}s",
                kind.as_str(),
                ASK_LIMIT.as_secs()
            ),
        )
    })
}

/// `params.key` as a string, required (-32602 naming the key otherwise).
pub(crate) fn required_string(params: &Value, key: &str) -> Result<String, RpcError> {
    optional_string(params, key)?.ok_or_else(|| RpcError::invalid_params(format!("`{key}` is required")))
}

/// A mirror failure, as an internal error.
pub(crate) fn store_error(e: impl std::fmt::Display) -> RpcError {
    RpcError::internal(format!("mirror: {e}"))
}

/// The account named in `params`, if the agent knows it (code 1 otherwise).
pub(crate) async fn known_account(hub: &Addr<Hub>, params: &Value) -> Result<String, RpcError> {
    let account = required_string(params, "account")?;
    if hub
        .send(opconnect_actors::hub::Knows(account.clone()))
        .await
        .map_err(mailbox)?
    {
        Ok(account)
    } else {
        Err(RpcError::unknown_account(&account))
    }
}

pub(crate) fn optional_string(params: &Value, key: &str) -> Result<Option<String>, RpcError> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(RpcError::new(
            code::INVALID_PARAMS,
            format!("`{key}` must be a string, not {other}"),
        )),
    }
}

pub(crate) fn mailbox(e: actix::MailboxError) -> RpcError {
    RpcError::internal(format!("the engine is not answering: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_checked_by_name() {
        assert_eq!(optional_string(&json!({}), "account").unwrap(), None);
        assert_eq!(
            optional_string(&json!({"account": "work"}), "account")
                .unwrap()
                .as_deref(),
            Some("work")
        );
        let e = optional_string(&json!({"account": 5}), "account").unwrap_err();
        assert_eq!(e.code, code::INVALID_PARAMS);
        assert!(e.message.contains("`account`"));
    }

    /// A journal holding operation `done` no more and `parked` set aside after its last attempt.
    fn journal_with_two_ops() -> (tempfile::TempDir, Store, u64, u64) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let op = || opconnect_actors::journal::MailOp::Flag {
            folder: "INBOX".into(),
            uids: vec![1],
            add: vec!["\\Seen".into()],
            remove: vec![],
            uidvalidity: None,
            message_ids: vec![],
        };
        let done = store.journal_mail("work", op()).unwrap();
        let parked = store.journal_mail("work", op()).unwrap();
        store.journal_done("work", done).unwrap();
        store.journal_park("work", parked, "550 refused").unwrap();
        (dir, store, done, parked)
    }

    /// A `wait: true` whose verdict was among the events a lagging receiver skipped is answered
    /// from the journal, not after the 30 s limit.
    #[tokio::test]
    async fn a_lagged_wait_asks_the_journal() {
        let (_dir, store, done, parked) = journal_with_two_ops();
        let (events, receiver) = broadcast::channel(2);
        for _ in 0..5 {
            let _ = events.send(Event::new("mail.changed"));
        }
        let answer = verdict(&store, receiver, done, json!({"op": done})).await;
        assert_eq!(answer.unwrap(), json!({"op": done}));

        let receiver = events.subscribe();
        for _ in 0..5 {
            let _ = events.send(Event::new("mail.changed"));
        }
        let refused = verdict_all(&store, receiver, &[done, parked], json!({})).await;
        let e = refused.unwrap_err();
        assert!(e.message.contains("550 refused"), "{}", e.message);
        assert_eq!(e.data, Some(json!({"op": parked})));
    }
}
