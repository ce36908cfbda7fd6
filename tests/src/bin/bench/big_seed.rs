//! Data of benchmark 9 (accounts ten times bigger), the same bytes on every run: contacts with
//! photos, one large mail folder of small messages, and extra users for the many-accounts case,
//! written straight into the servers' storage and cached in [`seed::cache_dir`] like the rest.
//!
//! ```text
//!   Radicale: <user>/<slug>/.Radicale.props + one .vcf/.ics per item ─▶ Radicale::warm ─▶ cache
//!   Dovecot:  mail/<user>/Maildir/cur/* (Dovecot::seed_maildir) ─▶ doveadm index ─▶ cache
//!   users:    lines appended to Dovecot's passwd-file and Radicale's htpasswd (both re-read
//!             on each login), so the harness's two users stay as they are
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use base64::Engine;
use opconnect_tests::{Dovecot, Radicale};

use crate::seed::{self, Rng};

/// Bump when the generated data changes: cached storage of older data is not reused.
const DATA_VERSION: u32 = 1;

/// Contact `i` of the photo book: the contact of benchmark 1 with a PHOTO of 2–5 KB, base64
/// inline; even cards are vCard 4 (`data:` URI, RFC 6350 §6.2.4), odd ones vCard 3
/// (`ENCODING=b`, RFC 2426 §3.1.4). Lines folded at 75 octets (RFC 6350 §3.2).
pub fn contact_with_photo(i: usize) -> (String, String) {
    let (uid, card) = seed::contact(i);
    let mut rng = Rng::new(3_000_000 + i as u64);
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0];
    jpeg.extend((0..2_000 + rng.below(3_000)).map(|_| rng.next() as u8));
    jpeg.extend([0xFF, 0xD9]);
    let data = base64::engine::general_purpose::STANDARD.encode(&jpeg);
    let (card, line) = if i.is_multiple_of(2) {
        (
            card.replacen("VERSION:3.0", "VERSION:4.0", 1),
            format!("PHOTO:data:image/jpeg;base64,{data}"),
        )
    } else {
        (card, format!("PHOTO;ENCODING=b;TYPE=JPEG:{data}"))
    };
    let mut folded = String::with_capacity(line.len() + line.len() / 37);
    for (k, chunk) in line.as_bytes().chunks(74).enumerate() {
        folded.push_str(if k == 0 { "" } else { " " });
        folded.push_str(std::str::from_utf8(chunk).expect("ASCII"));
        folded.push_str("\r\n");
    }
    let card = card.replacen("END:VCARD\r\n", &format!("{folded}END:VCARD\r\n"), 1);
    (uid, card)
}

/// Message `i` of the large folder: a plain-text message of 0.6–2.5 KB (a folder of 100,000
/// messages of benchmark 3's sizes would be a gigabyte), Maildir flags as in benchmark 3.
pub fn small_message(i: usize) -> (Vec<u8>, &'static str) {
    let mut rng = Rng::new(9_000_000 + i as u64);
    let (first, last) = (rng.pick(seed::FIRST), rng.pick(seed::LAST));
    let body_len = 400 + rng.below(2_000) as usize;
    let mut body = String::with_capacity(body_len + 100);
    while body.len() < body_len {
        body.push_str(&seed::sentence(&mut rng, 12));
        body.push_str(".\r\n");
    }
    let raw = format!(
        "From: {first} {last} <{first}.{last}@example.org>\r\nTo: Alice <alice@localhost>\r\n\
         Subject: {} (#{i})\r\nDate: Mon, {} Nov 2026 {:02}:{:02}:00 +0000\r\n\
         Message-ID: <big-{i}@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}",
        seed::sentence(&mut rng, 4),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
    );
    let flags = match rng.below(100) {
        0..5 => "FS",
        5..15 => "RS",
        15..70 => "S",
        _ => "",
    };
    (raw.into_bytes(), flags)
}

/// Which kind of Radicale collection to write.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Calendar,
    Book,
}

/// Writes collection `/<user>/<slug>/` of `kind` holding `items` as files (no HTTP needed, so any
/// user in Radicale's htpasswd may own it). Radicale's caches are built afterwards by [`Radicale::warm`].
pub fn write_collection(
    radicale: &Radicale,
    user: &str,
    slug: &str,
    kind: Kind,
    items: impl Iterator<Item = (String, String)>,
) -> Result<String> {
    let dir = radicale
        .dir()
        .join("collections/collection-root")
        .join(user)
        .join(slug);
    fs::create_dir_all(&dir)?;
    let (props, ext) = match kind {
        Kind::Calendar => (
            r#"{"C:supported-calendar-component-set": "VEVENT", "D:displayname": "Bench calendar", "tag": "VCALENDAR"}"#,
            "ics",
        ),
        Kind::Book => (
            r#"{"D:displayname": "Bench contacts", "tag": "VADDRESSBOOK"}"#,
            "vcf",
        ),
    };
    fs::write(dir.join(".Radicale.props"), props)?;
    for (uid, text) in items {
        fs::write(dir.join(format!("{uid}.{ext}")), text)?;
    }
    Ok(format!("/{user}/{slug}/"))
}

