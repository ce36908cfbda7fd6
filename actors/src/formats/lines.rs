//! Editing iCalendar and vCard objects content line by content line (RFC 5545 §3.1, RFC 6350
//! §3.2), so that a patch changes the lines it means to and every other byte stays as the server
//! sent it (DESIGN invariant 3, per property).
//!
//! ```text
//!   text ──split──► [Line { raw (folds and line ending kept), unfolded }] ──edit──► text
//!                    BEGIN/END lines delimit components; nothing is re-serialized
//!                    except the lines an edit writes.
//! ```

/// RFC 5545 §3.1: lines SHOULD NOT be longer than 75 octets, excluding the line break.
const FOLD_AT: usize = 75;

/// One content line: its bytes exactly as received (folds and line ending included) and its
/// unfolded text without the line ending.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub raw: String,
    pub unfolded: String,
}

impl Line {
    /// The property name, upper-cased, without a vCard group prefix (`item1.EMAIL` → `EMAIL`).
    pub fn name(&self) -> String {
        let head = &self.unfolded[..self.name_end()];
        let name = head.rsplit('.').next().unwrap_or(head);
        name.to_ascii_uppercase()
    }

    /// The vCard group prefix (RFC 6350 §3.3), if any.
    pub fn group(&self) -> Option<&str> {
        let head = &self.unfolded[..self.name_end()];
        head.rfind('.').map(|i| &head[..i])
    }

    fn name_end(&self) -> usize {
        self.unfolded
            .find([';', ':'])
            .unwrap_or(self.unfolded.len())
    }

    /// The index of the colon that starts the value: the first one outside a quoted parameter.
    fn value_start(&self) -> Option<usize> {
        let mut quoted = false;
        for (i, c) in self.unfolded.char_indices() {
            match c {
                '"' => quoted = !quoted,
                ':' if !quoted => return Some(i),
                _ => {}
            }
        }
        None
    }

    /// The raw (still escaped) value after the colon.
    pub fn value(&self) -> &str {
        self.value_start()
            .map(|i| &self.unfolded[i + 1..])
            .unwrap_or("")
    }

