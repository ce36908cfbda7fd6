//! Benchmark data, the same bytes on every run: events, contacts and messages from a seeded
//! generator, written straight into the servers' storage (thousands of files per second, where
//! one PUT or APPEND each would take minutes).
//!
//! ```text
//!   Radicale: MKCALENDAR / MKCOL over HTTP (writes .Radicale.props), then item files in
//!             collections/collection-root/<user>/<slug>/<uid>.ics|.vcf; Radicale's own code
//!             builds its item cache and sync history before anything is timed (see warm), and
//!             the result is kept in cache_dir() for later runs
//!   Dovecot:  Maildir++ files in mail/<user>/Maildir/.<Folder>/cur/ (Dovecot::seed_maildir),
//!             then `doveadm index` so that no tool pays for the first indexing
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use base64::Engine;
use opconnect_tests::{Dovecot, Radicale};

/// A small deterministic generator (xorshift64*), so every run and every tool sees the same data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "budget",
    "review",
    "planning",
    "quarterly",
    "design",
    "customer",
    "offsite",
    "launch",
    "sync",
    "retro",
    "hiring",
    "roadmap",
    "security",
    "audit",
    "migration",
    "lunch",
    "training",
    "release",
    "invoice",
    "contract",
    "workshop",
    "demo",
    "support",
    "backlog",
    "metrics",
    "travel",
];
pub const FIRST: &[&str] = &[
    "Anna", "Ben", "Chloé", "David", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kemal", "Lena",
    "Marta", "Noah", "Olga", "Pavel", "Quinn", "Rosa", "Sven", "Tariq",
];
pub const LAST: &[&str] = &[
    "Müller",
    "Schmidt",
    "Novak",
    "García",
    "Rossi",
    "Dubois",
    "Jansen",
    "Kowalski",
    "Nielsen",
    "Yilmaz",
    "Silva",
    "Tanaka",
    "O'Brien",
    "Lindqvist",
    "Horvat",
    "Petrov",
];

pub fn sentence(rng: &mut Rng, words: usize) -> String {
    (0..words).map(|_| rng.pick(WORDS)).collect::<Vec<_>>().join(" ")
}

/// Event `i` of the calendar: a VEVENT in UTC over two years, every tenth one weekly-recurring.
pub fn event(i: usize) -> (String, String) {
    let mut rng = Rng::new(i as u64 + 1);
    let uid = format!("bench-event-{i:06}@opconnect");
    let day = rng.below(730);
    let (y, doy) = (2026 + day / 365, day % 365);
    let (month, mday) = (1 + doy / 31 % 12, 1 + doy % 28);
    let hour = 7 + rng.below(11);
    let minutes = [30, 60, 90][rng.below(3) as usize];
    let end_h = hour + minutes / 60;
    let end_m = minutes % 60;
    let rrule = if i.is_multiple_of(10) {
        "RRULE:FREQ=WEEKLY;COUNT=12\r\n"
    } else {
        ""
    };
    let description_words = 12 + rng.below(20) as usize;
    let ics = format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//opconnect//bench//EN\r\nBEGIN:VEVENT\r\n\
         UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{y}{month:02}{mday:02}T{hour:02}0000Z\r\n\
         DTEND:{y}{month:02}{mday:02}T{end_h:02}{end_m:02}00Z\r\n{rrule}SUMMARY:{}\r\n\
         LOCATION:Room {}\r\nDESCRIPTION:{}\r\nORGANIZER;CN={} {}:mailto:organizer{}@example.org\r\n\
         END:VEVENT\r\nEND:VCALENDAR\r\n",
        sentence(&mut rng, 3),
        rng.below(400),
        sentence(&mut rng, description_words),
        rng.pick(FIRST),
        rng.pick(LAST),
        rng.below(50),
    );
    (uid, ics)
}

