//! The distribution-list field set: a vCard group in either dialect, version 4 `KIND:group` with
//! `MEMBER` (RFC 6350 §6.1.4, §6.6.5) or Apple's version 3 `X-ADDRESSBOOKSERVER-KIND:group`
//! with `X-ADDRESSBOOKSERVER-MEMBER`, read as Outlook's DistListItem.
//!
//! ```text
//!   MEMBER:urn:uuid:X                  → {"Uid": "X"}        (the feed resolves Name/Address)
//!   MEMBER;CN=Bob:mailto:bob@example   → {"Name": "Bob", "Address": "bob@example"}
//!   patch Members: lines whose target stays are kept byte for byte, the others removed,
//!                  new members appended in the property the card already uses
//! ```

use serde_json::{Value, json};

use super::contact::card::{
    Card, Edits, Version, edit_categories, edit_rev, edit_text, normalize_categories, read_categories,
    set_param, skeleton, string_change, with_value,
};
use super::{FieldSet, PatchError};
use crate::formats::lines::{escape_text, split_raw, unescape_text};

const MEMBER: &str = "MEMBER";
const APPLE_MEMBER: &str = "X-ADDRESSBOOKSERVER-MEMBER";
const APPLE_KIND: &str = "X-ADDRESSBOOKSERVER-KIND";

/// Reads a group's field set.
pub fn read(body: &str) -> Result<FieldSet, String> {
    let card = Card::parse(body)?;
    Ok(fields(&card))
}

fn fields(card: &Card) -> FieldSet {
    let mut f = FieldSet::new();
    if let Some(uid) = card.text(card.find("UID")) {
        f.insert("GlobalUid".into(), Value::String(uid));
    }
    if let Some(name) = name(card) {
        f.insert("DLName".into(), Value::String(name));
    }
    let members: Vec<Value> = member_lines(card).iter().map(|&i| member(card, i).0).collect();
    f.insert("Members".into(), Value::Array(members));
    if let Some(body) = card.text(card.find("NOTE")) {
        f.insert("Body".into(), Value::String(body));
    }
    let categories = card.find_all("CATEGORIES");
    if let Some(c) = read_categories(card, &categories) {
        f.insert("Categories".into(), Value::String(c));
    }
    f
}

/// FN, else the family-name component of N (Apple writes both).
fn name(card: &Card) -> Option<String> {
    card.text(card.find("FN")).or_else(|| {
        let n = card.line(card.find("N")?);
        let first = unescape_text(split_raw(n.value(), ';').first()?);
        let first = first.trim();
        (!first.is_empty()).then(|| first.to_owned())
    })
}

fn member_lines(card: &Card) -> Vec<usize> {
    card.own()
        .iter()
        .copied()
        .filter(|&i| matches!(card.name(i), MEMBER | APPLE_MEMBER))
        .collect()
}

/// A member line as a field-set entry, and its target for matching (lower case URI).
fn member(card: &Card, i: usize) -> (Value, String) {
    let line = card.line(i);
    let uri = line.value().trim();
    let lower = uri.to_ascii_lowercase();
    let value = if lower.starts_with("urn:uuid:") {
        json!({"Uid": &uri["urn:uuid:".len()..]})
    } else {
        let address = if lower.starts_with("mailto:") {
            &uri["mailto:".len()..]
        } else {
            uri
        };
        let address = address.split('?').next().unwrap_or(address);
        match line.param("CN").filter(|n| !n.trim().is_empty()) {
            Some(name) => json!({"Name": name.trim(), "Address": address}),
            None => json!({"Address": address}),
        }
    };
    (value, lower)
}

