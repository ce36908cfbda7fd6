//! Incremental sync of one folder into the mirror (RFC 3501, RFC 7162 CONDSTORE).
//!
//! ```text
//!  SELECT ─ UIDVALIDITY changed? ── yes ─► drop the folder's mirror, start over (RFC 3501 §2.3.1.1)
//!     │
//!     ├─ new:      UID SEARCH UID next:*  →  UID FETCH in batches of BATCH  (one LMDB txn each)
//!     ├─ flags:    CONDSTORE: UID FETCH 1:next-1 (FLAGS) (CHANGEDSINCE modseq)   (RFC 7162 §3.1.4)
//!     │            otherwise: UID FETCH 1:next-1 (FLAGS), compared with the mirror
//!     └─ expunges: mirror count ≠ EXISTS − new  →  UID SEARCH UID 1:next-1, remove the missing
//! ```
//! Old messages can only disappear, never appear below UIDNEXT, so equal counts prove that nothing
//! was expunged; the UID list is fetched only when something was.
//!
//! A round reads from the mirror only what it compares (issue 22, a folder of 100,000 messages):
//! the count of old UIDs (keys alone) and the flags of the messages the server reports changed;
//! the unseen count is kept by difference by the writes themselves (`store::mail`).

use std::collections::{BTreeMap, HashSet};

use async_imap::Session;
use async_imap::types::{Fetch, Flag};
use futures::TryStreamExt;

use crate::error::ServiceError;
use crate::imap::connect::{ImapConnection, classify_error};
use crate::imap::headers::{self, FETCH_FIELDS};
use crate::store::Store;
use crate::store::records::{FolderRecord, MessageRecord};

/// Messages fetched and stored per round trip and transaction.
pub const BATCH: usize = 500;

/// What one sync of a folder changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    pub new: u32,
    pub changed: u32,
    pub expunged: u32,
    /// The folder's UIDVALIDITY changed and its mirror was rebuilt.
    pub reset: bool,
}