    /// The parameters between the name and the value, as `(NAME upper-cased, value without quotes)`.
    pub fn params(&self) -> Vec<(String, String)> {
        let end = self.value_start().unwrap_or(self.unfolded.len());
        let start = self.name_end();
        if start >= end {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut current = String::new();
        let mut quoted = false;
        let text = &self.unfolded[start + 1..end];
        let mut push = |part: &str| {
            if let Some((k, v)) = part.split_once('=') {
                out.push((k.trim().to_ascii_uppercase(), v.replace('"', "")));
            } else if !part.is_empty() {
                // vCard 3 bare types (`TEL;WORK;VOICE:`) read as TYPE values (RFC 2426 §4).
                out.push(("TYPE".into(), part.to_owned()));
            }
        };
        for c in text.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    current.push(c);
                }
                ';' if !quoted => {
                    push(&current);
                    current.clear();
                }
                _ => current.push(c),
            }
        }
        push(&current);
        out
    }

    /// The first value of parameter `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<String> {
        self.params()
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every TYPE value, lower-cased, split at commas (RFC 6350 §5.6, RFC 2426 §4).
    pub fn types(&self) -> Vec<String> {
        self.params()
            .into_iter()
            .filter(|(k, _)| k == "TYPE")
            .flat_map(|(_, v)| {
                v.split(',')
                    .map(|t| t.trim().to_ascii_lowercase())
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// A component: the indices of its BEGIN and END lines, its name and its nesting depth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Component {
    pub begin: usize,
    pub end: usize,
    pub depth: usize,
}

/// An object as a list of content lines that can be edited in place.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    pub lines: Vec<Line>,
    /// The line ending new lines are written with: the one the object uses.
    newline: &'static str,
}

impl Doc {
    /// Splits `text` into content lines. `Doc::parse(t).to_string() == t` for any `t`.
    pub fn parse(text: &str) -> Doc {
        let newline = if text.contains("\r\n") || !text.contains('\n') {
            "\r\n"
        } else {
            "\n"
        };
        let mut lines = Vec::new();
        let mut raw = String::new();
        let mut rest = text;
        while !rest.is_empty() {
            let (physical, tail) = match rest.find('\n') {
                Some(i) => rest.split_at(i + 1),
                None => (rest, ""),
            };
            let continues = physical.starts_with([' ', '\t']) && !raw.is_empty();
            if !continues && !raw.is_empty() {
                lines.push(make_line(std::mem::take(&mut raw)));
            }
            raw.push_str(physical);
            rest = tail;
        }
        if !raw.is_empty() {
            lines.push(make_line(raw));
        }
        Doc { lines, newline }
    }

    /// Every component, outermost first in document order.
    pub fn components(&self) -> Vec<(String, Component)> {
        let mut stack: Vec<(String, usize)> = Vec::new();
        let mut out = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            match line.name().as_str() {
                "BEGIN" => stack.push((line.value().trim().to_ascii_uppercase(), i)),
                "END" => {
                    let name = line.value().trim().to_ascii_uppercase();
                    if let Some(pos) = stack.iter().rposition(|(n, _)| *n == name) {
                        let (name, begin) = stack.remove(pos);
                        stack.truncate(pos);
                        out.push((
                            name,
                            Component {
                                begin,
                                end: i,
                                depth: pos,
                            },
                        ));
                    }
                }
                _ => {}
            }
        }
        out.sort_by_key(|(_, c)| c.begin);
        out
    }

    /// The components named `name` (upper case), in document order.
    pub fn components_named(&self, name: &str) -> Vec<Component> {
        self.components()
            .into_iter()
            .filter(|(n, _)| n == name)
            .map(|(_, c)| c)
            .collect()
    }

    /// Indices of the lines that belong directly to `comp` (not to a nested component).
    pub fn own_lines(&self, comp: Component) -> Vec<usize> {
        let mut out = Vec::new();
        let mut depth = 0usize;
        for i in comp.begin + 1..comp.end {
            match self.lines[i].name().as_str() {
                "BEGIN" => depth += 1,
                "END" => depth = depth.saturating_sub(1),
                _ if depth == 0 => out.push(i),
                _ => {}
            }
        }
        out
    }

    /// Indices of `comp`'s own lines named `name`.
    pub fn find(&self, comp: Component, name: &str) -> Vec<usize> {
        self.own_lines(comp)
            .into_iter()
            .filter(|&i| self.lines[i].name() == name)
            .collect()
    }

    /// The first own line of `comp` named `name`.
    pub fn first(&self, comp: Component, name: &str) -> Option<&Line> {
        self.find(comp, name).first().map(|&i| &self.lines[i])
    }

    /// A new line `content` (unfolded, without line ending), folded at 75 octets.
    pub fn new_line(&self, content: &str) -> Line {
        Line {
            raw: fold(content, self.newline),
            unfolded: content.to_owned(),
        }
    }

    /// Replaces the first own line of `comp` named `name` with `content`, or inserts it before
    /// the component's END (after the last own property) when there is none. Other lines of that
    /// name stay.
    pub fn set(&mut self, comp: Component, name: &str, content: &str) {
        let line = self.new_line(content);
        match self.find(comp, name).first() {
            Some(&i) => {
                if self.lines[i].unfolded != content {
                    self.lines[i] = line;
                }
            }
            None => self.insert_property(comp, line),
        }
    }

    /// Inserts a property line into `comp`: after its last own property, before any nested
    /// component, so that the order RFC 5545 §3.6 shows (properties, then sub-components) holds.
    pub fn insert_property(&mut self, comp: Component, line: Line) {
        let at = self
            .own_lines(comp)
            .last()
            .map(|i| i + 1)
            .unwrap_or(comp.begin + 1);
        self.lines.insert(at, line);
    }

    /// Removes every own line of `comp` named `name`; returns how many went.
    pub fn remove(&mut self, comp: Component, name: &str) -> usize {
        let doomed = self.find(comp, name);
        for &i in doomed.iter().rev() {
            self.lines.remove(i);
        }
        doomed.len()
    }

    /// Removes a whole component, BEGIN to END.
    pub fn remove_component(&mut self, comp: Component) {
        self.lines.drain(comp.begin..=comp.end);
    }

    /// Inserts the lines of `text` (a whole component) before line `at`.
    pub fn insert_text(&mut self, at: usize, text: &str) {
        let lines = Doc::parse(text).lines;
        for (k, line) in lines.into_iter().enumerate() {
            let line = if line.raw.ends_with('\n') {
                line
            } else {
                self.new_line(&line.unfolded)
            };
            self.lines.insert(at + k, line);
        }
    }
}

impl std::fmt::Display for Doc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for line in &self.lines {
            f.write_str(&line.raw)?;
        }
        Ok(())
    }
}

fn make_line(raw: String) -> Line {
    let body = raw.trim_end_matches(['\r', '\n']);
    let mut unfolded = String::with_capacity(body.len());
    let mut parts = body.split('\n');
    if let Some(first) = parts.next() {
        unfolded.push_str(first.trim_end_matches('\r'));
    }
    for part in parts {
        let part = part.trim_end_matches('\r');
        unfolded.push_str(part.get(1..).unwrap_or(""));
    }
    Line { raw, unfolded }
}