/// The URI a field-set member is written as, and its CN.
fn target(m: &Value) -> Result<(String, Option<String>), PatchError> {
    let bad = || PatchError::field("Members", "each member needs `Uid` or `Address`");
    let text = |k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    if let Some(uid) = text("Uid") {
        let uri = if uid.to_ascii_lowercase().starts_with("urn:") {
            uid.to_owned()
        } else {
            format!("urn:uuid:{uid}")
        };
        return Ok((uri, None));
    }
    let address = text("Address").ok_or_else(bad)?;
    let uri = if address.contains('@') && !address.to_ascii_lowercase().starts_with("mailto:") {
        format!("mailto:{address}")
    } else {
        address.to_owned()
    };
    Ok((uri, text("Name").map(str::to_owned)))
}

/// Applies `changes` to the stored group `body`.
pub fn patch(body: &str, changes: &FieldSet) -> Result<String, PatchError> {
    patch_at(body, changes, chrono::Utc::now())
}

fn patch_at(
    body: &str,
    changes: &FieldSet,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, PatchError> {
    let card = Card::parse(body).map_err(PatchError::Unreadable)?;
    let current = fields(&card);
    let mut edits = Edits::default();
    for (key, value) in changes {
        match key.as_str() {
            "GlobalUid" | "Unsupported" => {}
            "DLName" => {
                let new = string_change(key, value)?;
                if new.as_deref().map(str::trim) != current.get("DLName").and_then(Value::as_str) {
                    rename(
                        &card,
                        current.get("DLName").and_then(Value::as_str),
                        new.as_deref(),
                        &mut edits,
                    );
                }
            }
            "Body" => {
                let new = string_change(key, value)?;
                if new.as_deref().map(str::trim) != current.get("Body").and_then(Value::as_str) {
                    edit_text(
                        &card,
                        card.find("NOTE"),
                        "NOTE",
                        new.as_deref().map(str::trim),
                        &mut edits,
                    );
                }
            }
            "Categories" => {
                let new = string_change(key, value)?.and_then(|c| normalize_categories(&c));
                if new.as_deref() != current.get("Categories").and_then(Value::as_str) {
                    let lines = card.find_all("CATEGORIES");
                    edit_categories(&card, &lines, new.as_deref(), &mut edits);
                }
            }
            "Members" => members(&card, value, &mut edits)?,
            other => return Err(PatchError::field(other, "not a distribution-list field")),
        }
    }
    if edits.is_empty() {
        return Ok(body.to_owned());
    }
    edit_rev(&card, now, &mut edits);
    Ok(edits.apply(&card))
}

/// DLName → FN, and N's first component when it held the old name (Apple's groups).
fn rename(card: &Card, old: Option<&str>, new: Option<&str>, edits: &mut Edits) {
    let new = new.map(str::trim).unwrap_or("");
    let fn_line = card.find("FN");
    match fn_line {
        Some(i) => edits.set(i, with_value(card.head(i), &escape_text(new))),
        None => edits.insert.push(format!("FN:{}", escape_text(new))),
    }
    if let Some(i) = card.find("N") {
        let line = card.line(i);
        let mut comps: Vec<String> = split_raw(line.value(), ';')
            .into_iter()
            .map(str::to_owned)
            .collect();
        let first = unescape_text(&comps[0]);
        if first.trim().is_empty() || Some(first.trim()) == old {
            comps[0] = escape_text(new);
            edits.set(i, with_value(card.head(i), &comps.join(";")));
        }
    }
}

/// Members: existing lines whose target (and CN, for addresses) is wanted stay as they are,
/// the others go, new ones are appended.
fn members(card: &Card, value: &Value, edits: &mut Edits) -> Result<(), PatchError> {
    let wanted: Vec<(String, Option<String>)> = match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().map(target).collect::<Result<_, _>>()?,
        _ => return Err(PatchError::field("Members", "expected a list of members")),
    };
    let existing = member_lines(card);
    let mut used = vec![false; existing.len()];
    let property = existing
        .first()
        .map(|&i| card.name(i).to_owned())
        .unwrap_or_else(|| {
            if card.find(APPLE_KIND).is_some() {
                APPLE_MEMBER
            } else {
                MEMBER
            }
            .to_owned()
        });
    for (uri, name) in wanted {
        let key = uri.to_ascii_lowercase();
        let found = existing
            .iter()
            .enumerate()
            .find(|&(k, &i)| !used[k] && member(card, i).1 == key)
            .map(|(k, &i)| (k, i));
        match found {
            Some((k, i)) => {
                used[k] = true;
                let line = card.line(i);
                let same_name = name.is_none() || line.param("CN").map(|n| n.trim().to_owned()) == name;
                if !same_name {
                    edits.set(
                        i,
                        with_value(&set_param(card.head(i), "CN", name.as_deref()), line.value()),
                    );
                }
            }
            None => {
                let head = set_param(&property, "CN", name.as_deref());
                edits.insert.push(with_value(&head, &uri));
            }
        }
    }
    for (k, &i) in existing.iter().enumerate() {
        if !used[k] {
            edits.remove(i);
        }
    }
    Ok(())
}

