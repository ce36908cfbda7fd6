//! The IMAP session child: connect and log in, report the capabilities, then keep INBOX under
//! IDLE (renewed every `idle_renew`) or NOOP every `noop_interval` until the connection fails.

use std::rc::Rc;

use serde_json::json;

use crate::children::AccountEnv;
use crate::error::ServiceError;
use crate::imap::connect::{classify_error, connect_and_login};
use crate::imap::watch::{self, WaitMode, Wake};
use crate::net::endpoint::Endpoint;
use crate::supervise::{ChildContext, ChildFactory};

pub fn factory(env: AccountEnv, endpoint: Endpoint) -> ChildFactory {
    Rc::new(move |cx| Box::pin(run(env.clone(), endpoint.clone(), cx)))
}

async fn run(env: AccountEnv, endpoint: Endpoint, cx: ChildContext) -> Result<(), ServiceError> {
    let tls = env.tls.clone()?;
    let password = env.password().await?;
    let login = connect_and_login(
        &endpoint,
        tls,
        &env.spec.username,
        &password,
        env.settings.connect_timeout,
    )
    .await?;
    let mode = if login.has("IDLE") {
        WaitMode::Idle {
            renew: env.settings.idle_renew,
        }
    } else {
        WaitMode::Noop {
            every: env.settings.noop_interval,
        }
    };
    let mut session = login.session;
    session.select("INBOX").await.map_err(classify_error)?;
    cx.online(json!({
        "capabilities": login.capabilities,
        "encrypted": login.encrypted,
        "notifications": match mode { WaitMode::Idle { .. } => "idle", WaitMode::Noop { .. } => "noop" },
    }));
    cx.synced();
    loop {
        let (back, wake) = watch::wait(session, mode, cx.woken()).await?;
        session = back;
        if matches!(wake, Wake::Changed | Wake::Interrupted) {
            // The mail sync issue hangs the folder sync here; for now a round trip proves liveness.
            cx.synced();
        }
    }
}
