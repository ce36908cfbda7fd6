//! The tray menu as data: the agent's state in, menu entries out. Pure, so that every rule of what
//! the menu shows is unit-tested without a display; `tray` only draws these entries.
//!
//! ```text
//!  alice: online                      (one status line per account)
//!  ──────────
//!  Pause sync | Resume sync           (all accounts)
//!  Accounts ▸ alice ▸ Pause/Resume/Sync now
//!  Sync now
//!  Conflicts (2) ▸ one entry per conflict
//!  ──────────
//!  Status report…   ☑ Start at login   Open log folder
//!  ──────────
//!  Quit
//! ```

use opconnect_actors::status::{AccountStatus, State};

use crate::tray_state::{TrayState, running, tray_state};

/// What the agent knows that the menu shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MenuInput {
    pub accounts: Vec<AccountStatus>,
    /// Every account is paused by the global pause.
    pub paused_all: bool,
    pub conflicts: Vec<ConflictEntry>,
    /// Whether start at login is on; `None` when it cannot be read (then the item is disabled).
    pub autostart: Option<bool>,
    /// The notification server offers actions (Linux); otherwise a conflict's choices are menu items.
    pub notification_actions: bool,
}

/// One unresolved conflict, as `conflicts.list` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictEntry {
    pub id: u64,
    pub account: String,
    pub summary: String,
}

/// Which version of a conflict to keep (`conflicts.resolve`'s `keep`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    Local,
    Server,
    Both,
}

impl Keep {
    pub const ALL: [Keep; 3] = [Keep::Local, Keep::Server, Keep::Both];

    /// The value of `conflicts.resolve {keep}`.
    pub fn wire(self) -> &'static str {
        match self {
            Keep::Local => "local",
            Keep::Server => "server",
            Keep::Both => "both",
        }
    }

    pub fn from_wire(s: &str) -> Option<Keep> {
        Keep::ALL.into_iter().find(|k| k.wire() == s)
    }

    /// The words on the button or menu item.
    pub fn label(self) -> &'static str {
        match self {
            Keep::Local => "Keep mine",
            Keep::Server => "Keep server's",
            Keep::Both => "Keep both",
        }
    }
}

/// What a click asks for. `account: None` means every account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Pause(Option<String>),
    Resume(Option<String>),
    Sync(Option<String>),
    /// Show the conflict's notification with its choices.
    ShowConflict(u64),
    Resolve(u64, Keep),
    StatusReport,
    ToggleAutostart,
    OpenLogs,
    Quit,
}

impl Command {
    /// A stable menu id, so that a click can be mapped back (see [`Command::from_id`]).
    pub fn id(&self) -> String {
        let scope = |account: &Option<String>| {
            account
                .clone()
                .map_or_else(|| "*".to_owned(), |a| format!("={a}"))
        };
        match self {
            Command::Pause(a) => format!("pause{}", scope(a)),
            Command::Resume(a) => format!("resume{}", scope(a)),
            Command::Sync(a) => format!("sync{}", scope(a)),
            Command::ShowConflict(id) => format!("conflict:{id}"),
            Command::Resolve(id, keep) => format!("resolve:{id}:{}", keep.wire()),
            Command::StatusReport => "report".into(),
            Command::ToggleAutostart => "autostart".into(),
            Command::OpenLogs => "logs".into(),
            Command::Quit => "quit".into(),
        }
    }

    pub fn from_id(id: &str) -> Option<Command> {
        let scoped = |rest: &str| match rest {
            "*" => Some(None),
            _ => rest
                .strip_prefix('=')
                .filter(|a| !a.is_empty())
                .map(|a| Some(a.to_owned())),
        };
        if let Some(rest) = id.strip_prefix("pause") {
            return scoped(rest).map(Command::Pause);
        }
        if let Some(rest) = id.strip_prefix("resume") {
            return scoped(rest).map(Command::Resume);
        }
        if let Some(rest) = id.strip_prefix("sync") {
            return scoped(rest).map(Command::Sync);
        }
        if let Some(rest) = id.strip_prefix("conflict:") {
            return rest.parse().ok().map(Command::ShowConflict);
        }
        if let Some(rest) = id.strip_prefix("resolve:") {
            let (id, keep) = rest.split_once(':')?;
            return Some(Command::Resolve(id.parse().ok()?, Keep::from_wire(keep)?));
        }
        match id {
            "report" => Some(Command::StatusReport),
            "autostart" => Some(Command::ToggleAutostart),
            "logs" => Some(Command::OpenLogs),
            "quit" => Some(Command::Quit),
            _ => None,
        }
    }
}

/// One entry of the menu.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// Text that cannot be clicked (a status line).
    Label(String),
    Item {
        command: Command,
        label: String,
    },
    Check {
        command: Command,
        label: String,
        checked: bool,
        enabled: bool,
    },
    Submenu {
        label: String,
        entries: Vec<Entry>,
    },
    Separator,
}

/// The whole menu, its icon and tooltip.
#[derive(Debug, Clone, PartialEq)]
pub struct MenuModel {
    pub state: TrayState,
    pub tooltip: String,
    pub entries: Vec<Entry>,
}

