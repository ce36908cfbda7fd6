//! Contact field-set tests: fixtures as Outlook, Apple Contacts, Google and Thunderbird/DAVx5
//! write them, byte-for-byte patches, and create → read identity in both vCard versions.

use proptest::prelude::*;
use serde_json::{Value, json};

use base64::Engine as _;

use super::card::Version;
use super::*;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/vcard-items/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn set(pairs: Value) -> FieldSet {
    pairs.as_object().unwrap().clone()
}

fn at() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
        .unwrap()
        .to_utc()
}

fn get<'a>(f: &'a FieldSet, key: &str) -> &'a str {
    f.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {key} in {f:?}"))
}

#[test]
fn apple_contact_reads_labels_groups_and_omitted_year() {
    let f = read(&fixture("apple-contact.vcf")).unwrap();
    let expect = [
        ("LastName", "Appleseed"),
        ("FirstName", "Johnny"),
        ("MiddleName", "Q."),
        ("Title", "Dr."),
        ("Suffix", "Jr."),
        ("FullName", "Dr. Johnny Q. Appleseed Jr."),
        ("FileAs", "Appleseed, Johnny"),
        ("NickName", "Jon"),
        ("CompanyName", "Apple Inc."),
        ("Department", "Engineering"),
        ("JobTitle", "Engineer"),
        ("Email1Address", "johnny@apple.example"),
        ("Email2Address", "johnny@home.example"),
        ("Email3Address", "j.appleseed@other.example"),
        ("MobileTelephoneNumber", "+1 408 555 0100"),
        ("BusinessTelephoneNumber", "+1 408 555 0101"),
        ("HomeTelephoneNumber", "+1 408 555 0102"),
        ("BusinessFaxNumber", "+1 408 555 0103"),
        ("PrimaryTelephoneNumber", "+1 408 555 0104"),
        ("PagerNumber", "+1 408 555 0105"),
        ("AssistantTelephoneNumber", "+1 408 555 0106"),
        ("BusinessAddressStreet", "1 Infinite Loop"),
        ("BusinessAddressCity", "Cupertino"),
        ("BusinessAddressPostalCode", "95014"),
        ("HomeAddressStreet", "12 Elm Street\nApt 4"),
        ("HomeAddressState", "IL"),
        ("WebPage", "https://johnny.example/"),
        ("Anniversary", "2010-06-12"),
        ("Birthday", "1604-03-21"),
        ("IMAddress", "xmpp:johnny@jabber.example"),
        ("Body", "Met at WWDC, 2019.\nLikes apples."),
        ("Categories", "Work, VIP"),
        ("GlobalUid", "4E6A2C5B-1A2B-4C3D-8E9F-0A1B2C3D4E5F"),
    ];
    for (key, value) in expect {
        assert_eq!(get(&f, key), value, "{key}");
    }
    assert_eq!(f["HasPicture"], json!(true));
    let (mime, bytes) = photo(&fixture("apple-contact.vcf")).unwrap();
    assert_eq!((mime.as_str(), &bytes[..2]), ("image/jpeg", &[0xFF, 0xD8][..]));
}

