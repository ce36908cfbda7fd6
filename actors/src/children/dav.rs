//! The DAV poller child: OPTIONS to check the server speaks CalDAV or CardDAV, PROPFIND for the
//! principal (RFC 5397), then one cheap request per `dav_poll_interval` or on `sync`.

use std::rc::Rc;

use serde_json::json;

use crate::children::AccountEnv;
use crate::dav::DavClient;
use crate::error::ServiceError;
use crate::net::endpoint::Endpoint;
use crate::status::ServiceKind;
use crate::supervise::{ChildContext, ChildFactory};

pub fn factory(env: AccountEnv, endpoint: Endpoint, kind: ServiceKind) -> ChildFactory {
    Rc::new(move |cx| Box::pin(run(env.clone(), endpoint.clone(), kind, cx)))
}

async fn run(
    env: AccountEnv,
    endpoint: Endpoint,
    kind: ServiceKind,
    cx: ChildContext,
) -> Result<(), ServiceError> {
    let tls = env.tls.clone()?;
    let password = env.password().await?;
    let client = DavClient::new(
        &endpoint,
        &env.spec.username,
        password,
        tls,
        env.settings.connect_timeout,
    )?;
    let start = client.base().clone();
    let compliance = client.options(&start).await?;
    // RFC 4791 §5.1 / RFC 6352 §6.1: the compliance class a server must announce.
    let class = match kind {
        ServiceKind::Caldav => "calendar-access",
        _ => "addressbook",
    };
    if !compliance.has(class) {
        return Err(ServiceError::Unsupported(format!(
            "{start} does not announce `{class}` in its DAV header ({})",
            compliance.classes.join(", ")
        )));
    }
    let principal = client.current_user_principal(&start).await?;
    cx.online(json!({ "principal": principal.as_str(), "dav": compliance.classes }));
    cx.synced();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(env.settings.dav_poll_interval) => {}
            _ = cx.woken() => {}
        }
        // The DAV sync issue replaces this liveness check with sync-collection per collection.
        client.current_user_principal(&start).await?;
        cx.synced();
    }
}