/// Syncs `folder` of `account`; returns its new state and what changed. `progress(done, total)`
/// hears how many of the new messages are stored.
pub async fn sync_folder(
    session: &mut Session<ImapConnection>,
    store: &Store,
    account: &str,
    folder: &FolderRecord,
    condstore: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(FolderRecord, SyncOutcome), ServiceError> {
    let path = folder.path.as_str();
    let mailbox = if condstore {
        session.select_condstore(path).await
    } else {
        session.select(path).await
    }
    .map_err(classify_error)?;
    let mut state = folder.clone();
    let mut outcome = SyncOutcome::default();
    // Not Protocol: a store that cannot write (a full disk) stops the service with the reason,
    // instead of passing for one folder the server refused.
    let db = |e: crate::store::StoreError| ServiceError::Config(format!("the local {e} (is the disk full?)"));

    if state.uidvalidity.is_some() && mailbox.uid_validity != state.uidvalidity {
        store.reset_folder(account, path).map_err(db)?;
        state.uidnext = None;
        state.highestmodseq = None;
        outcome.reset = true;
        tracing::warn!(
            account,
            folder = path,
            "UIDVALIDITY changed; folder mirror rebuilt"
        );
    }
    state.uidvalidity = mailbox.uid_validity;
    let known_next = state.uidnext.unwrap_or(1);
    // Keys alone: the UIDs below UIDNEXT the mirror holds (new ones are stored above it).
    let old_in_mirror = store.message_count_below(account, path, known_next).map_err(db)?;

    // New messages.
    let mut new_uids: Vec<u32> = if mailbox.exists == 0 {
        Vec::new()
    } else {
        session
            .uid_search(format!("UID {known_next}:*"))
            .await
            .map_err(classify_error)?
            .into_iter()
            // "n:*" also matches the highest UID when n is above it (RFC 3501 §6.4.8).
            .filter(|uid| *uid >= known_next)
            .collect()
    };
    new_uids.sort_unstable();
    let query = if condstore {
        format!("(UID FLAGS RFC822.SIZE INTERNALDATE MODSEQ {FETCH_FIELDS})")
    } else {
        format!("(UID FLAGS RFC822.SIZE INTERNALDATE {FETCH_FIELDS})")
    };
    let (mut stored, to_store) = (0u64, new_uids.len() as u64);
    progress(0, to_store);
    for chunk in new_uids.chunks(BATCH) {
        let fetches: Vec<Fetch> = session
            .uid_fetch(uid_set(chunk), &query)
            .await
            .map_err(classify_error)?
            .try_collect()
            .await
            .map_err(classify_error)?;
        let records: Vec<MessageRecord> = fetches.iter().filter_map(record_of).collect();
        outcome.new += records.len() as u32;
        store
            .apply_mail_batch(account, path, &records, &[], &[], None)
            .map_err(db)?;
        stored += chunk.len() as u64;
        progress(stored, to_store);
    }

    // Flag changes of messages we already had.
    if known_next > 1 && old_in_mirror > 0 {
        let range = format!("1:{}", known_next - 1);
        let fetches: Vec<Fetch> = match (condstore, state.highestmodseq, mailbox.highest_modseq) {
            (true, Some(known), Some(now)) if now <= known => Vec::new(),
            (true, Some(known), Some(_)) => session
                .uid_fetch(&range, format!("(UID FLAGS MODSEQ) (CHANGEDSINCE {known})"))
                .await
                .map_err(classify_error)?
                .try_collect()
                .await
                .map_err(classify_error)?,
            _ => session
                .uid_fetch(&range, "(UID FLAGS)")
                .await
                .map_err(classify_error)?
                .try_collect()
                .await
                .map_err(classify_error)?,
        };
        // CHANGEDSINCE answers the few that changed: look those up. Without it every flag came.
        let mirror = if fetches.len() < old_in_mirror as usize / 4 {
            store.message_flags_of(account, path, fetches.iter().filter_map(|f| f.uid))
        } else {
            store.message_flags(account, path)
        }
        .map_err(db)?;
        let updates = flag_updates(&mirror, &fetches);
        outcome.changed = updates.len() as u32;
        for chunk in updates.chunks(BATCH) {
            store
                .apply_mail_batch(account, path, &[], chunk, &[], None)
                .map_err(db)?;
        }
    }

    // Expunges: only when the counts say something is missing.
    let old_on_server = mailbox.exists.saturating_sub(new_uids.len() as u32);
    if old_in_mirror > old_on_server || (old_on_server == 0 && old_in_mirror > 0) {
        let present: HashSet<u32> = if known_next > 1 && mailbox.exists > 0 {
            session
                .uid_search(format!("UID 1:{}", known_next - 1))
                .await
                .map_err(classify_error)?
        } else {
            HashSet::new()
        };
        let gone: Vec<u32> = store
            .message_uids_below(account, path, known_next)
            .map_err(db)?
            .into_iter()
            .filter(|uid| !present.contains(uid))
            .collect();
        outcome.expunged = gone.len() as u32;
        store
            .apply_mail_batch(account, path, &[], &[], &gone, None)
            .map_err(db)?;
    }

    let highest_new = new_uids.last().map(|u| u + 1).unwrap_or(known_next);
    state.uidnext = Some(mailbox.uid_next.unwrap_or(highest_new).max(highest_new));
    state.highestmodseq = mailbox.highest_modseq;
    state.total = mailbox.exists;
    // Kept by difference by every write above (store::mail): a lookup, not a count.
    state.unseen = store.unseen_count(account, path).map_err(db)?;
    // A round that changed nothing writes nothing (no transaction to commit and sync to disk).
    if state != *folder {
        store
            .apply_mail_batch(account, path, &[], &[], &[], Some(&state))
            .map_err(db)?;
    }
    Ok((state, outcome))
}

/// Compact UID set for a sorted list: `1:3,7,9:12` (RFC 3501 §9 sequence-set).
/// The UIDs of a set written by [`uid_set`] (`1:3,7`); `*` and malformed parts are skipped.
pub fn parse_uid_set(set: &str) -> std::collections::BTreeSet<u32> {
    let mut out = std::collections::BTreeSet::new();
    for part in set.split(',') {
        match part.split_once(':') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    out.extend(a.min(b)..=a.max(b));
                }
            }
            None => {
                if let Ok(uid) = part.parse::<u32>() {
                    out.insert(uid);
                }
            }
        }
    }
    out
}

