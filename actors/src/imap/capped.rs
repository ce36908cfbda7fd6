//! A guard on what an IMAP server sends: a line that never ends, or a literal announced larger
//! than any message, fails the connection before the parser buffers it (RFC 3501 §4.3 literals).
//!
//! async-imap parses its whole buffer again after every read while a response is incomplete, so
//! one endless line costs time quadratic in its length (up to its own 512 MiB buffer limit). The
//! guard sits under it, on the socket's bytes, and holds back the unfinished end of a line: the
//! parser sees whole lines and literal contents only, and an endless line is never parsed.
//!
//! ```text
//!   socket ─► Guard: LineCap::scan(bytes) ─► released: up to the last LF, literal contents ─► async-imap
//!     line:    bytes since the last LF, literal contents excluded; > MAX_LINE → error
//!     literal: `{N}` or `{N+}` right before CRLF; N > MAX_LITERAL → error; N bytes pass
//! ```
//!
//! Bytes pass unchanged but for one repair: see [`fix_status_line`].

use std::io;

/// The longest line outside literals. `* SEARCH` answers are the longest real ones: 2 MiB holds
/// about 280,000 UIDs, and parsing 2 MiB again per read stays well under a second.
pub const MAX_LINE: usize = 2 * 1024 * 1024;
/// The largest literal (a message body): 256 MiB is beyond what mail servers accept.
pub const MAX_LITERAL: u64 = 256 * 1024 * 1024;

/// Where the scanner stands in `{N}` / `{N+}` at the end of a line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Brace {
    #[default]
    None,
    Digits(u64, bool),
    Plus(u64),
    Closed(u64),
    ClosedCr(u64),
}

/// The scanner's state across reads.
#[derive(Debug, Default)]
pub struct LineCap {
    line: usize,
    literal_left: u64,
    brace: Brace,
}

impl LineCap {
    /// Checks the bytes just read; an error means the connection must be dropped.
    pub fn check(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.scan(bytes, &mut Vec::new()).map(|_| ())
    }

    /// Checks `bytes` and returns how many of them may be passed on: up to the end of the last
    /// complete line or of literal contents (an unfinished line is held back).
    /// `ends` receives, per line end in `bytes`, the LF's index and whether it announced a literal.
    pub fn scan(&mut self, bytes: &[u8], ends: &mut Vec<(usize, bool)>) -> io::Result<usize> {
        let mut pos = 0;
        let mut releasable = 0;
        while pos < bytes.len() {
            if self.literal_left > 0 {
                let n = (self.literal_left.min((bytes.len() - pos) as u64)) as usize;
                self.literal_left -= n as u64;
                pos += n;
                releasable = pos;
                continue;
            }
            let b = bytes[pos];
            pos += 1;
            if b == b'\n' {
                releasable = pos;
                ends.push((
                    pos - 1,
                    matches!(self.brace, Brace::Closed(_) | Brace::ClosedCr(_)),
                ));
                if let Brace::Closed(n) | Brace::ClosedCr(n) = self.brace {
                    if n > MAX_LITERAL {
                        return Err(invalid(format!(
                            "the server announced a literal of {n} bytes (more than {} MiB)",
                            MAX_LITERAL >> 20
                        )));
                    }
                    self.literal_left = n;
                }
                self.line = 0;
                self.brace = Brace::None;
                continue;
            }
            self.line += 1;
            if self.line > MAX_LINE {
                return Err(invalid(format!(
                    "the server sent a line longer than {} MiB without an end",
                    MAX_LINE >> 20
                )));
            }
            self.brace = match (self.brace, b) {
                (_, b'{') => Brace::Digits(0, false),
                (Brace::Digits(n, _), b'0'..=b'9') => {
                    Brace::Digits(n.saturating_mul(10).saturating_add(u64::from(b - b'0')), true)
                }
                (Brace::Digits(n, true), b'+') => Brace::Plus(n),
                (Brace::Digits(n, true), b'}') | (Brace::Plus(n), b'}') => Brace::Closed(n),
                (Brace::Closed(n), b'\r') => Brace::ClosedCr(n),
                _ => Brace::None,
            };
        }
        Ok(releasable)
    }
}

