//! vdirsyncer as the peer of benchmarks 8d and 5b: the DAV half of the replay's mix made as local
//! edits in its storage, then sent by one `vdirsyncer sync` (what a vdirsyncer user does after
//! working offline). It has no mail side: mbsync is the mail-side peer (replay_mbsync.rs).
//!
//! ```text
//!   vdirsyncer discover + sync (untimed) ─▶ local folder per collection
//!   new files (creates), SUMMARY/NOTE edited (updates), files removed (deletes)
//!   ─▶ vdirsyncer sync (timed): its listing of each collection, then PUT / DELETE with If-Match
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::replay::Kind;
use crate::seed;
use crate::tools::Vdirsyncer;

/// What a vdirsyncer pass did: its `sync`'s time and the DAV writes of the mix it carried.
pub struct VdirRun {
    pub seconds: f64,
    pub writes: usize,
}

/// The last segment of a collection's path (`/alice/calendar/` → `calendar`): the name of the
/// local folder vdirsyncer keeps it in (`collections = ["from a"]`).
pub fn collection_name(path: &str) -> &str {
    path.trim_end_matches('/').rsplit('/').next().unwrap_or(path)
}

/// The item files of a local collection folder, sorted.
fn items(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("vdirsyncer's folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    Ok(out)
}

/// Makes the DAV writes of `mix` in vdirsyncer's local folders; returns how many.
fn edit(v: &Vdirsyncer, calendar: &str, book: &str, mix: &[(Kind, usize)]) -> Result<usize> {
    let cal = v.local_dir("caldav").join(collection_name(calendar));
    let card = v.local_dir("carddav").join(collection_name(book));
    let mut events = items(&cal, "ics")?.into_iter();
    let mut contacts = items(&card, "vcf")?.into_iter();
    let mut made = 0;
    for (kind, count) in mix {
        for k in 0..*count {
            match kind {
                Kind::CreateEvent => {
                    let (uid, ics) = seed::event(900_000 + k);
                    fs::write(cal.join(format!("{uid}.ics")), ics)?;
                }
                Kind::CreateContact => {
                    let (uid, vcf) = seed::contact(900_000 + k);
                    fs::write(card.join(format!("{uid}.vcf")), vcf)?;
                }
                Kind::UpdateEvent | Kind::UpdateContact => {
                    let file = if *kind == Kind::UpdateEvent {
                        events.next()
                    } else {
                        contacts.next()
                    }
                    .context("vdirsyncer stored too few items")?;
                    let text = fs::read_to_string(&file)?
                        .replacen("SUMMARY:", "SUMMARY:moved ", 1)
                        .replacen("NOTE:", "NOTE:updated ", 1);
                    fs::write(&file, text)?;
                }
                Kind::DeleteEvent | Kind::DeleteContact => {
                    let file = if *kind == Kind::DeleteEvent {
                        events.next()
                    } else {
                        contacts.next()
                    }
                    .context("vdirsyncer stored too few items")?;
                    fs::remove_file(file)?;
                }
                _ => continue,
            }
            made += 1;
        }
    }
    Ok(made)
}

/// A first sync (untimed), the edits, then the timed `sync`; `url`: the DAV root the agent uses.
/// `before_sync` runs right before the timed `sync` (to mark the counters).
pub fn run(
    url: &str,
    ca: Option<&Path>,
    calendar: &str,
    book: &str,
    mix: &[(Kind, usize)],
    before_sync: impl FnOnce(),
) -> Result<VdirRun> {
    let v = Vdirsyncer::verified(url, "alice", ca)?;
    v.first_sync()?;
    let writes = edit(&v, calendar, book, mix)?;
    before_sync();
    let run = v.sync()?;
    Ok(VdirRun {
        seconds: run.wall.as_secs_f64(),
        writes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections_are_named_by_their_last_segment() {
        assert_eq!(collection_name("/alice/calendar/"), "calendar");
        assert_eq!(collection_name("/dav/calendars/user/alice/Default/"), "Default");
    }
}