#[test]
fn google_thunderbird_and_outlook_cards_read() {
    let g = read(&fixture("google-contact.vcf")).unwrap();
    assert_eq!(get(&g, "Email1Address"), "ada@gmail.example");
    assert_eq!(get(&g, "MobileTelephoneNumber"), "+44 20 7946 0000");
    assert_eq!(get(&g, "HomeAddressStreet"), "12 St James's Square");
    assert_eq!(get(&g, "Birthday"), "1815-12-10");
    assert_eq!(get(&g, "Anniversary"), "1835-07-08");
    assert_eq!(get(&g, "WebPage"), "https://ada.example/");
    assert_eq!(g["HasPicture"], json!(false), "a URL photo is not a picture");
    assert_eq!(photo(&fixture("google-contact.vcf")), None);

    let t = read(&fixture("thunderbird-contact.vcf")).unwrap();
    assert_eq!(get(&t, "MiddleName"), "Brewster Murray");
    assert_eq!(get(&t, "Title"), "Rear Admiral");
    assert_eq!(get(&t, "HomeTelephoneNumber"), "+1-202-555-0125");
    assert_eq!(get(&t, "Birthday"), "1906-12-09");
    assert_eq!(get(&t, "Anniversary"), "1930-06-15");
    assert_eq!(get(&t, "BusinessHomePage"), "https://navy.example/hopper");
    assert_eq!(get(&t, "IMAddress"), "sip:grace@navy.example");
    let (mime, bytes) = photo(&fixture("thunderbird-contact.vcf")).unwrap();
    assert_eq!((mime.as_str(), &bytes[1..4]), ("image/png", &b"PNG"[..]));

    let o = read(&fixture("outlook-contact.vcf")).unwrap();
    for (key, value) in [
        ("FileAs", "Doe, John (Contoso)"),
        ("Profession", "Sales"),
        ("Business2TelephoneNumber", "+1 425 555 0109"),
        ("HomeFaxNumber", "+1 425 555 0104"),
        ("CarTelephoneNumber", "+1 425 555 0105"),
        ("AssistantTelephoneNumber", "+1 425 555 0107"),
        ("PrimaryTelephoneNumber", "+1 425 555 0108"),
        ("HomeAddressPostOfficeBox", "PO Box 7"),
        ("OtherAddressCity", "Bellevue"),
        ("Anniversary", "2005-09-10"),
        ("PersonalHomePage", "https://john.example/"),
        ("IMAddress", "john.doe@contoso.example"),
        ("Email3Address", "john@home.example"),
    ] {
        assert_eq!(get(&o, key), value, "{key}");
    }
    assert_eq!(o["HasPicture"], json!(false), "X-MS-CARDPICTURE is not PHOTO");
}

#[test]
fn a_new_job_title_changes_only_title_and_rev_of_a_100_kb_photo_card() {
    let body = fixture("apple-big-photo.vcf");
    assert!(body.len() > 130_000);
    let out = patch::patch_at(&body, &set(json!({"JobTitle": "Nobel Laureate"})), at()).unwrap();
    let expected = body
        .replace("TITLE:Professor\r\n", "TITLE:Nobel Laureate\r\n")
        .replace("REV:2024-03-01T09:30:00Z\r\n", "REV:2026-12-03T10:00:00Z\r\n");
    assert_eq!(out, expected);
    assert_eq!(photo(&out), photo(&body));
    // Nothing changed: the very same bytes, no REV bump.
    let same = set(json!({"JobTitle": "Professor", "GlobalUid": "x", "HasPicture": false}));
    assert_eq!(patch::patch_at(&body, &same, at()).unwrap(), body);
}

#[test]
fn apple_groups_labels_and_unknown_properties_survive() {
    let body = fixture("apple-contact.vcf");
    let changes = set(json!({
        "Email3Address": "johnny@new.example",
        "AssistantTelephoneNumber": null,
        "LastName": "Seed",
        "BusinessAddressCity": "Palo Alto",
        "Anniversary": "2011-06-12",
        "Birthday": "1990-03-21",
    }));
    let out = patch::patch_at(&body, &changes, at()).unwrap();
    let expected = body
        .replace(
            "item1.EMAIL;type=INTERNET:j.appleseed@other.example",
            "item1.EMAIL;type=INTERNET:johnny@new.example",
        )
        .replace(
            "item2.TEL:+1 408 555 0106\r\nitem2.X-ABLabel:_$!<Assistant>!$_\r\n",
            "",
        )
        .replace("N:Appleseed;Johnny;Q.;Dr.;Jr.", "N:Seed;Johnny;Q.;Dr.;Jr.")
        // The rewritten line is longer than 75 octets: folded (RFC 6350 §3.2).
        .replace(
            ";;1 Infinite Loop;Cupertino;CA;95014;United States",
            ";;1 Infinite Loop;Palo Alto;CA;95014;United S\r\n tates",
        )
        .replace(
            "item6.X-ABDATE;type=pref:2010-06-12",
            "item6.X-ABDATE;type=pref:2011-06-12",
        )
        .replace("BDAY;X-APPLE-OMIT-YEAR=1604:1604-03-21", "BDAY:1990-03-21")
        .replace("REV:2024-03-01T09:30:00Z", "REV:2026-12-03T10:00:00Z");
    assert_eq!(out, expected);
    let f = read(&out).unwrap();
    assert_eq!(get(&f, "FileAs"), "Seed, Johnny");
    assert!(!f.contains_key("AssistantTelephoneNumber"));
}

