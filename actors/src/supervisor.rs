//! `AccountSupervisor`: one actor per account that starts its service children, restarts them
//! with backoff when they fail or panic, pauses and resumes them, and tells the hub its state.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::{Actor, AsyncContext, Context, Handler, Message, Recipient, SpawnHandle};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::error::ServiceError;
use crate::status::{AccountStatus, LastError, ServiceKind, ServiceStatus, State, derive_state};
use crate::supervise::{
    Backoff, ChildCommand, ChildContext, ChildExit, ChildFactory, ChildReport, Inbox, child,
};

/// First retry delay after a failure.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// A refused login or an untrusted certificate will not fix itself quickly; retry slowly
/// (and never hammer a server that may lock the account) unless the user asks to sync.
const SLOW_RETRY: Duration = Duration::from_secs(60);
/// A service that stayed online this long earns a fresh backoff when it next fails; one that
/// fails right after connecting keeps backing off (rate-limited reconnects).
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// The hub hears every change of the account's status.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct AccountChanged(pub AccountStatus);

/// Stop all network activity of the account (invariant 9).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Pause;

#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Resume;

/// Work now: wake running children, and restart waiting ones at once with a fresh backoff.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SyncNow;

/// A command for the child that runs `kind`.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ForChild {
    pub kind: ServiceKind,
    pub command: ChildCommand,
}

struct Child {
    factory: ChildFactory,
    status: ServiceStatus,
    generation: u64,
    task: Option<JoinHandle<()>>,
    retry: Option<SpawnHandle>,
    backoff: Backoff,
    wake: Rc<Notify>,
    inbox: Inbox,
    online_at: Option<Instant>,
}

pub struct AccountSupervisor {
    name: String,
    hub: Recipient<AccountChanged>,
    children: BTreeMap<ServiceKind, Child>,
    paused: bool,
    last_sync: Option<String>,
}

impl AccountSupervisor {
    pub fn new(
        name: &str,
        children: Vec<(ServiceKind, ChildFactory)>,
        hub: Recipient<AccountChanged>,
        backoff_max: Duration,
        paused: bool,
    ) -> Self {
        let children = children
            .into_iter()
            .map(|(kind, factory)| {
                let child = Child {
                    factory,
                    status: ServiceStatus::connecting(),
                    generation: 0,
                    task: None,
                    retry: None,
                    backoff: Backoff::new(BACKOFF_BASE, backoff_max),
                    wake: Rc::new(Notify::new()),
                    inbox: Inbox::default(),
                    online_at: None,
                };
                (kind, child)
            })
            .collect();
        AccountSupervisor {
            name: name.to_owned(),
            hub,
            children,
            paused,
            last_sync: None,
        }
    }

    /// The account's status as the hub shows it (counts are filled in by the hub from the store).
    pub fn status(&self) -> AccountStatus {
        let services: BTreeMap<String, ServiceStatus> = self
            .children
            .iter()
            .map(|(kind, c)| (kind.as_str().to_owned(), c.status.clone()))
            .collect();
        let (state, error) = derive_state(self.paused, &services);
        AccountStatus {
            name: self.name.clone(),
            state,
            error,
            last_sync: self.last_sync.clone(),
            pending_ops: 0,
            conflicts: 0,
            services,
        }
    }

    fn publish(&self) {
        self.hub.do_send(AccountChanged(self.status()));
    }

    fn start_child(&mut self, kind: ServiceKind, ctx: &mut Context<Self>) {
        let report = ctx.address().recipient();
        let Some(child) = self.children.get_mut(&kind) else {
            return;
        };
        if let Some(task) = child.task.take() {
            task.abort();
        }
        if let Some(retry) = child.retry.take() {
            ctx.cancel_future(retry);
        }
        child.generation += 1;
        let cx = ChildContext::new(
            kind,
            child.generation,
            report,
            child.wake.clone(),
            child.inbox.clone(),
        );
        let future = (child.factory)(cx.clone());
        child.task = Some(child::spawn(future, &cx));
        child.status.retry_at = None;
        if child.status.state != State::Online {
            child.status.state = State::Connecting;
        }
        tracing::debug!(account = %self.name, service = kind.as_str(), generation = child.generation, "child started");
    }

    fn start_all(&mut self, ctx: &mut Context<Self>) {
        let kinds: Vec<ServiceKind> = self.children.keys().copied().collect();
        for kind in kinds {
            self.start_child(kind, ctx);
        }
    }

    fn stop_all(&mut self, ctx: &mut Context<Self>) {
        for child in self.children.values_mut() {
            if let Some(task) = child.task.take() {
                task.abort();
            }
            if let Some(retry) = child.retry.take() {
                ctx.cancel_future(retry);
            }
            child
                .inbox
                .fail_pending(&ServiceError::transient("sync is paused"));
            // Reports of the aborted run are stale from now on.
            child.generation += 1;
            child.online_at = None;
            child.status = ServiceStatus {
                state: State::Paused,
                last_error: child.status.last_error.take(),
                ..ServiceStatus::connecting()
            };
        }
    }

