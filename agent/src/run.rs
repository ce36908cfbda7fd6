//! `opconnect run`: claim the IPC endpoint, open the store, start the hub and one supervisor per
//! account, serve IPC until Ctrl-C or SIGTERM, then stop cleanly.
//!
//! ```text
//!  main thread: actix System ── Hub ── AccountSupervisor ×N ── children (IMAP, DAV)
//!                    └── IPC server (socket / named pipe) ── AgentApi ── Hub
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

use crate::api::AgentApi;
use crate::config::Config;
use crate::paths::{Paths, ensure_private_dir};
use crate::{logging, secrets};

pub fn run(paths: &Paths, headless: bool) -> anyhow::Result<()> {
    ensure_private_dir(&paths.data_dir).with_context(|| format!("data dir {}", paths.data_dir.display()))?;
    let _log_guard = logging::init_agent(&paths.log_dir())?;
    let config = Config::load(&paths.config)?;
    crate::report::register(&config);
    if !headless {
        tracing::warn!("this build has no tray menu yet; running headless");
    }
    // Claim the endpoint first: a second agent must stop here, before it touches the store.
    let server = Server::bind(&paths.socket)?;
    let store = Store::open(&paths.data_dir)?;
    secrets::init_credential_store();
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
            AgentApi::new(hub, store, ipc_events, specs)
                .with_dns(dns)
                .with_secrets(passwords),
        );
        let served = server.run(api, shutdown_signal()).await;
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
