//! IMAP commands read back from Dovecot's rawlog (`rawlog_dir`): the decrypted client side of
//! each session after login, for benchmark 8d, where TLS hides the commands from the proxy.
//!
//! ```text
//!   rawlog_dir/*.in ─ `SECONDS.MICROS ` taken off each line ─▶ proxy::Framer (IMAP) ─▶ names
//! ```

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;

use anyhow::Result;

use crate::proxy::{Framer, Framing};

/// IMAP commands read back from Dovecot's rawlog (`rawlog_dir`, the decrypted client side of
/// each session after login), framed as the proxy frames them.
pub struct Rawlog {
    pub dir: tempfile::TempDir,
    read: std::sync::Mutex<HashMap<PathBuf, (usize, Framer)>>,
}

impl Rawlog {
    pub fn new() -> Result<Rawlog> {
        let dir = opconnect_tests::process::short_tempdir("raw")?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777))?;
        Ok(Rawlog {
            dir,
            read: Default::default(),
        })
    }

    /// The commands since the last call, by name.
    pub fn take(&self) -> HashMap<String, u64> {
        let mut out = HashMap::new();
        let mut read = self.read.lock().expect("rawlog");
        let Ok(entries) = fs::read_dir(self.dir.path()) else {
            return out;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "in") {
                continue;
            }
            let Ok(bytes) = fs::read(&path) else { continue };
            let (done, framer) = read
                .entry(path)
                .or_insert_with(|| (0, Framer::new(Framing::Imap)));
            let fresh = bytes.get(*done..).unwrap_or_default();
            for name in framer.feed(&untimed(fresh)) {
                *out.entry(name).or_default() += 1;
            }
            *done = bytes.len();
        }
        out
    }
}

/// The client's bytes of a rawlog without the `SECONDS.MICROS ` Dovecot writes before each line.
fn untimed(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let stamp = line
            .iter()
            .position(|&b| b == b' ')
            .filter(|&i| i > 0 && line[..i].iter().all(|&b| b.is_ascii_digit() || b == b'.'));
        out.extend_from_slice(stamp.map_or(line, |i| &line[i + 1..]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rawlog_timestamps_are_taken_off_each_line() {
        let raw = b"1733250000.123456 P1 APPEND Sent {7}\r\n1733250000.200000 ab\r\ncd\r\n";
        assert_eq!(untimed(raw), b"P1 APPEND Sent {7}\r\nab\r\ncd\r\n");
        let mut f = Framer::new(Framing::Imap);
        assert_eq!(f.feed(&untimed(raw)), vec!["APPEND".to_string()]);
    }
}
