//! Unit tests of the report's renderers and of a report against servers that are down.

use std::time::Duration;

use opconnect_actors::net::endpoint::{self, Protocol};
use opconnect_actors::probe::facts::{CollectionFacts, DavFacts, ImapFacts, Outcome, Probes, SieveFacts};
use opconnect_actors::probe::{self, MatrixOptions, Status};
use opconnect_actors::{AccountSpec, Settings};

use super::*;

const PASSWORD: &str = "s3cret-Pa55word";

fn sample() -> Report {
    let probes = Probes {
        imap: Outcome::Ok {
            facts: ImapFacts {
                url: "imap://127.0.0.1:1143/".into(),
                capabilities: vec!["IMAP4REV1".into(), "IDLE".into(), "NAMESPACE".into()],
                personal_namespaces: vec!["".into()],
                folders: 2,
                ..ImapFacts::default()
            },
        },
        caldav: Outcome::Ok {
            facts: DavFacts {
                url: "http://127.0.0.1:5232/".into(),
                principal: "/alice/".into(),
                homes: vec!["/alice/".into()],
                collections: vec![CollectionFacts {
                    href: "/alice/cal/".into(),
                    name: Some("<script>alert(1)</script>".into()),
                    kind: "calendar".into(),
                    components: vec!["VEVENT".into()],
                    ..CollectionFacts::default()
                }],
                ..DavFacts::default()
            },
        },
        carddav: Outcome::Failed {
            error: "127.0.0.1:9: connection refused".into(),
        },
        sieve: Outcome::Ok {
            facts: SieveFacts {
                extensions: vec!["vacation".into()],
                ..SieveFacts::default()
            },
        },
    };
    let features = probe::features(
        &probes,
        &MatrixOptions {
            noop_interval: Duration::from_secs(20),
            smtp: false,
        },
    );
    Report {
        account: "alice".into(),
        email: "alice@localhost".into(),
        generated: "2026-11-23T12:00:00Z".into(),
        features,
        probes,
        elapsed: Duration::from_millis(42),
        sync: None,
        provider: None,
        proxy: None,
    }
}

#[test]
fn json_has_the_interface_shape() {
    let v = to_json(&sample());
    assert_eq!(v["account"], "alice");
    assert!(v["generated"].as_str().unwrap().ends_with('Z'));
    let features = v["features"].as_object().unwrap();
    assert_eq!(features.len(), 14);
    for (key, cell) in features {
        let status = cell["status"].as_str().unwrap();
        assert!(
            ["yes", "no", "partial", "n/a", "unknown"].contains(&status),
            "{key}: {status}"
        );
        assert!(cell["via"].is_string() && cell["detail"].is_string(), "{key}");
    }
    assert_eq!(v["features"]["contacts"]["status"], "unknown");
    assert_eq!(v["servers"]["imap"]["state"], "ok");
    assert_eq!(v["servers"]["carddav"]["state"], "failed");
    assert_eq!(v["servers"]["caldav"]["facts"]["principal"], "/alice/");
}

#[test]
fn the_table_has_no_escapes_unless_coloured() {
    let r = sample();
    let plain = table::render(&r, false);
    assert!(!plain.contains('\x1b'), "{plain}");
    assert!(plain.contains("Platform") && plain.contains("Notify"));
    assert!(plain.contains("connection refused"));
    let coloured = table::render(&r, true);
    assert!(coloured.contains("\x1b[32m"));
    assert_eq!(render(&[r], "table", false), plain);
}

#[test]
fn html_is_self_contained_and_escaped() {
    let page = html::render(&[sample()]);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(!page.contains("<script"), "server text must be escaped");
    assert!(page.contains("&lt;script&gt;"));
    for external in ["src=", "href=", "@import", "url("] {
        assert!(!page.contains(external), "{external}");
    }
    assert!(page.contains("class=\"yes\""));
    assert!(page.trim_end().ends_with("</html>"));
}

fn down_account(password_command: &str) -> AccountConfig {
    // Port 9 (discard) on loopback: nothing listens there in the test environment.
    let ep = |p: Protocol, u: &str| Some(endpoint::parse(p, u).unwrap());
    AccountConfig {
        spec: AccountSpec {
            name: "down".into(),
            email: "alice@localhost".into(),
            username: "alice".into(),
            imap: ep(Protocol::Imap, "imap://127.0.0.1:9"),
            smtp: None,
            caldav: ep(Protocol::Dav, "http://127.0.0.1:9/"),
            carddav: None,
            sieve: ep(Protocol::Sieve, "sieve://127.0.0.1:9"),
            gal: None,
            tls_ca: None,
            tls_pins: Default::default(),
            sync: Default::default(),
        },
        password_command: Some(password_command.into()),
    }
}

