//! The desktop side end to end (issue 10): `opconnect run` without `--headless` on a private
//! desktop (Xvfb, a session bus, dunst, trayer). The tray icon docks and is screenshotted, the menu
//! pauses the agent when clicked, a conflict becomes a `Notify` call whose "Keep mine" button
//! resolves it, start at login writes and removes the XDG file, and the agent degrades to headless
//! without a display and to notifications only without the appindicator library.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use opconnect_tests::DavServer;
use opconnect_tests::agent::{Launch, opconnect_bin};
use opconnect_tests::config::render_config;
use opconnect_tests::desktop::{Desktop, Geometry};
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Radicale, process};
use serde_json::json;

fn artifact(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/test-artifacts")
        .join(name)
}

fn on_desktop(desktop: &Desktop, radicale: &Radicale) -> Result<Agent> {
    let spec = AccountSpec::for_user("alice").dav_from(radicale);
    let launch = Launch {
        desktop: Some(desktop.env()),
        ..Launch::default()
    };
    let agent = Agent::start_with(&render_config(&AgentSettings::default(), &[spec]), launch)?;
    agent.wait_for_state("alice", "online", Duration::from_secs(15))?;
    Ok(agent)
}

/// The tray icon: a small visible window of the agent's class, docked in trayer.
fn tray_icon(desktop: &Desktop) -> Result<Geometry> {
    desktop.wait_window("opconnect", Duration::from_secs(10), |g| {
        g.width <= 64 && g.height <= 64
    })
}

fn badge_pixel(icon: &Geometry) -> (i32, i32) {
    // The state badge sits bottom right of the icon; sample inside its coloured disc.
    (icon.x + icon.width * 3 / 4 - 1, icon.y + icon.height * 3 / 4 - 1)
}

#[test]
fn the_tray_icon_appears_and_its_menu_pauses_the_agent() -> Result<()> {
    let desktop = Desktop::start()?;
    let radicale = Radicale::start()?;
    radicale.create_calendar("alice", "work", "Work")?;
    let agent = on_desktop(&desktop, &radicale)?;
    let icon = tray_icon(&desktop)?;
    // Synced: the green badge (#16a34a), once the first sync has settled.
    let mut colour = [0; 3];
    for _ in 0..50 {
        colour = desktop.pixel(badge_pixel(&icon))?;
        if colour[1] > 120 && colour[0] < 80 && colour[2] < 120 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    desktop.screenshot(&artifact("tray-icon.png"))?;
    ensure!(
        colour[1] > 120 && colour[0] < 80,
        "the icon's badge should be green (synced), is {colour:?} at {icon:?}; see tray-icon.png"
    );

    desktop.click(icon.centre())?;
    let menu = desktop.wait_window("opconnect", Duration::from_secs(5), |g| g.height > 100)?;
    desktop.screenshot(&artifact("tray-menu.png"))?;
    ensure!(menu.width > 120, "{menu:?}");
    // The status line cannot be selected: the first Down lands on "Pause sync".
    desktop.keys(&["Down", "Return"])?;
    let status = agent.wait_for(Duration::from_secs(10), |s| s["paused"] == true)?;
    ensure!(status["accounts"][0]["state"] == "paused", "{status}");
    ensure!(
        agent.log().contains("tray command=Pause(None)"),
        "{}",
        agent.log()
    );

    // The icon follows: the grey paused badge.
    let paused = (0..50)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            desktop.pixel(badge_pixel(&icon))
        })
        .find_map(|c| {
            c.ok()
                .filter(|c| c[0] < 110 && c[0] > 50 && c[0].abs_diff(c[2]) < 40)
        });
    ensure!(paused.is_some(), "the badge did not turn grey after Pause");

    // "Status report…" probes the servers and writes the HTML page it opens.
    desktop.click(icon.centre())?;
    desktop.wait_window("opconnect", Duration::from_secs(5), |g| g.height > 100)?;
    // Resume sync, Sync now, Accounts, Conflicts, Status report…
    desktop.keys(&["Down", "Down", "Down", "Down", "Down", "Return"])?;
    let report = agent.data_dir().join("status-report.html");
    agent.wait_for(Duration::from_secs(20), |_| {
        std::fs::read_to_string(&report).is_ok_and(|html| html.contains("alice") && html.contains("</html>"))
    })?;

    // Quit with a write still waiting: the agent exits cleanly and the write is still there.
    let cal = agent.call("calendar.list", json!({"account": "alice"}))?[0]["href"]
        .as_str()
        .context("a calendar")?
        .to_owned();
    agent.call(
        "calendar.put",
        json!({"account": "alice", "calendar": cal, "ics": event("while-paused", "Written while paused")}),
    )?;
    desktop.click(icon.centre())?;
    desktop.wait_window("opconnect", Duration::from_secs(5), |g| g.height > 100)?;
    // Up from nothing selected lands on the last item, Quit.
    desktop.keys(&["Up", "Return"])?;
    let mut agent = agent;
    for _ in 0..100 {
        if !agent.is_running() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    ensure!(
        !agent.is_running(),
        "Quit did not stop the agent:\n{}",
        agent.log()
    );
    ensure!(agent.log().contains("Quit chosen in the tray"), "{}", agent.log());
    agent.restart()?;
    // The write survived Quit in the journal, and reaches the server once the agent is back.
    agent.wait_for(Duration::from_secs(15), |s| s["accounts"][0]["pending_ops"] == 0)?;
    let on_server = radicale
        .members("alice", &cal)?
        .iter()
        .filter_map(|href| radicale.get("alice", href).ok())
        .any(|r| String::from_utf8_lossy(&r.body).contains("SUMMARY:Written while paused"));
    ensure!(
        on_server,
        "the write made before Quit reached the server after the restart"
    );
    Ok(())
}

