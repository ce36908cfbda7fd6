//! The contact field set: a vCard individual (RFC 6350 version 4, RFC 2426 version 3) read as
//! Outlook's ContactItem properties, patched in place, or created in a book's own dialect.
//!
//! ```text
//!   vCard ──card::Card──► lines ──tables::classify──► slots (which line feeds which field)
//!        slots ──read──► FieldSet          slots + changes ──patch──► only those lines rewritten
//!   create = patch of a skeleton card (so a new card is written by the same code as an edit)
//! ```
//!
//! Extensions beyond Outlook's names, read and written the same way by every client we checked:
//! FileAs in `X-OUTLOOK-FILE-AS` (else Evolution's `X-EVOLUTION-FILE-AS`; without either it is
//! computed as Outlook does, "Last, First"), the anniversary in version 3 as `X-ANNIVERSARY`
//! (Apple's `X-ABDATE` labelled `_$!<Anniversary>!$_` and Outlook's `X-MS-ANNIVERSARY` read too),
//! an IM handle without a URI scheme as Outlook's `X-MS-IMADDRESS`, `Email1DisplayName` as an
//! `X-CN` parameter of the first EMAIL, and a year-less date (`--0517`) as Apple's year 1604.

pub(crate) mod card;
mod patch;
pub(crate) mod tables;
#[cfg(test)]
mod tests;

use base64::Engine as _;
use serde_json::Value;

use super::{FieldSet, PatchError};
use crate::formats::lines::{Line, split_escaped, split_raw};
use card::{Card, read_categories, read_date};
use tables::{ADDRESS_PARTS, ADDRESSES, NAME_PARTS, ORG_PARTS, PHONES, Slots, URLS, classify};

pub use card::Version;
pub use patch::patch;

/// Keys a patch ignores (read-only).
pub const READ_ONLY: [&str; 3] = ["GlobalUid", "HasPicture", "Unsupported"];

/// Reads a contact's field set.
pub fn read(body: &str) -> Result<FieldSet, String> {
    let card = Card::parse(body)?;
    let slots = classify(&card);
    Ok(fields(&card, &slots))
}

/// The contact's picture (PHOTO, RFC 6350 §6.2.4 `data:` URI; RFC 2426 §3.1.4 `ENCODING=b`) as
/// `(mime type, bytes)`; `None` when there is none or it is only a URL.
pub fn photo(body: &str) -> Option<(String, Vec<u8>)> {
    let card = Card::parse(body).ok()?;
    classify(&card)
        .photos
        .iter()
        .find_map(|&i| inline_photo(card.line(i)))
}

/// A new vCard 4.0 from a field set.
pub fn create(uid: &str, fields: &FieldSet) -> Result<String, PatchError> {
    create_in(Version::V4, uid, fields)
}

/// A new vCard in `version` (the book's dialect: see `group::book_dialect`).
pub fn create_in(version: Version, uid: &str, fields: &FieldSet) -> Result<String, PatchError> {
    let skeleton = card::skeleton(version, uid, &["N:;;;;", "FN:"]);
    let mut fields = fields.clone();
    let has_name = fields
        .get("FullName")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.trim().is_empty());
    if !has_name {
        fields.insert("FullName".into(), Value::String(computed_full_name(&fields)));
    }
    patch::patch_at(&skeleton, &fields, chrono::Utc::now())
}

/// The field set of a parsed card.
pub(crate) fn fields(card: &Card, s: &Slots) -> FieldSet {
    let mut f = FieldSet::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(v) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
            f.insert(key.to_owned(), Value::String(v));
        }
    };
    put("GlobalUid", card.text(card.find("UID")));
    put("FullName", card.text(s.fn_));
    structured(card, s.n, &NAME_PARTS, "", &mut put);
    structured(card, s.org, &ORG_PARTS, "", &mut put);
    put("NickName", s.nickname.map(|i| list(card.line(i).value(), ", ")));
    put("JobTitle", card.text(s.title));
    put("Profession", card.text(s.role));
    for (n, &i) in s.emails.iter().enumerate() {
        let value = card.text(Some(i)).map(|v| strip_scheme(&v, "mailto:"));
        put(&format!("Email{}Address", n + 1), value);
        if n == 0 {
            let line = card.line(i);
            put(
                "Email1DisplayName",
                line.param("X-CN").or_else(|| line.param("CN")),
            );
        }
    }
    for (k, (key, _, _)) in PHONES.iter().enumerate() {
        put(key, card.text(s.phones[k]).map(|v| strip_scheme(&v, "tel:")));
    }
    for (k, (kind, _)) in ADDRESSES.iter().enumerate() {
        structured(
            card,
            s.addresses[k],
            &ADDRESS_PARTS,
            &format!("{kind}Address"),
            &mut put,
        );
    }
    put("Birthday", s.bday.and_then(|i| read_date(card.line(i).value())));
    put(
        "Anniversary",
        s.anniversary.and_then(|i| read_date(card.line(i).value())),
    );
    for (k, (key, _)) in URLS.iter().enumerate() {
        put(key, card.text(s.urls[k]));
    }
    put("IMAddress", card.text(s.im));
    put("Body", card.text(s.note));
    put("Categories", read_categories(card, &s.categories));
    let file_as = card.text(s.file_as).or_else(|| computed_file_as(&f));
    if let Some(v) = file_as {
        f.insert("FileAs".into(), Value::String(v));
    }
    let has_picture = s.photos.iter().any(|&i| is_inline(card.line(i)));
    f.insert("HasPicture".into(), Value::Bool(has_picture));
    let encoded = card
        .own()
        .iter()
        .filter(|&&i| quoted_printable(card.line(i)))
        .count();
    if encoded > 0 {
        let why = format!(
            "{encoded} propert(ies) in vCard 2.1 quoted-printable encoding, which is read as written \
             and not rewritten from a field set"
        );
        f.insert("Unsupported".into(), Value::String(why));
    }
    f
}