#[test]
fn structured_values_keep_components_outlook_does_not_know() {
    let body = "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:s\r\nFN:A B\r\nN:B;A;X,Y;;;extra\r\nORG:Co;Dept;Unit\r\nADR;TYPE=work;LABEL=\"old label\":;Suite 5;Road 1;Town;;1;DE\r\nEND:VCARD\r\n";
    let changes = set(json!({"FirstName": "Al", "Department": "R&D", "BusinessAddressCity": "City"}));
    let out = patch::patch_at(body, &changes, at()).unwrap();
    assert!(out.contains("\r\nN:B;Al;X,Y;;;extra\r\n"), "{out}");
    assert!(out.contains("\r\nORG:Co;R&D;Unit\r\n"), "{out}");
    assert!(
        out.contains("\r\nADR;TYPE=work:;Suite 5;Road 1;City;;1;DE\r\n"),
        "{out}"
    );
    assert!(out.contains("\r\nREV:20261203T100000Z\r\n"), "{out}");
    let f = read(&out).unwrap();
    assert_eq!(get(&f, "MiddleName"), "X Y");
    // Clearing every address part removes the line and a version 3 LABEL with it.
    let v3 = fixture("outlook-contact.vcf");
    let clear: FieldSet = ["Street", "City", "State", "PostalCode", "Country"]
        .iter()
        .map(|p| (format!("BusinessAddress{p}"), Value::Null))
        .collect();
    let out = patch::patch_at(&v3, &clear, at()).unwrap();
    assert!(!out.contains("One Microsoft Way"), "{out}");
    assert!(out.contains("ADR;TYPE=HOME:PO Box 7;;;Seattle"));
}

#[test]
fn new_lines_follow_the_card_dialect() {
    let v3 = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:d\r\nN:B;A;;;\r\nFN:A B\r\nEND:VCARD\r\n";
    let v4 = v3.replace("VERSION:3.0", "VERSION:4.0");
    let changes = set(json!({
        "Birthday": "1604-02-29", "Anniversary": "2001-02-03", "HomeFaxNumber": "1",
        "Email1Address": "a@b.example", "Email1DisplayName": "A B (a@b.example)",
        "IMAddress": "handle", "BusinessHomePage": "https://b.example/",
        "Picture": {"mime": "image/png", "data": "iVBORw0KGgo="},
    }));
    let out3 = patch::patch_at(v3, &changes, at()).unwrap();
    for line in [
        "BDAY;X-APPLE-OMIT-YEAR=1604:1604-02-29",
        "X-ANNIVERSARY:2001-02-03",
        "TEL;TYPE=HOME,FAX:1",
        "EMAIL;TYPE=INTERNET,PREF;X-CN=\"A B (a@b.example)\":a@b.example",
        "X-MS-IMADDRESS:handle",
        "URL;TYPE=WORK:https://b.example/",
        "PHOTO;ENCODING=b;TYPE=PNG:iVBORw0KGgo=",
        "REV:2026-12-03T10:00:00Z",
    ] {
        assert!(out3.contains(&format!("\r\n{line}\r\n")), "{line} in {out3}");
    }
    let out4 = patch::patch_at(&v4, &changes, at()).unwrap();
    for line in [
        "BDAY:--0229",
        "ANNIVERSARY:20010203",
        "TEL;TYPE=home,fax:1",
        "EMAIL;PREF=1;X-CN=\"A B (a@b.example)\":a@b.example",
        "URL;TYPE=work:https://b.example/",
        "PHOTO:data:image/png;base64,iVBORw0KGgo=",
        "REV:20261203T100000Z",
    ] {
        assert!(out4.contains(&format!("\r\n{line}\r\n")), "{line} in {out4}");
    }
    for out in [&out3, &out4] {
        let f = read(out).unwrap();
        assert_eq!(get(&f, "Birthday"), "1604-02-29");
        assert_eq!(get(&f, "Email1DisplayName"), "A B (a@b.example)");
        assert_eq!(photo(out).unwrap().0, "image/png");
        let gone = patch::patch_at(out, &set(json!({"Picture": null})), at()).unwrap();
        assert!(!gone.contains("PHOTO") && photo(&gone).is_none());
    }
}

