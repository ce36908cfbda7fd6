//! Desktop notifications through notify-rust (the freedesktop Notifications service on Linux,
//! toasts on Windows, Notification Center on macOS). A thread of its own shows them, because the
//! calls block on the session bus; each conflict notice with buttons waits for the user's choice on
//! another thread and hands it back through `on_choice`.

use std::sync::Arc;
use std::sync::mpsc;

use crate::menu::Keep;
use crate::notice::Notice;

/// Shows notices; cloning shares the one notifier thread.
#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::Sender<Notice>,
}

/// Called with a conflict id and the user's choice from a notification's buttons.
pub type OnChoice = Arc<dyn Fn(u64, Keep) + Send + Sync>;

impl Notifier {
    pub fn spawn(on_choice: OnChoice) -> Notifier {
        let (tx, rx) = mpsc::channel::<Notice>();
        let spawned = std::thread::Builder::new()
            .name("notifier".into())
            .spawn(move || {
                for notice in rx {
                    show(&notice, &on_choice);
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the notification thread: {e}");
        }
        Notifier { tx }
    }

    /// Queues a notice; never blocks the caller.
    pub fn show(&self, notice: Notice) {
        let _ = self.tx.send(notice);
    }
}

/// Whether notifications can carry buttons here: asked of the Linux notification server; toasts
/// and Notification Center through notify-rust have none.
pub fn actions_supported() -> bool {
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        match notify_rust::get_capabilities() {
            Ok(caps) => caps.iter().any(|c| c == "actions"),
            Err(e) => {
                tracing::warn!("no notification server answers on the session bus: {e}");
                false
            }
        }
    }
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    {
        false
    }
}

fn show(notice: &Notice, on_choice: &OnChoice) {
    let mut n = notify_rust::Notification::new();
    n.appname("opconnect").summary(&notice.summary).body(&notice.body);
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        n.icon(if notice.urgent {
            "dialog-warning"
        } else {
            "mail-unread"
        });
        if notice.urgent {
            n.urgency(notify_rust::Urgency::Critical);
        }
        for (key, label) in notice.actions() {
            n.action(key, label);
        }
    }
    match n.show() {
        Ok(handle) => {
            tracing::info!(summary = %notice.summary, "notification shown");
            #[cfg(all(unix, not(target_os = "macos")))]
            if let Some(id) = notice.conflict {
                let on_choice = on_choice.clone();
                let waiting = std::thread::Builder::new()
                    .name(format!("conflict-{id}"))
                    .spawn(move || {
                        handle.wait_for_action(|action| match Keep::from_wire(action) {
                            Some(keep) => on_choice(id, keep),
                            None => tracing::debug!(conflict = id, action, "notification closed"),
                        })
                    });
                if let Err(e) = waiting {
                    tracing::warn!("cannot wait for the notification's answer: {e}");
                }
            }
            #[cfg(not(all(unix, not(target_os = "macos"))))]
            let _ = (handle, on_choice);
        }
        Err(e) => tracing::warn!(summary = %notice.summary, "cannot show a notification: {e}"),
    }
}