fn event(uid: &str, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect//test//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20261123T000000Z\r\nDTSTART:20261201T090000Z\r\nDURATION:PT1H\r\nSUMMARY:{summary}\r\n\
         END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

#[test]
fn a_conflict_is_notified_and_its_keep_mine_button_resolves_it() -> Result<()> {
    let desktop = Desktop::start()?;
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "work", "Work")?;
    let (href, _) = radicale.put_event("alice", &cal, "standup", &event("standup", "Standup"))?;
    let agent = on_desktop(&desktop, &radicale)?;
    agent.wait_for(Duration::from_secs(10), |_| {
        agent
            .call("calendar.items", json!({"account": "alice", "calendar": cal}))
            .is_ok_and(|i| i.as_array().is_some_and(|a| a.len() == 1))
    })?;
    // Edited here while away, and on the server meanwhile.
    agent.cli_ok(&["pause"])?;
    agent.call(
        "calendar.put",
        json!({"account": "alice", "calendar": cal, "href": href, "ics": event("standup", "Standup (mine)")}),
    )?;
    radicale.put_event("alice", &cal, "standup", &event("standup", "Standup (theirs)"))?;
    agent.cli_ok(&["resume"])?;

    let call = desktop.wait_notify("Conflict in alice", Duration::from_secs(20))?;
    for text in [
        "\"local\"",
        "\"Keep mine\"",
        "\"server\"",
        "\"Keep server's\"",
        "\"both\"",
        "\"Keep both\"",
    ] {
        ensure!(
            call.contains(text),
            "{text} missing from the Notify call:\n{call}"
        );
    }
    let conflicts = agent.call("conflicts.list", json!({}))?;
    ensure!(conflicts.as_array().map(Vec::len) == Some(1), "{conflicts}");

    // The user presses "Keep mine": the notification server emits ActionInvoked for it.
    let id = desktop.notification_id(&call)?;
    desktop.run(&[
        "dbus-send",
        "--session",
        "--type=signal",
        "/org/freedesktop/Notifications",
        "org.freedesktop.Notifications.ActionInvoked",
        &format!("uint32:{id}"),
        "string:local",
    ])?;
    agent.wait_for(Duration::from_secs(15), |s| {
        s["accounts"][0]["conflicts"] == 0 && s["accounts"][0]["pending_ops"] == 0
    })?;
    let body = radicale.get("alice", &href)?;
    let body = String::from_utf8_lossy(&body.body);
    ensure!(
        body.contains("SUMMARY:Standup (mine)"),
        "keep mine reached the server:\n{body}"
    );
    Ok(())
}

