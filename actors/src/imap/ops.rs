//! Carrying out journaled mail operations on an IMAP session, idempotently (invariant 6).
//!
//! - UIDs are remapped by Message-ID when the folder's UIDVALIDITY changed since the op was made.
//! - Messages expunged elsewhere make the op moot, not an error.
//! - A repeated APPEND or COPY (the previous attempt's outcome is unknown) first looks for the
//!   Message-ID in the target, so nothing is stored twice.

use async_imap::Session;
use base64::Engine as _;
use futures::TryStreamExt;

use crate::error::ServiceError;
use crate::imap::connect::{ImapConnection, classify_error};
use crate::imap::sync::uid_set;
use crate::journal::MailOp;

/// How an operation ended on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Done,
    /// Nothing left to do (the messages or folder are gone); the reason is for the user.
    Moot(String),
    /// Not done, and not to be tried again without the user (the outcome of an earlier attempt
    /// is unknown and repeating it could duplicate); the reason is for the user.
    Parked(String),
}

/// What the server offers that changes how operations are carried out.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpCaps {
    /// RFC 6851 MOVE.
    pub move_: bool,
    /// RFC 4315 UIDPLUS: UID EXPUNGE removes only the named messages.
    pub uidplus: bool,
    /// RFC 3502 MULTIAPPEND with RFC 7888 LITERAL+: several messages in one APPEND, sent
    /// without waiting for a continuation per literal.
    pub multiappend: bool,
}

/// Carries out `op`. `retry` says an earlier attempt may have reached the server.
pub async fn execute(
    session: &mut Session<ImapConnection>,
    op: &MailOp,
    caps: OpCaps,
    retry: bool,
) -> Result<Applied, ServiceError> {
    match op {
        MailOp::Flag {
            folder,
            uids,
            add,
            remove,
            uidvalidity,
            message_ids,
        } => {
            let Some(set) = resolve(session, folder, uids, *uidvalidity, message_ids).await? else {
                return Ok(Applied::Moot("the messages are no longer on the server".into()));
            };
            if !add.is_empty() {
                store(session, &set, &format!("+FLAGS.SILENT ({})", add.join(" "))).await?;
            }
            if !remove.is_empty() {
                store(session, &set, &format!("-FLAGS.SILENT ({})", remove.join(" "))).await?;
            }
            Ok(Applied::Done)
        }
        MailOp::Delete {
            folder,
            uids,
            uidvalidity,
            message_ids,
        } => {
            let Some(set) = resolve(session, folder, uids, *uidvalidity, message_ids).await? else {
                return Ok(Applied::Moot("the messages were already deleted".into()));
            };
            expunge(session, &set, caps).await?;
            Ok(Applied::Done)
        }
        MailOp::Move {
            folder,
            uids,
            to,
            uidvalidity,
            message_ids,
        } => {
            if caps.move_ {
                let Some(set) = resolve(session, folder, uids, *uidvalidity, message_ids).await? else {
                    return Ok(Applied::Moot("the messages are no longer in the folder".into()));
                };
                session.uid_mv(&set, to).await.map_err(classify_error)?;
                return Ok(Applied::Done);
            }
            // RFC 6851 §3.3's fallback: COPY, then \Deleted and EXPUNGE. A crash between the
            // steps leaves a copy, never a loss; the retry copies only what is not in the target
            // yet (by Message-ID), so the target never gets a message twice.
            let ids: Vec<Option<String>> = message_ids
                .iter()
                .cloned()
                .chain(std::iter::repeat(None))
                .take(uids.len())
                .collect();
            let mut to_copy: Vec<(u32, Option<String>)> = uids.iter().copied().zip(ids.clone()).collect();
            if retry {
                let mut missing = Vec::new();
                for (uid, id) in to_copy {
                    match &id {
                        Some(id) if present(session, to, id).await? => {}
                        _ => missing.push((uid, id)),
                    }
                }
                to_copy = missing;
            }
            let Some(all) = resolve(session, folder, uids, *uidvalidity, &ids).await? else {
                return Ok(Applied::Moot("the messages are no longer in the folder".into()));
            };
            if !to_copy.is_empty() {
                let (copy_uids, copy_ids): (Vec<u32>, Vec<Option<String>>) = to_copy.into_iter().unzip();
                if let Some(set) = resolve(session, folder, &copy_uids, *uidvalidity, &copy_ids).await? {
                    session.uid_copy(&set, to).await.map_err(classify_error)?;
                }
            }
            expunge(session, &all, caps).await?;
            Ok(Applied::Done)
        }
        MailOp::Copy {
            folder,
            uids,
            to,
            uidvalidity,
            message_ids,
        } => {
            let mut wanted: Vec<(u32, Option<String>)> = uids
                .iter()
                .copied()
                .zip(message_ids.iter().cloned().chain(std::iter::repeat(None)))
                .collect();
            if retry {
                // Drop the messages the earlier attempt already copied.
                let mut missing = Vec::new();
                for (uid, id) in wanted {
                    match &id {
                        Some(id) if present(session, to, id).await? => {}
                        _ => missing.push((uid, id)),
                    }
                }
                wanted = missing;
                if wanted.is_empty() {
                    return Ok(Applied::Done);
                }
            }
            let (uids, ids): (Vec<u32>, Vec<Option<String>>) = wanted.into_iter().unzip();
            let Some(set) = resolve(session, folder, &uids, *uidvalidity, &ids).await? else {
                return Ok(Applied::Moot("the messages are no longer in the folder".into()));
            };
            session.uid_copy(&set, to).await.map_err(classify_error)?;
            Ok(Applied::Done)
        }
        MailOp::Append {
            folder,
            raw,
            flags,
            message_id,
        } => {
            if retry
                && let Some(id) = message_id
                && present(session, folder, id).await?
            {
                return Ok(Applied::Done);
            }
            let raw = base64::engine::general_purpose::STANDARD
                .decode(raw)
                .map_err(|e| ServiceError::Protocol(format!("journaled message is not base64: {e}")))?;
            let flags = (!flags.is_empty()).then(|| format!("({})", flags.join(" ")));
            session
                .append(folder, flags.as_deref(), None, &raw)
                .await
                .map_err(classify_error)?;
            Ok(Applied::Done)
        }
        MailOp::AclSet {
            folder,
            identifier,
            rights,
        } => {
            crate::imap::acl::set_acl(session, folder, identifier, rights).await?;
            Ok(Applied::Done)
        }
        MailOp::FolderCopy { .. } => Err(ServiceError::Unsupported(
            "mail.folder.copy is carried out by the replay, not here".into(),
        )),
        MailOp::Send { .. } => Err(ServiceError::Unsupported(
            "mail.send is carried out by the replay, not here".into(),
        )),
        MailOp::FolderCreate { path } => match session.create(path).await {
            Ok(()) => Ok(Applied::Done),
            // RFC 5530 §3: ALREADYEXISTS; a retry after an unknown outcome lands here.
            Err(e)
                if no_text(&e)
                    .is_some_and(|t| t.contains("ALREADYEXISTS") || t.contains("already exists")) =>
            {
                Ok(Applied::Done)
            }
            Err(e) => Err(classify_error(e)),
        },
        MailOp::FolderRename { path, to } => match session.rename(path, to).await {
            Ok(()) => Ok(Applied::Done),
            Err(e)
                if no_text(&e).is_some_and(|t| t.contains("NONEXISTENT") || t.contains("doesn't exist")) =>
            {
                if folder_exists(session, to).await? {
                    Ok(Applied::Done)
                } else {
                    Ok(Applied::Moot(format!("{path} no longer exists")))
                }
            }
            Err(e) => Err(classify_error(e)),
        },
        MailOp::FolderDelete { path } => match session.delete(path).await {
            Ok(()) => Ok(Applied::Done),
            Err(e)
                if no_text(&e).is_some_and(|t| t.contains("NONEXISTENT") || t.contains("doesn't exist")) =>
            {
                Ok(Applied::Moot(format!("{path} was already deleted")))
            }
            Err(e) => Err(classify_error(e)),
        },
    }
}

