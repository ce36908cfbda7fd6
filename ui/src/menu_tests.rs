//! The menu model's rules: agent state in, menu entries out.

use super::*;

fn account(name: &str, state: State, pending_ops: u64, conflicts: u64) -> AccountStatus {
    AccountStatus {
        name: name.into(),
        state,
        error: None,
        last_sync: None,
        pending_ops,
        conflicts,
        services: Default::default(),
    }
}

fn labels(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| match e {
            Entry::Label(l) => format!("[{l}]"),
            Entry::Item { label, .. } => label.clone(),
            Entry::Check { label, checked, .. } => format!("{label} {}", if *checked { "☑" } else { "☐" }),
            Entry::Submenu { label, .. } => format!("{label} ▸"),
            Entry::Separator => "--".into(),
        })
        .collect()
}

fn submenu<'a>(entries: &'a [Entry], prefix: &str) -> &'a [Entry] {
    entries
        .iter()
        .find_map(|e| match e {
            Entry::Submenu { label, entries } if label.starts_with(prefix) => Some(entries.as_slice()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no submenu {prefix} in {:?}", labels(entries)))
}

fn commands(entries: &[Entry]) -> Vec<Command> {
    let mut out = Vec::new();
    for e in entries {
        match e {
            Entry::Item { command, .. } | Entry::Check { command, .. } => out.push(command.clone()),
            Entry::Submenu { entries, .. } => out.extend(commands(entries)),
            _ => {}
        }
    }
    out
}

#[test]
fn one_online_account_shows_its_status_and_every_action() {
    let model = menu(&MenuInput {
        accounts: vec![account("alice", State::Online, 0, 0)],
        autostart: Some(true),
        ..Default::default()
    });
    assert_eq!(model.state, TrayState::Synced);
    assert_eq!(model.tooltip, "opconnect: up to date");
    assert_eq!(
        labels(&model.entries),
        [
            "[alice: online]",
            "--",
            "Pause sync",
            "Sync now",
            "Accounts ▸",
            "Conflicts (0) ▸",
            "--",
            "Status report…",
            "Start at login ☑",
            "Open log folder",
            "--",
            "Quit opconnect"
        ]
    );
    let per_account = submenu(&model.entries, "Accounts");
    assert_eq!(labels(submenu(per_account, "alice")), ["Pause sync", "Sync now"]);
    assert_eq!(labels(submenu(&model.entries, "Conflicts")), ["[No conflicts]"]);
}

#[test]
fn pause_turns_into_resume_for_all_and_per_account() {
    let model = menu(&MenuInput {
        accounts: vec![
            account("a", State::Paused, 2, 0),
            account("b", State::Online, 0, 0),
        ],
        ..Default::default()
    });
    assert_eq!(
        labels(&model.entries)[..2],
        ["[a: paused, 2 waiting]", "[b: online]"]
    );
    let all = commands(&model.entries);
    assert!(
        all.contains(&Command::Pause(None)),
        "one account still runs: {all:?}"
    );
    assert!(all.contains(&Command::Resume(Some("a".into()))));
    assert!(all.contains(&Command::Pause(Some("b".into()))));
    assert!(all.contains(&Command::Sync(Some("b".into()))));

    let paused = menu(&MenuInput {
        accounts: vec![account("a", State::Paused, 0, 0)],
        paused_all: true,
        ..Default::default()
    });
    assert_eq!(paused.state, TrayState::Paused);
    assert!(commands(&paused.entries).contains(&Command::Resume(None)));
    assert!(!commands(&paused.entries).contains(&Command::Pause(None)));
}

#[test]
fn conflicts_are_listed_with_notifications_or_with_choices() {
    let conflicts = vec![
        ConflictEntry {
            id: 7,
            account: "alice".into(),
            summary: "Team meeting".into(),
        },
        ConflictEntry {
            id: 9,
            account: "alice".into(),
            summary: "x".repeat(80),
        },
    ];
    let input = MenuInput {
        accounts: vec![account("alice", State::Online, 0, 2)],
        conflicts: conflicts.clone(),
        notification_actions: true,
        ..Default::default()
    };
    let model = menu(&input);
    assert_eq!(model.state, TrayState::Conflicts);
    assert_eq!(model.tooltip, "opconnect: 2 conflicts to resolve");
    assert_eq!(labels(&model.entries)[0], "[alice: online, 2 conflicts]");
    let entries = submenu(&model.entries, "Conflicts (2)");
    assert_eq!(labels(entries)[0], "alice: Team meeting");
    assert_eq!(
        labels(entries)[1].chars().count(),
        "alice: ".len() + 50,
        "long summaries are cut"
    );
    assert!(labels(entries)[1].ends_with('…'));
    assert_eq!(
        commands(entries),
        [Command::ShowConflict(7), Command::ShowConflict(9)]
    );

    // Without notification actions (Windows, macOS) each conflict offers the three choices itself.
    let model = menu(&MenuInput {
        notification_actions: false,
        ..input
    });
    let entries = submenu(&model.entries, "Conflicts (2)");
    assert_eq!(
        labels(submenu(entries, "alice: Team")),
        ["Keep mine", "Keep server's", "Keep both"]
    );
    assert_eq!(
        commands(submenu(entries, "alice: Team")),
        [
            Command::Resolve(7, Keep::Local),
            Command::Resolve(7, Keep::Server),
            Command::Resolve(7, Keep::Both)
        ]
    );
}

#[test]
fn errors_are_shown_on_the_status_line_and_unknown_autostart_disables_the_item() {
    let mut failing = account("work", State::Error, 0, 0);
    failing.error = Some("authentication failed: the server refused the password\nsecond line".into());
    let model = menu(&MenuInput {
        accounts: vec![failing],
        autostart: None,
        ..Default::default()
    });
    assert_eq!(model.state, TrayState::Error);
    assert_eq!(
        labels(&model.entries)[0],
        "[work: error (authentication failed: the server refused the password)]"
    );
    let check = model
        .entries
        .iter()
        .find(|e| matches!(e, Entry::Check { .. }))
        .expect("the autostart item");
    assert_eq!(
        check,
        &Entry::Check {
            command: Command::ToggleAutostart,
            label: "Start at login".into(),
            checked: false,
            enabled: false
        }
    );
}

#[test]
fn no_accounts_leaves_only_the_agent_items() {
    let model = menu(&MenuInput::default());
    assert_eq!(model.state, TrayState::Synced);
    let all = commands(&model.entries);
    assert_eq!(
        all,
        [
            Command::StatusReport,
            Command::ToggleAutostart,
            Command::OpenLogs,
            Command::Quit
        ]
    );
    assert_eq!(labels(&model.entries)[0], "[No accounts configured]");
}

#[test]
fn every_command_survives_its_menu_id() {
    let all = [
        Command::Pause(None),
        Command::Pause(Some("work".into())),
        Command::Resume(Some("a=b:c".into())),
        Command::Sync(None),
        Command::Sync(Some("home".into())),
        Command::ShowConflict(42),
        Command::Resolve(42, Keep::Both),
        Command::Resolve(1, Keep::Local),
        Command::StatusReport,
        Command::ToggleAutostart,
        Command::OpenLogs,
        Command::Quit,
    ];
    for command in all {
        assert_eq!(
            Command::from_id(&command.id()),
            Some(command.clone()),
            "{}",
            command.id()
        );
    }
    for junk in [
        "",
        "pausex",
        "resolve:1",
        "resolve:x:local",
        "resolve:1:mine",
        "conflict:",
        "sync=",
    ] {
        assert_eq!(Command::from_id(junk), None, "{junk}");
    }
}

/// An account whose IMAP service is in the middle of a long first sync.
fn syncing(name: &str, done: u64, total: u64) -> AccountStatus {
    use opconnect_actors::progress::Activity;
    use opconnect_actors::status::ServiceStatus;
    let mut a = account(name, State::Online, 0, 0);
    a.services.insert(
        "imap".into(),
        ServiceStatus {
            state: State::Online,
            activity: Some(Activity {
                doing: "syncing",
                progress: vec![serde_json::json!({
                    "what": "messages", "done": done, "total": total, "folder": "INBOX"})],
                until: None,
            }),
            ..ServiceStatus::connecting()
        },
    );
    a
}

#[test]
fn a_running_sync_shows_its_figures_in_the_tooltip_and_the_menu() {
    let model = menu(&MenuInput {
        accounts: vec![
            syncing("alice", 4_500, 20_000),
            account("bob", State::Online, 0, 0),
        ],
        ..Default::default()
    });
    assert_eq!(model.state, TrayState::Syncing);
    assert_eq!(
        model.tooltip,
        "opconnect: Syncing… alice: imap: messages 4,500 of 20,000 (INBOX)"
    );
    let l = labels(&model.entries);
    assert_eq!(l[0], "[alice: syncing imap: messages 4,500 of 20,000 (INBOX)]");
    assert_eq!(l[1], "[bob: online]");
    // Once the round is over the account is back to "online" and the icon to "up to date".
    let model = menu(&MenuInput {
        accounts: vec![account("alice", State::Online, 0, 0)],
        ..Default::default()
    });
    assert_eq!(model.tooltip, "opconnect: up to date");
}