    fn on_exit(&mut self, kind: ServiceKind, exit: ChildExit, ctx: &mut Context<Self>) {
        let name = self.name.clone();
        let Some(child) = self.children.get_mut(&kind) else {
            return;
        };
        child.task = None;
        if child
            .online_at
            .take()
            .is_some_and(|at| at.elapsed() >= STABLE_AFTER)
        {
            child.backoff.reset();
        }
        let mut delay = child.backoff.next_delay();
        let (state, error) = match &exit {
            ChildExit::Finished => (State::Connecting, None),
            ChildExit::Failed(err @ ServiceError::Transient { retry_after, .. }) => {
                if let Some(after) = retry_after {
                    delay = delay.max(*after);
                }
                (State::Offline, Some(err.to_string()))
            }
            ChildExit::Failed(err) => {
                delay = delay.max(SLOW_RETRY);
                (State::Error, Some(err.to_string()))
            }
            ChildExit::Panicked(msg) => (State::Error, Some(format!("internal error, restarting: {msg}"))),
        };
        match &exit {
            ChildExit::Panicked(_) => {
                tracing::error!(account = %name, service = kind.as_str(), ?delay, error = ?error, "child panicked")
            }
            _ => {
                tracing::warn!(account = %name, service = kind.as_str(), ?delay, error = ?error, "service down")
            }
        }
        // What waits for an answer from the server gets one now, not after the restart (a
        // `mail.fetch` queued behind a stalled command would otherwise wait for the next run).
        let why = ServiceError::transient(error.clone().unwrap_or_else(|| "the connection ended".into()));
        child.inbox.fail_pending(&why);
        let now = std::time::SystemTime::now();
        child.status = ServiceStatus {
            state,
            last_error: error.clone().map(|message| LastError {
                message,
                at: humantime::format_rfc3339_seconds(now).to_string(),
            }),
            error,
            detail: std::mem::take(&mut child.status.detail),
            retry_at: Some(humantime::format_rfc3339_seconds(now + delay).to_string()),
            ..ServiceStatus::connecting()
        };
        child.retry = Some(ctx.run_later(delay, move |act, ctx| {
            if let Some(child) = act.children.get_mut(&kind) {
                child.retry = None;
            }
            if !act.paused {
                act.start_child(kind, ctx);
                act.publish();
            }
        }));
    }
}

impl Actor for AccountSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.paused {
            self.stop_all(ctx);
        } else {
            self.start_all(ctx);
        }
        self.publish();
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        for child in self.children.values_mut() {
            if let Some(task) = child.task.take() {
                task.abort();
            }
        }
    }
}

impl Handler<ChildReport> for AccountSupervisor {
    type Result = ();

    fn handle(&mut self, report: ChildReport, ctx: &mut Context<Self>) {
        let (kind, generation) = match &report {
            ChildReport::Online { kind, generation, .. }
            | ChildReport::Synced { kind, generation }
            | ChildReport::Exited { kind, generation, .. } => (*kind, *generation),
        };
        let Some(child) = self.children.get_mut(&kind) else {
            return;
        };
        if child.generation != generation || self.paused {
            return;
        }
        match report {
            ChildReport::Online { detail, .. } => {
                let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
                child.online_at = Some(Instant::now());
                child.status = ServiceStatus {
                    state: State::Online,
                    since: Some(now),
                    detail,
                    last_error: child.status.last_error.take(),
                    ..ServiceStatus::connecting()
                };
                tracing::info!(account = %self.name, service = kind.as_str(), "online");
            }
            ChildReport::Synced { .. } => {
                self.last_sync =
                    Some(humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string());
            }
            ChildReport::Exited { exit, .. } => self.on_exit(kind, exit, ctx),
        }
        self.publish();
    }
}

impl Handler<Pause> for AccountSupervisor {
    type Result = ();

    fn handle(&mut self, _: Pause, ctx: &mut Context<Self>) {
        self.paused = true;
        self.stop_all(ctx);
        tracing::info!(account = %self.name, "paused");
        self.publish();
    }
}

impl Handler<Resume> for AccountSupervisor {
    type Result = ();

    fn handle(&mut self, _: Resume, ctx: &mut Context<Self>) {
        if !self.paused {
            return;
        }
        self.paused = false;
        for child in self.children.values_mut() {
            child.backoff.reset();
            child.status = ServiceStatus {
                last_error: child.status.last_error.take(),
                ..ServiceStatus::connecting()
            };
        }
        self.start_all(ctx);
        tracing::info!(account = %self.name, "resumed");
        self.publish();
    }
}

impl Handler<SyncNow> for AccountSupervisor {
    type Result = ();

    fn handle(&mut self, _: SyncNow, ctx: &mut Context<Self>) {
        if self.paused {
            return;
        }
        let mut restart = Vec::new();
        for (kind, child) in &mut self.children {
            if child.task.is_some() {
                child.wake.notify_one();
            } else {
                child.backoff.reset();
                restart.push(*kind);
            }
        }
        for kind in restart {
            self.start_child(kind, ctx);
        }
        self.publish();
    }
}

impl Handler<ForChild> for AccountSupervisor {
    type Result = ();

    fn handle(&mut self, msg: ForChild, _: &mut Context<Self>) {
        let Some(child) = self.children.get_mut(&msg.kind) else {
            msg.command.fail(ServiceError::Unsupported(format!(
                "no {} server is configured for this account",
                msg.kind.as_str()
            )));
            return;
        };
        if child.task.is_none() {
            // Down or paused: answer what needs the server now, keep the rest for the next run.
            let why = if self.paused {
                ServiceError::transient("sync is paused")
            } else {
                ServiceError::transient(
                    child
                        .status
                        .error
                        .clone()
                        .unwrap_or_else(|| "not connected".into()),
                )
            };
            if let Some(kept) = msg.command.fail(why) {
                child.inbox.push(kept);
            }
            return;
        }
        child.inbox.push(msg.command);
    }
}
