//! Contact groups written in the dialect the address book already uses: a vCard 4 `KIND:group`
//! written into a book of Apple-style groups (`X-ADDRESSBOOKSERVER-KIND`) lands on the server in
//! Apple's form and still reads back as a group with its members.

use std::time::Duration;

use anyhow::{Result, ensure};
use opconnect_tests::DavServer;
use opconnect_tests::config::render_config;
use opconnect_tests::{AccountSpec, Agent, AgentSettings, Radicale};
use serde_json::json;

const APPLE_GROUP: &str = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:friends\r\nFN:Friends\r\nN:Friends;;;;\r\n\
X-ADDRESSBOOKSERVER-KIND:group\r\nX-ADDRESSBOOKSERVER-MEMBER:urn:uuid:bob\r\nEND:VCARD\r\n";
const BOB: &str =
    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bob\r\nFN:Bob\r\nN:;Bob;;;\r\nEMAIL:bob@localhost\r\nEND:VCARD\r\n";
const NEW_GROUP: &str = "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:team\r\nKIND:group\r\nFN:Team\r\n\
MEMBER:urn:uuid:bob\r\nMEMBER:urn:uuid:nobody-yet\r\nEND:VCARD\r\n";

#[test]
fn a_group_is_written_in_the_books_dialect() -> Result<()> {
    let radicale = Radicale::start()?;
    let book = radicale.create_addressbook("alice", "contacts", "Contacts")?;
    radicale.put_contact("alice", &book, "friends", APPLE_GROUP)?;
    radicale.put_contact("alice", &book, "bob", BOB)?;
    let spec = AccountSpec::for_user("alice").dav_from(&radicale);
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    agent.call_until(
        "contacts.items",
        json!({"account": "alice", "book": book}),
        Duration::from_secs(10),
        |v| v.as_array().map(Vec::len) == Some(2),
    )?;

    let answer = agent.call(
        "contacts.put",
        json!({"account": "alice", "book": book, "vcf": NEW_GROUP, "wait": true}),
    )?;
    let href = answer["href"].as_str().unwrap_or_default().to_owned();
    let stored = String::from_utf8_lossy(&radicale.get("alice", &href)?.body).into_owned();
    ensure!(
        stored.contains("X-ADDRESSBOOKSERVER-KIND:group"),
        "Apple's dialect on the server: {stored}"
    );
    ensure!(!stored.contains("\nKIND:group"), "{stored}");

    let items = agent.call("contacts.items", json!({"account": "alice", "book": book}))?;
    let team = items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["href"] == href)
        .cloned()
        .unwrap_or_default();
    assert_eq!(team["kind"], "group", "{team}");
    let members = team["members"].to_string();
    ensure!(
        members.contains("urn:uuid:bob") && members.contains("urn:uuid:nobody-yet"),
        "a member who does not exist still loads: {team}"
    );
    Ok(())
}

#[test]
fn the_global_address_list_needs_a_directory() -> Result<()> {
    let radicale = Radicale::start()?;
    radicale.create_addressbook("alice", "contacts", "Contacts")?;
    let spec = AccountSpec::for_user("alice").dav_from(&radicale);
    let agent = Agent::start(&render_config(&AgentSettings::default(), &[spec]))?;
    agent.wait_for_state("alice", "online", Duration::from_secs(20))?;
    let raw = agent
        .ipc()?
        .request("gal.search", json!({"account": "alice", "query": "bob"}))?;
    assert_eq!(raw["error"]["code"], 2, "Radicale publishes no directory: {raw}");
    let short = agent
        .ipc()?
        .request("gal.search", json!({"account": "alice", "query": "b"}))?;
    assert_eq!(short["error"]["code"], -32602, "{short}");
    Ok(())
}
