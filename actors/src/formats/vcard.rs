//! vCards (RFC 6350 version 4, RFC 2426 version 3): name, e-mail addresses, kind and group
//! members, including Apple's version 3 group form (`X-ADDRESSBOOKSERVER-KIND:group` with
//! `X-ADDRESSBOOKSERVER-MEMBER`).

use calcard::vcard::{VCard, VCardKind, VCardProperty, VCardValue};
use calcard::{Entry, Parser};
use serde::{Deserialize, Serialize};

use super::text::unfold_to_string;

/// What the mirror keeps about a vCard besides its bytes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ContactFields {
    pub uid: String,
    /// `individual` or `group` (RFC 6350 §6.1.4; `org`, `location` … are read as `individual`).
    pub kind: String,
    pub name: String,
    pub emails: Vec<String>,
    /// Member URIs of a group (RFC 6350 §6.6.5), e.g. `urn:uuid:…`.
    pub members: Vec<String>,
    /// `3.0` or `4.0`.
    pub version: String,
}

/// Reads one vCard. An error here is recorded with the item (invariant 4).
pub fn parse_contact(body: &[u8]) -> Result<ContactFields, String> {
    let text = unfold_to_string(body)?;
    let card = match Parser::new(&text).entry() {
        Entry::VCard(card) => card,
        Entry::ICalendar(_) => return Err("an iCalendar object where a vCard was expected".into()),
        Entry::UnterminatedComponent(_) => return Err("BEGIN:VCARD without END:VCARD".into()),
        Entry::Eof => return Err("empty: no BEGIN:VCARD".into()),
        _ => return Err("not a vCard".into()),
    };
    let uid = card.uid().ok_or("no UID (RFC 6350 §6.7.6)")?.to_owned();
    let other = |name: &str| VCardProperty::Other(name.to_owned());
    let is_group = card
        .property(&VCardProperty::Kind)
        .and_then(|e| e.values.first())
        .is_some_and(|v| match v {
            VCardValue::Kind(k) => *k == VCardKind::Group,
            other => other.as_text().is_some_and(|t| t.eq_ignore_ascii_case("group")),
        })
        || first_text(&card, &other("X-ADDRESSBOOKSERVER-KIND"))
            .is_some_and(|t| t.eq_ignore_ascii_case("group"));
    let name = first_text(&card, &VCardProperty::Fn)
        .map(str::to_owned)
        .or_else(|| name_from_n(&card))
        .unwrap_or_default();
    let emails = texts(&card, &VCardProperty::Email);
    let mut members = texts(&card, &VCardProperty::Member);
    members.extend(texts(&card, &other("X-ADDRESSBOOKSERVER-MEMBER")));
    let version = card
        .property(&VCardProperty::Version)
        .and_then(|e| e.values.first())
        .and_then(VCardValue::as_text)
        .unwrap_or("3.0")
        .to_owned();
    Ok(ContactFields {
        uid,
        kind: if is_group { "group" } else { "individual" }.to_owned(),
        name,
        emails,
        members,
        version,
    })
}

fn first_text<'a>(card: &'a VCard, prop: &VCardProperty) -> Option<&'a str> {
    card.property(prop)
        .and_then(|e| e.values.first())
        .and_then(VCardValue::as_text)
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn texts(card: &VCard, prop: &VCardProperty) -> Vec<String> {
    card.properties(prop)
        .filter_map(|e| e.values.first().and_then(VCardValue::as_text))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

/// RFC 6350 §6.2.2: N is family;given;additional;prefixes;suffixes → "given family".
fn name_from_n(card: &VCard) -> Option<String> {
    let entry = card.property(&VCardProperty::N)?;
    let parts: Vec<String> = entry
        .values
        .iter()
        .map(|v| match v {
            VCardValue::Component(c) => c.join(" "),
            other => other.as_text().unwrap_or_default().to_owned(),
        })
        .collect();
    let family = parts.first().cloned().unwrap_or_default();
    let given = parts.get(1).cloned().unwrap_or_default();
    let name = format!("{given} {family}").trim().to_owned();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vcard_4_and_3() {
        let v4 = "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:urn:uuid:a1\r\nFN:Ada Lovelace\r\nEMAIL;TYPE=work:ada@example.org\r\nEMAIL:ada@home.example\r\nEND:VCARD\r\n";
        let c = parse_contact(v4.as_bytes()).unwrap();
        assert_eq!(c.uid, "urn:uuid:a1");
        assert_eq!(c.name, "Ada Lovelace");
        assert_eq!(c.emails, vec!["ada@example.org", "ada@home.example"]);
        assert_eq!((c.kind.as_str(), c.version.as_str()), ("individual", "4.0"));

        let v3 = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:b2\r\nN:Hopper;Grace;;;\r\nEMAIL;TYPE=INTERNET:grace@example.org\r\nEND:VCARD\r\n";
        let c = parse_contact(v3.as_bytes()).unwrap();
        assert_eq!(c.name, "Grace Hopper");
        assert_eq!(c.version, "3.0");
    }

    #[test]
    fn reads_both_group_forms() {
        let v4 = "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:g1\r\nKIND:group\r\nFN:Team\r\nMEMBER:urn:uuid:a1\r\nMEMBER:urn:uuid:b2\r\nEND:VCARD\r\n";
        let c = parse_contact(v4.as_bytes()).unwrap();
        assert_eq!(c.kind, "group");
        assert_eq!(c.members, vec!["urn:uuid:a1", "urn:uuid:b2"]);
        let apple = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:g2\r\nFN:Team\r\nX-ADDRESSBOOKSERVER-KIND:group\r\nX-ADDRESSBOOKSERVER-MEMBER:urn:uuid:a1\r\nEND:VCARD\r\n";
        let c = parse_contact(apple.as_bytes()).unwrap();
        assert_eq!(c.kind, "group");
        assert_eq!(c.members, vec!["urn:uuid:a1"]);
    }

    #[test]
    fn folded_utf8_and_broken_cards() {
        let folded = b"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:f\r\nFN:J\xc3\r\n \xbcrgen\r\nEND:VCARD\r\n";
        assert_eq!(parse_contact(folded).unwrap().name, "Jürgen");
        assert!(parse_contact(b"BEGIN:VCARD\r\nFN:x\r\n").is_err());
        assert!(parse_contact(b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:x\r\nEND:VCARD\r\n").is_err());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = parse_contact(&bytes);
        }

        #[test]
        fn names_and_emails_round_trip(name in "[A-Za-z][A-Za-z0-9äöüß]{0,30}", user in "[a-z]{1,12}") {
            let vcf = format!("BEGIN:VCARD\r\nVERSION:4.0\r\nUID:u\r\nFN:{name}\r\nEMAIL:{user}@example.org\r\nEND:VCARD\r\n");
            let c = parse_contact(vcf.as_bytes()).unwrap();
            proptest::prop_assert_eq!(c.name, name);
            proptest::prop_assert_eq!(c.emails, vec![format!("{user}@example.org")]);
        }
    }
}