#[tokio::test]
async fn servers_that_are_down_give_reasons_and_no_secret_leaks() {
    let account = down_account(&format!("echo {PASSWORD}"));
    let report = build(&account, &Settings::default()).await;
    let cell = |k: &str| report.features.iter().find(|f| f.key == k).unwrap().clone();
    assert_eq!(cell("mail").status, Status::Unknown);
    assert!(
        cell("mail").detail.contains("IMAP probe failed"),
        "{}",
        cell("mail").detail
    );
    assert_eq!(cell("calendar").status, Status::Unknown);
    assert_eq!(cell("contacts").status, Status::No);
    assert_eq!(cell("contacts").detail, "no CardDAV server configured");
    assert_eq!(cell("out_of_office").status, Status::Unknown);
    assert!(report.elapsed < Duration::from_secs(5));
    let reports = [report];
    for format in FORMATS {
        let text = render(&reports, format, true);
        assert!(!text.contains(PASSWORD), "{format} shows the password");
    }
}

#[tokio::test]
async fn a_password_that_cannot_be_had_is_a_reason_not_a_failure() {
    let account = down_account("exit 3");
    let report = build(&account, &Settings::default()).await;
    let mail = report.features.iter().find(|f| f.key == "mail").unwrap();
    assert_eq!(mail.status, Status::Unknown);
    // ManageSieve needs no login: it is still tried.
    let Outcome::Failed { error } = &report.probes.sieve else {
        panic!("sieve: {:?}", report.probes.sieve)
    };
    assert!(error.contains("127.0.0.1:9"), "{error}");
}

#[test]
fn the_provider_is_named_and_a_refused_password_says_where_to_make_an_app_password() {
    let mut account = down_account("true");
    let refused = Probes {
        imap: Outcome::Failed {
            error: "authentication failed: [AUTHENTICATIONFAILED] Authentication failed.".into(),
        },
        ..sample().probes
    };
    assert_eq!(
        provider_facts(&account, &refused),
        None,
        "localhost is no provider"
    );
    account.spec.email = "alice@icloud.com".into();
    let facts = provider_facts(&account, &refused).unwrap();
    assert_eq!(facts["name"], "iCloud");
    assert!(
        facts["action"]
            .as_str()
            .unwrap()
            .contains("app-specific password"),
        "{facts}"
    );
    let fine = provider_facts(&account, &sample().probes).unwrap();
    assert_eq!(fine, json!({"name": "iCloud"}));
    account.spec.email = "alice@corp.example".into();
    account.spec.caldav = Some(endpoint::parse(Protocol::Dav, "https://mail.corp.example/dav/").unwrap());
    assert_eq!(
        provider_facts(&account, &refused).unwrap(),
        json!({"name": "Zimbra"})
    );
    let mut r = sample();
    r.provider = Some(json!({"name": "iCloud", "action": "make one"}));
    let table = table::render(&r, false);
    assert!(table.contains("Provider: iCloud\nTo do: make one"), "{table}");
    assert_eq!(to_json(&r)["provider"]["name"], "iCloud");
}

#[test]
fn a_proxy_that_wants_a_login_is_named_with_what_to_do() {
    let mut account = down_account("true");
    assert_eq!(proxy_facts(&account, &sample().probes), None);
    let wanted = Probes {
        imap: Outcome::Failed {
            error: "configuration: proxy http://127.0.0.1:3128: tunnel to 127.0.0.1:993: the proxy wants a login (407)"
                .into(),
        },
        ..sample().probes
    };
    let facts = proxy_facts(&account, &wanted).unwrap();
    assert!(facts["action"].as_str().unwrap().contains("*_PROXY"), "{facts}");
    let proxy = opconnect_actors::net::proxy::Proxy::parse("http://bob:s3cret@127.0.0.1:3128").unwrap();
    for e in [&mut account.spec.imap, &mut account.spec.caldav]
        .into_iter()
        .flatten()
    {
        e.proxy = Some(proxy.clone());
    }
    let facts = proxy_facts(&account, &wanted).unwrap();
    let action = facts["action"].as_str().unwrap();
    assert!(
        action.contains("http://127.0.0.1:3128 (user `bob`) refused the login"),
        "{facts}"
    );
    assert!(!facts.to_string().contains("s3cret"), "{facts}");
    let mut r = sample();
    r.proxy = Some(facts);
    assert!(table::render(&r, false).contains("To do: the proxy http://127.0.0.1:3128"));
    assert_eq!(
        to_json(&r)["proxy"]["proxy"],
        "http://127.0.0.1:3128 (user `bob`)"
    );
}