fn no_text(e: &async_imap::error::Error) -> Option<&str> {
    match e {
        async_imap::error::Error::No(text) => Some(text),
        _ => None,
    }
}

/// SELECTs `folder` and returns the UID set still there, remapped by Message-ID when the
/// UIDVALIDITY changed (RFC 3501 §2.3.1.1); `None` when nothing is left.
async fn resolve(
    session: &mut Session<ImapConnection>,
    folder: &str,
    uids: &[u32],
    uidvalidity: Option<u32>,
    message_ids: &[Option<String>],
) -> Result<Option<String>, ServiceError> {
    Ok(resolve_uids(session, folder, uids, uidvalidity, message_ids)
        .await?
        .map(|found| uid_set(&found.uids)))
}

/// The messages of an operation (or a batch of them) found on the server.
pub(crate) struct Found {
    /// Sorted, without duplicates, never empty.
    pub uids: Vec<u32>,
    /// Found by Message-ID because the folder's UIDVALIDITY changed: `uids` are new UIDs.
    pub remapped: bool,
}

/// [`resolve`], returning the UIDs themselves: one SELECT and one UID SEARCH whatever their
/// number, so a batch of operations on one folder costs what one does.
pub(crate) async fn resolve_uids(
    session: &mut Session<ImapConnection>,
    folder: &str,
    uids: &[u32],
    uidvalidity: Option<u32>,
    message_ids: &[Option<String>],
) -> Result<Option<Found>, ServiceError> {
    let mailbox = match session.select(folder).await {
        Ok(m) => m,
        Err(e) if no_text(&e).is_some() => return Ok(None),
        Err(e) => return Err(classify_error(e)),
    };
    let remapped = uidvalidity.is_some() && mailbox.uid_validity != uidvalidity;
    let mut current: Vec<u32> = if remapped {
        let mut found = Vec::new();
        for id in message_ids.iter().flatten() {
            if let Some(query) = header_search(id) {
                found.extend(session.uid_search(query).await.map_err(classify_error)?);
            }
        }
        found
    } else {
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        session
            .uid_search(format!("UID {}", uid_set(&sorted)))
            .await
            .map_err(classify_error)?
            .into_iter()
            .collect()
    };
    current.sort_unstable();
    current.dedup();
    Ok((!current.is_empty()).then_some(Found {
        uids: current,
        remapped,
    }))
}

