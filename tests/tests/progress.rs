//! Progress a user can see (issue 23): the `sync.progress` events of a long round against a
//! private Dovecot (20,000 messages) and Radicale (5,000 events), what `status` says while it
//! runs, and `opconnect sync --wait` piped (plain lines) and with `--json`.
//!
//! ```text
//!   seed the server ─► opconnect sync alice --wait  (thread: its stdout, exit code)
//!                      RawIpc subscribe sync.progress/synced (thread: events with their time)
//!                      status every 200 ms (main: the activity while the round runs)
//! ```
//! The data is written into the servers' storage once the agent is up, so the round that
//! `sync --wait` asks for is the first sync of that folder or calendar, seen whole.

use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Dovecot, Radicale};
use serde_json::{Value, json};

/// What one `sync --wait` round left: the CLI's output, the events (with when they came), and
/// every service activity `status` showed meanwhile.
struct Round {
    output: std::process::Output,
    events: Vec<(Instant, Value)>,
    activities: Vec<Value>,
}

fn sync_round(agent: &Agent, args: &[&str]) -> Result<Round> {
    let mut ipc = agent.ipc()?;
    ipc.subscribe(&["sync.progress", "synced", "sync.failed"])?;
    let done = std::sync::atomic::AtomicBool::new(false);
    thread::scope(|s| {
        let cli = s.spawn(|| {
            let out = agent.cli(args);
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            out
        });
        let listener = s.spawn(|| {
            let mut events = Vec::new();
            // The last events may come just after the CLI saw its `synced`.
            let mut quiet_after_done = 0;
            while quiet_after_done < 3 {
                match ipc.next_event(Duration::from_millis(200)) {
                    Ok(Some(e)) => events.push((Instant::now(), e)),
                    Ok(None) if done.load(std::sync::atomic::Ordering::SeqCst) => quiet_after_done += 1,
                    Ok(None) => {}
                    Err(_) => break,
                }
            }
            events
        });
        let mut activities = Vec::new();
        let mut asker = agent.ipc()?;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            if let Ok(status) = asker.call("status", json!({})) {
                for service in status["accounts"][0]["services"]
                    .as_object()
                    .into_iter()
                    .flatten()
                {
                    activities.push(service.1["activity"].clone());
                }
            }
            thread::sleep(Duration::from_millis(200));
        }
        Ok(Round {
            output: cli.join().expect("the CLI thread"),
            events: listener.join().expect("the listener thread"),
            activities,
        })
    })
}

/// The progress events of one sequence (`what` of `name`, a folder or collection).
fn sequence<'a>(round: &'a Round, what: &str, name: (&str, &str)) -> Vec<&'a (Instant, Value)> {
    round
        .events
        .iter()
        .filter(|(_, e)| e["topic"] == "sync.progress" && e["what"] == what && e[name.0] == name.1)
        .collect()
}

/// Rises to its total, ends on `count`, and came at most a few a second.
fn check_sequence(seq: &[&(Instant, Value)], count: u64) -> Result<()> {
    ensure!(seq.len() >= 2, "too few progress events: {seq:?}");
    let dones: Vec<u64> = seq.iter().map(|(_, e)| e["done"].as_u64().unwrap()).collect();
    ensure!(dones.windows(2).all(|w| w[0] < w[1]), "not rising: {dones:?}");
    ensure!(
        seq.iter().all(|(_, e)| e["total"] == count),
        "totals: {:?}",
        seq.iter().map(|(_, e)| &e["total"]).collect::<Vec<_>>()
    );
    ensure!(*dones.last().unwrap() == count, "last: {dones:?}");
    let span = seq.last().unwrap().0.duration_since(seq[0].0).as_secs_f64();
    // 4 a second by design; delivery may bunch them, so allow one more second's worth.
    ensure!(
        seq.len() as f64 <= 4.0 * (span + 1.0) + 2.0,
        "{} events in {span:.1} s",
        seq.len()
    );
    println!("{} events over {span:.1} s, done {dones:?}", seq.len());
    Ok(())
}

