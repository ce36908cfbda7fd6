//! The note field set over the note message format of `formats::note` (Apple's notes over IMAP:
//! a message in the folder `Notes` with `X-Uniform-Type-Identifier: com.apple.mail-note`):
//! `Body` is the text (an HTML note reads as its text), `Subject` its first line, `Categories`
//! the RFC 5322 §3.6.5 `Keywords` field.
//!
//! ```text
//!   message ──read──► {GlobalUid, Subject, Body, Categories}
//!   message + changes ──patch──► the next version: same headers, new Date and Message-ID
//!                               (the journal deduplicates an APPEND by it), Keywords and,
//!                               when Body changed, a text/plain body and Subject
//! ```
//!
//! A note with attachments says so in `Unsupported` and refuses Body patches: Outlook's notes
//! hold text only, and rewriting the body would drop the attachments.

use base64::Engine as _;
use mail_parser::{HeaderValue, MessageParser, MimeHeaders, PartType};
use serde_json::Value;

use super::{FieldSet, PatchError};
use crate::formats::note::{NOTE_TYPE, encode_header};

/// Reads a note message's field set.
pub fn read(body: &str) -> Result<FieldSet, String> {
    let message = MessageParser::default()
        .parse(body.as_bytes())
        .ok_or("not a mail message")?;
    let mut f = FieldSet::new();
    let header = |name: &str| {
        message
            .header(name)
            .and_then(HeaderValue::as_text)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    if let Some(id) =
        header("X-Universally-Unique-Identifier").or_else(|| message.message_id().map(str::to_owned))
    {
        f.insert("GlobalUid".into(), Value::String(id));
    }
    let text = match message.text_part(0) {
        Some(part) if matches!(part.body, PartType::Html(_)) => html_text(part.text_contents().unwrap_or("")),
        Some(part) => part.text_contents().unwrap_or("").replace("\r\n", "\n"),
        None => String::new(),
    };
    let text = text.trim_end_matches(['\r', '\n']).to_owned();
    let subject = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
        .or_else(|| message.subject().map(|s| s.trim().to_owned()))
        .filter(|s| !s.is_empty());
    if let Some(subject) = subject {
        f.insert("Subject".into(), Value::String(subject));
    }
    if !text.is_empty() {
        f.insert("Body".into(), Value::String(text));
    }
    let keywords: Vec<String> = message
        .header_values("Keywords")
        .filter_map(HeaderValue::as_text_list)
        .flatten()
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .collect();
    if !keywords.is_empty() {
        f.insert("Categories".into(), Value::String(keywords.join(", ")));
    }
    let attachments = message.attachments().filter(|a| !is_body(a)).count();
    if attachments > 0 {
        f.insert(
            "Unsupported".into(),
            Value::String(format!(
                "the note has {attachments} attachment(s), which an Outlook note cannot hold; \
                 its body is not rewritten from a field set"
            )),
        );
    }
    Ok(f)
}

/// The text of an HTML note as Apple's Notes writes them (a `<div>` per line, `<br>` for an empty
/// one): block ends and `<br>` become newlines, tags go, entities are decoded.
fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    let newline = |out: &mut String| {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
    };
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => {
                let Some(end) = rest.find('>') else {
                    out.push_str(rest);
                    break;
                };
                let tag = &rest[1..end];
                let closing = tag.starts_with('/');
                let name: String = tag
                    .trim_start_matches('/')
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect::<String>()
                    .to_ascii_lowercase();
                rest = &rest[end + 1..];
                match name.as_str() {
                    "head" | "style" | "script" | "title" if !closing => {
                        let close = format!("</{name}");
                        let at = rest.to_ascii_lowercase().find(&close).unwrap_or(rest.len());
                        rest = &rest[at..];
                    }
                    "br" => out.push('\n'),
                    "div" | "p" | "li" | "tr" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "blockquote"
                    | "ul" | "ol" | "table" => newline(&mut out),
                    _ => {}
                }
            }
            '&' => {
                let end = rest
                    .char_indices()
                    .take(12)
                    .find(|&(_, c)| c == ';')
                    .map(|(i, _)| i);
                let decoded = end.and_then(|e| entity(&rest[1..e]));
                match (end, decoded) {
                    (Some(e), Some(ch)) => {
                        out.push(ch);
                        rest = &rest[e + 1..];
                    }
                    _ => {
                        out.push('&');
                        rest = &rest[1..];
                    }
                }
            }
            '\r' | '\n' | '\t' => {
                if !out.is_empty() && !out.ends_with(['\n', ' ']) {
                    out.push(' ');
                }
                rest = &rest[1..];
            }
            c => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// An HTML character reference's character (the named ones notes use, and numeric ones).
fn entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some('\u{a0}'),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// An alternative text part counts as body, not as an attachment.
fn is_body(part: &mail_parser::MessagePart<'_>) -> bool {
    part.content_type()
        .is_some_and(|ct| ct.ctype().eq_ignore_ascii_case("text") && part.attachment_name().is_none())
}

/// Categories in Outlook's form, or `None` when empty.
fn categories(text: &str) -> Option<String> {
    let names: Vec<&str> = text.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    (!names.is_empty()).then(|| names.join(", "))
}

/// What a patch or create asks for: `(Body, Categories)`, each `None` when not asked,
/// `Some(None)` when cleared.
type Wanted = (Option<Option<String>>, Option<Option<String>>);

fn wanted(changes: &FieldSet) -> Result<Wanted, PatchError> {
    let mut body = None;
    let mut cats = None;
    for (key, value) in changes {
        let text = match value {
            Value::Null => None,
            Value::String(s) => Some(s.replace("\r\n", "\n")),
            _ => return Err(PatchError::field(key, "expected a string or null")),
        };
        match key.as_str() {
            "Subject" | "GlobalUid" | "Unsupported" => {}
            "Body" => {
                body = Some(
                    text.map(|t| t.trim_end_matches(['\r', '\n']).to_owned())
                        .filter(|t| !t.is_empty()),
                )
            }
            "Categories" => cats = Some(text.and_then(|t| categories(&t))),
            other => return Err(PatchError::field(other, "not a note field")),
        }
    }
    Ok((body, cats))
}

/// Applies `changes` to the stored note message `body`; the result is the next version.
pub fn patch(body: &str, changes: &FieldSet) -> Result<String, PatchError> {
    patch_at(body, changes, chrono::Utc::now())
}

fn patch_at(
    body: &str,
    changes: &FieldSet,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, PatchError> {
    let current = read(body).map_err(PatchError::Unreadable)?;
    let (new_body, new_cats) = wanted(changes)?;
    let text = |k: &str| current.get(k).and_then(Value::as_str).map(str::to_owned);
    let new_body = new_body.filter(|b| *b != text("Body"));
    let new_cats = new_cats.filter(|c| *c != text("Categories"));
    if new_body.is_none() && new_cats.is_none() {
        return Ok(body.to_owned());
    }
    if new_body.is_some()
        && let Some(why) = text("Unsupported")
    {
        return Err(PatchError::Unfaithful(why));
    }
    let (head, rest) = match (body.find("\r\n\r\n"), body.find("\n\n")) {
        (Some(i), _) => (&body[..i + 2], &body[i + 4..]),
        (None, Some(i)) => (&body[..i + 1], &body[i + 2..]),
        (None, None) => (body, ""),
    };
    let id = text("GlobalUid").unwrap_or_else(|| "note".into());
    let mut out = String::with_capacity(body.len() + 200);
    let mut fields = Vec::new();
    for line in head.split_inclusive('\n') {
        match fields.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => *last += line,
            _ => fields.push(line.to_owned()),
        }
    }
    for field in &fields {
        let name = field.split(':').next().unwrap_or("").trim().to_ascii_lowercase();
        let replaced = matches!(name.as_str(), "date" | "message-id")
            || (new_cats.is_some() && name == "keywords")
            || (new_body.is_some()
                && matches!(
                    name.as_str(),
                    "subject" | "mime-version" | "content-type" | "content-transfer-encoding"
                ));
        if !replaced {
            out.push_str(field);
            if !field.ends_with('\n') {
                out.push_str("\r\n");
            }
        }
    }
    let subject = new_body.as_ref().map(|b| b.clone().unwrap_or_default());
    let keywords = match &new_cats {
        Some(c) => c.clone(),
        None => None,
    };
    out.push_str(&version_headers(
        &id,
        subject.as_deref(),
        keywords.as_deref(),
        now,
    ));
    match new_body {
        Some(b) => out.push_str(&text_part(b.as_deref().unwrap_or(""))),
        None => {
            out.push_str("\r\n");
            out.push_str(rest);
        }
    }
    Ok(out)
}

/// Date, Message-ID (unique per version), and, when given, Subject (the body's first line) and
/// Keywords.
fn version_headers(
    id: &str,
    body: Option<&str>,
    keywords: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let stamp = now.timestamp_nanos_opt().unwrap_or_default();
    let local: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-._".contains(*c))
        .collect();
    let mut out = format!(
        "Date: {}\r\nMessage-ID: <{local}.{stamp}@opconnect.invalid>\r\n",
        now.to_rfc2822()
    );
    if let Some(body) = body {
        let first = body.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
        out.push_str(&format!("Subject: {}\r\n", encode_header(first)));
    }
    if let Some(keywords) = keywords {
        let list: Vec<String> = keywords.split(", ").map(encode_header).collect();
        out.push_str(&format!("Keywords: {}\r\n", list.join(", ")));
    }
    out
}

/// A text/plain body in base64 (so any text survives 7-bit transport), headers included.
fn text_part(text: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.replace('\n', "\r\n").as_bytes());
    let mut out = String::from(
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    );
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push_str("\r\n");
    }
    out
}

