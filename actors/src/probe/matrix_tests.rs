//! Unit tests of the feature matrix (`probe::matrix`): every cell for a Dovecot + Radicale-like
//! account, a Cyrus-like one, failed and missing services.

use std::time::Duration;

use crate::probe::facts::{CollectionFacts, DavFacts, ImapFacts, Outcome, Probes, SieveFacts};
use crate::probe::matrix::{DELIVERED, MatrixOptions, Status, features};

fn opts() -> MatrixOptions {
    MatrixOptions {
        noop_interval: Duration::from_secs(20),
        smtp: false,
    }
}

fn collection(href: &str, kind: &str, components: &[&str]) -> CollectionFacts {
    CollectionFacts {
        href: href.into(),
        kind: kind.into(),
        components: components.iter().map(|c| c.to_string()).collect(),
        ..CollectionFacts::default()
    }
}

fn dovecot() -> ImapFacts {
    ImapFacts {
        capabilities: ["IMAP4REV1", "IDLE", "NAMESPACE", "ACL", "CONDSTORE"]
            .map(String::from)
            .to_vec(),
        personal_namespaces: vec!["".into()],
        other_namespaces: vec!["shared/".into()],
        shared_namespaces: vec![],
        folders: 3,
        ..ImapFacts::default()
    }
}

fn radicale() -> (DavFacts, DavFacts) {
    let cal = DavFacts {
        principal: "/alice/".into(),
        homes: vec!["/alice/".into()],
        collections: vec![
            collection("/alice/cal/", "calendar", &["VEVENT"]),
            collection("/alice/tasks/", "tasks", &["VTODO"]),
        ],
        ..DavFacts::default()
    };
    let card = DavFacts {
        principal: "/alice/".into(),
        homes: vec!["/alice/".into()],
        collections: vec![collection("/alice/book/", "addressbook", &[])],
        ..DavFacts::default()
    };
    (cal, card)
}

fn ok<T>(facts: T) -> Outcome<T> {
    Outcome::Ok { facts }
}

fn cells(p: &Probes) -> Vec<(&'static str, Status)> {
    features(p, &opts()).iter().map(|f| (f.key, f.status)).collect()
}

fn status(p: &Probes, key: &str) -> Status {
    features(p, &opts())
        .into_iter()
        .find(|f| f.key == key)
        .unwrap()
        .status
}

fn detail(p: &Probes, key: &str) -> String {
    features(p, &opts())
        .into_iter()
        .find(|f| f.key == key)
        .unwrap()
        .detail
}

fn dovecot_radicale() -> Probes {
    let (cal, card) = radicale();
    Probes {
        imap: ok(dovecot()),
        caldav: ok(cal),
        carddav: ok(card),
        sieve: ok(SieveFacts {
            extensions: vec!["fileinto".into(), "vacation".into()],
            ..SieveFacts::default()
        }),
    }
}

#[test]
fn the_table_names_the_interface_keys_in_order_then_meetings() {
    let keys: Vec<_> = DELIVERED.iter().map(|(k, _, _)| *k).collect();
    assert_eq!(
        keys,
        [
            "mail",
            "calendar",
            "contacts",
            "notes",
            "tasks",
            "groups",
            "freebusy",
            "sharing",
            "gal",
            "public_folders",
            "out_of_office",
            "copy_folder",
            "notifications",
            "meetings"
        ]
    );
}

#[test]
fn dovecot_and_radicale() {
    use Status::*;
    let p = dovecot_radicale();
    assert_eq!(
        cells(&p),
        [
            ("mail", Yes),
            ("calendar", Yes),
            ("contacts", Yes),
            ("notes", Yes),
            ("tasks", Yes),
            ("groups", Yes),
            ("freebusy", No),
            ("sharing", Partial),
            ("gal", No),
            ("public_folders", No),
            ("out_of_office", Yes),
            ("copy_folder", Yes),
            ("notifications", Yes),
            ("meetings", No),
        ]
    );
    assert!(detail(&p, "notes").contains("created"));
    assert!(detail(&p, "notifications").contains("IDLE"));
    assert!(detail(&p, "freebusy").contains("no scheduling outbox"));
    assert!(detail(&p, "copy_folder").contains("copies the tree itself"));
    // Issue 16: Radicale has no calendar-proxy, so only mail folders can be shared.
    assert!(detail(&p, "sharing").contains("calendars cannot be shared"));
}

#[test]
fn calendar_proxy_is_sharing() {
    let mut p = dovecot_radicale();
    if let Outcome::Ok { facts } = &mut p.caldav {
        facts.proxy_supported = true;
        facts.proxy_read_for = vec!["/caldav.php/bob/".into()];
    }
    assert_eq!(status(&p, "sharing"), Status::Yes);
    p.imap = Outcome::NotConfigured;
    assert_eq!(status(&p, "sharing"), Status::Yes);
    let cell = features(&p, &opts())
        .into_iter()
        .find(|f| f.key == "sharing")
        .unwrap();
    assert_eq!(cell.detail, "CalDAV calendar-proxy (read for 1, write for 0)");
}