pub fn uid_set(sorted: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// The flag changes among `fetches` relative to the mirror (unknown UIDs are ignored).
pub fn flag_updates(
    mirror: &BTreeMap<u32, Vec<String>>,
    fetches: &[Fetch],
) -> Vec<(u32, Vec<String>, Option<u64>)> {
    let mut updates = Vec::new();
    for fetch in fetches {
        let Some(uid) = fetch.uid else { continue };
        let Some(old) = mirror.get(&uid) else { continue };
        let flags = flags_of(fetch);
        if !same_flags(old, &flags) {
            updates.push((uid, flags, fetch.modseq));
        }
    }
    updates
}

fn same_flags(a: &[String], b: &[String]) -> bool {
    let norm = |v: &[String]| {
        let mut v: Vec<String> = v.iter().map(|f| f.to_ascii_lowercase()).collect();
        v.sort();
        v
    };
    norm(a) == norm(b)
}

/// System flags keep their backslash; `\Recent` is session state and not kept (RFC 3501 §2.3.2).
pub fn flags_of(fetch: &Fetch) -> Vec<String> {
    fetch
        .flags()
        .filter_map(|f| match f {
            Flag::Seen => Some("\\Seen".to_owned()),
            Flag::Answered => Some("\\Answered".to_owned()),
            Flag::Flagged => Some("\\Flagged".to_owned()),
            Flag::Deleted => Some("\\Deleted".to_owned()),
            Flag::Draft => Some("\\Draft".to_owned()),
            Flag::Recent => None,
            Flag::MayCreate => None,
            Flag::Custom(c) => Some(c.to_string()),
        })
        .collect()
}

/// The mirror record of a fetched message; a message without UID is skipped, a message whose
/// headers cannot be read is kept with empty fields (invariant 4).
fn record_of(fetch: &Fetch) -> Option<MessageRecord> {
    let uid = fetch.uid?;
    let summary = fetch.header().map(headers::summarize).unwrap_or_default();
    Some(MessageRecord {
        uid,
        flags: flags_of(fetch),
        subject: summary.subject,
        from: summary.from,
        to: summary.to,
        date: summary.date,
        internal_date: fetch.internal_date().map(|d| d.to_rfc3339()),
        size: fetch.size.unwrap_or(0),
        message_id: summary.message_id,
        modseq: fetch.modseq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_are_compact() {
        assert_eq!(uid_set(&[]), "");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10, 11, 12]), "1:3,7,9:12");
    }

    proptest::proptest! {
        #[test]
        fn uid_sets_cover_exactly_the_input(mut uids in proptest::collection::btree_set(1u32..5000, 0..200)) {
            let sorted: Vec<u32> = std::mem::take(&mut uids).into_iter().collect();
            let set = uid_set(&sorted);
            let mut expanded = Vec::new();
            for part in set.split(',').filter(|p| !p.is_empty()) {
                match part.split_once(':') {
                    Some((a, b)) => expanded.extend(a.parse::<u32>().unwrap()..=b.parse::<u32>().unwrap()),
                    None => expanded.push(part.parse::<u32>().unwrap()),
                }
            }
            proptest::prop_assert_eq!(expanded, sorted);
        }
    }
}
