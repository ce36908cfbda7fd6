//! A supervised child: an async task of the account's arbiter that may fail or panic.
//!
//! actix's `Supervisor` restarts an actor that stops, but an actor that panics is simply gone
//! (its address answers `MailboxError::Closed`). So each child runs inside `catch_unwind` at the
//! task boundary and always reports how it ended; the supervisor decides when to start it again
//! (invariant 10).
//!
//! ```text
//!  supervisor ── start(kind) ──► task: catch_unwind(child future)
//!      ▲                               │ online / synced while running
//!      └──────── ChildReport ◄─────────┘ exited(Finished | Failed(err) | Panicked(msg))
//! ```

use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;

use actix::{Message, Recipient};
use futures::FutureExt;
use futures::future::LocalBoxFuture;
use tokio::sync::Notify;

use crate::error::ServiceError;
use crate::status::ServiceKind;

/// The future a child runs; it returns only when it fails or finishes.
pub type ChildFuture = LocalBoxFuture<'static, Result<(), ServiceError>>;

/// Builds a fresh child future for every (re)start.
pub type ChildFactory = Rc<dyn Fn(ChildContext) -> ChildFuture>;

/// How a child ended.
#[derive(Debug, Clone)]
pub enum ChildExit {
    Finished,
    Failed(ServiceError),
    Panicked(String),
}

/// What a child tells its supervisor. `generation` identifies the run, so reports of a run that
/// was already cancelled (pause, sync now) are ignored.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub enum ChildReport {
    Online {
        kind: ServiceKind,
        generation: u64,
        detail: serde_json::Value,
    },
    Synced {
        kind: ServiceKind,
        generation: u64,
    },
    Exited {
        kind: ServiceKind,
        generation: u64,
        exit: ChildExit,
    },
}

/// A request from the client for one child (through hub and supervisor).
#[derive(Debug)]
pub enum ChildCommand {
    /// Give this mail folder its own listener (INTERFACE `mail.watch`).
    Watch(String),
    Unwatch(String),
    /// New operations are in the journal: push them (before the next pull).
    Replay,
    /// Read a folder's access list now (`mail.acl.get`, RFC 4314 GETACL).
    AclGet {
        folder: String,
        reply: tokio::sync::oneshot::Sender<Result<Vec<crate::imap::acl::AclEntry>, ServiceError>>,
    },
    /// Ask the CalDAV server for attendees' busy times now (`calendar.freebusy`).
    FreeBusy {
        attendees: Vec<String>,
        start: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
        reply: tokio::sync::oneshot::Sender<Result<crate::children::freebusy::Answers, ServiceError>>,
    },
    /// Search the directory collections now (`gal.search`).
    GalSearch {
        query: String,
        limit: usize,
        reply: tokio::sync::oneshot::Sender<Result<Vec<crate::dav::gal::Entry>, ServiceError>>,
    },
    /// Fetch a message body now and cache it (`mail.fetch`).
    FetchBody {
        folder: String,
        uid: u32,
        reply: tokio::sync::oneshot::Sender<Result<Vec<u8>, ServiceError>>,
    },
}

impl ChildCommand {
    /// Answers a command that can no longer be carried out (the child is down).
    pub fn fail(self, error: ServiceError) -> Option<ChildCommand> {
        match self {
            ChildCommand::FetchBody { reply, .. } => {
                let _ = reply.send(Err(error));
                None
            }
            ChildCommand::AclGet { reply, .. } => {
                let _ = reply.send(Err(error));
                None
            }
            ChildCommand::FreeBusy { reply, .. } => {
                let _ = reply.send(Err(error));
                None
            }
            ChildCommand::GalSearch { reply, .. } => {
                let _ = reply.send(Err(error));
                None
            }
            other => Some(other),
        }
    }
}

/// Commands waiting for a child; kept across restarts so a watch survives a reconnect.
#[derive(Clone, Default)]
pub struct Inbox {
    queue: Rc<RefCell<VecDeque<ChildCommand>>>,
    signal: Rc<Notify>,
}

