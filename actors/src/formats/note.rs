//! Notes as mail messages in the IMAP folder `Notes`, compatible with Apple's notes over IMAP:
//! `X-Uniform-Type-Identifier: com.apple.mail-note`, the title as Subject, an HTML or plain body,
//! and `X-Universally-Unique-Identifier` as the note's identity across edits (an edit replaces
//! the message, so UIDs change while this id does not).

use base64::Engine as _;
use mail_parser::{HeaderValue, MessageParser, MimeHeaders};

/// The identifying header of a note message.
pub const NOTE_TYPE: &str = "com.apple.mail-note";

/// A note as `notes.list` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub id: String,
    pub subject: String,
    pub body: String,
    /// `html` or `text`.
    pub format: String,
    pub modified: Option<String>,
}

/// Builds the message for a note version. `stamp` makes the Message-ID unique per version (the
/// journal deduplicates an APPEND by it), `date` is an RFC 5322 date.
pub fn build(id: &str, subject: &str, body: &str, from: &str, date: &str, stamp: &str) -> Vec<u8> {
    let html = body.trim_start().starts_with('<');
    let subject = encode_header(subject.lines().next().unwrap_or(""));
    let encoded = base64::engine::general_purpose::STANDARD.encode(body.as_bytes());
    let mut wrapped = String::with_capacity(encoded.len() + encoded.len() / 76 * 2);
    for chunk in encoded.as_bytes().chunks(76) {
        wrapped.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        wrapped.push_str("\r\n");
    }
    format!(
        "From: {from}\r\nSubject: {subject}\r\nDate: {date}\r\nX-Mail-Created-Date: {date}\r\n\
         Message-ID: <{id}.{stamp}@opconnect.invalid>\r\nX-Uniform-Type-Identifier: {NOTE_TYPE}\r\n\
         X-Universally-Unique-Identifier: {id}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/{}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{wrapped}",
        if html { "html" } else { "plain" }
    )
    .into_bytes()
}

/// RFC 2047 encoded word for a non-ASCII subject.
pub fn encode_header(text: &str) -> String {
    if text.is_ascii() {
        text.to_owned()
    } else {
        format!(
            "=?utf-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
        )
    }
}

/// Reads a note message; `fallback_id` (the UID) names a note written without an id header.
pub fn parse(raw: &[u8], fallback_id: &str) -> Option<Note> {
    let message = MessageParser::default().parse(raw)?;
    let header = |name: &str| {
        message
            .header(name)
            .and_then(HeaderValue::as_text)
            .map(|s| s.trim().to_owned())
    };
    let id = header("X-Universally-Unique-Identifier")
        .or_else(|| message.message_id().map(str::to_owned))
        .unwrap_or_else(|| fallback_id.to_owned());
    let (body, format) = match message.body_html(0) {
        Some(html) if is_html(&message) => (html.into_owned(), "html"),
        _ => (
            message.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
            "text",
        ),
    };
    Some(Note {
        id,
        subject: message.subject().unwrap_or("").to_owned(),
        body: body.trim_end_matches(['\r', '\n']).to_owned(),
        format: format.to_owned(),
        modified: message.date().map(|d| d.to_rfc3339()),
    })
}

fn is_html(message: &mail_parser::Message<'_>) -> bool {
    message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("text")
            && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("html"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_round_trips_in_text_and_html() {
        let raw = build(
            "N-1",
            "Einkäufe",
            "Milch\nBrot",
            "alice@example.org",
            "Mon, 23 Nov 2026 10:00:00 +0000",
            "1",
        );
        let text = String::from_utf8(raw.clone()).unwrap();
        assert!(text.contains("X-Uniform-Type-Identifier: com.apple.mail-note\r\n"));
        assert!(text.contains("Content-Type: text/plain"));
        let note = parse(&raw, "7").unwrap();
        assert_eq!(
            (
                note.id.as_str(),
                note.subject.as_str(),
                note.body.as_str(),
                note.format.as_str()
            ),
            ("N-1", "Einkäufe", "Milch\nBrot", "text")
        );
        assert_eq!(note.modified.as_deref(), Some("2026-11-23T10:00:00Z"));

        let raw = build(
            "N-2",
            "Plan",
            "<div>Step <b>one</b></div>",
            "a@b.c",
            "Mon, 23 Nov 2026 10:00:00 +0000",
            "2",
        );
        let note = parse(&raw, "8").unwrap();
        assert_eq!(
            (note.format.as_str(), note.body.as_str()),
            ("html", "<div>Step <b>one</b></div>")
        );
    }

    #[test]
    fn an_apple_note_reads() {
        let raw = b"Subject: Groceries\r\nX-Uniform-Type-Identifier: com.apple.mail-note\r\n\
X-Universally-Unique-Identifier: 4F1E2D3C-0000-4000-8000-ABCDEFABCDEF\r\nContent-Type: text/html;\r\n\tcharset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\nDate: Tue, 24 Nov 2026 08:00:00 +0100\r\n\r\n\
<html><body><div>Eggs =E2=80=93 six</div></body></html>\r\n";
        let note = parse(raw, "3").unwrap();
        assert_eq!(note.id, "4F1E2D3C-0000-4000-8000-ABCDEFABCDEF");
        assert_eq!(note.subject, "Groceries");
        assert_eq!(note.format, "html");
        assert!(note.body.contains("Eggs – six"), "{}", note.body);
    }

    proptest::proptest! {
        #[test]
        fn any_text_round_trips(subject in "[ -~äöüß€]{0,40}", body in ".{0,200}") {
            let raw = build("id", &subject, &body, "a@b.c", "Mon, 23 Nov 2026 10:00:00 +0000", "s");
            let note = parse(&raw, "1").unwrap();
            proptest::prop_assert_eq!(note.subject.trim(), subject.trim());
            if !body.trim_start().starts_with('<') {
                proptest::prop_assert_eq!(note.body, body.trim_end_matches(['\r', '\n']).to_owned());
            }
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse(&bytes, "1");
        }
    }
}