#[test]
fn bad_patches_are_refused_by_field() {
    let body = fixture("thunderbird-contact.vcf");
    let err = |c: Value| patch::patch_at(&body, &set(c), at()).unwrap_err();
    assert!(
        matches!(err(json!({"Birthday": "12/09/1906"})), PatchError::Field { field, .. } if field == "Birthday")
    );
    assert!(matches!(err(json!({"Shoe": "42"})), PatchError::Field { field, .. } if field == "Shoe"));
    assert!(
        matches!(err(json!({"Picture": {"data": "!!"}})), PatchError::Field { field, .. } if field == "Picture")
    );
    assert!(matches!(
        patch::patch_at("nope", &FieldSet::new(), at()),
        Err(PatchError::Unreadable(_))
    ));
}

/// Field kinds for generated field sets, with values Outlook can hold.
fn value_of(kind: u8) -> BoxedStrategy<String> {
    let word = "[A-Za-zäöüé][A-Za-z0-9äöüé .,;:'&()\\\\-]{0,14}[A-Za-z0-9]";
    match kind {
        0 => proptest::string::string_regex(word).unwrap().boxed(),
        1 => "[a-z]{1,8}@[a-z]{1,8}\\.example".boxed(),
        2 => "\\+[0-9]{1,3} [0-9]{2,4} [0-9]{3,6}".boxed(),
        3 => (prop_oneof![Just(1604), 1900..2100i32], 1..=12u32, 1..=28u32)
            .prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))
            .boxed(),
        4 => "https://[a-z]{1,10}\\.example/[a-z0-9]{0,6}".boxed(),
        5 => prop_oneof!["xmpp:[a-z]{1,8}@[a-z]{1,8}\\.example", "[a-z][a-z0-9._]{0,10}"].boxed(),
        6 => proptest::collection::vec(proptest::string::string_regex(word).unwrap(), 1..4)
            .prop_map(|lines| lines.join("\n"))
            .boxed(),
        _ => proptest::collection::vec("[A-Za-z][A-Za-z0-9 ]{0,8}[A-Za-z0-9]", 1..4)
            .prop_map(|names| names.join(", "))
            .boxed(),
    }
}

/// Every writable key with its kind (see [`value_of`]).
fn keys() -> Vec<(String, u8)> {
    let mut keys: Vec<(String, u8)> = [
        ("FirstName", 0),
        ("MiddleName", 0),
        ("LastName", 0),
        ("Title", 0),
        ("Suffix", 0),
        ("FileAs", 0),
        ("NickName", 0),
        ("CompanyName", 0),
        ("Department", 0),
        ("JobTitle", 0),
        ("Profession", 0),
        ("Email1Address", 1),
        ("Email1DisplayName", 0),
        ("Email2Address", 1),
        ("Email3Address", 1),
        ("Birthday", 3),
        ("Anniversary", 3),
        ("IMAddress", 5),
        ("Body", 6),
        ("Categories", 7),
    ]
    .iter()
    .map(|(k, t)| (k.to_string(), *t))
    .collect();
    keys.extend(tables::PHONES.iter().map(|(k, _, _)| (k.to_string(), 2)));
    keys.extend(tables::URLS.iter().map(|(k, _)| (k.to_string(), 4)));
    for (kind, _) in tables::ADDRESSES {
        for (_, part) in tables::ADDRESS_PARTS {
            keys.push((
                format!("{kind}Address{part}"),
                if part == "Street" { 6 } else { 0 },
            ));
        }
    }
    keys
}

