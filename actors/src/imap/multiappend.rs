//! Adjacent journaled APPENDs to one folder as one MULTIAPPEND command (RFC 3502), with
//! non-synchronizing literals (RFC 7888 LITERAL+) so that no continuation is awaited per message.
//!
//! ```text
//!  A1 APPEND "Sent" (\Seen) {312+}␍␊<message 1> (\Seen) {298+}␍␊<message 2>␍␊
//!  A1 OK [APPENDUID 38505 3955:3956] MULTIAPPEND completed
//! ```
//!
//! The server stores every message or none (RFC 3502 §6.3.11), so a refusal leaves nothing behind
//! and the caller carries them out again one by one, each with its own outcome. Sent on the
//! session's stream between two commands, as imap/raw.rs does; the connection's stall limit
//! bounds every read and write. Only first attempts join: a retry must first look for its
//! Message-ID in the folder (ops.rs), which one command cannot do per message.

use async_imap::Session;
use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::ServiceError;
use crate::imap::connect::ImapConnection;
use crate::imap::ops::OpCaps;
use crate::journal::MailOp;

/// Most messages in one command.
pub const MAX_MESSAGES: usize = 100;
/// Most bytes of messages (base64 as journaled) in one command.
pub const MAX_BYTES: usize = 8 << 20;
/// The command's tag; async-imap's own tags are `A` and a number.
const TAG: &str = "opcma";

/// The folder `op` appends to, when it may join a MULTIAPPEND.
pub fn joins(op: &MailOp, caps: OpCaps, retry: bool) -> Option<&str> {
    match op {
        MailOp::Append {
            folder,
            message_id: Some(_),
            ..
        } if caps.multiappend && !retry => Some(folder),
        _ => None,
    }
}

/// The journaled size of an append (base64), for [`MAX_BYTES`].
pub fn size(op: &MailOp) -> usize {
    match op {
        MailOp::Append { raw, .. } => raw.len(),
        _ => 0,
    }
}

/// `"name"` with `\` and `"` escaped (RFC 3501 §9, quoted), as async-imap sends a mailbox.
fn quoted(name: &str) -> Result<String, ServiceError> {
    if name.contains(['\r', '\n', '\0']) {
        return Err(ServiceError::Protocol(format!(
            "{name:?} cannot be sent as a mailbox name"
        )));
    }
    Ok(format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\"")))
}

/// The whole command, ending in CRLF.
fn command(folder: &str, ops: &[&MailOp]) -> Result<Vec<u8>, ServiceError> {
    let mut out = format!("{TAG} APPEND {}", quoted(folder)?).into_bytes();
    for op in ops {
        let MailOp::Append { raw, flags, .. } = op else {
            return Err(ServiceError::Protocol("not an append".into()));
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|e| ServiceError::Protocol(format!("journaled message is not base64: {e}")))?;
        if !flags.is_empty() {
            out.extend_from_slice(format!(" ({})", flags.join(" ")).as_bytes());
        }
        out.extend_from_slice(format!(" {{{}+}}\r\n", raw.len()).as_bytes());
        out.extend_from_slice(&raw);
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

/// Appends every message of `ops` (all to `folder`) in one command.
pub async fn execute(
    session: &mut Session<ImapConnection>,
    folder: &str,
    ops: &[&MailOp],
) -> Result<(), ServiceError> {
    let bytes = command(folder, ops)?;
    let stream = session.get_mut();
    let io = |e: std::io::Error| ServiceError::transient(format!("connection: {e}"));
    stream.write_all(&bytes).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 2);
            if let Some(status) = line.strip_prefix(TAG).and_then(|r| r.strip_prefix(' ')) {
                let word = status.split_whitespace().next().unwrap_or("");
                return if word.eq_ignore_ascii_case("OK") {
                    Ok(())
                } else {
                    Err(ServiceError::Protocol(format!(
                        "APPEND of {} messages to {folder}: {status}",
                        ops.len()
                    )))
                };
            }
            // Untagged data (EXISTS of the selected folder, …): the sync after replay reads it.
        }
        if buf.len() > 1 << 20 {
            return Err(ServiceError::Protocol("APPEND: answer over 1 MiB".into()));
        }
        let n = stream.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err(ServiceError::transient("connection closed"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(folder: &str, text: &str, flags: &[&str]) -> MailOp {
        MailOp::Append {
            folder: folder.into(),
            raw: base64::engine::general_purpose::STANDARD.encode(text),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            message_id: Some("<a@b>".into()),
        }
    }

    #[test]
    fn one_command_carries_every_message_as_a_non_synchronizing_literal() {
        let (a, b) = (append("Sent", "hello", &["\\Seen"]), append("Sent", "hi", &[]));
        let bytes = command("Sent", &[&a, &b]).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "opcma APPEND \"Sent\" (\\Seen) {5+}\r\nhello {2+}\r\nhi\r\n"
        );
    }

    #[test]
    fn only_first_attempts_with_a_message_id_join() {
        let caps = OpCaps {
            multiappend: true,
            ..OpCaps::default()
        };
        let a = append("Sent", "x", &[]);
        assert_eq!(joins(&a, caps, false), Some("Sent"));
        assert_eq!(joins(&a, caps, true), None);
        assert_eq!(joins(&a, OpCaps::default(), false), None);
        let MailOp::Append {
            folder, raw, flags, ..
        } = a
        else {
            unreachable!()
        };
        let anonymous = MailOp::Append {
            folder,
            raw,
            flags,
            message_id: None,
        };
        assert_eq!(joins(&anonymous, caps, false), None);
        assert!(quoted("a\r\nb").is_err());
        assert_eq!(quoted("a\"b").unwrap(), "\"a\\\"b\"");
    }
}