/// A vCard 2.1 line in quoted-printable (its value, and possibly its line breaks, are encoded).
pub(crate) fn quoted_printable(line: &Line) -> bool {
    line.param("ENCODING")
        .is_some_and(|e| e.eq_ignore_ascii_case("quoted-printable"))
        || line.types().iter().any(|t| t == "quoted-printable")
}

/// Reads the components of a structured value into `prefix + key` fields; a component's list
/// items are joined with spaces (a street's with newlines).
fn structured(
    card: &Card,
    line: Option<usize>,
    parts: &[(usize, &str)],
    prefix: &str,
    put: &mut impl FnMut(&str, Option<String>),
) {
    let Some(i) = line else { return };
    let raw = split_raw(card.line(i).value(), ';');
    for &(idx, key) in parts {
        let joiner = if key == "Street" { "\n" } else { " " };
        put(&format!("{prefix}{key}"), raw.get(idx).map(|c| list(c, joiner)));
    }
}

/// A comma-separated list value (RFC 6350 §3.4), unescaped and joined.
fn list(raw: &str, joiner: &str) -> String {
    split_escaped(raw, ',')
        .into_iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(joiner)
}

fn strip_scheme(value: &str, scheme: &str) -> String {
    match value.get(..scheme.len()) {
        Some(head) if head.eq_ignore_ascii_case(scheme) => value[scheme.len()..].to_owned(),
        _ => value.to_owned(),
    }
}

fn text_of<'a>(f: &'a FieldSet, key: &str) -> Option<&'a str> {
    f.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Outlook's default FileAs, "Last, First"; else the company, the full name, the address.
pub(crate) fn computed_file_as(f: &FieldSet) -> Option<String> {
    match (text_of(f, "LastName"), text_of(f, "FirstName")) {
        (Some(last), Some(first)) => Some(format!("{last}, {first}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
        (None, None) => ["CompanyName", "FullName", "Email1Address"]
            .iter()
            .find_map(|k| text_of(f, k))
            .map(str::to_owned),
    }
}

/// A full name from the name parts, as Outlook composes it; else the company or the address.
pub(crate) fn computed_full_name(f: &FieldSet) -> String {
    let parts: Vec<&str> = ["Title", "FirstName", "MiddleName", "LastName", "Suffix"]
        .iter()
        .filter_map(|k| text_of(f, k))
        .collect();
    if !parts.is_empty() {
        return parts.join(" ");
    }
    ["CompanyName", "Email1Address"]
        .iter()
        .find_map(|k| text_of(f, k))
        .unwrap_or("")
        .to_owned()
}

/// A PHOTO line holds the picture itself (not a URL).
fn is_inline(line: &Line) -> bool {
    let value = line.value().trim_start();
    value.get(..5).is_some_and(|h| h.eq_ignore_ascii_case("data:"))
        || line
            .param("ENCODING")
            .is_some_and(|e| e.eq_ignore_ascii_case("b") || e.eq_ignore_ascii_case("base64"))
}

fn inline_photo(line: &Line) -> Option<(String, Vec<u8>)> {
    if !is_inline(line) {
        return None;
    }
    let value = line.value().trim();
    let (mime, data) = match value.get(..5) {
        Some(h) if h.eq_ignore_ascii_case("data:") => {
            let (meta, data) = value[5..].split_once(',')?;
            let mime = meta.strip_suffix(";base64")?;
            (Some(mime.to_ascii_lowercase()), data)
        }
        _ => (line.param("TYPE").map(|t| mime_of_type(&t)), value),
    };
    let bytes = decode_base64(data)?;
    let mime = mime
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| sniff(&bytes).to_owned());
    Some((mime, bytes))
}

/// Lenient base64: whitespace and missing padding are tolerated, as servers fold and clients trim.
pub(crate) fn decode_base64(data: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let clean: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    engine.decode(clean).ok()
}

/// Version 3 TYPE (`JPEG`, or a whole media type) → media type.
fn mime_of_type(t: &str) -> String {
    let t = t.to_ascii_lowercase();
    if t.contains('/') {
        t
    } else if t == "jpg" {
        "image/jpeg".into()
    } else {
        format!("image/{t}")
    }
}

/// The media type of image bytes by their magic number.
pub(crate) fn sniff(bytes: &[u8]) -> &'static str {
    match bytes {
        [0xFF, 0xD8, ..] => "image/jpeg",
        [0x89, b'P', b'N', b'G', ..] => "image/png",
        [b'G', b'I', b'F', b'8', ..] => "image/gif",
        _ => "application/octet-stream",
    }
}

/// A PHOTO line in the card's dialect.
pub(crate) fn photo_line(version: Version, mime: &str, bytes: &[u8]) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    match version {
        Version::V4 => format!("PHOTO:data:{mime};base64,{data}"),
        Version::V3 => {
            let kind = mime.strip_prefix("image/").unwrap_or(mime).to_ascii_uppercase();
            format!("PHOTO;ENCODING=b;TYPE={kind}:{data}")
        }
    }
}
