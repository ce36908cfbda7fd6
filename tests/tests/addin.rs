//! The Outlook add-in end to end: its engine and adapter run under Mono with the in-memory Outlook
//! stand-in in Outlook's place (addin/tests/E2E/EndToEnd.cs, NUnit), against the real agent and
//! real servers started here. Each test builds the add-in with `addin/build`, starts Radicale (and
//! Dovecot for notes) and the agent, runs one NUnit fixture with `nunit-console`, fails if NUnit
//! fails, then checks on the servers what the fixture reported in its results file.
//!
//! ```text
//!   Radicale, Dovecot ◀── agent ◀── socket ── nunit-console: EndToEnd.<fixture>
//!        ▲                  ▲ kill/restart on request      │ writes OPCONNECT_E2E_OUT
//!        └── this test checks the servers ◀────────────────┘ (and CONTROL/restart)
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use opconnect_tests::config::render_config;
use opconnect_tests::process::{run_with_timeout, short_tempdir};
use opconnect_tests::{AccountSpec, Agent, AgentSettings, DavServer, Dovecot, Radicale, password_of};
use serde_json::Value;

/// NUnit fixtures get this long (the 5,000-event first sync included), within the 5 minutes .config/nextest.toml gives the 5,000-event test.
const FIXTURE_TIMEOUT: Duration = Duration::from_secs(280);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// The add-in built by `addin/build` into a directory of this test process (mcs takes ~3 s).
fn addin_dir() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("bin");
        let mut cmd = Command::new("bash");
        cmd.arg(repo().join("addin/build")).arg(&out);
        let built = run_with_timeout(cmd, Duration::from_secs(300)).expect("running addin/build");
        assert!(
            built.status.success(),
            "addin/build failed (scripts/test installs mono-mcs and nunit-console):\n{}{}",
            String::from_utf8_lossy(&built.stdout),
            String::from_utf8_lossy(&built.stderr)
        );
        (dir, out)
    })
    .1
}

/// Servers and the agent one fixture runs against.
struct Setup {
    radicale: Radicale,
    dovecot: Option<Dovecot>,
    agent: Agent,
    work: String,
    files: tempfile::TempDir,
}

impl Setup {
    /// Radicale with calendar `work`, task list `tasks` and address book `contacts`; Dovecot when
    /// `notes`; `seed` runs before the agent starts.
    fn start(notes: bool, seed: impl FnOnce(&Radicale, &str) -> Result<()>) -> Result<Setup> {
        let radicale = Radicale::start()?;
        let work = radicale.create_calendar("alice", "work", "Work")?;
        radicale.create_calendar_for("alice", "tasks", "Tasks", &["VTODO"])?;
        radicale.create_addressbook("alice", "contacts", "Contacts")?;
        seed(&radicale, &work)?;
        let dovecot = if notes { Some(Dovecot::start()?) } else { None };
        let mut spec = AccountSpec::for_user("alice").dav_from(&radicale);
        if let Some(d) = &dovecot {
            spec = spec.imap_from(d);
        }
        let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
        agent.wait_for(Duration::from_secs(30), |s| {
            s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
        })?;
        Ok(Setup {
            radicale,
            dovecot,
            agent,
            work,
            files: short_tempdir("ad")?,
        })
    }

    fn out_path(&self) -> PathBuf {
        self.files.path().join("out.json")
    }

    fn control(&self) -> PathBuf {
        self.files.path().to_path_buf()
    }

    fn nunit(&self, fixture: &str, extra: &[(&str, String)]) -> Command {
        let dir = addin_dir();
        let mut cmd = Command::new("nunit-console");
        cmd.current_dir(dir)
            .arg("-nologo")
            .arg("-labels")
            .arg(format!("-run:OpConnect.Outlook.Tests.E2E.EndToEnd.{fixture}"))
            .arg(format!(
                "-xml:{}",
                self.files.path().join("TestResult.xml").display()
            ))
            .arg(dir.join("OpConnect.Outlook.Tests.dll"))
            .env("OPCONNECT_SOCKET", self.agent.socket_path())
            .env("OPCONNECT_ACCOUNT", "alice")
            .env("OPCONNECT_DAV_URL", self.radicale.url())
            .env("OPCONNECT_DAV_USER", "alice")
            .env("OPCONNECT_DAV_PASSWORD", password_of("alice"))
            .env("OPCONNECT_E2E_OUT", self.out_path())
            .env("OPCONNECT_E2E_CONTROL", self.control());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs one fixture; its results file (an empty object when it wrote none).
    fn run(&self, fixture: &str, extra: &[(&str, String)]) -> Result<Value> {
        let output = run_with_timeout(self.nunit(fixture, extra), FIXTURE_TIMEOUT)?;
        check_nunit(fixture, &output)?;
        self.results()
    }

    fn results(&self) -> Result<Value> {
        match std::fs::read_to_string(self.out_path()) {
            Ok(text) => Ok(serde_json::from_str(&text)?),
            Err(_) => Ok(Value::Object(Default::default())),
        }
    }

    fn server_text(&self, href: &str) -> Result<String> {
        let r = self.radicale.get("alice", href)?;
        ensure!(r.status == 200, "GET {href}: {}", r.status);
        Ok(String::from_utf8_lossy(&r.body).replace("\r\n ", ""))
    }
}

/// NUnit passed, and ran exactly the one fixture asked for (a misspelt name runs none).
fn check_nunit(fixture: &str, output: &std::process::Output) -> Result<()> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}");
    ensure!(
        output.status.success() && stdout.contains("Tests run: 1, Errors: 0, Failures: 0"),
        "NUnit fixture {fixture} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    Ok(())
}