/// The messages of `folder` in the mirror, page by page.
fn mirror_count(agent: &Agent, folder: &str) -> Result<u64> {
    let (mut count, mut after) = (0, 0);
    loop {
        let page = agent.call(
            "mail.messages",
            json!({"account": "alice", "folder": folder, "after_uid": after}),
        )?;
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        let Some(last) = messages.last() else {
            return Ok(count);
        };
        after = last["uid"].as_u64().context("uid")?;
        count += messages.len() as u64;
    }
}

fn small_message(i: usize) -> Vec<u8> {
    format!(
        "From: Bob <bob@localhost>\r\nTo: alice@localhost\r\nSubject: bulk {i}\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <p{i}@localhost>\r\n\r\nBody {i}\r\n"
    )
    .into_bytes()
}

#[test]
fn first_sync_of_20000_messages_reports_progress_and_sync_wait_prints_lines() -> Result<()> {
    let test_began = Instant::now();
    let dovecot = Dovecot::start()?;
    let spec = AccountSpec::for_user("alice").imap_from(&dovecot);
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for(Duration::from_secs(20), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    // Created first, so that Dovecot's folder list knows it; its messages are then found by
    // the next SELECT.
    dovecot.doveadm(&["mailbox", "create", "-u", "alice", "Bulk"])?;
    let seeded = dovecot.seed_maildir("alice", "Bulk", (0..20_000).map(|i| (small_message(i), "")))?;
    ensure!(seeded == 20_000);
    println!("seeded after {:?}", test_began.elapsed());

    let began = Instant::now();
    let round = sync_round(&agent, &["sync", "alice", "--wait"])?;
    let took = began.elapsed();
    let stdout = String::from_utf8_lossy(&round.output.stdout);
    ensure!(
        round.output.status.success(),
        "sync --wait: {}\n{stdout}{}",
        round.output.status,
        String::from_utf8_lossy(&round.output.stderr)
    );
    println!("sync --wait of 20,000 messages took {took:?}; it printed:\n{stdout}");

    // Piped: plain lines, no terminal control sequences.
    ensure!(!stdout.contains('\x1b'), "{stdout:?}");
    ensure!(stdout.contains("alice imap: messages "), "{stdout}");
    ensure!(stdout.contains("of 20,000 (Bulk"), "{stdout}");
    ensure!(stdout.contains("alice imap: synced\n"), "{stdout}");
    ensure!(stdout.ends_with("sync done (1 services)\n"), "{stdout}");

    let counting = Instant::now();
    let mirrored = mirror_count(&agent, "Bulk")?;
    println!("counted in {:?}", counting.elapsed());
    ensure!(mirrored == 20_000, "the mirror holds {mirrored}");
    check_sequence(&sequence(&round, "messages", ("folder", "Bulk")), mirrored)?;
    ensure!(
        round
            .events
            .iter()
            .any(|(_, e)| e["topic"] == "synced" && e["service"] == "imap"),
        "no synced event"
    );
    // While it ran, status said so, with the figures.
    let syncing: Vec<&Value> = round
        .activities
        .iter()
        .filter(|a| a["doing"] == "syncing")
        .collect();
    ensure!(
        syncing.iter().any(|a| a["progress"]
            .as_array()
            .is_some_and(|p| p.iter().any(|s| s["what"] == "messages" && s["total"] == 20_000))),
        "status never showed the messages being synced: {:?}",
        round.activities
    );
    let after = agent.status_json()?;
    ensure!(
        after["accounts"][0]["services"]["imap"]["activity"] == json!({"doing": "idle"}),
        "{after}"
    );
    let text = agent.cli_ok(&["status"])?;
    ensure!(text.contains("imap     online, idle"), "{text}");
    Ok(())
}

/// Writes `n` events straight into Radicale's storage.
fn seed_events(radicale: &Radicale, slug: &str, n: usize) -> Result<()> {
    let dir = radicale
        .dir()
        .join("collections/collection-root/alice")
        .join(slug);
    ensure!(dir.is_dir(), "{} does not exist", dir.display());
    for i in 0..n {
        let body = format!(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect tests//EN\r\nBEGIN:VEVENT\r\n\
             UID:p{i:05}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:2026{:02}{:02}T100000Z\r\nDURATION:PT1H\r\n\
             SUMMARY:Event {i}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
            1 + i % 12,
            1 + i % 28
        );
        std::fs::write(dir.join(format!("p{i:05}.ics")), body)?;
    }
    Ok(())
}

#[test]
fn first_sync_of_5000_events_reports_progress_and_sync_wait_json_is_json() -> Result<()> {
    let radicale = Radicale::start()?;
    let cal = radicale.create_calendar("alice", "big", "Big")?;
    let settings = AgentSettings {
        dav_poll_interval: "10m".into(),
        ..AgentSettings::default()
    };
    let spec = AccountSpec::for_user("alice").dav_from(&radicale);
    let agent = Agent::start(&render_config(&settings, &[spec]))?;
    agent.wait_for(Duration::from_secs(30), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    // Both DAV children have finished their first (empty) round.
    agent.cli_ok(&["sync", "alice", "--wait"])?;
    // An empty calendar's first round is one query; the round after it lists the calendar and
    // takes its change marker (dav::marker). Seeding must not race that round, whose listing
    // would see part of the files and fetch them before the round measured here.
    let began = Instant::now();
    while !agent
        .log()
        .lines()
        .any(|l| l.contains("change marker chosen") && l.contains("/alice/big/"))
    {
        ensure!(
            began.elapsed() < Duration::from_secs(30),
            "the calendar's change marker was never taken"
        );
        thread::sleep(Duration::from_millis(100));
    }
    agent.cli_ok(&["sync", "alice", "--wait"])?;
    seed_events(&radicale, "big", 5_000)?;
    let warming = Instant::now();
    radicale.warm(&["/alice/big/"])?;
    println!("Radicale's caches built in {:?}", warming.elapsed());

    let began = Instant::now();
    let round = sync_round(&agent, &["sync", "alice", "--wait", "--json"])?;
    let took = began.elapsed();
    let stdout = String::from_utf8_lossy(&round.output.stdout);
    ensure!(
        round.output.status.success(),
        "sync --wait --json: {}\n{stdout}{}",
        round.output.status,
        String::from_utf8_lossy(&round.output.stderr)
    );
    println!("sync --wait of 5,000 events took {took:?}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .with_context(|| format!("stdout is not JSON lines:\n{stdout}"))?;
    ensure!(
        lines.last() == Some(&json!({"topic": "done", "ok": true, "failed": []})),
        "{stdout}"
    );
    ensure!(
        lines
            .iter()
            .any(|l| l["topic"] == "sync.progress" && l["what"] == "items" && l["total"] == 5_000),
        "{stdout}"
    );

    let items = agent.call("calendar.items", json!({"account": "alice", "calendar": cal}))?;
    let mirrored = items.as_array().map_or(0, Vec::len) as u64;
    ensure!(mirrored == 5_000, "the mirror holds {mirrored}");
    let href = cal.trim_end_matches('/').to_owned() + "/";
    let seq: Vec<_> = round
        .events
        .iter()
        .filter(|(_, e)| {
            e["topic"] == "sync.progress"
                && e["what"] == "items"
                && e["collection"]
                    .as_str()
                    .is_some_and(|c| c.trim_end_matches('/') == href.trim_end_matches('/'))
        })
        .collect();
    check_sequence(&seq, mirrored)?;
    ensure!(
        round
            .activities
            .iter()
            .any(|a| a["doing"] == "syncing" && a["progress"][0]["what"] == "items"),
        "status never showed the items being synced: {:?}",
        round.activities
    );
    Ok(())
}

#[test]
fn sync_wait_fails_with_the_reason_when_the_server_is_gone() -> Result<()> {
    let mut dovecot = Dovecot::start()?;
    let spec = AccountSpec::for_user("alice").imap_from(&dovecot);
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    dovecot.stop();
    let out = agent.cli(&["sync", "alice", "--wait"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.code() == Some(1), "{}: {stderr}", out.status);
    ensure!(stderr.contains("sync failed: alice imap: "), "{stderr}");
    let status = agent.status_json()?;
    let imap = &status["accounts"][0]["services"]["imap"];
    ensure!(imap["last_error"]["at"].is_string(), "{status}");
    ensure!(
        imap["activity"]["doing"] == "waiting" && imap["activity"]["until"].is_string(),
        "{status}"
    );
    let text = agent.cli_ok(&["status"])?;
    ensure!(text.contains("waiting to retry until"), "{text}");
    ensure!(text.contains("last error "), "{text}");
    Ok(())
}
