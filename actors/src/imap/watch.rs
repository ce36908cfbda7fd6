//! Waiting on a selected mailbox for the server to say something changed: IDLE where offered
//! (RFC 2177), otherwise a NOOP every interval (RFC 3501 §6.1.2), as the original product does.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_imap::Session;
use async_imap::extensions::idle::IdleResponse;
use futures::FutureExt;

use crate::error::ServiceError;
use crate::imap::connect::{ImapConnection, classify_error};

/// Why a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The server sent data about the mailbox (EXISTS, EXPUNGE, FETCH …).
    Changed,
    /// The renew interval passed quietly (IDLE is re-issued).
    Quiet,
    /// The caller interrupted (sync now).
    Interrupted,
}

/// How to wait.
#[derive(Debug, Clone, Copy)]
pub enum WaitMode {
    /// RFC 2177 §3: re-issue before the server's 30-minute inactivity timeout.
    Idle {
        renew: Duration,
    },
    Noop {
        every: Duration,
    },
}

/// Waits once on `session` (a mailbox must be selected) and gives it back.
/// `interrupt` ends the wait early; the session stays usable.
pub async fn wait(
    session: Session<ImapConnection>,
    mode: WaitMode,
    interrupt: impl Future<Output = ()>,
) -> Result<(Session<ImapConnection>, Wake), ServiceError> {
    match mode {
        WaitMode::Idle { renew } => idle_once(session, renew, interrupt).await,
        WaitMode::Noop { every } => noop_once(session, every, interrupt).await,
    }
}

async fn idle_once(
    session: Session<ImapConnection>,
    renew: Duration,
    interrupt: impl Future<Output = ()>,
) -> Result<(Session<ImapConnection>, Wake), ServiceError> {
    // The watchdog (connect.rs) guards IDLE's start and DONE, not the wait: renewal bounds that.
    let waiting = session.get_ref().waiting();
    let mut handle = session.idle();
    handle.init().await.map_err(classify_error)?;
    waiting.store(true, Ordering::Relaxed);
    let wake = async {
        let (idle, stop) = handle.wait_with_timeout(renew);
        let mut idle = std::pin::pin!(idle);
        let mut interrupt = std::pin::pin!(interrupt.fuse());
        Ok::<_, ServiceError>(tokio::select! {
            result = &mut idle => match result.map_err(classify_error)? {
                IdleResponse::NewData(_) => Wake::Changed,
                IdleResponse::Timeout => Wake::Quiet,
                // The stream ended without our asking: DONE below finds out whether the
                // connection is still there.
                IdleResponse::ManualInterrupt => Wake::Quiet,
            },
            _ = &mut interrupt => {
                drop(stop);
                let _ = idle.await;
                Wake::Interrupted
            }
        })
    }
    .await;
    waiting.store(false, Ordering::Relaxed);
    let wake = wake?;
    // DONE (RFC 2177 §3) and wait for the tagged OK; a dropped connection shows up here.
    let session = handle.done().await.map_err(classify_error)?;
    Ok((session, wake))
}

async fn noop_once(
    mut session: Session<ImapConnection>,
    every: Duration,
    interrupt: impl Future<Output = ()>,
) -> Result<(Session<ImapConnection>, Wake), ServiceError> {
    let interrupted = tokio::select! {
        _ = tokio::time::sleep(every) => false,
        _ = interrupt => true,
    };
    // Drain what arrived earlier, then ask: NOOP makes the server report pending changes.
    let mut changed = drain_unsolicited(&mut session);
    session.noop().await.map_err(classify_error)?;
    changed |= drain_unsolicited(&mut session);
    let wake = if changed {
        Wake::Changed
    } else if interrupted {
        Wake::Interrupted
    } else {
        Wake::Quiet
    };
    Ok((session, wake))
}

/// True when the server sent mailbox updates since the last look.
fn drain_unsolicited(session: &mut Session<ImapConnection>) -> bool {
    use async_imap::types::UnsolicitedResponse as U;
    let mut changed = false;
    while let Ok(response) = session.unsolicited_responses.try_recv() {
        changed |= matches!(
            response,
            U::Exists(_) | U::Expunge(_) | U::Recent(_) | U::Other(_)
        );
    }
    changed
}