/// Radicale parses every item of a collection the first time it is listed (tens of seconds for
/// 5,000): one PROPFIND with a patient read fills its cache before the agent's discovery comes.
fn warm_radicale(radicale: &Radicale, path: &str) -> Result<()> {
    use base64::Engine;
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", radicale.port()))?;
    conn.set_read_timeout(Some(Duration::from_secs(150)))?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("alice:{}", password_of("alice")));
    write!(
        conn,
        "PROPFIND {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nDepth: 1\r\nAuthorization: Basic {auth}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer)?;
    let head = String::from_utf8_lossy(&answer[..answer.len().min(40)]).into_owned();
    ensure!(head.contains(" 207"), "PROPFIND {path}: {head}");
    Ok(())
}

fn event(uid: &str, summary: &str, start: &str, extra: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect//addin e2e//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n\
         DTSTAMP:20261201T000000Z\r\nDTSTART:{start}\r\nDURATION:PT1H\r\nSUMMARY:{summary}\r\n{extra}END:VEVENT\r\n\
         END:VCALENDAR\r\n"
    )
}

#[test]
fn the_agent_answers_the_addin() -> Result<()> {
    let setup = Setup::start(false, |_, _| Ok(()))?;
    setup.run("The_agent_answers_the_addin", &[])?;
    let stored = setup.server_text(&format!("{}raw-put.ics", setup.work));
    ensure!(
        stored
            .as_ref()
            .map(|s| s.contains("SUMMARY:Raw put"))
            .unwrap_or(false)
            || setup.radicale.members("alice", &setup.work)?.len() == 1,
        "the add-in's raw write reached Radicale"
    );
    Ok(())
}

#[test]
fn items_made_in_outlook_reach_the_servers() -> Result<()> {
    let setup = Setup::start(true, |_, _| Ok(()))?;
    let out = setup.run("Items_made_in_outlook_reach_the_servers", &[])?;
    let href = |class: &str| {
        out[class]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("{class} in {out}"))
    };

    let appointment = setup.server_text(&href("appointment")?)?;
    for line in [
        "SUMMARY:Dentist",
        "LOCATION:Main St 1",
        "CATEGORIES:Health",
        "TRIGGER:-PT10M",
    ] {
        ensure!(appointment.contains(line), "{line} in\n{appointment}");
    }
    ensure!(
        appointment.contains("DTSTART;TZID=") && appointment.contains("T140000"),
        "wall-clock 14:00 in its zone:\n{appointment}"
    );
    let task = setup.server_text(&href("task")?)?;
    ensure!(
        task.contains("BEGIN:VTODO") && task.contains("SUMMARY:File taxes"),
        "{task}"
    );
    ensure!(task.contains("DUE") && task.contains("20261215"), "{task}");
    let contact = setup.server_text(&href("contact")?)?;
    for needle in ["FN:Bob Baker", "bob@localhost", "+49 170 1234", "Berlin"] {
        ensure!(contact.contains(needle), "{needle} in\n{contact}");
    }
    let group = setup.server_text(&href("distlist")?)?;
    ensure!(
        group.contains("Team") && group.to_lowercase().contains("group"),
        "{group}"
    );
    ensure!(
        group.contains("bob@localhost") || group.contains("urn:uuid:"),
        "the member: {group}"
    );

    let dovecot = setup.dovecot.as_ref().expect("dovecot");
    let mut probe = dovecot.probe("alice")?;
    probe.select("Notes")?;
    ensure!(
        probe.uid_search("SUBJECT Groceries")?.len() == 1,
        "the note in Dovecot's Notes folder"
    );
    Ok(())
}

