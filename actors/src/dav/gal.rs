//! The global address list: an `addressbook-query` REPORT (RFC 6352 §8.6) against a directory
//! collection, matching the query in the name or any email, with the server limiting the answer
//! (§8.6.1 `limit`/`nresults`), so a large directory is never downloaded whole.

use url::Url;

use crate::dav::DavClient;
use crate::dav::client::ReportAnswer;
use crate::dav::discovery::DavService;
use crate::dav::sync::read_multiget;
use crate::error::ServiceError;
use crate::formats::vcard;

/// One directory entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub href: String,
    pub name: String,
    pub emails: Vec<String>,
    pub kind: String,
}

/// The REPORT body: FN or EMAIL containing `query` (case-insensitive, `i;unicode-casemap`).
pub fn query_body(query: &str, limit: usize) -> String {
    let text = query
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let mut filters = String::new();
    for prop in ["FN", "EMAIL"] {
        filters.push_str(&format!(
            r#"<c:prop-filter name="{prop}"><c:text-match collation="i;unicode-casemap" match-type="contains">{text}</c:text-match></c:prop-filter>"#
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<c:addressbook-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:carddav"><d:prop><d:getetag/><c:address-data/></d:prop><c:filter test="anyof">{filters}</c:filter><c:limit><c:nresults>{limit}</c:nresults></c:limit></c:addressbook-query>"#
    )
}

/// Searches one directory collection; at most `limit` entries.
pub async fn search(
    client: &DavClient,
    directory: &Url,
    query: &str,
    limit: usize,
) -> Result<Vec<Entry>, ServiceError> {
    let answer = client.report(directory, "1", &query_body(query, limit)).await?;
    let ms = match answer {
        ReportAnswer::Multistatus(ms) => ms,
        ReportAnswer::Unsupported(status) => {
            return Err(ServiceError::Unsupported(format!(
                "{directory} does not answer addressbook-query ({status})"
            )));
        }
        ReportAnswer::InvalidSyncToken => {
            return Err(ServiceError::Protocol("unexpected sync-token error".into()));
        }
    };
    let mut out = Vec::new();
    for item in read_multiget(&ms, directory, DavService::CardDav) {
        let Some(body) = item.body else { continue };
        // RFC 6352 §8.6.1: a server may answer more than asked; the limit is ours too.
        if out.len() >= limit {
            break;
        }
        if let Ok(card) = vcard::parse_contact(body.as_bytes()) {
            out.push(Entry {
                href: item.href,
                name: card.name,
                emails: card.emails,
                kind: card.kind,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_matches_name_or_email_and_is_limited() {
        let body = query_body("o'B<r>", 25);
        assert!(body.contains(r#"<c:filter test="anyof">"#));
        assert!(body.contains(r#"name="FN""#) && body.contains(r#"name="EMAIL""#));
        assert!(body.contains("o'B&lt;r&gt;"));
        assert!(body.contains("<c:nresults>25</c:nresults>"));
    }
}
