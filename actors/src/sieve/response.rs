//! ManageSieve responses (RFC 5804 §4) parsed from bytes: data lines of strings and atoms, then one
//! `OK` / `NO` / `BYE` line with an optional response code. Pure: no sockets, never panics.
//!
//! ```text
//!  "IMPLEMENTATION" "Dovecot Pigeonhole"      ← data line (RFC 5804 §1.7)
//!  "SIEVE" "fileinto vacation …"
//!  {12}                                       ← literal-s2c: 12 octets follow the CRLF
//!  keep;\r\nstop;
//!  NO (NONEXISTENT) "There is no script"      ← response-oknobye (RFC 5804 §4)
//! ```

/// Largest literal we accept from a server (RFC 5804 §4 leaves it open; scripts are small).
const MAX_LITERAL: usize = 16 * 1024 * 1024;

/// One token of a data line or of a status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `atom` (RFC 5804 §4), e.g. `ACTIVE`, `OK`.
    Atom(String),
    /// `quoted` or `literal-s2c`, as its raw octets.
    Str(Vec<u8>),
    /// `(` … `)`, used for response codes.
    List(Vec<Item>),
}

impl Item {
    /// The string's text (lossy UTF-8) or the atom itself.
    pub fn text(&self) -> Option<String> {
        match self {
            Item::Atom(a) => Some(a.clone()),
            Item::Str(s) => Some(String::from_utf8_lossy(s).into_owned()),
            Item::List(_) => None,
        }
    }
}

/// The outcome word of `response-oknobye` (RFC 5804 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    No,
    Bye,
}

/// The closing line: outcome, `resp-code` (upper-cased atom plus its argument) and the human text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub outcome: Outcome,
    pub code: Option<String>,
    pub code_arg: Option<String>,
    pub text: Option<String>,
}

/// A complete response: the data lines before the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub lines: Vec<Vec<Item>>,
    pub status: Status,
}

/// The server sent something that is not ManageSieve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unparsable ManageSieve answer: {0}")]
pub struct ParseError(pub String);

/// Parses one complete response from the front of `input`. `Ok(None)`: more bytes are needed.
/// On success also returns how many bytes it used.
pub fn parse_response(input: &[u8]) -> Result<Option<(Response, usize)>, ParseError> {
    let mut pos = 0;
    let mut lines = Vec::new();
    loop {
        let Some((items, next)) = parse_line(input, pos)? else {
            return Ok(None);
        };
        pos = next;
        if let Some(outcome) = outcome_of(&items) {
            return Ok(Some((
                Response {
                    lines,
                    status: status_of(outcome, &items[1..]),
                },
                pos,
            )));
        }
        lines.push(items);
    }
}

fn outcome_of(items: &[Item]) -> Option<Outcome> {
    match items.first() {
        Some(Item::Atom(a)) if a.eq_ignore_ascii_case("OK") => Some(Outcome::Ok),
        Some(Item::Atom(a)) if a.eq_ignore_ascii_case("NO") => Some(Outcome::No),
        Some(Item::Atom(a)) if a.eq_ignore_ascii_case("BYE") => Some(Outcome::Bye),
        _ => None,
    }
}

/// `[SP "(" resp-code ")"] [SP string]` (RFC 5804 §4).
fn status_of(outcome: Outcome, rest: &[Item]) -> Status {
    let mut status = Status {
        outcome,
        code: None,
        code_arg: None,
        text: None,
    };
    for item in rest {
        match item {
            Item::List(code) => {
                status.code = code.first().and_then(Item::text).map(|c| c.to_ascii_uppercase());
                status.code_arg = code.get(1).and_then(Item::text);
            }
            other if status.text.is_none() => status.text = other.text(),
            _ => {}
        }
    }
    status
}

