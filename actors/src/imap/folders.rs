//! Folder discovery: LIST with special-use attributes (RFC 6154 §2), LSUB for subscriptions and
//! NAMESPACE (RFC 2342) for the namespace kind of each folder.

use std::collections::HashSet;

use async_imap::Session;
use async_imap::imap_proto::NameAttribute;
use futures::TryStreamExt;

use crate::error::ServiceError;
use crate::imap::connect::{ImapConnection, classify_error};
use crate::imap::namespace::{self, Namespaces};
use crate::imap::{acl, raw};
use crate::store::records::FolderRecord;

/// Lists every folder the user can see, own, other users' and shared.
pub async fn discover(
    session: &mut Session<ImapConnection>,
    has_namespace: bool,
    has_acl: bool,
) -> Result<(Vec<FolderRecord>, Namespaces), ServiceError> {
    let namespaces = if has_namespace {
        let lines = raw::command(session, "ns1", "NAMESPACE").await?;
        let line = lines
            .iter()
            .find(|l| l.to_ascii_uppercase().starts_with("* NAMESPACE"))
            .ok_or_else(|| ServiceError::Protocol("NAMESPACE gave no answer line".into()))?;
        namespace::parse(line).map_err(|e| ServiceError::Protocol(e.to_string()))?
    } else {
        Namespaces::default()
    };
    let subscribed: HashSet<String> = session
        .lsub(Some(""), Some("*"))
        .await
        .map_err(classify_error)?
        .map_ok(|n| n.name().to_owned())
        .try_collect()
        .await
        .map_err(classify_error)?;
    let names: Vec<_> = session
        .list(Some(""), Some("*"))
        .await
        .map_err(classify_error)?
        .try_collect()
        .await
        .map_err(classify_error)?;
    let mut folders = Vec::with_capacity(names.len());
    for name in names {
        let attributes = name.attributes();
        if attributes.iter().any(|a| matches!(a, NameAttribute::NoSelect)) {
            continue;
        }
        let path = name.name().to_owned();
        let special_use = attributes.iter().find_map(special_use);
        folders.push(FolderRecord {
            namespace: namespaces.kind_of(&path).to_owned(),
            subscribed: subscribed.contains(&path) || path.eq_ignore_ascii_case("INBOX"),
            delimiter: name.delimiter().map(str::to_owned),
            special_use: special_use.map(str::to_owned),
            path,
            ..FolderRecord::default()
        });
    }
    // Other users' and shared folders carry the user's rights (RFC 4314 §3.5), so writes the
    // owner did not allow are refused before they are journaled. Own folders: all rights.
    if has_acl {
        for folder in folders.iter_mut().filter(|f| f.namespace != "personal") {
            folder.rights = acl::my_rights(session, &folder.path).await.ok();
        }
    }
    folders.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((folders, namespaces))
}

/// RFC 6154 §2 attribute names.
fn special_use(attribute: &NameAttribute<'_>) -> Option<&'static str> {
    Some(match attribute {
        NameAttribute::All => "\\All",
        NameAttribute::Archive => "\\Archive",
        NameAttribute::Drafts => "\\Drafts",
        NameAttribute::Flagged => "\\Flagged",
        NameAttribute::Junk => "\\Junk",
        NameAttribute::Sent => "\\Sent",
        NameAttribute::Trash => "\\Trash",
        _ => return None,
    })
}
