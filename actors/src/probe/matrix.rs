//! The feature matrix (INTERFACE §5): a pure function from what the probes found to one cell per
//! feature. A cell is `yes` only when the server offers the feature AND opconnect delivers it;
//! what opconnect delivers today is the one table [`DELIVERED`], to be updated as features land.
//!
//! ```text
//!   server offers? ──no──► no (evidence)          probe failed ──► unknown (reason)
//!        │ yes                                     not configured ──► no ("no … server configured")
//!        ▼
//!   DELIVERED[feature]: Yes ──► yes · Partial(what is missing) ──► partial · No ──► no
//! ```

use serde::Serialize;

use crate::probe::facts::{DavFacts, ImapFacts, Outcome, Probes, SieveFacts};

/// One cell's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Yes,
    No,
    Partial,
    #[serde(rename = "n/a")]
    NotApplicable,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Yes => "yes",
            Status::No => "no",
            Status::Partial => "partial",
            Status::NotApplicable => "n/a",
            Status::Unknown => "unknown",
        }
    }
}

/// How much of a feature opconnect itself delivers, whatever the server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    Yes,
    /// Delivered in part; the text says what is missing.
    Partial(&'static str),
    No,
}

/// Feature key (INTERFACE §5), the label of the original product's matrix, and what opconnect
/// delivers today. THE place to update when a feature lands.
pub const DELIVERED: [(&str, &str, Delivered); 14] = [
    ("mail", "Mail", Delivered::Yes),
    ("calendar", "Calendar", Delivered::Yes),
    ("contacts", "Contacts", Delivered::Yes),
    // notes.* in the IMAP folder Notes (agent/src/api/notes.rs).
    ("notes", "Notes", Delivered::Yes),
    ("tasks", "Tasks", Delivered::Yes),
    // contacts.put converts a group to the book's dialect (formats/group.rs).
    ("groups", "Groups", Delivered::Yes),
    // calendar.freebusy through the scheduling outbox (agent/src/api/freebusy.rs).
    ("freebusy", "Free/Busy", Delivered::Yes),
    // mail.acl.get/set and other users' folders; calendar.delegations and the delegators'
    // calendars through CalDAV calendar-proxy (dav/delegation.rs).
    ("sharing", "Sharing", Delivered::Yes),
    // gal.search: addressbook-query in the directory collections (dav/gal.rs).
    ("gal", "Global Address List", Delivered::Yes),
    // Listed, synced and written (within the user's rights) like any mail folder.
    ("public_folders", "Public Folders", Delivered::Yes),
    // ooo.get / ooo.set over ManageSieve (agent/src/api/ooo.rs).
    ("out_of_office", "Out of Office", Delivered::Yes),
    // mail.folder.copy: the connector copies the tree itself; X-COPYFOLDER is not used.
    ("copy_folder", "Copy folder", Delivered::Yes),
    ("notifications", "Notifications", Delivered::Yes),
    // meetings.list / meetings.respond; invitations sent by the scheduling server (meetings/).
    ("meetings", "Meetings", Delivered::Yes),
];

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Feature {
    pub key: &'static str,
    pub label: &'static str,
    pub status: Status,
    /// The protocol mechanism.
    pub via: String,
    /// The evidence, or why not.
    pub detail: String,
}

/// Knobs the matrix needs from the agent's settings.
#[derive(Debug, Clone)]
pub struct MatrixOptions {
    /// `[agent] noop_interval`, shown when the server has no IDLE.
    pub noop_interval: std::time::Duration,
    /// The account has an SMTP server: meetings can go out as iMIP (RFC 6047).
    pub smtp: bool,
}

/// What the server offers for one feature, before opconnect's part is applied.
enum Offer {
    Yes(String),
    /// Offered in part by the servers; the text says what is there and what is missing.
    Partial(String),
    No(String),
    Unknown(String),
}

