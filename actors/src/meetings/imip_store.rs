//! The store side of iMIP: a DAV write and the messages it sends journaled in one durable
//! transaction, and which arrived messages were already applied.

use crate::journal::{DavOp, MailOp};
use crate::store::records::{ItemRecord, JournalEntry};
use crate::store::{Store, StoreError, keys};

/// Journals `op` (with its mirror change) and the iMIP sends it causes, atomically: either the
/// write and its messages are all durable or none is (a crash between them cannot lose a
/// message or send one for a write that never happened). Returns the DAV operation's id; the
/// sends follow it and are replayed by the IMAP child like any `mail.send`.
pub fn journal_with_mail(
    store: &Store,
    account: &str,
    op: &DavOp,
    item: Option<&ItemRecord>,
    mail: &[MailOp],
) -> Result<u64, StoreError> {
    let mut wtxn = store.env().write_txn()?;
    let id = store.journal_dav_in(&mut wtxn, account, op, item)?;
    for send in mail {
        let mail_id = store.next_journal_id(&mut wtxn)?;
        let value = serde_json::to_value(send).map_err(|e| StoreError::Corrupt {
            key: format!("journal {mail_id}"),
            reason: e.to_string(),
        })?;
        store.journal.put(
            &mut wtxn,
            &keys::with_u64(account, mail_id),
            &JournalEntry::new(mail_id, account, value),
        )?;
    }
    wtxn.commit()?;
    Ok(id)
}

fn marker(account: &str, key: &str) -> String {
    format!("imip\0{account}\0{key}")
}

/// Whether the arrived message `key` (`folder:uidvalidity:uid`) was applied already.
pub fn applied(store: &Store, account: &str, key: &str) -> Result<bool, StoreError> {
    let rtxn = store.env().read_txn()?;
    Ok(store.meta.get(&rtxn, &marker(account, key))?.is_some())
}

/// Records that the arrived message `key` was applied (a REPLY's PARTSTAT, a CANCEL).
pub fn mark_applied(store: &Store, account: &str, key: &str) -> Result<(), StoreError> {
    let mut wtxn = store.env().write_txn()?;
    store.meta.put(&mut wtxn, &marker(account, key), b"1")?;
    wtxn.commit()?;
    Ok(())
}

/// The mirrored calendar object with this UID, in any calendar of the account.
pub fn find_uid(store: &Store, account: &str, uid: &str) -> Result<Option<ItemRecord>, StoreError> {
    for col in store.dav_collections_of(account, &["calendar"])? {
        for item in store.dav_items_of(account, &col.href)? {
            if item.event.as_ref().is_some_and(|e| e.uid == uid) {
                return Ok(Some(item));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::dav_op::Put;

    #[test]
    fn the_write_and_its_messages_are_journaled_together() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let put = DavOp::put(
            true,
            Put {
                collection: "/c/".into(),
                href: "/c/1.ics".into(),
                body: "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".into(),
                if_match: None,
                schedule_tag: None,
            },
        );
        let send = MailOp::Send {
            raw: "eA==".into(),
            message_id: Some("<x@y>".into()),
            submitted: false,
        };
        let id = journal_with_mail(&store, "a", &put, None, &[send.clone(), send]).unwrap();
        let pending = store.journal_pending(Some("a")).unwrap();
        let kinds: Vec<_> = pending
            .iter()
            .map(|e| (e.id, e.op["kind"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(
            kinds,
            [
                (id, "calendar.put".into()),
                (id + 1, "mail.send".into()),
                (id + 2, "mail.send".into())
            ]
        );
        assert!(!applied(&store, "a", "INBOX:1:2").unwrap());
        mark_applied(&store, "a", "INBOX:1:2").unwrap();
        assert!(applied(&store, "a", "INBOX:1:2").unwrap());
        assert!(!applied(&store, "b", "INBOX:1:2").unwrap());
    }
}
