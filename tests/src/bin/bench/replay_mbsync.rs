//! mbsync as the mail-side peer of benchmarks 8d and 5b: the IMAP half of the replay's mix made
//! as local edits in its Maildir, then sent by one `mbsync -a` pushing them (what an mbsync user
//! does after working offline). vdirsyncer is the DAV-side peer (replay_vdirsyncer.rs).
//!
//! ```text
//!   mbsync -a, Sync Pull (untimed) ─▶ Maildir per folder, file names `…,U=<uid>:2,<flags>`
//!   edits: flag → rename to `F`; move → file into Archive/cur without its `U=`;
//!          delete → file removed; append → new file in Sent/cur (`:2,S`)
//!   ─▶ mbsync -a, Sync Push + Expunge Far (timed): STORE, APPEND (a move is an APPEND and a
//!      deletion: a Maildir has no move), EXPUNGE
//! ```
//! Maildir cannot carry IMAP keywords (isync 1.4), so a flag write sets `\Flagged` alone where
//! the agent and the script also set `$Bench`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::replay::{Kind, count_of, mail_targets};
use crate::replay_script::appended;
use crate::tools::Mbsync;

/// What an mbsync pass did: its pushing `mbsync -a`'s time and the mail writes it carried.
pub struct MbsyncRun {
    pub seconds: f64,
    pub writes: usize,
}

/// A Maildir message file's name taken apart: `stem` (with `,U=` when mbsync set it), its UID,
/// and its flags (the letters after `:2,`).
#[derive(Debug, PartialEq)]
struct Name<'a> {
    stem: &'a str,
    uid: Option<u32>,
    flags: &'a str,
}

fn parse(name: &str) -> Name<'_> {
    let (stem, flags) = name.split_once(":2,").unwrap_or((name, ""));
    let uid = stem
        .split_once(",U=")
        .and_then(|(_, rest)| rest.split(',').next()?.parse().ok());
    Name { stem, uid, flags }
}

/// The stem without mbsync's `,U=<uid>`: what a file moved to another folder must be named, or
/// mbsync takes it for the message of that UID there.
fn without_uid(stem: &str) -> String {
    match stem.split_once(",U=") {
        Some((head, rest)) => match rest.split_once(',') {
            Some((_, tail)) => format!("{head},{tail}"),
            None => head.to_owned(),
        },
        None => stem.to_owned(),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// The message files of a Maildir folder (cur/ and new/), by UID.
fn by_uid(folder: &Path) -> Result<Vec<(u32, PathBuf)>> {
    let mut out = Vec::new();
    for sub in ["cur", "new"] {
        let dir = folder.join(sub);
        for e in fs::read_dir(&dir).with_context(|| format!("mbsync's folder {}", dir.display()))? {
            let path = e?.path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if let Some(uid) = parse(&name).uid {
                out.push((uid, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Makes the mail writes of `mix` in mbsync's Maildir, on the lowest UIDs in the order the
/// script takes them (flags, moves, deletes); returns how many.
fn edit(mail: &Path, mix: &[(Kind, usize)]) -> Result<usize> {
    let inbox = by_uid(&mail.join("INBOX"))?.into_iter().map(|(_, path)| path);
    let (flags, moves, deletes) = mail_targets(inbox, mix).context("mbsync's INBOX")?;
    let cur = |folder: &str| mail.join(folder).join("cur");
    for path in &flags {
        let name = file_name(path);
        let n = parse(&name);
        let mut letters: Vec<char> = n.flags.chars().chain(['F']).collect();
        letters.sort_unstable();
        letters.dedup();
        let flagged = format!("{}:2,{}", n.stem, letters.into_iter().collect::<String>());
        fs::rename(path, cur("INBOX").join(flagged))?;
    }
    for path in &moves {
        let name = file_name(path);
        let n = parse(&name);
        fs::rename(
            path,
            cur("Archive").join(format!("{}:2,{}", without_uid(n.stem), n.flags)),
        )?;
    }
    for path in &deletes {
        fs::remove_file(path)?;
    }
    let appends = count_of(mix, Kind::Append);
    for k in 0..appends {
        let name = format!("{}.{}_{k}.bench:2,S", 1_700_000_000 + k, std::process::id());
        fs::write(cur("Sent").join(name), appended(k))?;
    }
    Ok(flags.len() + moves.len() + deletes.len() + appends)
}

/// A first pull (untimed), the edits, then the timed push. `ca`: IMAPS to `port` trusting it;
/// `None`: plain IMAP. `before_sync` runs right before the timed push (to mark the counters).
pub fn run(
    port: u16,
    ca: Option<&Path>,
    mix: &[(Kind, usize)],
    before_sync: impl FnOnce(),
) -> Result<MbsyncRun> {
    let m = Mbsync::with_tls(port, "alice", None, ca)?;
    m.sync()?;
    let writes = edit(&m.mail_dir(), mix)?;
    m.push_from_now()?;
    before_sync();
    let run = m.sync()?;
    Ok(MbsyncRun {
        seconds: run.wall.as_secs_f64(),
        writes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_give_their_uid_and_flags() {
        let n = parse("1733.42_1.host,U=17:2,S");
        assert_eq!((n.stem, n.uid, n.flags), ("1733.42_1.host,U=17", Some(17), "S"));
        assert_eq!(parse("1733.42_1.host").uid, None);
        assert_eq!(without_uid("1733.42_1.host,U=17"), "1733.42_1.host");
        assert_eq!(without_uid("1733.42_1.host,U=17,X=1"), "1733.42_1.host,X=1");
    }

    #[test]
    fn edits_flag_move_delete_and_append_in_the_maildir() {
        let mail = tempfile::tempdir().unwrap();
        for folder in ["INBOX", "Archive", "Sent"] {
            for sub in ["cur", "new", "tmp"] {
                fs::create_dir_all(mail.path().join(folder).join(sub)).unwrap();
            }
        }
        for uid in 1..=5 {
            let dir = if uid == 5 { "new" } else { "cur" };
            let name = format!("17.{uid}_1.h,U={uid}:2,S");
            fs::write(mail.path().join("INBOX").join(dir).join(name), "m").unwrap();
        }
        let mix = [
            (Kind::Flag, 2),
            (Kind::Move, 1),
            (Kind::DeleteMail, 1),
            (Kind::Append, 2),
        ];
        assert_eq!(edit(mail.path(), &mix).unwrap(), 6);
        let names = |f: &str| -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(mail.path().join(f).join("cur"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names("INBOX"), vec!["17.1_1.h,U=1:2,FS", "17.2_1.h,U=2:2,FS"]);
        assert_eq!(names("Archive"), vec!["17.3_1.h:2,S"]);
        assert_eq!(names("Sent").len(), 2);
        // UID 4 deleted; 5 untouched in new/.
        assert_eq!(by_uid(&mail.path().join("INBOX")).unwrap().len(), 3);
    }
}