/// A new note message without a From field; the notes layer should prefer [`create_from`].
pub fn create(uid: &str, fields: &FieldSet) -> Result<String, PatchError> {
    create_from(uid, "", fields)
}

/// A new note message from `from` (the account's address) with the note id `uid`.
pub fn create_from(uid: &str, from: &str, fields: &FieldSet) -> Result<String, PatchError> {
    create_at(uid, from, fields, chrono::Utc::now())
}

fn create_at(
    uid: &str,
    from: &str,
    fields: &FieldSet,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, PatchError> {
    let (body, cats) = wanted(fields)?;
    let body = body.flatten().unwrap_or_default();
    let mut out = String::new();
    if !from.is_empty() {
        out.push_str(&format!("From: {from}\r\n"));
    }
    out.push_str(&format!(
        "X-Uniform-Type-Identifier: {NOTE_TYPE}\r\nX-Universally-Unique-Identifier: {uid}\r\n\
         X-Mail-Created-Date: {}\r\n",
        now.to_rfc2822()
    ));
    out.push_str(&version_headers(uid, Some(&body), cats.flatten().as_deref(), now));
    out.push_str(&text_part(&body));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::formats::note as message;

    fn at() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
            .unwrap()
            .to_utc()
    }

    const APPLE: &str = "Subject: Groceries\r\nX-Uniform-Type-Identifier: com.apple.mail-note\r\n\
X-Universally-Unique-Identifier: 4F1E2D3C-0000-4000-8000-ABCDEFABCDEF\r\nContent-Type: text/html;\r\n\tcharset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\nDate: Tue, 24 Nov 2026 08:00:00 +0100\r\nX-Mail-Created-Date: Tue, 24 Nov 2026 08:00:00 +0100\r\n\
Message-ID: <A1@icloud.example>\r\n\r\n\
<html><body><div>Groceries</div><div>Eggs =E2=80=93 six</div></body></html>\r\n";

    #[test]
    fn an_apple_html_note_reads_as_text() {
        let f = read(APPLE).unwrap();
        assert_eq!(f["GlobalUid"], json!("4F1E2D3C-0000-4000-8000-ABCDEFABCDEF"));
        assert_eq!(f["Subject"], json!("Groceries"));
        assert_eq!(f["Body"], json!("Groceries\nEggs – six"));
        assert_eq!(
            html_text("<div>a &amp; b</div><div><br></div><div>c&#8211;d &x</div><style>x</style>"),
            "a & b\n\nc–d &x\n"
        );
        assert!(!f.contains_key("Unsupported") && !f.contains_key("Categories"));
        assert_eq!(
            patch_at(APPLE, &f, at()).unwrap(),
            APPLE,
            "its own field set writes nothing"
        );
    }

    #[test]
    fn categories_only_keep_the_html_body_and_headers() {
        let out = patch_at(
            APPLE,
            json!({"Categories": "Home, Food"}).as_object().unwrap(),
            at(),
        )
        .unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert_eq!(
            body,
            APPLE.split_once("\r\n\r\n").unwrap().1,
            "body byte for byte"
        );
        for kept in [
            "Subject: Groceries",
            "Content-Type: text/html;\r\n\tcharset=utf-8",
            "X-Mail-Created-Date: Tue, 24",
        ] {
            assert!(head.contains(kept), "{kept} in {head}");
        }
        assert!(head.contains("Keywords: Home, Food") && !head.contains("<A1@icloud.example>"));
        assert_eq!(read(&out).unwrap()["Categories"], json!("Home, Food"));
        // The notes listing reads the new version under the same id.
        let note = message::parse(out.as_bytes(), "1").unwrap();
        assert_eq!(
            (note.id.as_str(), note.format.as_str()),
            ("4F1E2D3C-0000-4000-8000-ABCDEFABCDEF", "html")
        );
        // Nothing changed: same bytes.
        let same = json!({"Categories": "Home,Food", "Subject": "x"});
        assert_eq!(patch_at(&out, same.as_object().unwrap(), at()).unwrap(), out);
    }

    #[test]
    fn a_new_body_becomes_plain_text_with_its_subject() {
        let out = patch_at(
            APPLE,
            json!({"Body": "Shopping\nMilk – 2 l"}).as_object().unwrap(),
            at(),
        )
        .unwrap();
        let f = read(&out).unwrap();
        assert_eq!(
            (f["Subject"].as_str(), f["Body"].as_str()),
            (Some("Shopping"), Some("Shopping\nMilk – 2 l"))
        );
        let note = message::parse(out.as_bytes(), "1").unwrap();
        assert_eq!(
            (note.subject.as_str(), note.format.as_str()),
            ("Shopping", "text")
        );
        assert_eq!(out.matches("Content-Type:").count(), 1, "{out}");
    }

    #[test]
    fn a_note_with_an_attachment_refuses_body_patches() {
        let raw = "Subject: Plan\r\nX-Universally-Unique-Identifier: N-9\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nPlan\r\n--b\r\n\
Content-Type: image/png\r\nContent-Disposition: attachment; filename=a.png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n";
        let f = read(raw).unwrap();
        assert!(f["Unsupported"].as_str().unwrap().contains("attachment"), "{f:?}");
        let body = json!({"Body": "new"});
        assert!(matches!(
            patch_at(raw, body.as_object().unwrap(), at()),
            Err(PatchError::Unfaithful(_))
        ));
        let cats = json!({"Categories": "Work"});
        assert!(
            patch_at(raw, cats.as_object().unwrap(), at())
                .unwrap()
                .contains("\r\n--b--\r\n")
        );
        assert!(matches!(
            patch_at(raw, json!({"Color": 1}).as_object().unwrap(), at()),
            Err(PatchError::Field { .. })
        ));
    }

    proptest! {
        #[test]
        fn html_and_messages_never_panic(html in "(?s).{0,200}", raw in "(?s).{0,300}") {
            let _ = html_text(&html);
            let _ = read(&raw);
            let _ = patch(&raw, json!({"Body": "x", "Categories": "y"}).as_object().unwrap());
        }

        #[test]
        fn create_then_read_is_the_identity(
            body in "[^\r\n]{1,40}(\n[^\r]{0,80})?",
            categories in proptest::option::of("[A-Za-zäö][A-Za-z0-9äö ]{0,8}[a-z](, [A-Z][a-z]{0,6}){0,2}"),
        ) {
            let body = body.trim_end_matches('\n').to_owned();
            prop_assume!(!body.trim().is_empty());
            let mut f = FieldSet::new();
            f.insert("Body".into(), json!(body));
            if let Some(c) = &categories { f.insert("Categories".into(), json!(c)); }
            let raw = create_from("N-1", "me@example.org", &f).unwrap();
            let mut back = read(&raw).unwrap();
            prop_assert_eq!(back.remove("GlobalUid"), Some(json!("N-1")));
            let subject = body.lines().map(str::trim).find(|l| !l.is_empty()).unwrap().to_owned();
            prop_assert_eq!(back.remove("Subject"), Some(json!(subject)));
            prop_assert_eq!(&back, &f, "{}", raw);
            prop_assert_eq!(patch_at(&raw, &f, at()).unwrap(), raw);
        }
    }
}
