//! Which engine events become desktop notifications, and how many: conflicts, authentication
//! failures (once per failure, not once per retry) and failed operations, rate-limited so that a
//! burst of fifty conflicts shows three notifications and one summary, not fifty. Pure: time is
//! passed in, so every rule is unit-tested.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::menu::{Keep, shorten};

/// Notifications shown at once before the limit applies.
const BURST: u32 = 3;
/// One more notification may be shown per this interval once the burst is spent.
const REFILL: Duration = Duration::from_secs(30);

/// A notification to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub summary: String,
    pub body: String,
    /// Resolve this conflict with the user's choice (buttons, where the platform has them).
    pub conflict: Option<u64>,
    pub urgent: bool,
}

impl Notice {
    /// The buttons of a conflict notice: (action key, label).
    pub fn actions(&self) -> Vec<(&'static str, &'static str)> {
        match self.conflict {
            Some(_) => Keep::ALL.iter().map(|k| (k.wire(), k.label())).collect(),
            None => Vec::new(),
        }
    }
}

/// Turns events into notices, at most [`BURST`] at once and one per [`REFILL`] after that.
#[derive(Debug)]
pub struct Policy {
    tokens: u32,
    refilled: Instant,
    /// Notices held back by the limit since the last one shown.
    suppressed: u32,
    /// Accounts whose current authentication failure was already announced.
    auth_told: BTreeSet<String>,
    /// Operations whose failure was already announced (a retried op fails again and again).
    ops_told: BTreeSet<(String, u64)>,
    /// Accounts' last known states, to see a failure begin.
    states: BTreeMap<String, String>,
}

impl Policy {
    pub fn new(now: Instant) -> Policy {
        Policy {
            tokens: BURST,
            refilled: now,
            suppressed: 0,
            auth_told: BTreeSet::new(),
            ops_told: BTreeSet::new(),
            states: BTreeMap::new(),
        }
    }

    /// The notice for one engine event, if it deserves one and the limit allows.
    pub fn on_event(&mut self, topic: &str, data: &Map<String, Value>, now: Instant) -> Option<Notice> {
        let notice = self.classify(topic, data)?;
        self.admit(notice, now)
    }

    /// Called periodically: once the limit allows again, one summary of what was held back.
    pub fn tick(&mut self, now: Instant) -> Option<Notice> {
        if self.suppressed == 0 {
            return None;
        }
        self.refill(now);
        if self.tokens == 0 {
            return None;
        }
        self.tokens -= 1;
        let n = std::mem::take(&mut self.suppressed);
        Some(Notice {
            summary: format!(
                "opconnect: {n} more notification{}",
                if n == 1 { "" } else { "s" }
            ),
            body: "Open the tray menu to see conflicts, or `opconnect status` and the log for failures."
                .into(),
            conflict: None,
            urgent: false,
        })
    }

    fn admit(&mut self, notice: Notice, now: Instant) -> Option<Notice> {
        self.refill(now);
        if self.tokens == 0 {
            self.suppressed += 1;
            return None;
        }
        self.tokens -= 1;
        Some(notice)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled);
        let earned = (elapsed.as_secs_f64() / REFILL.as_secs_f64()) as u32;
        if earned > 0 {
            self.tokens = (self.tokens + earned).min(BURST);
            self.refilled += REFILL * earned;
        }
        if self.tokens == BURST {
            self.refilled = now;
        }
    }

    fn classify(&mut self, topic: &str, data: &Map<String, Value>) -> Option<Notice> {
        let text = |key: &str| {
            data.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let account = text("account");
        match topic {
            "conflict" => {
                let id = data.get("id").and_then(Value::as_u64)?;
                Some(Notice {
                    summary: format!("Conflict in {account}"),
                    body: format!(
                        "“{}” was changed here and on the server. Both versions are kept until you choose.",
                        shorten(&text("summary"), 80)
                    ),
                    conflict: Some(id),
                    urgent: false,
                })
            }
            "state" => {
                let state = text("state");
                let before = self.states.insert(account.clone(), state.clone());
                if state != "error" {
                    if state == "online" {
                        self.auth_told.remove(&account);
                    }
                    return None;
                }
                // A failure is told once: not again while the account stays failed, even when
                // the retries change the message.
                if before.as_deref() == Some("error") || !self.auth_told.insert(account.clone()) {
                    return None;
                }
                Some(Notice {
                    summary: format!("{account} cannot connect"),
                    body: format!(
                        "{}. Fix the account, then choose Sync now.",
                        shorten(&text("error"), 160)
                    ),
                    conflict: None,
                    urgent: true,
                })
            }
            "op.failed" => {
                let op = data.get("op").and_then(Value::as_u64)?;
                if !self.ops_told.insert((account.clone(), op)) {
                    return None;
                }
                let last = data.get("final").and_then(Value::as_bool).unwrap_or(false);
                let next = if last {
                    "It is set aside; nothing is lost. See `opconnect status`."
                } else {
                    "It will be tried again."
                };
                Some(Notice {
                    summary: format!("A change in {account} was refused"),
                    body: format!("{} {next}", shorten(&text("error"), 160)),
                    conflict: None,
                    urgent: false,
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "notice_tests.rs"]
mod tests;