fn field_sets() -> impl Strategy<Value = FieldSet> {
    let keys = keys();
    let n = keys.len();
    let entry = (0..n).prop_flat_map(move |k| {
        let (key, kind) = keys[k].clone();
        value_of(kind).prop_map(move |v| (key.clone(), v))
    });
    (proptest::collection::vec(entry, 0..40), value_of(0)).prop_map(|(entries, full_name)| {
        let mut f = FieldSet::new();
        for (k, v) in entries {
            f.insert(k, Value::String(v));
        }
        // What a card cannot tell apart: a second slot without the first, a display name
        // without an address (Outlook fills these in order too).
        for (second, first) in [
            ("Email2Address", "Email1Address"),
            ("Email3Address", "Email2Address"),
            ("Email1DisplayName", "Email1Address"),
            ("Business2TelephoneNumber", "BusinessTelephoneNumber"),
            ("Home2TelephoneNumber", "HomeTelephoneNumber"),
        ] {
            if !f.contains_key(first) {
                f.remove(second);
            }
        }
        f.insert("FullName".into(), Value::String(full_name));
        f
    })
}

const CONTACTS: [&str; 5] = [
    "apple-contact.vcf",
    "apple-big-photo.vcf",
    "google-contact.vcf",
    "thunderbird-contact.vcf",
    "outlook-contact.vcf",
];

#[test]
fn every_fixture_survives_its_own_field_set_and_a_copy() {
    for name in CONTACTS {
        let body = fixture(name);
        let f = read(&body).unwrap();
        // The whole field set sent back unchanged writes nothing.
        assert_eq!(patch::patch_at(&body, &f, at()).unwrap(), body, "{name}");
        // A copy in either version reads as the original (the picture is copied on its own).
        for version in [Version::V3, Version::V4] {
            let mut fields = f.clone();
            if let Some((mime, bytes)) = photo(&body) {
                let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
                fields.insert("Picture".into(), json!({"mime": mime, "data": data}));
            }
            // Google's export carries no UID.
            let uid = f.get("GlobalUid").and_then(Value::as_str).unwrap_or("copy");
            let copy = create_in(version, uid, &fields).unwrap();
            let mut expected = f.clone();
            expected.insert("GlobalUid".into(), json!(uid));
            assert_eq!(read(&copy).unwrap(), expected, "{name} as {version:?}: {copy}");
            assert_eq!(photo(&copy), photo(&body), "{name}");
        }
    }
}