/// `opconnect autostart ACTION` with HOME in `home`; (exit success, stdout).
fn autostart(home: &Path, action: &str) -> Result<(bool, String)> {
    let mut cmd = std::process::Command::new(opconnect_bin());
    cmd.args(["autostart", action, "--config", "/etc/opconnect-test/config.toml"])
        .env("HOME", home)
        .env("XDG_CONFIG_DIRS", home.join("etc-xdg"))
        .env_remove("XDG_CONFIG_HOME");
    let out = process::run_with_timeout(cmd, Duration::from_secs(30))?;
    ensure!(
        out.status.success(),
        "autostart {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    ))
}

#[test]
fn autostart_on_and_off_write_and_remove_the_xdg_entry() -> Result<()> {
    let home = tempfile::tempdir()?;
    let entry = home.path().join(".config/autostart/opconnect.desktop");
    let (_, said) = autostart(home.path(), "status")?;
    ensure!(said == format!("off ({})", entry.display()), "{said}");

    let (_, said) = autostart(home.path(), "on")?;
    ensure!(said == format!("on ({})", entry.display()), "{said}");
    let desktop = std::fs::read_to_string(&entry).context("the XDG autostart file")?;
    let exec = desktop
        .lines()
        .find_map(|l| l.strip_prefix("Exec="))
        .context("an Exec line")?;
    let bin = opconnect_bin().canonicalize()?;
    ensure!(
        exec == format!("{} run --config /etc/opconnect-test/config.toml", bin.display()),
        "the entry starts the same agent with the same config: {exec}"
    );
    ensure!(desktop.contains("Type=Application"), "{desktop}");
    ensure!(autostart(home.path(), "status")?.1.starts_with("on ("));

    let (_, said) = autostart(home.path(), "off")?;
    ensure!(said.starts_with("off ("), "{said}");
    ensure!(!entry.exists(), "off removes the file");
    // Off again is not an error.
    ensure!(autostart(home.path(), "off")?.1.starts_with("off ("));

    // A system-wide entry (the Debian package's, in $XDG_CONFIG_DIRS/autostart) counts as on;
    // off overrides it for this user with Hidden=true (XDG Autostart spec), on replaces that.
    let system = home.path().join("etc-xdg/autostart/opconnect.desktop");
    std::fs::create_dir_all(system.parent().unwrap())?;
    std::fs::write(
        &system,
        "[Desktop Entry]\nType=Application\nName=opconnect\nExec=opconnect run\n",
    )?;
    ensure!(
        autostart(home.path(), "status")?.1.starts_with("on ("),
        "the system entry starts it"
    );
    ensure!(autostart(home.path(), "off")?.1.starts_with("off ("));
    let hidden = std::fs::read_to_string(&entry).context("the user's override")?;
    ensure!(hidden.contains("Hidden=true"), "{hidden}");
    ensure!(system.exists(), "the system entry is left alone");
    ensure!(autostart(home.path(), "on")?.1.starts_with("on ("));
    let full = std::fs::read_to_string(&entry)?;
    ensure!(!full.contains("Hidden=true") && full.contains("Exec="), "{full}");
    Ok(())
}

#[test]
fn without_a_display_the_agent_runs_headless_and_says_so() -> Result<()> {
    let radicale = Radicale::start()?;
    let spec = AccountSpec::for_user("alice").dav_from(&radicale);
    let launch = Launch {
        desktop: Some(vec![("DISPLAY".into(), String::new())]),
        ..Launch::default()
    };
    let agent = Agent::start_with(&render_config(&AgentSettings::default(), &[spec]), launch)?;
    agent.wait_for_state("alice", "online", Duration::from_secs(15))?;
    ensure!(agent.log().contains("no tray: no display"), "{}", agent.log());
    ensure!(!agent.log().contains("panicked"), "{}", agent.log());
    Ok(())
}

/// The appindicator library, as the tray loads it at run time.
fn appindicator_library() -> Result<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
    ]
    .iter()
    .map(|dir| Path::new(dir).join("libayatana-appindicator3.so.1"))
    .find(|p| p.exists())
    .context("libayatana-appindicator3-1 is not installed (scripts/test installs it)")?
    .canonicalize()
    .context("resolving the library")
}

