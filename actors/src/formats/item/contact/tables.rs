//! Which vCard line feeds which Outlook contact field: the phone, address, e-mail, web-page and
//! IM slots by TYPE parameters and Apple labels (RFC 6350 §6.4, RFC 2426 §3.3), and the lines of
//! the single-valued properties. Reading and patching share this one assignment, so a patch
//! rewrites exactly the line a field was read from.

use super::card::Card;

/// Outlook's phone fields, with the TYPE list a new line gets in version 3 and version 4.
pub const PHONES: [(&str, &str, &str); 12] = [
    ("PrimaryTelephoneNumber", "MAIN", "x-main"),
    ("BusinessTelephoneNumber", "WORK,VOICE", "work,voice"),
    ("Business2TelephoneNumber", "WORK,VOICE", "work,voice"),
    ("HomeTelephoneNumber", "HOME,VOICE", "home,voice"),
    ("Home2TelephoneNumber", "HOME,VOICE", "home,voice"),
    ("MobileTelephoneNumber", "CELL,VOICE", "cell,voice"),
    ("BusinessFaxNumber", "WORK,FAX", "work,fax"),
    ("HomeFaxNumber", "HOME,FAX", "home,fax"),
    ("PagerNumber", "PAGER", "pager"),
    ("CarTelephoneNumber", "CAR,VOICE", "x-car,voice"),
    (
        "AssistantTelephoneNumber",
        "X-ASSISTANT,VOICE",
        "x-assistant,voice",
    ),
    ("OtherTelephoneNumber", "VOICE", "voice"),
];

/// Outlook's three postal addresses by kind, with the TYPE a new ADR gets.
pub const ADDRESSES: [(&str, Option<&str>); 3] = [
    ("Business", Some("work")),
    ("Home", Some("home")),
    ("Other", None),
];

/// ADR components Outlook knows (RFC 6350 §6.3.1: post office box; extended address; street;
/// locality; region; postal code; country). The extended address is kept, never shown.
pub const ADDRESS_PARTS: [(usize, &str); 6] = [
    (0, "PostOfficeBox"),
    (2, "Street"),
    (3, "City"),
    (4, "State"),
    (5, "PostalCode"),
    (6, "Country"),
];

/// N components (RFC 6350 §6.2.2: family; given; additional; prefixes; suffixes).
pub const NAME_PARTS: [(usize, &str); 5] = [
    (0, "LastName"),
    (1, "FirstName"),
    (2, "MiddleName"),
    (3, "Title"),
    (4, "Suffix"),
];

/// ORG components (RFC 6350 §6.6.4: organization name; units …); units after the first are kept.
pub const ORG_PARTS: [(usize, &str); 2] = [(0, "CompanyName"), (1, "Department")];

/// Outlook's web-page fields, with the TYPE a new URL gets.
pub const URLS: [(&str, Option<&str>); 3] = [
    ("BusinessHomePage", Some("work")),
    ("PersonalHomePage", Some("home")),
    ("WebPage", None),
];

/// Properties that carry an IM address besides IMPP (RFC 4770, RFC 6350 §6.4.3): Outlook's own,
/// then the per-service ones Apple, Evolution and KDE write.
const IM_PROPERTIES: [&str; 13] = [
    "IMPP",
    "X-MS-IMADDRESS",
    "X-JABBER",
    "X-AIM",
    "X-ICQ",
    "X-MSN",
    "X-YAHOO",
    "X-SKYPE",
    "X-SKYPE-USERNAME",
    "X-GOOGLE-TALK",
    "X-GTALK",
    "X-GADUGADU",
    "X-QQ",
];

/// Anniversary properties: RFC 6350 §6.2.6, then the version 3 extensions in use.
const ANNIVERSARY_PROPERTIES: [&str; 4] = [
    "ANNIVERSARY",
    "X-ANNIVERSARY",
    "X-MS-ANNIVERSARY",
    "X-EVOLUTION-ANNIVERSARY",
];

/// FileAs sources: Outlook's, then Evolution's.
const FILE_AS_PROPERTIES: [&str; 2] = ["X-OUTLOOK-FILE-AS", "X-EVOLUTION-FILE-AS"];

/// The line each Outlook field is read from (indices into the card's lines).
#[derive(Debug, Default)]
pub struct Slots {
    pub n: Option<usize>,
    pub fn_: Option<usize>,
    pub file_as: Option<usize>,
    pub nickname: Option<usize>,
    pub org: Option<usize>,
    pub title: Option<usize>,
    pub role: Option<usize>,
    pub note: Option<usize>,
    pub bday: Option<usize>,
    pub anniversary: Option<usize>,
    pub im: Option<usize>,
    /// Every PHOTO line; the first inline one is the picture.
    pub photos: Vec<usize>,
    pub categories: Vec<usize>,
    /// Email1, Email2, Email3.
    pub emails: Vec<usize>,
    /// Indexed like [`PHONES`].
    pub phones: [Option<usize>; 12],
    /// Indexed like [`ADDRESSES`].
    pub addresses: [Option<usize>; 3],
    /// Version 3 LABEL lines (RFC 2426 §3.2.2) with their kind index into [`ADDRESSES`].
    pub labels: Vec<(usize, usize)>,
    /// Indexed like [`URLS`].
    pub urls: [Option<usize>; 3],
}