#[test]
fn one_side_of_sharing_is_partial() {
    let mut p = dovecot_radicale();
    // An IMAP server without ACL and other users' namespace beside a calendar-proxy server.
    if let Outcome::Ok { facts } = &mut p.caldav {
        facts.proxy_supported = true;
    }
    if let Outcome::Ok { facts } = &mut p.imap {
        facts.capabilities.retain(|c| c != "ACL");
        facts.other_namespaces.clear();
    }
    assert_eq!(status(&p, "sharing"), Status::Partial);
    assert!(detail(&p, "sharing").contains("mail folders cannot be shared"));
    // Mail only: calendar sharing is not missing, there are no calendars.
    let mut p = dovecot_radicale();
    p.caldav = Outcome::NotConfigured;
    assert_eq!(status(&p, "sharing"), Status::Yes);
}

#[test]
fn an_outbox_gives_free_busy() {
    let mut p = dovecot_radicale();
    if let Outcome::Ok { facts } = &mut p.caldav {
        facts.schedule_outbox = Some("/dav/calendars/user/alice/Outbox/".into());
    }
    assert_eq!(status(&p, "freebusy"), Status::Yes);
    assert!(detail(&p, "freebusy").contains("Outbox"));
}

#[test]
fn no_idle_means_noop_polling() {
    let mut p = dovecot_radicale();
    if let Outcome::Ok { facts } = &mut p.imap {
        facts.capabilities.retain(|c| c != "IDLE");
    }
    assert_eq!(status(&p, "notifications"), Status::Yes);
    assert!(detail(&p, "notifications").contains("NOOP every 20s"));
}

#[test]
fn a_shared_namespace_gives_public_folders() {
    let mut p = dovecot_radicale();
    if let Outcome::Ok { facts } = &mut p.imap {
        facts.shared_namespaces = vec!["Public/".into()];
        facts.shared_folders = vec!["Public/News".into()];
        facts.notes_folder = Some("Notes".into());
    }
    assert_eq!(status(&p, "public_folders"), Status::Yes);
    assert_eq!(detail(&p, "notes"), "folder Notes exists");
}

#[test]
fn notes_need_a_top_level_personal_namespace() {
    let mut p = dovecot_radicale();
    if let Outcome::Ok { facts } = &mut p.imap {
        facts.personal_namespaces = vec!["INBOX.".into()];
    }
    assert_eq!(status(&p, "notes"), Status::No);
    assert!(detail(&p, "notes").contains("INBOX."));
}

#[test]
fn a_failed_probe_is_unknown_and_a_missing_service_is_no() {
    let p = Probes {
        imap: Outcome::Failed {
            error: "127.0.0.1:1: connection refused".into(),
        },
        ..Probes::default()
    };
    assert_eq!(status(&p, "mail"), Status::Unknown);
    assert!(detail(&p, "mail").contains("connection refused"));
    assert_eq!(status(&p, "calendar"), Status::No);
    assert_eq!(detail(&p, "calendar"), "no CalDAV server configured");
    assert_eq!(status(&p, "out_of_office"), Status::No);
    assert_eq!(status(&p, "sharing"), Status::Unknown);
    assert_eq!(status(&p, "notifications"), Status::Unknown);
}

#[test]
fn a_directory_collection_is_a_gal() {
    let mut p = dovecot_radicale();
    if let Outcome::Ok { facts } = &mut p.carddav {
        facts.collections.push(CollectionFacts {
            directory: true,
            read_only: true,
            ..collection("/dav/addressbooks/directory/", "addressbook", &[])
        });
    }
    assert_eq!(status(&p, "gal"), Status::Yes);
    assert!(detail(&p, "gal").contains("/dav/addressbooks/directory/"));
}

#[test]
fn an_empty_calendar_home_is_no() {
    let mut p = dovecot_radicale();
    if let Outcome::Ok { facts } = &mut p.caldav {
        facts.collections.clear();
    }
    assert_eq!(status(&p, "calendar"), Status::No);
    assert_eq!(status(&p, "tasks"), Status::No);
    assert!(detail(&p, "calendar").contains("holds no VEVENT"));
}

#[test]
fn meetings_by_the_server_else_by_mail_else_no() {
    let mut p = dovecot_radicale();
    assert_eq!(status(&p, "meetings"), Status::No);
    assert!(detail(&p, "meetings").contains("does not schedule"));
    let with_smtp = MatrixOptions { smtp: true, ..opts() };
    let cell =
        |p: &Probes, o: &MatrixOptions| features(p, o).into_iter().find(|f| f.key == "meetings").unwrap();
    let imip = cell(&p, &with_smtp);
    assert_eq!((imip.status, imip.via.as_str()), (Status::Yes, "iMIP over SMTP"));
    if let Outcome::Ok { facts } = &mut p.caldav {
        facts.auto_schedule = true;
        facts.schedule_inbox = Some("/dav/calendars/user/alice/Inbox/".into());
    }
    for o in [opts(), with_smtp] {
        let server = cell(&p, &o);
        assert_eq!(server.status, Status::Yes);
        assert!(
            server.detail.starts_with("server scheduling (RFC 6638)"),
            "{}",
            server.detail
        );
    }
}
