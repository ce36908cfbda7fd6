//! The agent's side of the desktop: feeds the tray the accounts' state, turns engine events into
//! notifications, and carries out what the user clicks. Runs on the agent thread, inside the actix
//! system, and reaches the tray only through its `TrayHandle`.
//!
//! ```text
//!  event bus ──► notice::Policy ──► Notifier (notify-rust thread) ── button ──┐
//!      │                                                                       ▼
//!      └─ (and a 1 s tick) ─► status + conflicts.list ─► MenuInput ─► TrayHandle
//!  tray click ──► Command ──► the IPC methods (pause, resume, sync, conflicts.resolve), report,
//!                             autostart, log folder, quit
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use opconnect_actors::AgentEvent;
use opconnect_actors::hub::{GetStatus, Hub};
use opconnect_actors::status::StatusReport;
use opconnect_ipc::Service;
use opconnect_ui::autostart::Autostart;
use opconnect_ui::menu::{Command, ConflictEntry, MenuInput};
use opconnect_ui::notice::{Notice, Policy};
use opconnect_ui::notifier::{self, Notifier};
use opconnect_ui::tray::TrayHandle;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::api::AgentApi;

/// How often the menu is refreshed even without events (pending counts change silently).
const REFRESH: Duration = Duration::from_secs(2);
/// Events refresh the menu at most this often: a first sync emits an event per batch, and each
/// refresh reads the status of every account.
const EVENT_REFRESH: Duration = Duration::from_millis(250);

/// What the bridge needs from `run`.
pub struct Desktop {
    pub tray: TrayHandle,
    pub commands: mpsc::UnboundedReceiver<Command>,
    /// Where notification buttons send their choice (the same channel as the tray's clicks).
    pub choices: mpsc::UnboundedSender<Command>,
    /// Resolved by Quit: the agent then shuts down as on SIGTERM (taken on the first Quit).
    pub quit: Option<oneshot::Sender<()>>,
    pub log_dir: PathBuf,
    pub data_dir: PathBuf,
    /// The global flags `run` was given, repeated in the start-at-login entry.
    pub autostart_args: Vec<String>,
}

/// Starts the bridge on the current actix arbiter.
pub fn spawn(desktop: Desktop, api: Arc<AgentApi>, hub: Addr<Hub>, events: broadcast::Receiver<AgentEvent>) {
    actix::spawn(bridge(desktop, api, hub, events));
}