/// The bytes read but not yet passed on, with the scanner: what `ImapConnection` reads through.
#[derive(Debug)]
pub struct Guard {
    cap: LineCap,
    held: Vec<u8>,
    /// `held[start..start + ready]` may be passed on.
    start: usize,
    ready: usize,
    /// The server closed the connection: everything held may be passed on.
    eof: bool,
    /// Where the line now arriving starts in `held` (`None` inside a literal and the rest of
    /// the line that announced it).
    line_start: Option<usize>,
    ends: Vec<(usize, bool)>,
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            cap: LineCap::default(),
            held: Vec::new(),
            start: 0,
            ready: 0,
            eof: false,
            line_start: Some(0),
            ends: Vec::new(),
        }
    }
}

/// imap-proto 0.17 panics on a status line whose response code is followed directly by a
/// non-ASCII byte (`* OK [ALERT]é`: it slices the text after the code at byte 1, found by
/// fuzz/imap_response). Such a line gets the space RFC 3501 §9 `resp-text` wants after `]`.
/// Returns whether a byte was inserted at `end`-relative position.
fn fix_status_line(held: &mut Vec<u8>, start: usize, end: usize) -> bool {
    let line = &held[start..end];
    let mut words = line.splitn(3, |b| *b == b' ');
    let (Some(_tag), Some(status), Some(rest)) = (words.next(), words.next(), words.next()) else {
        return false;
    };
    let is_status = ["OK", "NO", "BAD", "BYE", "PREAUTH"]
        .iter()
        .any(|s| status.eq_ignore_ascii_case(s.as_bytes()));
    if !is_status || rest.first() != Some(&b'[') {
        return false;
    }
    let Some(close) = rest.iter().position(|b| *b == b']') else {
        return false;
    };
    if rest.get(close + 1).is_none_or(|b| *b < 0x80) {
        return false;
    }
    let at = end - rest.len() + close + 1;
    held.insert(at, b' ');
    true
}

impl Guard {
    /// Bytes ready to pass on.
    pub fn ready(&self) -> &[u8] {
        &self.held[self.start..self.start + self.ready]
    }

