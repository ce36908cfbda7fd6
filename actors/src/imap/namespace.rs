//! The NAMESPACE answer (RFC 2342 §5): personal, other users' and shared prefixes.
//!
//! ```text
//! * NAMESPACE (("" "/")) (("shared/" "/")) (("Public/" "/"))
//!             personal    other users       shared
//! ```
//! Each part is NIL or a list of `(prefix delimiter [extensions])`.

/// One namespace: its prefix and hierarchy delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceEntry {
    pub prefix: String,
    pub delimiter: Option<String>,
}

/// The three namespace kinds of RFC 2342 §5.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespaces {
    pub personal: Vec<NamespaceEntry>,
    pub other: Vec<NamespaceEntry>,
    pub shared: Vec<NamespaceEntry>,
}

impl Namespaces {
    /// `personal`, `other` or `shared` for a mailbox name: the kind of the longest matching
    /// non-empty prefix; the empty personal prefix matches the rest.
    pub fn kind_of(&self, mailbox: &str) -> &'static str {
        let mut best: (&'static str, usize) = ("personal", 0);
        for (kind, entries) in [
            ("personal", &self.personal),
            ("other", &self.other),
            ("shared", &self.shared),
        ] {
            for e in entries {
                let prefix = e.prefix.as_str();
                // The prefix itself without its trailing delimiter ("Public") belongs to it too.
                let bare = e
                    .delimiter
                    .as_deref()
                    .and_then(|d| prefix.strip_suffix(d))
                    .unwrap_or(prefix);
                let hit = !prefix.is_empty() && (mailbox.starts_with(prefix) || mailbox == bare);
                if hit && prefix.len() > best.1 {
                    best = (kind, prefix.len());
                }
            }
        }
        best.0
    }
}

/// Why a NAMESPACE line could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed NAMESPACE answer: {0}")]
pub struct NamespaceError(pub String);

/// Parses the untagged line (with or without the leading `* NAMESPACE `).
pub fn parse(line: &str) -> Result<Namespaces, NamespaceError> {
    let rest = line.trim();
    let rest = rest.strip_prefix("* ").unwrap_or(rest);
    let rest = strip_prefix_ci(rest, "NAMESPACE")
        .map(str::trim_start)
        .unwrap_or(rest);
    let mut p = Parser {
        s: rest.as_bytes(),
        i: 0,
    };
    let personal = p.part()?;
    let other = p.part()?;
    let shared = p.part()?;
    Ok(Namespaces {
        personal,
        other,
        shared,
    })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    // `get` rather than indexing: a non-ASCII answer may not split at `prefix.len()`.
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> NamespaceError {
        NamespaceError(format!("{what} at offset {}", self.i))
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i] == b' ' {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn nil(&mut self) -> bool {
        self.ws();
        if self.s.len() >= self.i + 3 && self.s[self.i..self.i + 3].eq_ignore_ascii_case(b"NIL") {
            self.i += 3;
            true
        } else {
            false
        }
    }

    /// NIL or `( (entry) (entry) … )`.
    fn part(&mut self) -> Result<Vec<NamespaceEntry>, NamespaceError> {
        if self.nil() {
            return Ok(Vec::new());
        }
        if !self.eat(b'(') {
            return Err(self.err("expected ( or NIL"));
        }
        let mut entries = Vec::new();
        while self.eat(b'(') {
            let prefix = self.string()?.ok_or_else(|| self.err("prefix is NIL"))?;
            let delimiter = self.string()?;
            // Extensions (RFC 2342 §5 Namespace_Response_Extension) are skipped.
            self.skip_to_close()?;
            entries.push(NamespaceEntry { prefix, delimiter });
        }
        if !self.eat(b')') {
            return Err(self.err("expected )"));
        }
        Ok(entries)
    }

    /// A quoted string or NIL (RFC 3501 §4.3; literals do not occur in practice here).
    fn string(&mut self) -> Result<Option<String>, NamespaceError> {
        if self.nil() {
            return Ok(None);
        }
        if !self.eat(b'"') {
            return Err(self.err("expected a quoted string"));
        }
        let mut out = Vec::new();
        loop {
            match self.s.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    let c = *self
                        .s
                        .get(self.i + 1)
                        .ok_or_else(|| self.err("dangling escape"))?;
                    out.push(c);
                    self.i += 2;
                }
                Some(&c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(out)
            .map(Some)
            .map_err(|_| self.err("not UTF-8"))
    }

    fn skip_to_close(&mut self) -> Result<(), NamespaceError> {
        let mut depth = 1usize;
        let mut quoted = false;
        while let Some(&c) = self.s.get(self.i) {
            self.i += 1;
            match (quoted, c) {
                (true, b'\\') => self.i += 1,
                (_, b'"') => quoted = !quoted,
                (false, b'(') => depth += 1,
                (false, b')') => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                _ => {}
            }
        }
        Err(self.err("unbalanced parentheses"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dovecot_and_cyrus_answers() {
        let ns = parse(r#"* NAMESPACE (("" "/")) (("shared/" "/")) (("Public/" "/"))"#).unwrap();
        assert_eq!(
            ns.personal,
            vec![NamespaceEntry {
                prefix: "".into(),
                delimiter: Some("/".into())
            }]
        );
        assert_eq!(ns.other[0].prefix, "shared/");
        assert_eq!(ns.shared[0].prefix, "Public/");
        assert_eq!(ns.kind_of("INBOX"), "personal");
        assert_eq!(ns.kind_of("shared/bob/INBOX"), "other");
        assert_eq!(ns.kind_of("Public/Team"), "shared");
        assert_eq!(ns.kind_of("Public"), "shared");

        let ns = parse(r#"* NAMESPACE (("INBOX." ".")) (("user." ".")) NIL"#).unwrap();
        assert_eq!(ns.kind_of("INBOX.Sent"), "personal");
        assert_eq!(ns.kind_of("user.bob"), "other");
        assert!(ns.shared.is_empty());

        let ns =
            parse(r#"* NAMESPACE (("" "/" "X-PARAM" ("a" "b"))) NIL (("Shared Folders/" "/"))"#).unwrap();
        assert_eq!(ns.shared[0].prefix, "Shared Folders/");
        assert_eq!(ns.personal[0].delimiter.as_deref(), Some("/"));
    }

    #[test]
    fn malformed_answers_are_errors() {
        assert!(parse("* NAMESPACE").is_err());
        assert!(parse(r#"* NAMESPACE (("" "/") NIL NIL"#).is_err());
        assert!(parse(r#"* NAMESPACE (("unterminated)) NIL NIL"#).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(line in ".{0,120}") {
            let _ = parse(&line);
        }

        #[test]
        fn prefixes_round_trip(a in "[A-Za-z./ ]{0,12}", b in "[A-Za-z./ ]{0,12}") {
            let line = format!(r#"* NAMESPACE (("{a}" "/")) (("{b}" ".")) NIL"#);
            let ns = parse(&line).unwrap();
            proptest::prop_assert_eq!(&ns.personal[0].prefix, &a);
            proptest::prop_assert_eq!(&ns.other[0].prefix, &b);
        }
    }
}
