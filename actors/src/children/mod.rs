//! The service children an account supervisor runs: an IMAP session that keeps the connection
//! and listens with IDLE or NOOP, and a DAV poller per DAV service.

mod dav;
mod dav_conflict;
mod dav_first;
mod dav_others;
pub mod dav_replay;
pub mod freebusy;
mod imap;
mod listeners;
mod replay;

use std::sync::Arc;

use rustls::ClientConfig;

use crate::account::{AccountSpec, Secret, SharedSecretSource};
use crate::error::ServiceError;
use crate::events::{AgentEvent, EventBus};
use crate::settings::Settings;
use crate::status::ServiceKind;
use crate::store::Store;
use crate::supervise::{ChildContext, ChildFactory};

/// What every child of one account shares.
#[derive(Clone)]
pub struct AccountEnv {
    pub spec: Arc<AccountSpec>,
    pub settings: Settings,
    pub secrets: SharedSecretSource,
    /// Built once per account; a bad `tls_ca` makes every child fail with the same clear error.
    pub tls: Result<Arc<ClientConfig>, ServiceError>,
    /// The mirror the children sync into.
    pub store: Store,
    events: EventBus,
    /// Mail folders the client has opened (`mail.watch`); they keep their listener across restarts.
    watched: imap::WatchedFolders,
}

impl AccountEnv {
    pub fn new(
        spec: AccountSpec,
        settings: Settings,
        secrets: SharedSecretSource,
        store: Store,
        events: EventBus,
    ) -> Self {
        let tls = spec.tls();
        AccountEnv {
            spec: Arc::new(spec),
            settings,
            secrets,
            tls,
            store,
            events,
            watched: Default::default(),
        }
    }

    /// Emits `topic` with `data` plus this account's name (INTERFACE §4 event topics).
    pub fn emit(&self, topic: &str, mut data: serde_json::Value) {
        if let Some(map) = data.as_object_mut() {
            map.insert("account".into(), self.spec.name.clone().into());
        }
        let _ = self.events.send(AgentEvent::new(topic, data));
    }

    /// A round of work (a poll, a sync) is complete: the supervisor records `last_sync`, and
    /// subscribers hear `synced {account, service}`, an opconnect event topic beyond INTERFACE §4
    /// that tells a client (or `scripts/bench`) exactly when the mirror caught up.
    pub fn synced(&self, cx: &ChildContext) {
        cx.synced();
        self.emit("synced", serde_json::json!({"service": cx.kind.as_str()}));
    }

    /// A progress counter of `what` for `service` (see [`crate::progress`]).
    pub fn progress(&self, service: ServiceKind, what: &'static str) -> crate::progress::Tracker {
        crate::progress::Tracker::new(self.events.clone(), &self.spec.name, service.as_str(), what)
    }

    /// A progress counter of `what` for a DAV service.
    pub fn dav_progress(
        &self,
        service: crate::dav::discovery::DavService,
        what: &'static str,
    ) -> crate::progress::Tracker {
        let kind = match service {
            crate::dav::discovery::DavService::CalDav => ServiceKind::Caldav,
            crate::dav::discovery::DavService::CardDav => ServiceKind::Carddav,
        };
        self.progress(kind, what)
    }

    /// The password, asked for on each connection attempt, off the async thread (a password
    /// command or the OS credential store may block).
    pub async fn password(&self) -> Result<Secret, ServiceError> {
        let secrets = self.secrets.clone();
        tokio::task::spawn_blocking(move || secrets.password())
            .await
            .map_err(|e| ServiceError::Config(format!("password lookup failed: {e}")))?
            .map_err(|e| ServiceError::Config(format!("password: {e}")))
    }
}

/// The children for every service the account configures.
pub fn for_account(env: &AccountEnv) -> Vec<(ServiceKind, ChildFactory)> {
    let mut children = Vec::new();
    if let Some(endpoint) = &env.spec.imap {
        children.push((ServiceKind::Imap, imap::factory(env.clone(), endpoint.clone())));
    }
    if let Some(endpoint) = &env.spec.caldav {
        children.push((
            ServiceKind::Caldav,
            dav::factory(env.clone(), endpoint.clone(), ServiceKind::Caldav),
        ));
    }
    if let Some(endpoint) = &env.spec.carddav {
        children.push((
            ServiceKind::Carddav,
            dav::factory(env.clone(), endpoint.clone(), ServiceKind::Carddav),
        ));
    }
    children
        .into_iter()
        .map(|(kind, factory)| (kind, tell_failures(env.clone(), kind, factory)))
        .collect()
}

/// A run that ends in an error tells subscribers `sync.failed {account, service, error}` (an
/// opconnect topic: `opconnect sync --wait` and progress displays stop waiting on it).
fn tell_failures(env: AccountEnv, kind: ServiceKind, factory: ChildFactory) -> ChildFactory {
    std::rc::Rc::new(move |cx| {
        let run = factory(cx);
        let env = env.clone();
        Box::pin(async move {
            let result = run.await;
            if let Err(e) = &result {
                env.emit(
                    crate::progress::FAILED,
                    serde_json::json!({"service": kind.as_str(), "error": e.to_string()}),
                );
            }
            result
        })
    })
}