    /// `n` ready bytes were passed on.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
        self.ready -= n;
        if self.start == self.held.len() {
            self.held.clear();
            self.line_start = self.line_start.map(|_| 0);
            self.start = 0;
        } else if self.start > 64 * 1024 && self.start > self.held.len() / 2 {
            self.held.drain(..self.start);
            // The line now arriving is never passed on yet, so it starts after what was drained.
            self.line_start = self.line_start.map(|l| l - self.start);
            self.start = 0;
        }
    }

    /// Takes bytes just read from the socket (an empty slice: end of stream).
    pub fn push(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            self.eof = true;
            self.ready = self.held.len() - self.start;
            return Ok(());
        }
        let unscanned = self.held.len();
        self.held.extend_from_slice(bytes);
        let mut ends = std::mem::take(&mut self.ends);
        ends.clear();
        let released = self.cap.scan(bytes, &mut ends)?;
        let mut shift = 0;
        for &(lf, literal) in &ends {
            let end = unscanned + lf + shift;
            if let Some(start) = self.line_start
                && fix_status_line(&mut self.held, start, end)
            {
                shift += 1;
            }
            self.line_start = (!literal).then_some(unscanned + lf + shift + 1);
        }
        self.ends = ends;
        if released > 0 {
            self.ready = unscanned + released + shift - self.start;
        }
        Ok(())
    }

    pub fn at_eof(&self) -> bool {
        self.eof && self.ready == 0
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_skipped_and_lines_counted() {
        let mut cap = LineCap::default();
        cap.check(b"* 1 FETCH (BODY[] {5}\r\nhe").unwrap();
        assert_eq!(cap.literal_left, 3);
        cap.check(b"llo)\r\n").unwrap();
        assert_eq!((cap.line, cap.literal_left), (0, 0));
        // A literal body longer than a line, with no LF in it, is fine.
        let big = format!("* 2 FETCH (BODY[] {{{}}}\r\n", MAX_LINE + 10);
        cap.check(big.as_bytes()).unwrap();
        cap.check(&vec![b'x'; MAX_LINE + 10]).unwrap();
        cap.check(b")\r\n").unwrap();
        assert_eq!(cap.line, 0);
    }

    #[test]
    fn an_endless_line_fails() {
        let mut cap = LineCap::default();
        cap.check(b"* OK ").unwrap();
        let chunk = vec![b'a'; 64 * 1024];
        let mut failed = None;
        for i in 0..(MAX_LINE / chunk.len() + 2) {
            if let Err(e) = cap.check(&chunk) {
                failed = Some((i, e));
                break;
            }
        }
        let (_, e) = failed.expect("the line is refused");
        assert!(e.to_string().contains("longer than 2 MiB"), "{e}");
    }

    #[test]
    fn a_huge_literal_is_refused_and_braces_elsewhere_are_text() {
        let mut cap = LineCap::default();
        let e = cap.check(b"* 1 FETCH (BODY[] {999999999999}\r\n").unwrap_err();
        assert!(e.to_string().contains("literal"), "{e}");
        let mut cap = LineCap::default();
        cap.check(b"* OK [ALERT] {not a literal} \r\nnext\r\n").unwrap();
        assert_eq!(cap.literal_left, 0);
        cap.check(b"* 3 FETCH (BODY[] {3+}\r\nabc)\r\n").unwrap();
        assert_eq!((cap.line, cap.literal_left), (0, 0));
    }

    #[test]
    fn the_guard_holds_back_an_unfinished_line() {
        let mut g = Guard::default();
        g.push(b"* OK hello\r\n* 1 FETCH (BODY[] {3}\r\nab").unwrap();
        assert_eq!(g.ready(), b"* OK hello\r\n* 1 FETCH (BODY[] {3}\r\nab");
        g.consume(5);
        g.push(b"c) more").unwrap();
        assert_eq!(g.ready(), b"hello\r\n* 1 FETCH (BODY[] {3}\r\nabc");
        let n = g.ready().len();
        g.consume(n);
        assert!(g.ready().is_empty());
        g.push(b"\r\n").unwrap();
        assert_eq!(g.ready(), b") more\r\n");
        g.consume(8);
        g.push(b"* BYE").unwrap();
        assert!(g.ready().is_empty() && !g.at_eof());
        g.push(b"").unwrap();
        assert_eq!(g.ready(), b"* BYE");
        g.consume(5);
        assert!(g.at_eof());
    }

    #[test]
    fn a_status_code_followed_by_a_non_ascii_byte_gets_its_space() {
        // fuzz/imap_response: imap-proto panicked on this greeting.
        let mut g = Guard::default();
        g.push(b"* OK [CAPABILITY IMAP4rev1]\xffready\r\nA1 OK [READ-WRITE]\xc3\xa9 x\r\n* 1 FETCH (BODY[] {2}\r\n]\xff)\r\n")
            .unwrap();
        let out = g.ready().to_vec();
        assert_eq!(
            out,
            b"* OK [CAPABILITY IMAP4rev1] \xffready\r\nA1 OK [READ-WRITE] \xc3\xa9 x\r\n* 1 FETCH (BODY[] {2}\r\n]\xff)\r\n"
        );
        let mut rest: &[u8] = &out;
        while let Ok((left, _)) = async_imap::imap_proto::Response::parse(rest) {
            rest = left;
        }
        assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(rest));
    }

    proptest::proptest! {
        /// However the bytes are split across reads, the verdict and the state are the same.
        #[test]
        fn splitting_does_not_matter(input in proptest::collection::vec(proptest::sample::select(b"{}+0123456789\r\nab ".to_vec()), 0..200), at in 0usize..200) {
            let at = at.min(input.len());
            let mut whole = LineCap::default();
            let a = whole.check(&input).is_ok();
            let mut split = LineCap::default();
            let b = split.check(&input[..at]).is_ok() && split.check(&input[at..]).is_ok();
            proptest::prop_assert_eq!(a, b);
            if a {
                proptest::prop_assert_eq!((whole.line, whole.literal_left, whole.brace), (split.line, split.literal_left, split.brace));
            }
        }
    }
}
