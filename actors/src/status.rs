//! Account and service states as `status` reports them (INTERFACE §4), and how an account's
//! state follows from its services'.

use std::collections::BTreeMap;

use serde::Serialize;

/// One state word of INTERFACE §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Connecting,
    Online,
    Offline,
    Paused,
    Error,
}

/// The services a supervisor runs a child for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    Imap,
    Caldav,
    Carddav,
}

impl ServiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Imap => "imap",
            ServiceKind::Caldav => "caldav",
            ServiceKind::Carddav => "carddav",
        }
    }
}

/// What one service is doing now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceStatus {
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the service last came online (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Protocol evidence: capabilities, principal, … (never credentials).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
    /// What the service is doing now (an opconnect addition; filled in by the hub).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity: Option<crate::progress::Activity>,
    /// The last error and when it happened; kept after the service recovers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    /// When a failed service tries again (RFC 3339); shown as `activity.until`.
    #[serde(skip)]
    pub retry_at: Option<String>,
}

/// An error of a service and its time (RFC 3339).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastError {
    pub message: String,
    pub at: String,
}

impl ServiceStatus {
    pub fn connecting() -> Self {
        ServiceStatus {
            state: State::Connecting,
            error: None,
            since: None,
            detail: serde_json::Value::Null,
            activity: None,
            last_error: None,
            retry_at: None,
        }
    }
}

/// One account in `status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountStatus {
    pub name: String,
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sync: Option<String>,
    pub pending_ops: u64,
    pub conflicts: u64,
    pub services: BTreeMap<String, ServiceStatus>,
}

/// The whole `status` answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    pub paused: bool,
    pub accounts: Vec<AccountStatus>,
}

/// The account's state from its services': paused wins, then any error, then any offline service,
/// then any still connecting; only when every service is online is the account online.
/// The error shown is the first failing service's, prefixed with its name.
pub fn derive_state(paused: bool, services: &BTreeMap<String, ServiceStatus>) -> (State, Option<String>) {
    if paused {
        return (State::Paused, None);
    }
    for wanted in [State::Error, State::Offline] {
        if let Some((name, s)) = services.iter().find(|(_, s)| s.state == wanted) {
            let error = s.error.as_ref().map(|e| format!("{name}: {e}"));
            return (wanted, error);
        }
    }
    if services.values().any(|s| s.state == State::Connecting) {
        return (State::Connecting, None);
    }
    (State::Online, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(state: State, error: Option<&str>) -> ServiceStatus {
        ServiceStatus {
            state,
            error: error.map(str::to_owned),
            ..ServiceStatus::connecting()
        }
    }

    #[test]
    fn account_state_follows_the_worst_service() {
        let mut services = BTreeMap::new();
        services.insert("imap".to_owned(), svc(State::Online, None));
        services.insert("caldav".to_owned(), svc(State::Connecting, None));
        assert_eq!(derive_state(false, &services), (State::Connecting, None));
        services.insert("caldav".to_owned(), svc(State::Offline, Some("refused")));
        assert_eq!(
            derive_state(false, &services),
            (State::Offline, Some("caldav: refused".into()))
        );
        services.insert(
            "imap".to_owned(),
            svc(State::Error, Some("authentication failed")),
        );
        assert_eq!(
            derive_state(false, &services),
            (State::Error, Some("imap: authentication failed".into()))
        );
        assert_eq!(derive_state(true, &services), (State::Paused, None));
        services.clear();
        services.insert("imap".to_owned(), svc(State::Online, None));
        assert_eq!(derive_state(false, &services), (State::Online, None));
    }

    #[test]
    fn serializes_as_the_interface_says() {
        let mut services = BTreeMap::new();
        services.insert("imap".to_owned(), svc(State::Online, None));
        let status = AccountStatus {
            name: "work".into(),
            state: State::Online,
            error: None,
            last_sync: None,
            pending_ops: 0,
            conflicts: 0,
            services,
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "work", "state": "online", "pending_ops": 0, "conflicts": 0,
                               "services": {"imap": {"state": "online"}}})
        );
    }
}