/// The cells, in INTERFACE §5 order (Meetings, an opconnect addition, last).
pub fn features(p: &Probes, o: &MatrixOptions) -> Vec<Feature> {
    DELIVERED
        .iter()
        .map(|(key, label, delivered)| {
            let (via, offer) = offer(key, p, o);
            let (status, detail) = match (offer, delivered) {
                (Offer::Unknown(why), _) => (Status::Unknown, why),
                (Offer::No(why), _) => (Status::No, why),
                (Offer::Yes(ev), Delivered::Yes) => (Status::Yes, ev),
                (Offer::Partial(ev), Delivered::Yes | Delivered::Partial(_)) => (Status::Partial, ev),
                (Offer::Partial(ev), Delivered::No) => (
                    Status::No,
                    format!("server supports part of it ({ev}); opconnect does not yet"),
                ),
                (Offer::Yes(ev), Delivered::Partial(gap)) => (Status::Partial, format!("{ev}; {gap}")),
                (Offer::Yes(ev), Delivered::No) => (
                    Status::No,
                    format!("server supports it ({ev}); opconnect does not yet"),
                ),
            };
            Feature {
                key,
                label,
                status,
                via: via.to_owned(),
                detail,
            }
        })
        .collect()
}

/// The service's facts, or the cell's verdict when there are none.
fn need<'a, T>(outcome: &'a Outcome<T>, service: &str) -> Result<&'a T, Offer> {
    match outcome {
        Outcome::Ok { facts } => Ok(facts),
        Outcome::NotConfigured => Err(Offer::No(format!("no {service} server configured"))),
        Outcome::Failed { error } => Err(Offer::Unknown(format!("{service} probe failed: {error}"))),
    }
}

/// Runs `f` on the service's facts, or gives the verdict for a missing/failed probe.
fn with<T>(outcome: &Outcome<T>, service: &str, f: impl Fn(&T) -> Offer) -> Offer {
    need(outcome, service).map_or_else(|e| e, f)
}

/// The mechanism (`via`) and what the server offers for feature `key`.
fn offer(key: &str, p: &Probes, o: &MatrixOptions) -> (&'static str, Offer) {
    match key {
        "mail" => ("IMAP LIST", with(&p.imap, "IMAP", mail)),
        "calendar" => ("CalDAV", with(&p.caldav, "CalDAV", calendar)),
        "contacts" => ("CardDAV", with(&p.carddav, "CardDAV", contacts)),
        "notes" => ("IMAP folder Notes", with(&p.imap, "IMAP", notes)),
        "tasks" => ("CalDAV VTODO", with(&p.caldav, "CalDAV", tasks)),
        "groups" => (
            "CardDAV vCard groups (RFC 6350 §6.1.4)",
            with(&p.carddav, "CardDAV", groups),
        ),
        "freebusy" => (
            "CalDAV scheduling outbox (RFC 6638)",
            with(&p.caldav, "CalDAV", freebusy),
        ),
        "sharing" => (
            "IMAP ACL + other-users NAMESPACE; CalDAV calendar-proxy",
            sharing(p),
        ),
        "gal" => ("CardDAV directory collection", with(&p.carddav, "CardDAV", gal)),
        "public_folders" => (
            "IMAP shared NAMESPACE (RFC 2342)",
            with(&p.imap, "IMAP", public_folders),
        ),
        "out_of_office" => (
            "ManageSieve vacation (RFC 5804, RFC 5230)",
            with(&p.sieve, "ManageSieve", vacation),
        ),
        "copy_folder" => (
            "IMAP X-COPYFOLDER, else by the connector",
            with(&p.imap, "IMAP", copy_folder),
        ),
        "notifications" => notifications(p, o),
        "meetings" => meetings(p, o),
        _ => ("", Offer::Unknown(format!("unknown feature {key}"))),
    }
}

fn mail(i: &ImapFacts) -> Offer {
    Offer::Yes(format!("logged in, LIST shows {} folder(s)", i.folders))
}

fn calendar(d: &DavFacts) -> Offer {
    match d.with_component("VEVENT").next() {
        Some(c) => Offer::Yes(format!("VEVENT collection {}", c.href)),
        None if !d.homes.is_empty() => Offer::No(format!(
            "calendar home {} holds no VEVENT collection",
            d.homes.join(", ")
        )),
        None => Offer::No("no calendar-home-set".into()),
    }
}

