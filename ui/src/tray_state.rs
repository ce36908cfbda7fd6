//! Which icon the tray shows, from the accounts' states: one glance must tell the user whether
//! everything is synced, something is wrong, or something needs them.

use opconnect_actors::progress;
use opconnect_actors::status::{AccountStatus, State};

/// The tray icon's states, from most to least urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TrayState {
    /// A conflict waits for the user: it outranks everything, because only the user can resolve it.
    Conflicts,
    /// An account cannot work until the user acts (wrong password, untrusted certificate).
    Error,
    /// A server is unreachable; work continues offline and is replayed later.
    Offline,
    /// Connecting, a sync round with progress to show, or operations still waiting to be sent.
    Syncing,
    /// Every account is paused.
    Paused,
    /// Everything is online and nothing is pending.
    Synced,
}

impl TrayState {
    /// The icon file stem in `assets/icons/` and the tooltip word.
    pub fn name(self) -> &'static str {
        match self {
            TrayState::Conflicts => "conflicts",
            TrayState::Error => "error",
            TrayState::Offline => "offline",
            TrayState::Syncing => "syncing",
            TrayState::Paused => "paused",
            TrayState::Synced => "synced",
        }
    }
}

/// The tray state for a set of accounts. With no accounts the agent has nothing to do: synced.
pub fn tray_state(accounts: &[AccountStatus]) -> TrayState {
    if accounts.is_empty() {
        return TrayState::Synced;
    }
    if accounts.iter().any(|a| a.conflicts > 0) {
        return TrayState::Conflicts;
    }
    if accounts.iter().any(|a| a.state == State::Error) {
        return TrayState::Error;
    }
    if accounts.iter().any(|a| a.state == State::Offline) {
        return TrayState::Offline;
    }
    if accounts.iter().all(|a| a.state == State::Paused) {
        return TrayState::Paused;
    }
    let busy = accounts.iter().any(|a| {
        a.state == State::Connecting
            || (a.state == State::Online && (a.pending_ops > 0 || !running(a).is_empty()))
    });
    if busy {
        TrayState::Syncing
    } else {
        TrayState::Synced
    }
}

/// What the account's services are syncing or replaying now, one text per service:
/// `imap: messages 4,500 of 20,000 (INBOX)` (from `status`'s activity, see `progress`).
pub fn running(account: &AccountStatus) -> Vec<String> {
    account
        .services
        .iter()
        .filter_map(|(name, s)| {
            let activity = s.activity.as_ref()?;
            if !matches!(activity.doing, "syncing" | "replaying") {
                return None;
            }
            let steps: Vec<String> = activity.progress.iter().map(progress::step).collect();
            Some(if steps.is_empty() {
                format!("{name}: {}", activity.doing)
            } else {
                format!("{name}: {}", steps.join(", "))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(state: State, pending_ops: u64, conflicts: u64) -> AccountStatus {
        AccountStatus {
            name: "a".into(),
            state,
            error: None,
            last_sync: None,
            pending_ops,
            conflicts,
            services: Default::default(),
        }
    }

    #[test]
    fn the_most_urgent_account_decides() {
        assert_eq!(tray_state(&[]), TrayState::Synced);
        assert_eq!(tray_state(&[account(State::Online, 0, 0)]), TrayState::Synced);
        assert_eq!(tray_state(&[account(State::Online, 3, 0)]), TrayState::Syncing);
        assert_eq!(
            tray_state(&[account(State::Connecting, 0, 0)]),
            TrayState::Syncing
        );
        assert_eq!(
            tray_state(&[account(State::Paused, 0, 0), account(State::Paused, 2, 0)]),
            TrayState::Paused
        );
        assert_eq!(
            tray_state(&[account(State::Paused, 0, 0), account(State::Online, 0, 0)]),
            TrayState::Synced,
            "one paused account among online ones is not 'paused'"
        );
        assert_eq!(
            tray_state(&[account(State::Online, 0, 0), account(State::Offline, 0, 0)]),
            TrayState::Offline
        );
        assert_eq!(
            tray_state(&[account(State::Offline, 0, 0), account(State::Error, 0, 0)]),
            TrayState::Error
        );
        assert_eq!(
            tray_state(&[account(State::Error, 0, 0), account(State::Paused, 0, 1)]),
            TrayState::Conflicts
        );
    }
}