#[test]
fn quoted_printable_lines_are_unsupported_and_kept() {
    let body = "BEGIN:VCARD\nVERSION:2.1\nN:Doe;John\nFN:John Doe\nNOTE;ENCODING=QUOTED-PRINTABLE:a=0D=0Ab\nEND:VCARD\n";
    let f = read(body).unwrap();
    assert!(f["Unsupported"].as_str().unwrap().contains("quoted-printable"));
    let refused = patch::patch_at(body, &set(json!({"Body": "x"})), at());
    assert!(matches!(refused, Err(PatchError::Unfaithful(_))));
    // Other fields can still be written, in the card's own line endings.
    let out = patch::patch_at(body, &set(json!({"JobTitle": "CEO"})), at()).unwrap();
    assert_eq!(
        out,
        body.replace("END:VCARD", "TITLE:CEO\nREV:2026-12-03T10:00:00Z\nEND:VCARD")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn create_then_read_is_the_identity_in_both_versions(f in field_sets(), v4 in any::<bool>()) {
        let version = if v4 { Version::V4 } else { Version::V3 };
        let body = create_in(version, "uid-1", &f).unwrap();
        // The mirror's own reader (calcard) takes it as an individual with this UID.
        let mirror = crate::formats::vcard::parse_contact(body.as_bytes()).unwrap();
        prop_assert_eq!((mirror.uid.as_str(), mirror.kind.as_str()), ("uid-1", "individual"));
        let mut back = read(&body).unwrap();
        prop_assert_eq!(back.remove("GlobalUid"), Some(json!("uid-1")));
        prop_assert_eq!(back.remove("HasPicture"), Some(json!(false)));
        let mut expected = f.clone();
        if !expected.contains_key("FileAs") && let Some(computed) = computed_file_as(&expected) {
            expected.insert("FileAs".into(), Value::String(computed));
        }
        prop_assert_eq!(&back, &expected, "{}", body);
        // A patch that sends the same fields back changes nothing.
        prop_assert_eq!(patch::patch_at(&body, &f, chrono::Utc::now()).unwrap(), body);
    }

    #[test]
    fn a_patch_reads_back_as_sent_and_keeps_unknown_lines(f in field_sets()) {
        let base = fixture("apple-contact.vcf");
        let out = patch::patch_at(&base, &f, chrono::Utc::now()).unwrap();
        let back = read(&out).unwrap();
        for (key, value) in &f {
            prop_assert_eq!(back.get(key), Some(value), "{} in {}", key, out);
        }
        for kept in ["X-ABShowAs:PERSON", "item7.X-ABRELATEDNAMES:Jane", "X-ABRELATEDNAMES;type=pref:Jane Appleseed"] {
            prop_assert!(out.contains(kept));
        }
        prop_assert_eq!(photo(&out), photo(&base));
    }

    #[test]
    fn random_cards_never_panic_and_patches_keep_other_lines(
        lines in proptest::collection::vec(
            (
                proptest::sample::select(vec![
                    "N", "FN", "EMAIL", "TEL", "ADR", "ORG", "BDAY", "ANNIVERSARY", "URL", "IMPP", "NOTE",
                    "PHOTO", "CATEGORIES", "LABEL", "item1.TEL", "item1.X-ABLabel", "item2.X-ABDATE",
                    "item2.X-ABLabel", "X-MS-IMADDRESS", "X-OUTLOOK-FILE-AS", "REV", "X-FOO",
                ]),
                "(;[A-Za-z-]{1,6}(=[A-Za-z0-9,\"]{0,8})?){0,2}",
                "[^\r\n]{0,30}",
            ),
            0..14,
        ),
        f in field_sets(),
    ) {
        let mut body = String::from("BEGIN:VCARD\r\nVERSION:3.0\r\n");
        for (name, params, value) in &lines {
            body.push_str(&format!("{name}{params}:{value}\r\n"));
        }
        body.push_str("X-KEEP-ME;X-P=\"a;b:c\":kept\r\nEND:VCARD\r\n");
        let _ = read(&body);
        let _ = photo(&body);
        if let Ok(out) = patch::patch_at(&body, &f, chrono::Utc::now()) {
            prop_assert!(out.contains("\r\nX-KEEP-ME;X-P=\"a;b:c\":kept\r\n"), "{}", out);
            let again = read(&out).unwrap();
            for key in ["FullName", "JobTitle", "Email1Address", "MobileTelephoneNumber", "Categories"] {
                if f.contains_key(key) {
                    prop_assert_eq!(again.get(key), f.get(key), "{} in {}", key, out);
                }
            }
        }
    }

    #[test]
    fn reading_never_panics(text in "(?s).{0,400}") {
        let _ = read(&text);
        let _ = photo(&text);
        let _ = patch(&text, &set(json!({"FirstName": "x", "BusinessAddressCity": "y"})));
    }
}