/// Assigns the card's lines to Outlook's fields.
pub fn classify(card: &Card) -> Slots {
    let mut s = Slots::default();
    let own = card.own();
    let by_pref = |name: &str| {
        let mut lines: Vec<usize> = own.iter().copied().filter(|&i| card.name(i) == name).collect();
        lines.sort_by_key(|&i| card.preference(i));
        lines
    };
    let emails = by_pref("EMAIL");
    let phones = by_pref("TEL");
    let addresses = by_pref("ADR");
    let urls = by_pref("URL");
    let mut ims: Vec<usize> = own
        .iter()
        .copied()
        .filter(|&i| IM_PROPERTIES.contains(&card.name(i)))
        .collect();
    ims.sort_by_key(|&i| card.preference(i));
    s.im = ims.first().copied();
    s.emails = emails.into_iter().take(3).collect();
    for i in phones {
        let kinds = card.kinds(i);
        if let Some(slot) = phone_candidates(&kinds)
            .into_iter()
            .find(|&k| s.phones[k].is_none())
        {
            s.phones[slot] = Some(i);
        }
    }
    for i in addresses {
        let k = address_kind(&card.kinds(i));
        if s.addresses[k].is_none() {
            s.addresses[k] = Some(i);
        }
    }
    for i in urls {
        let kinds = card.kinds(i);
        let k = if has(&kinds, &["work"]) {
            0
        } else if has(&kinds, &["home"]) {
            1
        } else {
            2
        };
        if s.urls[k].is_none() {
            s.urls[k] = Some(i);
        }
    }
    for &i in own {
        let line = card.line(i);
        let name = card.name(i);
        let first = |slot: &mut Option<usize>| {
            if slot.is_none() {
                *slot = Some(i);
            }
        };
        match name {
            "N" => first(&mut s.n),
            "FN" => first(&mut s.fn_),
            "NICKNAME" => first(&mut s.nickname),
            "ORG" => first(&mut s.org),
            "TITLE" => first(&mut s.title),
            "ROLE" => first(&mut s.role),
            "NOTE" => first(&mut s.note),
            "BDAY" => first(&mut s.bday),
            "PHOTO" => s.photos.push(i),
            "CATEGORIES" => s.categories.push(i),
            "LABEL" => s.labels.push((i, address_kind(&line.types()))),
            "X-ABDATE" if card.label(i).is_some_and(|l| l == "anniversary") => first(&mut s.anniversary),
            n if ANNIVERSARY_PROPERTIES.contains(&n) => first(&mut s.anniversary),
            n if FILE_AS_PROPERTIES.contains(&n) => first(&mut s.file_as),
            _ => {}
        }
    }
    s
}

fn has(kinds: &[String], any: &[&str]) -> bool {
    kinds.iter().any(|k| any.contains(&k.as_str()))
}

/// The phone slots a TEL line may fill, best first (indices into [`PHONES`]).
fn phone_candidates(kinds: &[String]) -> Vec<usize> {
    let home = has(kinds, &["home"]);
    if has(
        kinds,
        &[
            "assistant",
            "x-assistant",
            "x-ms-assistant",
            "x-evolution-assistant",
        ],
    ) {
        vec![10]
    } else if has(kinds, &["fax"]) {
        vec![if home { 7 } else { 6 }]
    } else if has(kinds, &["pager"]) {
        vec![8]
    } else if has(kinds, &["car", "x-car", "x-evolution-car"]) {
        vec![9]
    } else if has(kinds, &["cell", "mobile", "iphone", "x-mobile"]) {
        vec![5]
    } else if has(kinds, &["main", "x-main", "x-evolution-primary", "primary"]) {
        vec![0]
    } else if has(kinds, &["work"]) {
        vec![1, 2]
    } else if home {
        vec![3, 4]
    } else if has(kinds, &["pref"]) && kinds.iter().all(|k| k == "pref" || k == "voice") {
        vec![0]
    } else {
        vec![11]
    }
}

/// The address kind of an ADR or LABEL line (index into [`ADDRESSES`]).
fn address_kind(kinds: &[String]) -> usize {
    if has(kinds, &["work"]) {
        0
    } else if has(kinds, &["home"]) {
        1
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn phone_types_pick_outlook_fields() {
        let field = |list: &[&str]| PHONES[phone_candidates(&kinds(list))[0]].0;
        assert_eq!(field(&["work", "voice"]), "BusinessTelephoneNumber");
        assert_eq!(field(&["home", "fax"]), "HomeFaxNumber");
        assert_eq!(field(&["fax"]), "BusinessFaxNumber");
        assert_eq!(
            field(&["iphone", "cell", "voice", "pref"]),
            "MobileTelephoneNumber"
        );
        assert_eq!(field(&["pref"]), "PrimaryTelephoneNumber");
        assert_eq!(field(&["main"]), "PrimaryTelephoneNumber");
        assert_eq!(field(&["voice"]), "OtherTelephoneNumber");
        assert_eq!(field(&["other", "voice"]), "OtherTelephoneNumber");
        assert_eq!(field(&["x-assistant"]), "AssistantTelephoneNumber");
        assert_eq!(field(&["car"]), "CarTelephoneNumber");
        // Every written type list reads back as its own slot (first free one).
        for (k, (_, v3, v4)) in PHONES.iter().enumerate() {
            for types in [v3, v4] {
                let list: Vec<String> = types.split(',').map(|t| t.to_ascii_lowercase()).collect();
                assert!(phone_candidates(&list).contains(&k), "{types}");
            }
        }
    }
}