#[test]
fn changes_at_the_server_reach_outlook_and_a_series_arrives_whole() -> Result<()> {
    let setup = Setup::start(false, |radicale, work| {
        radicale.put_event(
            "alice",
            work,
            "plain",
            &event("plain", "Plain", "20261207T100000Z", ""),
        )?;
        radicale.put_event(
            "alice",
            work,
            "doomed",
            &event("doomed", "Doomed", "20261208T100000Z", ""),
        )?;
        let series = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect//addin e2e//EN\r\n\
            BEGIN:VEVENT\r\nUID:series\r\nDTSTAMP:20261201T000000Z\r\nDTSTART;TZID=Europe/Berlin:20261207T090000\r\n\
            DTEND;TZID=Europe/Berlin:20261207T093000\r\nRRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO\r\n\
            EXDATE;TZID=Europe/Berlin:20261214T090000\r\nSUMMARY:Weekly sync\r\nEND:VEVENT\r\n\
            BEGIN:VEVENT\r\nUID:series\r\nDTSTAMP:20261201T000000Z\r\nRECURRENCE-ID;TZID=Europe/Berlin:20261221T090000\r\n\
            DTSTART;TZID=Europe/Berlin:20261221T110000\r\nDTEND;TZID=Europe/Berlin:20261221T113000\r\n\
            SUMMARY:Weekly sync (moved)\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        radicale.put_event("alice", work, "series", series)?;
        Ok(())
    })?;
    setup.run(
        "Changes_at_the_server_reach_outlook_and_a_series_arrives_whole",
        &[],
    )?;
    Ok(())
}

#[test]
fn a_change_on_both_sides_becomes_the_agents_conflict() -> Result<()> {
    let setup = Setup::start(false, |radicale, work| {
        radicale.put_event(
            "alice",
            work,
            "contested",
            &event("contested", "Contested", "20261209T100000Z", ""),
        )?;
        Ok(())
    })?;
    let out = setup.run("A_change_on_both_sides_becomes_the_agents_conflict", &[])?;
    let conflicts = setup.agent.call("conflicts.list", serde_json::json!({}))?;
    ensure!(conflicts.as_array().map(Vec::len) == Some(1), "{conflicts}");
    let href = out["href"].as_str().context("href")?;
    let stored = setup.server_text(href)?;
    ensure!(
        stored.contains("SUMMARY:Contested (server)"),
        "server-wins: the server's version stays until the user resolves:\n{stored}"
    );
    Ok(())
}

#[test]
fn the_agent_restarted_mid_sync_loses_nothing_and_duplicates_nothing() -> Result<()> {
    let mut setup = Setup::start(false, |_, _| Ok(()))?;
    let cmd = setup.nunit(
        "The_agent_restarted_mid_sync_loses_nothing_and_duplicates_nothing",
        &[],
    );
    let nunit = thread::spawn(move || run_with_timeout(cmd, FIXTURE_TIMEOUT));
    let request = setup.control().join("restart");
    let began = Instant::now();
    while !request.exists() {
        if nunit.is_finished() {
            break;
        }
        if began.elapsed() > FIXTURE_TIMEOUT {
            bail!("the fixture never asked for a restart");
        }
        thread::sleep(Duration::from_millis(20));
    }
    if request.exists() {
        // SIGKILL mid-sync: a crash, as far as the agent can tell.
        setup.agent.kill();
        setup.agent.restart()?;
        std::fs::write(setup.control().join("restarted"), "")?;
    }
    let output = nunit.join().expect("nunit thread")?;
    check_nunit("The_agent_restarted_mid_sync", &output)?;
    let out = setup.results()?;
    ensure!(out["connections"].as_i64().unwrap_or(0) >= 2, "{out}");
    let members = setup.radicale.members("alice", &setup.work)?;
    ensure!(
        members.len() == 150,
        "150 events on the server, no more: {}",
        members.len()
    );
    Ok(())
}

#[test]
fn a_first_sync_of_5000_events_is_applied_in_short_slices() -> Result<()> {
    const EVENTS: usize = 5000;
    let setup = Setup::start(false, |radicale: &Radicale, work: &str| {
        // Written straight into Radicale's file storage (one .ics per item, as Radicale keeps them):
        // 5,000 PUTs would take minutes; Radicale lists the folder on each request.
        let dir = radicale
            .dir()
            .join("collections/collection-root")
            .join(work.trim_matches('/'));
        for i in 0..EVENTS {
            let start = format!(
                "2027{:02}{:02}T{:02}0000Z",
                1 + (i / (24 * 28)) % 12,
                1 + (i / 24) % 28,
                i % 24
            );
            let ics = event(&format!("bulk-{i}"), &format!("Bulk event {i}"), &start, "");
            std::fs::write(dir.join(format!("bulk-{i}.ics")), ics)?;
        }
        warm_radicale(radicale, work)
    })?;
    let out = setup.run(
        "A_first_sync_of_many_events_is_applied_in_short_slices",
        &[("OPCONNECT_E2E_EVENTS", EVENTS.to_string())],
    )?;
    eprintln!("first sync of {EVENTS} events through the agent: {out}");
    let longest = out["longest_bound_slice_ms"]
        .as_f64()
        .context("longest_bound_slice_ms")?;
    ensure!(longest < 50.0, "longest slice once bound: {longest} ms");
    Ok(())
}