/// Parses one line starting at `pos` up to and including its CRLF (a bare LF is accepted too).
fn parse_line(input: &[u8], mut pos: usize) -> Result<Option<(Vec<Item>, usize)>, ParseError> {
    let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
    loop {
        let Some(&b) = input.get(pos) else {
            return Ok(None);
        };
        match b {
            b' ' | b'\t' => pos += 1,
            b'\r' if input.get(pos + 1) == Some(&b'\n') => {
                pos += 2;
                break;
            }
            b'\r' if pos + 1 == input.len() => return Ok(None),
            b'\r' => return Err(ParseError("CR without LF".into())),
            b'\n' => {
                pos += 1;
                break;
            }
            b'(' => {
                if stack.len() > 8 {
                    return Err(ParseError("parentheses nested too deep".into()));
                }
                stack.push(Vec::new());
                pos += 1;
            }
            b')' => {
                if stack.len() < 2 {
                    return Err(ParseError("unbalanced `)`".into()));
                }
                let inner = stack.pop().unwrap_or_default();
                push(&mut stack, Item::List(inner));
                pos += 1;
            }
            b'"' => match quoted(input, pos + 1)? {
                Some((s, next)) => {
                    push(&mut stack, Item::Str(s));
                    pos = next;
                }
                None => return Ok(None),
            },
            b'{' => match literal(input, pos + 1)? {
                Some((s, next)) => {
                    push(&mut stack, Item::Str(s));
                    pos = next;
                }
                None => return Ok(None),
            },
            _ => {
                let start = pos;
                while let Some(&c) = input.get(pos) {
                    if matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b'"' | b'{') {
                        break;
                    }
                    pos += 1;
                }
                push(
                    &mut stack,
                    Item::Atom(String::from_utf8_lossy(&input[start..pos]).into_owned()),
                );
            }
        }
    }
    if stack.len() != 1 {
        return Err(ParseError("unbalanced `(`".into()));
    }
    Ok(Some((stack.pop().unwrap_or_default(), pos)))
}

fn push(stack: &mut [Vec<Item>], item: Item) {
    if let Some(top) = stack.last_mut() {
        top.push(item);
    }
}

/// `quoted = DQUOTE *QUOTED-CHAR DQUOTE` with `\"` and `\\` escapes (RFC 5804 §4).
fn quoted(input: &[u8], mut pos: usize) -> Result<Option<(Vec<u8>, usize)>, ParseError> {
    let mut out = Vec::new();
    loop {
        match input.get(pos) {
            None => return Ok(None),
            Some(b'"') => return Ok(Some((out, pos + 1))),
            Some(b'\\') => match input.get(pos + 1) {
                None => return Ok(None),
                Some(&c) => {
                    out.push(c);
                    pos += 2;
                }
            },
            Some(b'\r' | b'\n') => return Err(ParseError("line break inside a quoted string".into())),
            Some(&c) => {
                out.push(c);
                pos += 1;
            }
        }
    }
}

/// `literal-s2c = "{" number "}" CRLF *OCTET` (RFC 5804 §4); `{n+}` is tolerated too.
fn literal(input: &[u8], mut pos: usize) -> Result<Option<(Vec<u8>, usize)>, ParseError> {
    let mut n: usize = 0;
    let mut digits = 0;
    while let Some(&c) = input.get(pos) {
        if !c.is_ascii_digit() {
            break;
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(usize::from(c - b'0')))
            .filter(|n| *n <= MAX_LITERAL)
            .ok_or_else(|| ParseError(format!("literal larger than {MAX_LITERAL} bytes")))?;
        digits += 1;
        pos += 1;
    }
    if input.get(pos) == Some(&b'+') {
        pos += 1;
    }
    match (input.get(pos), input.get(pos + 1), input.get(pos + 2)) {
        (None, ..) | (Some(b'}'), None, _) | (Some(b'}'), Some(b'\r'), None) => return Ok(None),
        (Some(b'}'), Some(b'\r'), Some(b'\n')) if digits > 0 => pos += 3,
        (Some(b'}'), Some(b'\n'), _) if digits > 0 => pos += 2,
        _ => return Err(ParseError("malformed literal".into())),
    }
    let end = pos
        .checked_add(n)
        .ok_or_else(|| ParseError("literal overflows".into()))?;
    if input.len() < end {
        return Ok(None);
    }
    Ok(Some((input[pos..end].to_vec(), end)))
}

