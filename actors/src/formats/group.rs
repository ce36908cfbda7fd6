//! Contact groups in the dialect an address book already uses: vCard 4 `KIND:group` + `MEMBER`
//! (RFC 6350 §6.1.4, §6.6.5) or Apple's vCard 3 `X-ADDRESSBOOKSERVER-KIND:group` +
//! `X-ADDRESSBOOKSERVER-MEMBER`. A group the client writes in the other dialect is converted line
//! by line; every other line of the card is kept as written.

use crate::formats::ContactFields;

/// The two ways a group can be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// vCard 4: `KIND:group`, `MEMBER:urn:uuid:…`.
    Kind,
    /// Apple, vCard 3: `X-ADDRESSBOOKSERVER-KIND:group`, `X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:…`.
    Apple,
}

/// The dialect of a card's group properties, if it is written as a group.
pub fn dialect_of(vcf: &str) -> Option<Dialect> {
    let mut found = None;
    for line in vcf.lines() {
        let name = property(line);
        if name.eq_ignore_ascii_case("KIND") && value(line).eq_ignore_ascii_case("group") {
            found = Some(Dialect::Kind);
        } else if name.eq_ignore_ascii_case("X-ADDRESSBOOKSERVER-KIND")
            && value(line).eq_ignore_ascii_case("group")
        {
            found = Some(Dialect::Apple);
        }
    }
    found
}

/// The dialect a book uses: that of its groups, else that of its cards' version (3.0 → Apple).
pub fn book_dialect<'a>(
    bodies: impl IntoIterator<Item = &'a str>,
    cards: &[ContactFields],
) -> Option<Dialect> {
    if let Some(d) = bodies.into_iter().find_map(dialect_of) {
        return Some(d);
    }
    match cards.first().map(|c| c.version.as_str()) {
        Some("3.0") => Some(Dialect::Apple),
        Some("4.0") => Some(Dialect::Kind),
        _ => None,
    }
}

/// Rewrites a group card into `to`; a card that is not a group, or already in `to`, is returned
/// unchanged. Folded lines are unfolded first so that no property is split.
pub fn convert(vcf: &str, to: Dialect) -> String {
    match dialect_of(vcf) {
        Some(from) if from != to => {}
        _ => return vcf.to_owned(),
    }
    let ending = if vcf.contains("\r\n") { "\r\n" } else { "\n" };
    let unfolded = vcf
        .replace("\r\n ", "")
        .replace("\r\n\t", "")
        .replace("\n ", "")
        .replace("\n\t", "");
    let mut out = String::with_capacity(vcf.len());
    for line in unfolded.lines() {
        let name = property(line);
        let rest = &line[name.len()..];
        let renamed = match (to, name.to_ascii_uppercase().as_str()) {
            (Dialect::Apple, "KIND") => format!("X-ADDRESSBOOKSERVER-KIND{rest}"),
            (Dialect::Apple, "MEMBER") => format!("X-ADDRESSBOOKSERVER-MEMBER{rest}"),
            (Dialect::Apple, "VERSION") => "VERSION:3.0".to_owned(),
            (Dialect::Kind, "X-ADDRESSBOOKSERVER-KIND") => format!("KIND{rest}"),
            (Dialect::Kind, "X-ADDRESSBOOKSERVER-MEMBER") => format!("MEMBER{rest}"),
            (Dialect::Kind, "VERSION") => "VERSION:4.0".to_owned(),
            _ => line.to_owned(),
        };
        out.push_str(&renamed);
        out.push_str(ending);
    }
    out
}

/// The property name of a content line, without group prefix or parameters (RFC 6350 §3.3).
fn property(line: &str) -> &str {
    let end = line.find([':', ';']).unwrap_or(line.len());
    let name = &line[..end];
    name.rsplit('.').next().unwrap_or(name)
}

fn value(line: &str) -> &str {
    line.split_once(':').map(|(_, v)| v.trim()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: &str = "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:team\r\nKIND:group\r\nFN:Team\r\n\
MEMBER:urn:uuid:bob\r\nMEMBER:urn:uuid:carol\r\nEND:VCARD\r\n";

    #[test]
    fn converts_both_ways_and_keeps_the_rest() {
        let apple = convert(KIND, Dialect::Apple);
        assert_eq!(dialect_of(&apple), Some(Dialect::Apple));
        assert!(
            apple.contains("VERSION:3.0\r\n")
                && apple.contains("X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:carol\r\n")
        );
        assert!(
            apple.contains("FN:Team\r\nX-ADDRESSBOOKSERVER-MEMBER:urn:uuid:bob\r\n"),
            "{apple}"
        );
        assert_eq!(convert(&apple, Dialect::Kind), KIND, "round trip");
        assert_eq!(convert(KIND, Dialect::Kind), KIND, "already right: untouched");
        let person = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bob\r\nEND:VCARD\r\n";
        assert_eq!(convert(person, Dialect::Kind), person, "not a group: untouched");
    }

    #[test]
    fn a_book_speaks_the_dialect_of_its_groups_else_its_version() {
        let apple = convert(KIND, Dialect::Apple);
        assert_eq!(book_dialect([apple.as_str()], &[]), Some(Dialect::Apple));
        let v3 = ContactFields {
            version: "3.0".into(),
            ..ContactFields::default()
        };
        assert_eq!(
            book_dialect(["BEGIN:VCARD\r\nFN:x\r\nEND:VCARD\r\n"], &[v3]),
            Some(Dialect::Apple)
        );
        assert_eq!(book_dialect([], &[]), None);
        assert_eq!(
            property("item1.X-ADDRESSBOOKSERVER-MEMBER;TYPE=x:urn"),
            "X-ADDRESSBOOKSERVER-MEMBER"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".{0,200}") {
            let _ = convert(&text, Dialect::Apple);
            let _ = convert(&text, Dialect::Kind);
        }
    }
}
