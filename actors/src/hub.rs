//! The `Hub`: knows every account's supervisor and latest status, routes pause/resume/sync, and
//! turns status changes into `state` events.
//!
//! ```text
//!  IPC / tray ── Control, GetStatus ──► Hub ── Pause/Resume/SyncNow ──► AccountSupervisor ×N
//!                                        ▲                                   │
//!         event bus ◄── "state" ─────────┴──────── AccountChanged ◄──────────┘
//! ```

use std::collections::BTreeMap;

use actix::{Actor, Addr, AsyncContext, Context, Handler, Message};
use serde_json::json;

use crate::events::{AgentEvent, EventBus};
use crate::progress::{self, Board};
use crate::status::ServiceKind;
use crate::status::{AccountStatus, StatusReport};
use crate::store::Store;
use crate::supervise::ChildCommand;
use crate::supervisor::{AccountChanged, AccountSupervisor, ForChild, Pause, Resume, SyncNow};

/// Builds the supervisor of one account, given the hub's address (so it can report).
pub type SupervisorFactory = Box<dyn FnOnce(Addr<Hub>, bool) -> AccountSupervisor>;

/// What the caller does next: `UnknownAccount` is the user's mistake (IPC code 1).
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum HubError {
    #[error("unknown account `{0}`")]
    UnknownAccount(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pause,
    Resume,
    Sync,
}

/// Pause, resume or sync one account, or all of them.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), HubError>")]
pub struct Control {
    pub action: Action,
    pub account: Option<String>,
}

#[derive(Debug, Message)]
#[rtype(result = "StatusReport")]
pub struct GetStatus;

/// Whether an account of this name is configured (cheap: no store reads, unlike `GetStatus`).
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct Knows(pub String);

/// Hands a command to one service child of one account.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), HubError>")]
pub struct ToAccount {
    pub account: String,
    pub kind: ServiceKind,
    pub command: ChildCommand,
}

struct Account {
    supervisor: Addr<AccountSupervisor>,
    status: Option<AccountStatus>,
}

pub struct Hub {
    accounts: BTreeMap<String, Account>,
    events: EventBus,
    store: Option<Store>,
    paused_all: bool,
    /// What each service is doing now, from the bus's progress events (`status` activity).
    board: Board,
}

/// An event the hub keeps track of (progress, the end of a round).
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct Observed(AgentEvent);

/// Hands the progress-related events of the bus to the hub.
fn watch_progress(mut rx: tokio::sync::broadcast::Receiver<AgentEvent>, hub: Addr<Hub>) {
    use tokio::sync::broadcast::error::RecvError;
    actix::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(e) if matches!(e.topic.as_str(), progress::TOPIC | progress::FAILED | "synced") => {
                    hub.do_send(Observed(e))
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            }
        }
    });
}

impl Handler<Observed> for Hub {
    type Result = ();

    fn handle(&mut self, Observed(event): Observed, _: &mut Context<Self>) {
        self.board.observe(&event);
    }
}

impl Hub {
    /// Starts the hub and one supervisor per account, all on the current arbiter.
    pub fn launch(
        accounts: Vec<(String, SupervisorFactory)>,
        events: EventBus,
        store: Option<Store>,
        paused: bool,
    ) -> Addr<Hub> {
        Hub::create(move |ctx| {
            let hub = ctx.address();
            let accounts = accounts
                .into_iter()
                .map(|(name, make)| {
                    let supervisor = make(hub.clone(), paused).start();
                    (
                        name,
                        Account {
                            supervisor,
                            status: None,
                        },
                    )
                })
                .collect();
            watch_progress(events.subscribe(), hub);
            Hub {
                accounts,
                events,
                store,
                paused_all: paused,
                board: Board::default(),
            }
        })
    }

    fn counts(&self, status: &mut AccountStatus) {
        if let Some(store) = &self.store {
            match (
                store.pending_ops(&status.name),
                store.conflict_count(&status.name),
            ) {
                (Ok(ops), Ok(conflicts)) => {
                    status.pending_ops = ops;
                    status.conflicts = conflicts;
                }
                (Err(e), _) | (_, Err(e)) => tracing::error!(account = %status.name, "store: {e}"),
            }
        }
    }
}

impl Actor for Hub {
    type Context = Context<Self>;
}

impl Handler<AccountChanged> for Hub {
    type Result = ();

    fn handle(&mut self, AccountChanged(status): AccountChanged, _: &mut Context<Self>) {
        let Some(account) = self.accounts.get_mut(&status.name) else {
            return;
        };
        let changed = account
            .status
            .as_ref()
            .is_none_or(|old| old.state != status.state || old.error != status.error);
        if changed {
            let mut event = json!({"account": status.name, "state": status.state});
            if let Some(error) = &status.error {
                event["error"] = json!(error);
            }
            let _ = self.events.send(AgentEvent::new("state", event));
        }
        account.status = Some(status);
    }
}

impl Handler<GetStatus> for Hub {
    type Result = actix::MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Context<Self>) -> Self::Result {
        let mut accounts = Vec::with_capacity(self.accounts.len());
        for (name, account) in &self.accounts {
            let mut status = account.status.clone().unwrap_or_else(|| AccountStatus {
                name: name.clone(),
                state: crate::status::State::Connecting,
                error: None,
                last_sync: None,
                pending_ops: 0,
                conflicts: 0,
                services: BTreeMap::new(),
            });
            self.counts(&mut status);
            for (service, s) in status.services.iter_mut() {
                s.activity = Some(self.board.activity(name, service, s.state, s.retry_at.as_deref()));
            }
            accounts.push(status);
        }
        actix::MessageResult(StatusReport {
            paused: self.paused_all,
            accounts,
        })
    }
}

impl Handler<Control> for Hub {
    type Result = Result<(), HubError>;

    fn handle(&mut self, control: Control, _: &mut Context<Self>) -> Self::Result {
        let targets: Vec<&Account> = match &control.account {
            Some(name) => vec![
                self.accounts
                    .get(name)
                    .ok_or_else(|| HubError::UnknownAccount(name.clone()))?,
            ],
            None => self.accounts.values().collect(),
        };
        for account in targets {
            match control.action {
                Action::Pause => account.supervisor.do_send(Pause),
                Action::Resume => account.supervisor.do_send(Resume),
                Action::Sync => account.supervisor.do_send(SyncNow),
            }
        }
        if control.account.is_none() {
            match control.action {
                Action::Pause => self.paused_all = true,
                Action::Resume => self.paused_all = false,
                Action::Sync => {}
            }
        }
        Ok(())
    }
}

impl Handler<ToAccount> for Hub {
    type Result = Result<(), HubError>;

    fn handle(&mut self, msg: ToAccount, _: &mut Context<Self>) -> Self::Result {
        let account = self
            .accounts
            .get(&msg.account)
            .ok_or_else(|| HubError::UnknownAccount(msg.account.clone()))?;
        account.supervisor.do_send(ForChild {
            kind: msg.kind,
            command: msg.command,
        });
        Ok(())
    }
}

impl Handler<Knows> for Hub {
    type Result = bool;

    fn handle(&mut self, Knows(name): Knows, _: &mut Context<Self>) -> bool {
        self.accounts.contains_key(&name)
    }
}