/// A string as a client sends it: quoted when short and plain, else a non-synchronizing literal
/// `{n+}` (RFC 5804 §4 `literal-c2s`), which every ManageSieve server accepts.
pub fn encode_string(s: &str) -> String {
    if s.len() <= 1024 && !s.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'"' | b'\\' | 0)) {
        format!("\"{s}\"")
    } else {
        format!("{{{}+}}\r\n{s}", s.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn one(input: &[u8]) -> Response {
        let (r, used) = parse_response(input).unwrap().unwrap();
        assert_eq!(used, input.len());
        r
    }

    #[test]
    fn dovecot_capabilities() {
        let r = one(b"\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SIEVE\" \"fileinto reject vacation date\"\r\n\"NOTIFY\" \"mailto\"\r\n\"SASL\" \"PLAIN LOGIN\"\r\n\"STARTTLS\"\r\n\"VERSION\" \"1.0\"\r\nOK \"Dovecot ready.\"\r\n");
        assert_eq!(r.lines.len(), 6);
        assert_eq!(r.lines[4], vec![Item::Str(b"STARTTLS".to_vec())]);
        assert_eq!(r.status.outcome, Outcome::Ok);
        assert_eq!(r.status.text.as_deref(), Some("Dovecot ready."));
    }

    #[test]
    fn listscripts_and_getscript() {
        let r = one(b"\"roundcube\" ACTIVE\r\n\"other\"\r\nOK \"Listscripts completed.\"\r\n");
        assert_eq!(r.lines[0][1], Item::Atom("ACTIVE".into()));
        let r = one(b"{12}\r\nkeep;\r\n# \"x\"\r\nOK \"Getscript completed.\"\r\n");
        assert_eq!(r.lines[0][0], Item::Str(b"keep;\r\n# \"x\"".to_vec()));
    }

    #[test]
    fn status_codes_and_escapes() {
        let r = one(b"NO (NONEXISTENT) \"There is no script \\\"x\\\".\"\r\n");
        assert_eq!(r.status.outcome, Outcome::No);
        assert_eq!(r.status.code.as_deref(), Some("NONEXISTENT"));
        assert_eq!(r.status.text.as_deref(), Some("There is no script \"x\"."));
        let r = one(b"OK (SASL \"dGVzdA==\")\r\n");
        assert_eq!(r.status.code.as_deref(), Some("SASL"));
        assert_eq!(r.status.code_arg.as_deref(), Some("dGVzdA=="));
        let r = one(b"BYE (tryLater) {5}\r\nbusy!\r\n");
        assert_eq!(r.status.outcome, Outcome::Bye);
        assert_eq!(r.status.code.as_deref(), Some("TRYLATER"));
        assert_eq!(r.status.text.as_deref(), Some("busy!"));
    }

    #[test]
    fn incomplete_input_asks_for_more() {
        for cut in [
            &b"\"SIEVE\" \"a"[..],
            b"{10}\r\nabc",
            b"{10",
            b"OK",
            b"OK \"x\"\r",
            b"\"x\"\r\n",
        ] {
            assert_eq!(parse_response(cut).unwrap(), None, "{cut:?}");
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_response(b"{99999999999999999999}\r\n").is_err());
        assert!(parse_response(b")\r\n").is_err());
        assert!(parse_response(b"{x}\r\n").is_err());
        assert!(parse_response(b"\"a\nb\"\r\n").is_err());
    }

    #[test]
    fn strings_are_encoded_for_the_server() {
        assert_eq!(encode_string("opconnect"), "\"opconnect\"");
        assert_eq!(encode_string("a\r\nb"), "{4+}\r\na\r\nb");
        assert_eq!(encode_string("é\""), "{3+}\r\né\"");
    }

    proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(Some((_, used))) = parse_response(&input) {
                prop_assert!(used <= input.len());
            }
        }

        #[test]
        fn never_panics_on_protocol_like_bytes(input in "[\"{}()+0-9A-Z \\\\\r\n]{0,80}") {
            let _ = parse_response(input.as_bytes());
        }

        #[test]
        fn encoded_strings_read_back(s in "\\PC{0,60}|[a-z\r\n\"\\\\]{0,60}") {
            // A server sends `{n}`, never the client's `{n+}`.
            let encoded = encode_string(&s);
            let encoded = if encoded.starts_with('{') { encoded.replacen("+}", "}", 1) } else { encoded };
            let line = format!("{encoded}\r\nOK\r\n");
            let (r, _) = parse_response(line.as_bytes()).unwrap().unwrap();
            prop_assert_eq!(r.lines[0][0].clone(), Item::Str(s.into_bytes()));
        }
    }
}