/// A new group in vCard 4 (`KIND:group`).
pub fn create(uid: &str, fields: &FieldSet) -> Result<String, PatchError> {
    create_in(Version::V4, uid, fields)
}

/// A new group in `version`: 4.0 writes `KIND:group` + `MEMBER`, 3.0 Apple's
/// `X-ADDRESSBOOKSERVER-KIND:group` + `X-ADDRESSBOOKSERVER-MEMBER` (as `group::book_dialect`).
pub fn create_in(version: Version, uid: &str, fields: &FieldSet) -> Result<String, PatchError> {
    let extra: &[&str] = match version {
        Version::V4 => &["KIND:group", "FN:"],
        Version::V3 => &["N:", "FN:", "X-ADDRESSBOOKSERVER-KIND:group"],
    };
    let body = skeleton(version, uid, extra);
    patch_at(&body, fields, chrono::Utc::now())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/vcard-items/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn at() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn both_group_dialects_read() {
        let apple = read(&fixture("apple-group.vcf")).unwrap();
        assert_eq!(apple["DLName"], json!("Book Club"));
        assert_eq!(
            apple["Members"],
            json!([{"Uid": "4E6A2C5B-1A2B-4C3D-8E9F-0A1B2C3D4E5F"}, {"Uid": "9B1F0E2D-3C4B-4A59-8687-A1B2C3D4E5F6"}])
        );
        let davx5 = read(&fixture("davx5-group.vcf")).unwrap();
        assert_eq!(davx5["DLName"], json!("Project Team"));
        assert_eq!(
            davx5["Members"],
            json!([
                {"Uid": "5f1f0a20-3b1a-4d6e-9a6c-0f0e0d0c0b0a"},
                {"Name": "Bob Builder", "Address": "bob@builder.example"},
                {"Address": "carol@example.org"},
            ])
        );
        for body in [fixture("apple-group.vcf"), fixture("davx5-group.vcf")] {
            let f = read(&body).unwrap();
            assert_eq!(
                patch_at(&body, &f, at()).unwrap(),
                body,
                "its own field set writes nothing"
            );
        }
        assert_eq!(
            (davx5["Body"].as_str(), davx5["Categories"].as_str()),
            (Some("Weekly sync"), Some("Work"))
        );
    }

    #[test]
    fn member_patches_keep_unchanged_lines_byte_for_byte() {
        let body = fixture("davx5-group.vcf");
        let changes = json!({"Members": [
            {"Uid": "5f1f0a20-3b1a-4d6e-9a6c-0f0e0d0c0b0a", "Name": "Grace Hopper", "Address": "grace@navy.example"},
            {"Name": "Bob Builder", "Address": "bob@builder.example"},
            {"Name": "Dave", "Address": "dave@example.org"},
        ], "DLName": "Project Team"});
        let out = patch_at(&body, changes.as_object().unwrap(), at()).unwrap();
        let expected = body.replace("MEMBER:mailto:carol@example.org\r\n", "").replace(
            "REV:20240301T093100Z\r\n",
            "REV:20261203T100000Z\r\nMEMBER;CN=Dave:mailto:dave@example.org\r\n",
        );
        assert_eq!(out, expected);
        // The same members again: nothing to write.
        let again = json!({"Members": read(&out).unwrap()["Members"].clone()});
        assert_eq!(patch_at(&out, again.as_object().unwrap(), at()).unwrap(), out);

        let apple = fixture("apple-group.vcf");
        let changes = json!({"DLName": "Readers", "Members": [{"Uid": "9B1F0E2D-3C4B-4A59-8687-A1B2C3D4E5F6"}, {"Uid": "new-1"}]});
        let out = patch_at(&apple, changes.as_object().unwrap(), at()).unwrap();
        let expected = apple
            .replace("N:Book Club\r\nFN:Book Club", "N:Readers\r\nFN:Readers")
            .replace(
                "X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:4E6A2C5B-1A2B-4C3D-8E9F-0A1B2C3D4E5F\r\n",
                "",
            )
            .replace(
                "REV:2024-03-01T09:31:00Z\r\n",
                "REV:2026-12-03T10:00:00Z\r\nX-ADDRESSBOOKSERVER-MEMBER:urn:uuid:new-1\r\n",
            );
        assert_eq!(out, expected);
        let bad = json!({"Members": [{"Name": "nobody"}]});
        assert!(matches!(
            patch_at(&apple, bad.as_object().unwrap(), at()),
            Err(PatchError::Field { .. })
        ));
    }

    fn members() -> impl Strategy<Value = Vec<Value>> {
        let one = prop_oneof![
            "[a-f0-9]{8}-[a-f0-9]{4}".prop_map(|u| json!({"Uid": u})),
            "[a-z]{1,8}@[a-z]{1,8}\\.example".prop_map(|a| json!({"Address": a})),
            (
                "[A-Z][a-z]{0,8}( [A-Z][a-z]{0,8})?",
                "[a-z]{1,8}@[a-z]{1,8}\\.example"
            )
                .prop_map(|(n, a)| json!({"Name": n, "Address": a})),
        ];
        proptest::collection::vec(one, 0..6)
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "(?s).{0,300}") {
            let _ = read(&text);
            let _ = patch(&text, json!({"DLName": "x", "Members": [{"Address": "a@b"}]}).as_object().unwrap());
        }

        #[test]
        fn create_then_read_is_the_identity(
            name in "[A-Za-z][A-Za-z0-9 ,;\\\\]{0,20}[A-Za-z0-9]",
            body in proptest::option::of("[A-Za-z][A-Za-z0-9 ,;\n]{0,30}[a-z]"),
            categories in proptest::option::of("[A-Z][a-z]{0,6}(, [A-Z][a-z]{0,6}){0,2}"),
            members in members(),
            v4 in any::<bool>(),
        ) {
            let mut f = FieldSet::new();
            f.insert("DLName".into(), json!(name));
            f.insert("Members".into(), json!(members));
            if let Some(b) = body { f.insert("Body".into(), json!(b)); }
            if let Some(c) = categories { f.insert("Categories".into(), json!(c)); }
            let version = if v4 { Version::V4 } else { Version::V3 };
            let text = create_in(version, "g-1", &f).unwrap();
            let mirror = crate::formats::vcard::parse_contact(text.as_bytes()).unwrap();
            prop_assert_eq!((mirror.uid.as_str(), mirror.kind.as_str()), ("g-1", "group"));
            prop_assert_eq!(mirror.members.len(), f["Members"].as_array().unwrap().len());
            let mut back = read(&text).unwrap();
            prop_assert_eq!(back.remove("GlobalUid"), Some(json!("g-1")));
            prop_assert_eq!(&back, &f, "{}", text);
            prop_assert_eq!(crate::formats::group::dialect_of(&text).is_some(), true);
            prop_assert_eq!(patch_at(&text, &f, at()).unwrap(), text);
        }
    }
}
