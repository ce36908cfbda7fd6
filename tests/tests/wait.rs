//! `"wait": true` tells the truth (INTERFACE §4): right after the answer of every mail and notes
//! write method, the server itself (asked by the harness over IMAP, not through the agent) holds
//! the result. One test per method against Dovecot (and Postfix for `mail.send`), including the
//! writes of several steps: `notes.put` (create the folder, append, delete the old version) and
//! `mail.folder.copy` of a three-level tree (whose progress events once read as a refusal).

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use base64::Engine as _;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Dovecot, ImapProbe, Postfix};
use serde_json::{Value, json};

fn message(id: &str) -> Vec<u8> {
    format!(
        "From: Carol <carol@localhost>\r\nTo: alice@localhost\r\nSubject: {id}\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{id}@localhost>\r\n\r\nBody of {id}\r\n"
    )
    .into_bytes()
}

fn b64(raw: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// Alice's agent, after its first sync (the mirror knows the folders that exist now).
fn agent(dovecot: &Dovecot, postfix: Option<&Postfix>) -> Result<Agent> {
    let mut spec = AccountSpec::for_user("alice").imap_from(dovecot);
    spec.smtp = postfix.map(Postfix::url);
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for(Duration::from_secs(30), |s| {
        s["accounts"][0]["state"] == "online" && s["accounts"][0]["last_sync"].is_string()
    })?;
    Ok(agent)
}

/// Calls `method` with `wait: true` for alice over the socket (the harness looks at the server
/// the moment the answer arrives); the answer must be a success.
fn wait(agent: &Agent, method: &str, mut params: Value) -> Result<Value> {
    params["account"] = json!("alice");
    params["wait"] = json!(true);
    let mut ipc = agent.ipc()?;
    ipc.set_timeout(Duration::from_secs(60))?;
    ipc.call(method, params)
        .with_context(|| format!("{method} with wait: true\n{}", agent.log()))
}

fn probe(dovecot: &Dovecot) -> Result<ImapProbe> {
    dovecot.probe("alice")
}

/// UIDs of messages in `folder` not marked \Deleted, straight from the server.
fn present(dovecot: &Dovecot, folder: &str, criteria: &str) -> Result<Vec<u32>> {
    let mut p = probe(dovecot)?;
    p.select(folder)?;
    p.uid_search(&format!("UNDELETED {criteria}"))
}

/// The folder names the server lists.
fn folders(dovecot: &Dovecot) -> Result<Vec<String>> {
    Ok(probe(dovecot)?
        .list()?
        .iter()
        .filter_map(|l| l.rsplit(' ').next())
        .map(|n| n.trim_matches('"').to_owned())
        .collect())
}

#[test]
fn flag() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let uid = dovecot.append("alice", "INBOX", &message("flag"))?;
    let agent = agent(&dovecot, None)?;
    wait(
        &agent,
        "mail.flag",
        json!({"folder": "INBOX", "uids": [uid], "add": ["\\Flagged", "$Work"]}),
    )?;
    let mut p = probe(&dovecot)?;
    p.select("INBOX")?;
    let flags = p.uid_fetch_flags(&uid.to_string())?.join(" ");
    ensure!(flags.contains("\\Flagged") && flags.contains("$Work"), "{flags}");
    Ok(())
}

#[test]
fn move_and_copy() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let moved = dovecot.append("alice", "INBOX", &message("moved"))?;
    let copied = dovecot.append("alice", "INBOX", &message("copied"))?;
    probe(&dovecot)?.create("Archive")?;
    let agent = agent(&dovecot, None)?;
    wait(
        &agent,
        "mail.move",
        json!({"folder": "INBOX", "uids": [moved], "to": "Archive"}),
    )?;
    ensure!(
        present(&dovecot, "Archive", "SUBJECT moved")?.len() == 1,
        "in Archive"
    );
    ensure!(
        present(&dovecot, "INBOX", "SUBJECT moved")?.is_empty(),
        "gone from INBOX"
    );
    wait(
        &agent,
        "mail.copy",
        json!({"folder": "INBOX", "uids": [copied], "to": "Archive"}),
    )?;
    ensure!(
        present(&dovecot, "Archive", "SUBJECT copied")?.len() == 1,
        "copy in Archive"
    );
    ensure!(
        present(&dovecot, "INBOX", "SUBJECT copied")?.len() == 1,
        "original kept"
    );
    Ok(())
}

#[test]
fn delete() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let uid = dovecot.append("alice", "INBOX", &message("deleted"))?;
    let agent = agent(&dovecot, None)?;
    wait(&agent, "mail.delete", json!({"folder": "INBOX", "uids": [uid]}))?;
    ensure!(
        present(&dovecot, "INBOX", "ALL")?.is_empty(),
        "deleted on the server"
    );
    Ok(())
}

#[test]
fn append() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let agent = agent(&dovecot, None)?;
    wait(
        &agent,
        "mail.append",
        json!({"folder": "INBOX", "raw": b64(&message("appended")), "flags": ["\\Seen"]}),
    )?;
    let found = present(&dovecot, "INBOX", "HEADER Message-ID appended@localhost SEEN")?;
    ensure!(found.len() == 1, "appended and seen: {found:?}");
    Ok(())
}