/// Contact `i` of the address book: a vCard 3.0 with name, two emails, phone, address, note.
pub fn contact(i: usize) -> (String, String) {
    let mut rng = Rng::new(1_000_000 + i as u64);
    let uid = format!("bench-contact-{i:06}");
    let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
    let vcf = format!(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{first} {last}\r\nN:{last};{first};;;\r\n\
         EMAIL;TYPE=WORK:{first}.{last}{i}@example.org\r\nEMAIL;TYPE=HOME:{last}{i}@mail.example\r\n\
         TEL;TYPE=CELL:+49 170 {:07}\r\nORG:{} GmbH\r\nADR;TYPE=WORK:;;Street {};Berlin;;10115;Germany\r\n\
         NOTE:{}\r\nEND:VCARD\r\n",
        rng.below(10_000_000),
        rng.pick(LAST),
        rng.below(200),
        sentence(&mut rng, 6),
    );
    (uid, vcf)
}

/// Message `i` of `folder`: realistic sizes (80 % 1–6 KB of text, 15 % 10–40 KB, 5 % an
/// attachment of 60–160 KB) and Maildir flags (70 % seen, 10 % answered, 5 % flagged).
pub fn message(folder: &str, i: usize) -> (Vec<u8>, &'static str) {
    let mut rng = Rng::new(7_000_000 + i as u64 * 31 + folder.len() as u64);
    let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
    let body_len = match rng.below(100) {
        0..80 => 1_000 + rng.below(5_000),
        80..95 => 10_000 + rng.below(30_000),
        _ => 0,
    } as usize;
    let mut body = String::with_capacity(body_len + 200);
    while body.len() < body_len {
        body.push_str(&sentence(&mut rng, 12));
        body.push_str(".\r\n");
    }
    let mut raw = format!(
        "From: {first} {last} <{first}.{last}@example.org>\r\nTo: Alice <alice@localhost>\r\n\
         Cc: team{}@example.org\r\nSubject: {} ({folder} #{i})\r\n\
         Date: Mon, {} Nov 2026 {:02}:{:02}:00 +0000\r\nMessage-ID: <bench-{folder}-{i}@example.org>\r\n\
         MIME-Version: 1.0\r\n",
        rng.below(9),
        sentence(&mut rng, 4),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
    );
    if body_len == 0 {
        let attachment: Vec<u8> = (0..60_000 + rng.below(100_000))
            .map(|_| rng.next() as u8)
            .collect();
        let encoded = base64::engine::general_purpose::STANDARD.encode(attachment);
        raw.push_str("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n");
        raw.push_str("Content-Type: text/plain\r\n\r\nSee the attachment.\r\n--b\r\n");
        raw.push_str("Content-Type: application/octet-stream; name=\"report.bin\"\r\n");
        raw.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
        for line in encoded.as_bytes().chunks(76) {
            raw.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            raw.push_str("\r\n");
        }
        raw.push_str("--b--\r\n");
    } else {
        raw.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
        raw.push_str(&body);
    }
    let flags = match rng.below(100) {
        0..5 => "FS",
        5..15 => "RS",
        15..70 => "S",
        _ => "",
    };
    (raw.into_bytes(), flags)
}

/// The ten folders of the IMAP benchmark: INBOX and nine others.
pub fn mail_folders() -> Vec<String> {
    let mut folders = vec!["INBOX".to_string()];
    for name in [
        "Archive/2024",
        "Archive/2025",
        "Projects",
        "Projects/Alpha",
        "Lists",
        "Lists/rust",
        "Receipts",
        "Travel",
        "Family",
    ] {
        folders.push(name.to_string());
    }
    folders
}

/// Seeds `per_folder` messages into each of `folders` of `user`; returns (messages, bytes).
pub fn seed_mail(
    dovecot: &Dovecot,
    user: &str,
    folders: &[String],
    per_folder: usize,
) -> Result<(usize, u64)> {
    let (mut count, mut bytes) = (0, 0u64);
    for folder in folders {
        let messages: Vec<(Vec<u8>, &str)> = (0..per_folder).map(|i| message(folder, i)).collect();
        bytes += messages.iter().map(|(m, _)| m.len() as u64).sum::<u64>();
        count += dovecot.seed_maildir(user, folder, messages)?;
        if folder != "INBOX" {
            dovecot.doveadm(&["mailbox", "subscribe", "-u", user, folder])?;
        }
    }
    // Dovecot reads the new Maildir files into its index here, not during a measurement.
    dovecot.doveadm(&["index", "-u", user, "*"])?;
    Ok((count, bytes))
}

/// Bump when the generated items change: cached Radicale storage of older data is not reused.
const DATA_VERSION: u32 = 1;