async fn bridge(
    mut d: Desktop,
    api: Arc<AgentApi>,
    hub: Addr<Hub>,
    mut events: broadcast::Receiver<AgentEvent>,
) {
    let choices = d.choices.clone();
    let notifier = Notifier::spawn(Arc::new(move |id, keep| {
        let _ = choices.send(Command::Resolve(id, keep));
    }));
    // Asking the notification server blocks on the session bus: off the async thread.
    let actions = tokio::task::spawn_blocking(notifier::actions_supported)
        .await
        .unwrap_or(false);
    let mut policy = Policy::new(Instant::now());
    let mut shown: Option<MenuInput> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_refresh = Instant::now() - REFRESH;
    let mut dirty = true;
    // A click is answered at once: the menu shows its effect (Pause → Resume) the next time it opens.
    let mut clicked = false;
    loop {
        tokio::select! {
            command = d.commands.recv() => {
                let Some(command) = command else { break };
                let quitting = command == Command::Quit;
                execute(command, &api, &notifier, shown.as_ref(), &d).await;
                if quitting && let Some(quit) = d.quit.take() {
                    let _ = quit.send(());
                }
                clicked = true;
            }
            event = events.recv() => match event {
                Ok(event) => {
                    if let Some(notice) = policy.on_event(&event.topic, &event.data, Instant::now()) {
                        notifier.show(notice);
                    }
                    dirty = true;
                }
                Err(broadcast::error::RecvError::Lagged(_)) => dirty = true,
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = tick.tick() => {
                if let Some(notice) = policy.tick(Instant::now()) {
                    notifier.show(notice);
                }
            }
        }
        let since = last_refresh.elapsed();
        if clicked || (dirty && since >= EVENT_REFRESH) || since >= REFRESH {
            let input = snapshot(&api, &hub, actions).await;
            if shown.as_ref() != Some(&input) {
                if !d.tray.update(input.clone()) {
                    break;
                }
                shown = Some(input);
            }
            last_refresh = Instant::now();
            dirty = false;
            clicked = false;
        }
    }
}

/// The menu's input, read through the IPC methods so that the tray shows what clients see.
async fn snapshot(api: &AgentApi, hub: &Addr<Hub>, notification_actions: bool) -> MenuInput {
    let status = match hub.send(GetStatus).await {
        Ok(status) => status,
        Err(e) => {
            tracing::error!("tray: status: {e}");
            StatusReport {
                paused: false,
                accounts: Vec::new(),
            }
        }
    };
    let conflicts = match api.call("conflicts.list".into(), json!({})).await {
        Ok(Value::Array(list)) => list
            .iter()
            .filter_map(|c| {
                Some(ConflictEntry {
                    id: c.get("id")?.as_u64()?,
                    account: c.get("account")?.as_str()?.to_owned(),
                    summary: c
                        .get("summary")
                        .and_then(Value::as_str)
                        .unwrap_or("(no summary)")
                        .to_owned(),
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    MenuInput {
        accounts: status.accounts,
        paused_all: status.paused,
        conflicts,
        autostart: autostart_state(),
        notification_actions,
    }
}

fn autostart_state() -> Option<bool> {
    Autostart::for_current_exe(&[]).and_then(|a| a.is_enabled()).ok()
}

async fn execute(
    command: Command,
    api: &AgentApi,
    notifier: &Notifier,
    shown: Option<&MenuInput>,
    d: &Desktop,
) {
    tracing::info!(?command, "tray");
    let call = |method: &str, params: Value| api.call(method.into(), params);
    let scope = |account: Option<String>| account.map_or_else(|| json!({}), |a| json!({"account": a}));
    let answer = match command {
        Command::Pause(account) => call("pause", scope(account)).await,
        Command::Resume(account) => call("resume", scope(account)).await,
        Command::Sync(account) => call("sync", scope(account)).await,
        Command::Resolve(id, keep) => call("conflicts.resolve", json!({"id": id, "keep": keep.wire()})).await,
        Command::ShowConflict(id) => {
            let conflict = shown.and_then(|s| s.conflicts.iter().find(|c| c.id == id));
            if let Some(c) = conflict {
                notifier.show(Notice {
                    summary: format!("Conflict in {}", c.account),
                    body: format!("“{}”: which version do you keep?", c.summary),
                    conflict: Some(c.id),
                    urgent: false,
                });
            }
            Ok(Value::Null)
        }
        Command::StatusReport => {
            // Probing takes seconds: the menu and notifications keep going meanwhile.
            let (data_dir, notifier) = (d.data_dir.clone(), notifier.clone());
            actix::spawn(async move {
                if let Err(e) = open_report(&data_dir).await {
                    tracing::warn!("status report: {e}");
                    notifier.show(failure(e));
                }
            });
            Ok(Value::Null)
        }
        Command::ToggleAutostart => toggle_autostart(&d.autostart_args)
            .map(|_| Value::Null)
            .map_err(internal),
        Command::OpenLogs => open::that_detached(&d.log_dir)
            .map(|_| Value::Null)
            .map_err(|e| internal(format!("cannot open {}: {e}", d.log_dir.display()))),
        Command::Quit => Ok(Value::Null),
    };
    if let Err(e) = answer {
        tracing::warn!("tray action failed: {}", e.message);
        notifier.show(failure(e.message));
    }
}

/// The notice for a menu action that failed.
fn failure(message: String) -> Notice {
    Notice {
        summary: "opconnect could not do that".into(),
        body: message,
        conflict: None,
        urgent: false,
    }
}

fn internal(message: impl Into<String>) -> opconnect_ipc::RpcError {
    opconnect_ipc::RpcError::internal(message.into())
}

fn toggle_autostart(args: &[String]) -> Result<(), String> {
    let entry = Autostart::for_current_exe(args).map_err(|e| e.to_string())?;
    let result = if entry.is_enabled().map_err(|e| e.to_string())? {
        entry.disable()
    } else {
        entry.enable()
    };
    result.map_err(|e| e.to_string())
}

/// Probes every account, writes the HTML report into the data dir and opens it in the browser.
async fn open_report(data_dir: &std::path::Path) -> Result<(), String> {
    let html = crate::report::html_for_all().await?;
    let path = data_dir.join("status-report.html");
    tokio::fs::write(&path, html)
        .await
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tracing::info!(path = %path.display(), "status report written");
    open::that_detached(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))
}