#[test]
fn send() -> Result<()> {
    let (dovecot, postfix) = Postfix::with_dovecot()?;
    let agent = agent(&dovecot, Some(&postfix))?;
    let raw = "From: Alice <alice@localhost>\r\nTo: Bob <bob@localhost>\r\nSubject: waited\r\n\
               Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <waited@localhost>\r\n\r\nHi\r\n";
    wait(&agent, "mail.send", json!({"raw": b64(raw.as_bytes())}))?;
    // Submitted (Postfix took it) and filed in Sent, both before the answer.
    ensure!(
        postfix.accepted_from("alice@localhost").len() == 1,
        "{}",
        postfix.log()
    );
    let sent = present(&dovecot, "Sent", "HEADER Message-ID waited@localhost")?;
    ensure!(sent.len() == 1, "one copy in Sent: {sent:?}");
    Ok(())
}

#[test]
fn folder_create_rename_delete() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let agent = agent(&dovecot, None)?;
    wait(&agent, "mail.folder.create", json!({"path": "Projects"}))?;
    ensure!(folders(&dovecot)?.contains(&"Projects".to_owned()), "created");
    // The mirror learns of the new folder on the sync after the write; rename needs it there.
    agent.call_until(
        "mail.folders",
        json!({"account": "alice"}),
        Duration::from_secs(15),
        |v| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|f| f["path"] == "Projects"))
        },
    )?;
    wait(
        &agent,
        "mail.folder.rename",
        json!({"path": "Projects", "to": "Clients"}),
    )?;
    let now = folders(&dovecot)?;
    ensure!(
        now.contains(&"Clients".to_owned()) && !now.contains(&"Projects".to_owned()),
        "renamed: {now:?}"
    );
    agent.call_until(
        "mail.folders",
        json!({"account": "alice"}),
        Duration::from_secs(15),
        |v| {
            v.as_array()
                .is_some_and(|a| a.iter().any(|f| f["path"] == "Clients"))
        },
    )?;
    wait(&agent, "mail.folder.delete", json!({"path": "Clients"}))?;
    ensure!(!folders(&dovecot)?.contains(&"Clients".to_owned()), "deleted");
    Ok(())
}

/// Issue 16: a three-level copy answered "the server refused operation 1: unknown error" while
/// it went on; now the answer comes when every folder is copied.
#[test]
fn folder_copy_of_a_three_level_tree() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let tree = ["Proj", "Proj/Alpha", "Proj/Alpha/Deep"];
    for (f, folder) in tree.iter().enumerate() {
        dovecot.seed_maildir(
            "alice",
            folder,
            (0..3).map(|i| {
                let raw =
                    format!("From: a@localhost\r\nSubject: {folder} {i}\r\nMessage-ID: <c{f}-{i}@localhost>\r\n\r\nx\r\n");
                (raw.into_bytes(), "")
            }),
        )?;
    }
    let agent = agent(&dovecot, None)?;
    let answer = wait(&agent, "mail.folder.copy", json!({"path": "Proj", "to": "Copy"}))?;
    ensure!(answer["op"].is_u64(), "{answer}");
    for folder in tree {
        let copy = format!("Copy{}", &folder[4..]);
        let n = present(&dovecot, &copy, "ALL")?.len();
        ensure!(n == 3, "{copy} holds {n} of 3 right after the answer");
    }
    Ok(())
}

#[test]
fn acl_set() -> Result<()> {
    let dovecot = Dovecot::start()?;
    probe(&dovecot)?.create("Team")?;
    let agent = agent(&dovecot, None)?;
    wait(
        &agent,
        "mail.acl.set",
        json!({"folder": "Team", "identifier": "bob", "rights": "lr"}),
    )?;
    let acl = probe(&dovecot)?.command("GETACL \"Team\"")?.join(" ");
    ensure!(acl.contains("bob lr"), "{acl}");
    Ok(())
}

/// Issue 16: right after `notes.put` the folder `Notes` did not exist yet.
#[test]
fn notes_put_and_delete() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let agent = agent(&dovecot, None)?;
    // A large body makes the append take a while: an answer that does not wait is early.
    let body = format!(
        "Milk\n{}",
        "A shopping list that goes on and on. ".repeat(100_000)
    );
    let put = wait(&agent, "notes.put", json!({"subject": "Groceries", "body": body}))?;
    let id = put["id"].as_str().context("id")?.to_owned();
    ensure!(put["op"].is_u64(), "{put}");
    let notes = present(&dovecot, "Notes", "SUBJECT Groceries")?;
    ensure!(notes.len() == 1, "the note is on the server: {notes:?}");

    // An edit (append the new version, delete the old) is whole when it answers too; the agent
    // must have read the first version back to know which message to replace.
    agent.call_until(
        "notes.list",
        json!({"account": "alice"}),
        Duration::from_secs(15),
        |v| v.as_array().is_some_and(|a| a.len() == 1),
    )?;
    wait(
        &agent,
        "notes.put",
        json!({"id": id, "subject": "Groceries", "body": "Milk, eggs"}),
    )?;
    let all = present(&dovecot, "Notes", "ALL")?;
    ensure!(all.len() == 1, "one version left: {all:?}");
    agent.call_until(
        "notes.list",
        json!({"account": "alice"}),
        Duration::from_secs(15),
        |v| {
            v.as_array()
                .is_some_and(|a| a.len() == 1 && a[0]["body"] == "Milk, eggs")
        },
    )?;
    wait(&agent, "notes.delete", json!({"id": id}))?;
    ensure!(
        present(&dovecot, "Notes", "ALL")?.is_empty(),
        "deleted on the server"
    );
    Ok(())
}