fn contacts(d: &DavFacts) -> Offer {
    match d.homes.first() {
        Some(h) => Offer::Yes(format!(
            "addressbook-home-set {h}, {} address book(s)",
            d.collections.iter().filter(|c| !c.directory).count()
        )),
        None => Offer::No("no addressbook-home-set".into()),
    }
}

fn notes(i: &ImapFacts) -> Offer {
    match &i.notes_folder {
        Some(f) => Offer::Yes(format!("folder {f} exists")),
        // opconnect creates `Notes` at the top level on first use: that needs a personal
        // namespace with an empty prefix (RFC 2342 §5), or a server without NAMESPACE.
        None if !i.has("NAMESPACE") || i.personal_namespaces.iter().any(String::is_empty) => {
            Offer::Yes("no Notes folder yet; it is created in the personal namespace on first use".into())
        }
        None => Offer::No(format!(
            "no Notes folder, and the personal namespace ({}) has no top level to create it in",
            i.personal_namespaces.join(", ")
        )),
    }
}

fn tasks(d: &DavFacts) -> Offer {
    let named = || {
        d.collections.iter().find(|c| {
            c.kind == "tasks"
                || c.name
                    .as_deref()
                    .is_some_and(|n| n.to_lowercase().contains("tasks"))
        })
    };
    match d.with_component("VTODO").next().or_else(named) {
        Some(c) => Offer::Yes(format!("VTODO collection {}", c.href)),
        None => Offer::No("no collection supports VTODO".into()),
    }
}

fn groups(d: &DavFacts) -> Offer {
    match d.collections.iter().find(|c| !c.directory && !c.read_only) {
        Some(c) => Offer::Yes(format!(
            "address book {} (KIND:group or Apple-style groups, converted to the book's dialect; not probed by writing)",
            c.href
        )),
        None => Offer::No("no writable address book".into()),
    }
}

fn freebusy(d: &DavFacts) -> Offer {
    match &d.schedule_outbox {
        Some(o) => Offer::Yes(format!("schedule-outbox-URL {o}")),
        None => Offer::No("no scheduling outbox (RFC 6638 §2.1.1)".into()),
    }
}

/// Sharing is mail folders (IMAP ACL, other users' namespace) and calendars (CalDAV
/// calendar-proxy): `partial` when a configured server offers one side and not the other.
fn sharing(p: &Probes) -> Offer {
    let mut imap = Vec::new();
    let mut unknown = Vec::new();
    match &p.imap {
        Outcome::Ok { facts: i } => {
            if i.has("ACL") {
                imap.push("IMAP ACL (RFC 4314)".to_owned());
            }
            if !i.other_namespaces.is_empty() {
                imap.push(format!("other-users namespace {}", i.other_namespaces.join(", ")));
            }
        }
        Outcome::Failed { error } => unknown.push(format!("IMAP probe failed: {error}")),
        Outcome::NotConfigured => {}
    }
    let proxy = match &p.caldav {
        Outcome::Ok { facts: d } if d.proxy_supported => Some(format!(
            "CalDAV calendar-proxy (read for {}, write for {})",
            d.proxy_read_for.len(),
            d.proxy_write_for.len()
        )),
        Outcome::Ok { .. } | Outcome::NotConfigured => None,
        Outcome::Failed { error } => {
            unknown.push(format!("CalDAV probe failed: {error}"));
            None
        }
    };
    // A side is missing only when its server is configured and answered without it.
    let imap_missing = imap.is_empty() && matches!(p.imap, Outcome::Ok { .. });
    let proxy_missing = proxy.is_none() && matches!(p.caldav, Outcome::Ok { .. });
    let mut offered = imap;
    offered.extend(proxy);
    match (offered.is_empty(), unknown.is_empty()) {
        (false, _) if proxy_missing => Offer::Partial(format!(
            "{}; no calendar-proxy, so calendars cannot be shared",
            offered.join(", ")
        )),
        (false, _) if imap_missing => Offer::Partial(format!(
            "{}; no IMAP ACL or other-users namespace, so mail folders cannot be shared",
            offered.join(", ")
        )),
        (false, _) => Offer::Yes(offered.join(", ")),
        (true, false) => Offer::Unknown(unknown.join("; ")),
        (true, true) => Offer::No("no IMAP ACL, no other-users namespace, no calendar-proxy".into()),
    }
}