/// Folds `content` at 75 octets without splitting a UTF-8 character (RFC 5545 §3.1) and ends it.
pub fn fold(content: &str, newline: &str) -> String {
    let mut out = String::with_capacity(content.len() + content.len() / FOLD_AT * 3 + 2);
    let mut width = 0;
    for c in content.chars() {
        let len = c.len_utf8();
        if width + len > FOLD_AT {
            out.push_str(newline);
            out.push(' ');
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str(newline);
    out
}

/// Escapes a TEXT value (RFC 5545 §3.3.11, RFC 6350 §3.4).
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`escape_text`]; `\N` reads as a newline too.
pub fn unescape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Splits a value at unescaped `sep` (`,` for lists, `;` for structured values), unescaping
/// each part.
pub fn split_escaped(value: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            current.push('\\');
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(unescape_text(&current));
            current.clear();
        } else {
            current.push(c);
        }
    }
    if escaped {
        current.push('\\');
    }
    parts.push(unescape_text(&current));
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:a\r\nSUMMARY:Old\r\nX-OTHER;X-P=\"a:b;c\":kept\r\nDESCRIPTION:a long line that the server fol\r\n ded in the middle\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn parse_and_print_is_the_identity() {
        let doc = Doc::parse(EVENT);
        assert_eq!(doc.to_string(), EVENT);
        let desc = &doc.lines[6];
        assert_eq!(desc.name(), "DESCRIPTION");
        assert_eq!(
            desc.value(),
            "a long line that the server folded in the middle"
        );
        let other = &doc.lines[5];
        assert_eq!(other.param("x-p").as_deref(), Some("a:b;c"));
        assert_eq!(other.value(), "kept");
    }

    #[test]
    fn edits_touch_only_their_lines() {
        let mut doc = Doc::parse(EVENT);
        let event = doc.components_named("VEVENT")[0];
        doc.set(event, "SUMMARY", "SUMMARY:New");
        // TRIGGER lives in the VALARM, not in the VEVENT's own lines.
        assert!(doc.find(event, "TRIGGER").is_empty());
        let event = doc.components_named("VEVENT")[0];
        doc.set(event, "LOCATION", "LOCATION:Room 1");
        let text = doc.to_string();
        assert_eq!(
            text,
            EVENT
                .replace("SUMMARY:Old", "SUMMARY:New")
                .replace("ded in the middle\r\n", "ded in the middle\r\nLOCATION:Room 1\r\n")
        );
        let event = doc.components_named("VEVENT")[0];
        assert_eq!(doc.remove(event, "LOCATION"), 1);
        let alarm = doc.components_named("VALARM")[0];
        doc.remove_component(alarm);
        assert!(!doc.to_string().contains("VALARM"));
    }

    #[test]
    fn long_lines_are_folded_without_splitting_characters() {
        let content = format!("DESCRIPTION:{}", "ü".repeat(60));
        let folded = fold(&content, "\r\n");
        for physical in folded.split("\r\n") {
            assert!(physical.len() <= FOLD_AT);
        }
        let doc = Doc::parse(&folded);
        assert_eq!(doc.lines[0].unfolded, content);
    }

    #[test]
    fn vcard_groups_and_bare_types() {
        let doc = Doc::parse("BEGIN:VCARD\nitem1.EMAIL;type=INTERNET;type=pref:a@b\nTEL;WORK;VOICE:1\nEND:VCARD\n");
        assert_eq!(doc.lines[1].name(), "EMAIL");
        assert_eq!(doc.lines[1].group(), Some("item1"));
        assert_eq!(doc.lines[1].types(), vec!["internet", "pref"]);
        assert_eq!(doc.lines[2].types(), vec!["work", "voice"]);
        let card = doc.components_named("VCARD")[0];
        let mut doc2 = doc.clone();
        doc2.set(card, "NOTE", "NOTE:x");
        assert!(doc2.to_string().contains("TEL;WORK;VOICE:1\nNOTE:x\nEND:VCARD"));
    }

    #[test]
    fn text_escapes_round_trip() {
        let s = "a;b,c\\d\ne";
        assert_eq!(unescape_text(&escape_text(s)), s);
        assert_eq!(split_escaped("a\\,b,c", ','), vec!["a,b", "c"]);
        assert_eq!(split_escaped("Doe;John;;;", ';'), vec!["Doe", "John", "", "", ""]);
    }

    proptest::proptest! {
        #[test]
        fn any_text_prints_back_unchanged(text in "(?s).{0,300}") {
            proptest::prop_assert_eq!(Doc::parse(&text).to_string(), text);
        }

        #[test]
        fn folding_round_trips(value in "[^\r\n]{0,300}") {
            let content = format!("X-A:{value}");
            let doc = Doc::parse(&fold(&content, "\r\n"));
            proptest::prop_assert_eq!(doc.lines.len(), 1);
            proptest::prop_assert_eq!(&doc.lines[0].unfolded, &content);
        }
    }
}