/// A calendar and an address book of `user` on Radicale, filled with `events` and `contacts`
/// items written as files; returns (calendar path, book path, bytes of items).
///
/// Radicale parses each item once and keeps the result in `.Radicale.cache` (about 30 s for
/// 15,000 items on 2 cores, see [`Radicale::warm`]). The seeded, warmed storage of the user is kept in
/// [`cache_dir`], keyed by Radicale's version and the sizes, and copied in on later runs.
pub fn seed_dav(
    radicale: &Radicale,
    user: &str,
    events: usize,
    contacts: usize,
) -> Result<(String, String, u64)> {
    let (calendar, book) = (format!("/{user}/calendar/"), format!("/{user}/contacts/"));
    let bytes: u64 = (0..events).map(|i| event(i).1.len() as u64).sum::<u64>()
        + (0..contacts).map(|i| contact(i).1.len() as u64).sum::<u64>();
    let home = radicale.dir().join("collections/collection-root").join(user);
    let key = format!(
        "radicale-{}-{user}-{events}e-{contacts}c-v{DATA_VERSION}",
        crate::tools::package_version("radicale")
    );
    let cached = cache_dir().join(&key);
    if cached.join("calendar/.Radicale.props").is_file() {
        fs::create_dir_all(home.parent().context("collection-root")?)?;
        copy_tree(&cached, &home)?;
        return Ok((calendar, book, bytes));
    }
    write_dav_items(radicale, user, events, contacts)?;
    radicale.warm(&[&calendar, &book])?;
    // A failed copy only costs the next run the warm-up again.
    let partial = cache_dir().join(format!("{key}.partial"));
    let _ = fs::remove_dir_all(&partial);
    if fs::create_dir_all(cache_dir()).is_ok() && copy_tree(&home, &partial).is_ok() {
        let _ = fs::rename(&partial, &cached);
    }
    Ok((calendar, book, bytes))
}

/// Where seeded, warmed server storage is kept between runs: `$OPCONNECT_BENCH_CACHE`, else
/// `/var/tmp/opconnect-bench` (kept across reboots, unlike /tmp).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("OPCONNECT_BENCH_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/opconnect-bench"))
}

/// `cp -a FROM TO` (TO must not exist yet).
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .context("running cp")?;
    ensure!(
        status.success(),
        "cp -a {} {} failed",
        from.display(),
        to.display()
    );
    Ok(())
}

/// Creates the two collections over HTTP and writes their items as files.
fn write_dav_items(radicale: &Radicale, user: &str, events: usize, contacts: usize) -> Result<()> {
    radicale.create_calendar(user, "calendar", "Bench calendar")?;
    radicale.create_addressbook(user, "contacts", "Bench contacts")?;
    let dir = |slug: &str| -> PathBuf {
        radicale
            .dir()
            .join("collections/collection-root")
            .join(user)
            .join(slug)
    };
    let (cal_dir, book_dir) = (dir("calendar"), dir("contacts"));
    ensure!(
        cal_dir.join(".Radicale.props").is_file(),
        "Radicale's layout changed: no {}",
        cal_dir.join(".Radicale.props").display()
    );
    for i in 0..events {
        let (uid, ics) = event(i);
        fs::write(cal_dir.join(format!("{uid}.ics")), ics)?;
    }
    for i in 0..contacts {
        let (uid, vcf) = contact(i);
        fs::write(book_dir.join(format!("{uid}.vcf")), vcf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_deterministic_and_well_formed() {
        assert_eq!(event(42), event(42));
        let (uid, ics) = event(10);
        assert!(ics.contains(&format!("UID:{uid}\r\n")) && ics.contains("RRULE:"));
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
        let (_, vcf) = contact(3);
        assert!(vcf.starts_with("BEGIN:VCARD\r\n") && vcf.ends_with("END:VCARD\r\n"));
        let sizes: Vec<usize> = (0..400).map(|i| message("INBOX", i).0.len()).collect();
        let mean = sizes.iter().sum::<usize>() / sizes.len();
        assert!((3_000..30_000).contains(&mean), "mean message size {mean}");
        assert!(sizes.iter().any(|s| *s > 60_000), "some attachments");
        assert_eq!(mail_folders().len(), 10);
    }
}
