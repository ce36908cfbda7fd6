//! Commands async-imap cannot parse the answer of (NAMESPACE, RFC 2342), sent on the session's
//! underlying stream between two commands and read line by line up to the tagged completion.
//!
//! Safe only between commands: async-imap has consumed every byte of the previous answer then,
//! and no IDLE is running.

use async_imap::Session;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::ServiceError;
use crate::imap::connect::ImapConnection;

/// An answer larger than this is not something these commands produce; stop reading.
const MAX_ANSWER: usize = 1 << 20;

/// Sends `TAG COMMAND` and returns the untagged lines (without CRLF) once the server said OK.
pub async fn command(
    session: &mut Session<ImapConnection>,
    tag: &str,
    command: &str,
) -> Result<Vec<String>, ServiceError> {
    let stream = session.get_mut();
    let io = |e: std::io::Error| ServiceError::transient(format!("connection: {e}"));
    stream
        .write_all(format!("{tag} {command}\r\n").as_bytes())
        .await
        .map_err(io)?;
    stream.flush().await.map_err(io)?;
    let mut buf: Vec<u8> = Vec::new();
    let mut lines = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 2);
            if let Some(status) = line.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
                let word = status.split_whitespace().next().unwrap_or("");
                return if word.eq_ignore_ascii_case("OK") {
                    Ok(lines)
                } else {
                    Err(ServiceError::Protocol(format!("{command}: {status}")))
                };
            }
            lines.push(line);
        }
        if buf.len() > MAX_ANSWER {
            return Err(ServiceError::Protocol(format!(
                "{command}: answer over {MAX_ANSWER} bytes"
            )));
        }
        let n = stream.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err(ServiceError::transient("connection closed"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
