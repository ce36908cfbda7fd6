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

/// Handed to each run of a child.
#[derive(Clone)]
pub struct ChildContext {
    pub kind: ServiceKind,
    pub generation: u64,
    report: Recipient<ChildReport>,
    wake: Rc<Notify>,
}

impl ChildContext {
    pub fn new(kind: ServiceKind, generation: u64, report: Recipient<ChildReport>, wake: Rc<Notify>) -> Self {
        ChildContext {
            kind,
            generation,
            report,
            wake,
        }
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
