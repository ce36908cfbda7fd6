//! Helpers of the meetings tests on servers that schedule (Cyrus, DAViCal): one agent holding
//! alice's and bob's CalDAV accounts, and waits for what a sync brings.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use serde_json::{Value, json};

use crate::config::render_config;
use crate::{AccountSpec, Agent, AgentSettings, Cyrus, Davical};

/// A CalDAV server with users `alice` and `bob` and a default calendar each.
pub trait Scheduling {
    fn dav_url(&self) -> String;
    fn default_calendar(&self, user: &str) -> String;
}

impl Scheduling for Cyrus {
    fn dav_url(&self) -> String {
        Cyrus::dav_url(self)
    }
    fn default_calendar(&self, user: &str) -> String {
        Cyrus::default_calendar(self, user)
    }
}

impl Scheduling for Davical {
    fn dav_url(&self) -> String {
        Davical::dav_url(self)
    }
    fn default_calendar(&self, user: &str) -> String {
        Davical::default_calendar(self, user)
    }
}

pub const WAIT: Duration = Duration::from_secs(30);

/// One agent with alice's and bob's CalDAV accounts on `server`, both online.
pub fn agent_for_both(server: &impl Scheduling) -> Result<Agent> {
    let settings = AgentSettings {
        dav_poll_interval: "5m".into(),
        ..AgentSettings::default()
    };
    let accounts: Vec<AccountSpec> = ["alice", "bob"]
        .iter()
        .map(|u| {
            let mut a = AccountSpec::for_user(u);
            a.caldav = Some(server.dav_url());
            a
        })
        .collect();
    let agent = Agent::start(&render_config(&settings, &accounts))?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    agent.wait_for_state("bob", "online", Duration::from_secs(20))?;
    // Online comes before the first listing of the homes: wait for both default calendars.
    for user in ["alice", "bob"] {
        let cal = server.default_calendar(user);
        agent.call_until("calendar.list", json!({"account": user}), WAIT, |v| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|c| c["href"] == cal.as_str()))
        })?;
    }
    Ok(agent)
}

/// `items.get` until `pred` holds on the item's fields, syncing `account` between tries.
pub fn fields_until(
    agent: &Agent,
    account: &str,
    href: &str,
    pred: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        agent.call("sync", json!({"account": account}))?;
        let item = agent.call("items.get", json!({"account": account, "href": href}));
        if let Ok(item) = &item
            && pred(&item["fields"])
        {
            return Ok(item["fields"].clone());
        }
        ensure!(
            Instant::now() < deadline,
            "{account}'s {href} never got there: {item:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// bob's mirrored event with `uid` in his default calendar, once a sync has brought it.
pub fn bobs_copy(agent: &Agent, server: &impl Scheduling, uid: &str) -> Result<Value> {
    let cal = server.default_calendar("bob");
    let deadline = Instant::now() + WAIT;
    loop {
        agent.call("sync", json!({"account": "bob"}))?;
        let items = agent.call("calendar.items", json!({"account": "bob", "calendar": cal}))?;
        if let Some(i) = items.as_array().and_then(|a| a.iter().find(|i| i["uid"] == uid)) {
            return Ok(i.clone());
        }
        ensure!(
            Instant::now() < deadline,
            "bob's calendar never got {uid}: {items}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The entry for `address` in an appointment field set's `Recipients`, any case.
pub fn recipient<'a>(fields: &'a Value, address: &str) -> Option<&'a Value> {
    fields["Recipients"].as_array()?.iter().find(|r| {
        r["Address"]
            .as_str()
            .is_some_and(|a| a.eq_ignore_ascii_case(address))
    })
}