#[test]
fn without_the_appindicator_library_it_says_so_and_still_notifies() -> Result<()> {
    ensure!(
        process::is_root(),
        "this test hides a system library in a private mount namespace: run it as root (CI does)"
    );
    let library = appindicator_library()?;
    let desktop = Desktop::start()?;
    let radicale = Radicale::start()?;
    // Only this agent sees the library replaced by an empty file.
    let hide = format!("mount --bind /dev/null {} && exec \"$@\"", library.display());
    let launch = Launch {
        desktop: Some(desktop.env()),
        wrapper: [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &hide,
            "sh",
        ]
        .map(String::from)
        .to_vec(),
        ..Launch::default()
    };
    let spec = AccountSpec::for_user("alice")
        .dav_from(&radicale)
        .password("wrong");
    let agent = Agent::start_with(&render_config(&AgentSettings::default(), &[spec]), launch)?;
    agent.wait_for_state("alice", "error", Duration::from_secs(15))?;
    // The authentication failure is told, once, without a tray.
    let call = desktop.wait_notify("alice cannot connect", Duration::from_secs(15))?;
    ensure!(
        call.contains("int32 2") || call.contains("byte 2"),
        "critical urgency: {call}"
    );
    // The tray's thread says so on its own time, not before the notification.
    let log = agent.wait_for_log("no tray icon:", Duration::from_secs(10))?;
    ensure!(log.contains("install libayatana-appindicator3-1"), "{log}");
    ensure!(!log.contains("panicked"), "{log}");
    ensure!(
        desktop.windows("opconnect")?.is_empty(),
        "no icon can be shown without the library"
    );
    std::thread::sleep(Duration::from_secs(3));
    let told = desktop.notify_log().matches("alice cannot connect").count();
    ensure!(told == 1, "the failure is told once, not per retry: {told}");
    Ok(())
}

/// Issue 23: while a long first sync runs, the badge is "syncing" (cyan, #0891b2) and the tooltip
/// carries the figures; afterwards it is green and "up to date" again. appindicator trays show
/// no tooltip, so the tray logs each tooltip it sets (debug) and the test reads it there.
#[test]
fn the_tray_says_syncing_with_the_figures_during_a_long_first_sync() -> Result<()> {
    let desktop = Desktop::start()?;
    let dovecot = opconnect_tests::Dovecot::start()?;
    let message = |i: usize| {
        format!(
            "From: Bob <bob@localhost>\r\nTo: alice@localhost\r\nSubject: bulk {i}\r\n\
             Message-ID: <t{i}@localhost>\r\n\r\nBody {i}\r\n"
        )
        .into_bytes()
    };
    dovecot.seed_maildir("alice", "Bulk", (0..20_000).map(|i| (message(i), "")))?;
    let spec = AccountSpec::for_user("alice").imap_from(&dovecot);
    let launch = Launch {
        desktop: Some(desktop.env()),
        wrapper: vec!["env".into(), "OPCONNECT_LOG=info,opconnect_ui=debug".into()],
        ..Launch::default()
    };
    let agent = Agent::start_with(&render_config(&AgentSettings::default(), &[spec]), launch)?;
    let icon = tray_icon(&desktop)?;
    let cyan = |c: [u8; 3]| c[2] > 140 && c[0] < 70 && c[1] > 100;
    let mut seen = None;
    for _ in 0..300 {
        let c = desktop.pixel(badge_pixel(&icon))?;
        if cyan(c) {
            seen = Some(c);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    desktop.screenshot(&artifact("tray-syncing.png"))?;
    ensure!(
        seen.is_some(),
        "the badge never turned cyan (syncing); see tray-syncing.png"
    );
    let figures = agent.wait_for(Duration::from_secs(60), |_| {
        agent.log().lines().any(|l| {
            l.contains("tray tooltip")
                && l.contains("opconnect: Syncing… alice: imap: messages ")
                && l.contains(" of 20,000 (Bulk")
        })
    });
    ensure!(figures.is_ok(), "no tooltip with the figures:\n{}", agent.log());
    agent.wait_for(Duration::from_secs(90), |s| {
        s["accounts"][0]["services"]["imap"]["activity"]["doing"] == "idle"
            && s["accounts"][0]["last_sync"].is_string()
    })?;
    let mut green = false;
    for _ in 0..50 {
        let c = desktop.pixel(badge_pixel(&icon))?;
        if c[1] > 120 && c[0] < 80 && c[2] < 120 {
            green = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    ensure!(green, "the badge did not turn green after the sync");
    ensure!(
        agent
            .log()
            .lines()
            .rev()
            .find(|l| l.contains("tray tooltip"))
            .is_some_and(|l| l.contains("opconnect: up to date")),
        "{}",
        agent.log()
    );
    Ok(())
}