/// Builds the menu for `input`.
pub fn menu(input: &MenuInput) -> MenuModel {
    let state = tray_state(&input.accounts);
    let mut entries: Vec<Entry> = input
        .accounts
        .iter()
        .map(|a| Entry::Label(status_line(a)))
        .collect();
    if input.accounts.is_empty() {
        entries.push(Entry::Label("No accounts configured".into()));
    }
    entries.push(Entry::Separator);
    if !input.accounts.is_empty() {
        let all_paused = input.paused_all || input.accounts.iter().all(|a| a.state == State::Paused);
        entries.push(if all_paused {
            item(Command::Resume(None), "Resume sync")
        } else {
            item(Command::Pause(None), "Pause sync")
        });
        entries.push(item(Command::Sync(None), "Sync now"));
        entries.push(Entry::Submenu {
            label: "Accounts".into(),
            entries: input.accounts.iter().map(account_menu).collect(),
        });
    }
    entries.push(conflicts_menu(input));
    entries.push(Entry::Separator);
    entries.push(item(Command::StatusReport, "Status report…"));
    entries.push(Entry::Check {
        command: Command::ToggleAutostart,
        label: "Start at login".into(),
        checked: input.autostart.unwrap_or(false),
        enabled: input.autostart.is_some(),
    });
    entries.push(item(Command::OpenLogs, "Open log folder"));
    entries.push(Entry::Separator);
    entries.push(item(Command::Quit, "Quit opconnect"));
    MenuModel {
        state,
        tooltip: tooltip(state, input),
        entries,
    }
}

fn item(command: Command, label: &str) -> Entry {
    Entry::Item {
        command,
        label: label.to_owned(),
    }
}

/// `alice: online`, `alice: offline, 3 waiting`, `alice: error: authentication failed`.
pub fn status_line(a: &AccountStatus) -> String {
    let state = match a.state {
        State::Connecting => "connecting",
        State::Online => "online",
        State::Offline => "offline",
        State::Paused => "paused",
        State::Error => "error",
    };
    let mut line = format!("{}: {state}", a.name);
    let running = running(a);
    if a.state == State::Online && !running.is_empty() {
        line = format!("{}: syncing {}", a.name, running.join("; "));
    }
    if a.pending_ops > 0 {
        line.push_str(&format!(", {} waiting", a.pending_ops));
    }
    if a.conflicts > 0 {
        line.push_str(&format!(", {} conflict{}", a.conflicts, plural(a.conflicts)));
    }
    if let (State::Error | State::Offline, Some(error)) = (a.state, &a.error) {
        line.push_str(&format!(" ({})", shorten(error, 60)));
    }
    line
}

fn account_menu(a: &AccountStatus) -> Entry {
    let name = Some(a.name.clone());
    let toggle = if a.state == State::Paused {
        item(Command::Resume(name.clone()), "Resume sync")
    } else {
        item(Command::Pause(name.clone()), "Pause sync")
    };
    Entry::Submenu {
        label: a.name.clone(),
        entries: vec![toggle, item(Command::Sync(name), "Sync now")],
    }
}

fn conflicts_menu(input: &MenuInput) -> Entry {
    let entries = if input.conflicts.is_empty() {
        vec![Entry::Label("No conflicts".into())]
    } else {
        input
            .conflicts
            .iter()
            .map(|c| {
                let label = format!("{}: {}", c.account, shorten(&c.summary, 50));
                if input.notification_actions {
                    item(Command::ShowConflict(c.id), &label)
                } else {
                    Entry::Submenu {
                        label,
                        entries: Keep::ALL
                            .into_iter()
                            .map(|k| item(Command::Resolve(c.id, k), k.label()))
                            .collect(),
                    }
                }
            })
            .collect()
    };
    Entry::Submenu {
        label: format!("Conflicts ({})", input.conflicts.len()),
        entries,
    }
}

fn tooltip(state: TrayState, input: &MenuInput) -> String {
    let what = match state {
        TrayState::Conflicts => format!(
            "{} conflict{} to resolve",
            input.conflicts.len(),
            plural(input.conflicts.len() as u64)
        ),
        TrayState::Error => "an account needs attention".into(),
        TrayState::Offline => "offline, changes are kept".into(),
        TrayState::Syncing => {
            // The figures of every running round: "Syncing… alice: imap: messages 4,500 of 20,000".
            let figures: Vec<String> = input
                .accounts
                .iter()
                .filter(|a| a.state == State::Online)
                .flat_map(|a| running(a).into_iter().map(move |r| format!("{}: {r}", a.name)))
                .collect();
            if figures.is_empty() {
                "syncing".into()
            } else {
                return format!("opconnect: Syncing… {}", figures.join("; "));
            }
        }
        TrayState::Paused => "paused".into(),
        TrayState::Synced => "up to date".into(),
    };
    format!("opconnect: {what}")
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// At most `max` characters, with an ellipsis when cut (menus do not wrap).
pub fn shorten(s: &str, max: usize) -> String {
    let s = s.lines().next().unwrap_or_default();
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

#[cfg(test)]
#[path = "menu_tests.rs"]
mod tests;