fn gal(d: &DavFacts) -> Offer {
    match (d.collections.iter().find(|c| c.directory), &d.directory_gateway) {
        (Some(c), _) => Offer::Yes(format!("directory collection {}", c.href)),
        // gal.search looks in the directory collections of the address book home only.
        (None, Some(g)) => Offer::No(format!(
            "server supports it (directory-gateway {g}, outside the home); opconnect does not yet"
        )),
        (None, None) => Offer::No("no directory collection published".into()),
    }
}

fn public_folders(i: &ImapFacts) -> Offer {
    if i.shared_namespaces.is_empty() {
        Offer::No(if i.has("NAMESPACE") {
            "no shared namespace".into()
        } else {
            "no NAMESPACE capability".into()
        })
    } else {
        Offer::Yes(format!(
            "shared namespace {} with {} folder(s)",
            i.shared_namespaces.join(", "),
            i.shared_folders.len()
        ))
    }
}

fn vacation(s: &SieveFacts) -> Offer {
    if s.has_extension("vacation") {
        Offer::Yes("SIEVE extensions include vacation".into())
    } else {
        Offer::No("the SIEVE capability lacks vacation".into())
    }
}

fn copy_folder(i: &ImapFacts) -> Offer {
    Offer::Yes(if i.has("X-COPYFOLDER") {
        "the server offers X-COPYFOLDER; opconnect copies the tree itself (LIST, CREATE, COPY)".into()
    } else {
        "no X-COPYFOLDER: opconnect copies the tree itself (LIST, CREATE, COPY)".into()
    })
}

/// RFC 6638 when the CalDAV server schedules (the DAV class and an inbox), else iMIP over the
/// account's SMTP (RFC 6047), else nobody tells the attendees.
fn meetings(p: &Probes, o: &MatrixOptions) -> (&'static str, Offer) {
    let imip = || {
        (
            "iMIP over SMTP",
            Offer::Yes("iMIP over SMTP (RFC 6047): invitations and replies go out as mail".into()),
        )
    };
    match &p.caldav {
        Outcome::Ok { facts: d } if d.auto_schedule && d.schedule_inbox.is_some() => (
            "server scheduling (RFC 6638)",
            Offer::Yes(format!(
                "server scheduling (RFC 6638): calendar-auto-schedule, schedule-inbox-URL {}",
                d.schedule_inbox.as_deref().unwrap_or_default()
            )),
        ),
        _ if o.smtp => imip(),
        Outcome::Failed { error } => (
            "server scheduling (RFC 6638), else iMIP over SMTP",
            Offer::Unknown(format!("CalDAV probe failed: {error}")),
        ),
        Outcome::NotConfigured => (
            "server scheduling (RFC 6638), else iMIP over SMTP",
            Offer::No("no CalDAV server configured".into()),
        ),
        Outcome::Ok { .. } => (
            "server scheduling (RFC 6638), else iMIP over SMTP",
            Offer::No("the CalDAV server does not schedule (no calendar-auto-schedule) and no SMTP server is configured".into()),
        ),
    }
}

fn notifications(p: &Probes, o: &MatrixOptions) -> (&'static str, Offer) {
    match need(&p.imap, "IMAP") {
        Err(e) => ("IMAP IDLE, else NOOP", e),
        Ok(i) if i.has("IDLE") => ("IMAP IDLE (RFC 2177)", Offer::Yes("IDLE capability".into())),
        Ok(_) => (
            "IMAP NOOP polling",
            Offer::Yes(format!(
                "no IDLE capability: NOOP every {}",
                humantime::format_duration(o.noop_interval)
            )),
        ),
    }
}