/// Restores `collection-root` of `radicale` from the cache under `key`, or builds it with
/// `build` (then warms `collections`) and caches it. Returns true if it came from the cache.
pub fn radicale_cached(
    radicale: &Radicale,
    key: &str,
    collections: &[String],
    build: impl FnOnce() -> Result<()>,
) -> Result<bool> {
    let root = radicale.dir().join("collections/collection-root");
    let cached = seed::cache_dir().join(format!(
        "radicale-{}-{key}-v{DATA_VERSION}",
        crate::tools::package_version("radicale")
    ));
    if cached.join(".complete").is_file() {
        let _ = fs::remove_dir_all(&root);
        seed::copy_tree(&cached, &root)?;
        let _ = fs::remove_file(root.join(".complete"));
        return Ok(true);
    }
    build()?;
    let refs: Vec<&str> = collections.iter().map(String::as_str).collect();
    radicale.warm(&refs)?;
    store_in_cache(&root, &cached);
    Ok(false)
}

/// Copies `from` to `cached` (through a `.partial` name); a failed copy only costs the next
/// run the seeding again.
fn store_in_cache(from: &Path, cached: &Path) {
    let partial = cached.with_extension("partial");
    let _ = fs::remove_dir_all(&partial);
    if fs::create_dir_all(seed::cache_dir()).is_ok() && seed::copy_tree(from, &partial).is_ok() {
        let _ = fs::write(partial.join(".complete"), "");
        let _ = fs::rename(&partial, cached);
    }
}

/// `n` messages of [`small_message`] in `user`'s INBOX, indexed by Dovecot, from the cache when
/// it has them. Returns (messages, bytes, came from the cache).
pub fn seed_big_inbox(dovecot: &Dovecot, user: &str, n: usize) -> Result<(usize, u64, bool)> {
    let bytes: u64 = (0..n).map(|i| small_message(i).0.len() as u64).sum();
    let home = dovecot.dir().join("mail").join(user);
    let version = crate::tools::version_of("dovecot", &["--version"]);
    let version = version.split_whitespace().next().unwrap_or("dovecot");
    let cached = seed::cache_dir().join(format!("dovecot-{version}-{user}-inbox-{n}-v{DATA_VERSION}"));
    if cached.join(".complete").is_file() {
        let _ = fs::remove_dir_all(&home);
        // `cp -a` keeps the owner: the cache was written from a home Dovecot's user owned.
        seed::copy_tree(&cached, &home)?;
        let _ = fs::remove_file(home.join(".complete"));
        return Ok((n, bytes, true));
    }
    let count = dovecot.seed_maildir(user, "INBOX", (0..n).map(small_message))?;
    ensure!(count == n, "seeded {count} of {n} messages");
    doveadm(
        dovecot,
        &["index", "-u", user, "INBOX"],
        Duration::from_secs(1800),
    )?;
    store_in_cache(&home, &cached);
    Ok((n, bytes, false))
}

/// `doveadm` with a time limit of our choosing (indexing 100,000 messages takes minutes on a
/// loaded machine; the harness's own helper allows 30 s).
pub fn doveadm(dovecot: &Dovecot, args: &[&str], limit: Duration) -> Result<String> {
    let mut cmd = Command::new(opconnect_tests::process::find_program("doveadm")?);
    cmd.arg("-c").arg(dovecot.config_path()).args(args);
    opconnect_tests::process::run_ok(cmd, limit).with_context(|| format!("doveadm {}", args.join(" ")))
}

/// The bench's extra users: `big01`, `big02`, … with password `<name>-pw`.
pub fn extra_users(n: usize) -> Vec<(String, String)> {
    (1..=n)
        .map(|k| (format!("big{k:02}"), format!("big{k:02}-pw")))
        .collect()
}

/// Adds `users` to both servers' password files.
pub fn add_users(dovecot: &Dovecot, radicale: &Radicale, users: &[(String, String)]) -> Result<()> {
    let append = |path: PathBuf, lines: String| -> Result<()> {
        let mut text = fs::read_to_string(&path).with_context(|| path.display().to_string())?;
        text.push_str(&lines);
        fs::write(&path, text).with_context(|| path.display().to_string())
    };
    append(
        dovecot.dir().join("passwd"),
        users
            .iter()
            .map(|(u, p)| format!("{u}:{{PLAIN}}{p}::::::\n"))
            .collect(),
    )?;
    append(
        radicale.dir().join("users"),
        users.iter().map(|(u, p)| format!("{u}:{p}\n")).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photos_are_folded_and_both_dialects_appear() {
        let (_, v4) = contact_with_photo(0);
        let (_, v3) = contact_with_photo(1);
        assert!(v4.contains("VERSION:4.0") && v4.contains("PHOTO:data:image/jpeg;base64,"));
        assert!(v3.contains("VERSION:3.0") && v3.contains("PHOTO;ENCODING=b;TYPE=JPEG:"));
        for card in [&v4, &v3] {
            assert!(card.lines().all(|l| l.len() <= 75), "unfolded line");
            assert!(
                (3_000..9_000).contains(&card.len()),
                "card of {} bytes",
                card.len()
            );
            assert!(card.ends_with("END:VCARD\r\n"));
        }
        assert_eq!(contact_with_photo(7), contact_with_photo(7));
        let sizes: Vec<usize> = (0..200).map(|i| small_message(i).0.len()).collect();
        assert!(sizes.iter().all(|s| (500..3_200).contains(s)), "{sizes:?}");
    }
}
