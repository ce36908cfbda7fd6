//! The header fields the mirror keeps, read from `BODY.PEEK[HEADER.FIELDS (…)]` (RFC 3501 §6.4.5)
//! with mail-parser, which decodes RFC 2047 words and tolerates broken headers.

use mail_parser::{Address, HeaderValue, MessageParser};

/// The fetch item that asks for exactly these fields.
pub const FETCH_FIELDS: &str = "BODY.PEEK[HEADER.FIELDS (SUBJECT FROM TO CC DATE MESSAGE-ID)]";

/// What `mail.messages` shows of a message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeaderSummary {
    pub subject: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub date: Option<String>,
    pub message_id: Option<String>,
}

/// Reads the fields from raw header bytes; anything unreadable is left out, never an error.
pub fn summarize(raw: &[u8]) -> HeaderSummary {
    let Some(message) = MessageParser::default().parse_headers(raw) else {
        return HeaderSummary::default();
    };
    HeaderSummary {
        subject: message.subject().map(str::to_owned),
        from: message.from().map(render_addresses),
        to: message.to().map(render_addresses),
        date: message.date().map(|d| d.to_rfc3339()),
        message_id: message
            .header("Message-ID")
            .and_then(HeaderValue::as_text)
            .map(|id| format!("<{}>", id.trim_matches(|c| c == '<' || c == '>'))),
    }
}

/// `Name <addr>, addr2` as a mail client would show it.
fn render_addresses(address: &Address<'_>) -> String {
    address
        .iter()
        .map(|a| match (a.name(), a.address()) {
            (Some(name), Some(addr)) => format!("{name} <{addr}>"),
            (None, Some(addr)) => addr.to_owned(),
            (Some(name), None) => name.to_owned(),
            (None, None) => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_encoded_words_and_addresses() {
        let raw = b"Subject: =?UTF-8?B?R3LDvMOfZQ==?= from Bob\r\nFrom: \"Bob B.\" <bob@example.org>\r\n\
To: alice@example.org, Carol <carol@example.org>\r\nDate: Mon, 23 Nov 2026 09:00:00 +0100\r\n\
Message-ID: <abc@example.org>\r\n\r\n";
        let s = summarize(raw);
        assert_eq!(s.subject.as_deref(), Some("Grüße from Bob"));
        assert_eq!(s.from.as_deref(), Some("Bob B. <bob@example.org>"));
        assert_eq!(
            s.to.as_deref(),
            Some("alice@example.org, Carol <carol@example.org>")
        );
        assert_eq!(s.message_id.as_deref(), Some("<abc@example.org>"));
        assert_eq!(s.date.as_deref(), Some("2026-11-23T09:00:00+01:00"));
    }

    #[test]
    fn garbage_yields_empty_fields() {
        let s = summarize(b"\xff\xfe not a header\r\n\r\n");
        assert_eq!(s.message_id, None);
        let _ = summarize(b"");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = summarize(&bytes);
        }
    }
}