pub(crate) async fn store(
    session: &mut Session<ImapConnection>,
    set: &str,
    query: &str,
) -> Result<(), ServiceError> {
    let _: Vec<_> = session
        .uid_store(set, query)
        .await
        .map_err(classify_error)?
        .try_collect()
        .await
        .map_err(classify_error)?;
    Ok(())
}

pub(crate) async fn expunge(
    session: &mut Session<ImapConnection>,
    set: &str,
    caps: OpCaps,
) -> Result<(), ServiceError> {
    store(session, set, "+FLAGS.SILENT (\\Deleted)").await?;
    if caps.uidplus {
        // RFC 4315 §2.1: only the named messages go.
        let _: Vec<_> = session
            .uid_expunge(set)
            .await
            .map_err(classify_error)?
            .try_collect()
            .await
            .map_err(classify_error)?;
        return Ok(());
    }
    // Plain EXPUNGE (RFC 3501 §6.4.3) removes every \Deleted message, also those another client
    // marked and means to keep until it expunges (or undeletes) them itself. Their flag is taken
    // off for the EXPUNGE and put back right after. What remains: a message another client marks
    // \Deleted in between goes too, and a crash in between leaves theirs unmarked (never lost).
    let ours: std::collections::BTreeSet<u32> = crate::imap::sync::parse_uid_set(set);
    let others: Vec<u32> = session
        .uid_search("DELETED")
        .await
        .map_err(classify_error)?
        .into_iter()
        .filter(|uid| !ours.contains(uid))
        .collect();
    let others_set = (!others.is_empty()).then(|| {
        let mut sorted = others.clone();
        sorted.sort_unstable();
        uid_set(&sorted)
    });
    if let Some(others) = &others_set {
        store(session, others, "-FLAGS.SILENT (\\Deleted)").await?;
    }
    let expunged = async {
        let _: Vec<_> = session
            .expunge()
            .await
            .map_err(classify_error)?
            .try_collect()
            .await
            .map_err(classify_error)?;
        Ok::<_, ServiceError>(())
    }
    .await;
    if let Some(others) = &others_set {
        store(session, others, "+FLAGS.SILENT (\\Deleted)").await?;
    }
    expunged
}

/// Is a message with this Message-ID in `folder`? (Leaves `folder` selected.)
pub async fn present(
    session: &mut Session<ImapConnection>,
    folder: &str,
    message_id: &str,
) -> Result<bool, ServiceError> {
    let Some(query) = header_search(message_id) else {
        return Ok(false);
    };
    match session.select(folder).await {
        Ok(_) => {}
        Err(e) if no_text(&e).is_some() => return Ok(false),
        Err(e) => return Err(classify_error(e)),
    }
    Ok(!session
        .uid_search(query)
        .await
        .map_err(classify_error)?
        .is_empty())
}

async fn folder_exists(session: &mut Session<ImapConnection>, path: &str) -> Result<bool, ServiceError> {
    let names: Vec<_> = session
        .list(Some(""), Some(path))
        .await
        .map_err(classify_error)?
        .try_collect()
        .await
        .map_err(classify_error)?;
    Ok(!names.is_empty())
}

/// `HEADER Message-ID "<id>"` (RFC 3501 §6.4.4), or `None` for an id that cannot be quoted.
pub fn header_search(message_id: &str) -> Option<String> {
    if message_id.is_empty() || !message_id.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let quoted = message_id.replace('\\', "\\\\").replace('"', "\\\"");
    Some(format!("HEADER Message-ID \"{quoted}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_searches_are_quoted_or_refused() {
        assert_eq!(header_search("<a@b>").unwrap(), "HEADER Message-ID \"<a@b>\"");
        assert_eq!(
            header_search("<a\"b@c>").unwrap(),
            "HEADER Message-ID \"<a\\\"b@c>\""
        );
        assert_eq!(header_search("<a b@c>"), None);
        assert_eq!(header_search("<ä@c>"), None);
        assert_eq!(header_search(""), None);
    }
}
