//! Contact patches: the changed fields are applied to the lines they were read from, in the
//! card's own dialect; every other line (the photo, unknown X- properties, other EMAIL and TEL
//! lines, `item1.` groups and their Apple labels, unknown components of N, ADR and ORG) stays
//! byte for byte, and REV is updated (RFC 6350 §6.7.4).

use serde_json::Value;

use super::card::{
    Card, Edits, Version, edit_categories, edit_rev, edit_text, normalize_categories, set_param,
    string_change, valid_date, with_value, write_date,
};
use super::tables::{ADDRESS_PARTS, ADDRESSES, NAME_PARTS, ORG_PARTS, PHONES, URLS, classify};
use super::{READ_ONLY, computed_file_as, computed_full_name, fields, photo_line, sniff};
use crate::formats::item::{FieldSet, PatchError};
use crate::formats::lines::{escape_text, split_raw};

/// Every writable key besides the slot tables' (names, addresses, phones, web pages).
const SINGLE: [&str; 13] = [
    "FullName",
    "FileAs",
    "NickName",
    "JobTitle",
    "Profession",
    "Email1Address",
    "Email1DisplayName",
    "Email2Address",
    "Email3Address",
    "Birthday",
    "Anniversary",
    "IMAddress",
    "Body",
];

/// Applies `changes` to the stored card `body`.
pub fn patch(body: &str, changes: &FieldSet) -> Result<String, PatchError> {
    patch_at(body, changes, chrono::Utc::now())
}

fn known(key: &str) -> bool {
    SINGLE.contains(&key)
        || key == "Categories"
        || NAME_PARTS.iter().any(|(_, k)| *k == key)
        || ORG_PARTS.iter().any(|(_, k)| *k == key)
        || PHONES.iter().any(|(k, _, _)| *k == key)
        || URLS.iter().any(|(k, _)| *k == key)
        || ADDRESSES.iter().any(|(kind, _)| {
            key.strip_prefix(kind)
                .and_then(|r| r.strip_prefix("Address"))
                .is_some_and(|part| ADDRESS_PARTS.iter().any(|(_, p)| *p == part))
        })
}

/// A requested picture change: `Some(None)` removes it.
type PictureChange = Option<Option<(String, Vec<u8>)>>;

fn picture_change(value: &Value) -> Result<PictureChange, PatchError> {
    let bad = |why: &str| PatchError::field("Picture", why);
    match value {
        Value::Null => Ok(Some(None)),
        Value::Object(o) => {
            let data = o
                .get("data")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("`data` missing"))?;
            let bytes = super::decode_base64(data).ok_or_else(|| bad("`data` is not base64"))?;
            let mime = o
                .get("mime")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .unwrap_or_else(|| sniff(&bytes).to_owned());
            Ok(Some(Some((mime, bytes))))
        }
        _ => Err(bad("expected {mime, data} or null")),
    }
}

