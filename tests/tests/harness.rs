//! Self-tests of the server harness: the private Dovecot, Radicale and DAViCal come up as servers.md
//! describes, and the probes see what the agent will see. No agent involved.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use opconnect_tests::DavServer;
use opconnect_tests::dovecot::SPECIAL_USE;
use opconnect_tests::imap::ImapProbe;
use opconnect_tests::{Davical, Dovecot, DovecotOptions, Radicale, ports, process, tls};

const MESSAGE: &[u8] = b"From: bob@localhost\r\nTo: alice@localhost\r\nSubject: harness\r\n\
Message-ID: <harness-1@localhost>\r\n\r\nHello from the harness.\r\n";

#[test]
fn dovecot_login_namespaces_and_special_use() -> Result<()> {
    let dovecot = Dovecot::start()?;
    eprintln!("dovecot ready in {:?}", dovecot.started_in());
    let mut alice = dovecot.probe("alice")?;
    assert!(alice.greeting().starts_with("* OK"), "{}", alice.greeting());

    let caps = alice.capabilities()?;
    for cap in [
        "IDLE",
        "NAMESPACE",
        "CONDSTORE",
        "QRESYNC",
        "SPECIAL-USE",
        "MOVE",
        "ACL",
    ] {
        assert!(caps.iter().any(|c| c == cap), "{cap} missing from {caps:?}");
    }
    let ns = alice.namespace()?;
    assert_eq!(ns, r#"(("" "/")) (("shared/" "/")) (("Public/" "/"))"#);

    let list = alice.list()?.join("\n");
    for (name, flag) in SPECIAL_USE {
        assert!(
            list.lines().any(|l| l.contains(flag) && l.ends_with(name)),
            "{name} {flag} not in LIST:\n{list}"
        );
    }

    // The probe's write path: append, select, flag, search, expunge.
    let uid = alice
        .append("INBOX", &["\\Flagged"], MESSAGE)?
        .context("APPENDUID")?;
    let sel = alice.select("INBOX")?;
    assert_eq!(sel.exists, 1);
    assert!(sel.uidvalidity > 0 && sel.uidnext == uid + 1, "{sel:?}");
    alice.uid_store(&uid.to_string(), "+FLAGS.SILENT (\\Seen)")?;
    let flags = alice.uid_fetch_flags(&uid.to_string())?.join(" ");
    assert!(flags.contains("\\Seen") && flags.contains("\\Flagged"), "{flags}");
    assert_eq!(alice.uid_search("SEEN")?, vec![uid]);
    alice.uid_store(&uid.to_string(), "+FLAGS.SILENT (\\Deleted)")?;
    alice.expunge()?;
    assert_eq!(alice.select("INBOX")?.exists, 0);
    alice.logout()?;

    let mut wrong = ImapProbe::connect(dovecot.imap_port())?;
    let err = wrong.login("alice", "not-the-password").unwrap_err();
    assert!(format!("{err:#}").contains("AUTHENTICATIONFAILED"), "{err:#}");
    assert!(
        !format!("{err:#}").contains("not-the-password"),
        "password leaked: {err:#}"
    );
    Ok(())
}

#[test]
fn dovecot_sharing_acl_and_public_folders() -> Result<()> {
    let dovecot = Dovecot::start()?;
    dovecot.append("alice", "INBOX", MESSAGE)?;
    dovecot.set_acl("alice", "INBOX", "user=bob", &["lookup", "read"])?;
    dovecot.create_public_folder("Team")?;

    let mut bob = dovecot.probe("bob")?;
    let list = bob.list()?.join("\n");
    assert!(list.contains("shared/alice"), "alice's INBOX not shared:\n{list}");
    assert!(list.contains("Public/Team"), "public folder missing:\n{list}");
    assert_eq!(bob.select("shared/alice")?.exists, 1);
    let acl = bob.command("GETACL \"Public/Team\"")?.join("\n");
    assert!(acl.contains("anyone"), "{acl}");
    bob.append("Public/Team", &[], MESSAGE)?;
    bob.logout()?;

    let mut alice = dovecot.probe("alice")?;
    assert_eq!(alice.select("Public/Team")?.exists, 1);
    let rights = alice.command("MYRIGHTS \"INBOX\"")?.join("\n");
    assert!(rights.contains("MYRIGHTS"), "{rights}");
    Ok(())
}

#[test]
fn dovecot_hidden_idle_lacks_idle() -> Result<()> {
    let dovecot = Dovecot::start_with(DovecotOptions {
        hide_idle: true,
        ..Default::default()
    })?;
    let mut alice = dovecot.probe("alice")?;
    let caps = alice.capabilities()?;
    assert!(!caps.iter().any(|c| c == "IDLE"), "IDLE still offered: {caps:?}");
    for cap in ["NAMESPACE", "CONDSTORE", "SPECIAL-USE", "ACL"] {
        assert!(caps.iter().any(|c| c == cap), "{cap} missing from {caps:?}");
    }
    Ok(())
}

#[test]
fn dovecot_imaps_verifies_against_the_test_ca() -> Result<()> {
    let dovecot = Dovecot::start_with(DovecotOptions {
        tls: true,
        ..Default::default()
    })?;
    eprintln!("dovecot (tls) ready in {:?}", dovecot.started_in());
    assert!(dovecot.imaps_url().starts_with("imaps://127.0.0.1:"));
    let mut probe = ImapProbe::connect_tls(dovecot.imaps_port(), &dovecot.ca_pem())?;
    probe.login("alice", "alice-pw")?;
    assert!(probe.capabilities()?.iter().any(|c| c == "IDLE"));
    probe.logout()?;

    // STARTTLS is offered on the plain port.
    let mut plain = ImapProbe::connect(dovecot.imap_port())?;
    assert!(plain.capabilities()?.iter().any(|c| c == "STARTTLS"));

    // Another CA must not verify this server: proves that verification happens.
    let other = process::short_tempdir("ca")?;
    tls::make_server_cert(other.path())?;
    let refused = ImapProbe::connect_tls(dovecot.imaps_port(), &other.path().join("ca.pem"));
    assert!(refused.is_err(), "a foreign CA verified the server");
    Ok(())
}

#[test]
fn dovecot_start_again_keeps_ports_and_data() -> Result<()> {
    let mut dovecot = Dovecot::start()?;
    let port = dovecot.imap_port();
    dovecot.append("alice", "INBOX", MESSAGE)?;
    let pid = dovecot.pid().context("running")?;
    dovecot.stop();
    ensure!(
        !process::group_alive(pid),
        "dovecot's process group survived stop()"
    );
    ensure!(
        !ports::port_accepts(port),
        "port {port} still accepts after stop()"
    );
    ensure!(ImapProbe::connect(port).is_err());

    let began = Instant::now();
    dovecot.start_again()?;
    eprintln!("dovecot start_again in {:?}", began.elapsed());
    assert_eq!(dovecot.imap_port(), port);
    let mut alice = dovecot.probe("alice")?;
    assert_eq!(alice.select("INBOX")?.exists, 1);
    Ok(())
}

#[test]
fn dovecot_managesieve_and_lmtp() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let mut sieve = TcpStream::connect(("127.0.0.1", dovecot.sieve_port()))?;
    sieve.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut greeting = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !greeting.contains("\r\nOK") && Instant::now() < deadline {
        let mut buf = [0u8; 1024];
        let n = std::io::Read::read(&mut sieve, &mut buf)?;
        greeting.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(greeting.contains("\"SIEVE\""), "{greeting}");
    assert!(greeting.contains("vacation"), "no vacation extension: {greeting}");
    assert!(dovecot.sieve_url().starts_with("sieve://127.0.0.1:"));

    dovecot.deliver("bob@localhost", "alice@localhost", MESSAGE)?;
    let mut alice = dovecot.probe("alice")?;
    assert_eq!(alice.select("INBOX")?.exists, 1);
    assert!(dovecot.sent_mail()?.is_empty());
    Ok(())
}

#[test]
fn dovecot_is_killed_on_drop() -> Result<()> {
    let dovecot = Dovecot::start()?;
    let pid = dovecot.pid().context("running")?;
    let port = dovecot.imap_port();
    drop(dovecot);
    ensure!(!process::group_alive(pid), "process group {pid} survived Drop");
    ensure!(ports::port_is_free(port), "port {port} still bound after Drop");
    Ok(())
}

#[test]
fn radicale_propfind_auth_and_items() -> Result<()> {
    let mut radicale = Radicale::start()?;
    eprintln!("radicale ready in {:?}", radicale.started_in());
    assert_eq!(radicale.url(), format!("http://127.0.0.1:{}/", radicale.port()));

    let ok = radicale.propfind("alice", "alice-pw", "/", 0)?;
    assert_eq!(ok.status, 207, "{}", ok.text());
    let principal = radicale.propfind("alice", "alice-pw", "/alice/", 0)?;
    assert_eq!(principal.status, 207, "{}", principal.text());
    let bad = radicale.propfind("alice", "wrong-pw", "/", 0)?;
    assert_eq!(bad.status, 401, "{}", bad.text());

    let cal = radicale.create_calendar("alice", "calendar", "Calendar")?;
    let book = radicale.create_addressbook("alice", "contacts", "Contacts")?;
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect-tests//EN\r\n\
BEGIN:VEVENT\r\nUID:ev1\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250102T100000Z\r\n\
DTEND:20250102T110000Z\r\nSUMMARY:Harness\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let (href, etag) = radicale.put_event("alice", &cal, "ev1", ics)?;
    assert!(!etag.is_empty());
    let vcf = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c1\r\nFN:Bob\r\nEMAIL:bob@localhost\r\nEND:VCARD\r\n";
    radicale.put_contact("alice", &book, "c1", vcf)?;
    assert_eq!(radicale.members("alice", &cal)?, vec![href.clone()]);
    assert_eq!(radicale.members("alice", &book)?.len(), 1);

    // owner_only: bob cannot see alice's calendar.
    let denied = radicale.propfind("bob", "bob-pw", &cal, 1)?;
    assert_eq!(denied.status, 403, "{}", denied.text());

    let port = radicale.port();
    radicale.stop();
    ensure!(!ports::port_accepts(port), "radicale still answers after stop()");
    radicale.start_again()?;
    assert_eq!(radicale.port(), port);
    let got = radicale.get("alice", &href)?;
    assert_eq!(got.status, 200);
    assert!(got.text().contains("SUMMARY:Harness"));
    Ok(())
}

/// DAViCal on its private PostgreSQL: logins, the home collections, items, the calendar-proxy
/// grant the delegation tests rely on, the request log, and a clean kill.
#[test]
fn davical_login_homes_items_proxy_and_kill() -> Result<()> {
    let davical = Davical::start()?;
    eprintln!("davical ready in {:?}", davical.started_in());
    assert_eq!(
        davical.dav_url(),
        format!("http://127.0.0.1:{}/caldav.php/", davical.http_port())
    );
    let bad = davical
        .http()
        .propfind("alice", "wrong-pw", "/caldav.php/alice/", 0)?;
    assert_eq!(bad.status, 401, "{}", bad.text());
    let home = davical.propfind("bob", &davical.principal("bob"), 1)?;
    assert_eq!(home.status, 207, "{}", home.text());
    let listed = opconnect_tests::dav::hrefs(&home.text());
    for path in [
        davical.default_calendar("bob"),
        davical.default_addressbook("bob"),
    ] {
        assert!(listed.contains(&path), "{path} not in {listed:?}");
    }

    let cal = davical.default_calendar("bob");
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect-tests//EN\r\n\
BEGIN:VEVENT\r\nUID:dv1\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250102T100000Z\r\n\
DTEND:20250102T110000Z\r\nSUMMARY:Harness\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let (href, etag) = davical.http().put_event("bob", &cal, "dv1", ics)?;
    assert!(!etag.is_empty());
    assert_eq!(davical.http().members("bob", &cal)?, vec![href.clone()]);
    let vcf = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:c1\r\nFN:Carol\r\nEMAIL:carol@localhost\r\nEND:VCARD\r\n";
    davical
        .http()
        .put_contact("bob", &davical.default_addressbook("bob"), "c1", vcf)?;

    // Without a grant alice sees only free/busy (DAViCal's default privileges give a "Busy"
    // stub); with a read-proxy grant she reads the event.
    let hidden = davical.http().get("alice", &href)?;
    assert!(
        !hidden.text().contains("Harness"),
        "{} {}",
        hidden.status,
        hidden.text()
    );
    davical.grant_proxy("bob", &["alice"], false)?;
    let grants = davical.sql("SELECT count(*) FROM grants")?;
    assert_eq!(grants.trim(), "1", "one row in DAViCal's grants table");
    let got = davical.http().get("alice", &href)?;
    assert_eq!(got.status, 200, "{}", got.text());
    assert!(got.text().contains("SUMMARY:Harness"));
    assert!(
        davical
            .requests_of("alice")
            .iter()
            .any(|r| r == &format!("GET {href}")),
        "{:?}",
        davical.requests()
    );

    let (php, pg) = (
        davical.pid().context("php running")?,
        davical.postgres_pid().context("postgres running")?,
    );
    let (http, pg_port) = (davical.http_port(), davical.pg_port());
    drop(davical);
    for (pid, port) in [(php, http), (pg, pg_port)] {
        ensure!(!process::group_alive(pid), "process group {pid} survived Drop");
        ensure!(ports::port_is_free(port), "port {port} still bound after Drop");
    }
    Ok(())
}