impl Inbox {
    /// Queues `command`. A `Replay` joins one already waiting: the child reads the whole journal
    /// when it takes that one, so each more would only repeat the poll round that follows it
    /// (writes journaled while paused queued one per write: benchmark 5b, BENCHMARKS.md).
    pub fn push(&self, command: ChildCommand) {
        let mut queue = self.queue.borrow_mut();
        let waiting = |c: &ChildCommand| matches!(c, ChildCommand::Replay);
        if !(waiting(&command) && queue.iter().any(waiting)) {
            queue.push_back(command);
        }
        drop(queue);
        self.signal.notify_one();
    }

    /// Fails every command that waits for an answer; keeps the others for the next run.
    pub fn fail_pending(&self, error: &ServiceError) {
        let drained: Vec<ChildCommand> = self.queue.borrow_mut().drain(..).collect();
        let kept: VecDeque<ChildCommand> = drained
            .into_iter()
            .filter_map(|c| c.fail(error.clone()))
            .collect();
        *self.queue.borrow_mut() = kept;
    }

    async fn next(&self) -> ChildCommand {
        loop {
            if let Some(command) = self.queue.borrow_mut().pop_front() {
                return command;
            }
            self.signal.notified().await;
        }
    }
}

/// Handed to each run of a child.
#[derive(Clone)]
pub struct ChildContext {
    pub kind: ServiceKind,
    pub generation: u64,
    report: Recipient<ChildReport>,
    wake: Rc<Notify>,
    inbox: Inbox,
}

impl ChildContext {
    pub fn new(
        kind: ServiceKind,
        generation: u64,
        report: Recipient<ChildReport>,
        wake: Rc<Notify>,
        inbox: Inbox,
    ) -> Self {
        ChildContext {
            kind,
            generation,
            report,
            wake,
            inbox,
        }
    }

    /// The next command from the client (cancel-safe: nothing is lost if this is dropped).
    pub async fn next_command(&self) -> ChildCommand {
        self.inbox.next().await
    }

    /// The service is connected and authenticated; `detail` is protocol evidence for `status`.
    pub fn online(&self, detail: serde_json::Value) {
        self.report.do_send(ChildReport::Online {
            kind: self.kind,
            generation: self.generation,
            detail,
        });
    }

    /// A round of work (poll, sync) completed.
    pub fn synced(&self) {
        self.report.do_send(ChildReport::Synced {
            kind: self.kind,
            generation: self.generation,
        });
    }

    /// Resolves when the user asks to sync now (a wake-up sent while busy is kept for later).
    pub async fn woken(&self) {
        self.wake.notified().await
    }
}

/// Runs `future` as a task on the current arbiter; however it ends, panic included, the
/// supervisor hears of it. Aborting the returned handle cancels the child at its next await.
pub fn spawn(future: ChildFuture, cx: &ChildContext) -> tokio::task::JoinHandle<()> {
    let (kind, generation, report) = (cx.kind, cx.generation, cx.report.clone());
    actix::spawn(async move {
        let exit = match AssertUnwindSafe(future).catch_unwind().await {
            Ok(Ok(())) => ChildExit::Finished,
            Ok(Err(err)) => ChildExit::Failed(err),
            Err(panic) => ChildExit::Panicked(panic_message(panic.as_ref())),
        };
        report.do_send(ChildReport::Exited {
            kind,
            generation,
            exit,
        });
    })
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(inbox: &Inbox) -> Vec<String> {
        inbox
            .queue
            .borrow()
            .iter()
            .map(|c| match c {
                ChildCommand::Replay => "replay".to_owned(),
                ChildCommand::Watch(f) => format!("watch {f}"),
                _ => "other".to_owned(),
            })
            .collect()
    }

    #[test]
    fn a_waiting_replay_takes_in_the_next_ones() {
        let inbox = Inbox::default();
        inbox.push(ChildCommand::Replay);
        inbox.push(ChildCommand::Replay);
        inbox.push(ChildCommand::Watch("Archive".into()));
        inbox.push(ChildCommand::Replay);
        assert_eq!(kinds(&inbox), ["replay", "watch Archive"]);
        // Once the child has taken it, a write journaled later queues a new one.
        inbox.queue.borrow_mut().pop_front();
        inbox.push(ChildCommand::Replay);
        assert_eq!(kinds(&inbox), ["watch Archive", "replay"]);
    }
}