/// [`patch`] with the REV time given.
pub(crate) fn patch_at(
    body: &str,
    changes: &FieldSet,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, PatchError> {
    let card = Card::parse(body).map_err(PatchError::Unreadable)?;
    let s = classify(&card);
    let current = fields(&card, &s);
    let mut next = current.clone();
    let mut picture: PictureChange = None;
    for (key, value) in changes {
        if READ_ONLY.contains(&key.as_str()) {
            continue;
        }
        if key == "Picture" {
            picture = picture_change(value)?;
            continue;
        }
        if !known(key) {
            return Err(PatchError::field(key, "not a contact field"));
        }
        let value = string_change(key, value)?;
        let value = if key == "Categories" {
            value.and_then(|c| normalize_categories(&c))
        } else {
            value
        };
        match value {
            Some(v) if (key == "Birthday" || key == "Anniversary") && !valid_date(&v) => {
                return Err(PatchError::field(key, "expected YYYY-MM-DD"));
            }
            Some(v) => {
                next.insert(key.clone(), Value::String(v.trim().to_owned()));
            }
            None => {
                next.remove(key);
            }
        }
    }
    if picture.as_ref().is_some_and(|p| *p == super::photo(body)) {
        picture = None;
    }
    let changed = |key: &str| current.get(key) != next.get(key);
    let text = |key: &str| next.get(key).and_then(Value::as_str).map(str::to_owned);
    let v = card.version;
    let mut edits = Edits::default();

    if changed("FullName") {
        let name = text("FullName").unwrap_or_else(|| computed_full_name(&next));
        match s.fn_ {
            Some(i) => edits.set(i, with_value(card.head(i), &escape_text(&name))),
            None => edits.insert.push(format!("FN:{}", escape_text(&name))),
        }
    }
    structured(
        &card,
        s.n,
        "N",
        "",
        5,
        &NAME_PARTS,
        "",
        &current,
        &next,
        true,
        &mut edits,
    );
    if changed("FileAs") {
        let value = text("FileAs");
        match s.file_as {
            Some(i) => edit_text(&card, Some(i), "X-OUTLOOK-FILE-AS", value.as_deref(), &mut edits),
            None if value != computed_file_as(&next) => {
                edit_text(&card, None, "X-OUTLOOK-FILE-AS", value.as_deref(), &mut edits)
            }
            None => {}
        }
    }
    for (key, line, name) in [
        ("NickName", s.nickname, "NICKNAME"),
        ("JobTitle", s.title, "TITLE"),
        ("Profession", s.role, "ROLE"),
    ] {
        if changed(key) {
            edit_text(&card, line, name, text(key).as_deref(), &mut edits);
        }
    }
    structured(
        &card, s.org, "ORG", "", 2, &ORG_PARTS, "", &current, &next, false, &mut edits,
    );
    emails(&card, &s.emails, &current, &next, &mut edits);
    for (k, (key, v3, v4)) in PHONES.iter().enumerate() {
        if changed(key) {
            let types = if v == Version::V3 { v3 } else { v4 };
            let fresh = |n: &str| format!("TEL;TYPE={types}:{}", escape_text(n));
            match (s.phones[k], text(key)) {
                (Some(i), Some(n)) => {
                    let line = card.line(i);
                    let scheme = line.value().to_ascii_lowercase().starts_with("tel:");
                    let value = if scheme {
                        format!("tel:{}", n.replace(' ', "-"))
                    } else {
                        escape_text(&n)
                    };
                    edits.set(i, with_value(card.head(i), &value));
                }
                (Some(i), None) => edits.remove(i),
                (None, Some(n)) => edits.insert.push(fresh(&n)),
                (None, None) => {}
            }
        }
    }
    for (k, (kind, t)) in ADDRESSES.iter().enumerate() {
        let prefix = format!("{kind}Address");
        let params = t.map(|t| format!(";TYPE={}", v.types(t))).unwrap_or_default();
        let touched = structured(
            &card,
            s.addresses[k],
            "ADR",
            &params,
            7,
            &ADDRESS_PARTS,
            &prefix,
            &current,
            &next,
            false,
            &mut edits,
        );
        if touched {
            // The formatted label no longer matches the address (RFC 2426 §3.2.2, RFC 6350 §6.3.1).
            if let Some(i) = s.addresses[k]
                && let Some(Some(content)) = edits.replace.get(&i).cloned()
            {
                let line = card.doc.new_line(&content);
                edits.set(
                    i,
                    with_value(&set_param(line.head(), "LABEL", None), line.value()),
                );
            }
            for &(i, label_kind) in &s.labels {
                if label_kind == k {
                    edits.remove(i);
                }
            }
        }
    }
    for (key, line, v4_name, v3_name) in [
        ("Birthday", s.bday, "BDAY", "BDAY"),
        ("Anniversary", s.anniversary, "ANNIVERSARY", "X-ANNIVERSARY"),
    ] {
        if !changed(key) {
            continue;
        }
        match (line, text(key)) {
            (Some(i), Some(d)) => {
                let old = card.line(i);
                let (param, value) = write_date(v, &d, !old.value().contains('-'));
                let head = set_param(card.head(i), "VALUE", None);
                let head = set_param(&head, "X-APPLE-OMIT-YEAR", param.map(|_| "1604"));
                edits.set(i, with_value(&head, &value));
            }
            (Some(i), None) => edits.remove(i),
            (None, Some(d)) => {
                let (param, value) = write_date(v, &d, false);
                let name = if v == Version::V4 { v4_name } else { v3_name };
                let param = param.map(|p| format!(";{p}")).unwrap_or_default();
                edits.insert.push(format!("{name}{param}:{value}"));
            }
            (None, None) => {}
        }
    }
    for (k, (key, t)) in URLS.iter().enumerate() {
        if changed(key) {
            let params = t.map(|t| format!(";TYPE={}", v.types(t))).unwrap_or_default();
            match (s.urls[k], text(key)) {
                (Some(i), Some(u)) => edits.set(i, with_value(card.head(i), &u)),
                (Some(i), None) => edits.remove(i),
                (None, Some(u)) => edits.insert.push(format!("URL{params}:{u}")),
                (None, None) => {}
            }
        }
    }
    if changed("IMAddress") {
        im(&card, s.im, text("IMAddress"), &mut edits);
    }
    if changed("Body") {
        edit_text(&card, s.note, "NOTE", text("Body").as_deref(), &mut edits);
    }
    if changed("Categories") {
        edit_categories(&card, &s.categories, text("Categories").as_deref(), &mut edits);
    }
    if let Some(picture) = picture {
        let first = s.photos.first().copied();
        for &i in s.photos.iter().skip(usize::from(picture.is_some())) {
            edits.remove(i);
        }
        if let Some((mime, bytes)) = picture {
            edits.put(
                first,
                |_| photo_line(v, &mime, &bytes),
                photo_line(v, &mime, &bytes),
            );
        }
    }
    if edits.is_empty() {
        return Ok(body.to_owned());
    }
    if edits
        .replace
        .keys()
        .any(|&i| super::quoted_printable(card.line(i)))
    {
        return Err(PatchError::Unfaithful(
            "the changed fields are stored in vCard 2.1 quoted-printable lines".into(),
        ));
    }
    edit_rev(&card, now, &mut edits);
    Ok(edits.apply(&card))
}

/// Rewrites the components of a structured property whose fields changed; the other components
/// stay as written. A property left with no component is removed unless `keep` (N is required
/// in version 3). Returns whether anything changed.
#[allow(clippy::too_many_arguments)]
fn structured(
    card: &Card,
    line: Option<usize>,
    name: &str,
    params: &str,
    min: usize,
    parts: &[(usize, &str)],
    prefix: &str,
    current: &FieldSet,
    next: &FieldSet,
    keep: bool,
    edits: &mut Edits,
) -> bool {
    let key = |k: &str| format!("{prefix}{k}");
    if parts
        .iter()
        .all(|(_, k)| current.get(&key(k)) == next.get(&key(k)))
    {
        return false;
    }
    let mut comps: Vec<String> = match line {
        Some(i) => split_raw(card.line(i).value(), ';')
            .into_iter()
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    };
    if comps.len() < min {
        comps.resize(min, String::new());
    }
    for &(idx, k) in parts {
        if current.get(&key(k)) != next.get(&key(k)) {
            let value = next.get(&key(k)).and_then(Value::as_str).unwrap_or("");
            comps[idx] = escape_text(value);
        }
    }
    let empty = comps.iter().all(|c| c.trim().is_empty());
    let value = comps.join(";");
    match line {
        Some(i) if empty && !keep => edits.remove(i),
        Some(i) => edits.set(i, with_value(card.head(i), &value)),
        None if empty => {}
        None => edits.insert.push(format!("{name}{params}:{value}")),
    }
    true
}

/// Email1–3: the slot's line gets the new address; Email1DisplayName is the first line's X-CN.
fn emails(card: &Card, lines: &[usize], current: &FieldSet, next: &FieldSet, edits: &mut Edits) {
    let v = card.version;
    let get = |k: &str| next.get(k).and_then(Value::as_str);
    for n in 0..3 {
        let key = format!("Email{}Address", n + 1);
        let name_changed = n == 0 && current.get("Email1DisplayName") != next.get("Email1DisplayName");
        if current.get(&key) == next.get(&key) && !name_changed {
            continue;
        }
        let line = lines.get(n).copied();
        let Some(address) = get(&key) else {
            if let Some(i) = line {
                edits.remove(i);
            }
            continue;
        };
        let (mut head, old) = match line {
            Some(i) => (card.head(i).to_owned(), card.line(i).value().to_owned()),
            None => {
                let fresh = match (v, n) {
                    (Version::V3, 0) => "EMAIL;TYPE=INTERNET,PREF",
                    (Version::V3, _) => "EMAIL;TYPE=INTERNET",
                    (Version::V4, 0) => "EMAIL;PREF=1",
                    (Version::V4, _) => "EMAIL",
                };
                (fresh.to_owned(), String::new())
            }
        };
        if name_changed {
            head = set_param(&head, "CN", None);
            head = set_param(&head, "X-CN", get("Email1DisplayName"));
        }
        let scheme = old.to_ascii_lowercase().starts_with("mailto:");
        let value = if scheme {
            format!("mailto:{address}")
        } else {
            escape_text(address)
        };
        match line {
            Some(i) => edits.set(i, with_value(&head, &value)),
            None => edits.insert.push(with_value(&head, &value)),
        }
    }
}

/// IMAddress: a URI (`xmpp:a@b`, `sip:…`) goes into IMPP (RFC 4770), a bare handle into
/// Outlook's X-MS-IMADDRESS; the line it was read from is rewritten when it can hold the value.
fn im(card: &Card, line: Option<usize>, value: Option<String>, edits: &mut Edits) {
    let is_uri = |t: &str| {
        t.split_once(':').is_some_and(|(s, _)| {
            !s.is_empty()
                && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        })
    };
    let fresh = |t: &str| {
        if is_uri(t) {
            format!("IMPP:{t}")
        } else {
            format!("X-MS-IMADDRESS:{}", escape_text(t))
        }
    };
    match (line, value) {
        (Some(i), Some(t)) => {
            if card.name(i) == "IMPP" && !is_uri(&t) {
                edits.remove(i);
                edits.insert.push(fresh(&t));
            } else if card.name(i) == "IMPP" {
                edits.set(i, with_value(card.head(i), &t));
            } else {
                edits.set(i, with_value(card.head(i), &escape_text(&t)));
            }
        }
        (Some(i), None) => edits.remove(i),
        (None, Some(t)) => edits.insert.push(fresh(&t)),
        (None, None) => {}
    }
}
