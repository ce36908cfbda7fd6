//! `opconnect run`: claim the IPC endpoint, open the store, start the hub and one supervisor per
//! account, serve IPC until Ctrl-C, SIGTERM or the tray's Quit, then stop cleanly.
//!
//! ```text
//!  headless:  main thread: actix System ── Hub ── AccountSupervisor ×N ── children (IMAP, DAV)
//!                              └── IPC server (socket / named pipe) ── AgentApi ── Hub
//!  with tray: main thread: tao/GTK loop (ui::tray) ◄─ TrayHandle ─┐
//!             agent thread: the actix System above + desktop::bridge ◄─ clicks ─┘
//! ```

use std::sync::Arc;

use anyhow::Context as _;
use opconnect_actors::children::{self, AccountEnv};
use opconnect_actors::hub::{Hub, SupervisorFactory};
use opconnect_actors::store::Store;
use opconnect_actors::supervisor::AccountSupervisor;
use opconnect_actors::{AgentEvent, events};
use opconnect_ipc::{Event, Server};
use tokio::sync::broadcast;

use opconnect_ui::menu::Command;
use opconnect_ui::tray::Tray;
use tokio::sync::{mpsc, oneshot};

use crate::api::AgentApi;
use crate::config::Config;
use crate::desktop::{self, Desktop};
use crate::paths::{Paths, ensure_private_dir};
use crate::{logging, secrets};

/// `autostart_args` are the global flags this agent was started with, for the start-at-login entry.
pub fn run(paths: &Paths, headless: bool, autostart_args: Vec<String>) -> anyhow::Result<()> {
    ensure_private_dir(&paths.data_dir).with_context(|| format!("data dir {}", paths.data_dir.display()))?;
    // One agent per data directory, whatever its socket: two would replay the same journal.
    let _data_lock = lock_data_dir(&paths.data_dir)?;
    let _log_guard = logging::init_agent(&paths.log_dir())?;
    let config = Config::load(&paths.config)?;
    crate::report::register(&config);
    // Claim the endpoint first: a second agent must stop here, before it touches the store.
    let server = Server::bind(&paths.socket)?;
    let store = Store::open(&paths.data_dir)?;
    secrets::init_credential_store();
    let tray = if headless {
        None
    } else {
        match Tray::new() {
            Ok(tray) => Some(tray),
            Err(e) => {
                tracing::warn!("no tray: {e}; running headless");
                None
            }
        }
    };
    let Some(tray) = tray else {
        return serve(paths, config, server, store, None);
    };
    // GTK owns this thread; the agent runs on its own and ends the tray's loop when it stops.
    let (clicks, commands) = mpsc::unbounded_channel();
    let (quit, quitting) = oneshot::channel();
    let desktop = Desktop {
        tray: tray.handle(),
        commands,
        choices: clicks.clone(),
        quit: Some(quit),
        log_dir: paths.log_dir(),
        data_dir: paths.data_dir.clone(),
        autostart_args,
    };
    let handle = tray.handle();
    let agent_paths = paths.clone();
    let agent = std::thread::Builder::new().name("agent".into()).spawn(move || {
        let result = serve(&agent_paths, config, server, store, Some((desktop, quitting)));
        handle.exit();
        result
    })?;
    let on_click = clicks.clone();
    tray.run(move |command| {
        let _ = on_click.send(command);
    });
    // The tray's loop ended without the agent asking (the session is closing): stop the agent too.
    let _ = clicks.send(Command::Quit);
    agent
        .join()
        .map_err(|_| anyhow::anyhow!("the agent thread panicked"))?
}

/// The lock file in the data directory; held (and so the directory claimed) as long as the
/// returned file is open. The OS releases it when the process ends, however it ends.
const DATA_LOCK: &str = "agent.lock";

/// Takes the data directory's exclusive lock (flock on Unix, LockFileEx on Windows) and writes
/// this process's id into the lock file; a second agent stops here with the first one's id.
fn lock_data_dir(data_dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::io::{Read as _, Seek as _, Write as _};
    let path = data_dir.join(DATA_LOCK);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                String::new()
            } else {
                format!(" (pid {holder})")
            };
            anyhow::bail!(
                "another opconnect agent{who} is already using the data directory {}; \
                 stop it first, or give this one another --data-dir",
                data_dir.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{}", std::process::id())?;
    file.flush()?;
    Ok(file)
}

/// The agent proper: the actix system, the accounts and the IPC server, until a shutdown signal
/// or (with a tray) Quit.
fn serve(
    paths: &Paths,
    config: Config,
    server: Server,
    store: Store,
    desktop: Option<(Desktop, oneshot::Receiver<()>)>,
) -> anyhow::Result<()> {
    tracing::info!(
        config = %paths.config.display(),
        data_dir = %paths.data_dir.display(),
        socket = %paths.socket.display(),
        accounts = config.accounts.len(),
        conflict_policy = ?config.conflict_policy,
        "opconnect {} starting",
        env!("CARGO_PKG_VERSION")
    );

    let dns = config.dns;
    let system = actix::System::new();
    let result = system.block_on(async move {
        let bus = events::event_bus();
        let (ipc_events, _) = broadcast::channel(1024);
        forward_events(bus.subscribe(), ipc_events.clone());
        let desktop_events = bus.subscribe();
        let accounts = config
            .accounts
            .iter()
            .map(|account| {
                let env = AccountEnv::new(
                    account.spec.clone(),
                    config.settings.clone(),
                    secrets::source_for(account),
                    store.clone(),
                    bus.clone(),
                );
                let name = account.spec.name.clone();
                let backoff_max = config.settings.backoff_max;
                let make: SupervisorFactory = Box::new(move |hub, paused| {
                    AccountSupervisor::new(
                        &env.spec.name,
                        children::for_account(&env),
                        hub.recipient(),
                        backoff_max,
                        paused,
                    )
                });
                (name, make)
            })
            .collect();
        let hub = Hub::launch(accounts, bus, Some(store.clone()), false);
        let specs = config.accounts.iter().map(|a| a.spec.clone()).collect();
        let passwords = config
            .accounts
            .iter()
            .map(|a| (a.spec.name.clone(), secrets::source_for(a)))
            .collect();
        let api = Arc::new(
            AgentApi::new(hub.clone(), store, ipc_events, specs)
                .with_dns(dns)
                .with_secrets(passwords),
        );
        let quit = match desktop {
            Some((desktop, quit)) => {
                desktop::spawn(desktop, api.clone(), hub, desktop_events);
                Some(quit)
            }
            None => None,
        };
        let stop = async move {
            match quit {
                Some(quit) => tokio::select! {
                    _ = shutdown_signal() => {}
                    _ = quit => tracing::info!("Quit chosen in the tray"),
                },
                None => shutdown_signal().await,
            }
        };
        let served = server.run(api, stop).await;
        tracing::info!("opconnect stopping");
        served
    });
    result.map_err(Into::into)
}

/// Copies engine events onto the IPC event channel.
fn forward_events(mut from: broadcast::Receiver<AgentEvent>, to: broadcast::Sender<Event>) {
    actix::spawn(async move {
        loop {
            match from.recv().await {
                Ok(event) => {
                    let _ = to.send(Event {
                        topic: event.topic,
                        data: event.data,
                    });
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("event forwarder lagged by {n}")
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

/// Resolves on Ctrl-C, or SIGTERM on Unix (systemd, logout).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(term) => term,
            Err(e) => {
                tracing::error!("cannot watch SIGTERM: {e}");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
